/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The D-Bus API's arguments, checked before anything acts on them. A caller of
 * org.ceredis.Agent1 is untrusted even when it passed the bus policy, so every string it
 * sends is bounded and validated here by pure functions that the unit tests and a fuzzer
 * exercise; the handlers in bus.c only ever see arguments these accepted.
 */
#pragma once

#include "ceredis.h"

#define BUS_PATH_MAX 4096u             /* Apply's policy path, bytes */
#define BUS_SINCE_MAX 16u              /* Violations' since, bytes */
#define BUS_CONFIRM_MAX_SECONDS 86400u /* as `ceredisctl apply --confirm` */
#define BUS_TOKEN_LEN 32u              /* STATE_TOKEN_LEN: lowercase hex */

/* An absolute path of printable characters without "/../" tricks, at most BUS_PATH_MAX
 * bytes: 0, -EINVAL or -ENAMETOOLONG. */
int bus_check_policy_path(const char *path);
/* "" (no limit) or a DURATION as ceredisctl reads it: 1-12 digits and one of s m h d w. */
int bus_check_since(const char *since);
/* A pending-apply token: exactly BUS_TOKEN_LEN lowercase hex digits. */
int bus_check_token(const char *token);
/* Apply's confirm_seconds: 0 (no confirmation) up to BUS_CONFIRM_MAX_SECONDS. */
int bus_check_confirm(uint32_t seconds);
