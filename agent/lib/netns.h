/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Run in a named network namespace (/run/netns/NAME, as `ip netns add` makes them). */
#pragma once

#include "ceredis.h"

/* Move the calling thread into /run/netns/NAME. The agent and ceredisctl call it once, before
 * opening any socket, when given --netns. */
int netns_enter(const char *name);
