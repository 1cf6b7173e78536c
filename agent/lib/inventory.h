/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The inventory: in Docker mode, the half of the enforcement target that comes from Docker
 * (the services' container addresses, their published ports, the bridge networks) rather than
 * from the operator's files. The daemon saves it as STATE_DIR/inventory.json after every
 * change it installs, naming the policy and namespace it was compiled with; `ceredisctl
 * verify`, `audit` and a rollback then recompile exactly what the daemon installed, instead of
 * the policy alone, which would report every container as drift.
 *
 * Format (one JSON object, written by inventory_format):
 *   { "policy_sha256": HEX, "netns": NAME|null, "ts": RFC3339,
 *     "services": { NAME: { "addresses": [ADDR...],
 *                           "published": [ { "proto": "tcp"|"udp", "host_port": N,
 *                                            "container_port": N } ... ] } ... },
 *     "networks": [ { "subnet": CIDR, "gateway": ADDR|null } ... ] }
 */
#pragma once

#include "ceredis.h"
#include "ruleset.h"
#include "state.h"

#define STATE_INVENTORY "inventory.json"
#define INVENTORY_MAX_SIZE (16u * 1024u * 1024u)

/* Pure: the inventory of `e` for policy `policy_sha256` in `netns` (NULL: none) as JSON. */
int inventory_format(const char *policy_sha256, const char *netns, const char *ts,
                     const Endpoints *e, char **ret);
/* Pure: parse what inventory_format wrote. Refuses anything else (-EBADMSG), anything past
 * INVENTORY_MAX_SIZE (-EFBIG) or past the Endpoints limits. *ret_netns may be NULL. */
int inventory_parse(const char *text, size_t size, char ret_sha256[65], char **ret_netns,
                    Endpoints **ret);

/* Write DIR/inventory.json atomically; remove it (ENOENT is fine). */
int inventory_save(const char *dir, const char *policy_sha256, const char *netns,
                   const Endpoints *e);
int inventory_remove(const char *dir);
/* The saved inventory if it belongs to record `r` (same policy, same namespace, and r has no
 * static endpoints file): 0 with *ret set, -ENOENT when there is none or it is for something
 * else, other negative errno when it is unreadable or invalid. */
int inventory_load(const char *dir, const StateRecord *r, Endpoints **ret);
