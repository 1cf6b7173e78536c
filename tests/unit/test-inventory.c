/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Docker inventory in the state directory: it round-trips byte for byte, hostile files are
 * refused, it is used only for the record it was saved for, and a record recompiled with it
 * (what `ceredisctl verify` does) contains the containers' addresses and published ports.
 */
#include "ceredis.h"

#include "enforce.h"
#include "inventory.h"

#include <ftw.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

static const char sha_a[65] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup_dir(void **state) {
        char *dir = strdup("/tmp/ceredis-test-inventory.XXXXXX");

        assert_non_null(dir);
        assert_non_null(mkdtemp(dir));
        assert_int_equal(state_dir_ensure(dir), 0);
        *state = dir;
        return 0;
}

static int teardown_dir(void **state) {
        nftw(*state, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(*state);
        return 0;
}

static void add(Endpoints *e, const char *service, const char *addr) {
        PolicyCidr c;

        assert_int_equal(policy_cidr_parse(addr, &c), 0);
        assert_int_equal(endpoints_add(e, service, &c), 0);
}

static Endpoints *sample(void) {
        Endpoints *e = NULL;
        PolicyCidr net, gw;

        assert_int_equal(endpoints_new(&e), 0);
        add(e, "web", "10.77.1.2");
        add(e, "db", "10.77.2.9");
        add(e, "db", "fd00:77::9");
        assert_int_equal(endpoints_add_published(e, "db", IPPROTO_TCP, 15432, 5432), 0);
        assert_int_equal(endpoints_add_published(e, "web", IPPROTO_UDP, 8443, 443), 0);
        assert_int_equal(policy_cidr_parse("10.77.2.0/24", &net), 0);
        assert_int_equal(policy_cidr_parse("10.77.2.1", &gw), 0);
        assert_int_equal(endpoints_add_network(e, &net, &gw), 0);
        assert_int_equal(policy_cidr_parse("fd00:77::/64", &net), 0);
        assert_int_equal(endpoints_add_network(e, &net, NULL), 0);
        return e;
}

static void test_roundtrip(void **state) {
        _cleanup_(endpoints_freep) Endpoints *e = sample(), *back = NULL;
        _cleanup_free_ char *text = NULL, *again = NULL, *netns = NULL;
        const PolicyCidr *addrs;
        const EndpointsPublished *pub;
        const EndpointsNetwork *nets;
        size_t n;
        char sha[65];

        assert_int_equal(inventory_format(sha_a, "vps-ns", "2026-11-25T00:00:00Z", e, &text), 0);
        assert_int_equal(inventory_parse(text, strlen(text), sha, &netns, &back), 0);
        assert_string_equal(sha, sha_a);
        assert_string_equal(netns, "vps-ns");
        endpoints_get(back, "db", &addrs, &n);
        assert_int_equal(n, 2);
        assert_int_equal(addrs[1].family, AF_INET6);
        endpoints_get_published(back, "db", &pub, &n);
        assert_int_equal(n, 1);
        assert_int_equal(pub[0].proto, IPPROTO_TCP);
        assert_int_equal(pub[0].host_port, 15432);
        assert_int_equal(pub[0].container_port, 5432);
        endpoints_get_published(back, "web", &pub, &n);
        assert_int_equal(n, 1);
        assert_int_equal(pub[0].proto, IPPROTO_UDP);
        endpoints_get_networks(back, &nets, &n);
        assert_int_equal(n, 2);
        assert_true(nets[0].has_gateway);
        assert_false(nets[1].has_gateway);
        assert_int_equal(inventory_format(sha_a, "vps-ns", "2026-11-25T00:00:00Z", back, &again),
                         0);
        assert_string_equal(text, again);
}

static void test_hostile(void **state) {
        static const char *const bad[] = {
                "",
                "[]",
                "{\"policy_sha256\":\"xyz\",\"services\":{},\"networks\":[]}",
                "{\"policy_sha256\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
                "\"services\":{\"x\":{\"addresses\":[\"300.1.1.1\"],\"published\":[]}},\"networks\":[]}",
                "{\"policy_sha256\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
                "\"services\":{\"x\":{\"addresses\":[],\"published\":[{\"proto\":\"sctp\","
                "\"host_port\":1,\"container_port\":1}]}},\"networks\":[]}",
                "{\"policy_sha256\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
                "\"services\":{\"x\":{\"addresses\":[],\"published\":[{\"proto\":\"tcp\","
                "\"host_port\":70000,\"container_port\":1}]}},\"networks\":[]}",
                "{\"policy_sha256\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
                "\"services\":{},\"networks\":[{\"subnet\":\"10.0.0.0/8\",\"gateway\":\"fd00::1\"}]}",
                "{\"policy_sha256\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
                "\"services\":{},\"services\":{},\"networks\":[]}",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Endpoints *e = NULL;
                char *netns = NULL, sha[65];

                assert_int_equal(inventory_parse(bad[i], strlen(bad[i]), sha, &netns, &e),
                                 -EBADMSG);
                assert_null(e);
        }
}

static const char policy_text[] =
        "version: 1\n"
        "mode: enforce\n"
        "hosts:\n"
        "  h1: { public_interfaces: [eth0] }\n"
        "zones:\n"
        "  front: { public: true }\n"
        "  back: { public: false }\n"
        "services:\n"
        "  web: { zone: front, host: h1, match: { compose_service: web }, ports: [{ port: 443, public: true }] }\n"
        "  db: { zone: back, host: h1, match: { compose_service: db }, ports: [5432] }\n"
        "flows:\n"
        "  - { from: web, to: db, port: 5432 }\n";

/* What verify does: a record recompiled from the state directory. */
static char *compile_record(const char *dir, const StateRecord *r) {
        EnforceTarget t = {};
        EnforceStage stage;
        char err[512] = "", *buf = NULL;
        size_t size = 0;
        FILE *f;

        assert_int_equal(enforce_compile_record(dir, r, &t, &stage, err, sizeof(err)), 0);
        f = open_memstream(&buf, &size);
        assert_non_null(f);
        assert_int_equal(ruleset_format_nft(t.ruleset, f), 0);
        fclose(f);
        enforce_target_done(&t);
        return buf;
}

static void test_record_uses_matching_inventory(void **state) {
        const char *dir = *state;
        _cleanup_(state_record_freep) StateRecord *r = NULL;
        _cleanup_(endpoints_freep) Endpoints *e = sample(), *loaded = NULL;
        _cleanup_free_ char *plain = NULL, *with = NULL, *stale = NULL;

        assert_int_equal(state_record_new(STATE_STATUS_APPLIED, &r), 0);
        assert_int_equal(state_blob_store(dir, policy_text, sizeof(policy_text) - 1,
                                          r->policy_sha256), 0);
        assert_int_equal(state_record_set(&r->policy_path, "p.yaml"), 0);
        assert_int_equal(state_record_set(&r->netns, "vps-ns"), 0);

        assert_int_equal(inventory_load(dir, r, &loaded), -ENOENT);
        plain = compile_record(dir, r);
        assert_null(strstr(plain, "10.77.2.9"));

        assert_int_equal(inventory_save(dir, r->policy_sha256, "vps-ns", e), 0);
        with = compile_record(dir, r);
        assert_non_null(strstr(with, "10.77.2.9"));
        assert_non_null(strstr(with, "fd00:77::9"));
        assert_non_null(strstr(with, "10.77.2.0/24"));

        /* Saved for another namespace or another policy: ignored. */
        assert_int_equal(inventory_save(dir, r->policy_sha256, "other-ns", e), 0);
        assert_int_equal(inventory_load(dir, r, &loaded), -ENOENT);
        assert_int_equal(inventory_save(dir, sha_a, "vps-ns", e), 0);
        stale = compile_record(dir, r);
        assert_string_equal(stale, plain);

        /* Damaged: refused with an error, never silently compiled without it. */
        assert_int_equal(state_write_file(dir, STATE_INVENTORY, "{\"x\":1}", 7), 0);
        assert_int_equal(inventory_load(dir, r, &loaded), -EBADMSG);
        assert_int_equal(inventory_remove(dir), 0);
        assert_int_equal(inventory_remove(dir), 0);
        assert_int_equal(inventory_load(dir, r, &loaded), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_hostile),
                cmocka_unit_test_setup_teardown(test_record_uses_matching_inventory, setup_dir,
                                                teardown_dir),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
