/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's Docker client: service identity follows containers. It lists networks and
 * containers, then follows GET /events, and turns every change into an incremental ruleset
 * update (agent/daemon/docker.c). Everything runs on the daemon's one sd-event loop.
 */
#pragma once

#include "ceredis.h"
#include "enforce.h"
#include "ruleset.h"

typedef struct Context Context;
typedef struct Docker Docker;

#define DOCKER_HOST_NONE "none"

/* "unix:///run/docker.sock" -> "/run/docker.sock" in *ret (owned); "none" -> NULL and 0;
 * -EINVAL for anything else (the agent only speaks to the local Engine, over its socket). */
int docker_client_socket_path(const char *url, char **ret);

/* Create the client for c->docker_host and start its first sync (the loop does the rest:
 * a missing or dead Docker is retried with backoff, rules stay as they are meanwhile). */
int docker_client_start(Context *c);
void docker_client_free(Docker *d);

/* The enforcer compiled `t` from the policy alone (start, reload, a followed `ceredisctl
 * apply`): recompile it with the containers Docker has now. On failure `t` is left alone. */
int docker_client_amend(Docker *d, EnforceTarget *t, char *err, size_t err_size);

/* The service addresses built from Docker's inventory (NULL before the first sync), for the
 * watcher's flow → service map. Valid until the next inventory change. */
const Endpoints *docker_client_endpoints(const Docker *d);
/* Record the containers the current target was compiled with in the state directory
 * (inventory.h), so that `ceredisctl verify` and `audit` compile what the daemon installed;
 * before the first sync, remove a stale one. Call after the target changed. */
void docker_client_save_inventory(Docker *d);
