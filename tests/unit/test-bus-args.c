/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The D-Bus API's argument checks (agent/daemon/bus-args.c): what a caller may send as a
 * policy path, a since duration, a confirmation token and a confirmation delay, and that
 * everything else, including oversized input, is refused.
 */
#include "ceredis.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "daemon/bus-args.h"

static void test_policy_path(void **state) {
        char big[BUS_PATH_MAX + 2];

        assert_int_equal(bus_check_policy_path("/etc/ceredis/policy.yaml"), 0);
        assert_int_equal(bus_check_policy_path("/tmp/x.y..z/p.yaml"), 0);
        assert_int_equal(bus_check_policy_path("/a"), 0);
        assert_int_equal(bus_check_policy_path(NULL), -EINVAL);
        assert_int_equal(bus_check_policy_path(""), -EINVAL);
        assert_int_equal(bus_check_policy_path("policy.yaml"), -EINVAL);
        assert_int_equal(bus_check_policy_path("/etc/../etc/shadow"), -EINVAL);
        assert_int_equal(bus_check_policy_path("/etc/./policy.yaml"), -EINVAL);
        assert_int_equal(bus_check_policy_path("/etc/.."), -EINVAL);
        assert_int_equal(bus_check_policy_path("/etc/ceredis/"), -EINVAL);
        assert_int_equal(bus_check_policy_path("/"), -EINVAL);
        assert_int_equal(bus_check_policy_path("/etc/pol\nicy"), -EINVAL);
        assert_int_equal(bus_check_policy_path("/etc/pol\x7f"), -EINVAL);

        memset(big, 'a', sizeof(big));
        big[0] = '/';
        big[BUS_PATH_MAX] = 0; /* exactly the cap */
        assert_int_equal(bus_check_policy_path(big), 0);
        big[BUS_PATH_MAX] = 'a';
        big[BUS_PATH_MAX + 1] = 0;
        assert_int_equal(bus_check_policy_path(big), -ENAMETOOLONG);
}

static void test_since(void **state) {
        assert_int_equal(bus_check_since(""), 0);
        assert_int_equal(bus_check_since("10m"), 0);
        assert_int_equal(bus_check_since("90s"), 0);
        assert_int_equal(bus_check_since("2d"), 0);
        assert_int_equal(bus_check_since("1w"), 0);
        assert_int_equal(bus_check_since("999999999999h"), 0);
        assert_int_equal(bus_check_since(NULL), -EINVAL);
        assert_int_equal(bus_check_since("1000000000000h"), -EINVAL); /* 13 digits */
        assert_int_equal(bus_check_since("10"), -EINVAL);
        assert_int_equal(bus_check_since("m"), -EINVAL);
        assert_int_equal(bus_check_since("10y"), -EINVAL);
        assert_int_equal(bus_check_since("10mm"), -EINVAL);
        assert_int_equal(bus_check_since("-10m"), -EINVAL);
        assert_int_equal(bus_check_since("--help"), -EINVAL);
        assert_int_equal(bus_check_since(" 10m"), -EINVAL);
        assert_int_equal(bus_check_since("00000000000000000000m"), -EINVAL);
}

static void test_token(void **state) {
        assert_int_equal(bus_check_token("0123456789abcdef0123456789abcdef"), 0);
        assert_int_equal(bus_check_token(NULL), -EINVAL);
        assert_int_equal(bus_check_token(""), -EINVAL);
        assert_int_equal(bus_check_token("0123456789abcdef0123456789abcde"), -EINVAL);
        assert_int_equal(bus_check_token("0123456789abcdef0123456789abcdef0"), -EINVAL);
        assert_int_equal(bus_check_token("0123456789ABCDEF0123456789abcdef"), -EINVAL);
        assert_int_equal(bus_check_token("../../../../etc/passwd0123456789"), -EINVAL);
}

static void test_confirm(void **state) {
        assert_int_equal(bus_check_confirm(0), 0);
        assert_int_equal(bus_check_confirm(1), 0);
        assert_int_equal(bus_check_confirm(BUS_CONFIRM_MAX_SECONDS), 0);
        assert_int_equal(bus_check_confirm(BUS_CONFIRM_MAX_SECONDS + 1), -ERANGE);
        assert_int_equal(bus_check_confirm(UINT32_MAX), -ERANGE);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_policy_path),
                cmocka_unit_test(test_since),
                cmocka_unit_test(test_token),
                cmocka_unit_test(test_confirm),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
