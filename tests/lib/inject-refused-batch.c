/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * TEST ONLY: send the kernel a batch it must refuse, through the agent's own apply path.
 * No valid policy makes nf_tables refuse a batch (the validator and the compiler close every
 * way we found: overlapping CIDRs are merged, over-long interface names are refused), so this
 * compiles a real policy and then corrupts one set element with the library's test-only hook
 * ruleset_test_corrupt_element() before nft_apply(). tests/enforce.sh then checks that the
 * live table, the traffic and the management session are exactly as before.
 *
 *   inject-refused-batch POLICY ENDPOINTS NETNS [SET]
 *
 * Exit 0 when the kernel refused the batch (it prints where), 1 when it accepted it, 2 on any
 * other error.
 */
#include "ceredis.h"

#include "netns.h"
#include "nft.h"
#include "policy.h"
#include "ruleset.h"

int main(int argc, char *argv[]) {
        _cleanup_(policy_freep) Policy *policy = NULL;
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        _cleanup_(ruleset_freep) Ruleset *rs = NULL;
        _cleanup_(nft_closep) Nft *nft = NULL;
        const char *set = argc > 4 ? argv[4] : "allow4";
        PolicyError perr = {};
        NftError nerr = {};
        char err[512] = "";
        int r;

        if (argc < 4 || argc > 5) {
                fprintf(stderr, "usage: inject-refused-batch POLICY ENDPOINTS NETNS [SET]\n");
                return 2;
        }
        r = policy_load(argv[1], &policy, &perr);
        if (r < 0) {
                fprintf(stderr, "%s:%u:%u: %s\n", argv[1], perr.pos.line, perr.pos.column, perr.message);
                return 2;
        }
        r = endpoints_new(&e);
        if (r >= 0)
                r = endpoints_load_json(e, argv[2], err, sizeof(err));
        if (r >= 0)
                r = ruleset_compile(policy, e, &(RulesetOptions) {}, &rs, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "inject-refused-batch: %s: %s\n", strerror(-r), err);
                return 2;
        }
        r = ruleset_test_corrupt_element(rs, set);
        if (r < 0) {
                fprintf(stderr, "inject-refused-batch: set %s: %s\n", set, strerror(-r));
                return 2;
        }
        r = netns_enter(argv[3]);
        if (r >= 0)
                r = nft_open(&nft);
        if (r < 0) {
                fprintf(stderr, "inject-refused-batch: netns %s: %s\n", argv[3], strerror(-r));
                return 2;
        }
        r = nft_apply(nft, rs, &nerr);
        if (r >= 0) {
                printf("the kernel accepted a corrupted batch\n");
                return 1;
        }
        printf("refused: %s: %s (policy %u:%u)\n", strerror(-r), nerr.what, nerr.pos.line, nerr.pos.column);
        return 0;
}
