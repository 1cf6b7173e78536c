/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pure compiler: set contents for the reference policy and for a variant with other
 * names, ports and interfaces; audit vs enforce verdicts; first-forbid-wins; peer-host address
 * aliasing in the multi-VPS policy; errors. The printed script is checked with `nft -c` inside
 * a throwaway network namespace (root only; deleted on every path).
 */
#include "ceredis.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "policy.h"
#include "ruleset.h"

static const char variant_yaml[] =
        "version: 1\n"
        "mode: audit\n"
        "hosts:\n"
        "  edge-a:\n"
        "    public_interfaces: [ens3, ens4]\n"
        "    management:\n"
        "      - { port: 2222, proto: tcp, from: [198.51.100.64/26, 2001:db8:ff::/48] }\n"
        "zones:\n"
        "  outside: { public: true }\n"
        "  vault: { public: false }\n"
        "services:\n"
        "  gate:\n"
        "    zone: outside\n"
        "    host: edge-a\n"
        "    match: { container_name: gate-1 }\n"
        "    ports: [ { port: 8443, proto: tcp, public: true }, { port: 5353, proto: udp } ]\n"
        "  ledger:\n"
        "    zone: vault\n"
        "    host: edge-a\n"
        "    match: { image: \"acme/ledger\" }\n"
        "    ports: [7000]\n"
        "    tags: [secret]\n"
        "  archive:\n"
        "    zone: vault\n"
        "    host: edge-a\n"
        "    match: { cidr: 10.77.0.0/24 }\n"
        "    ports: [9000]\n"
        "    tags: [secret]\n"
        "flows:\n"
        "  - { from: internet, to: gate, port: 8443 }\n"
        "  - { from: gate, to: ledger, port: 7000 }\n"
        "  - { from: ledger, to: archive }\n"
        "forbid:\n"
        "  - { id: X-FIRST, from: internet, to: ledger, severity: high, why: a }\n"
        "  - { id: X-SECOND, from: internet, to: { tag: secret }, severity: low, why: b }\n"
        "  - { id: X-WRITE, from: gate, to: archive, access: write, severity: low, why: c }\n";

static int cmp_strp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static Policy *load(const char *path) {
        Policy *p = NULL;
        PolicyError e = {};
        char buf[700];

        if (policy_load(path, &p, &e) < 0) {
                policy_error_format(path, &e, buf, sizeof(buf));
                fail_msg("%s", buf);
        }
        return p;
}

static Policy *parse(const char *yaml) {
        Policy *p = NULL;
        PolicyError e = {};
        char buf[700];

        if (policy_parse("variant.yaml", yaml, strlen(yaml), &p, &e) < 0) {
                policy_error_format("variant.yaml", &e, buf, sizeof(buf));
                fail_msg("%s", buf);
        }
        return p;
}

static void add(Endpoints *e, const char *service, const char *addr) {
        PolicyCidr c;

        assert_int_equal(policy_cidr_parse(addr, &c), 0);
        assert_int_equal(endpoints_add(e, service, &c), 0);
}

static Ruleset *compile(const Policy *p, const Endpoints *e, const char *host) {
        RulesetOptions o = { .host = host };
        Ruleset *r = NULL;
        char err[512] = "";
        int k = ruleset_compile(p, e, &o, &r, err, sizeof(err));

        if (k < 0)
                fail_msg("ruleset_compile: %s", err);
        return r;
}

/* Does set `name` hold the element that nft would print as `text`? */
static bool has(const Ruleset *r, const char *name, const char *text) {
        const RulesetSet *s = ruleset_find_set(r, name);
        char buf[256];

        assert_non_null(s);
        for (size_t i = 0; i < s->n_elems; i++) {
                assert_int_equal(ruleset_format_elem(r, s, &s->elems[i], buf, sizeof(buf)), 0);
                if (streq(buf, text))
                        return true;
        }
        return false;
}

static size_t count(const Ruleset *r, const char *name) {
        const RulesetSet *s = ruleset_find_set(r, name);
        assert_non_null(s);
        return s->n_elems;
}

/* The verdict of the one rule of chain `name`, which logs. */
static RulesetVerdict log_verdict(const Ruleset *r, const char *chain, char *prefix, size_t size) {
        for (size_t i = 0; i < r->n_rules; i++)
                if (streq(r->chains[r->rules[i].chain].name, chain)) {
                        assert_int_equal(r->rules[i].stmts[0].kind, RULESET_STMT_LOG);
                        snprintf(prefix, size, "%s", r->rules[i].log_prefix);
                        return r->rules[i].verdict;
                }
        fail_msg("no rule in chain %s", chain);
        return RULESET_VERDICT_NONE;
}

/* Position in chain `chain` of the rule that looks up set `set` (SIZE_MAX: none). */
static size_t rule_of_set(const Ruleset *r, const char *chain, const char *set) {
        size_t nth = 0;

        for (size_t i = 0; i < r->n_rules; i++) {
                const RulesetRule *rule = &r->rules[i];

                if (!streq(r->chains[rule->chain].name, chain))
                        continue;
                for (size_t j = 0; j < rule->n_stmts; j++)
                        if (rule->stmts[j].kind == RULESET_STMT_LOOKUP &&
                            streq(r->sets[rule->stmts[j].set].name, set))
                                return nth;
                nth++;
        }
        return SIZE_MAX;
}

/* The rule looking up `set` in `chain` jumps to chain `target`. */
static bool jumps(const Ruleset *r, const char *chain, const char *set, const char *target) {
        size_t nth = rule_of_set(r, chain, set), n = 0;

        for (size_t i = 0; i < r->n_rules && nth != SIZE_MAX; i++)
                if (streq(r->chains[r->rules[i].chain].name, chain) && n++ == nth)
                        return r->rules[i].verdict == RULESET_VERDICT_JUMP &&
                               streq(r->chains[r->rules[i].target].name, target);
        return false;
}

static Endpoints *reference_endpoints(void) {
        Endpoints *e = NULL;
        char err[256];

        assert_int_equal(endpoints_new(&e), 0);
        assert_int_equal(endpoints_load_json(e, SRCDIR "/tests/ruleset/endpoints-ceredis.json",
                                             err, sizeof(err)),
                         0);
        return e;
}

static void test_reference(void **state) {
        _cleanup_(policy_freep) Policy *p = load(SRCDIR "/policies/ceredis.yaml");
        _cleanup_(endpoints_freep) Endpoints *e = reference_endpoints();
        _cleanup_(ruleset_freep) Ruleset *r = compile(p, e, NULL);
        char prefix[128];

        assert_true(has(r, "public_ifaces", "\"eth0\""));
        assert_true(has(r, "mgmt4", "198.51.100.0/28 . tcp . 22"));
        assert_int_equal(count(r, "mgmt6"), 0);
        assert_true(has(r, "host_public", "tcp . 443"));
        assert_true(has(r, "host_public", "tcp . 80"));
        assert_int_equal(count(r, "host_public"), 2);
        assert_true(has(r, "public4", "172.18.0.2 . tcp . 443"));
        assert_true(has(r, "public6", "fd00:18::2 . tcp . 443"));
        /* The API is in the DMZ but not public: not reachable from outside. */
        assert_false(has(r, "public4", "172.18.0.4 . tcp . 8080"));
        assert_true(has(r, "allow4", "172.18.0.4 . 172.19.0.11 . tcp . 8080"));
        assert_true(has(r, "allow4", "172.19.0.11 . 172.19.0.12 . tcp . 5432"));
        assert_true(has(r, "allow6", "fd00:19::11 . fd00:19::12 . tcp . 5432"));
        /* No flow api -> postgres, none ollama -> cass: default deny. */
        assert_false(has(r, "allow4", "172.18.0.4 . 172.19.0.12 . tcp . 5432"));
        assert_false(has(r, "allow4", "172.19.0.17 . 172.19.0.11 . tcp . 8080"));
        assert_true(has(r, "from_host4", "172.19.0.14 . tcp . 3000"));
        /* Every private container is a default-deny target: single addresses go to the exact
         * (hash) set, never merged into ranges; the interval twins stay empty. */
        for (unsigned i = 10; i <= 17; i++) {
                char a[32];
                snprintf(a, sizeof(a), "172.19.0.%u", i);
                assert_true(has(r, "private4", a));
        }
        assert_int_equal(count(r, "private4"), 8);
        assert_false(has(r, "private4", "172.18.0.2"));
        assert_int_equal(count(r, "private_net4"), 0);
        assert_int_equal(count(r, "forbid_0_inet_net4"), 0);
        assert_int_equal(count(r, "public_net4"), 0);
        /* Stores: NET-1 (first in file) wins over NET-2 for the same address: both hold it,
         * NET-1's rules come first. */
        assert_true(has(r, "forbid_0_inet4", "172.19.0.12"));
        assert_true(has(r, "forbid_1_inet4", "172.19.0.12"));
        assert_true(rule_of_set(r, "forward_public", "forbid_0_inet6") <
                    rule_of_set(r, "forward_public", "forbid_1_inet4"));
        assert_true(jumps(r, "forward_public", "forbid_0_inet4", "forbid_0"));
        assert_true(jumps(r, "forward_public", "forbid_1_inet_net6", "forbid_1"));
        assert_true(jumps(r, "forward", "forbid_2_pair4", "forbid_2"));
        /* A forbid has only the sets its `from` can fill. */
        assert_null(ruleset_find_set(r, "forbid_0_pair4"));
        assert_null(ruleset_find_set(r, "forbid_2_inet4"));
        assert_int_equal(rule_of_set(r, "forward", "forbid_0_inet4"), SIZE_MAX);
        assert_true(has(r, "forbid_1_inet4", "172.19.0.14"));
        assert_true(has(r, "forbid_1_inet4", "172.19.0.17"));
        assert_true(has(r, "forbid_2_pair4", "172.19.0.16 . 172.19.0.12"));
        assert_true(has(r, "forbid_3_pair4", "172.19.0.17 . 172.19.0.11"));
        assert_true(has(r, "forbid_4_pair4", "172.19.0.11 . 172.19.0.17"));
        /* AI-2 is `access: write`: the L7 watcher's job, no chain. */
        for (size_t i = 0; i < r->n_chains; i++)
                assert_false(streq(r->chains[i].name, "forbid_5"));
        assert_int_equal(log_verdict(r, "forbid_2", prefix, sizeof(prefix)), RULESET_VERDICT_DROP);
        assert_string_equal(prefix, "ceredis:DATA-1 ");
        assert_int_equal(log_verdict(r, "deny", prefix, sizeof(prefix)), RULESET_VERDICT_DROP);
        assert_string_equal(prefix, "ceredis:DEFAULT-DENY ");
        assert_int_equal(r->nflog_group, RULESET_NFLOG_GROUP_DEFAULT);
}

static void test_variant(void **state) {
        _cleanup_(policy_freep) Policy *p = parse(variant_yaml);
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        _cleanup_(ruleset_freep) Ruleset *r = NULL;
        RulesetOptions o = { .nflog_group = 77 };
        char prefix[128], err[256];
        const RulesetSet *fi;

        assert_int_equal(endpoints_new(&e), 0);
        add(e, "gate", "172.30.0.2");
        add(e, "ledger", "172.31.0.5");
        add(e, "ledger", "fd00:31::5");
        assert_int_equal(ruleset_compile(p, e, &o, &r, err, sizeof(err)), 0);

        assert_true(has(r, "public_ifaces", "\"ens3\""));
        assert_true(has(r, "public_ifaces", "\"ens4\""));
        assert_true(has(r, "mgmt4", "198.51.100.64/26 . tcp . 2222"));
        assert_true(has(r, "mgmt6", "2001:db8:ff::/48 . tcp . 2222"));
        assert_true(has(r, "host_public", "tcp . 8443"));
        assert_int_equal(count(r, "host_public"), 1);
        assert_true(has(r, "public4", "172.30.0.2 . tcp . 8443"));
        assert_true(has(r, "allow4", "172.30.0.2 . 172.31.0.5 . tcp . 7000"));
        /* A cidr-matched service is a network: its flows go to the interval set. */
        assert_true(has(r, "allow_net4", "172.31.0.5 . 10.77.0.0/24 . tcp . 9000"));
        /* Networks go to the `_net` interval twins, addresses to the exact sets. */
        assert_true(has(r, "private_net4", "10.77.0.0/24"));
        assert_false(has(r, "private4", "10.77.0.0/24"));
        assert_true(has(r, "private6", "fd00:31::5"));
        /* Same key from two forbids: the first in file order wins. */
        assert_true(has(r, "forbid_0_inet4", "172.31.0.5"));
        assert_true(has(r, "forbid_1_inet4", "172.31.0.5"));
        assert_true(has(r, "forbid_1_inet_net4", "10.77.0.0/24"));
        fi = ruleset_find_set(r, "forbid_0_inet4");
        assert_int_equal(fi->n_elems, 1);
        assert_int_equal(count(r, "forbid_1_inet_net4"), 1);
        assert_int_equal(count(r, "forbid_0_inet_net4"), 0);
        assert_true(rule_of_set(r, "forward_public", "forbid_0_inet_net6") <
                    rule_of_set(r, "forward_public", "forbid_1_inet4"));
        /* Audit: the same classification, logged and accepted. */
        assert_int_equal(log_verdict(r, "forbid_0", prefix, sizeof(prefix)),
                         RULESET_VERDICT_ACCEPT);
        assert_string_equal(prefix, "ceredis:X-FIRST ");
        assert_int_equal(log_verdict(r, "deny", prefix, sizeof(prefix)), RULESET_VERDICT_ACCEPT);
        assert_int_equal(r->nflog_group, 77);
        for (size_t i = 0; i < r->n_chains; i++)
                assert_false(streq(r->chains[i].name, "forbid_2")); /* access: write */
}

static void test_forbid_overlap_first_wins(void **state) {
        _cleanup_(policy_freep) Policy *p = parse(variant_yaml);
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        _cleanup_(ruleset_freep) Ruleset *r = NULL;

        /* ledger's address inside archive's network: X-FIRST (ledger) and X-SECOND (ledger
         * and archive) both hold what they name, the network stays whole; X-FIRST's rules
         * come first, so it decides for the address. */
        assert_int_equal(endpoints_new(&e), 0);
        add(e, "ledger", "10.77.0.9");
        r = compile(p, e, NULL);
        assert_true(has(r, "forbid_0_inet4", "10.77.0.9"));
        assert_int_equal(count(r, "forbid_0_inet4"), 1);
        assert_true(has(r, "forbid_1_inet_net4", "10.77.0.0/24"));
        assert_int_equal(count(r, "forbid_1_inet_net4"), 1);
        assert_true(has(r, "forbid_1_inet4", "10.77.0.9"));
        assert_true(rule_of_set(r, "forward_public", "forbid_0_inet4") <
                    rule_of_set(r, "forward_public", "forbid_1_inet_net4"));
}

/* The other way round: an earlier forbid names a network, a later one an address inside it.
 * The exact map is looked up first, so its element must carry the earlier forbid's verdict. */
static const char net_first_yaml[] =
        "version: 1\n"
        "mode: enforce\n"
        "hosts:\n"
        "  h: { public_interfaces: [eth0] }\n"
        "zones:\n"
        "  dmz: { public: true }\n"
        "  private: { public: false }\n"
        "services:\n"
        "  lan: { zone: private, host: h, match: { cidr: 10.77.0.0/24 }, ports: [9000] }\n"
        "  db: { zone: private, host: h, match: { compose_service: db }, ports: [5432] }\n"
        "  ai: { zone: private, host: h, match: { compose_service: ai }, ports: [11434] }\n"
        "forbid:\n"
        "  - { id: NET-A, from: internet, to: lan, severity: high, why: a }\n"
        "  - { id: NET-B, from: internet, to: db, severity: low, why: b }\n"
        "  - { id: AI-A, from: ai, to: lan, severity: high, why: c }\n"
        "  - { id: AI-B, from: ai, to: db, severity: low, why: d }\n";

static void test_forbid_net_first_wins(void **state) {
        _cleanup_(policy_freep) Policy *p = parse(net_first_yaml);
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        _cleanup_(ruleset_freep) Ruleset *r = NULL;

        assert_int_equal(endpoints_new(&e), 0);
        add(e, "db", "10.77.0.9");   /* inside lan */
        add(e, "db", "172.20.0.5");  /* outside */
        add(e, "ai", "172.20.0.6");
        r = compile(p, e, NULL);
        /* Internet -> 10.77.0.9: NET-A (forbid_0) comes first in the file and covers it with
         * its network, so its rules, looked up first, decide; NET-B holds the address too. */
        assert_true(has(r, "forbid_0_inet_net4", "10.77.0.0/24"));
        assert_int_equal(count(r, "forbid_0_inet4"), 0);
        assert_true(has(r, "forbid_1_inet4", "10.77.0.9"));
        assert_true(has(r, "forbid_1_inet4", "172.20.0.5"));
        assert_true(rule_of_set(r, "forward_public", "forbid_0_inet_net6") <
                    rule_of_set(r, "forward_public", "forbid_1_inet4"));
        /* Two fields: ai -> 10.77.0.9 is covered by AI-A's ai -> 10.77.0.0/24. */
        assert_true(has(r, "forbid_2_pair_net4", "172.20.0.6 . 10.77.0.0/24"));
        assert_int_equal(count(r, "forbid_2_pair4"), 0);
        assert_true(has(r, "forbid_3_pair4", "172.20.0.6 . 10.77.0.9"));
        assert_true(has(r, "forbid_3_pair4", "172.20.0.6 . 172.20.0.5"));
        assert_int_equal(count(r, "forbid_3_pair4"), 2);
        assert_true(rule_of_set(r, "forward", "forbid_2_pair_net4") <
                    rule_of_set(r, "forward", "forbid_3_pair4"));
        /* The error origin of every element is its own forbid's entry. */
        {
                const RulesetSet *s = ruleset_find_set(r, "forbid_1_inet4");
                for (size_t i = 0; i < s->n_elems; i++)
                        assert_string_equal(r->origins[s->elems[i].origin].what,
                                            "forbid[1] (NET-B)");
        }
}

/* ruleset_compile_address() gives exactly the elements that one address adds to the full
 * compilation: diff two full compilations and compare. */
static void test_compile_address(void **state) {
        _cleanup_(policy_freep) Policy *p = parse(net_first_yaml);
        _cleanup_(policy_freep) Policy *ref = load(SRCDIR "/policies/ceredis.yaml");
        PolicyCidr a;

        assert_int_equal(policy_cidr_parse("10.77.0.20", &a), 0);
        for (int which = 0; which < 2; which++) {
                const Policy *pol = which ? ref : p;
                const char *svc = which ? "postgres" : "db";
                _cleanup_(endpoints_freep) Endpoints *before = NULL, *after = NULL;
                _cleanup_(ruleset_freep) Ruleset *r1 = NULL, *r2 = NULL, *d = NULL;
                char err[256];
                size_t total = 0;

                if (which) {
                        before = reference_endpoints();
                        after = reference_endpoints();
                } else {
                        assert_int_equal(endpoints_new(&before), 0);
                        assert_int_equal(endpoints_new(&after), 0);
                        add(before, "db", "172.20.0.5");
                        add(before, "ai", "172.20.0.6");
                        add(after, "db", "172.20.0.5");
                        add(after, "ai", "172.20.0.6");
                }
                add(after, svc, "10.77.0.20");
                r1 = compile(pol, before, NULL);
                r2 = compile(pol, after, NULL);
                assert_int_equal(ruleset_compile_address(pol, before, NULL, svc, &a, &d, err,
                                                         sizeof(err)),
                                 0);
                assert_int_equal(d->n_sets, r2->n_sets);
                for (size_t i = 0; i < r2->n_sets; i++) {
                        const RulesetSet *s1 = &r1->sets[i], *s2 = &r2->sets[i], *sd = &d->sets[i];
                        size_t added = 0;
                        char buf[256];

                        /* Every element of r2 that r1 lacks is in the delta, and nothing else. */
                        for (size_t j = 0; j < s2->n_elems; j++) {
                                assert_int_equal(ruleset_format_elem(r2, s2, &s2->elems[j], buf,
                                                                     sizeof(buf)),
                                                 0);
                                if (has(r1, s1->name, buf))
                                        continue;
                                added++;
                                if (!has(d, sd->name, buf))
                                        fail_msg("%s: %s missing from the delta", sd->name, buf);
                        }
                        assert_int_equal(sd->n_elems, added);
                        total += added;
                }
                assert_true(total >= 3); /* private4, forbid_N_inet4, forbids/allows */
        }
        {
                Ruleset *d = NULL;
                char err[256];
                assert_int_equal(ruleset_compile_address(p, NULL, NULL, "nope", &a, &d, err,
                                                         sizeof(err)),
                                 -ENOENT);
                assert_null(d);
        }
}

static void test_multi_host_aliasing(void **state) {
        _cleanup_(policy_freep) Policy *p = load(SRCDIR "/policies/ceredis-multi-vps.yaml");
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        _cleanup_(ruleset_freep) Ruleset *vps2 = NULL, *vps3 = NULL;
        Ruleset *r = NULL;
        char err[256];

        assert_int_equal(endpoints_new(&e), 0);
        add(e, "pocketbase", "172.20.0.10");
        add(e, "cass", "172.20.0.11");
        add(e, "postgres", "172.20.0.12");
        add(e, "ralph", "172.20.0.13");
        add(e, "grafana", "172.21.0.14");
        add(e, "rstudio", "172.21.0.16");

        /* Several hosts: the compiler must be told which one. */
        assert_int_equal(ruleset_compile(p, e, NULL, &r, err, sizeof(err)), -ENOENT);
        assert_non_null(strstr(err, "hosts"));
        assert_null(r);
        {
                RulesetOptions o = { .host = "nope" };
                assert_int_equal(ruleset_compile(p, e, &o, &r, err, sizeof(err)), -ENOENT);
                assert_non_null(strstr(err, "nope"));
        }

        vps2 = compile(p, e, "vps2");
        /* Flows from peer hosts arrive from the peer's address. */
        assert_true(has(vps2, "allow4", "192.0.2.11 . 172.20.0.11 . tcp . 8080"));
        assert_true(has(vps2, "allow4", "192.0.2.13 . 172.20.0.12 . tcp . 5432"));
        /* rstudio (vps3) must not reach stores, but grafana on the same peer address may
         * reach postgres: the alias never blocks that flow... */
        assert_false(has(vps2, "forbid_2_pair4", "192.0.2.13 . 172.20.0.12"));
        assert_false(has(vps2, "forbid_2_pair4", "192.0.2.13 . 172.20.0.13"));
        /* ...while where no allowed flow shares the key the forbid still holds here. */
        assert_true(has(vps2, "forbid_2_pair4", "192.0.2.13 . 172.20.0.10"));
        assert_true(has(vps2, "forbid_2_pair4", "192.0.2.13 . 172.20.0.11"));
        assert_false(has(vps2, "public_ifaces", "\"eth1\""));
        assert_true(has(vps2, "private_ifaces", "\"eth1\""));

        /* On the source host the same forbid is precise: rstudio's own address. */
        vps3 = compile(p, e, "vps3");
        assert_true(has(vps3, "forbid_2_pair4", "172.21.0.16 . 192.0.2.12"));
        assert_false(has(vps3, "forbid_2_pair4", "172.21.0.14 . 192.0.2.12"));
        assert_int_equal(count(vps3, "allow4") > 0, true);
}

static char *format_delta(const Ruleset *r) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        assert_int_equal(ruleset_format_nft(r, f), 0);
        assert_int_equal(fclose(f), 0);
        return buf;
}

/* With a RulesetIndex, ruleset_compile_address() looks at far fewer entries but must give the
 * very same delta: every service of every host (peer hosts' services and cidr matches are the
 * cases the index must not miss), each address family. */
static void check_index_same(const Policy *p, const Endpoints *e, const char *host) {
        _cleanup_(ruleset_index_freep) RulesetIndex *ix = NULL;
        RulesetOptions plain = { .host = host }, indexed = { .host = host };
        static const char *const addrs[] = { "172.20.0.99", "10.77.0.20", "fd00:20::99" };
        char err[256];
        size_t n_nonempty = 0;

        assert_int_equal(ruleset_index_new(p, &plain, &ix, err, sizeof(err)), 0);
        indexed.index = ix;
        for (size_t s = 0; s < p->n_services; s++)
                for (size_t i = 0; i < ELEMENTSOF(addrs); i++) {
                        _cleanup_(ruleset_freep) Ruleset *d1 = NULL, *d2 = NULL;
                        _cleanup_free_ char *t1 = NULL, *t2 = NULL;
                        PolicyCidr a;
                        int k1, k2;

                        assert_int_equal(policy_cidr_parse(addrs[i], &a), 0);
                        k1 = ruleset_compile_address(p, e, &plain, p->services[s].name, &a, &d1,
                                                     err, sizeof(err));
                        k2 = ruleset_compile_address(p, e, &indexed, p->services[s].name, &a, &d2,
                                                     err, sizeof(err));
                        assert_int_equal(k1, k2);
                        if (k1 < 0)
                                continue;
                        t1 = format_delta(d1);
                        t2 = format_delta(d2);
                        if (!streq(t1, t2))
                                fail_msg("%s %s: the indexed delta differs:\n%s\n--\n%s",
                                         p->services[s].name, addrs[i], t1, t2);
                        for (size_t j = 0; j < d2->n_sets; j++)
                                if (d2->sets[j].n_elems > 0) {
                                        n_nonempty++;
                                        break;
                                }
                }
        assert_true(n_nonempty > 0);
}

static void test_compile_address_index(void **state) {
        _cleanup_(policy_freep) Policy *multi = load(SRCDIR "/policies/ceredis-multi-vps.yaml");
        _cleanup_(policy_freep) Policy *ref = load(SRCDIR "/policies/ceredis.yaml");
        _cleanup_(policy_freep) Policy *cidr = parse(net_first_yaml);
        _cleanup_(endpoints_freep) Endpoints *e = NULL, *ce = NULL;
        _cleanup_(endpoints_freep) Endpoints *re = reference_endpoints();
        _cleanup_(ruleset_index_freep) RulesetIndex *ix = NULL;
        char err[256];

        assert_int_equal(endpoints_new(&e), 0);
        add(e, "pocketbase", "172.20.0.10");
        add(e, "cass", "172.20.0.11");
        add(e, "postgres", "172.20.0.12");
        add(e, "grafana", "172.21.0.14");
        add(e, "rstudio", "172.21.0.16");
        for (size_t h = 0; h < multi->n_hosts; h++)
                check_index_same(multi, e, multi->hosts[h].name);
        check_index_same(ref, re, NULL);
        assert_int_equal(endpoints_new(&ce), 0);
        add(ce, "db", "172.20.0.5");
        add(ce, "ai", "172.20.0.6");
        check_index_same(cidr, ce, NULL);

        /* An index of another policy or host is refused, not trusted. */
        assert_int_equal(ruleset_index_new(multi, &(RulesetOptions) { .host = "vps1" }, &ix, err,
                                           sizeof(err)),
                         0);
        {
                Ruleset *d = NULL;
                PolicyCidr a;
                RulesetOptions o = { .host = "vps2", .index = ix };

                assert_int_equal(policy_cidr_parse("172.20.0.99", &a), 0);
                assert_int_equal(ruleset_compile_address(multi, e, &o, "cass", &a, &d, err,
                                                         sizeof(err)),
                                 -EINVAL);
                assert_null(d);
                o = (RulesetOptions) { .index = ix };
                assert_int_equal(ruleset_compile_address(ref, re, &o, "postgres", &a, &d, err,
                                                         sizeof(err)),
                                 -EINVAL);
                assert_null(d);
        }
        assert_int_equal(ruleset_index_new(multi, NULL, &ix, err, sizeof(err)), -ENOENT);
}

/* A burst of container events in one batch: merged deltas hold every element of each, with
 * the origins that name their policy entries. */
static void test_delta_merge(void **state) {
        _cleanup_(policy_freep) Policy *ref = load(SRCDIR "/policies/ceredis.yaml");
        _cleanup_(policy_freep) Policy *other = parse(net_first_yaml);
        _cleanup_(endpoints_freep) Endpoints *e = reference_endpoints();
        _cleanup_(ruleset_freep) Ruleset *a = NULL, *b = NULL, *o = NULL;
        PolicyCidr x, y, z;
        char err[256], buf[256];
        size_t n_a = 0, n_b = 0, n_merged = 0;

        assert_int_equal(policy_cidr_parse("172.18.0.200", &x), 0);
        assert_int_equal(policy_cidr_parse("172.18.0.201", &y), 0);
        assert_int_equal(ruleset_compile_address(ref, e, NULL, "postgres", &x, &a, err, sizeof(err)), 0);
        assert_int_equal(ruleset_compile_address(ref, e, NULL, "ollama", &y, &b, err, sizeof(err)), 0);
        for (size_t i = 0; i < a->n_sets; i++) {
                n_a += a->sets[i].n_elems;
                n_b += b->sets[i].n_elems;
        }
        assert_true(n_a > 0 && n_b > 0);
        assert_int_equal(ruleset_delta_merge(a, b), 0);
        for (size_t i = 0; i < a->n_sets; i++) {
                const RulesetSet *s = &a->sets[i];

                n_merged += s->n_elems;
                /* Every element of b is there, with an origin naming the same entry. */
                for (size_t j = 0; j < b->sets[i].n_elems; j++) {
                        const RulesetElem *be = &b->sets[i].elems[j];
                        bool found = false;

                        assert_int_equal(ruleset_format_elem(b, &b->sets[i], be, buf, sizeof(buf)), 0);
                        for (size_t k = 0; k < s->n_elems && !found; k++) {
                                char mine[256];

                                assert_int_equal(ruleset_format_elem(a, s, &s->elems[k], mine,
                                                                     sizeof(mine)),
                                                 0);
                                found = streq(mine, buf) &&
                                        streq(a->origins[s->elems[k].origin].what,
                                              b->origins[be->origin].what);
                        }
                        if (!found)
                                fail_msg("%s: %s lost in the merge", s->name, buf);
                }
                /* Still grouped by origin, as nft_update_elements() needs. */
                for (size_t j = 1; j < s->n_elems; j++)
                        assert_true(s->elems[j - 1].origin <= s->elems[j].origin);
        }
        assert_int_equal(n_merged, n_a + n_b);

        /* A delta of another policy has other sets: refused, nothing changed. */
        assert_int_equal(policy_cidr_parse("172.20.0.9", &z), 0);
        assert_int_equal(ruleset_compile_address(other, NULL, NULL, "db", &z, &o, err, sizeof(err)), 0);
        assert_int_equal(ruleset_delta_merge(a, o), -ESTALE);
        n_merged = 0;
        for (size_t i = 0; i < a->n_sets; i++)
                n_merged += a->sets[i].n_elems;
        assert_int_equal(n_merged, n_a + n_b);
}

/* Every element of `r` as "set|element|origin entry", sorted: what two rulesets must agree on
 * whatever their origin indices. */
static char *elements_text(const Ruleset *r) {
        char **lines = NULL, *buf = NULL;
        size_t n = 0, size = 0;
        FILE *f;

        for (size_t i = 0; i < r->n_sets; i++)
                for (size_t j = 0; j < r->sets[i].n_elems; j++) {
                        const RulesetSet *s = &r->sets[i];
                        char e[256];

                        assert_int_equal(ruleset_format_elem(r, s, &s->elems[j], e, sizeof(e)), 0);
                        lines = realloc(lines, (n + 1) * sizeof(*lines));
                        assert_non_null(lines);
                        assert_true(asprintf(&lines[n++], "%s|%s|%s", s->name, e,
                                             r->origins[s->elems[j].origin].what) > 0);
                }
        qsort(lines, n, sizeof(*lines), cmp_strp);
        f = open_memstream(&buf, &size);
        assert_non_null(f);
        for (size_t i = 0; i < n; i++) {
                fprintf(f, "%s\n", lines[i]);
                free(lines[i]);
        }
        free(lines);
        assert_int_equal(fclose(f), 0);
        return buf;
}

/* Normalised order, which nft_update()'s one-pass diff relies on. */
static void check_sorted(const Ruleset *r) {
        for (size_t i = 0; i < r->n_sets; i++) {
                const RulesetSet *s = &r->sets[i];

                for (size_t j = 1; j < s->n_elems; j++) {
                        const RulesetElem *a = &s->elems[j - 1], *b = &s->elems[j];
                        int d = a->origin != b->origin ? (a->origin < b->origin ? -1 : 1)
                                                       : memcmp(a->key, b->key, s->key_len);

                        if (d == 0 && (s->flags & RULESET_SET_INTERVAL))
                                d = memcmp(a->key_end, b->key_end, s->key_len);
                        if (d >= 0)
                                fail_msg("%s: elements %zu and %zu out of order", s->name, j - 1, j);
                }
        }
}

/* The daemon's container path: a full ruleset patched with a delta holds what a fresh
 * compilation with the address holds (elements and the entries they come from), stays
 * sorted, and removing the same delta gives the original back. Every service of the
 * reference, cidr and multi-host policies, both families. */
static void check_apply_delta(const Policy *p, void (*fill)(Endpoints *e), const char *host) {
        static const char *const addrs[] = { "172.20.0.99", "fd00:20::99" };
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        _cleanup_(ruleset_freep) Ruleset *base = NULL;
        _cleanup_free_ char *base_text = NULL;
        RulesetOptions o = { .host = host };
        size_t n_changed = 0;
        char err[256];

        assert_int_equal(endpoints_new(&e), 0);
        fill(e);
        base = compile(p, e, host);
        base_text = elements_text(base);
        for (size_t s = 0; s < p->n_services; s++)
                for (size_t i = 0; i < ELEMENTSOF(addrs); i++) {
                        _cleanup_(endpoints_freep) Endpoints *e2 = NULL;
                        _cleanup_(ruleset_freep) Ruleset *want = NULL, *d = NULL, *patched = NULL;
                        _cleanup_free_ char *t_want = NULL, *t_got = NULL, *t_back = NULL;
                        PolicyCidr a;

                        if (p->services[s].match.kind == POLICY_MATCH_CIDR)
                                continue;
                        assert_int_equal(policy_cidr_parse(addrs[i], &a), 0);
                        assert_int_equal(endpoints_new(&e2), 0);
                        fill(e2);
                        assert_int_equal(endpoints_add(e2, p->services[s].name, &a), 0);
                        want = compile(p, e2, host);
                        assert_int_equal(ruleset_compile_address(p, e, &o, p->services[s].name,
                                                                 &a, &d, err, sizeof(err)),
                                         0);
                        patched = compile(p, e, host);
                        assert_int_equal(ruleset_apply_delta(patched, d, true), 0);
                        check_sorted(patched);
                        t_want = elements_text(want);
                        t_got = elements_text(patched);
                        if (!streq(t_want, t_got))
                                fail_msg("%s %s: patched differs from compiled:\n%s\n--\n%s",
                                         p->services[s].name, addrs[i], t_want, t_got);
                        if (!streq(t_got, base_text))
                                n_changed++;
                        /* The same event twice changes nothing more. */
                        assert_int_equal(ruleset_apply_delta(patched, d, true), 0);
                        free(t_got);
                        t_got = elements_text(patched);
                        assert_string_equal(t_got, t_want);
                        /* And the container going away gives the original back. */
                        assert_int_equal(ruleset_apply_delta(patched, d, false), 0);
                        check_sorted(patched);
                        t_back = elements_text(patched);
                        assert_string_equal(t_back, base_text);
                        /* Removing what is not there fails and changes nothing. */
                        if (!streq(t_want, base_text)) {
                                assert_int_equal(ruleset_apply_delta(patched, d, false), -ENOENT);
                                free(t_back);
                                t_back = elements_text(patched);
                                assert_string_equal(t_back, base_text);
                        }
                }
        assert_true(n_changed > 0);
}

static void fill_reference(Endpoints *e) {
        char err[256];

        assert_int_equal(endpoints_load_json(e, SRCDIR "/tests/ruleset/endpoints-ceredis.json",
                                             err, sizeof(err)),
                         0);
}

static void fill_cidr(Endpoints *e) {
        add(e, "db", "172.20.0.5");
        add(e, "ai", "172.20.0.6");
}

static void fill_multi(Endpoints *e) {
        add(e, "pocketbase", "172.20.0.10");
        add(e, "cass", "172.20.0.11");
        add(e, "postgres", "172.20.0.12");
        add(e, "grafana", "172.21.0.14");
        add(e, "rstudio", "172.21.0.16");
}

static void test_apply_delta(void **state) {
        _cleanup_(policy_freep) Policy *ref = load(SRCDIR "/policies/ceredis.yaml");
        _cleanup_(policy_freep) Policy *multi = load(SRCDIR "/policies/ceredis-multi-vps.yaml");
        _cleanup_(policy_freep) Policy *cidr = parse(net_first_yaml);
        _cleanup_(ruleset_freep) Ruleset *r = NULL, *d = NULL;
        PolicyCidr a;
        char err[256];

        check_apply_delta(ref, fill_reference, NULL);
        check_apply_delta(cidr, fill_cidr, NULL);
        for (size_t h = 0; h < multi->n_hosts; h++)
                check_apply_delta(multi, fill_multi, multi->hosts[h].name);

        /* A burst, as the daemon sends it: one address more for every service, each compiled
         * against the endpoints holding the ones before it and merged into one delta (many
         * origins: the hashed origin map; elements two events share: kept once). */
        {
                _cleanup_(endpoints_freep) Endpoints *base = NULL, *w = NULL, *all = NULL;
                _cleanup_(ruleset_freep) Ruleset *burst = NULL, *patched = NULL, *want = NULL;
                _cleanup_free_ char *t_want = NULL, *t_got = NULL, *t_base = NULL, *t_back = NULL;
                char addr[64];

                assert_int_equal(endpoints_new(&base), 0);
                fill_reference(base);
                assert_int_equal(endpoints_new(&w), 0);
                fill_reference(w);
                assert_int_equal(endpoints_new(&all), 0);
                fill_reference(all);
                for (size_t s = 0; s < ref->n_services; s++) {
                        _cleanup_(ruleset_freep) Ruleset *one = NULL;

                        if (ref->services[s].match.kind == POLICY_MATCH_CIDR)
                                continue;
                        for (int v6 = 0; v6 < 2; v6++) {
                                snprintf(addr, sizeof(addr), v6 ? "fd00:20::1:%zx" : "172.20.1.%zu",
                                         s + 1);
                                assert_int_equal(policy_cidr_parse(addr, &a), 0);
                                assert_int_equal(ruleset_compile_address(ref, w, NULL,
                                                                         ref->services[s].name, &a,
                                                                         &one, err, sizeof(err)),
                                                 0);
                                if (!burst)
                                        burst = TAKE_PTR(one);
                                else {
                                        assert_int_equal(ruleset_delta_merge(burst, one), 0);
                                        ruleset_free(TAKE_PTR(one));
                                }
                                assert_int_equal(endpoints_add(w, ref->services[s].name, &a), 0);
                                assert_int_equal(endpoints_add(all, ref->services[s].name, &a), 0);
                        }
                }
                assert_true(burst->n_origins > 16);
                want = compile(ref, all, NULL);
                patched = compile(ref, base, NULL);
                t_base = elements_text(patched);
                assert_int_equal(ruleset_apply_delta(patched, burst, true), 0);
                check_sorted(patched);
                t_want = elements_text(want);
                t_got = elements_text(patched);
                if (!streq(t_want, t_got))
                        fail_msg("burst: patched differs from compiled:\n%s\n--\n%s", t_want, t_got);
                assert_int_equal(ruleset_apply_delta(patched, burst, false), 0);
                check_sorted(patched);
                t_back = elements_text(patched);
                assert_string_equal(t_back, t_base);
        }

        /* A delta of another policy: refused, nothing changed. */
        r = compile(ref, NULL, NULL);
        assert_int_equal(policy_cidr_parse("172.20.0.9", &a), 0);
        assert_int_equal(ruleset_compile_address(cidr, NULL, NULL, "db", &a, &d, err, sizeof(err)), 0);
        assert_int_equal(ruleset_apply_delta(r, d, true), -ESTALE);
}

/* Docker-published ports open the host port only for a public port of a public service. */
static void test_published_ports(void **state) {
        _cleanup_(policy_freep) Policy *p = parse(variant_yaml);
        _cleanup_(endpoints_freep) Endpoints *e = NULL;
        _cleanup_(ruleset_freep) Ruleset *before = NULL, *r = NULL;

        assert_int_equal(endpoints_new(&e), 0);
        add(e, "gate", "172.30.0.2");
        add(e, "ledger", "172.31.0.5");
        before = compile(p, e, NULL);
        assert_int_equal(count(before, "host_public"), 1);

        /* gate publishes its public 8443/tcp on host port 443: open. */
        assert_int_equal(endpoints_add_published(e, "gate", IPPROTO_TCP, 443, 8443), 0);
        assert_int_equal(endpoints_add_published(e, "gate", IPPROTO_TCP, 443, 8443), 0); /* dup */
        /* gate's 5353/udp is not public; 8443 is not declared for UDP: nothing opens. */
        assert_int_equal(endpoints_add_published(e, "gate", IPPROTO_UDP, 5353, 5353), 0);
        assert_int_equal(endpoints_add_published(e, "gate", IPPROTO_UDP, 8443, 8443), 0);
        /* The classic failure: a private store published on the host. Never opened. */
        assert_int_equal(endpoints_add_published(e, "ledger", IPPROTO_TCP, 7000, 7000), 0);
        assert_int_equal(endpoints_add_published(e, "ledger", IPPROTO_TCP, 8443, 7000), 0);
        /* A service the policy does not name is ignored by the compiler. */
        assert_int_equal(endpoints_add_published(e, "stranger", IPPROTO_TCP, 9999, 8443), 0);
        r = compile(p, e, NULL);
        assert_true(has(r, "host_public", "tcp . 443"));
        assert_true(has(r, "host_public", "tcp . 8443"));
        assert_false(has(r, "host_public", "tcp . 7000"));
        assert_false(has(r, "host_public", "udp . 5353"));
        assert_false(has(r, "host_public", "udp . 8443"));
        assert_false(has(r, "host_public", "tcp . 9999"));
        assert_int_equal(count(r, "host_public"), 2);
        /* Same shape as before: published ports change by nft_update(). */
        assert_int_equal(r->n_sets, before->n_sets);
        assert_int_equal(r->n_rules, before->n_rules);

        assert_int_equal(endpoints_add_published(e, "gate", 1, 443, 8443), -EINVAL);
        assert_int_equal(endpoints_add_published(e, "gate", IPPROTO_TCP, 0, 8443), -EINVAL);
        assert_int_equal(endpoints_add_published(e, "gate", IPPROTO_TCP, 443, 0), -EINVAL);
}

/* Index of the n-th rule (from 0) of chain `name`, or SIZE_MAX. */
static size_t nth_rule(const Ruleset *r, const char *name, size_t n) {
        for (size_t i = 0; i < r->n_rules; i++)
                if (streq(r->chains[r->rules[i].chain].name, name) && n-- == 0)
                        return i;
        return SIZE_MAX;
}

static bool has_chain(const Ruleset *r, const char *name) {
        for (size_t i = 0; i < r->n_chains; i++)
                if (streq(r->chains[i].name, name))
                        return true;
        return false;
}

/* Containment: sets in every ruleset, rules at the top of forward in enforce mode only. */
static void test_containment(void **state) {
        _cleanup_(policy_freep) Policy *ref = load(SRCDIR "/policies/ceredis.yaml");
        _cleanup_(policy_freep) Policy *var = parse(variant_yaml); /* audit */
        _cleanup_(endpoints_freep) Endpoints *e = reference_endpoints();
        _cleanup_(ruleset_freep) Ruleset *r = compile(ref, e, NULL), *a = compile(var, NULL, NULL);
        static const RulesetField fwd4[] = { RULESET_FIELD_SADDR4, RULESET_FIELD_DADDR4,
                                             RULESET_FIELD_L4PROTO, RULESET_FIELD_TH_DPORT };
        static const RulesetField rev6[] = { RULESET_FIELD_DADDR6, RULESET_FIELD_SADDR6,
                                             RULESET_FIELD_L4PROTO, RULESET_FIELD_TH_SPORT };
        char prefix[128];

        for (int audit = 0; audit <= 1; audit++) {
                const Ruleset *x = audit ? a : r;
                const RulesetSet *c4 = ruleset_find_set(x, "contain4"),
                                 *c6 = ruleset_find_set(x, "contain6");

                assert_non_null(c4);
                assert_non_null(c6);
                assert_true(c4->flags & RULESET_SET_TIMEOUT);
                assert_int_equal(c4->n_elems, 0);
                assert_int_equal(c4->n_key, 4);
                assert_memory_equal(c4->key, fwd4, sizeof(fwd4));
                assert_int_equal(c6->key_len, 40);
        }
        /* Enforce: the first four rules of forward, before ct state established. */
        for (size_t i = 0; i < 4; i++) {
                const RulesetRule *rule = &r->rules[nth_rule(r, "forward", i)];
                const RulesetStmt *st = &rule->stmts[0];

                assert_int_equal(rule->verdict, RULESET_VERDICT_JUMP);
                assert_string_equal(r->chains[rule->target].name, "contain");
                assert_int_equal(st->kind, RULESET_STMT_LOOKUP);
                assert_string_equal(r->sets[st->set].name, i < 2 ? "contain4" : "contain6");
                assert_int_equal(st->n_fields, i % 2 ? 4 : 0); /* replies: the reverse key */
                if (i == 3)
                        assert_memory_equal(st->fields, rev6, sizeof(rev6));
        }
        assert_int_equal(r->rules[nth_rule(r, "forward", 4)].stmts[0].kind,
                         RULESET_STMT_CT_ESTABLISHED);
        assert_int_equal(log_verdict(r, "contain", prefix, sizeof(prefix)), RULESET_VERDICT_DROP);
        assert_string_equal(prefix, "ceredis:CONTAINED ");
        /* Audit: no chain, no rule reads the sets. */
        assert_false(has_chain(a, "contain"));
        assert_int_equal(a->rules[nth_rule(a, "forward", 0)].stmts[0].kind,
                         RULESET_STMT_CT_ESTABLISHED);
        for (size_t i = 0; i < a->n_rules; i++)
                for (size_t j = 0; j < a->rules[i].n_stmts; j++)
                        if (a->rules[i].stmts[j].kind == RULESET_STMT_LOOKUP)
                                assert_null(strstr(a->sets[a->rules[i].stmts[j].set].name,
                                                   "contain"));
}

static void test_bad_forbid_id(void **state) {
        static const char yaml[] =
                "version: 1\nmode: enforce\nhosts:\n  h: { public_interfaces: [eth0] }\n"
                "zones:\n  dmz: { public: true }\n  private: { public: false }\n"
                "services:\n  db: { zone: private, host: h, match: { compose_service: db }, "
                "ports: [5432] }\n"
                "forbid:\n  - { id: \"A\\\" B\", from: internet, to: db, severity: high, why: x }\n";
        Policy *p = NULL;
        PolicyError pe;
        Ruleset *r = NULL;
        char err[512] = "";

        if (policy_parse("bad.yaml", yaml, strlen(yaml), &p, &pe) < 0) {
                /* The loader may refuse such ids itself: fine too, if that is why. */
                print_message("loader: %s\n", pe.message);
                assert_non_null(strstr(pe.message, "id"));
                return;
        }
        assert_int_equal(ruleset_compile(p, NULL, NULL, &r, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "bad.yaml:"));
        assert_null(r);
        policy_free(p);
}

/* `nft -c -f FILE` inside a namespace made for it. */
static void check_script(const Ruleset *r) {
        char path[] = "/tmp/ceredis-h2-script-XXXXXX", ns[64], cmd[512];
        FILE *f;
        int fd, status;

        fd = mkstemp(path);
        assert_true(fd >= 0);
        f = fdopen(fd, "w");
        assert_non_null(f);
        assert_int_equal(ruleset_format_nft(r, f), 0);
        assert_int_equal(fclose(f), 0);
        snprintf(ns, sizeof(ns), "ceredis-h2-check-%d", (int) getpid());
        snprintf(cmd, sizeof(cmd),
                 "ip netns add %s && { ip netns exec %s %s -c -f %s; r=$?; ip netns del %s; "
                 "exit $r; }",
                 ns, ns, NFT_BIN, path, ns);
        status = system(cmd);
        unlink(path);
        assert_int_equal(status, 0);
}

static void test_nft_accepts_scripts(void **state) {
        _cleanup_(policy_freep) Policy *ref = load(SRCDIR "/policies/ceredis.yaml");
        _cleanup_(policy_freep) Policy *multi = load(SRCDIR "/policies/ceredis-multi-vps.yaml");
        _cleanup_(policy_freep) Policy *var = parse(variant_yaml);
        _cleanup_(endpoints_freep) Endpoints *e = reference_endpoints();
        _cleanup_(endpoints_freep) Endpoints *ve = NULL;

        if (geteuid() != 0)
                skip();
        assert_int_equal(endpoints_new(&ve), 0);
        add(ve, "gate", "172.30.0.2");
        add(ve, "ledger", "10.77.0.9");
        add(ve, "ledger", "fd00:31::5");
        assert_int_equal(endpoints_add_published(ve, "gate", IPPROTO_TCP, 443, 8443), 0);
        {
                _cleanup_(ruleset_freep) Ruleset *r = compile(ref, e, NULL);
                check_script(r);
        }
        {
                _cleanup_(ruleset_freep) Ruleset *r = compile(ref, NULL, NULL); /* no containers */
                check_script(r);
        }
        for (size_t h = 0; h < multi->n_hosts; h++) {
                _cleanup_(ruleset_freep) Ruleset *r = compile(multi, e, multi->hosts[h].name);
                check_script(r);
        }
        {
                _cleanup_(ruleset_freep) Ruleset *r = compile(var, ve, NULL);
                check_script(r);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reference),
                cmocka_unit_test(test_variant),
                cmocka_unit_test(test_forbid_overlap_first_wins),
                cmocka_unit_test(test_forbid_net_first_wins),
                cmocka_unit_test(test_compile_address),
                cmocka_unit_test(test_compile_address_index),
                cmocka_unit_test(test_delta_merge),
                cmocka_unit_test(test_apply_delta),
                cmocka_unit_test(test_multi_host_aliasing),
                cmocka_unit_test(test_published_ports),
                cmocka_unit_test(test_containment),
                cmocka_unit_test(test_bad_forbid_id),
                cmocka_unit_test(test_nft_accepts_scripts),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
