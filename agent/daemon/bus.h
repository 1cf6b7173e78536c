/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's D-Bus API: org.ceredis.Agent1 at /org/ceredis/Agent1 on the system bus
 * (DBUS_SYSTEM_BUS_ADDRESS is honoured), served from the daemon's one sd-event loop.
 *
 *   Status() -> s                 JSON object: host, policy, policy_sha256, mode, netns, state,
 *                                 pending_confirmation, docker, watching, repairs, version
 *   Audit() -> s                  JSON of `ceredisctl audit --json`, run as a bounded child
 *   Violations(s since) -> s      JSON of `ceredisctl violations --json [--since SINCE]`
 *   Reload()                      reload the configured policy (the old one stays on error)
 *   Apply(s path, u seconds) -> s install another policy file; with seconds > 0 it rolls
 *                                 back unless Confirm(token) comes first; returns the token
 *   Confirm(s token)
 *   signal ViolationDetected(s json)
 *   properties Mode (s: enforce|audit), PolicySha256 (s)
 *
 * Reads need root or the `ceredis` group; state changes need euid 0. The bus policy says so
 * too, but the handlers check the caller's credentials themselves.
 */
#pragma once

#include "ceredis.h"

#include <jansson.h>

#define BUS_NAME "org.ceredis.Agent1"
#define BUS_PATH "/org/ceredis/Agent1"
#define BUS_INTERFACE "org.ceredis.Agent1"
#define BUS_GROUP "ceredis"
#define BUS_ERROR_POLICY_INVALID "org.ceredis.Agent1.Error.PolicyInvalid"
#define BUS_ERROR_FAILED "org.ceredis.Agent1.Error.Failed"
#define BUS_JOBS_MAX 4u                     /* Audit/Violations children at once */
#define BUS_JOB_OUTPUT_MAX (8u * 1024u * 1024u)
#define BUS_JOB_TIMEOUT_USEC (120u * 1000u * 1000u)

struct Context;
typedef struct Bus Bus;

/* Connect to the system bus, publish the object and take the name. Failing is not fatal for
 * the daemon: it returns -errno and the caller logs it. */
int bus_start(struct Context *c, Bus **ret);
void bus_free(Bus *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(Bus *, bus_free);

/* Emit ViolationDetected with the event (not stolen). */
void bus_emit_violation(Bus *b, const json_t *event);
