/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Benchmark of the incremental path the daemon takes on a container event: one service
 * address appears or disappears, the policy is compiled again with the new Endpoints and
 * nft_update() sends only the difference over the agent's persistent netlink socket. It
 * installs the ruleset once (nft_apply), then toggles one address N times and prints, as one
 * JSON object, the time of each step: compile (the daemon's cost per event, outside netlink),
 * the first update, the median and 99th percentile of all updates, and the total for N.
 * Then the container-event fast path on the same ruleset: ruleset_compile_address() once (its
 * time is "delta_compile_us") and nft_update_elements() adding and deleting that delta N times
 * ("elem_*": first, median, p99, total). Then the same with the policy's RulesetIndex (built
 * once, "index_us"; "delta_compile_indexed_us" is one indexed compilation) and, as the daemon
 * would pay it per container event, N events that each compile their delta with the index AND
 * send it, one batch per event, nothing coalesced ("event_*"). Last, a burst of N events for N
 * different addresses (172.30.0.0/16) coalesced the way the daemon's rebuild timer coalesces
 * them: N indexed compilations merged with ruleset_delta_merge() ("burst_compile_ms"), then ONE
 * nft_update_elements() batch adding them all ("burst_add_ms") and one deleting them
 * ("burst_del_ms").
 * It stops early once the updates have taken UPDATE_BUDGET_US in all (a slow update path must
 * not hold a benchmark run for minutes); "updates" says how many ran. Run as root; it enters
 * the given network namespace before opening any socket.
 *
 *   bench-nft-update POLICY ENDPOINTS NETNS SERVICE ADDRESS [N]
 */
#include "ceredis.h"

#include <time.h>

#include "netns.h"
#include "nft.h"
#include "policy.h"
#include "ruleset.h"

#define UPDATE_BUDGET_US 10e6

static double now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

static int load_endpoints(const char *path, Endpoints **ret) {
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        char err[256] = "";
        int r;

        r = endpoints_new(&e);
        if (r < 0)
                return r;
        r = endpoints_load_json(e, path, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "bench-nft-update: %s: %s\n", path, err);
                return r;
        }
        *ret = TAKE_PTR(e);
        return 0;
}

static int compile(const Policy *p, const Endpoints *e, Ruleset **ret) {
        char err[512] = "";
        int r;

        r = ruleset_compile(p, e, &(RulesetOptions) {}, ret, err, sizeof(err));
        if (r < 0)
                fprintf(stderr, "bench-nft-update: compile: %s\n", err);
        return r;
}

int main(int argc, char *argv[]) {
        _cleanup_(policy_freep) Policy *policy = NULL;
        _cleanup_(endpoints_freep) Endpoints *ea = NULL, *eb = NULL;
        _cleanup_(ruleset_freep) Ruleset *ra = NULL, *rb = NULL;
        _cleanup_(nft_closep) Nft *nft = NULL;
        _cleanup_free_ double *lat = NULL;
        PolicyError perr = {};
        NftError nerr = {};
        PolicyCidr addr;
        unsigned long n = 1000, n_max;
        double t0, t_compile, total = 0;
        int r;

        if (argc < 6 || argc > 7) {
                fprintf(stderr, "usage: bench-nft-update POLICY ENDPOINTS NETNS SERVICE ADDRESS [N]\n");
                return 2;
        }
        if (argc == 7)
                n = strtoul(argv[6], NULL, 10);
        if (n < 1 || n > 1000000 || policy_cidr_parse(argv[5], &addr) < 0) {
                fprintf(stderr, "bench-nft-update: bad N or ADDRESS\n");
                return 2;
        }
        n_max = n;
        lat = calloc(n, sizeof(double));
        if (!lat)
                return 2;

        r = policy_load(argv[1], &policy, &perr);
        if (r < 0) {
                fprintf(stderr, "bench-nft-update: %s:%u:%u: %s\n", argv[1], perr.pos.line,
                        perr.pos.column, perr.message);
                return 2;
        }
        if (load_endpoints(argv[2], &ea) < 0 || load_endpoints(argv[2], &eb) < 0)
                return 2;
        r = endpoints_add(eb, argv[4], &addr);
        if (r < 0) {
                fprintf(stderr, "bench-nft-update: endpoints_add: %s\n", strerror(-r));
                return 2;
        }
        if (compile(policy, ea, &ra) < 0)
                return 2;
        t0 = now_us();
        if (compile(policy, eb, &rb) < 0)
                return 2;
        t_compile = now_us() - t0;

        r = netns_enter(argv[3]);
        if (r >= 0)
                r = nft_open(&nft);
        if (r >= 0)
                r = nft_apply(nft, ra, &nerr);
        if (r < 0) {
                fprintf(stderr, "bench-nft-update: install: %s %s\n", strerror(-r), nerr.what);
                return 2;
        }

        /* Toggle: A -> B adds the address's elements, B -> A removes them. */
        for (unsigned long i = 0; i < n; i++) {
                const Ruleset *from = i % 2 ? rb : ra, *to = i % 2 ? ra : rb;

                t0 = now_us();
                r = nft_update(nft, from, to, &nerr);
                lat[i] = now_us() - t0;
                if (r < 0) {
                        fprintf(stderr, "bench-nft-update: update %lu: %s %s\n", i, strerror(-r),
                                nerr.what);
                        return 2;
                }
                total += lat[i];
                if (total > UPDATE_BUDGET_US) {
                        n = i + 1;
                        break;
                }
        }
        double first = lat[0];
        qsort(lat, n, sizeof(double), cmp_double);
        printf("{\"updates\":%lu,\"compile_us\":%.0f,\"first_us\":%.1f,\"median_us\":%.1f,"
               "\"p99_us\":%.1f,\"total_ms\":%.2f,",
               n, t_compile, first, lat[n / 2], lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1],
               total / 1e3);

        /* The fast path: the address's elements alone, added then deleted. */
        {
                _cleanup_(ruleset_freep) Ruleset *delta = NULL;
                char err[512] = "";
                unsigned long m = n_max;

                t0 = now_us();
                r = ruleset_compile_address(policy, ea, &(RulesetOptions) {}, argv[4], &addr,
                                            &delta, err, sizeof(err));
                t_compile = now_us() - t0;
                if (r < 0) {
                        fprintf(stderr, "bench-nft-update: compile_address: %s\n", err);
                        return 2;
                }
                total = 0;
                for (unsigned long i = 0; i < m; i++) {
                        t0 = now_us();
                        r = nft_update_elements(nft, delta, i % 2 == 0, &nerr);
                        lat[i] = now_us() - t0;
                        if (r < 0) {
                                fprintf(stderr, "bench-nft-update: elements %lu: %s %s\n", i,
                                        strerror(-r), nerr.what);
                                return 2;
                        }
                        total += lat[i];
                        if (total > UPDATE_BUDGET_US) {
                                m = i + 1;
                                break;
                        }
                }
                first = lat[0];
                qsort(lat, m, sizeof(double), cmp_double);
                printf("\"elem_updates\":%lu,\"delta_compile_us\":%.0f,\"elem_first_us\":%.1f,"
                       "\"elem_median_us\":%.1f,\"elem_p99_us\":%.1f,\"elem_total_ms\":%.2f,",
                       m, t_compile, first, lat[m / 2],
                       lat[(m * 99) / 100 < m ? (m * 99) / 100 : m - 1], total / 1e3);
        }

        /* Per event with the index: compile the delta, send it. */
        {
                _cleanup_(ruleset_index_freep) RulesetIndex *ix = NULL;
                char err[512] = "";
                unsigned long m = n_max;
                double t_index, t_indexed = 0;
                _cleanup_free_ double *model = calloc(n_max, sizeof(double));
                int verified;

                if (!model)
                        return 2;

                t0 = now_us();
                r = ruleset_index_new(policy, NULL, &ix, err, sizeof(err));
                t_index = now_us() - t0;
                if (r < 0) {
                        fprintf(stderr, "bench-nft-update: index: %s\n", err);
                        return 2;
                }
                total = 0;
                for (unsigned long i = 0; i < m; i++) {
                        _cleanup_(ruleset_freep) Ruleset *delta = NULL;
                        double t1, t2;

                        t0 = now_us();
                        r = ruleset_compile_address(policy, ea, &(RulesetOptions) { .index = ix },
                                                    argv[4], &addr, &delta, err, sizeof(err));
                        t1 = now_us();
                        if (r >= 0)
                                r = nft_update_elements(nft, delta, i % 2 == 0, &nerr);
                        /* What the daemon does next: patch its full ruleset the same way, so
                         * that nft_verify() still compares with what the kernel holds. */
                        t2 = now_us();
                        if (r >= 0)
                                r = ruleset_apply_delta(ra, delta, i % 2 == 0);
                        lat[i] = now_us() - t0;
                        model[i] = lat[i] - (t2 - t0);
                        if (r < 0) {
                                fprintf(stderr, "bench-nft-update: event %lu: %s %s %s\n", i,
                                        strerror(-r), err, nerr.what);
                                return 2;
                        }
                        if (i == 0)
                                t_indexed = t1 - t0;
                        total += lat[i];
                        if (total > UPDATE_BUDGET_US) {
                                m = i + 1;
                                break;
                        }
                }
                first = lat[0];
                qsort(lat, m, sizeof(double), cmp_double);
                qsort(model, m, sizeof(double), cmp_double);
                /* An even number of events: the kernel and the patched model are back at A. */
                verified = m % 2 == 0 ? nft_verify(nft, ra, NULL) : -EAGAIN;
                printf("\"index_us\":%.0f,\"delta_compile_indexed_us\":%.0f,\"event_updates\":%lu,"
                       "\"event_first_us\":%.1f,\"event_median_us\":%.1f,\"event_p99_us\":%.1f,"
                       "\"event_total_ms\":%.2f,\"event_model_median_us\":%.1f,"
                       "\"event_model_verified\":%s,",
                       t_index, t_indexed, m, first, lat[m / 2],
                       lat[(m * 99) / 100 < m ? (m * 99) / 100 : m - 1], total / 1e3,
                       model[m / 2], verified == 0 ? "true" : "false");

                /* The burst: N addresses, one batch. */
                _cleanup_(ruleset_freep) Ruleset *burst = NULL;
                double t_burst, t_add, t_del;
                size_t n_elems = 0;

                t0 = now_us();
                for (unsigned long i = 0; i < n_max; i++) {
                        _cleanup_(ruleset_freep) Ruleset *delta = NULL;
                        PolicyCidr a = { .family = AF_INET, .prefix = 32 };

                        a.addr.bytes[0] = 172;
                        a.addr.bytes[1] = 30;
                        a.addr.bytes[2] = (uint8_t) (i / 250);
                        a.addr.bytes[3] = (uint8_t) (i % 250 + 1);
                        r = ruleset_compile_address(policy, ea, &(RulesetOptions) { .index = ix },
                                                    argv[4], &a, &delta, err, sizeof(err));
                        if (r >= 0 && burst)
                                r = ruleset_delta_merge(burst, delta);
                        else if (r >= 0)
                                burst = TAKE_PTR(delta);
                        if (r < 0) {
                                fprintf(stderr, "bench-nft-update: burst %lu: %s %s\n", i,
                                        strerror(-r), err);
                                return 2;
                        }
                }
                t_burst = now_us() - t0;
                for (size_t i = 0; i < burst->n_sets; i++)
                        n_elems += burst->sets[i].n_elems;
                t0 = now_us();
                r = nft_update_elements(nft, burst, true, &nerr);
                t_add = now_us() - t0;
                if (r >= 0) {
                        t0 = now_us();
                        r = nft_update_elements(nft, burst, false, &nerr);
                        t_del = now_us() - t0;
                }
                if (r < 0) {
                        fprintf(stderr, "bench-nft-update: burst batch: %s %s\n", strerror(-r),
                                nerr.what);
                        return 2;
                }
                printf("\"burst_events\":%lu,\"burst_elements\":%zu,\"burst_compile_ms\":%.2f,"
                       "\"burst_add_ms\":%.2f,\"burst_del_ms\":%.2f}\n",
                       n_max, n_elems, t_burst / 1e3, t_add / 1e3, t_del / 1e3);
        }
        return 0;
}
