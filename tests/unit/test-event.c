/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The event model: violations, journaled writes and agent events survive a JSON round trip byte for byte,
 * hostile strings (quotes, control characters, invalid UTF-8) are sanitised before jansson
 * sees them, the worst-case event fits its stated size, and the decoder refuses anything that
 * is not exactly an event.
 */
#include "ceredis.h"

#include "event.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

static void make_violation(Event *e) {
        event_init(e, EVENT_VIOLATION);
        e->ts_usec = 1788264000123456ull; /* 2026-09-01T12:00:00.123456Z */
        EVENT_SET(e->host, "vps1");
        EVENT_SET(e->rule, "AI-2");
        e->severity = POLICY_SEVERITY_CRITICAL;
        e->action = EVENT_ACTION_BLOCKED;
        EVENT_SET(e->src.service, "oll\"ama\\");
        EVENT_SET(e->src.ip, "172.18.0.5");
        e->src.port = 40000;
        EVENT_SET(e->dst.service, "post\ngres\x01\x1f");
        EVENT_SET(e->dst.ip, "fd00::5");
        e->dst.port = 5432;
        EVENT_SET(e->proto, "tcp");
        e->has_l7 = true;
        EVENT_SET(e->l7.protocol, "postgresql");
        EVENT_SET(e->l7.method, "INSERT");
        EVENT_SET(e->l7.path, "/é€😀</script>");
        EVENT_SET(e->l7.statement_class, "write");
        e->count = 17;
}

static void assert_events_equal(const Event *a, const Event *b) {
        /* Every field, through a second encoding: equal events encode to equal text. */
        _cleanup_free_ char *ta = NULL, *tb = NULL;
        size_t la, lb;

        assert_int_equal(event_format(a, &ta, &la), 0);
        assert_int_equal(event_format(b, &tb, &lb), 0);
        assert_int_equal(la, lb);
        assert_string_equal(ta, tb);
        assert_int_equal(a->kind, b->kind);
        assert_true(a->ts_usec == b->ts_usec);
        assert_int_equal(a->count, b->count);
        assert_int_equal(a->has_l7, b->has_l7);
}

static void test_violation_round_trip(void **state) {
        _cleanup_free_ char *text = NULL;
        Event e, back;
        size_t len;

        make_violation(&e);
        assert_int_equal(event_format(&e, &text, &len), 0);
        assert_null(memchr(text, '\n', len)); /* one line, whatever the strings hold */
        assert_non_null(strstr(text, "\"ts\":\"2026-09-01T12:00:00.123456Z\""));
        assert_non_null(strstr(text, "\"rule\":\"AI-2\""));
        assert_non_null(strstr(text, "\"severity\":\"critical\""));
        assert_non_null(strstr(text, "\"action\":\"blocked\""));
        assert_non_null(strstr(text, "oll\\\"ama\\\\"));
        assert_non_null(strstr(text, "\\u0001"));
        assert_int_equal(event_parse(text, len, &back), 0);
        assert_string_equal(back.src.service, "oll\"ama\\");
        assert_string_equal(back.dst.service, "post\ngres\x01\x1f");
        assert_string_equal(back.l7.path, "/é€😀</script>");
        assert_int_equal(back.dst.port, 5432);
        assert_events_equal(&e, &back);

        /* Without L7, the key is absent and comes back absent. */
        e.has_l7 = false;
        free(text);
        text = NULL;
        assert_int_equal(event_format(&e, &text, &len), 0);
        assert_null(strstr(text, "\"l7\""));
        assert_int_equal(event_parse(text, len, &back), 0);
        assert_false(back.has_l7);
        assert_events_equal(&e, &back);
}

static void test_agent_event_round_trip(void **state) {
        _cleanup_free_ char *text = NULL;
        Event e, back;
        size_t len;

        event_init(&e, EVENT_EVENTLOG_RECOVERED);
        assert_true(e.ts_usec > 1600000000000000ull); /* event_init stamps now */
        EVENT_SET(e.host, "vps1");
        EVENT_SET(e.detail, "cut 42 bytes of a torn write");
        e.severity = POLICY_SEVERITY_HIGH;
        e.count = 42;
        assert_int_equal(event_format(&e, &text, &len), 0);
        assert_non_null(strstr(text, "\"kind\":\"eventlog-recovered\""));
        assert_null(strstr(text, "\"rule\""));
        assert_int_equal(event_parse(text, len, &back), 0);
        assert_string_equal(back.detail, "cut 42 bytes of a torn write");
        assert_events_equal(&e, &back);
}

static void test_write_round_trip(void **state) {
        _cleanup_free_ char *text = NULL;
        Event e, back;
        json_t *j;
        size_t len;

        /* A journaled write has the fields of a violation under its own kind. */
        event_init(&e, EVENT_WRITE);
        e.ts_usec = 1788264000000001ull;
        EVENT_SET(e.host, "vps1");
        EVENT_SET(e.rule, EVENT_RULE_WRITE);
        e.action = EVENT_ACTION_OBSERVED;
        EVENT_SET(e.src.service, "api");
        EVENT_SET(e.src.ip, "172.18.0.6");
        e.src.port = 41000;
        EVENT_SET(e.dst.service, "cass");
        EVENT_SET(e.dst.ip, "172.18.1.4");
        e.dst.port = 8080;
        EVENT_SET(e.proto, "tcp");
        e.has_l7 = true;
        EVENT_SET(e.l7.protocol, "http");
        EVENT_SET(e.l7.method, "POST");
        EVENT_SET(e.l7.path, "/api/competency");
        EVENT_SET(e.l7.statement_class, "write");
        e.count = 3;
        assert_true(event_kind_is_flow(EVENT_WRITE));
        assert_false(event_kind_is_flow(EVENT_POLICY_RELOADED));
        assert_int_equal(event_format(&e, &text, &len), 0);
        assert_non_null(strstr(text, "\"kind\":\"write\""));
        assert_non_null(strstr(text, "\"rule\":\"DATA-3\""));
        assert_non_null(strstr(text, "\"severity\":\"low\""));
        assert_non_null(strstr(text, "\"src\":{\"service\":\"api\""));
        assert_null(strstr(text, "\"detail\""));
        assert_int_equal(event_parse(text, len, &back), 0);
        assert_int_equal(back.kind, EVENT_WRITE);
        assert_string_equal(back.rule, "DATA-3");
        assert_string_equal(back.src.service, "api");
        assert_string_equal(back.dst.service, "cass");
        assert_int_equal(back.dst.port, 8080);
        assert_string_equal(back.l7.method, "POST");
        assert_string_equal(back.l7.path, "/api/competency");
        assert_int_equal(back.action, EVENT_ACTION_OBSERVED);
        assert_events_equal(&e, &back);

        /* The strict decoder holds for this kind too: a detail key is not a write's. */
        j = json_loads(text, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_object_set_new(j, "detail", json_string("x")), 0);
        assert_int_equal(event_from_json(j, &back), -EBADMSG);
        assert_int_equal(json_object_del(j, "detail"), 0);
        assert_int_equal(json_object_del(j, "src"), 0);
        assert_int_equal(event_from_json(j, &back), -EBADMSG);
        json_decref(j);
}

static void test_sanitise(void **state) {
        char small[4], buf[64];

        assert_false(EVENT_SET(buf, "plain ascii"));
        assert_string_equal(buf, "plain ascii");
        assert_false(EVENT_SET(buf, "é€😀"));
        assert_string_equal(buf, "é€😀");
        assert_true(EVENT_SET(buf, "a\xff\xfe" "b"));
        assert_string_equal(buf, "a??b");
        assert_true(EVENT_SET(buf, "\xc0\xaf")); /* overlong '/' */
        assert_string_equal(buf, "??");
        assert_true(EVENT_SET(buf, "\xed\xa0\x80")); /* a UTF-16 surrogate */
        assert_string_equal(buf, "???");
        assert_true(EVENT_SET(buf, "\xf4\x90\x80\x80")); /* past U+10FFFF */
        assert_string_equal(buf, "????");
        assert_true(EVENT_SET(buf, "ab\xe2\x82")); /* cut sequence at the end */
        assert_string_equal(buf, "ab??");
        /* Truncation never splits a character. */
        assert_true(EVENT_SET(small, "a\xc3\xa9\xe2\x82\xac"));
        assert_string_equal(small, "a\xc3\xa9");
        assert_true(EVENT_SET(small, "abcdef"));
        assert_string_equal(small, "abc");
        assert_false(EVENT_SET(buf, NULL));
        assert_string_equal(buf, "");

        /* A producer that bypassed EVENT_SET still encodes: the encoder sanitises again. */
        Event e;
        _cleanup_free_ char *text = NULL;
        size_t len;
        make_violation(&e);
        memcpy(e.src.service, "x\xff\xc0y", 5);
        memset(e.dst.service, 'A', sizeof(e.dst.service)); /* no NUL at all */
        assert_int_equal(event_format(&e, &text, &len), 0);
        assert_non_null(strstr(text, "\"service\":\"x??y\""));
        Event back;
        assert_int_equal(event_parse(text, len, &back), 0);
        assert_int_equal(strlen(back.dst.service), sizeof(e.dst.service) - 1);
}

static void fill(char *field, size_t size, char c) {
        memset(field, c, size - 1);
        field[size - 1] = '\0';
}

#define FILL(f, c) fill((f), sizeof(f), (c))

static void test_worst_case_size(void **state) {
        _cleanup_free_ char *text = NULL;
        Event e, back;
        size_t len;

        make_violation(&e);
        e.count = INT64_MAX;
        e.ts_usec = 253402300799999999ull;
        FILL(e.host, '\x01');
        FILL(e.rule, '\x01');
        FILL(e.src.service, '\x01');
        FILL(e.src.ip, '\x01');
        FILL(e.dst.service, '\x01');
        FILL(e.dst.ip, '\x01');
        FILL(e.proto, '\x01');
        FILL(e.l7.protocol, '\x01');
        FILL(e.l7.method, '\x01');
        FILL(e.l7.path, '\x01');
        FILL(e.l7.statement_class, '\x01');
        assert_int_equal(event_format(&e, &text, &len), 0);
        assert_true(len <= EVENT_MAX_JSON);
        assert_int_equal(event_parse(text, len, &back), 0);
        assert_events_equal(&e, &back);

        free(text);
        text = NULL;
        event_init(&e, EVENT_RULESET_DRIFT);
        FILL(e.host, '\x01');
        FILL(e.detail, '\x01');
        assert_int_equal(event_format(&e, &text, &len), 0);
        assert_true(len <= EVENT_MAX_JSON);
}

static void test_timestamps(void **state) {
        char buf[EVENT_TS_MAX];
        uint64_t t;

        assert_int_equal(event_ts_parse("2024-02-29T23:59:59.5Z", &t), 0);
        assert_int_equal(event_ts_format(t, buf), 0);
        assert_string_equal(buf, "2024-02-29T23:59:59.500000Z");
        assert_int_equal(event_ts_parse("1970-01-01T00:00:00Z", &t), 0);
        assert_true(t == 0);
        assert_int_equal(event_ts_parse("2026-09-01T12:00:00.123456789Z", &t), 0);
        assert_true(t == 1788264000123456ull);
        assert_int_equal(event_ts_parse("2023-02-29T00:00:00Z", &t), -EINVAL);
        assert_int_equal(event_ts_parse("2026-09-01T12:00:00+02:00", &t), -EINVAL);
        assert_int_equal(event_ts_parse("2026-09-01 12:00:00Z", &t), -EINVAL);
        assert_int_equal(event_ts_parse("2026-09-01T12:00:00.Z", &t), -EINVAL);
        assert_int_equal(event_ts_parse("2026-09-01T12:00:00.1234567890Z", &t), -EINVAL);
        assert_int_equal(event_ts_parse("2026-09-01T24:00:00Z", &t), -EINVAL);
        assert_int_equal(event_ts_parse("2026-09-01T12:00:00Zjunk", &t), -EINVAL);
        assert_int_equal(event_ts_parse("", &t), -EINVAL);
}

static void test_strict_decoder(void **state) {
        static const char *const bad[] = {
                "",
                "[]",
                "{}",
                "{\"kind\":\"violation\"}",
                /* unknown kind */
                "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"nope\",\"host\":\"h\",\"severity\":\"low\",\"detail\":\"\",\"count\":1}",
                /* unknown key */
                "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"agent-started\",\"host\":\"h\",\"severity\":\"low\",\"detail\":\"\",\"count\":1,\"x\":1}",
                /* duplicate key */
                "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"agent-started\",\"host\":\"h\",\"host\":\"h\",\"severity\":\"low\",\"detail\":\"\",\"count\":1}",
                /* missing key */
                "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"agent-started\",\"host\":\"h\",\"severity\":\"low\",\"count\":1}",
                /* wrong types, bad enum, bad ts, negative count, embedded NUL */
                "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"agent-started\",\"host\":1,\"severity\":\"low\",\"detail\":\"\",\"count\":1}",
                "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"agent-started\",\"host\":\"h\",\"severity\":\"urgent\",\"detail\":\"\",\"count\":1}",
                "{\"ts\":\"yesterday\",\"kind\":\"agent-started\",\"host\":\"h\",\"severity\":\"low\",\"detail\":\"\",\"count\":1}",
                "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"agent-started\",\"host\":\"h\",\"severity\":\"low\",\"detail\":\"\",\"count\":-1}",
                "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"agent-started\",\"host\":\"h\",\"severity\":\"low\",\"detail\":\"\",\"count\":1.5}",
                "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"agent-started\",\"host\":\"a\\u0000b\",\"severity\":\"low\",\"detail\":\"\",\"count\":1}",
                /* a violation with an agent event's key, a port out of range, an l7 with a stray key */
                "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"violation\",\"host\":\"h\",\"rule\":\"R\",\"severity\":\"low\",\"action\":\"blocked\",\"src\":{\"service\":\"a\",\"ip\":\"\",\"port\":1},\"dst\":{\"service\":\"b\",\"ip\":\"\",\"port\":2},\"proto\":\"tcp\",\"count\":1,\"detail\":\"\"}",
                "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"violation\",\"host\":\"h\",\"rule\":\"R\",\"severity\":\"low\",\"action\":\"blocked\",\"src\":{\"service\":\"a\",\"ip\":\"\",\"port\":65536},\"dst\":{\"service\":\"b\",\"ip\":\"\",\"port\":2},\"proto\":\"tcp\",\"count\":1}",
                "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"violation\",\"host\":\"h\",\"rule\":\"R\",\"severity\":\"low\",\"action\":\"blocked\",\"src\":{\"service\":\"a\",\"ip\":\"\",\"port\":1},\"dst\":{\"service\":\"b\",\"ip\":\"\",\"port\":2},\"proto\":\"tcp\",\"count\":1,\"l7\":{\"protocol\":\"http\",\"method\":\"\",\"path\":\"\",\"statement_class\":\"\",\"x\":0}}",
                "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"violation\",\"host\":\"h\",\"rule\":\"R\",\"severity\":\"low\",\"action\":\"dropped\",\"src\":{\"service\":\"a\",\"ip\":\"\",\"port\":1},\"dst\":{\"service\":\"b\",\"ip\":\"\",\"port\":2},\"proto\":\"tcp\",\"count\":1}",
                /* invalid UTF-8 in the text itself */
                "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"agent-started\",\"host\":\"\xff\",\"severity\":\"low\",\"detail\":\"\",\"count\":1}",
        };
        static const char good[] =
                "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"violation\",\"host\":\"h\",\"rule\":\"R\",\"severity\":\"low\",\"action\":\"observed\",\"src\":{\"service\":\"internet\",\"ip\":\"198.51.100.7\",\"port\":1},\"dst\":{\"service\":\"b\",\"ip\":\"\",\"port\":2},\"proto\":\"tcp\",\"count\":1}";
        char big[EVENT_MAX_JSON + 2];
        Event e;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = event_parse(bad[i], strlen(bad[i]), &e);
                if (r != -EBADMSG)
                        fail_msg("accepted or wrong error %d: %s", r, bad[i]);
        }
        assert_int_equal(event_parse(good, strlen(good), &e), 0);
        assert_int_equal(e.action, EVENT_ACTION_OBSERVED);
        assert_string_equal(e.src.service, "internet");

        /* A string one past its field's capacity is refused, not truncated. */
        char host[EVENT_MAX_HOST + 1];
        _cleanup_free_ char *text = NULL;
        memset(host, 'h', EVENT_MAX_HOST);
        host[EVENT_MAX_HOST] = '\0';
        assert_true(asprintf(&text,
                             "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"agent-started\",\"host\":\"%s\","
                             "\"severity\":\"low\",\"detail\":\"\",\"count\":1}",
                             host) > 0);
        assert_int_equal(event_parse(text, strlen(text), &e), -EBADMSG);
        host[EVENT_MAX_HOST - 1] = '\0';
        free(text);
        assert_true(asprintf(&text,
                             "{\"ts\":\"2026-09-01T12:00:00Z\",\"kind\":\"agent-started\",\"host\":\"%s\","
                             "\"severity\":\"low\",\"detail\":\"\",\"count\":1}",
                             host) > 0);
        assert_int_equal(event_parse(text, strlen(text), &e), 0);

        memset(big, ' ', sizeof(big));
        assert_int_equal(event_parse(big, sizeof(big), &e), -E2BIG);
}

static void test_names(void **state) {
        EventKind k;
        EventAction a;
        EventSeverity s;

        for (int i = 0; i < _EVENT_KIND_MAX; i++) {
                assert_non_null(event_kind_to_string((EventKind) i));
                assert_int_equal(event_kind_from_string(event_kind_to_string((EventKind) i), &k), 0);
                assert_int_equal(k, i);
        }
        assert_null(event_kind_to_string(_EVENT_KIND_MAX));
        assert_int_equal(event_action_from_string("contained", &a), 0);
        assert_int_equal(a, EVENT_ACTION_CONTAINED);
        assert_int_equal(event_severity_from_string("medium", &s), 0);
        assert_int_equal(s, POLICY_SEVERITY_MEDIUM);
        assert_int_equal(event_severity_from_string("Medium", &s), -EINVAL);

        Event e;
        json_t *j;
        make_violation(&e);
        e.action = (EventAction) 99;
        assert_int_equal(event_to_json(&e, &j), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_violation_round_trip),
                cmocka_unit_test(test_agent_event_round_trip),
                cmocka_unit_test(test_write_round_trip),
                cmocka_unit_test(test_sanitise),
                cmocka_unit_test(test_worst_case_size),
                cmocka_unit_test(test_timestamps),
                cmocka_unit_test(test_strict_decoder),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
