/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the sock_diag dump decoder of the audit's listener probe: the first byte picks TCP or
 * UDP, the rest is a buffer of netlink messages as the kernel would send them.
 */
#include "ceredis.h"

#include <netinet/in.h>

#include "probes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ProbeListeners l = {};
        void *copy;

        if (size < 1)
                return 0;
        /* Netlink buffers are 4-byte aligned; the kernel never hands out anything else. */
        copy = aligned_alloc(8, (size / 8 + 1) * 8);
        if (!copy)
                return 0;
        memcpy(copy, data + 1, size - 1);
        (void) probe_listeners_parse(copy, size - 1, data[0] & 1 ? IPPROTO_UDP : IPPROTO_TCP, &l);
        for (size_t i = 0; i < l.n; i++)
                if (l.items[i].family != AF_INET && l.items[i].family != AF_INET6)
                        __builtin_trap();
        probe_listeners_done(&l);
        free(copy);
        return 0;
}
