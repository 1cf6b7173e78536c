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
        assert_int_equal(count(r, "forbid_inet_net4"), 0);
        assert_int_equal(count(r, "public_net4"), 0);
        /* Stores: NET-1 (first in file) wins over NET-2 for the same address. */
        assert_true(has(r, "forbid_inet4", "172.19.0.12 : jump forbid_0"));
        assert_false(has(r, "forbid_inet4", "172.19.0.12 : jump forbid_1"));
        assert_true(has(r, "forbid_inet4", "172.19.0.14 : jump forbid_1"));
        assert_true(has(r, "forbid_inet4", "172.19.0.17 : jump forbid_1"));
        assert_true(has(r, "forbid4", "172.19.0.16 . 172.19.0.12 : jump forbid_2"));
        assert_true(has(r, "forbid4", "172.19.0.17 . 172.19.0.11 : jump forbid_3"));
        assert_true(has(r, "forbid4", "172.19.0.11 . 172.19.0.17 : jump forbid_4"));
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
        assert_true(has(r, "forbid_inet4", "172.31.0.5 : jump forbid_0"));
        assert_false(has(r, "forbid_inet4", "172.31.0.5 : jump forbid_1"));
        assert_true(has(r, "forbid_inet_net4", "10.77.0.0/24 : jump forbid_1"));
        fi = ruleset_find_set(r, "forbid_inet4");
        assert_int_equal(fi->n_elems, 1);
        assert_int_equal(count(r, "forbid_inet_net4"), 1);
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

        /* ledger's address inside archive's network: ledger's forbid (first) keeps its one
         * address in the exact map, which is looked up first; the network stays whole in the
         * `_net` twin for the second. */
        assert_int_equal(endpoints_new(&e), 0);
        add(e, "ledger", "10.77.0.9");
        r = compile(p, e, NULL);
        assert_true(has(r, "forbid_inet4", "10.77.0.9 : jump forbid_0"));
        assert_int_equal(count(r, "forbid_inet4"), 1);
        assert_true(has(r, "forbid_inet_net4", "10.77.0.0/24 : jump forbid_1"));
        assert_int_equal(count(r, "forbid_inet_net4"), 1);
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
        /* Internet -> 10.77.0.9: NET-A (forbid_0) comes first in the file and covers it. */
        assert_true(has(r, "forbid_inet_net4", "10.77.0.0/24 : jump forbid_0"));
        assert_true(has(r, "forbid_inet4", "10.77.0.9 : jump forbid_0"));
        assert_false(has(r, "forbid_inet4", "10.77.0.9 : jump forbid_1"));
        /* Not covered by a network: its own forbid. */
        assert_true(has(r, "forbid_inet4", "172.20.0.5 : jump forbid_1"));
        /* Two fields: ai -> 10.77.0.9 is covered by AI-A's ai -> 10.77.0.0/24. */
        assert_true(has(r, "forbid_net4", "172.20.0.6 . 10.77.0.0/24 : jump forbid_2"));
        assert_true(has(r, "forbid4", "172.20.0.6 . 10.77.0.9 : jump forbid_2"));
        assert_true(has(r, "forbid4", "172.20.0.6 . 172.20.0.5 : jump forbid_3"));
        assert_int_equal(count(r, "forbid4"), 2);
        /* The error origin follows the verdict: the winning forbid's entry. */
        {
                const RulesetSet *s = ruleset_find_set(r, "forbid_inet4");
                for (size_t i = 0; i < s->n_elems; i++)
                        assert_int_equal(s->elems[i].origin,
                                         r->chains[s->elems[i].chain].origin);
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
                assert_true(total >= 3); /* private4, forbid_inet4, forbids/allows */
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
        assert_false(has(vps2, "forbid4", "192.0.2.13 . 172.20.0.12 : jump forbid_2"));
        assert_false(has(vps2, "forbid4", "192.0.2.13 . 172.20.0.13 : jump forbid_2"));
        /* ...while where no allowed flow shares the key the forbid still holds here. */
        assert_true(has(vps2, "forbid4", "192.0.2.13 . 172.20.0.10 : jump forbid_2"));
        assert_true(has(vps2, "forbid4", "192.0.2.13 . 172.20.0.11 : jump forbid_2"));
        assert_false(has(vps2, "public_ifaces", "\"eth1\""));
        assert_true(has(vps2, "private_ifaces", "\"eth1\""));

        /* On the source host the same forbid is precise: rstudio's own address. */
        vps3 = compile(p, e, "vps3");
        assert_true(has(vps3, "forbid4", "172.21.0.16 . 192.0.2.12 : jump forbid_2"));
        assert_false(has(vps3, "forbid4", "172.21.0.14 . 192.0.2.12 : jump forbid_2"));
        assert_int_equal(count(vps3, "allow4") > 0, true);
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
                cmocka_unit_test(test_multi_host_aliasing),
                cmocka_unit_test(test_bad_forbid_id),
                cmocka_unit_test(test_nft_accepts_scripts),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
