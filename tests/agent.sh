#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The enforcement loop end to end (issue 3, items 3-4), inside a namespace this suite creates:
# ceredis-agent applies the reference policy and repairs every kind of tampering (flushed
# table, deleted table, deleted rule, added rule, flushed set) within one second, reporting a
# drift line; SIGHUP with a broken policy keeps the old ruleset, with a valid change applies
# it; SIGTERM leaves the rules in place; `ceredisctl apply --confirm` rolls back unless
# confirmed; `disable` removes only the agent's table, and a running agent then stands down;
# a running agent follows `ceredisctl apply`. Run as root with CEREDIS_BUILD=<build dir>.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib/tap.sh"
. "$here/lib/netns.sh"

build=${CEREDIS_BUILD:-$top/build}
ctl="$build/ceredisctl"
agent="$build/ceredis-agent"

if [ "$(id -u)" -ne 0 ]; then
        skip_check "agent suite" "needs root (network namespaces)"
        tap_summary
        exit
fi
for f in "$ctl" "$agent"; do
        [ -x "$f" ] || { skip_check "agent suite" "$f not built"; tap_summary; exit; }
done
command -v nft >/dev/null || { skip_check "agent suite" "nft missing"; tap_summary; exit; }

ns_init agent
t=$ns_tmp
ns_add vps
NS=$(ns_name vps)
state="$t/state"
ref="$top/policies/ceredis.yaml"
endpoints="$top/tests/data/endpoints.json"
variant="$top/tests/policies/variant.yaml"
variant_endpoints="$top/tests/data/agent-variant-endpoints.json"
# The daemon reads a copy, so that the suite can break and change it for SIGHUP.
policy="$t/policy.yaml"
cp "$ref" "$policy"

verify() { "$ctl" verify --netns "$NS" --state-dir "$state" "$@"; }
live() { ns vps nft list table inet ceredis; }
drifts() { grep -c '"event":"drift".*"action":"repaired"' "$t/agent.out" 2>/dev/null || true; }
now_ms() { date +%s%3N; }

# wait_for MS CMD...: poll CMD until it succeeds or MS milliseconds passed.
wait_for() {
        local deadline=$(($(now_ms) + $1))
        shift
        while :; do
                "$@" >/dev/null 2>&1 && return 0
                [ "$(now_ms)" -ge "$deadline" ] && return 1
                sleep 0.05
        done
}

start_agent() {
        : >"$t/agent.out"
        bg "$agent" --policy "$policy" --netns "$NS" --endpoints "$endpoints" \
                --state-dir "$state" --eventlog-key "$state/eventlog.key" --foreground "$@" >>"$t/agent.out" 2>>"$t/agent.err"
        agent_pid=$(ns_last_pid)
}

repaired_since() { [ "$(drifts)" -gt "$1" ] && verify; }

# tamper WHAT CMD...: run CMD inside the namespace; the daemon must report a drift and the
# live table must verify again within one second.
tamper() {
        local what=$1 before start took
        shift
        before=$(drifts)
        start=$(now_ms)
        if ! ns vps "$@" >"$t/tamper.err" 2>&1; then
                not_ok "$what: tampering command failed" "$(cat "$t/tamper.err")"
                return
        fi
        if wait_for 1000 repaired_since "$before"; then
                took=$(($(now_ms) - start))
                ok "$what: repaired and reported in ${took} ms"
        else
                not_ok "$what: repaired and reported within 1 s" "stdout: $(tail -n 3 "$t/agent.out")" \
                        "stderr: $(tail -n 3 "$t/agent.err")" "verify: $(verify 2>&1)"
        fi
}

# The first rule of the first chain that has one: "CHAIN HANDLE".
first_rule() {
        ns vps nft -a list table inet ceredis | awk '
                /^\tchain / { chain = $2; next }
                /^\t\t/ && / # handle [0-9]+$/ && chain != "" && $1 != "type" { print chain, $NF; exit }'
}

# The first set of our table that has elements.
first_set() {
        ns vps nft list table inet ceredis | awk '/^\tset / { set = $2 } /elements = / && set != "" { print set; exit }'
}

# forget PID: a process of ours that already ended; cleanup must not signal its number again.
forget() {
        local keep=() p
        for p in "${ns_pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
        ns_pids=("${keep[@]}")
}

# ---- the daemon applies and repairs ------------------------------------------------------

start_agent
if wait_for 5000 live && wait_for 2000 verify; then
        ok "ceredis-agent applied the policy: table inet ceredis present and verified"
else
        not_ok "ceredis-agent applied the policy" "$(tail -n 5 "$t/agent.err")" "$(verify 2>&1)"
fi
if grep -q '"event":"started"' "$t/agent.out" && grep -q '"host":"vps1"' "$t/agent.out"; then
        ok "a started event is reported as a JSON line naming the host"
else
        not_ok "started event on stdout" "$(head -n 3 "$t/agent.out")"
fi

tamper "nft flush table inet ceredis" nft flush table inet ceredis
tamper "nft delete table inet ceredis" nft delete table inet ceredis
read -r chain handle < <(first_rule)
if [ -n "${handle:-}" ]; then
        tamper "nft delete rule inet ceredis $chain handle $handle" \
                nft delete rule inet ceredis "$chain" handle "$handle"
        tamper "nft insert rule inet ceredis $chain accept" nft insert rule inet ceredis "$chain" accept
else
        not_ok "find a rule to delete" "$(live 2>&1 | head -n 20)"
fi
set=$(first_set)
if [ -n "$set" ]; then
        tamper "nft flush set inet ceredis $set" nft flush set inet ceredis "$set"
else
        not_ok "find a set to flush" "$(live 2>&1 | head -n 20)"
fi

# Every drift line is one JSON object with the fields the reporting sinks will read.
if grep '"event":"drift"' "$t/agent.out" | python3 -c '
import json, sys
n = 0
for line in sys.stdin:
    e = json.loads(line)
    assert e["host"] == "vps1" and e["diff"] and e["action"] == "repaired", e
    assert e["ts"].endswith("Z") and "T" in e["ts"], e
    n += 1
assert n >= 5, n
' 2>"$t/json.err"; then
        ok "drift events are JSON lines {ts, host, event, diff, action}"
else
        not_ok "drift events are JSON lines" "$(cat "$t/json.err")" "$(grep drift "$t/agent.out" | head -n 3)"
fi

# A foreign table is not ours: creating and flushing it causes no repair.
before=$(drifts)
ns vps nft add table ip other && ns vps nft add chain ip other c && ns vps nft flush table ip other
sleep 0.5
if [ "$(drifts)" -eq "$before" ]; then
        ok "changes to a foreign table (ip other) trigger no repair"
else
        not_ok "changes to a foreign table trigger no repair" "$(tail -n 2 "$t/agent.out")"
fi
ns vps nft delete table ip other

# ---- SIGHUP ----------------------------------------------------------------------------

before_table=$(live)
printf 'bogus_key: 1\n' >>"$policy"
kill -HUP "$agent_pid"
if wait_for 2000 grep -q '"event":"reload".*"action":"kept"' "$t/agent.out"; then
        line=$(grep '"event":"reload".*"action":"kept"' "$t/agent.out" | tail -n 1)
        if printf '%s' "$line" | grep -qE "policy.yaml:[0-9]+:[0-9]+: "; then
                ok "SIGHUP with a broken policy: reported with FILE:LINE:COL, old policy kept"
        else
                not_ok "SIGHUP broken policy error names FILE:LINE:COL" "$line"
        fi
else
        not_ok "SIGHUP with a broken policy is reported" "$(tail -n 3 "$t/agent.out")"
fi
check "after the broken reload: verify 0" verify
if [ "$(live)" = "$before_table" ]; then ok "after the broken reload: the live table is unchanged"
else not_ok "after the broken reload: the live table is unchanged"; fi
kill -0 "$agent_pid" 2>/dev/null && ok "the agent survives a broken reload" || not_ok "the agent survives a broken reload"

# A valid change: another management port.
sed 's/port: 22, proto: tcp/port: 2202, proto: tcp/' "$ref" >"$policy"
kill -HUP "$agent_pid"
if wait_for 2000 grep -q '"event":"reload".*"action":"applied"' "$t/agent.out" &&
   wait_for 1000 sh -c "ip netns exec '$NS' nft list table inet ceredis | grep -w 2202 >/dev/null"; then
        ok "SIGHUP with a changed valid policy: applied (management port 2202 live)"
else
        not_ok "SIGHUP with a changed valid policy is applied" "$(tail -n 3 "$t/agent.out")" "$(tail -n 3 "$t/agent.err")"
fi
check "after the reload: verify 0 against the new policy" verify
if ! live | grep -w 22 >/dev/null; then ok "after the reload: the old management port 22 is gone"
else not_ok "after the reload: the old management port 22 is gone"; fi

# ---- the agent follows ceredisctl apply, and stands down on disable ------------------------

check "ceredisctl apply of the variant while the agent runs" \
        "$ctl" apply "$variant" --host front-a --netns "$NS" --endpoints "$variant_endpoints" --state-dir "$state"
if wait_for 2000 grep -q '"event":"policy-changed".*"action":"adopted"' "$t/agent.out"; then
        ok "the agent follows the applied variant (policy-changed event)"
else
        not_ok "the agent follows ceredisctl apply" "$(tail -n 3 "$t/agent.out")"
fi
tamper "variant followed: nft flush table inet ceredis" nft flush table inet ceredis
if live | grep -w 8443 >/dev/null; then ok "the repaired table is the variant's (port 8443)"
else not_ok "the repaired table is the variant's"; fi

check "ceredisctl disable while the agent runs" "$ctl" disable --state-dir "$state"
sleep 1.2
if ! live >/dev/null 2>&1; then ok "the agent does not repair a disabled table"
else not_ok "the agent does not repair a disabled table" "$(tail -n 3 "$t/agent.out")"; fi
grep -q '"event":"disabled"' "$t/agent.out" && ok "the agent reports that it stands down" ||
        not_ok "the agent reports that it stands down" "$(tail -n 3 "$t/agent.out")"

# SIGHUP after disable: the operator asks for the configured policy again.
kill -HUP "$agent_pid"
if wait_for 2000 live && wait_for 1000 verify; then ok "SIGHUP after disable re-applies the configured policy"
else not_ok "SIGHUP after disable re-applies the configured policy" "$(tail -n 3 "$t/agent.err")"; fi

# ---- SIGTERM: fail closed ----------------------------------------------------------------

kill -TERM "$agent_pid"
rc=0
wait "$agent_pid" 2>/dev/null || rc=$?
forget "$agent_pid"
if [ "$rc" -eq 0 ] && ! kill -0 "$agent_pid" 2>/dev/null; then ok "SIGTERM: the agent exits 0"
else not_ok "SIGTERM: the agent exits 0" "exit $rc" "$(tail -n 3 "$t/agent.err")"; fi
check "SIGTERM: the table stays in the kernel (fail closed)" live
check "SIGTERM: verify 0 after the agent stopped" verify

# ---- ceredisctl apply --confirm --------------------------------------------------------

previous_table=$(live)
vapply() { "$ctl" apply "$variant" --host front-a --netns "$NS" --endpoints "$variant_endpoints" --state-dir "$state" "$@"; }
check "apply --confirm 2 of the variant" vapply --confirm 2
if live | grep -w 8443 >/dev/null; then ok "the variant is live while it waits for confirmation"
else not_ok "the variant is live while it waits for confirmation"; fi
check_fails "a second apply while a confirmation is pending is refused" vapply
prev_policy() { verify --json | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["policy"] != sys.argv[1])' "$policy"; }
if wait_for 4000 prev_policy; then
        if [ "$(live)" = "$previous_table" ]; then
                ok "not confirmed: the previous ruleset is back after ~2 s, and verifies"
        else
                not_ok "not confirmed: the previous ruleset is back" "$(diff <(printf '%s\n' "$previous_table") <(live) | head -n 10)"
        fi
else
        not_ok "not confirmed: rolled back within 4 s" "$(verify 2>&1)" "$(tail -n 2 "$state/history.jsonl")"
fi
grep -q '"event":"rollback"' "$state/history.jsonl" && ok "the rollback is recorded in the history" ||
        not_ok "the rollback is recorded in the history"
wait_for 1000 test ! -e "$state/rollback.pid" && ok "the rollback timer is gone" || not_ok "the rollback timer is gone"

out=$("$ctl" confirm --state-dir "$state" 2>&1); rc=$?
if [ "$rc" -eq 1 ] && printf '%s' "$out" | grep -q "nothing to confirm"; then
        ok "confirm with nothing pending: exit 1, says so"
else
        not_ok "confirm with nothing pending: exit 1" "exit $rc: $out"
fi

check "apply --confirm 2 of the variant, again" vapply --confirm 2
check "confirm" "$ctl" confirm --state-dir "$state"
sleep 2.6
if live | grep -w 8443 >/dev/null && verify >/dev/null; then ok "confirmed: the variant stays after the deadline"
else not_ok "confirmed: the variant stays after the deadline" "$(verify 2>&1)"; fi
[ ! -e "$state/rollback.pid" ] && ok "the confirmed timer exited" || not_ok "the confirmed timer exited"

# Nothing applied before: rolling back means removing the table.
check "apply --confirm 1 into a fresh state directory" \
        "$ctl" apply "$ref" --netns "$NS" --endpoints "$endpoints" --state-dir "$t/fresh" --confirm 1
if wait_for 3000 sh -c "! ip netns exec '$NS' nft list table inet ceredis"; then
        ok "not confirmed with nothing applied before: the table is removed"
else
        not_ok "not confirmed with nothing applied before: the table is removed"
fi
out=$("$ctl" verify --netns "$NS" --state-dir "$t/fresh" 2>&1); rc=$?
[ "$rc" -eq 2 ] && ok "verify after rolling back to nothing: exit 2 ($out)" || not_ok "verify after rolling back to nothing: exit 2" "exit $rc: $out"

# ---- errors ----------------------------------------------------------------------------

check "re-apply the reference" "$ctl" apply "$ref" --netns "$NS" --endpoints "$endpoints" --state-dir "$state"
before_table=$(live)
printf 'version: 1\nmode: sometimes\n' >"$t/broken.yaml"
out=$("$ctl" apply "$t/broken.yaml" --netns "$NS" --state-dir "$state" 2>&1); rc=$?
if [ "$rc" -eq 1 ] && printf '%s' "$out" | grep -qE "broken.yaml:[0-9]+:[0-9]+: "; then
        ok "apply of an invalid policy: exit 1 with FILE:LINE:COL"
else
        not_ok "apply of an invalid policy: exit 1 with FILE:LINE:COL" "exit $rc: $out"
fi
[ "$(live)" = "$before_table" ] && ok "the invalid policy changed nothing" || not_ok "the invalid policy changed nothing"
out=$("$ctl" verify --netns "$NS" --state-dir "$t/empty" 2>&1); rc=$?
[ "$rc" -eq 2 ] && ok "verify with nothing applied: exit 2" || not_ok "verify with nothing applied: exit 2" "exit $rc: $out"
ns vps nft flush table inet ceredis
out=$(verify 2>&1); rc=$?
[ "$rc" -eq 1 ] && ok "verify of a flushed table: exit 1 and prints the difference ($out)" ||
        not_ok "verify of a flushed table: exit 1" "exit $rc: $out"

# ---- disable removes only our table ------------------------------------------------------

ns vps nft add table ip nat && ns vps nft add chain ip nat prerouting '{ type nat hook prerouting priority -100; }'
check "ceredisctl disable" "$ctl" disable --netns "$NS" --state-dir "$state"
if ! live >/dev/null 2>&1; then ok "disable removed table inet ceredis"; else not_ok "disable removed table inet ceredis"; fi
check "disable left the foreign table ip nat alone" ns vps nft list chain ip nat prerouting
check_fails "verify after disable: not 0" verify

# ---- sd_notify ---------------------------------------------------------------------------

python3 - "$t/notify.sock" >"$t/notify.out" 2>&1 <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
seen, deadline = set(), time.time() + 8
while time.time() < deadline and not {"READY=1", "WATCHDOG=1"} <= seen:
    s.settimeout(max(0.01, deadline - time.time()))
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        break
    seen.update(msg.split("\n"))
print(" ".join(sorted(x for x in seen if x.split("=")[0] in ("READY", "WATCHDOG", "STATUS"))))
EOF
listener=$!
ns_pids+=("$listener")
wait_for 10000 test -S "$t/notify.sock"
NOTIFY_SOCKET="$t/notify.sock" WATCHDOG_USEC=200000 start_agent
wait "$listener" 2>/dev/null
forget "$listener"
if grep -q "READY=1" "$t/notify.out" && grep -q "WATCHDOG=1" "$t/notify.out" && grep -q "STATUS=enforcing" "$t/notify.out"; then
        ok "sd_notify: READY=1, STATUS=enforcing..., WATCHDOG=1"
else
        not_ok "sd_notify: READY=1, STATUS, WATCHDOG=1" "$(cat "$t/notify.out")"
fi
ns_kill "$agent_pid"

tap_summary
