#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The daemon's D-Bus API end to end (issue 6): a private dbus-daemon with a system-bus-like
# configuration (tests/data/dbus-system.conf, the shipped org.ceredis.Agent1 rules) on a
# temporary socket, ceredis-agent on it (DBUS_SYSTEM_BUS_ADDRESS) enforcing inside a namespace
# this suite creates, and a NOTIFY_SOCKET this suite listens on. Every ceredisctl verb that
# talks to the agent (status, reload) and the offline ones next to it (violations, audit);
# Status, Audit, Violations, Reload, Apply (with and without confirmation, and its rollback),
# Confirm, the properties and the ViolationDetected signal over the bus; hostile arguments get
# errors; a broken policy on Reload keeps the old one. An unprivileged caller in the group
# `ceredis` may read but is refused state changes by the bus policy, and by the agent itself
# on a permissive bus (tests/data/dbus-permissive.conf). The group exists only inside private
# mount namespaces (a bind-mounted /etc/group), never on the machine. Run as root with
# CEREDIS_BUILD=<build dir>.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib/tap.sh"
. "$here/lib/netns.sh"

build=${CEREDIS_BUILD:-$top/build}
ctl="$build/ceredisctl"
agent="$build/ceredis-agent"

if [ "$(id -u)" -ne 0 ]; then
        skip_check "dbus suite" "needs root (network and mount namespaces)"
        tap_summary
        exit
fi
for f in "$ctl" "$agent"; do
        [ -x "$f" ] || { skip_check "dbus suite" "$f not built"; tap_summary; exit; }
done
for tool in dbus-daemon busctl setpriv unshare nft; do
        command -v "$tool" >/dev/null || { skip_check "dbus suite" "$tool missing"; tap_summary; exit; }
done

ns_init dbus
t=$ns_tmp
chmod 755 "$t" # the unprivileged callers must reach the bus socket
ns_add vps
ns_add inet
NS=$(ns_name vps)
state="$t/state"
ref="$top/policies/ceredis.yaml"
# Another policy for the same host: the reference in audit mode.
variant="$t/audit.yaml"
endpoints="$top/tests/data/endpoints.json"
policy="$t/policy.yaml"
cp "$ref" "$policy"
sed 's/^mode: enforce/mode: audit/' "$ref" >"$variant"
bus="$t/bus"
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$bus"

# The group `ceredis`, only in the mount namespaces of the bus and the agent.
gid=64999
while getent group "$gid" >/dev/null; do gid=$((gid - 1)); done
cp /etc/group "$t/group"
echo "ceredis:x:$gid:nobody" >>"$t/group"
chmod 644 "$t/group"
# Only under bg: it execs, so that the pid bg records is the one that must be stopped.
with_group() { exec unshare --mount --propagation private sh -c 'mount --bind "$0" /etc/group && exec "$@"' "$t/group" "$@"; }

# nobody (65534) is a member of ceredis in the user database; the stranger is another
# account the bus knows (dbus-daemon refuses uids without one), e.g. daemon.
member() { setpriv --reuid=65534 --regid=65534 --groups="$gid" "$@"; }
stranger_uid=$(getent passwd daemon | cut -d: -f3)
stranger_uid=${stranger_uid:-1}
stranger() { setpriv --reuid="$stranger_uid" --regid="$stranger_uid" --clear-groups "$@"; }

now_ms() { date +%s%3N; }
wait_for() {
        local deadline=$(($(now_ms) + $1))
        shift
        while :; do
                "$@" >/dev/null 2>&1 && return 0
                [ "$(now_ms)" -ge "$deadline" ] && return 1
                sleep 0.05
        done
}

# A public interface for the policy's host (eth0, 203.0.113.10) and an Internet client.
ip -n "$NS" link add eth0 type veth peer name up0 netns "$(ns_name inet)"
ip -n "$NS" addr add 203.0.113.10/24 dev eth0
ip -n "$NS" link set eth0 up
ip -n "$NS" route add 198.51.100.0/24 dev eth0
ip -n "$(ns_name inet)" addr add 198.51.100.7/24 dev up0
ip -n "$(ns_name inet)" link set up0 up
ip -n "$(ns_name inet)" route add 203.0.113.0/24 dev up0

start_bus() {
        rm -f "$bus"
        bg with_group dbus-daemon --config-file="$1" --address="unix:path=$bus" --nofork --nopidfile \
                --nosyslog
        bus_pid=$(ns_last_pid)
        wait_for 5000 test -S "$bus"
}

# The NOTIFY_SOCKET listener: one line per datagram.
notify="$t/notify.sock"
bg "$PYTHON" -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        f.write(s.recv(65536).decode(errors="replace").replace("\n", " | ") + "\n")
' "$notify" "$t/notify.log"
wait_for 3000 test -S "$notify"

start_agent() {
        : >"$t/agent.out"
        bg with_group env NOTIFY_SOCKET="$notify" WATCHDOG_USEC=1000000 CEREDIS_CTL_DIR="$build" \
                "$agent" --policy "$policy" --netns "$NS" --endpoints "$endpoints" --docker-host none \
                --state-dir "$state" --eventlog-key "$state/eventlog.key" --foreground \
                >>"$t/agent.out" 2>>"$t/agent.err"
        agent_pid=$(ns_last_pid)
        wait_for 10000 busctl --system status org.ceredis.Agent1
}

# call METHOD [SIG ARGS...]: busctl as root; the JSON reply on stdout, the error on stderr.
call() { busctl --system --json=short call org.ceredis.Agent1 /org/ceredis/Agent1 org.ceredis.Agent1 "$@"; }
# data: the first value of a busctl --json reply.
data() { "$PYTHON" -c 'import json, sys; d = json.load(sys.stdin)["data"]; print(d[0] if d else "")'; }
prop() { busctl --system get-property org.ceredis.Agent1 /org/ceredis/Agent1 org.ceredis.Agent1 "$1" | sed 's/^s "\(.*\)"$/\1/'; }
json_get() { "$PYTHON" -c 'import json, sys; d = json.load(sys.stdin)
for k in sys.argv[1:]: d = d[k]
print(d)' "$@"; }
send=(dbus-send --system --print-reply --dest=org.ceredis.Agent1 /org/ceredis/Agent1)
sha() { sha256sum "$1" | cut -d' ' -f1; }
verify() { "$ctl" verify --netns "$NS" --state-dir "$state" "$@"; }

# ---- bus and agent up; sd_notify ---------------------------------------------------------

if start_bus "$top/tests/data/dbus-system.conf"; then
        ok "private dbus-daemon with the system-bus configuration listens on $bus"
else
        not_ok "private dbus-daemon started"
fi
if start_agent; then
        ok "ceredis-agent owns org.ceredis.Agent1 on the private system bus"
else
        not_ok "ceredis-agent on the bus" "$(tail -n 5 "$t/agent.err")"
fi
if wait_for 3000 grep -q 'READY=1' "$t/notify.log" && grep -q '^STATUS=enforcing .*policy.yaml (sha256 [0-9a-f]\{12\})' "$t/notify.log"; then
        ok "sd_notify: READY=1 and STATUS=enforcing ... on NOTIFY_SOCKET"
else
        not_ok "sd_notify READY and STATUS" "$(cat "$t/notify.log")"
fi
if wait_for 3000 grep -q '^WATCHDOG=1' "$t/notify.log"; then
        ok "sd_notify: WATCHDOG=1 pings with WATCHDOG_USEC set"
else
        not_ok "sd_notify WATCHDOG=1" "$(tail -n 3 "$t/notify.log")"
fi

# ---- read-only: status, properties, Violations, Audit --------------------------------------

out=$("$ctl" status 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q '^State: *enforcing' <<<"$out" && grep -q "^Policy sha256: *$(sha "$policy")" <<<"$out" &&
        ! grep -q $'\033' <<<"$out"; then
        ok "ceredisctl status: a table saying enforcing with the policy's sha256, no colour off a TTY"
else
        not_ok "ceredisctl status" "rc=$rc" "$out"
fi
out=$("$ctl" status --json 2>&1)
if [ "$(json_get policy_sha256 <<<"$out" 2>/dev/null)" = "$(sha "$policy")" ] &&
        [ "$(json_get host <<<"$out")" = vps1 ] && [ "$(json_get mode <<<"$out")" = enforce ] &&
        [ "$(json_get netns <<<"$out")" = "$NS" ]; then
        ok "ceredisctl status --json: host vps1, mode enforce, netns, policy_sha256"
else
        not_ok "ceredisctl status --json" "$out"
fi
check "ceredisctl status --help" "$ctl" status --help
check_fails "ceredisctl status with an unknown option is a usage error" "$ctl" status --bogus
if [ "$(prop Mode)" = enforce ] && [ "$(prop PolicySha256)" = "$(sha "$policy")" ]; then
        ok "properties Mode=enforce and PolicySha256 = sha256 of the policy file"
else
        not_ok "properties" "$(prop Mode) $(prop PolicySha256)"
fi

out=$(call Violations s 10m 2>&1 | data)
if [ "$(json_get count <<<"$out" 2>/dev/null)" = 0 ] && grep -q '"violations"' <<<"$out"; then
        ok "Violations(\"10m\") answers the verified event log as JSON (no violations yet)"
else
        not_ok "Violations(10m)" "$out" "$(tail -n 3 "$t/agent.err")"
fi
out=$(call Violations s -- --help 2>&1)
if grep -q 'InvalidArgs\|expected "" or a number' <<<"$out"; then
        ok "Violations(\"--help\") is refused as invalid arguments"
else
        not_ok "Violations(--help) refused" "$out"
fi
out=$(call Audit 2>&1 | data)
if "$PYTHON" -c 'import json, sys; d = json.loads(sys.argv[1]); assert {c["id"] for c in d["controls"]} >= {"NET-1"}; assert d["policy_sha256"] == sys.argv[2]' "$out" "$(sha "$policy")" 2>/dev/null; then
        ok "Audit() answers ceredisctl audit's JSON (controls, policy_sha256) from the daemon"
else
        not_ok "Audit()" "$(head -c 300 <<<"$out")" "$(tail -n 3 "$t/agent.err")"
fi
"$ctl" violations --json --state-dir "$state" --key "$state/eventlog.key" >"$t/v.json" 2>"$t/v.err"
rc=$?
if [ $rc -eq 0 ] && [ "$(json_get count <"$t/v.json")" = 0 ]; then
        ok "ceredisctl violations --json (offline) next to the running agent: none, exit 0"
else
        not_ok "ceredisctl violations offline" "rc=$rc" "$(cat "$t/v.err")"
fi
"$ctl" audit --json --state-dir "$state" --netns "$NS" --docker-host none --key "$state/eventlog.key" >"$t/a.json" 2>"$t/a.err"
rc=$?
if [ $rc -le 1 ] && [ "$(json_get policy_sha256 <"$t/a.json" 2>/dev/null)" = "$(sha "$policy")" ]; then
        ok "ceredisctl audit --json (offline) next to the running agent (exit $rc)"
else
        not_ok "ceredisctl audit offline" "rc=$rc" "$(tail -n 3 "$t/a.err")"
fi

# ---- ViolationDetected -----------------------------------------------------------------------

busctl --system --json=short monitor --match "type='signal',interface='org.ceredis.Agent1',member='ViolationDetected'" \
        >"$t/signals" 2>/dev/null &
ns_pids+=("$!")
mon_pid=$!
sleep 0.5
for port in 5432 8787 11434; do
        ns inet timeout 1 "$PYTHON" -c 'import socket, sys
try: socket.create_connection(("203.0.113.10", int(sys.argv[1])), timeout=0.5)
except OSError: pass' "$port"
done
if wait_for 3000 grep -q 'ViolationDetected' "$t/signals"; then
        ok "a dropped connection from the Internet is signalled as ViolationDetected with its JSON"
else
        not_ok "ViolationDetected signal" "$(grep -c '"event":"violation"' "$t/agent.out") violation lines on stdout" \
                "$(tail -n 2 "$t/agent.out")"
fi
ns_kill "$mon_pid"

# ---- Reload ------------------------------------------------------------------------------

old_sha=$(sha "$policy")
sed -i 's/^mode: enforce/mode: audit/' "$policy"
out=$("$ctl" reload 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$(prop Mode)" = audit ] && [ "$(prop PolicySha256)" = "$(sha "$policy")" ] &&
        wait_for 2000 verify; then
        ok "ceredisctl reload applies the changed policy (Mode=audit, new sha256, verified)"
else
        not_ok "ceredisctl reload" "rc=$rc" "$out" "$(prop Mode)"
fi
good_sha=$(sha "$policy")
echo "  broken: [" >>"$policy"
out=$("$ctl" reload 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q 'policy.yaml:[0-9]*' <<<"$out" && [ "$(prop PolicySha256)" = "$good_sha" ] && verify >/dev/null; then
        ok "ceredisctl reload of a broken policy: exit 1 with the position, the old ruleset stays"
else
        not_ok "reload of a broken policy keeps the old one" "rc=$rc" "$out" "$(prop PolicySha256)"
fi
out=$("$ctl" reload --json 2>/dev/null)
[ "$(json_get status <<<"$out" 2>/dev/null)" = policy-invalid ] && ok "ceredisctl reload --json says policy-invalid" ||
        not_ok "reload --json on a broken policy" "$out"
cp "$ref" "$policy"
out=$("$ctl" reload --json 2>&1)
if [ "$(json_get status <<<"$out" 2>/dev/null)" = reloaded ] && [ "$(json_get policy_sha256 <<<"$out")" = "$old_sha" ]; then
        ok "ceredisctl reload --json: reloaded, with the sha256"
else
        not_ok "ceredisctl reload --json" "$out"
fi
if grep -q '^STATUS=enforcing' "$t/notify.log" && [ "$(grep -c '^STATUS=' "$t/notify.log")" -ge 3 ]; then
        ok "sd_notify STATUS= is updated after each reload"
else
        not_ok "STATUS after reloads" "$(grep STATUS "$t/notify.log")"
fi

# ---- Apply and Confirm -------------------------------------------------------------------

out=$(call Apply su "$variant" 0 2>&1)
if [ "$(data <<<"$out")" = "" ] && [ "$(prop PolicySha256)" = "$(sha "$variant")" ] && wait_for 2000 verify; then
        ok "Apply(variant, 0) installs it at once (PolicySha256 follows, verify ok)"
else
        not_ok "Apply(variant, 0)" "$out" "$(tail -n 3 "$t/agent.err")"
fi
token=$(call Apply su "$ref" 60 2>/dev/null | data)
if [[ $token =~ ^[0-9a-f]{32}$ ]] && [ -e "$state/pending-$token.json" ] && [ "$(prop PolicySha256)" = "$old_sha" ] &&
        [ "$("$ctl" status --json | json_get pending_confirmation)" = "$token" ]; then
        ok "Apply(ref, 60) returns a token, keeps a pending rollback, Status shows it"
else
        not_ok "Apply with confirmation" "token=$token" "$(ls "$state")"
fi
out=$(call Apply su "$variant" 0 2>&1)
grep -q 'waiting for confirmation' <<<"$out" && ok "a second Apply while one waits for confirmation is refused" ||
        not_ok "second Apply refused" "$out"
if call Confirm s "$token" >/dev/null 2>&1 && [ ! -e "$state/pending-$token.json" ] &&
        [ "$("$ctl" status --json | json_get pending_confirmation)" = None ]; then
        ok "Confirm(token) keeps it: the pending file is gone"
else
        not_ok "Confirm(token)" "$(ls "$state")"
fi
out=$(call Confirm s "$token" 2>&1)
grep -q 'nothing to confirm' <<<"$out" && ok "Confirm of the same token again: nothing to confirm" || not_ok "Confirm twice" "$out"

token=$(call Apply su "$variant" 1 2>/dev/null | data)
if [[ $token =~ ^[0-9a-f]{32}$ ]] && [ "$(prop PolicySha256)" = "$(sha "$variant")" ] &&
        wait_for 4000 sh -c "[ \"\$(busctl --system get-property org.ceredis.Agent1 /org/ceredis/Agent1 org.ceredis.Agent1 PolicySha256)\" = 's \"$old_sha\"' ]" &&
        wait_for 3000 verify && grep -q '"event":"rollback"' "$state/history.jsonl"; then
        ok "Apply(variant, 1) without Confirm rolls back to the previous policy within the second"
else
        not_ok "rollback of an unconfirmed Apply" "$(prop PolicySha256)" "$(tail -n 3 "$t/agent.err")"
fi

# Hostile arguments: errors, never a crash.
bad=0
for args in "su relative/policy.yaml 0" "su /etc/../etc/shadow 0" "su /nonexistent/policy.yaml 0" \
        "su $ref 86401" "s not-a-token" "s ../../../../../../etc/passwd0000"; do
        set -- $args
        if [ "$1" = su ]; then out=$(call Apply "$@" 2>&1); else out=$(call Confirm "$@" 2>&1); fi
        [ -n "$out" ] && ! grep -q '"type"' <<<"$out" || { bad=1; echo "# accepted: $args: $out"; }
done
long=$(head -c 5000 /dev/zero | tr '\0' a)
out=$(call Apply su "/$long" 0 2>&1)
grep -q 'at most 4096' <<<"$out" || { bad=1; echo "# long path: $out"; }
if [ $bad -eq 0 ] && kill -0 "$agent_pid" && [ "$(prop PolicySha256)" = "$old_sha" ]; then
        ok "hostile Apply/Confirm arguments are refused with errors; the agent runs on unchanged"
else
        not_ok "hostile arguments refused"
fi

# ---- an unprivileged caller through the bus policy ----------------------------------------

if member "$ctl" status >/dev/null 2>&1; then
        ok "a member of group ceredis (nobody, uid 65534) may call Status"
else
        not_ok "group member calls Status" "$(member "$ctl" status 2>&1)"
fi
out=$(member "$ctl" reload 2>&1)
rc=$?
if [ $rc -eq 2 ] && grep -qi 'denied\|rejected' <<<"$out"; then
        ok "... but Reload is refused by the bus policy (exit 2)"
else
        not_ok "group member Reload refused by the bus" "rc=$rc" "$out"
fi
out=$(member busctl --system call org.ceredis.Agent1 /org/ceredis/Agent1 org.ceredis.Agent1 Apply su "$variant" 0 2>&1)
grep -qi 'denied\|rejected' <<<"$out" && ok "... and so is Apply" || not_ok "group member Apply refused" "$out"
out=$(stranger "$ctl" status 2>&1)
[ $? -eq 2 ] && grep -qi 'denied\|rejected' <<<"$out" && ok "a caller outside the group (uid $stranger_uid) may not call Status" ||
        not_ok "stranger Status refused" "$out"

# ---- SIGTERM leaves the rules; the permissive bus: the agent's own checks ----------------

ns_kill "$agent_pid"
if grep -q '^STOPPING=1' "$t/notify.log" && verify >/dev/null; then
        ok "SIGTERM: STOPPING=1 on NOTIFY_SOCKET, the rules stay in the kernel"
else
        not_ok "SIGTERM keeps the rules" "$(tail -n 2 "$t/notify.log")"
fi
ns_kill "$bus_pid"
start_bus "$top/tests/data/dbus-permissive.conf" || not_ok "permissive dbus-daemon started"
start_agent || not_ok "agent on the permissive bus" "$(tail -n 5 "$t/agent.err")"

member "$ctl" status >/dev/null 2>&1 && ok "permissive bus: a group member still reads Status" ||
        not_ok "permissive: member Status"
out=$(member "$ctl" reload 2>&1)
if [ $? -eq 2 ] && grep -q 'only root may change' <<<"$out"; then
        ok "permissive bus: Reload by uid 65534 is refused by the agent's own check"
else
        not_ok "handler refuses Reload" "$out"
fi
before=$(prop PolicySha256)
# dbus-send, not busctl: busctl replaces every AccessDenied message with "Access denied".
out=$(member "${send[@]}" org.ceredis.Agent1.Apply string:"$variant" uint32:0 2>&1)
out2=$(member "${send[@]}" org.ceredis.Agent1.Confirm string:0123456789abcdef0123456789abcdef 2>&1)
if grep -q 'only root may change' <<<"$out" && grep -q 'only root may change' <<<"$out2" && [ "$(prop PolicySha256)" = "$before" ]; then
        ok "permissive bus: Apply and Confirm by uid 65534 are refused by the agent; nothing changed"
else
        not_ok "handler refuses Apply/Confirm" "$out" "$out2"
fi
out=$(stranger "$ctl" status 2>&1)
[ $? -eq 2 ] && grep -q "needs root or the group 'ceredis'" <<<"$out" &&
        ok "permissive bus: Status by a caller outside the group is refused by the agent" ||
        not_ok "handler refuses a stranger's Status" "$out"
out=$(stranger "${send[@]}" org.freedesktop.DBus.Properties.Get string:org.ceredis.Agent1 string:PolicySha256 2>&1)
grep -q "needs root or the group" <<<"$out" && ok "permissive bus: so is reading a property" ||
        not_ok "handler refuses a stranger's property read" "$out"

# The agent without a bus: logged, enforcement unaffected.
ns_kill "$agent_pid"
ns_kill "$bus_pid"
rm -f "$bus"
: >"$t/agent.err"
bg env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$t/nobus" "$agent" --policy "$policy" --netns "$NS" --endpoints "$endpoints" \
        --docker-host none --state-dir "$state" --eventlog-key "$state/eventlog.key" --foreground >/dev/null 2>>"$t/agent.err"
agent_pid=$(ns_last_pid)
if wait_for 5000 grep -q 'D-Bus API disabled' "$t/agent.err" && sleep 0.3 && kill -0 "$agent_pid" && verify >/dev/null; then
        ok "without a system bus the agent logs it and keeps enforcing"
else
        not_ok "agent without a bus" "$(tail -n 3 "$t/agent.err")"
fi
out=$("$ctl" status 2>&1)
[ $? -eq 2 ] && ok "ceredisctl status without a reachable agent: exit 2 ($out)" || not_ok "status without agent" "$out"
ns_kill "$agent_pid"

tap_summary
