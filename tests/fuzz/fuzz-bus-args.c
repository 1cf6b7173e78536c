/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the D-Bus argument checks (agent/daemon/bus-args.c) with arbitrary strings: they must
 * never read past a NUL or crash, and what they accept must have the promised shape.
 */
#include "ceredis.h"

#include "daemon/bus-args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s;

        if (size > 2 * BUS_PATH_MAX)
                return 0;
        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        if (bus_check_policy_path(s) == 0 && (s[0] != '/' || strlen(s) > BUS_PATH_MAX || strstr(s, "/../")))
                abort();
        if (bus_check_since(s) == 0 && strlen(s) > BUS_SINCE_MAX)
                abort();
        if (bus_check_token(s) == 0 && strlen(s) != BUS_TOKEN_LEN)
                abort();
        free(s);
        return 0;
}
