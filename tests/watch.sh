#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The traffic watcher end to end (issue 5) on the Docker testbed with real PostgreSQL: the
# agent enforces policies/ceredis.yaml inside the VPS namespace with the services' addresses
# taken from the running containers (an --endpoints file generated with `testbed.sh addr`).
# Enforce mode: the Internet probing PostgreSQL's published port gives NET-1 blocked, probing
# other ports gives blocked events too; Ollama connecting to CaSS gives AI-1 blocked; Grafana's
# SELECTs and the API's writes to CaSS raise no violation, but the writes to CaSS (and CaSS's
# INSERT into PostgreSQL), both evaluation stores, are journaled as DATA-3 `write` events with
# their source service, and a SELECT is not; `ceredisctl audit` DATA-3 passes naming those
# pairs. Grafana's INSERT on its read-only flow is a READ-ONLY violation, contained (its next
# connection is cut). Audit mode: Ollama POSTing to CaSS gives AI-2 observed with method and
# path, and no journaled write. Every event must be visible through `ceredisctl violations
# --json` (--writes for the journal) within one second of the packet; a tampered log is refused.
# Run as root with CEREDIS_BUILD=<build dir>.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib/tap.sh"

build=${CEREDIS_BUILD:-$top/build}
ctl="$build/ceredisctl"
agent="$build/ceredis-agent"
tb="$top/tests/testbed/testbed.sh"
export CEREDIS_TESTBED_NAME=${CEREDIS_TESTBED_NAME:-ceredis-watch}

if [ "$(id -u)" -ne 0 ]; then
        skip_check "watch suite" "needs root (network namespaces, dockerd)"
        tap_summary
        exit
fi
for f in "$ctl" "$agent"; do
        [ -x "$f" ] || { skip_check "watch suite" "$f not built"; tap_summary; exit; }
done

t=$(mktemp -d /tmp/ceredis-watch.XXXXXX)
agent_pid=
stop_agent() {
        [ -n "$agent_pid" ] || return 0
        kill "$agent_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$agent_pid" 2>/dev/null
        wait "$agent_pid" 2>/dev/null
        agent_pid=
}
finish() {
        local rc
        trap - EXIT INT TERM HUP
        stop_agent
        "$tb" down >/dev/null 2>&1 || true
        rm -rf "$t"
        tap_summary
        rc=$?
        exit $rc
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

now_ms() { date +%s%3N; }
contains() { # contains NEEDLE CMD...: CMD succeeds and prints NEEDLE
        local needle=$1 out
        shift
        out=$("$@") || return 1
        printf '%s\n' "$out" | grep -qF -- "$needle" || { printf 'no "%s" in: %s\n' "$needle" "$out"; return 1; }
}
fails() { ! "$@"; }

if ! "$tb" up >"$t/tb.env" 2>"$t/tb.log"; then
        skip_check "watch suite" "the testbed did not come up: $(tail -n 5 "$t/tb.log")"
        exit
fi
eval "$(cat "$t/tb.env")"
NS=$TB_NS_VPS
state="$t/state"

# The services' addresses, from the running containers (never hard-coded).
python3 - "$tb" "$top/policies/ceredis.yaml" >"$t/endpoints.json" <<'EOF'
import json, re, subprocess, sys
tb, policy = sys.argv[1], sys.argv[2]
text = open(policy).read()
services = re.findall(r'^  ([a-z][a-z0-9-]*):\n    zone:', text, re.M)
nets = subprocess.run([tb, "docker", "network", "ls", "--format", "{{.Name}}"], capture_output=True,
                      text=True, check=True).stdout.split()
out = {}
for s in services:
    addrs = []
    for n in nets:
        r = subprocess.run([tb, "addr", s, n], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip() and r.stdout.strip() not in addrs:
            addrs.append(r.stdout.strip())
    # IPv6 too, where the networks have it: container names then resolve to both families.
    ids = subprocess.run([tb, "docker", "ps", "-q", "--filter", "label=com.docker.compose.service=" + s],
                         capture_output=True, text=True).stdout.split()
    for i in ids:
        r = subprocess.run([tb, "docker", "inspect", "-f",
                            "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}} {{end}}", i],
                           capture_output=True, text=True)
        addrs += [a for a in r.stdout.split() if a not in addrs]
    out[s] = addrs
json.dump(out, sys.stdout, indent=1)
EOF
check "the endpoints file names postgres, grafana, ollama and cass" \
        python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); sys.exit(not all(e[s] for s in ("postgres","grafana","ollama","cass","api")))' \
        "$t/endpoints.json"
# svc_of COMPOSE_SERVICE: the policy's name for the service matching that compose service.
svc_of() {
        python3 - "$top/policies/ceredis.yaml" "$1" <<'EOF'
import re, sys
text, want = open(sys.argv[1]).read(), sys.argv[2]
for name, body in re.findall(r'^  ([a-z][a-z0-9-]*):\n((?:    .*\n)+)', text, re.M):
    if re.search(r'match: \{ *compose_service: *"?%s"? *\}' % re.escape(want), body):
        print(name)
        break
else:
    sys.exit(1)
EOF
}
api_svc=$(svc_of api)
cass_svc=$(svc_of cass)
pg_svc=$(svc_of postgres)
check "the policy names the API, CaSS and PostgreSQL compose services ($api_svc, $cass_svc, $pg_svc)" \
        test -n "$api_svc" -a -n "$cass_svc" -a -n "$pg_svc"
pg_ip=$("$tb" addr postgres private)
grafana_ip=$("$tb" addr grafana private)
cass_ip=$("$tb" addr cass private)

# in_svc SERVICE CMD...: run CMD (a host binary) in the service container's network namespace:
# no `docker exec` start-up time between the packet and the clock the latency is measured on.
declare -A svc_pid
for svc in ollama grafana; do
        id=$("$tb" docker ps -q --filter "label=com.docker.compose.service=$svc" | head -n1)
        svc_pid[$svc]=$("$tb" docker inspect -f '{{.State.Pid}}' "$id")
done
in_svc() {
        local svc=$1
        shift
        nsenter --net="/proc/${svc_pid[$svc]}/ns/net" -- "$@"
}

start_agent() { # POLICY
        : >"$t/agent.out"
        "$agent" --policy "$1" --endpoints "$t/endpoints.json" --netns "$NS" --state-dir "$state" \
                --eventlog-key "$state/eventlog.key" --foreground >>"$t/agent.out" 2>>"$t/agent.err" &
        agent_pid=$!
        for _ in $(seq 100); do
                grep -q '"event":"started"' "$t/agent.out" 2>/dev/null && break
                sleep 0.05
        done
        # The bridges are opened right after "started"; give the rings a moment.
        sleep 0.3
}

# listing: `ceredisctl violations --json`, or with WRITES=1 the journaled writes (--writes).
listing() {
        "$ctl" violations --json ${WRITES:+--writes} --state-dir "$state" --key "$state/eventlog.key"
}

# find_event SINCE_MS KEY=VALUE...: the violations log (verified) holds an event newer than
# SINCE_MS (epoch ms) whose fields match; nested keys as src.service, l7.method. With WRITES=1,
# a journaled write.
find_event() {
        if [ -z "${REUSE:-}" ]; then
                listing >"$t/v.json" 2>"$t/v.err"
                [ $? -le 1 ] || return 2
        fi
        LIST=${WRITES:+writes} python3 - "$t/v.json" "$@" <<'EOF'
import json, os, sys, datetime
doc = json.load(open(sys.argv[1]))
since = int(sys.argv[2])
want = [a.split("=", 1) for a in sys.argv[3:]]
def get(e, k):
    for p in k.split("."):
        e = e.get(p, {}) if isinstance(e, dict) else {}
    return "" if e == {} else str(e)
import os
need, total = int(os.environ.get("MINCOUNT", "1")), 0
for e in doc[os.environ.get("LIST") or "violations"]:
    ts = datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    if ts.timestamp() * 1000 < since - 5:
        continue
    if all(get(e, k) == v for k, v in want):
        total += e["count"]
        open(sys.argv[1] + ".lag", "w").write("%d" % (ts.timestamp() * 1000 - since))
sys.exit(0 if total >= need else 1)
EOF
}

# expect_event WHAT SINCE_MS KEY=VALUE...: the event shows up within one second of SINCE_MS.
# The poll is ceredisctl and a grep for the first plain KEY=VALUE; the full match (python) is
# checked when the listing changed, and the time taken is the time of that poll.
expect_event() {
        local what=$1 since=$2 took seen needle kv
        shift 2
        for kv in "$@"; do
                case ${kv%%=*} in *.*) ;; *) needle="\"${kv%%=*}\": \"${kv#*=}\""; break ;; esac
        done
        : >"$t/v.prev"
        while :; do
                listing >"$t/v.json" 2>"$t/v.err"
                seen=$(now_ms)
                # python only when the listing changed: it is slow to start on a busy machine.
                if grep -qF -- "$needle" "$t/v.json" && ! cmp -s "$t/v.json" "$t/v.prev" &&
                        cp "$t/v.json" "$t/v.prev" && REUSE=1 find_event "$since" "$@"; then
                        # From the agent's stamp (taken when it classified the packet) to the
                        # event being listed: starting the probe inside a container (docker exec)
                        # can alone take most of a second on a loaded machine, and is not ours.
                        took=$((seen - since - $(cat "$t/v.json.lag")))
                        if [ "$took" -le 1000 ]; then
                                ok "$what (listed ${took} ms after the agent saw it, $((seen - since)) ms after the command started)"
                        else
                                not_ok "$what within 1 s" "listed ${took} ms after the agent saw it (stamped $(cat "$t/v.json.lag") ms after the command started)" \
                                        "started at $(date -u -d @$((since / 1000)) +%T).$((since % 1000)); agent lines: $(grep '"event":"violation"' "$t/agent.out" | cut -c 1-260 | tail -n 4)"
                        fi
                        return
                fi
                if [ $(($(now_ms) - since)) -gt 3000 ]; then
                        not_ok "$what" "no event matching: $*" "log: $(tail -c 1500 "$t/v.json")" \
                                "agent: $(tail -n 5 "$t/agent.err")"
                        return
                fi
                sleep 0.01
        done
}

# no_event WHAT SINCE_MS KEY=VALUE...: after a second, still no matching event.
no_event() {
        local what=$1 since=$2
        shift 2
        sleep 1
        if find_event "$since" "$@"; then
                not_ok "$what" "unexpected event: $*" "$(tail -c 1500 "$t/v.json")"
        else
                ok "$what"
        fi
}

# probe NS IP PORT: one TCP connection attempt, in the background (its SYN is what counts).
probe() {
        nsenter --net="/run/netns/$1" -- timeout 1 bash -c "exec 3<>/dev/tcp/$2/$3" >/dev/null 2>&1 &
}

# ---- enforce mode -------------------------------------------------------------------------

start_agent "$top/policies/ceredis.yaml"
check "the agent runs and watches the Docker bridges" grep -q "watching bridge br-" "$t/agent.err"
check_fails "no NFLOG or capture error at start" grep -E "cannot read NFLOG|cannot capture" "$t/agent.err"
check "ceredisctl violations on a fresh log: none, exit 0" "$ctl" violations --state-dir "$state" --key "$state/eventlog.key"

s=$(now_ms)
probe "$TB_NS_INET" "$TB_VPS_IP" 5432
expect_event "Internet -> $TB_VPS_IP:5432 is NET-1, blocked, naming postgres and its published port" "$s" \
        rule=NET-1 action=blocked severity=critical src.service=internet src.ip="$TB_INET_IP" \
        dst.service=postgres dst.ip="$pg_ip" dst.port=5432 proto=tcp
s=$(now_ms)
probe "$TB_NS_INET" "$TB_VPS_IP" 8090
expect_event "Internet -> $TB_VPS_IP:8090 (not published) is DEFAULT-DENY, blocked" "$s" rule=DEFAULT-DENY action=blocked \
        src.ip="$TB_INET_IP" dst.ip="$TB_VPS_IP" dst.port=8090
probe "$TB_NS_INET" "$TB_VPS_IP" 11434
sleep 1.5
# Same rule, source and destination: aggregated with the 8090 probe into one count.
if MINCOUNT=2 find_event "$s" action=blocked src.ip="$TB_INET_IP" dst.ip="$TB_VPS_IP"; then
        ok "Internet -> $TB_VPS_IP:11434 is counted too (aggregated with the 8090 probe: count 2)"
else
        not_ok "Internet -> $TB_VPS_IP:11434 is counted too" "$(tail -c 1500 "$t/v.json")"
fi

s=$(now_ms)
in_svc ollama curl -sS --max-time 1 -o /dev/null "http://$cass_ip:8080/" >/dev/null 2>&1 &
expect_event "Ollama -> CaSS is AI-1, blocked" "$s" rule=AI-1 action=blocked src.service=ollama \
        dst.service=cass dst.port=8080

s=$(now_ms)
check "Grafana reads PostgreSQL (SELECT through psql)" \
        "$tb" exec grafana env PGCONNECT_TIMEOUT=5 psql -Atc 'select count(*) from evaluations'
sa=$(now_ms)
check "the API writes to CaSS (POST)" contains "method=POST" "$tb" exec api wget -q -O - --post-data x \
        "http://cass:8080/cgi-bin/echo"
# CaSS is tagged evaluation-store: the API's allowed write is journaled (DATA-3), not a violation.
WRITES=1 expect_event "the API's POST to CaSS is journaled: a DATA-3 write from $api_svc with method and path" "$sa" \
        rule=DATA-3 severity=low action=observed src.service="$api_svc" dst.service="$cass_svc" dst.port=8080 \
        proto=tcp l7.protocol=http l7.method=POST l7.path=/cgi-bin/echo l7.statement_class=write
no_event "... and neither raises a violation" "$s" src.service=grafana
no_event "... nor the API's POST" "$s" src.service="$api_svc"
WRITES=1 no_event "Grafana's SELECT journals no write" "$s" src.service=grafana

s=$(now_ms)
check "CaSS reads PostgreSQL (SELECT through psql)" \
        "$tb" exec cass env PGCONNECT_TIMEOUT=5 psql -Atc 'select count(*) from evaluations'
WRITES=1 no_event "... a SELECT journals no write" "$s" src.service="$cass_svc"
s=$(now_ms)
check "CaSS writes to PostgreSQL (INSERT through psql)" "$tb" exec cass env PGCONNECT_TIMEOUT=5 psql -Atc \
        "insert into evaluations (student, competency, cefr_level, score) values ('eleve-010', 'x', 'B1', 2)"
WRITES=1 expect_event "CaSS's INSERT into PostgreSQL is journaled: a DATA-3 write from $cass_svc" "$s" rule=DATA-3 \
        src.service="$cass_svc" dst.service="$pg_svc" dst.port=5432 l7.protocol=postgresql l7.method=INSERT \
        l7.statement_class=write
no_event "... and is no violation" "$s" src.service="$cass_svc"
check "CaSS can still query PostgreSQL (a journaled flow is not cut)" \
        "$tb" exec cass env PGCONNECT_TIMEOUT=5 psql -Atc 'select 1'

s=$(now_ms)
in_svc grafana env PGPASSWORD=ceredis PGCONNECT_TIMEOUT=5 timeout 5 psql -h "$pg_ip" -U ceredis -d ceredis -Atc \
        "insert into evaluations (student, competency, cefr_level, score) values ('eleve-009', 'x', 'A1', 1)" \
        >/dev/null 2>&1 &
ins=$!
expect_event "Grafana's INSERT on its read-only flow is READ-ONLY, contained" "$s" rule=READ-ONLY \
        action=contained src.service=grafana src.ip="$grafana_ip" dst.service=postgres dst.port=5432 \
        l7.protocol=postgresql l7.method=INSERT l7.statement_class=write
wait "$ins" 2>/dev/null
check "the contained flow is cut: Grafana's next connection to PostgreSQL fails" \
        fails in_svc grafana env PGPASSWORD=ceredis PGCONNECT_TIMEOUT=2 timeout 4 psql -h "$pg_ip" -U ceredis \
        -d ceredis -Atc 'select 1'
check "the contain set holds the flow" contains "$grafana_ip . $pg_ip" \
        ip netns exec "$NS" nft list set inet ceredis contain4

# The CLI: exit codes, --since, a tampered log; writes are listed apart and exit 0.
check "ceredisctl violations --writes lists the journaled writes and exits 0" contains "DATA-3" \
        "$ctl" violations --writes --state-dir "$state" --key "$state/eventlog.key"
"$ctl" violations --json --state-dir "$state" --key "$state/eventlog.key" >"$t/plain.json" 2>/dev/null
check "the violations listing holds no journaled write" \
        python3 -c 'import json,sys; sys.exit(any(e["rule"] == "DATA-3" for e in json.load(open(sys.argv[1]))["violations"]))' \
        "$t/plain.json"

check_fails "ceredisctl violations exits 1 when there are violations" "$ctl" violations --state-dir "$state" --key "$state/eventlog.key"
check "ceredisctl violations --since 10m lists NET-1" contains NET-1 \
        sh -c "'$ctl' violations --since 10m --state-dir '$state' --key '$state/eventlog.key'; [ \$? -eq 1 ]"
# A quiet second: the containers' own IPv6 control traffic (router solicitations, MLD to
# ff02::/16) is denied and logged too, so wait for a second without any (10 tries).
quiet_second() {
        local i
        for ((i = 0; i < 10; i++)); do
                sleep 1
                "$ctl" violations --since 1s --state-dir "$state" --key "$state/eventlog.key" && return 0
        done
        return 1
}
sleep 1
check "ceredisctl violations --since 1s: none, exit 0" quiet_second
check_fails "a bad duration is a usage error" "$ctl" violations --since 10x --state-dir "$state" --key "$state/eventlog.key"
cp -a "$state" "$t/tampered"
python3 - "$t/tampered/events.jsonl" <<'EOF'
import sys
p = sys.argv[1]
d = open(p).read()
open(p, "w").write(d.replace('"NET-1"', '"NET-9"', 1))
EOF
"$ctl" violations --state-dir "$t/tampered" --key "$t/tampered/eventlog.key" >"$t/tampered.out" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q "altered" "$t/tampered.out"; then
        ok "a tampered event log is refused (exit 2, says altered)"
else
        not_ok "a tampered event log is refused" "exit $rc" "$(cat "$t/tampered.out")"
fi
stop_agent

# ---- audit mode ---------------------------------------------------------------------------

sed 's/^mode: enforce/mode: audit/' "$top/policies/ceredis.yaml" >"$t/audit.yaml"
start_agent "$t/audit.yaml"
s=$(now_ms)
in_svc ollama curl -sS --max-time 5 -d score=20 "http://$cass_ip:8080/cgi-bin/echo" >"$t/post.out" 2>&1 &
post=$!
expect_event "audit mode: Ollama POSTing to CaSS is AI-2, observed, with method and path" "$s" rule=AI-2 \
        action=observed src.service=ollama dst.service=cass l7.protocol=http l7.method=POST \
        l7.path=/cgi-bin/echo l7.statement_class=write
# In the same listing (its own latency is the AI-1 check of enforce mode above).
if REUSE=1 find_event "$s" rule=AI-1 action=observed src.service=ollama dst.service=cass; then
        ok "audit mode: ... and AI-1, observed, in the same listing"
else
        not_ok "audit mode: ... and AI-1, observed" "$(tail -c 1500 "$t/v.json")"
fi
wait "$post"
check "audit mode: Ollama's POST reached CaSS" grep -q "method=POST" "$t/post.out"
WRITES=1 no_event "audit mode: Ollama's forbidden write is a violation, not a journaled write" "$s" \
        src.service=ollama
stop_agent

# ---- DATA-3 in the audit ---------------------------------------------------------------------

"$ctl" audit --json --policy "$top/policies/ceredis.yaml" --endpoints "$t/endpoints.json" --netns "$NS" \
        --docker-host "$DOCKER_HOST" --state-dir "$state" >"$t/audit.json" 2>"$t/audit.err"
data3() { # FILE: DATA-3's status, then its evidence, one line each
        python3 -c 'import json,sys; c=next(c for c in json.load(open(sys.argv[1]))["controls"] if c["id"] == "DATA-3"); print(c["status"]); print("\n".join(c["evidence"]))' "$1"
}
data3 "$t/audit.json" >"$t/data3.txt" 2>&1
check "ceredisctl audit: DATA-3 passes" test "$(head -n1 "$t/data3.txt")" = pass
check "... naming the journaled writes $api_svc -> $cass_svc" grep -q "write(s) $api_svc -> $cass_svc journaled" "$t/data3.txt"
check "... and $cass_svc -> $pg_svc" grep -q "write(s) $cass_svc -> $pg_svc journaled" "$t/data3.txt"
check "... and the evaluation store $cass_svc with its policy line" grep -q "evaluation store $cass_svc (policy line" "$t/data3.txt"
"$ctl" audit --json --policy "$top/policies/ceredis.yaml" --endpoints "$t/endpoints.json" --netns "$NS" \
        --docker-host "$DOCKER_HOST" --state-dir "$t/tampered" >"$t/audit-tampered.json" 2>/dev/null
data3 "$t/audit-tampered.json" >"$t/data3-tampered.txt" 2>&1
check "ceredisctl audit on the tampered log: DATA-3 is an error" test "$(head -n1 "$t/data3-tampered.txt")" = error
check "the event log verifies (ceredisctl journal verify)" "$ctl" journal verify --state-dir "$state" \
        --key "$state/eventlog.key"
