/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz the inventory parser (STATE_DIR/inventory.json): whatever bytes it is given, no crash,
 * no leak, and anything it accepts formats back to a file that parses to the same bytes again
 * (format -> parse -> format is stable).
 */
#include "ceredis.h"

#include "inventory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(endpoints_freep) Endpoints *e = NULL, *again = NULL;
        _cleanup_free_ char *netns = NULL, *netns2 = NULL, *text = NULL, *text2 = NULL;
        char sha[65], sha2[65];

        if (inventory_parse((const char *) data, size, sha, &netns, &e) < 0)
                return 0;
        if (inventory_format(sha, netns, NULL, e, &text) < 0)
                abort();
        if (inventory_parse(text, strlen(text), sha2, &netns2, &again) < 0 ||
            !streq(sha, sha2) || !streq_ptr(netns, netns2) ||
            inventory_format(sha2, netns2, NULL, again, &text2) < 0 || !streq(text, text2))
                abort();
        return 0;
}
