# SPDX-License-Identifier: GPL-2.0-or-later
# Test result bookkeeping shared by the end-to-end suites: each check prints "ok - WHAT" or
# "not ok - WHAT" (with the reason on the next lines, indented), and tap_summary prints the
# line ./dev reads, "N passed, N failed", and returns non-zero when anything failed.
# Source it; it defines no traps and runs nothing.

tap_passed=0
tap_failed=0

ok() {
        tap_passed=$((tap_passed + 1))
        printf 'ok - %s\n' "$*"
}

# not_ok WHAT [DETAIL...]: a failed check; DETAIL lines are printed indented under it.
not_ok() {
        local what=$1
        shift
        tap_failed=$((tap_failed + 1))
        printf 'not ok - %s\n' "$what"
        local d
        for d in "$@"; do
                printf '%s\n' "$d" | sed 's/^/    # /'
        done
}

# check WHAT CMD...: ok when CMD exits 0; otherwise not ok with CMD's output as the detail.
check() {
        local what=$1 out rc=0
        shift
        out=$("$@" 2>&1) || rc=$?
        if [ "$rc" -eq 0 ]; then
                ok "$what"
        else
                not_ok "$what" "exit $rc: $*" "$(printf '%s\n' "$out" | tail -n 15)"
        fi
}

# check_fails WHAT CMD...: ok when CMD exits non-zero.
check_fails() {
        local what=$1 out rc=0
        shift
        out=$("$@" 2>&1) || rc=$?
        if [ "$rc" -ne 0 ]; then
                ok "$what"
        else
                not_ok "$what" "expected failure, got exit 0: $*" "$(printf '%s\n' "$out" | tail -n 15)"
        fi
}

# skip_check WHAT WHY: a check that could not run counts as failed, never as passed.
skip_check() {
        not_ok "$1" "could not run: $2"
}

tap_summary() {
        printf '%d passed, %d failed\n' "$tap_passed" "$tap_failed"
        [ "$tap_failed" -eq 0 ]
}
