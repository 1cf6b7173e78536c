/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the policy loader and validator: every broken policy under tests/policies/bad
 * fails at the LINE:COL and with the message its first line expects; every reference policy
 * and the variant load, with selectors resolved and defaults filled in; the limits refuse
 * hostile input (generated here rather than committed); CIDR text forms round-trip.
 */
#include "ceredis.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "policy-json.h"
#include "policy.h"

static char *read_file(const char *path, size_t *ret_size) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *buf;
        long n;

        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        assert_true(n >= 0);
        rewind(f);
        buf = malloc((size_t) n + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
        buf[n] = '\0';
        *ret_size = (size_t) n;
        return buf;
}

static Policy *load_ok(const char *relative) {
        char path[1024];
        Policy *p = NULL;
        PolicyError e = {};
        int r;

        snprintf(path, sizeof(path), "%s/%s", SRCDIR, relative);
        r = policy_load(path, &p, &e);
        if (r < 0)
                print_error("%s:%u:%u: %s\n", path, e.pos.line, e.pos.column, e.message);
        assert_int_equal(r, 0);
        assert_non_null(p);
        return p;
}

static int filter_yaml(const struct dirent *d) {
        size_t n = strlen(d->d_name);
        return n > 5 && streq(d->d_name + n - 5, ".yaml");
}

/* Each file: "# expect: LINE:COL: message or a distinctive substring". */
static void test_bad_policies(void **state) {
        char dir[1024];
        struct dirent **names = NULL;
        int n;

        snprintf(dir, sizeof(dir), "%s/tests/policies/bad", SRCDIR);
        n = scandir(dir, &names, filter_yaml, alphasort);
        assert_true(n >= 50);

        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *data = NULL;
                _cleanup_(policy_freep) Policy *p = NULL;
                PolicyError e = {};
                unsigned line, column;
                char path[1400], expect[1024];
                const char *eol, *msg;
                size_t size;
                int consumed = 0, r;

                snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
                data = read_file(path, &size);
                assert_true(strncmp(data, "# expect: ", 10) == 0);
                eol = strchr(data, '\n');
                assert_non_null(eol);
                assert_true((size_t) (eol - data) < sizeof(expect));
                memcpy(expect, data + 10, (size_t) (eol - data) - 10);
                expect[eol - data - 10] = '\0';
                assert_int_equal(sscanf(expect, "%u:%u: %n", &line, &column, &consumed), 2);
                msg = expect + consumed;

                /* The file's base name, so that messages naming the file are reproducible. */
                r = policy_parse(names[i]->d_name, data, size, &p, &e);
                if (r != -EINVAL || e.pos.line != line || e.pos.column != column || !strstr(e.message, msg))
                        print_error("%s: expected %u:%u: %s\n%s: got %d %u:%u: %s\n", names[i]->d_name, line, column,
                                    msg, names[i]->d_name, r, e.pos.line, e.pos.column, e.message);
                assert_int_equal(r, -EINVAL);
                assert_null(p);
                assert_int_equal(e.pos.line, line);
                assert_int_equal(e.pos.column, column);
                assert_non_null(strstr(e.message, msg));
                free(names[i]);
        }
        free(names);
}

/* Every shipped policy and every good test policy is valid. */
static void test_good_policies(void **state) {
        static const char *const dirs[] = { "policies", "tests/policies" };
        unsigned total = 0;

        for (size_t d = 0; d < ELEMENTSOF(dirs); d++) {
                char dir[1024];
                struct dirent **names = NULL;
                int n;

                snprintf(dir, sizeof(dir), "%s/%s", SRCDIR, dirs[d]);
                n = scandir(dir, &names, filter_yaml, alphasort);
                assert_true(n >= 1);
                for (int i = 0; i < n; i++) {
                        char rel[1200];
                        Policy *p;

                        snprintf(rel, sizeof(rel), "%s/%s", dirs[d], names[i]->d_name);
                        p = load_ok(rel);
                        policy_free(p);
                        free(names[i]);
                        total++;
                }
                free(names);
        }
        assert_true(total >= 3);
}

static void assert_endpoint(const Policy *p, const PolicyEndpoint *e, const char *services, bool internet, bool host) {
        char buf[1024] = "";

        for (size_t i = 0; i < e->n_services; i++) {
                if (i > 0) {
                        /* Resolved indices are strictly ascending. */
                        assert_true(e->services[i] > e->services[i - 1]);
                        strcat(buf, ",");
                }
                strcat(buf, p->services[e->services[i]].name);
        }
        assert_string_equal(buf, services);
        assert_int_equal(e->internet, internet);
        assert_int_equal(e->host, host);
}

static const PolicyForbid *find_forbid(const Policy *p, const char *id, size_t nth) {
        for (size_t i = 0; i < p->n_forbids; i++)
                if (streq(p->forbids[i].id, id) && nth-- == 0)
                        return &p->forbids[i];
        fail_msg("no forbid %s", id);
        return NULL;
}

static void test_reference_model(void **state) {
        _cleanup_(policy_freep) Policy *p = load_ok("policies/ceredis.yaml");
        const PolicyService *s;
        const PolicyFlow *f;
        ssize_t i;

        assert_int_equal(p->version, 1);
        assert_int_equal(p->mode, POLICY_MODE_ENFORCE);
        assert_int_equal(p->n_hosts, 1);
        assert_int_equal(p->n_zones, 2);
        assert_int_equal(p->n_services, 11);
        assert_int_equal(p->n_flows, 13);
        assert_int_equal(p->n_forbids, 6);
        assert_int_equal(p->n_controls, 2);

        /* Host defaults: management proto tcp; address stored as a /32. */
        assert_int_equal(p->hosts[0].n_management, 1);
        assert_int_equal(p->hosts[0].management[0].port, 22);
        assert_int_equal(p->hosts[0].management[0].proto, IPPROTO_TCP);
        assert_int_equal(p->hosts[0].management[0].from[0].prefix, 28);
        assert_int_equal(p->hosts[0].addresses[0].prefix, 32);

        /* Service defaults: a bare port is tcp and not public; the zone and host are indices. */
        i = policy_find_service(p, "postgres");
        assert_true(i >= 0);
        s = &p->services[i];
        assert_string_equal(p->zones[s->zone].name, "private");
        assert_false(p->zones[s->zone].public);
        assert_string_equal(p->hosts[s->host].name, "vps1");
        assert_int_equal(s->protocol, POLICY_L7_POSTGRESQL);
        assert_int_equal(s->n_ports, 1);
        assert_int_equal(s->ports[0].port, 5432);
        assert_int_equal(s->ports[0].proto, IPPROTO_TCP);
        assert_false(s->ports[0].public);
        assert_int_equal(s->match.kind, POLICY_MATCH_COMPOSE_SERVICE);
        assert_string_equal(s->match.value, "postgres");
        s = &p->services[policy_find_service(p, "proxy")];
        assert_true(s->ports[0].public);
        assert_int_equal(s->ports[0].port, 443);
        assert_int_equal(policy_find_service(p, "nope"), -ENOENT);
        assert_int_equal(policy_find_zone(p, "dmz"), 0);
        assert_int_equal(policy_find_host(p, "vps9"), -ENOENT);

        /* Selectors as resolved. */
        f = &p->flows[0];
        assert_int_equal(f->from.kind, POLICY_SELECT_INTERNET);
        assert_endpoint(p, &f->from, "", true, false);
        assert_endpoint(p, &f->to, "proxy", false, false);
        assert_int_equal(f->port, 443);
        f = &p->flows[9]; /* { tag: analytics } -> postgres, read-only */
        assert_int_equal(f->from.kind, POLICY_SELECT_TAG);
        assert_string_equal(f->from.name, "analytics");
        assert_endpoint(p, &f->from, "grafana,superset", false, false);
        assert_int_equal(f->access, POLICY_ACCESS_READ_ONLY);
        f = &p->flows[11]; /* rstudio -> { tag: analytics }: no port */
        assert_int_equal(f->port, -1);
        f = &p->flows[12];
        assert_endpoint(p, &f->from, "", false, true);
        assert_endpoint(p, &f->to, "pocketbase,grafana,superset,rstudio", false, false);
        assert_int_equal(f->access, POLICY_ACCESS_ANY);

        assert_endpoint(p, &find_forbid(p, "NET-2", 0)->to,
                        "pocketbase,cass,postgres,ralph,grafana,superset,rstudio,ollama", false, false);
        assert_endpoint(p, &find_forbid(p, "NET-1", 0)->to, "pocketbase,cass,postgres,ralph", false, false);
        assert_endpoint(p, &find_forbid(p, "AI-1", 1)->from, "cass", false, false);
        assert_int_equal(find_forbid(p, "NET-1", 0)->access, POLICY_ACCESS_ANY);
        assert_int_equal(find_forbid(p, "AI-2", 0)->access, POLICY_ACCESS_WRITE);
        assert_int_equal(find_forbid(p, "AI-2", 0)->severity, POLICY_SEVERITY_CRITICAL);
        assert_string_equal(p->controls[1].id, "AI-3");
        assert_string_equal(p->controls[1].date, "2026-09-01");

        /* Positions point at the entries. */
        assert_int_equal(p->flows[0].pos.column, 5);
        assert_true(p->flows[0].pos.line > p->services[p->n_services - 1].pos.line);
}

static void test_reference_sha256(void **state) {
        _cleanup_(policy_freep) Policy *p = load_ok("policies/ceredis.yaml");
        char cmd[1200], want[128] = "", hex[65];
        FILE *f;

        snprintf(cmd, sizeof(cmd), "sha256sum '%s/policies/ceredis.yaml'", SRCDIR);
        f = popen(cmd, "r");
        assert_non_null(f);
        assert_non_null(fgets(want, sizeof(want), f));
        pclose(f);
        want[64] = '\0';
        policy_sha256_hex(p, hex);
        assert_string_equal(hex, want);
}

static void test_multi_vps(void **state) {
        _cleanup_(policy_freep) Policy *p = load_ok("policies/ceredis-multi-vps.yaml");
        static const struct {
                const char *service, *host;
        } where[] = { { "proxy", "vps1" }, { "api", "vps1" }, { "cass", "vps2" },
                      { "postgres", "vps2" }, { "grafana", "vps3" }, { "rstudio", "vps3" }, { "ollama", "vps4" } };

        assert_int_equal(p->n_hosts, 4);
        for (size_t i = 0; i < ELEMENTSOF(where); i++) {
                ssize_t s = policy_find_service(p, where[i].service);
                assert_true(s >= 0);
                assert_string_equal(p->hosts[p->services[s].host].name, where[i].host);
        }
        for (size_t i = 0; i < p->n_hosts; i++) {
                assert_int_equal(p->hosts[i].n_private_interfaces, 1);
                assert_string_equal(p->hosts[i].private_interfaces[0], "eth1");
        }
}

static void test_variant(void **state) {
        _cleanup_(policy_freep) Policy *p = load_ok("tests/policies/variant.yaml");
        const PolicyService *s;
        char buf[64];

        assert_int_equal(p->mode, POLICY_MODE_AUDIT);
        assert_int_equal(p->n_hosts, 2);
        assert_string_equal(p->hosts[0].name, "front-a");
        assert_string_equal(p->hosts[0].public_interfaces[0], "ens3");
        assert_int_equal(p->hosts[0].addresses[1].family, AF_INET6);
        assert_int_equal(p->hosts[0].addresses[1].prefix, 128);
        assert_int_equal(p->hosts[0].management[1].proto, IPPROTO_UDP);
        assert_int_equal(p->hosts[0].management[0].n_from, 2);

        s = &p->services[policy_find_service(p, "lb")];
        assert_int_equal(s->n_ports, 2);
        assert_int_equal(s->ports[1].proto, IPPROTO_UDP);
        assert_true(s->ports[1].public);
        s = &p->services[policy_find_service(p, "mariadb")];
        assert_int_equal(s->match.kind, POLICY_MATCH_LABEL);
        assert_string_equal(s->match.value, "com.example.role");
        assert_string_equal(s->match.label_value, "db");
        assert_int_equal(s->protocol, POLICY_L7_TCP);
        assert_string_equal(p->hosts[s->host].name, "data-b");
        s = &p->services[policy_find_service(p, "backup")];
        assert_int_equal(s->match.kind, POLICY_MATCH_CIDR);
        assert_int_equal(s->match.n_cidrs, 2);
        assert_int_equal(policy_cidr_format(&s->match.cidrs[1], buf, sizeof(buf)), 0);
        assert_string_equal(buf, "fd00:99::/64");

        assert_endpoint(p, &p->flows[2].to, "mariadb,cache,tutor", false, false);
        assert_endpoint(p, &p->flows[4].from, "mariadb", false, false);
        assert_endpoint(p, &p->flows[5].to, "lb,lms", false, false);
        assert_endpoint(p, &p->flows[7].to, "", true, false);
        assert_endpoint(p, &p->forbids[2].from, "mariadb,cache,tutor", false, false);
        assert_int_equal(p->controls[0].status, POLICY_CONTROL_NOT_APPLICABLE);
}

static int parse_text(const char *text, Policy **ret, PolicyError *e) {
        return policy_parse("t.yaml", text, strlen(text), ret, e);
}

static const char minimal[] =
        "version: 1\n"
        "hosts: { h: {} }\n"
        "zones: { z: { public: false } }\n"
        "services:\n"
        "  a: { zone: z, match: { image: a }, ports: [1] }\n"
        "  b: { zone: z, match: { image: b }, ports: [2], tags: [t] }\n";

static void test_minimal_and_single_host_default(void **state) {
        _cleanup_(policy_freep) Policy *p = NULL;
        PolicyError e = {};

        assert_int_equal(parse_text(minimal, &p, &e), 0);
        assert_int_equal(p->n_services, 2);
        assert_int_equal(p->services[1].host, 0);
        assert_int_equal(p->n_flows, 0);
        assert_int_equal(p->mode, POLICY_MODE_ENFORCE);
}

/* A write-only forbid does not catch a read-only flow, but catches an `any` one. */
static void test_write_forbid_and_read_only_flow(void **state) {
        _cleanup_free_ char *ok = NULL, *bad = NULL;
        Policy *p = NULL;
        PolicyError e = {};

        assert_true(asprintf(&ok, "%sflows: [ { from: a, to: b, access: read-only } ]\n"
                                  "forbid: [ { id: X-1, from: a, to: { tag: t }, access: write, severity: low, why: w } ]\n",
                             minimal) > 0);
        assert_int_equal(parse_text(ok, &p, &e), 0);
        policy_free(p);
        p = NULL;
        assert_true(asprintf(&bad, "%sflows: [ { from: a, to: b } ]\n"
                                   "forbid: [ { id: X-1, from: a, to: { tag: t }, access: write, severity: low, why: w } ]\n",
                             minimal) > 0);
        assert_int_equal(parse_text(bad, &p, &e), -EINVAL);
        assert_null(p);
        assert_int_equal(e.pos.line, 7);
        assert_non_null(strstr(e.message, "flow a -> b contradicts forbid X-1 at t.yaml:8:11"));
}

static void test_empty_and_garbage(void **state) {
        Policy *p = NULL;
        PolicyError e = {};

        assert_int_equal(policy_parse("e.yaml", "", 0, &p, &e), -EINVAL);
        assert_int_equal(e.pos.line, 1);
        assert_non_null(strstr(e.message, "empty policy"));
        assert_int_equal(policy_parse("e.yaml", NULL, 0, &p, &e), -EINVAL);
        assert_int_equal(parse_text("\xc3\x28: x\n", &p, &e), -EINVAL);
        assert_non_null(strstr(e.message, "invalid YAML"));
        assert_int_equal(parse_text("version: 1\nx: \"\\0\"\n", &p, &e), -EINVAL);
        assert_int_equal(e.pos.line, 2);
        assert_null(p);
}

static void test_file_errors(void **state) {
        Policy *p = NULL;
        PolicyError e = {};
        char buf[256];

        assert_int_equal(policy_load("/nonexistent/policy.yaml", &p, &e), -ENOENT);
        assert_int_equal(e.pos.line, 0);
        assert_int_equal(policy_error_format("/nonexistent/policy.yaml", &e, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "/nonexistent/policy.yaml: cannot read: No such file or directory");
        assert_int_equal(policy_load(SRCDIR, &p, &e), -EISDIR);
        assert_null(p);

        e = (PolicyError) { .pos = { 12, 7 } };
        strcpy(e.message, "oops");
        assert_int_equal(policy_error_format("x.yaml", &e, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "x.yaml:12:7: oops");
        assert_int_equal(policy_error_format("x.yaml", &e, buf, 5), -ENOBUFS);
}

static void test_too_large(void **state) {
        Policy *p = NULL;
        PolicyError e = {};
        char *big = calloc(1, POLICY_MAX_FILE_SIZE + 1u); /* zero pages: never touched */

        assert_non_null(big);
        assert_int_equal(policy_parse("big.yaml", big, POLICY_MAX_FILE_SIZE + 1u, &p, &e), -EINVAL);
        assert_non_null(strstr(e.message, "file too large"));
        free(big);
}

/* Generated, not committed: one service over the limit, and a policy big enough to show the
 * validator does not go quadratic. */
static char *many_services(size_t n, size_t n_flows) {
        size_t size = 4096 + n * 80 + n_flows * 64;
        char *buf = malloc(size), *w = buf;

        assert_non_null(buf);
        w += sprintf(w, "version: 1\nhosts: { h: {} }\nzones: { z: { public: false } }\nservices:\n");
        for (size_t i = 0; i < n; i++)
                w += sprintf(w, "  s%zu: { zone: z, match: { image: i%zu }, ports: [%zu], tags: [g%zu] }\n", i, i,
                             i % 60000 + 1, i % 7);
        if (n_flows > 0) {
                w += sprintf(w, "flows:\n");
                /* Each flow stays within one tag group; each forbid is between two different
                 * groups: every pair is checked, none contradicts. */
                for (size_t i = 0; i < n_flows; i++) {
                        size_t from = (i * 7919) % n, to = (from + 7 * (i % 50 + 1)) % (n - n % 7);
                        w += sprintf(w, "  - { from: s%zu, to: s%zu }\n", from, to - to % 7 + from % 7);
                }
                w += sprintf(w, "forbid:\n");
                for (size_t a = 0; a < 7; a++)
                        for (size_t c = 0; c < 7; c++)
                                if (a != c)
                                        w += sprintf(w, "  - { id: F-%zu, from: { tag: g%zu }, to: { tag: g%zu }, severity: low, why: w }\n",
                                                     a * 7 + c, a, c);
        }
        assert_true((size_t) (w - buf) < size);
        return buf;
}

static void test_too_many_services(void **state) {
        _cleanup_free_ char *text = many_services(POLICY_MAX_SERVICES + 1, 0);
        Policy *p = NULL;
        PolicyError e = {};

        assert_int_equal(parse_text(text, &p, &e), -EINVAL);
        assert_int_equal(e.pos.line, 5);
        assert_non_null(strstr(e.message, "too many services (131073, limit 131072)"));
}

static void test_large_policy_is_fast(void **state) {
        _cleanup_free_ char *text = many_services(20000, 20000);
        _cleanup_(policy_freep) Policy *p = NULL;
        PolicyError e = {};
        struct timespec a, b;

        clock_gettime(CLOCK_MONOTONIC, &a);
        assert_int_equal(parse_text(text, &p, &e), 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        assert_int_equal(p->n_services, 20000);
        assert_int_equal(p->n_flows, 20000);
        /* Generous for sanitizer builds; a quadratic validator takes minutes here. */
        assert_true(b.tv_sec - a.tv_sec < 20);
}

static void test_cidr(void **state) {
        static const struct {
                const char *in, *out;
                int r;
        } cases[] = {
                { "10.0.0.0/8", "10.0.0.0/8", 0 },
                { "192.0.2.7", "192.0.2.7/32", 0 },
                { "0.0.0.0/0", "0.0.0.0/0", 0 },
                { "2001:db8::/32", "2001:db8::/32", 0 },
                { "2001:db8::1", "2001:db8::1/128", 0 },
                { "10.0.0.1/8", NULL, -EDOM },
                { "2001:db8::1/64", NULL, -EDOM },
                { "10.0.0.0/33", NULL, -EINVAL },
                { "::/129", NULL, -EINVAL },
                { "10.0.0.0/", NULL, -EINVAL },
                { "10.0.0.0/08", NULL, -EINVAL },
                { "10.0.0.0/+8", NULL, -EINVAL },
                { "10.0.0/8", NULL, -EINVAL },
                { "", NULL, -EINVAL },
                { "/8", NULL, -EINVAL },
                { "eth0", NULL, -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                PolicyCidr c = { .prefix = 99 };
                char buf[64];

                assert_int_equal(policy_cidr_parse(cases[i].in, &c), cases[i].r);
                if (cases[i].r < 0) {
                        assert_int_equal(c.prefix, 99); /* untouched on failure */
                        continue;
                }
                assert_int_equal(policy_cidr_format(&c, buf, sizeof(buf)), 0);
                assert_string_equal(buf, cases[i].out);
        }
}

static void test_json(void **state) {
        _cleanup_(policy_freep) Policy *p = load_ok("policies/ceredis.yaml");
        json_t *j = policy_to_json(p), *f;
        char *a, *b, hex[65];
        const char *key;
        json_t *v;
        static const char *const order[] = { "file", "version", "mode", "sha256", "hosts", "zones", "services", "flows", "forbid", "controls" };
        size_t k = 0;

        assert_non_null(j);
        json_object_foreach(j, key, v) {
                assert_true(k < ELEMENTSOF(order));
                assert_string_equal(key, order[k++]);
        }
        assert_int_equal(k, ELEMENTSOF(order));
        policy_sha256_hex(p, hex);
        assert_string_equal(json_string_value(json_object_get(j, "sha256")), hex);
        assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(j, "services"), "ollama"), "zone")),
                            "private");
        f = json_array_get(json_object_get(j, "flows"), 9);
        assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(f, "from"), "selector"), "tag")),
                            "analytics");
        assert_int_equal(json_array_size(json_object_get(json_object_get(f, "from"), "services")), 2);
        assert_string_equal(json_string_value(json_object_get(f, "access")), "read-only");
        assert_true(json_is_null(json_object_get(json_array_get(json_object_get(j, "flows"), 11), "port")));

        /* Stable: the same policy dumps to the same bytes. */
        a = json_dumps(j, JSON_PRESERVE_ORDER);
        json_decref(j);
        j = policy_to_json(p);
        b = json_dumps(j, JSON_PRESERVE_ORDER);
        assert_string_equal(a, b);
        free(a);
        free(b);
        json_decref(j);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bad_policies),
                cmocka_unit_test(test_good_policies),
                cmocka_unit_test(test_reference_model),
                cmocka_unit_test(test_reference_sha256),
                cmocka_unit_test(test_multi_vps),
                cmocka_unit_test(test_variant),
                cmocka_unit_test(test_minimal_and_single_host_default),
                cmocka_unit_test(test_write_forbid_and_read_only_flow),
                cmocka_unit_test(test_empty_and_garbage),
                cmocka_unit_test(test_file_errors),
                cmocka_unit_test(test_too_large),
                cmocka_unit_test(test_too_many_services),
                cmocka_unit_test(test_large_policy_is_fast),
                cmocka_unit_test(test_cidr),
                cmocka_unit_test(test_json),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
