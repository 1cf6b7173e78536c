/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The metric registry: violations are counted per label set and summed over repeats, the
 * exposition text follows format 0.0.4 (HELP/TYPE lines, escaped label values, every series on
 * one line), and the series cap sends the excess to the _overflow_ series and counts it.
 */
#include "ceredis.h"

#include "metrics.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

static void violation(Event *e, const char *rule, const char *src, const char *dst,
                      EventAction action, uint64_t count) {
        event_init(e, EVENT_VIOLATION);
        EVENT_SET(e->host, "vps1");
        EVENT_SET(e->rule, rule);
        e->severity = POLICY_SEVERITY_CRITICAL;
        e->action = action;
        EVENT_SET(e->src.service, src);
        EVENT_SET(e->dst.service, dst);
        e->count = count;
}

static char *render(const Metrics *m) {
        char *text = NULL;
        size_t len = 0;

        assert_int_equal(metrics_render(m, &text, &len), 0);
        assert_int_equal(strlen(text), len);
        return text;
}

static void test_counts(void **state) {
        _cleanup_(metrics_freep) Metrics *m = NULL;
        _cleanup_free_ char *text = NULL;
        Event e;

        assert_int_equal(metrics_new(0, &m), 0);
        violation(&e, "NET-1", "internet", "postgres", EVENT_ACTION_BLOCKED, 1);
        assert_int_equal(metrics_count_event(m, &e), 0);
        violation(&e, "NET-1", "internet", "postgres", EVENT_ACTION_BLOCKED, 4);
        assert_int_equal(metrics_count_event(m, &e), 0);
        violation(&e, "AI-2", "ollama", "postgres", EVENT_ACTION_OBSERVED, 1);
        assert_int_equal(metrics_count_event(m, &e), 0);
        assert_int_equal(metrics_get_violations(m, "NET-1", "internet", "postgres",
                                                EVENT_ACTION_BLOCKED), 5);
        assert_int_equal(metrics_get_violations(m, "AI-2", "ollama", "postgres",
                                                EVENT_ACTION_OBSERVED), 1);
        assert_int_equal(metrics_get_violations(m, "AI-2", "ollama", "postgres",
                                                EVENT_ACTION_BLOCKED), 0);
        assert_int_equal(metrics_get_series(m), 2);

        event_init(&e, EVENT_RULESET_DRIFT);
        assert_int_equal(metrics_count_event(m, &e), 0);
        text = render(m);
        assert_non_null(strstr(text, "ceredis_ruleset_in_sync 0\n"));
        assert_non_null(strstr(text, "ceredis_ruleset_drifts_total 1\n"));
        free(TAKE_PTR(text));

        event_init(&e, EVENT_RULESET_REPAIRED);
        assert_int_equal(metrics_count_event(m, &e), 0);
        text = render(m);
        assert_non_null(strstr(text, "ceredis_ruleset_in_sync 1\n"));
        assert_non_null(strstr(text, "ceredis_ruleset_repairs_total 1\n"));
        assert_non_null(strstr(text,
                "ceredis_violations_total{rule=\"NET-1\",src_service=\"internet\","
                "dst_service=\"postgres\",action=\"blocked\",severity=\"critical\"} 5\n"));
        assert_non_null(strstr(text, "ceredis_events_total{kind=\"violation\"} 3\n"));
        assert_non_null(strstr(text, "ceredis_events_total{kind=\"ruleset-drift\"} 1\n"));
        assert_non_null(strstr(text, "# TYPE ceredis_violations_total counter\n"));
        assert_null(strstr(text, "ceredis_policy_info"));

        e.kind = _EVENT_KIND_MAX;
        assert_int_equal(metrics_count_event(m, &e), -EINVAL);
}

static void test_writes(void **state) {
        _cleanup_(metrics_freep) Metrics *m = NULL;
        _cleanup_free_ char *text = NULL;
        char src[32];
        Event e;

        assert_int_equal(metrics_new(0, &m), 0);
        /* Journaled writes are no violations: their own counter, per source and store. */
        violation(&e, EVENT_RULE_WRITE, "api", "cass", EVENT_ACTION_OBSERVED, 3);
        e.kind = EVENT_WRITE;
        assert_int_equal(metrics_count_event(m, &e), 0);
        assert_int_equal(metrics_count_event(m, &e), 0);
        text = render(m);
        assert_non_null(strstr(text, "ceredis_writes_journaled_total{src_service=\"api\",dst_service=\"cass\"} 6\n"));
        assert_non_null(strstr(text, "ceredis_events_total{kind=\"write\"} 2\n"));
        assert_non_null(strstr(text, "ceredis_events_total{kind=\"violation\"} 0\n"));
        assert_null(strstr(text, "ceredis_violations_total{"));
        free(TAKE_PTR(text));

        /* Past the pair cap, writes still count, under _overflow_. */
        for (unsigned i = 0; i < METRICS_MAX_WRITE_PAIRS + 5; i++) {
                snprintf(src, sizeof(src), "w-%u", i);
                EVENT_SET(e.src.service, src);
                e.count = 1;
                assert_int_equal(metrics_count_event(m, &e), 0);
        }
        text = render(m);
        assert_non_null(strstr(text, "ceredis_writes_journaled_total{src_service=\"w-0\",dst_service=\"cass\"} 1\n"));
        assert_null(strstr(text, "src_service=\"w-63\""));
        assert_non_null(strstr(text, "ceredis_writes_journaled_total{src_service=\"_overflow_\",dst_service=\"_overflow_\"} 6\n"));
}

static void test_escaping(void **state) {
        _cleanup_(metrics_freep) Metrics *m = NULL;
        _cleanup_free_ char *text = NULL;
        Event e;

        assert_int_equal(metrics_new(0, &m), 0);
        violation(&e, "R\"1", "a\\b", "c\nd", EVENT_ACTION_CONTAINED, 2);
        assert_int_equal(metrics_count_event(m, &e), 0);
        assert_int_equal(metrics_set_policy(m, "ab12", "audit", "vps\"1"), 0);
        text = render(m);
        assert_non_null(strstr(text, "{rule=\"R\\\"1\",src_service=\"a\\\\b\","
                                     "dst_service=\"c\\nd\",action=\"contained\","
                                     "severity=\"critical\"} 2\n"));
        assert_non_null(strstr(text, "ceredis_policy_info{sha256=\"ab12\",mode=\"audit\","
                                     "host=\"vps\\\"1\"} 1\n"));
        /* Every line is a comment or "name{...} value": no raw newline leaked from a label. */
        for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
                *nl = 0;
                assert_true(line[0] == '#' || strncmp(line, "ceredis_", 8) == 0);
        }
}

static void test_cap(void **state) {
        _cleanup_(metrics_freep) Metrics *m = NULL;
        _cleanup_free_ char *text = NULL;
        char src[32];
        Event e;

        assert_int_equal(metrics_new(4, &m), 0);
        for (unsigned i = 0; i < 10; i++) {
                snprintf(src, sizeof(src), "client-%u", i);
                violation(&e, "NET-1", src, "postgres", EVENT_ACTION_BLOCKED, 1);
                assert_int_equal(metrics_count_event(m, &e), i < 4 ? 0 : 1);
        }
        /* A known series still counts once the cap is reached. */
        violation(&e, "NET-1", "client-0", "postgres", EVENT_ACTION_BLOCKED, 1);
        assert_int_equal(metrics_count_event(m, &e), 0);
        assert_int_equal(metrics_get_series(m), 4);
        assert_int_equal(metrics_get_overflow(m), 6);
        assert_int_equal(metrics_get_violations(m, "NET-1", "client-0", "postgres",
                                                EVENT_ACTION_BLOCKED), 2);
        assert_int_equal(metrics_get_violations(m, METRICS_OVERFLOW_RULE, METRICS_OVERFLOW_RULE,
                                                METRICS_OVERFLOW_RULE, EVENT_ACTION_BLOCKED), 6);
        text = render(m);
        assert_non_null(strstr(text, "{rule=\"_overflow_\",src_service=\"_overflow_\","
                                     "dst_service=\"_overflow_\",action=\"blocked\","
                                     "severity=\"low\"} 6\n"));
        assert_non_null(strstr(text, "ceredis_metrics_series_overflow_total 6\n"));
        assert_null(strstr(text, "client-5"));
        assert_int_equal(metrics_new(METRICS_MAX_SERIES_LIMIT + 1, &(Metrics *){ NULL }), -EINVAL);
}

static void test_sinks(void **state) {
        _cleanup_(metrics_freep) Metrics *m = NULL;
        _cleanup_free_ char *text = NULL;
        char name[16];

        assert_int_equal(metrics_new(0, &m), 0);
        assert_int_equal(metrics_sink_dropped(m, "alertmanager", 3), 0);
        assert_int_equal(metrics_sink_dropped(m, "alertmanager", 2), 0);
        assert_int_equal(metrics_sink_delivered(m, "journal", 7), 0);
        assert_int_equal(metrics_sink_set_queued(m, "journal", 9), 0);
        assert_int_equal(metrics_sink_dropped(m, "Bad Name", 1), -EINVAL);
        assert_int_equal(metrics_sink_dropped(m, "", 1), -EINVAL);
        for (unsigned i = 2; i < METRICS_MAX_SINKS; i++) {
                snprintf(name, sizeof(name), "s%u", i);
                assert_int_equal(metrics_sink_dropped(m, name, 0), 0);
        }
        assert_int_equal(metrics_sink_dropped(m, "one-too-many", 1), -E2BIG);
        assert_int_equal(metrics_get_sink_dropped(m, "alertmanager"), 5);
        assert_int_equal(metrics_get_sink_delivered(m, "journal"), 7);
        metrics_set_capture_drops(m, 42);
        text = render(m);
        assert_non_null(strstr(text, "ceredis_sink_dropped_total{sink=\"alertmanager\"} 5\n"));
        assert_non_null(strstr(text, "ceredis_sink_delivered_total{sink=\"journal\"} 7\n"));
        assert_non_null(strstr(text, "ceredis_sink_queued{sink=\"journal\"} 9\n"));
        assert_non_null(strstr(text, "ceredis_capture_drops_total 42\n"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_writes),
                cmocka_unit_test(test_counts),
                cmocka_unit_test(test_escaping),
                cmocka_unit_test(test_cap),
                cmocka_unit_test(test_sinks),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
