#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end enforcement with real traffic (issue 3): a VPS namespace with a public veth to an
# "internet" namespace and Docker-like networks behind it (tests/lib/vps.sh). First, without
# the agent, Docker's classic mistake is shown (a private store published on the public
# address is reachable). Then `ceredisctl apply` of the reference policy, and of a variant that
# shares nothing with it, is judged by real TCP connections, IPv4 and IPv6: every pair the
# policy allows connects, every other fails, and every denied one is logged (NFLOG) with the
# rule that denied it; the expectations come from `ceredisctl policy show --json` through
# tests/lib/expect.py, never from this file. Audit mode lets traffic pass and logs it; a batch
# the kernel refuses leaves the previous ruleset intact; a flushed table is repaired by the
# daemon and blocks again; `apply --confirm` rolls back; and the operator's management session
# survives every step. Run as root with CEREDIS_BUILD=<build dir>.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib/tap.sh"
. "$here/lib/netns.sh"
. "$here/lib/vps.sh"

build=${CEREDIS_BUILD:-$top/build}
ctl="$build/ceredisctl"
agent="$build/ceredis-agent"

if [ "$(id -u)" -ne 0 ]; then
        skip_check "enforce suite" "needs root (network namespaces)"
        tap_summary
        exit
fi
for tool in python3 tcpdump nft ip; do
        command -v "$tool" >/dev/null || { skip_check "enforce suite" "$tool missing"; tap_summary; exit; }
done
[ -x "$ctl" ] || { skip_check "enforce suite" "$ctl not built"; tap_summary; exit; }

ns_init enf
t=$ns_tmp
# Everything is local: a handshake takes well under a millisecond, so one second without an
# answer means the SYN was dropped (and only one SYN is sent: the retransmit comes at 1 s).
VPS_PROBE_TIMEOUT=1

# ---- helpers -----------------------------------------------------------------------------

# policy_json FILE OUT: the normalised model, the oracle's only input besides the endpoints.
policy_json() {
        "$ctl" policy show "$1" --json >"$2" 2>"$2.err" && "$PYTHON" -c 'import json,sys; json.load(open(sys.argv[1]))' "$2"
}

# Bring up the topology for policy $1 (a YAML file); sets the VPS_* globals and $facts.
topology_for() {
        local yaml=$1 tag=$2
        local host iface addr4 addr6 mgmt_ports=() public_ports=() mode
        VPS_TAG=$tag
        VPS_POLICY_JSON="$t/$tag.json"
        VPS_ENDPOINTS="$t/$tag-endpoints.json"
        if ! policy_json "$yaml" "$VPS_POLICY_JSON"; then
                not_ok "$tag: ceredisctl policy show --json ${yaml#"$top"/}" "$(cat "$VPS_POLICY_JSON.err")"
                return 1
        fi
        eval "$(vps_expect facts)"
        VPS_HOST=$host
        VPS_IFACE=$iface
        VPS_ADDR4=${addr4:-203.0.113.10}
        VPS_ADDR6=${addr6:-2001:db8:203::10}
        VPS_MGMT_PORT=${mgmt_ports[0]}
        # The VPS itself listens on its management and public ports, on the published ports
        # (Docker's userland proxy does) and on a stray port nobody allowed.
        VPS_HOST_PORTS=("${mgmt_ports[@]}" "${public_ports[@]}" 8000)
        local p
        for p in "${VPS_PUBLISH[@]}"; do VPS_HOST_PORTS+=("${p%%:*}"); done
        vps_expect endpoints >"$VPS_ENDPOINTS" || return 1
        vps_up
}

# matrix LABEL [audit|nolog]: probe every pair of the plan, with the NFLOG group captured
# meanwhile (nolog: traffic only, for when the daemon's own watcher holds the NFLOG group; what
# it reports is judged by tests/watch.sh).
matrix() {
        local label=$1 audit=${2:-} plan results records
        plan="$t/plan.$VPS_TAG"
        results="$t/results.$VPS_TAG.$RANDOM"
        records="$t/nflog.$VPS_TAG.$RANDOM"
        [ -s "$plan" ] || vps_expect matrix "$VPS_ENDPOINTS" --host "$VPS_HOST" \
                --host-addr "$VPS_ADDR4" --host-addr "$VPS_ADDR6" \
                "${VPS_CLIENTS[@]/#/--client=}" "${VPS_PUBLISH[@]/#/--publish=}" \
                --extra-host-port 8000 >"$plan"
        if [ "$audit" = nolog ]; then
                vps_probe "$plan" "$results"
                vps_judge "$label" "$plan" "$results"
                return
        fi
        vps_nflog_start || { skip_check "$label" "no NFLOG capture"; return; }
        vps_probe "$plan" "$results"
        vps_nflog_stop "$records"
        vps_judge "$label" "$plan" "$results" --nflog "$records" ${audit:+--audit}
}

# probe1 SRC DST PORT: one connection from the internet namespace; prints ok/refused/timeout.
probe1() {
        echo "x $1 $2 $3" | ns "$VPS_TAG-inet" "$PYTHON" "$here/lib/probe.py" --timeout "$VPS_PROBE_TIMEOUT" |
                awk '{print $2}'
}

expect_probe() { # WHAT WANT SRC DST PORT: WANT is ok or blocked
        local what=$1 want=$2 got
        got=$(probe1 "$3" "$4" "$5")
        case "$want:$got" in
        ok:ok | blocked:timeout | blocked:refused) ok "$what" ;;
        *) not_ok "$what" "expected $want, got $got" ;;
        esac
}

# The operator's SSH session, opened before anything is applied and checked at every step.
session_start() {
        session_status="$t/session.$VPS_TAG"
        ns_bg "$VPS_TAG-inet" "$PYTHON" "$here/lib/session.py" --status "$session_status" \
                "$mgmt_client" "$VPS_ADDR4" "$VPS_MGMT_PORT"
        session_pid=$(ns_last_pid)
        local i
        for i in $(seq 40); do
                grep -q '^ok' "$session_status" 2>/dev/null && return 0
                sleep 0.05
        done
}

# management STEP [audit]: the running session still exchanges data, a new connection from the
# management CIDR connects, and one from outside it does not (in enforce mode).
management() {
        local step=$1 audit=${2:-} before after
        before=$(cat "$session_status" 2>/dev/null)
        sleep 0.35
        after=$(cat "$session_status" 2>/dev/null)
        if [[ $after == ok* ]] && [ "${after#ok }" -gt "${before#ok }" ] 2>/dev/null; then
                ok "$VPS_TAG: $step: management session $mgmt_client -> $VPS_ADDR4:$VPS_MGMT_PORT alive (${after#ok } exchanges)"
        else
                not_ok "$VPS_TAG: $step: management session alive" "before: $before" "after: $after"
        fi
        # Both new connections at once: a blocked one costs the whole probe timeout.
        local res
        res=$(printf 'in %s %s %s\nout %s %s %s\n' "$mgmt_client" "$VPS_ADDR4" "$VPS_MGMT_PORT" \
                "$outside_client" "$VPS_ADDR4" "$VPS_MGMT_PORT" |
                ns "$VPS_TAG-inet" "$PYTHON" "$here/lib/probe.py" --timeout "$VPS_PROBE_TIMEOUT")
        if grep -qx 'in ok' <<<"$res"; then
                ok "$VPS_TAG: $step: new management connection $mgmt_client -> $VPS_ADDR4:$VPS_MGMT_PORT"
        else
                not_ok "$VPS_TAG: $step: new management connection $mgmt_client -> $VPS_ADDR4:$VPS_MGMT_PORT" "$res"
        fi
        [ -n "$audit" ] && return
        if grep -qE '^out (timeout|refused)$' <<<"$res"; then
                ok "$VPS_TAG: $step: $outside_client -> $VPS_ADDR4:$VPS_MGMT_PORT (outside the management CIDR) blocked"
        else
                not_ok "$VPS_TAG: $step: $outside_client -> $VPS_ADDR4:$VPS_MGMT_PORT blocked" "$res"
        fi
}

apply() { # apply YAML [ARGS...]
        "$ctl" apply "$1" --netns "$(ns_name "$VPS_TAG-vps")" --endpoints "$VPS_ENDPOINTS" \
                --host "$VPS_HOST" --state-dir "$t/state.$VPS_TAG" "${@:2}"
}

verify() {
        "$ctl" verify --netns "$(ns_name "$VPS_TAG-vps")" --state-dir "$t/state.$VPS_TAG"
}

live_table() {
        ns "$VPS_TAG-vps" nft list table inet ceredis
}

# A copy of the policy in audit mode.
audit_copy() { # YAML OUT
        sed 's/^mode: enforce$/mode: audit/' "$1" >"$2"
        grep -q '^mode: audit$' "$2"
}

# ---- the reference deployment ------------------------------------------------------------

mgmt_client=198.51.100.5
outside_client=198.51.100.200
VPS_CLIENTS=(198.51.100.5 198.51.100.200 2001:db8:51::5 2001:db8:51::200)
VPS_NETS=(dmz=172.19.0.0/16,fd00:19::/64 private=172.18.0.0/16,fd00:18::/64)
# Docker publishing the proxy (right) and PostgreSQL ("5432:5432", the classic mistake).
VPS_PUBLISH=(443:proxy:443 5432:postgres:5432)
ref="$top/policies/ceredis.yaml"

if ! topology_for "$ref" ref; then
        not_ok "ref: topology up"
        tap_summary
        exit
fi
ok "ref: topology up ($(grep -c '^leg' "$t/topology.ref") service legs on ${#VPS_NETS[@]} bridges, interface $VPS_IFACE)"
session_start

# Without the agent, Docker's publishing bypasses everything: the store is on the Internet.
expect_probe "ref: no agent: internet -> $VPS_ADDR4:5432 (published postgres) connects: the mistake is real" \
        ok "$outside_client" "$VPS_ADDR4" 5432
expect_probe "ref: no agent: internet -> [$VPS_ADDR6]:5432 (published postgres) connects" \
        ok 2001:db8:51::200 "$VPS_ADDR6" 5432
management "no agent" audit

check "ref: ceredisctl apply policies/ceredis.yaml" apply "$ref"
check "ref: ceredisctl verify after apply" verify
matrix "ref: enforce"
expect_probe "ref: internet -> $VPS_ADDR4:5432 (published postgres) blocked" blocked "$outside_client" "$VPS_ADDR4" 5432
management "after apply"

# Audit: the same classification, logged, nothing dropped.
audit_copy "$ref" "$t/ref-audit.yaml"
check "ref: ceredisctl apply (mode: audit)" apply "$t/ref-audit.yaml"
matrix "ref: audit" audit
management "audit" audit

check "ref: ceredisctl apply (back to enforce)" apply "$ref"

# A batch the kernel refuses must leave the previous ruleset exactly as it was. A real policy
# that passes the validator and fails in nf_tables is tried first; none is known to exist (the
# compiler merges overlapping CIDRs, the validator refuses over-long interface names), so the
# TEST-ONLY helper inject-refused-batch then corrupts one set element of the compiled
# reference policy and sends it through the agent's own nft_apply().
failing_candidates() {
        sed 's#from: \[198.51.100.0/28\]#from: [198.51.100.0/28, 198.51.100.0/29]#' "$ref" >"$t/bad-1.yaml"
        sed 's#public_interfaces: \[eth0\]#public_interfaces: [eth0, averyveryverylongifname]#' "$ref" >"$t/bad-2.yaml"
        printf '%s\n' "$t/bad-1.yaml" "$t/bad-2.yaml"
}

refused_batch() { # prints how it failed; returns 0 when a batch was refused
        local cand rc
        for cand in $(failing_candidates); do
                cmp -s "$cand" "$ref" && continue
                "$ctl" policy check "$cand" >/dev/null 2>&1 || continue
                rc=0
                apply "$cand" >"$t/bad.out" 2>&1 || rc=$?
                if [ "$rc" -ne 0 ]; then
                        echo "apply of $(basename "$cand"): $(head -n1 "$t/bad.out")"
                        return 0
                fi
                apply "$ref" >/dev/null 2>&1 # the kernel took it: back to the reference
        done
        [ -x "$build/tests/lib/inject-refused-batch" ] || return 1
        rc=0
        "$build/tests/lib/inject-refused-batch" "$ref" "$VPS_ENDPOINTS" "$(ns_name "$VPS_TAG-vps")" \
                allow4 >"$t/bad.out" 2>&1 || rc=$?
        [ "$rc" -eq 0 ] || { cat "$t/bad.out"; return 1; }
        echo "test-only corrupted batch: $(head -n1 "$t/bad.out")"
}

failed_batch() {
        local before after how
        before=$(live_table)
        if ! how=$(refused_batch); then
                not_ok "ref: a batch the kernel refuses is refused" "$how"
                return
        fi
        ok "ref: $how"
        after=$(live_table)
        if [ -n "$before" ] && [ "$before" = "$after" ]; then
                ok "ref: refused batch left the live table byte-for-byte unchanged"
        else
                not_ok "ref: refused batch left the live table unchanged" \
                        "$(diff <(echo "$before") <(echo "$after") | head -n 20)"
        fi
        check "ref: ceredisctl verify after the refused batch" verify
        expect_probe "ref: after the refused batch: internet -> $VPS_ADDR4:5432 still blocked" \
                blocked "$outside_client" "$VPS_ADDR4" 5432
}
failed_batch
management "after a failed apply"

# --confirm: an unconfirmed change (here: audit, which lets the store through) rolls back.
check "ref: ceredisctl apply --confirm 2 (mode: audit)" apply "$t/ref-audit.yaml" --confirm 2
expect_probe "ref: unconfirmed audit: internet -> $VPS_ADDR4:5432 passes" ok "$outside_client" "$VPS_ADDR4" 5432
rolled=""
for i in $(seq 50); do
        sleep 0.1
        [ "$i" -lt 20 ] && continue
        if [ "$(probe1 "$outside_client" "$VPS_ADDR4" 5432)" != ok ]; then rolled=$i; break; fi
done
if [ -n "$rolled" ]; then
        ok "ref: not confirmed: rolled back, internet -> $VPS_ADDR4:5432 blocked again"
else
        not_ok "ref: not confirmed: rolled back within 5 s" "internet -> $VPS_ADDR4:5432 still connects"
fi
check "ref: ceredisctl verify after the rollback" verify
management "after the rollback"

# The daemon repairs a flushed table, and the repaired table blocks again.
daemon() {
        if [ ! -x "$agent" ]; then
                skip_check "ref: flush -> repair" "$agent not built"
                return
        fi
        # Start from no table at all, so that its appearance says the daemon has applied.
        ns "$VPS_TAG-vps" nft delete table inet ceredis
        bg "$agent" --policy "$ref" --netns "$(ns_name "$VPS_TAG-vps")" --endpoints "$VPS_ENDPOINTS" \
                --host "$VPS_HOST" --state-dir "$t/state.$VPS_TAG" \
                --eventlog-key "$t/state.$VPS_TAG/eventlog.key" --foreground \
                >"$t/agent.out" 2>"$t/agent.err"
        agent_pid=$(ns_last_pid)
        local i up=""
        for i in $(seq 50); do
                if live_table >/dev/null 2>&1 && verify >/dev/null 2>&1; then up=1; break; fi
                sleep 0.1
        done
        [ -n "$up" ] || { not_ok "ref: daemon up and ruleset verified" "$(tail -n 5 "$t/agent.err")"; return; }
        ok "ref: ceredis-agent running, ruleset verified"
        ns "$VPS_TAG-vps" nft flush table inet ceredis
        local repaired=""
        for i in $(seq 20); do
                if grep -q drift "$t/agent.out" && verify >/dev/null 2>&1; then repaired=$i; break; fi
                sleep 0.1
        done
        if [ -n "$repaired" ]; then
                ok "ref: nft flush table inet ceredis: repaired and reported ($(grep -m1 drift "$t/agent.out" | cut -c1-120))"
        else
                not_ok "ref: nft flush table inet ceredis: repaired and reported within 2 s" \
                        "stdout: $(tail -n 3 "$t/agent.out")" "stderr: $(tail -n 3 "$t/agent.err")"
        fi
        matrix "ref: after flush and repair" nolog
        management "after flush and repair"
        ns_kill "$agent_pid"
}
daemon
check "ref: the table stays when the daemon stops (fail closed)" live_table

# ---- a variant that shares nothing with the reference -------------------------------------

vps_down
var="$top/tests/data/enforce-variant.yaml"
VPS_NETS=(edge=172.30.0.0/24,fd00:30::/64 core=172.31.0.0/24,fd00:31::/64)
VPS_PUBLISH=(8443:gateway:8443 27017:docs-db:27017 6379:kv:6379)
if topology_for "$var" var; then
        ok "var: topology up ($(grep -c '^leg' "$t/topology.var") service legs, interface $VPS_IFACE, $VPS_ADDR4)"
        session_start
        expect_probe "var: no agent: internet -> $VPS_ADDR4:27017 (published docs-db) connects" \
                ok "$outside_client" "$VPS_ADDR4" 27017
        check "var: ceredisctl apply tests/data/enforce-variant.yaml" apply "$var"
        check "var: ceredisctl verify after apply" verify
        matrix "var: enforce"
        management "after apply"
        expect_probe "var: management over IPv6 from its CIDR: 2001:db8:51::5 -> [$VPS_ADDR6]:$VPS_MGMT_PORT" \
                ok 2001:db8:51::5 "$VPS_ADDR6" "$VPS_MGMT_PORT"
        audit_copy "$var" "$t/var-audit.yaml"
        check "var: ceredisctl apply (mode: audit)" apply "$t/var-audit.yaml"
        matrix "var: audit" audit
        management "audit" audit
else
        not_ok "var: topology up"
fi

tap_summary
