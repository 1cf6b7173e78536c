/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer harness for the policy loader: any bytes go through the whole pipeline (YAML tree,
 * model, selector resolution, contradiction check, JSON rendering); the loader must refuse or
 * accept, never crash, leak or exceed its limits.
 */
#include "ceredis.h"

#include <jansson.h>

#include "policy-json.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(policy_freep) Policy *p = NULL;
        PolicyError error = {};
        char line[1024];

        if (policy_parse("fuzz.yaml", data, size, &p, &error) < 0) {
                /* Every refusal must carry a message. */
                if (error.message[0] == '\0')
                        abort();
                policy_error_format("fuzz.yaml", &error, line, sizeof(line));
                return 0;
        }
        json_t *j = policy_to_json(p);
        if (j) {
                char *s = json_dumps(j, JSON_PRESERVE_ORDER);
                free(s);
                json_decref(j);
        }
        return 0;
}
