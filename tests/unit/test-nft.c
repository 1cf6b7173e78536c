/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nft_apply / nft_verify / nft_update / nft_disable against the real kernel, inside a network
 * namespace this test creates (`ip netns add`) and always deletes (group teardown and atexit).
 * Needs root; skipped otherwise. `nft` is only used inside that namespace, to look at and to
 * tamper with what the agent installed.
 */
#include "ceredis.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/wait.h>

#include "netns.h"
#include "nft.h"
#include "policy.h"
#include "ruleset.h"

static char ns[64];
static bool ns_made;
static Policy *policy;
static Endpoints *endpoints;

static void ns_delete(void) {
        char cmd[128];

        if (!ns_made)
                return;
        snprintf(cmd, sizeof(cmd), "ip netns del %s", ns);
        if (system(cmd) == 0)
                ns_made = false;
}

/* Run `nft ARGS` inside the namespace; its stdout in *ret (may be NULL). Returns the exit code. */
static int nft_in_ns(char **ret, const char *fmt, ...) _printf_(2, 3);

static int nft_in_ns(char **ret, const char *fmt, ...) {
        char args[2048], cmd[2300];
        _cleanup_free_ char *out = NULL;
        size_t len = 0, cap = 0;
        char buf[4096];
        va_list ap;
        FILE *p;
        int status;

        va_start(ap, fmt);
        vsnprintf(args, sizeof(args), fmt, ap);
        va_end(ap);
        snprintf(cmd, sizeof(cmd), "ip netns exec %s %s %s 2>&1", ns, NFT_BIN, args);
        p = popen(cmd, "r");
        assert_non_null(p);
        for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) {
                if (len + n + 1 > cap) {
                        cap = (len + n + 1) * 2;
                        out = realloc(out, cap);
                        assert_non_null(out);
                }
                memcpy(out + len, buf, n);
                len += n;
        }
        status = pclose(p);
        if (!out)
                out = strdup("");
        else
                out[len] = 0;
        if (status != 0)
                print_error("%s: %s\n", args, out);
        if (ret)
                *ret = TAKE_PTR(out);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* nft_apply, and on failure say which object the kernel refused. */
static int apply(Nft *n, const Ruleset *r) {
        NftError e = {};
        int k = nft_apply(n, r, &e);

        if (k < 0)
                print_error("nft_apply: %s: %s (policy line %u)\n", e.what, strerror(-e.error),
                            e.pos.line);
        return k;
}

/* nft_verify, printing the difference it found. */
static int verify(Nft *n, const Ruleset *r) {
        _cleanup_free_ char *diff = NULL;
        int k = nft_verify(n, r, &diff);

        if (k != 0)
                print_error("nft_verify: %d: %s\n", k, diff ? diff : "");
        return k;
}

static Ruleset *compile(const Endpoints *e) {
        Ruleset *r = NULL;
        char err[512] = "";

        assert_int_equal(ruleset_compile(policy, e, NULL, &r, err, sizeof(err)), 0);
        return r;
}

static int setup(void **state) {
        PolicyError perr;
        char cmd[128], err[256];

        if (geteuid() != 0)
                return 0;
        snprintf(ns, sizeof(ns), "ceredis-h2-nft-%d", (int) getpid());
        snprintf(cmd, sizeof(cmd), "ip netns add %s", ns);
        if (system(cmd) != 0)
                return -1;
        ns_made = true;
        atexit(ns_delete);
        if (netns_enter(ns) < 0)
                return -1;
        if (policy_load(SRCDIR "/policies/ceredis.yaml", &policy, &perr) < 0)
                return -1;
        if (endpoints_new(&endpoints) < 0 ||
            endpoints_load_json(endpoints, SRCDIR "/tests/ruleset/endpoints-ceredis.json", err,
                                sizeof(err)) < 0)
                return -1;
        return 0;
}

static int teardown(void **state) {
        ns_delete();
        policy_free(policy);
        endpoints_free(endpoints);
        return 0;
}

#define SKIP_UNLESS_ROOT()                                                                     \
        do {                                                                                   \
                if (geteuid() != 0)                                                            \
                        skip();                                                                \
        } while (0)

static void test_apply_and_verify(void **state) {
        _cleanup_(ruleset_freep) Ruleset *r = NULL;
        _cleanup_(nft_closep) Nft *n = NULL;
        _cleanup_free_ char *list = NULL, *diff = NULL;

        SKIP_UNLESS_ROOT();
        r = compile(endpoints);
        assert_int_equal(nft_open(&n), 0);
        assert_int_equal(apply(n, r), 0);
        assert_int_equal(nft_in_ns(&list, "list table inet ceredis"), 0);
        /* The kernel holds what the policy says, as nft reads it back. */
        assert_non_null(strstr(list, "172.19.0.11 . 172.19.0.12 . tcp . 5432"));
        assert_non_null(strstr(list, "198.51.100.0/28 . tcp . 22"));
        assert_non_null(strstr(list, "chain forbid_0"));
        assert_non_null(strstr(list, "log prefix \"ceredis:NET-1 \" group 4242 queue-threshold 1 drop"));
        assert_non_null(strstr(list, "iifname @public_ifaces jump input_public"));
        assert_non_null(strstr(list, "type filter hook forward priority filter - 10; policy accept;"));
        assert_int_equal(verify(n, r), 0);
        /* Applying again replaces the table: still equal, nothing doubled. */
        assert_int_equal(apply(n, r), 0);
        assert_int_equal(verify(n, r), 0);
}

static void test_tamper_detected(void **state) {
        _cleanup_(ruleset_freep) Ruleset *r = NULL;
        _cleanup_(nft_closep) Nft *n = NULL;

        SKIP_UNLESS_ROOT();
        r = compile(endpoints);
        assert_int_equal(nft_open(&n), 0);
        assert_int_equal(apply(n, r), 0);

        {
                _cleanup_free_ char *diff = NULL;
                assert_int_equal(nft_in_ns(NULL, "add element inet ceredis allow4 "
                                                 "'{ 192.0.2.1 . 192.0.2.2 . tcp . 1 }'"),
                                 0);
                assert_int_equal(nft_verify(n, r, &diff), 1);
                assert_non_null(diff);
                assert_non_null(strstr(diff, "set allow4: unexpected element 192.0.2.1 . 192.0.2.2 . tcp . 1"));
        }
        assert_int_equal(apply(n, r), 0);
        {
                _cleanup_free_ char *diff = NULL;
                assert_int_equal(nft_in_ns(NULL, "delete element inet ceredis public4 "
                                                 "'{ 172.18.0.2 . tcp . 443 }'"),
                                 0);
                assert_int_equal(nft_verify(n, r, &diff), 1);
                assert_non_null(strstr(diff, "set public4: element 172.18.0.2 . tcp . 443 is missing"));
        }
        assert_int_equal(apply(n, r), 0);
        {
                /* A store's address taken out of NET-1's set: NET-2 would still drop it, but
                 * logged under the wrong id; the set is what the policy says or it is drift. */
                _cleanup_free_ char *diff = NULL;
                assert_int_equal(nft_in_ns(NULL, "delete element inet ceredis forbid_0_inet4 "
                                                 "'{ 172.19.0.12 }'"),
                                 0);
                assert_int_equal(nft_verify(n, r, &diff), 1);
                assert_non_null(strstr(diff, "set forbid_0_inet4: element 172.19.0.12 is missing"));
        }
        assert_int_equal(apply(n, r), 0);
        {
                _cleanup_free_ char *diff = NULL;
                assert_int_equal(nft_in_ns(NULL, "flush chain inet ceredis forward"), 0);
                assert_int_equal(nft_verify(n, r, &diff), 1);
                assert_non_null(strstr(diff, "chain forward: rule 1 is missing"));
        }
        {
                _cleanup_free_ char *diff = NULL;
                assert_int_equal(nft_in_ns(NULL, "delete table inet ceredis"), 0);
                assert_int_equal(nft_verify(n, r, &diff), 1);
                assert_string_equal(diff, "table inet ceredis is missing");
        }
}

static void test_refused_batch_changes_nothing(void **state) {
        _cleanup_(ruleset_freep) Ruleset *good = NULL, *bad = NULL;
        _cleanup_(nft_closep) Nft *n = NULL;
        _cleanup_free_ char *before = NULL, *after = NULL;
        NftError e = {};
        ssize_t api;

        SKIP_UNLESS_ROOT();
        good = compile(endpoints);
        assert_int_equal(nft_open(&n), 0);
        assert_int_equal(apply(n, good), 0);
        assert_int_equal(nft_in_ns(&before, "list table inet ceredis"), 0);

        bad = compile(endpoints);
        assert_int_equal(ruleset_test_corrupt_element(bad, "allow4"), 0);
        assert_true(nft_apply(n, bad, &e) < 0);
        assert_true(e.error < 0);
        /* The error names the policy entry: the first flow whose elements are in allow4. */
        api = policy_find_service(policy, "proxy");
        assert_true(api >= 0);
        assert_non_null(strstr(e.what, "elements of set allow4 from flows["));
        assert_true(e.pos.line > 0);
        {
                bool found = false;
                for (size_t i = 0; i < policy->n_flows; i++)
                        found |= policy->flows[i].pos.line == e.pos.line;
                assert_true(found);
        }
        assert_int_equal(nft_in_ns(&after, "list table inet ceredis"), 0);
        assert_string_equal(before, after);
        assert_int_equal(verify(n, good), 0);
}

static void test_foreign_tables_untouched(void **state) {
        _cleanup_(ruleset_freep) Ruleset *r = NULL;
        _cleanup_(nft_closep) Nft *n = NULL;
        _cleanup_free_ char *before = NULL, *after = NULL, *gone = NULL;

        SKIP_UNLESS_ROOT();
        assert_int_equal(nft_open(&n), 0);
        assert_int_equal(nft_disable(n), 0);
        {
                static const char docker[] =
                        "table ip nat {\n"
                        " chain DOCKER { }\n"
                        " chain PREROUTING { type nat hook prerouting priority dstnat; policy accept;\n"
                        "  fib daddr type local counter jump DOCKER\n }\n"
                        "}\n"
                        "table ip filter {\n"
                        " chain FORWARD { type filter hook forward priority filter; policy drop;\n"
                        "  ct state established,related accept\n }\n"
                        "}\n";
                char path[] = "/tmp/ceredis-h2-docker-XXXXXX";
                int fd = mkstemp(path);
                assert_true(fd >= 0);
                assert_int_equal(write(fd, docker, sizeof(docker) - 1), (ssize_t) sizeof(docker) - 1);
                close(fd);
                assert_int_equal(nft_in_ns(NULL, "-f %s", path), 0);
                unlink(path);
        }
        assert_int_equal(nft_in_ns(&before, "list tables; %s list table ip nat; %s list table ip filter",
                                   NFT_BIN, NFT_BIN), 0);
        r = compile(endpoints);
        assert_int_equal(apply(n, r), 0);
        assert_int_equal(nft_disable(n), 0);
        assert_int_equal(nft_disable(n), 0); /* absent: still fine */
        assert_int_equal(nft_in_ns(&after, "list tables; %s list table ip nat; %s list table ip filter",
                                   NFT_BIN, NFT_BIN), 0);
        assert_string_equal(before, after);
        assert_true(nft_in_ns(&gone, "list table inet ceredis") != 0);
        assert_int_equal(nft_in_ns(NULL, "delete table ip nat"), 0);
        assert_int_equal(nft_in_ns(NULL, "delete table ip filter"), 0);
}

static void test_incremental_update(void **state) {
        _cleanup_(ruleset_freep) Ruleset *r1 = NULL, *r2 = NULL, *r3 = NULL;
        _cleanup_(endpoints_freep) Endpoints *more = NULL;
        _cleanup_(nft_closep) Nft *n = NULL;
        _cleanup_free_ char *diff = NULL, *list = NULL;
        char err[256];
        PolicyCidr c;
        NftError e = {};

        SKIP_UNLESS_ROOT();
        r1 = compile(endpoints);
        assert_int_equal(endpoints_new(&more), 0);
        assert_int_equal(endpoints_load_json(more, SRCDIR "/tests/ruleset/endpoints-ceredis.json",
                                             err, sizeof(err)),
                         0);
        /* A second postgres container starts. */
        assert_int_equal(policy_cidr_parse("172.19.0.42", &c), 0);
        assert_int_equal(endpoints_add(more, "postgres", &c), 0);
        r2 = compile(more);
        assert_int_equal(nft_open(&n), 0);
        assert_int_equal(apply(n, r1), 0);
        assert_int_equal(nft_verify(n, r2, &diff), 1);
        assert_int_equal(nft_update(n, r1, r2, &e), 0);
        free(TAKE_PTR(diff));
        assert_int_equal(verify(n, r2), 0);
        assert_int_equal(nft_in_ns(&list, "list set inet ceredis allow4"), 0);
        assert_non_null(strstr(list, "172.19.0.11 . 172.19.0.42 . tcp . 5432"));
        /* And stops again. */
        r3 = compile(endpoints);
        assert_int_equal(nft_update(n, r2, r3, &e), 0);
        assert_int_equal(verify(n, r3), 0);
}

/* The container-event fast path: only the new address's elements, then only them removed. */
static void test_update_elements(void **state) {
        _cleanup_(ruleset_freep) Ruleset *r1 = NULL, *r2 = NULL, *delta = NULL;
        _cleanup_(endpoints_freep) Endpoints *more = NULL;
        _cleanup_(nft_closep) Nft *n = NULL;
        _cleanup_free_ char *list = NULL;
        char err[256];
        PolicyCidr c;
        NftError e = {};

        SKIP_UNLESS_ROOT();
        assert_int_equal(policy_cidr_parse("172.19.0.42", &c), 0);
        assert_int_equal(endpoints_new(&more), 0);
        assert_int_equal(endpoints_load_json(more, SRCDIR "/tests/ruleset/endpoints-ceredis.json",
                                             err, sizeof(err)),
                         0);
        assert_int_equal(endpoints_add(more, "postgres", &c), 0);
        r1 = compile(endpoints);
        r2 = compile(more);
        assert_int_equal(ruleset_compile_address(policy, endpoints, NULL, "postgres", &c, &delta,
                                                 err, sizeof(err)),
                         0);
        assert_int_equal(nft_open(&n), 0);
        assert_int_equal(apply(n, r1), 0);
        assert_int_equal(nft_update_elements(n, delta, true, &e), 0);
        assert_int_equal(verify(n, r2), 0);
        assert_int_equal(nft_in_ns(&list, "list table inet ceredis"), 0);
        assert_non_null(strstr(list, "172.19.0.11 . 172.19.0.42 . tcp . 5432"));
        /* NET-1 protects the new store address from the Internet at once. */
        free(TAKE_PTR(list));
        assert_int_equal(nft_in_ns(&list, "list set inet ceredis forbid_0_inet4"), 0);
        assert_non_null(strstr(list, "172.19.0.42"));
        assert_int_equal(nft_update_elements(n, delta, false, &e), 0);
        assert_int_equal(verify(n, r1), 0);
        /* Deleting what is not there: refused as a whole, nothing changes. */
        assert_true(nft_update_elements(n, delta, false, &e) < 0);
        assert_int_equal(e.error, -ENOENT);
        assert_non_null(strstr(e.what, "elements of set"));
        assert_int_equal(verify(n, r1), 0);
}

/* Containment: elements added at run time with a timeout; verify does not call them drift. */
static void test_contain(void **state) {
        _cleanup_(ruleset_freep) Ruleset *r = NULL;
        _cleanup_(nft_closep) Nft *n = NULL;
        _cleanup_free_ char *list = NULL, *list6 = NULL, *fwd = NULL;
        struct in_addr s4, d4;
        struct in6_addr s6, d6;

        SKIP_UNLESS_ROOT();
        assert_int_equal(inet_pton(AF_INET, "172.19.0.17", &s4), 1);
        assert_int_equal(inet_pton(AF_INET, "172.19.0.12", &d4), 1);
        assert_int_equal(inet_pton(AF_INET6, "fd00:19::17", &s6), 1);
        assert_int_equal(inet_pton(AF_INET6, "fd00:19::12", &d6), 1);
        r = compile(endpoints);
        assert_int_equal(nft_open(&n), 0);
        assert_int_equal(apply(n, r), 0);
        assert_int_equal(nft_contain(n, AF_INET, &s4, &d4, IPPROTO_TCP, 5432, 120), 0);
        assert_int_equal(nft_contain(n, AF_INET, &s4, &d4, IPPROTO_TCP, 5432, 120), 0); /* again */
        assert_int_equal(nft_contain(n, AF_INET6, &s6, &d6, IPPROTO_UDP, 53, 3600), 0);
        assert_int_equal(nft_in_ns(&list, "list set inet ceredis contain4"), 0);
        assert_non_null(strstr(list, "flags timeout"));
        assert_non_null(strstr(list, "172.19.0.17 . 172.19.0.12 . tcp . 5432 timeout 2m expires"));
        assert_int_equal(nft_in_ns(&list6, "list set inet ceredis contain6"), 0);
        assert_non_null(strstr(list6, "fd00:19::17 . fd00:19::12 . udp . 53 timeout 1h expires"));
        assert_int_equal(nft_in_ns(&fwd, "list chain inet ceredis forward"), 0);
        assert_non_null(strstr(fwd, "ip saddr . ip daddr . meta l4proto . th dport @contain4 "
                                    "jump contain"));
        assert_non_null(strstr(fwd, "ip daddr . ip saddr . meta l4proto . th sport @contain4 "
                                    "jump contain"));
        /* Run-time state, not drift. */
        assert_int_equal(verify(n, r), 0);
        assert_int_equal(nft_contain(n, AF_INET, &s4, &d4, IPPROTO_TCP, 5432, 0), -EINVAL);
        assert_int_equal(nft_contain(n, AF_UNIX, &s4, &d4, IPPROTO_TCP, 5432, 10), -EINVAL);
        /* Without the table: the kernel refuses, nothing is created. */
        assert_int_equal(nft_disable(n), 0);
        assert_int_equal(nft_contain(n, AF_INET, &s4, &d4, IPPROTO_TCP, 5432, 10), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_apply_and_verify),
                cmocka_unit_test(test_tamper_detected),
                cmocka_unit_test(test_refused_batch_changes_nothing),
                cmocka_unit_test(test_foreign_tables_untouched),
                cmocka_unit_test(test_incremental_update),
                cmocka_unit_test(test_update_elements),
                cmocka_unit_test(test_contain),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
