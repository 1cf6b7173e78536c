/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Run in a named network namespace (/run/netns/NAME, as `ip netns add` makes them). */
#pragma once

#include "ceredis.h"

/* Move the calling thread into /run/netns/NAME. The agent and ceredisctl call it once, before
 * opening any socket, when given --netns. */
int netns_enter(const char *name);

/* Let bridged traffic through the inet hooks of the CURRENT namespace: write 1 to
 * /proc/sys/net/bridge/bridge-nf-call-ip{,6}tables. The agent keeps one `inet` table and no
 * `bridge` table (this kernel has no nf_conntrack_bridge); with br_netfilter, container-to-
 * container traffic on one Docker bridge then passes the inet forward hook, with conntrack.
 * 0 on success, also when br_netfilter is absent (nothing is bridged through netfilter then). */
int netns_bridge_nf_enable(void);
