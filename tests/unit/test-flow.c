/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the bounded flow table: lookups and insertions, least-recently-used eviction
 * when full (a lookup refreshes a flow), idle expiry, and a flood of distinct keys that never
 * grows the table past its capacity nor loses the newest flows.
 */
#include "ceredis.h"

#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "flow.h"

static FlowKey key_of(uint32_t n) {
        FlowKey k = {};

        k.family = AF_INET;
        k.proto = IPPROTO_TCP;
        k.src[0] = 172;
        k.src[1] = 18;
        k.src[2] = (uint8_t) (n >> 8);
        k.src[3] = (uint8_t) n;
        k.dst[0] = 172;
        k.dst[1] = 18;
        k.dst[3] = 6;
        k.sport = (uint16_t) (1024 + (n >> 16));
        k.dport = 5432;
        return k;
}

static void test_insert_lookup(void **state) {
        _cleanup_(flow_table_freep) FlowTable *t = NULL;
        FlowKey a = key_of(1), b = key_of(2);
        FlowStats st;
        Flow *f;

        assert_int_equal(flow_table_new(8, 1000, &t), 0);
        assert_null(flow_lookup(t, &a, 1));
        f = flow_insert(t, &a, 1);
        assert_non_null(f);
        assert_int_equal(f->packets, 1);
        assert_int_equal(f->src_service, FLOW_SERVICE_UNKNOWN);
        assert_int_equal(f->forbid, -1);
        assert_ptr_equal(flow_lookup(t, &a, 5), f);
        assert_int_equal(f->packets, 2);
        assert_int_equal(f->last_usec, 5);
        assert_null(flow_lookup(t, &b, 5));
        assert_non_null(flow_insert(t, &b, 6));
        flow_table_stats(t, &st);
        assert_int_equal(st.n_flows, 2);
        assert_int_equal(st.created, 2);
        flow_remove(t, f);
        assert_null(flow_lookup(t, &a, 7));
        assert_non_null(flow_lookup(t, &b, 7));
        flow_table_clear(t);
        assert_null(flow_lookup(t, &b, 8));
        flow_table_stats(t, &st);
        assert_int_equal(st.n_flows, 0);
}

static void test_lru_eviction(void **state) {
        _cleanup_(flow_table_freep) FlowTable *t = NULL;
        FlowStats st;

        assert_int_equal(flow_table_new(4, 1000000, &t), 0);
        for (uint32_t i = 0; i < 4; i++) {
                FlowKey k = key_of(i);
                assert_non_null(flow_insert(t, &k, 10 + i));
        }
        /* Flow 0 is the oldest, but a lookup makes it the newest: flow 1 must go first. */
        {
                FlowKey k0 = key_of(0), k4 = key_of(4);
                assert_non_null(flow_lookup(t, &k0, 20));
                assert_non_null(flow_insert(t, &k4, 21));
        }
        for (uint32_t i = 0; i < 5; i++) {
                FlowKey k = key_of(i);
                if (i == 1)
                        assert_null(flow_lookup(t, &k, 22));
                else
                        assert_non_null(flow_lookup(t, &k, 22));
        }
        flow_table_stats(t, &st);
        assert_int_equal(st.n_flows, 4);
        assert_int_equal(st.evicted, 1);
}

static void test_expiry(void **state) {
        _cleanup_(flow_table_freep) FlowTable *t = NULL;
        FlowKey a = key_of(1), b = key_of(2), c = key_of(3);
        FlowStats st;

        assert_int_equal(flow_table_new(16, 100, &t), 0);
        assert_non_null(flow_insert(t, &a, 0));
        assert_non_null(flow_insert(t, &b, 50));
        assert_non_null(flow_insert(t, &c, 120));
        /* At 160: a idle 160 > 100 goes, b idle 110 goes, c idle 40 stays. */
        assert_int_equal(flow_table_expire(t, 160), 2);
        assert_null(flow_lookup(t, &a, 160));
        assert_non_null(flow_lookup(t, &c, 160));
        /* A lookup of an expired flow drops it. */
        assert_null(flow_lookup(t, &c, 400));
        flow_table_stats(t, &st);
        assert_int_equal(st.n_flows, 0);
        assert_int_equal(st.expired, 3);
}

static void test_flood_stays_bounded(void **state) {
        _cleanup_(flow_table_freep) FlowTable *t = NULL;
        const uint32_t cap = 1000, n = 100000;
        FlowStats st;

        assert_int_equal(flow_table_new(cap, 1000000000, &t), 0);
        for (uint32_t i = 0; i < n; i++) {
                FlowKey k = key_of(i);
                if (!flow_lookup(t, &k, i))
                        assert_non_null(flow_insert(t, &k, i));
        }
        flow_table_stats(t, &st);
        assert_int_equal(st.n_flows, cap);
        assert_int_equal(st.created, n);
        assert_int_equal(st.evicted, n - cap);
        /* The newest `cap` flows are all there, the one before them is not. */
        for (uint32_t i = n - cap; i < n; i++) {
                FlowKey k = key_of(i);
                assert_non_null(flow_lookup(t, &k, n));
        }
        {
                FlowKey k = key_of(n - cap - 1);
                assert_null(flow_lookup(t, &k, n));
        }
}

static void test_limits(void **state) {
        FlowTable *t = NULL;

        assert_int_equal(flow_table_new(FLOW_CAPACITY_MAX + 1, 0, &t), -E2BIG);
        assert_null(t);
        flow_table_free(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_insert_lookup),
                cmocka_unit_test(test_lru_eviction),
                cmocka_unit_test(test_expiry),
                cmocka_unit_test(test_flood_stays_bounded),
                cmocka_unit_test(test_limits),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
