/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `ceredisctl policy compile FILE [--host NAME] [--endpoints FILE] [--nflog-group N]`: load a
 * policy, compile it for one host and print the nft script (what `nft -c -f -` accepts).
 * Offline: no daemon, no netlink. Exit 0, 1 for an invalid policy, 2 for usage or I/O errors.
 */
#include "ceredis.h"

#include <getopt.h>

#include "ctl/ctl.h"
#include "policy.h"
#include "ruleset.h"

static int compile_usage(void) {
        fputs("usage: ceredisctl policy compile FILE [--host NAME] [--endpoints FILE] "
              "[--nflog-group N]\n",
              stderr);
        return CTL_EXIT_ERROR;
}

int verb_policy_compile(int argc, char *argv[]) {
        static const struct option options[] = {
                { "host", required_argument, NULL, 'H' },
                { "endpoints", required_argument, NULL, 'e' },
                { "nflog-group", required_argument, NULL, 'g' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        _cleanup_(ruleset_freep) Ruleset *r = NULL;
        RulesetOptions o = {};
        const char *endpoints_path = NULL;
        PolicyError perr = {};
        char err[512] = "", msg[1024];
        int c, k;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'H':
                        o.host = optarg;
                        break;
                case 'e':
                        endpoints_path = optarg;
                        break;
                case 'g': {
                        char *end;
                        unsigned long g = strtoul(optarg, &end, 10);
                        if (*optarg == 0 || *end != 0 || g == 0 || g > 65535) {
                                fprintf(stderr, "ceredisctl: --nflog-group: expected 1-65535\n");
                                return CTL_EXIT_ERROR;
                        }
                        o.nflog_group = (uint16_t) g;
                        break;
                }
                case 'j': /* the script is the output; --json changes nothing here */
                        break;
                case 'h':
                        compile_usage();
                        return CTL_EXIT_OK;
                default:
                        return compile_usage();
                }
        if (optind + 1 != argc)
                return compile_usage();

        k = policy_load(argv[optind], &p, &perr);
        if (k < 0) {
                policy_error_format(argv[optind], &perr, msg, sizeof(msg));
                fprintf(stderr, "%s\n", msg);
                return k == -EINVAL ? CTL_EXIT_FAIL : CTL_EXIT_ERROR;
        }
        k = endpoints_new(&e);
        if (k < 0) {
                fprintf(stderr, "ceredisctl: %s\n", strerror(-k));
                return CTL_EXIT_ERROR;
        }
        if (endpoints_path) {
                k = endpoints_load_json(e, endpoints_path, err, sizeof(err));
                if (k < 0) {
                        fprintf(stderr, "ceredisctl: %s\n", err);
                        return CTL_EXIT_ERROR;
                }
        }
        k = ruleset_compile(p, e, &o, &r, err, sizeof(err));
        if (k < 0) {
                fprintf(stderr, "ceredisctl: %s\n", err);
                /* -EINVAL: the policy cannot be compiled; -ENOENT: no such host (usage). */
                return k == -EINVAL ? CTL_EXIT_FAIL : CTL_EXIT_ERROR;
        }
        k = ruleset_format_nft(r, stdout);
        if (k < 0 || fflush(stdout) != 0) {
                fprintf(stderr, "ceredisctl: writing the script: %s\n",
                        strerror(k < 0 ? -k : errno));
                return CTL_EXIT_ERROR;
        }
        return CTL_EXIT_OK;
}
