/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pure checks of the D-Bus API's arguments (bus-args.h): no I/O, no allocation, a hard cap
 * on every length, so that a hostile caller gets -EINVAL and nothing else.
 */
#include "ceredis.h"

#include "bus-args.h"

int bus_check_policy_path(const char *path) {
        size_t n;

        if (!path || path[0] != '/')
                return -EINVAL;
        n = strnlen(path, BUS_PATH_MAX + 1);
        if (n > BUS_PATH_MAX)
                return -ENAMETOOLONG;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) path[i] < 0x20 || path[i] == 0x7f)
                        return -EINVAL;
        /* A path the daemon (root) reads for a caller is named plainly: no dot segments. */
        for (const char *p = path; p; p = strchr(p + 1, '/')) {
                const char *seg = p + 1;
                size_t len = strcspn(seg, "/");

                if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
                        return -EINVAL;
        }
        if (path[n - 1] == '/')
                return -EINVAL; /* a directory, not a policy file */
        return 0;
}

int bus_check_since(const char *since) {
        size_t n, digits;

        if (!since)
                return -EINVAL;
        n = strnlen(since, BUS_SINCE_MAX + 1);
        if (n == 0)
                return 0;
        if (n > BUS_SINCE_MAX)
                return -EINVAL;
        digits = strspn(since, "0123456789");
        if (digits == 0 || digits > 12 || n != digits + 1 || !strchr("smhdw", since[digits]))
                return -EINVAL;
        return 0;
}

int bus_check_token(const char *token) {
        if (!token || strnlen(token, BUS_TOKEN_LEN + 1) != BUS_TOKEN_LEN)
                return -EINVAL;
        for (size_t i = 0; i < BUS_TOKEN_LEN; i++)
                if (!strchr("0123456789abcdef", token[i]) || token[i] == 0)
                        return -EINVAL;
        return 0;
}

int bus_check_confirm(uint32_t seconds) {
        return seconds <= BUS_CONFIRM_MAX_SECONDS ? 0 : -ERANGE;
}
