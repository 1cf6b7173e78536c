/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Drift detection input: decide from nf_tables notifications whether one of the agent's own
 * tables was touched. The decision is a pure function over a received buffer so that it can
 * be unit-tested and fuzzed with hand-built netlink messages; nft_monitor_open() and
 * nft_monitor_drain() (nft.h) wrap it around a socket.
 */
#pragma once

#include "ceredis.h"

#define NFT_MONITOR_RCVBUF (8u * 1024u * 1024u) /* a flush of a big table is a burst */

/* Walk the netlink messages in `buf` (as read from a NFNLGRP_NFTABLES socket). Returns 1 if
 * one of them creates, changes or deletes an object of a table named RULESET_TABLE (any
 * family: the agent owns `inet ceredis` and may own `bridge ceredis`), 0 if none does.
 * Malformed messages or attributes are skipped, never trusted; a truncated buffer ends the
 * walk. */
int nft_monitor_parse(const void *buf, size_t len);
