/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The controls engine on fixtures: the reference policy, a real GET /containers/json answer
 * of the testbed (postgres published on 0.0.0.0:5432 and [::]:5432), listeners, TLS results
 * violations and journaled writes. Each verdict is checked together with the evidence that justifies it.
 */
#include "ceredis.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "controls.h"
#include "docker-api.h"
#include "policy.h"
#include "state.h"

typedef struct Fixture {
        Policy *policy;
        DockerInventory inv;
        ControlInputs in;
        ControlResult *r;
        size_t n;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        PolicyError err = {};
        _cleanup_free_ char *data = NULL;
        size_t size;

        assert_non_null(f);
        assert_int_equal(policy_load(SRCDIR "/policies/ceredis.yaml", &f->policy, &err), 0);
        assert_int_equal(state_read_file(SRCDIR "/tests/data/docker/containers.json", 1u << 24, &data, &size), 0);
        assert_int_equal(docker_parse_containers(data, size, &f->inv), 0);
        f->in = (ControlInputs) {
                .policy = f->policy,
                .host = 0,
                .ruleset = 1,
                .ruleset_detail = "table inet ceredis is missing",
                .containers = &f->inv,
                .window = "24h",
        };
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        controls_free_results(f->r, f->n);
        docker_inventory_done(&f->inv);
        policy_free(f->policy);
        free(f);
        return 0;
}

static const ControlResult *eval(Fixture *f, const char *id) {
        controls_free_results(f->r, f->n);
        f->r = NULL;
        assert_int_equal(controls_evaluate(&f->in, &f->r, &f->n), 0);
        for (size_t i = 0; i < f->n; i++)
                if (streq(f->r[i].id, id))
                        return &f->r[i];
        fail_msg("no control %s", id);
        return NULL;
}

static bool has_evidence(const ControlResult *c, const char *needle) {
        for (size_t i = 0; i < c->n_evidence; i++)
                if (strstr(c->evidence[i], needle))
                        return true;
        return false;
}

static void test_every_control_present(void **state) {
        Fixture *f = *state;
        static const char *const ids[] = { "NET-1", "NET-2", "NET-3", "DATA-1", "DATA-2", "DATA-3",
                                           "AI-1", "AI-2", "AI-3", "CIS-2.1", "CIS-2.3", "CIS-2.15", "CIS-5.13" };
        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                assert_non_null(eval(f, ids[i]));
        assert_int_equal(f->n, ELEMENTSOF(ids));
}

static void test_net1_fails_without_ruleset(void **state) {
        Fixture *f = *state;
        uint8_t any6[16] = {};
        ControlListener ls[] = {
                { .proto = IPPROTO_TCP, .family = AF_INET, .port = 5432 },
                { .proto = IPPROTO_TCP, .family = AF_INET6, .port = 5432 },
                { .proto = IPPROTO_TCP, .family = AF_INET, .addr = { 127, 0, 0, 1 }, .port = 5432 },
        };
        memcpy(ls[1].addr, any6, 16);
        f->in.listeners = ls;
        f->in.n_listeners = ELEMENTSOF(ls);
        const ControlResult *c = eval(f, "NET-1");
        assert_int_equal(c->status, CONTROL_FAIL);
        assert_true(has_evidence(c, "postgres"));
        assert_true(has_evidence(c, "0.0.0.0:5432: OPEN"));
        assert_true(has_evidence(c, "[::]:5432: OPEN"));
        assert_true(has_evidence(c, "a host socket listens on 0.0.0.0:5432/tcp"));
        assert_true(has_evidence(c, "a host socket listens on [::]:5432/tcp"));
        assert_false(has_evidence(c, "127.0.0.1"));
        /* The proxy is public: its published 443 is not NET-1's business. */
        assert_false(has_evidence(c, ":443"));
}

static void test_net1_passes_with_ruleset(void **state) {
        Fixture *f = *state;
        f->in.ruleset = 0;
        const ControlResult *c = eval(f, "NET-1");
        assert_int_equal(c->status, CONTROL_PASS);
        assert_true(has_evidence(c, "0.0.0.0:5432: closed"));
        assert_true(has_evidence(c, "[::]:5432: closed"));

        /* Audit mode logs instead of dropping: the published port stays open. */
        f->policy->mode = POLICY_MODE_AUDIT;
        assert_int_equal(eval(f, "NET-1")->status, CONTROL_FAIL);
        f->policy->mode = POLICY_MODE_ENFORCE;
}

static void test_net1_violations(void **state) {
        Fixture *f = *state;
        Event e[2];

        f->in.ruleset = 0;
        event_init(&e[0], EVENT_VIOLATION);
        EVENT_SET(e[0].rule, "NET-1");
        EVENT_SET(e[0].src.service, "internet");
        EVENT_SET(e[0].dst.service, "postgres");
        e[0].action = EVENT_ACTION_BLOCKED;
        e[0].count = 3;
        e[1] = e[0];
        f->in.violations = e;
        f->in.n_violations = 1;
        const ControlResult *c = eval(f, "NET-1");
        assert_int_equal(c->status, CONTROL_PASS);
        assert_true(has_evidence(c, "3 NET-1 attempt(s) blocked"));

        e[1].action = EVENT_ACTION_OBSERVED;
        f->in.n_violations = 2;
        c = eval(f, "NET-1");
        assert_int_equal(c->status, CONTROL_FAIL);
        assert_true(has_evidence(c, "went through"));

        f->in.violations_error = "the event log is altered";
        assert_int_equal(eval(f, "AI-1")->status, CONTROL_ERROR);
}

static void test_net1_error_without_docker(void **state) {
        Fixture *f = *state;
        f->in.containers = NULL;
        f->in.docker_error = "cannot connect";
        const ControlResult *c = eval(f, "NET-1");
        assert_int_equal(c->status, CONTROL_ERROR);
        assert_true(has_evidence(c, "cannot connect"));
        assert_int_equal(eval(f, "CIS-5.13")->status, CONTROL_ERROR);
}

static void test_net2_and_forbids(void **state) {
        Fixture *f = *state;
        const ControlResult *c = eval(f, "NET-2");
        assert_int_equal(c->status, CONTROL_FAIL);
        assert_true(has_evidence(c, "table inet ceredis is missing"));
        f->in.ruleset = 0;
        assert_int_equal(eval(f, "NET-2")->status, CONTROL_PASS);
        assert_int_equal(eval(f, "AI-2")->status, CONTROL_PASS);
        f->in.ruleset = -EPERM;
        f->in.ruleset_detail = NULL;
        assert_int_equal(eval(f, "DATA-1")->status, CONTROL_ERROR);
        /* A policy without the forbid cannot pass it. */
        f->in.ruleset = 0;
        free(f->policy->forbids[f->policy->n_forbids - 1].id);
        f->policy->forbids[f->policy->n_forbids - 1].id = strdup("OTHER");
        c = eval(f, "AI-2");
        assert_int_equal(c->status, CONTROL_FAIL);
        assert_true(has_evidence(c, "no forbid entry with id AI-2"));
}

static void test_manual(void **state) {
        Fixture *f = *state;
        const ControlResult *c = eval(f, "AI-3");
        assert_int_equal(c->status, CONTROL_MANUAL);
        assert_true(has_evidence(c, "by DPO on 2026-09-01"));
        /* Without attestations (hidden, not freed: teardown frees them). */
        size_t n = f->policy->n_controls;
        f->policy->n_controls = 0;
        assert_int_equal(eval(f, "DATA-2")->status, CONTROL_FAIL);
        f->policy->n_controls = n;
}

static void write_event(Event *e, const char *src, const char *dst, uint64_t count) {
        event_init(e, EVENT_WRITE);
        EVENT_SET(e->rule, EVENT_RULE_WRITE);
        EVENT_SET(e->src.service, src);
        EVENT_SET(e->dst.service, dst);
        e->action = EVENT_ACTION_OBSERVED;
        e->count = count;
}

static void test_data3_pass(void **state) {
        Fixture *f = *state;
        Event w[3];

        /* No write in the window: the stores are named, nothing is wrong. */
        const ControlResult *c = eval(f, "DATA-3");
        assert_int_equal(c->status, CONTROL_PASS);
        assert_true(has_evidence(c, "evaluation store cass (policy line 50)"));
        assert_true(has_evidence(c, "evaluation store postgres (policy line 57)"));
        assert_true(has_evidence(c, "no write to an evaluation store journaled in the last 24h"));

        /* Writes of allowed pairs, counted per pair with the flow's line. */
        write_event(&w[0], "api", "cass", 3);
        write_event(&w[1], "cass", "postgres", 5);
        write_event(&w[2], "api", "cass", 2);
        f->in.writes = w;
        f->in.n_writes = ELEMENTSOF(w);
        c = eval(f, "DATA-3");
        assert_int_equal(c->status, CONTROL_PASS);
        assert_true(has_evidence(c, "5 write(s) api -> cass journaled in the last 24h (flow at policy line 106)"));
        assert_true(has_evidence(c, "5 write(s) cass -> postgres journaled in the last 24h (flow at policy line 109)"));
        assert_false(has_evidence(c, "no write"));
        /* Only writes count: a violation in the list is not a journaled write. */
        w[1].kind = EVENT_VIOLATION;
        c = eval(f, "DATA-3");
        assert_int_equal(c->status, CONTROL_PASS);
        assert_false(has_evidence(c, "cass -> postgres"));
}

static void test_data3_fail_unknown_source(void **state) {
        Fixture *f = *state;
        Event w[2];

        write_event(&w[0], "api", "postgres", 1);
        write_event(&w[1], "unknown", "postgres", 4);
        f->in.writes = w;
        f->in.n_writes = 1;
        /* api reaches postgres through no `flows` entry. */
        const ControlResult *c = eval(f, "DATA-3");
        assert_int_equal(c->status, CONTROL_FAIL);
        assert_true(has_evidence(c, "1 write(s) api -> postgres in the last 24h: no `flows` entry allows api to write to postgres"));

        f->in.writes = w + 1;
        c = eval(f, "DATA-3");
        assert_int_equal(c->status, CONTROL_FAIL);
        assert_true(has_evidence(c, "4 write(s) unknown -> postgres in the last 24h: the source is no service of the policy"));

        /* grafana's flow to postgres is read-only: it does not make a write legitimate. */
        write_event(&w[0], "grafana", "postgres", 1);
        f->in.writes = w;
        c = eval(f, "DATA-3");
        assert_int_equal(c->status, CONTROL_FAIL);
        assert_true(has_evidence(c, "no `flows` entry allows grafana to write to postgres"));
}

static void test_data3_fail_no_store(void **state) {
        Fixture *f = *state;
        size_t saved[2] = { f->policy->services[4].n_tags, f->policy->services[5].n_tags };

        assert_string_equal(f->policy->services[4].name, "cass");
        assert_string_equal(f->policy->services[5].name, "postgres");
        /* Hidden, not freed: teardown frees them. */
        f->policy->services[4].n_tags = 0;
        f->policy->services[5].n_tags = 0;
        const ControlResult *c = eval(f, "DATA-3");
        assert_int_equal(c->status, CONTROL_FAIL);
        assert_true(has_evidence(c, "the policy tags no service `evaluation-store`: there is nothing to journal"));
        assert_false(has_evidence(c, "evaluation store cass"));
        f->policy->services[4].n_tags = saved[0];
        f->policy->services[5].n_tags = saved[1];
        assert_int_equal(eval(f, "DATA-3")->status, CONTROL_PASS);
}

static void test_data3_error(void **state) {
        Fixture *f = *state;
        Event w;

        write_event(&w, "api", "cass", 1);
        f->in.writes = &w;
        f->in.n_writes = 1;
        f->in.violations_error = "the event log is tampered at eventlog.jsonl:3: HMAC mismatch";
        const ControlResult *c = eval(f, "DATA-3");
        assert_int_equal(c->status, CONTROL_ERROR);
        assert_true(has_evidence(c, "event log: the event log is tampered"));
        assert_false(has_evidence(c, "api -> cass"));
}

static void test_net3(void **state) {
        Fixture *f = *state;
        ControlTls t = { .target = "203.0.113.10:443", .ok = true, .protocol = "TLSv1.3", .days_left = 80 };

        f->in.tls_error = "connection refused";
        assert_int_equal(eval(f, "NET-3")->status, CONTROL_ERROR);
        f->in.tls = &t;
        assert_int_equal(eval(f, "NET-3")->status, CONTROL_PASS);
        t.ok = false;
        snprintf(t.reasons[0], sizeof(t.reasons[0]), "certificate expired on 2020-01-01T00:00:00Z");
        t.n_reasons = 1;
        const ControlResult *c = eval(f, "NET-3");
        assert_int_equal(c->status, CONTROL_FAIL);
        assert_true(has_evidence(c, "expired"));
}

static void test_cis(void **state) {
        Fixture *f = *state;
        ControlDockerInfo di = { true, true, true, true, true, true };

        f->in.docker_info = &di;
        assert_int_equal(eval(f, "CIS-2.1")->status, CONTROL_FAIL);
        assert_int_equal(eval(f, "CIS-2.3")->status, CONTROL_PASS);
        assert_int_equal(eval(f, "CIS-2.15")->status, CONTROL_FAIL);
        di.icc = false;
        di.userland_proxy = false;
        di.iptables = false;
        assert_int_equal(eval(f, "CIS-2.1")->status, CONTROL_PASS);
        assert_int_equal(eval(f, "CIS-2.3")->status, CONTROL_FAIL);
        assert_int_equal(eval(f, "CIS-2.15")->status, CONTROL_PASS);
        const ControlResult *c = eval(f, "CIS-5.13");
        assert_int_equal(c->status, CONTROL_FAIL);
        assert_true(has_evidence(c, "ceredis_postgres_1 publishes 5432/tcp on [::]:5432"));
}

static void test_address_public(void **state) {
        uint8_t a[16] = {};
        (void) state;
        assert_true(controls_address_public(AF_INET, a));
        assert_true(controls_address_public(AF_INET6, a));
        inet_pton(AF_INET, "127.0.0.1", a);
        assert_false(controls_address_public(AF_INET, a));
        inet_pton(AF_INET, "203.0.113.10", a);
        assert_true(controls_address_public(AF_INET, a));
        inet_pton(AF_INET6, "::1", a);
        assert_false(controls_address_public(AF_INET6, a));
        inet_pton(AF_INET6, "fe80::1", a);
        assert_false(controls_address_public(AF_INET6, a));
        inet_pton(AF_INET6, "::ffff:127.0.0.1", a);
        assert_false(controls_address_public(AF_INET6, a));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_every_control_present, setup, teardown),
                cmocka_unit_test_setup_teardown(test_net1_fails_without_ruleset, setup, teardown),
                cmocka_unit_test_setup_teardown(test_net1_passes_with_ruleset, setup, teardown),
                cmocka_unit_test_setup_teardown(test_net1_violations, setup, teardown),
                cmocka_unit_test_setup_teardown(test_net1_error_without_docker, setup, teardown),
                cmocka_unit_test_setup_teardown(test_net2_and_forbids, setup, teardown),
                cmocka_unit_test_setup_teardown(test_manual, setup, teardown),
                cmocka_unit_test_setup_teardown(test_data3_pass, setup, teardown),
                cmocka_unit_test_setup_teardown(test_data3_fail_unknown_source, setup, teardown),
                cmocka_unit_test_setup_teardown(test_data3_fail_no_store, setup, teardown),
                cmocka_unit_test_setup_teardown(test_data3_error, setup, teardown),
                cmocka_unit_test_setup_teardown(test_net3, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cis, setup, teardown),
                cmocka_unit_test(test_address_public),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
