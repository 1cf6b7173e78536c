/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The agent's side of nf_tables, over libmnl + libnftnl: install a compiled ruleset in one
 * netlink batch, compare the live table with it, remove it. Never touches a table that is not
 * the agent's own. Callers choose the network namespace (netns.h) before opening the socket.
 */
#pragma once

#include "ceredis.h"
#include "ruleset.h"

typedef struct Nft Nft; /* a netlink socket bound to NETLINK_NETFILTER, and its sequence */

int nft_open(Nft **ret);
void nft_close(Nft *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(Nft *, nft_close);
/* The socket, for an event loop (notifications come on a separate nft_monitor_open()). */
int nft_fd(const Nft *n);

/* Where the kernel refused a batch: the policy entry behind the failing object. */
typedef struct NftError {
        int error;              /* negative errno from the kernel */
        char what[256];         /* e.g. "set allow4 element 10.0.0.5 . 10.0.1.7 . tcp . 5432" */
        PolicyPos pos;          /* policy position of the entry that produced it, or 0:0 */
} NftError;

/* Replace the agent's table(s) with `r` in ONE batch: all or nothing. A failed batch leaves
 * whatever was there before in place. */
int nft_apply(Nft *n, const Ruleset *r, NftError *ret_error);

/* Compare the live table with `r`. Returns 0 when equal, 1 when they differ (then *ret_diff,
 * if given, says the first difference in words), or a negative errno. */
int nft_verify(Nft *n, const Ruleset *r, char **ret_diff);

/* Remove the agent's table(s) and nothing else. 0 also when there was nothing to remove. */
int nft_disable(Nft *n);

/* A second socket subscribed to NFNLGRP_NFTABLES, for drift detection. Readable when some
 * nf_tables object changed; nft_monitor_drain() reads it all and tells whether one of the
 * agent's tables was touched (1) or not (0). */
int nft_monitor_open(Nft **ret);
int nft_monitor_drain(Nft *m);

/* Incremental update for container events: compile the policy again with the new Endpoints,
 * then nft_update(old, new) sends ONE small batch that deletes the set elements only `old` has
 * and adds those only `new` has. Chains, rules and set declarations must be the same in both
 * (they are when only Endpoints changed; -ESTALE otherwise: do a full nft_apply). The cost is
 * the size of the difference, not of the ruleset. */
int nft_update(Nft *n, const Ruleset *old, const Ruleset *new, NftError *ret_error);

/* The container-event fast path: add (`add`) or delete in ONE batch the elements of `delta`,
 * from ruleset_compile_address() for the address a container gained or lost. No full
 * compilation, no diff: the cost is the handful of elements. Deleting an element that is not
 * there fails the whole batch (-ENOENT) and changes nothing. The caller's full Ruleset, used
 * by nft_verify(), is not touched: recompile it off the hot path. -EINVAL if `delta` holds
 * single-field interval elements (do a full nft_update); a kernel refusal (e.g. a range that
 * overlaps one already there, -EEXIST) changes nothing: fall back to nft_update() too. */
int nft_update_elements(Nft *n, const Ruleset *delta, bool add, NftError *ret_error);

/* Containment (the watcher cut a confirmed L7 violation on an allowed flow): add the flow
 * `saddr` -> `daddr` (`family` AF_INET or AF_INET6, addresses in network byte order), `proto`,
 * `dport` (host byte order) to set contain4/contain6 for `timeout_sec` seconds, in one small
 * batch. In enforce mode the forward chain then drops the flow both ways, established or not,
 * and logs "ceredis:CONTAINED "; in audit mode the set exists but no rule reads it. Adding a
 * flow that is already contained succeeds and keeps its first timeout. nft_verify() ignores
 * these run-time elements; a full nft_apply() starts with empty contain sets. -ENOENT when the
 * table is not installed, -EINVAL for a bad family or a zero timeout. */
int nft_contain(Nft *n, int family, const void *saddr, const void *daddr, uint8_t proto,
                uint16_t dport, unsigned timeout_sec);
