#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Docker-aware enforcement on the real testbed (tests/testbed/): a dockerd in a VPS namespace
# running the CEREDIS compose stack with its classic mistakes. First without the agent: the
# Internet namespace reaches PostgreSQL (the stack really is misconfigured). Then the agent in
# Docker mode enforces policies/ceredis.yaml, learning every address from the Engine API, and
# real connections prove the whole matrix (service x service x port, host x service, Internet x
# every service address and every published port, IPv4 and IPv6 -- the compose networks are
# dual-stack, so containers talk to each other over both): each allowed connection of
# the policy succeeds, every other one fails. The matrix comes from the policy and Docker's
# inventory (tests/lib/docker-plan.py + expect.py), never from this file.
#
# Then: containers get new addresses (stopped, their addresses taken by untrusted containers,
# started again) and the rules follow within one second, the matrix stays true; untrusted
# containers are reported and reach nothing private, and nothing reaches them; Docker going
# away (a relay socket killed) leaves the rules as they are and the agent reconnects and
# resyncs. The variant stack is checked with its own policy (tests/data/docker-variant.yaml).
# Runs as root; everything lives in the testbed's namespaces and is removed on every path.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
build=${CEREDIS_BUILD:-$top}
tb=$top/tests/testbed/testbed.sh
PYTHON=${PYTHON:-/usr/bin/python3}
PROBE_TIMEOUT=${CEREDIS_PROBE_TIMEOUT:-1.5}
export CEREDIS_TESTBED_NAME=${CEREDIS_TESTBED_NAME:-ceredis-docker}
unset CEREDIS_TESTBED_DIR
# shellcheck source=lib/tap.sh
. "$here/lib/tap.sh"

work=$(mktemp -d /tmp/ceredis-docker.XXXXXX)
agent_pid=
proxy_pid=

stop_agent() {
        if [ -n "$agent_pid" ]; then
                kill "$agent_pid" 2>/dev/null
                wait "$agent_pid" 2>/dev/null
                agent_pid=
        fi
}
stop_proxy() {
        if [ -n "$proxy_pid" ]; then
                kill "$proxy_pid" 2>/dev/null
                wait "$proxy_pid" 2>/dev/null
                proxy_pid=
        fi
}
finish() {
        trap - EXIT INT TERM HUP
        stop_agent
        stop_proxy
        "$tb" down >/dev/null 2>&1 || not_ok "testbed down leaves nothing behind"
        rm -rf "$work"
        tap_summary
        exit $?
}
trap finish EXIT
trap 'not_ok "interrupted"; exit 130' INT
trap 'not_ok "interrupted"; exit 143' TERM
trap 'not_ok "interrupted"; exit 129' HUP

if [ "$(id -u)" != 0 ]; then
        skip_check "docker suite" "needs root"
        exit 1
fi
[ -x "$build/ceredis-agent" ] || { skip_check "docker suite" "no $build/ceredis-agent"; exit 1; }

dk() { /usr/bin/docker -H "unix://$TB_DOCKER_SOCK" "$@"; }
api() { curl -sf --max-time 10 --unix-socket "$TB_DOCKER_SOCK" "http://localhost/v1.41$1"; }
pid_of() { dk inspect -f '{{.State.Pid}}' "$1"; }

testbed_up() { # COMPOSE_FILE
        local env
        env=$("$tb" up --compose "$1" 2>"$work/testbed.log") || {
                tail -n 20 "$work/testbed.log" >&2
                return 1
        }
        eval "$env"
        export TB_DOCKER_SOCK TB_NS_VPS TB_NS_INET
}

# agent_start POLICY SOCKET: the daemon in Docker mode in the VPS namespace; waits until it
# has listed Docker's inventory.
agent_start() {
        rm -rf "$work/state"
        : >"$work/agent.out"
        "$build/ceredis-agent" --policy "$1" --netns "$TB_NS_VPS" --docker-host "unix://$2" \
                --state-dir "$work/state" --eventlog-key "$work/state/eventlog.key" --foreground >"$work/agent.out" 2>"$work/agent.err" &
        agent_pid=$!
        wait_for 100 grep -q '"action":"connected"' "$work/agent.out"
}

# verify_matches WHAT: `ceredisctl verify` of the state dir, which in Docker mode must compile
# the daemon's containers too (the inventory it saves), finds the live table as compiled.
verify_matches() {
        local out rc=0
        out=$("$build/ceredisctl" verify --netns "$TB_NS_VPS" --state-dir "$work/state" 2>&1) || rc=$?
        if [ "$rc" -eq 0 ] && [ -s "$work/state/inventory.json" ]; then
                ok "$1: ceredisctl verify finds the live table as the daemon compiled it"
        else
                not_ok "$1: ceredisctl verify finds the live table as the daemon compiled it" \
                        "exit $rc: $(printf '%s' "$out" | head -n 5)"
        fi
}

wait_for() { # TENTHS CMD...: poll CMD every 0.1 s
        local n=$1 i
        shift
        for ((i = 0; i < n; i++)); do
                "$@" 2>/dev/null && return 0
                sleep 0.1
        done
        return 1
}

# plan POLICY LABEL: the probe plan from the policy and Docker's inventory, in $work/LABEL.plan;
# $work/LABEL.lines holds docker-plan.py's lines (services, untrusted containers, networks).
plan() {
        local policy=$1 label=$2 nets=() pubs=() kind a b c
        "$build/ceredisctl" policy show "$policy" --json >"$work/policy.json" || return 1
        api "/containers/json" >"$work/containers.json" || return 1
        api "/networks" >"$work/networks.json" || return 1
        "$PYTHON" "$here/lib/docker-plan.py" "$work/policy.json" "$work/containers.json" \
                "$work/networks.json" "$work/$label.endpoints" >"$work/$label.lines" || return 1
        while read -r kind a b c; do
                case $kind in
                net) nets+=("--net=$a=$b,$c") ;;
                publish) pubs+=("--publish=$a") ;;
                esac
        done <"$work/$label.lines"
        "$PYTHON" "$here/lib/expect.py" matrix "$work/policy.json" "$work/$label.endpoints" \
                "${nets[@]}" "${pubs[@]}" --host-addr "$TB_VPS_IP" --host-addr "$TB_VPS_IP6" \
                --client "$TB_INET_IP" --client "$TB_INET_IP6" >"$work/$label.raw" || return 1
        # Docker's own facts (bridge isolation, routing, listeners): see docker-plan.py.
        local facts=()
        mapfile -t facts < <(ip netns exec "$TB_NS_VPS" ss -Hltn | awk '{n = split($4, a, ":"); print "--listen=" a[n]}' | sort -u)
        # The families Docker isolates its bridges in: where its isolation chains are.
        grep -q '^:DOCKER-ISOLATION' <<<"$(ip netns exec "$TB_NS_VPS" iptables-save -t filter 2>/dev/null)" &&
                facts+=(--isolated=4)
        grep -q '^:DOCKER-ISOLATION' <<<"$(ip netns exec "$TB_NS_VPS" ip6tables-save -t filter 2>/dev/null)" &&
                facts+=(--isolated=6)
        "$PYTHON" "$here/lib/docker-plan.py" filter "$work/$label.raw" "$work/policy.json" \
                "$work/containers.json" "$work/$label.lines" --host-addr "$TB_VPS_IP" \
                --host-addr "$TB_VPS_IP6" "${facts[@]}" >"$work/$label.plan"
}

# plan_dual_stack LABEL: every service of the plan has IPv6 (the compose networks give it) and
# the plan probes service x service over IPv6 as it does over IPv4, row for row.
plan_dual_stack() {
        local n4 n6 no6
        n4=$(awk '$1 ~ /^svc-/ && $4 !~ /:/' "$work/$1.plan" | wc -l)
        n6=$(awk '$1 ~ /^svc-/ && $4 ~ /:/' "$work/$1.plan" | wc -l)
        no6=$("$PYTHON" -c 'import json, sys
print(" ".join(s for s, a in json.load(open(sys.argv[1])).items() if not any(":" in x for x in a)))' \
                "$work/$1.endpoints")
        if [ -z "$no6" ] && [ "$n6" -gt 0 ] && [ "$n6" -eq "$n4" ]; then
                ok "$1: every service has IPv6; service x service probed over IPv6 too ($n6 + $n4 connections)"
        else
                not_ok "$1: every service has IPv6; service x service probed over IPv6 too" \
                        "IPv4 rows $n4, IPv6 rows $n6, services without IPv6: ${no6:-none}"
        fi
}

# run_plan LABEL: every row of the plan from its source namespace (a container's own network
# namespace, the VPS itself or the Internet), then judge.py.
run_plan() {
        local label=$1 srcns svc pid jobs=()
        : >"$work/$label.results"
        for srcns in $(awk '{print $1}' "$work/$label.plan" | sort -u); do
                case $srcns in
                inet) set -- ip netns exec "$TB_NS_INET" ;;
                vps) set -- ip netns exec "$TB_NS_VPS" ;;
                svc-*)
                        svc=${srcns#svc-}
                        pid=$(pid_of "$(awk -v s="$svc" '$1 == "service" && $2 == s {print $3; exit}' "$work/$label.lines")")
                        set -- nsenter --net="/proc/$pid/ns/net" ;;
                esac
                awk -v s="$srcns" '$1 == s {print $2, $3, $4, $5}' "$work/$label.plan" |
                        "$@" "$PYTHON" "$here/lib/probe.py" --timeout "$PROBE_TIMEOUT" \
                                >>"$work/$label.results" &
                jobs+=($!)
        done
        wait "${jobs[@]}"
        while IFS=$'\t' read -r verdict what detail; do
                if [ "$verdict" = PASS ]; then
                        ok "$what"
                else
                        not_ok "$what" "$(tr '|' '\n' <<<"$detail")"
                fi
        done < <("$PYTHON" "$here/lib/judge.py" "$label" "$work/$label.plan" "$work/$label.results")
}

probe_from() { # NETNS-CMD... -- SRC DST PORT: prints ok/refused/timeout
        local args=()
        while [ "$1" != -- ]; do args+=("$1"); shift; done
        shift
        echo "x $1 $2 $3" | "${args[@]}" "$PYTHON" "$here/lib/probe.py" --timeout "$PROBE_TIMEOUT" | awk '{print $2}'
}

expect_result() { # WHAT WANT GOT (WANT: ok | blocked)
        case "$2:$3" in
        ok:ok | blocked:timeout | blocked:refused) ok "$1" ;;
        *) not_ok "$1" "expected $2, got $3" ;;
        esac
}

svc_addr() { # LABEL SERVICE [6]: the service's first IPv4 (IPv6) address in the plan's endpoints
        "$PYTHON" -c 'import json,sys; print(([a for a in json.load(open(sys.argv[1]))[sys.argv[2]] if (":" in a) == (sys.argv[3] == "6")] + [""])[0])' \
                "$work/$1.endpoints" "$2" "${3:-4}"
}

set_has() { # SET ADDR: the agent's set holds an element with ADDR
        ip netns exec "$TB_NS_VPS" nft list set inet ceredis "$1" 2>/dev/null | grep -qw -- "$2"
}

# ---- the reference stack ---------------------------------------------------------------------

if ! testbed_up "$top/tests/testbed/compose/ceredis.yml"; then
        skip_check "testbed up (ceredis.yml)" "see above"
        exit 1
fi
ok "testbed up: the CEREDIS stack runs in $TB_NS_VPS"
policy=$top/policies/ceredis.yaml

# Without the agent: the misconfiguration is real.
pg_port=$(api "/containers/json" | "$PYTHON" -c '
import json, sys
for c in json.load(sys.stdin):
    if c["Labels"].get("com.docker.compose.service") == "postgres":
        print(min(p["PublicPort"] for p in c["Ports"] if p.get("PublicPort"))); break')
expect_result "without the agent: PostgreSQL published on $TB_VPS_IP:$pg_port is reachable from the Internet" ok \
        "$(probe_from ip netns exec "$TB_NS_INET" -- "$TB_INET_IP" "$TB_VPS_IP" "$pg_port")"
expect_result "without the agent: PostgreSQL on [$TB_VPS_IP6]:$pg_port (userland proxy) is reachable from the Internet" ok \
        "$(probe_from ip netns exec "$TB_NS_INET" -- "$TB_INET_IP6" "$TB_VPS_IP6" "$pg_port")"

# The agent follows Docker through a relay socket, so that Docker can "go away" below.
"$PYTHON" "$here/lib/unix-proxy.py" "$work/docker.sock" "$TB_DOCKER_SOCK" &
proxy_pid=$!
wait_for 50 test -S "$work/docker.sock"
if agent_start "$policy" "$work/docker.sock"; then
        ok "agent started in Docker mode and listed the inventory"
else
        not_ok "agent started in Docker mode and listed the inventory" "$(tail -n 20 "$work/agent.err")"
        exit 1
fi

if plan "$policy" ceredis; then
        ok "probe plan from the policy and Docker's inventory ($(wc -l <"$work/ceredis.plan") connections)"
        plan_dual_stack ceredis
        run_plan ceredis
else
        not_ok "probe plan from the policy and Docker's inventory"
fi
verify_matches "Docker mode"
"$build/ceredisctl" audit --json --state-dir "$work/state" --netns "$TB_NS_VPS" \
        --docker-host "unix://$TB_DOCKER_SOCK" --key "$work/state/eventlog.key" >"$work/audit.json" 2>"$work/audit.err"
net2=$("$PYTHON" -c '
import json, sys
print(next(c["status"] for c in json.load(open(sys.argv[1]))["controls"] if c["id"] == "NET-2"))' \
        "$work/audit.json" 2>/dev/null)
if [ "$net2" = pass ]; then
        ok "Docker mode: audit's NET-2 (live ruleset = compiled) passes"
else
        not_ok "Docker mode: audit's NET-2 (live ruleset = compiled) passes" \
                "got '$net2': $(head -c 600 "$work/audit.json") $(tail -n 3 "$work/audit.err")"
fi
expect_result "with the agent: PostgreSQL $TB_VPS_IP:$pg_port is closed to the Internet" blocked \
        "$(probe_from ip netns exec "$TB_NS_INET" -- "$TB_INET_IP" "$TB_VPS_IP" "$pg_port")"
expect_result "with the agent: PostgreSQL [$TB_VPS_IP6]:$pg_port is closed to the Internet" blocked \
        "$(probe_from ip netns exec "$TB_NS_INET" -- "$TB_INET_IP6" "$TB_VPS_IP6" "$pg_port")"

# New addresses: stop some containers, let untrusted containers take their addresses, start
# them again. The rules must follow within a second of each start.
moved=$(awk '$1 == "service" {print $2}' "$work/ceredis.lines" | head -n 4)
ids=()
for s in $moved; do
        ids+=("$(awk -v s="$s" '$1 == "service" && $2 == s {print $3; exit}' "$work/ceredis.lines")")
done
dk stop -t 0 "${ids[@]}" >/dev/null
fillers=()
for net in $(dk network ls --filter driver=bridge --format '{{.Name}}' | grep -v '^bridge$'); do
        for i in 1 2; do
                fillers+=("$(dk run -d --network "$net" --label org.ceredis.test=untrusted \
                        -v "$top/tests/testbed/compose/files:/testbed:ro" \
                        ceredis-testbed/busybox:latest /bin/sh /testbed/standin.sh intruder 9999)")
        done
done
late=0
for id in "${ids[@]}"; do
        dk start "$id" >/dev/null
        t0=$(date +%s%N)
        # Its first address of each family it has (IPv6 when its networks have it).
        read -r addr addr6 < <(dk inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.GlobalIPv6Address}}{{"\n"}}{{end}}' "$id" | head -n 1)
        # shellcheck disable=SC2016
        if [ -n "$addr" ] && wait_for 10 eval 'set_has docker_open4 "$addr" || set_has private4 "$addr"' &&
           { [ -z "$addr6" ] || wait_for 10 eval 'set_has docker_open6 "$addr6" || set_has private6 "$addr6"'; }; then
                ms=$((($(date +%s%N) - t0) / 1000000))
                printf '# %s %s live after %d ms\n' "$addr" "$addr6" "$ms"
        else
                late=$((late + 1))
        fi
done
if [ "$late" -eq 0 ]; then
        ok "restarted containers' new addresses are in the ruleset within one second"
else
        not_ok "restarted containers' new addresses are in the ruleset within one second" "$late late"
fi
# A restarted service may take seconds to listen again (PostgreSQL runs initdb at start): wait
# for the port the testbed's readiness label names before probing, or "refused" would be the
# service's start-up, not the agent.
for id in "${ids[@]}"; do
        port=$(dk inspect -f '{{index .Config.Labels "org.ceredis.testbed.wait-tcp"}}' "$id")
        pid=$(dk inspect -f '{{.State.Pid}}' "$id")
        [ -n "$port" ] && [ "${pid:-0}" -gt 0 ] || continue
        # From inside the container (127.0.0.1): the host itself is denied by the policy.
        wait_for 600 nsenter --net=/proc/"$pid"/ns/net timeout 1 bash -c "</dev/tcp/127.0.0.1/$port" ||
                echo "# container $id: port $port still not listening after 60 s"
done
if plan "$policy" moved; then
        if cmp -s "$work/ceredis.endpoints" "$work/moved.endpoints"; then
                not_ok "containers got new addresses" "$(cat "$work/moved.endpoints")"
        else
                ok "containers got new addresses"
        fi
        plan_dual_stack moved
        run_plan moved
else
        not_ok "probe plan after new addresses"
fi

verify_matches "after new addresses"

# Untrusted containers: reported, and closed both ways.
n_untrusted=$(grep -c '"trust":"untrusted"' "$work/agent.out")
if [ "$n_untrusted" -ge "${#fillers[@]}" ]; then
        ok "untrusted containers reported as events ($n_untrusted)"
else
        not_ok "untrusted containers reported as events" "$n_untrusted of ${#fillers[@]}"
fi
intruder=$(dk inspect -f '{{.State.Pid}}' "${fillers[-1]}")
# Its addresses of both families: over IPv6, Docker does not isolate its bridges (no
# ip6tables rules), so there only the agent keeps the other networks away from it.
intruder_ips=$(dk inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.GlobalIPv6Address}}{{end}}' "${fillers[-1]}")
priv=$(awk '$1 == "service" {print $2}' "$work/moved.lines" | while read -r s; do
        "$PYTHON" -c '
import json, sys
pol = json.load(open(sys.argv[1])); s = dict(pol["services"]) if isinstance(pol["services"], list) else pol["services"]
zones = dict(pol["zones"]) if isinstance(pol["zones"], list) else pol["zones"]
svc = s[sys.argv[2]]
if not zones[svc["zone"]].get("public"):
    print(sys.argv[2], svc["ports"][0]["port"] if isinstance(svc["ports"][0], dict) else svc["ports"][0])' \
                "$work/policy.json" "$s" 2>/dev/null
done | head -n 1)
if [ -n "$priv" ]; then
        set -- $priv
        for fam in 4 6; do
                dst=$(svc_addr moved "$1" $fam)
                [ -n "$dst" ] || continue
                [ $fam = 4 ] || [[ $intruder_ips == *:* ]] || continue
                expect_result "an untrusted container cannot reach private service $1 ($dst)" blocked \
                        "$(probe_from nsenter --net="/proc/$intruder/ns/net" -- - "$dst" "$2")"
        done
fi
for intruder_ip in $intruder_ips; do
        reached=
        while read -r kind svc id; do
                [ "$kind" = service ] || continue
                res=$(probe_from nsenter --net="/proc/$(pid_of "$id")/ns/net" -- - "$intruder_ip" 9999)
                [ "$res" = ok ] && reached="$reached $svc"
        done <"$work/moved.lines"
        if [ -z "$reached" ]; then
                ok "no service reaches an untrusted container ([$intruder_ip]:9999)"
        else
                not_ok "no service reaches an untrusted container ([$intruder_ip]:9999)" "reached from:$reached"
        fi
        expect_result "the VPS host itself does not reach an untrusted container ([$intruder_ip]:9999)" blocked \
                "$(probe_from ip netns exec "$TB_NS_VPS" -- - "$intruder_ip" 9999)"
done

# Docker goes away: the rules stay; it comes back: the agent reconnects and resyncs.
before=$(ip netns exec "$TB_NS_VPS" nft list table inet ceredis | sha256sum)
stop_proxy
if wait_for 50 grep -q '"action":"disconnected"' "$work/agent.out"; then
        ok "Docker gone: the agent says so"
else
        not_ok "Docker gone: the agent says so" "$(tail -n 5 "$work/agent.err")"
fi
dk stop -t 0 "${fillers[@]}" >/dev/null
sleep 1
after=$(ip netns exec "$TB_NS_VPS" nft list table inet ceredis | sha256sum)
if [ "$before" = "$after" ] && kill -0 "$agent_pid" 2>/dev/null; then
        ok "Docker gone: the agent runs on and the ruleset is untouched"
else
        not_ok "Docker gone: the agent runs on and the ruleset is untouched"
fi
"$PYTHON" "$here/lib/unix-proxy.py" "$work/docker.sock" "$TB_DOCKER_SOCK" &
proxy_pid=$!
connected_twice() { [ "$(grep -c '"action":"connected"' "$work/agent.out")" -ge 2 ]; }
if wait_for 400 connected_twice; then
        ok "Docker back: the agent reconnects"
else
        not_ok "Docker back: the agent reconnects" "$(tail -n 5 "$work/agent.err")"
fi
# The untrusted containers stopped while Docker was away: the resync forgets them.
gone=$(grep -c '"action":"gone"\|"action":"stopped","id":"[0-9a-f]*","name":"[^"]*","image":"[^"]*","service":null' "$work/agent.out")
if [ "$gone" -ge 1 ]; then
        ok "Docker back: the resync notices the containers that stopped meanwhile"
else
        not_ok "Docker back: the resync notices the containers that stopped meanwhile"
fi
dk rm -f "${fillers[@]}" >/dev/null 2>&1
if plan "$policy" resync; then
        run_plan resync
fi
if grep -q '"event":"drift"' "$work/agent.out"; then
        not_ok "no drift: every container update went through the agent's own batches" \
                "$(grep '"event":"drift"' "$work/agent.out" | head -n 3)"
else
        ok "no drift: every container update went through the agent's own batches"
fi
stop_agent
stop_proxy
"$tb" down >/dev/null 2>&1 || not_ok "testbed down (ceredis.yml)"

# ---- the variant stack, with a policy written for it -------------------------------------------

if ! testbed_up "$top/tests/testbed/compose/variant.yml"; then
        skip_check "testbed up (variant.yml)" "see above"
        exit 1
fi
ok "testbed up: the variant stack"
vpolicy=$top/tests/data/docker-variant.yaml
if agent_start "$vpolicy" "$TB_DOCKER_SOCK"; then
        ok "agent started on the variant stack (socket $TB_DOCKER_SOCK)"
        if plan "$vpolicy" variant; then
                ok "variant: probe plan ($(wc -l <"$work/variant.plan") connections)"
                plan_dual_stack variant
        run_plan variant
                verify_matches "variant"
        else
                not_ok "variant: probe plan"
        fi
        grep -q '"trust":"untrusted"' "$work/agent.out" &&
                not_ok "variant: every container matches a service" "$(grep '"trust":"untrusted"' "$work/agent.out")" ||
                ok "variant: every container matches a service (image, label and compose matches)"
else
        not_ok "agent started on the variant stack" "$(tail -n 20 "$work/agent.err")"
fi
stop_agent
