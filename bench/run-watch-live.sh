#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The watcher's live benchmarks (issue 5 item 6), each with its baseline in the same run, in
# network namespaces this script creates and always deletes:
#  1. throughput: bench/udp-flood at its maximum rate from an "Internet" namespace
#     (198.51.100.10) across a veth to a "container" namespace (172.18.1.6, PostgreSQL's
#     address: every datagram is a NET-1 violation, the worst case) where, in turn,
#     `tcpdump -w /dev/null` and bench/bench-capture (capture + decode + flows + classify +
#     aggregation, the agent's ring settings, no kernel filter) read the receiving veth.
#     Packets, kernel drops and CPU seconds of each; ROUNDS rounds, medians.
#  2. the agent (ceredis-agent, reference policy, NFLOG + nftables in a VPS namespace with a
#     br-* bridge): detection latency of forbidden SYNs from the Internet namespace to the
#     store services (the event's line on the agent's stdout, the event stream; the journal
#     sink is not measured), RSS and CPU idle and during a 100k-packet SYN scan of 203.0.113.10
#     (bench/watch-latency.py).
# Run as root: bench/run-watch-live.sh [BUILD_DIR] [ROUNDS] [SECONDS]. Prints Markdown.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-${CEREDIS_BUILD:-$top/build}}
rounds=${2:-3}
secs=${3:-5}
pfx=${CEREDIS_BENCH_NS:-ceredis-watchlive}
[ "$(id -u)" -eq 0 ] || { echo "run-watch-live: needs root" >&2; exit 2; }
for b in bench/bench-capture bench/udp-flood ceredis-agent; do
        [ -x "$build/$b" ] || { echo "run-watch-live: $build/$b not built" >&2; exit 2; }
done
command -v tcpdump >/dev/null || { echo "run-watch-live: tcpdump missing" >&2; exit 2; }

t=$(mktemp -d)
pids=()
cleanup() {
        local p
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
        for n in gen cap inet vps pg; do ip netns del "$pfx-$n" 2>/dev/null || true; done
        rm -rf "$t"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for n in gen cap inet vps pg; do ip netns add "$pfx-$n"; done
nsx() { local n=$1; shift; ip netns exec "$pfx-$n" "$@"; }

# ---- 1. throughput
ip link add wl-gen netns "$pfx-gen" type veth peer name wl-cap netns "$pfx-cap"
nsx gen ip link set lo up
nsx cap ip link set lo up
nsx gen ip addr add 198.51.100.10/24 dev wl-gen
nsx cap ip addr add 172.18.1.6/24 dev wl-cap
nsx gen ip link set wl-gen up
nsx cap ip link set wl-cap up
nsx gen ip route add 172.18.1.0/24 dev wl-gen
nsx cap ip route add 198.51.100.0/24 dev wl-cap
nsx gen ping -c 1 -W 2 172.18.1.6 >/dev/null

proc_cpu() { # utime + stime of PID, in seconds
        awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -a td_pk td_drop td_cpu ours_pk ours_drop ours_cpu sent ours_sent ratio
for r in $(seq "$rounds"); do
        # Baseline: tcpdump, same snap length and ring size as the agent's bridges.
        # `ip netns exec` execs: $! is tcpdump itself (a function would put a subshell there).
        ip netns exec "$pfx-cap" tcpdump -n -i wl-cap -s 2048 -B 8192 -w /dev/null 2>"$t/td.err" &
        p=$!
        pids+=("$p")
        for _ in $(seq 50); do grep -q listening "$t/td.err" && break; sleep 0.1; done
        s=$(nsx gen "$build/bench/udp-flood" 172.18.1.6 5432 0 "$secs" 16)
        sleep 0.5
        c=$(proc_cpu "$p")
        kill -INT "$p"
        wait "$p" || true
        pids=("${pids[@]/$p}")
        td_pk+=("$(awk '/packets captured/ { print $1 }' "$t/td.err")")
        td_drop+=("$(awk '/dropped by kernel/ { print $1 }' "$t/td.err")")
        td_cpu+=("$c")
        sent+=("$(printf '%s' "$s" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sent"])')")

        # Ours, on the same offered load.
        ip netns exec "$pfx-cap" "$build/bench/bench-capture" wl-cap "$top/policies/ceredis.yaml" "$top/tests/data/endpoints.json" \
                $((secs + 2)) >"$t/bc.out" 2>"$t/bc.err" &
        p=$!
        pids+=("$p")
        for _ in $(seq 50); do grep -q capturing "$t/bc.err" && break; sleep 0.1; done
        s=$(nsx gen "$build/bench/udp-flood" 172.18.1.6 5432 0 "$secs" 16)
        ours_sent+=("$(printf '%s' "$s" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sent"])')")
        wait "$p"
        pids=("${pids[@]/$p}")
        read -r pk dr cpu < <(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["packets"], j["dropped"], j["cpu_s"])' "$t/bc.out")
        ours_pk+=("$pk")
        ours_drop+=("$dr")
        ours_cpu+=("$cpu")
        # CPU per packet, ours over tcpdump's, within the round (the offered load varies with
        # what else the machine runs; each round's two runs are back to back).
        ratio+=("$(python3 -c "print(round(($cpu / max($pk, 1)) / (${td_cpu[-1]} / max(${td_pk[-1]}, 1)), 2))")")
        echo "round $r: CPU ratio ${ratio[-1]}; sent ${sent[-1]} / ${ours_sent[-1]}; tcpdump ${td_pk[-1]} pkts, ${td_drop[-1]} dropped, ${td_cpu[-1]} s CPU; bench-capture $pk pkts, $dr dropped, $cpu s CPU ($(cat "$t/bc.out"))" >&2
done
m() { printf '%s\n' "$@" | median; }
echo "| ${secs}s UDP flood at max rate, 16 flows, NET-1 on every packet ($rounds rounds, medians) | packets sent | captured | kernel drops | CPU s | CPU per Mpkt |"
echo "|---|---:|---:|---:|---:|---:|"
for who in tcpdump ours; do
        if [ $who = tcpdump ]; then
                sn=$(m "${sent[@]}"); pk=$(m "${td_pk[@]}"); dr=$(m "${td_drop[@]}"); cpu=$(m "${td_cpu[@]}")
                name='`tcpdump -w /dev/null`'
        else
                sn=$(m "${ours_sent[@]}"); pk=$(m "${ours_pk[@]}"); dr=$(m "${ours_drop[@]}"); cpu=$(m "${ours_cpu[@]}")
                name='bench-capture (capture + decode + classify + aggregate)'
        fi
        echo "| $name | $sn | $pk | $dr | $cpu | $(python3 -c "print(round($cpu / max($pk, 1) * 1e6, 3))") |"
done

echo
echo "CPU per packet of bench-capture / tcpdump, per round: ${ratio[*]} (median $(m "${ratio[@]}"))"

# ---- 2. the agent: latency, RSS, CPU
ip link add wl-eth0 netns "$pfx-vps" type veth peer name wl-inet netns "$pfx-inet"
nsx vps ip link set lo up
nsx inet ip link set lo up
nsx vps ip link set wl-eth0 name eth0
nsx vps ip addr add 203.0.113.10/24 dev eth0
nsx vps ip link set eth0 up
nsx inet ip addr add 198.51.100.1/24 dev wl-inet
nsx inet ip link set wl-inet up
nsx inet ip route add 203.0.113.0/24 dev wl-inet
nsx inet ip route add 172.18.0.0/16 via 203.0.113.10
nsx vps ip route add 198.51.100.0/24 dev eth0
nsx vps ip link add br-5e2a7c000001 type bridge
nsx vps ip addr add 172.18.1.1/24 dev br-5e2a7c000001
nsx vps ip link set br-5e2a7c000001 up
ip link add wl-pg netns "$pfx-pg" type veth peer name wl-pgbr netns "$pfx-vps"
nsx vps ip link set wl-pgbr master br-5e2a7c000001 up
nsx pg ip link set lo up
nsx pg ip addr add 172.18.1.6/24 dev wl-pg
nsx pg ip link set wl-pg up
nsx pg ip route add default via 172.18.1.1
nsx vps sysctl -qw net.ipv4.ip_forward=1
nsx inet ping -c 1 -W 2 203.0.113.10 >/dev/null

mkdir -p "$t/state"
lat=$(python3 "$top/bench/watch-latency.py" "$pfx-inet" 172.18.1.2,172.18.1.4,172.18.1.6,172.18.1.8 "${LAT_SAMPLES:-500}" \
        100000 -- "$build/ceredis-agent" --policy "$top/policies/ceredis.yaml" \
        --endpoints "$top/tests/data/endpoints.json" --netns "$pfx-vps" --state-dir "$t/state" \
        --eventlog-key "$t/state/eventlog.key" --foreground 2>"$t/agent.err") ||
        { echo "agent side failed: $(tail -n 5 "$t/agent.err")" >&2; exit 1; }
echo "$lat" >&2
python3 - "$lat" <<'EOF'
import json, sys
j = json.loads(sys.argv[1])
lp, lt = j["latency_ms_pipe"], j["latency_ms_ts"]
print()
print("| agent (ceredis-agent, reference policy, NFLOG) | value |")
print("|---|---:|")
print(f"| forbidden SYNs sent / events matched | {j['samples'] + j['lost']} / {j['samples']} |")
print(f"| latency packet -> event line on stdout, p50 / p90 / p99 / max (ms) | {lp['p50']:.2f} / {lp['p90']:.2f} / {lp['p99']:.2f} / {lp['max']:.2f} |")
print(f"| latency packet -> event's own ts stamp, p50 / p99 (ms) | {lt['p50']:.2f} / {lt['p99']:.2f} |")
print(f"| RSS idle (MiB) | {j['rss_idle_kb'] / 1024:.1f} |")
print(f"| CPU idle (% of one core, 10 s) | {j['cpu_idle_pct']} |")
print(f"| RSS peak during a {j['scan_packets']}-packet SYN scan (MiB) / VmHWM | {j['rss_scan_peak_kb'] / 1024:.1f} / {j['hwm_kb'] / 1024:.1f} |")
print(f"| CPU during the scan ({j['scan_s']} s of sending, + 2 s) | {j['cpu_scan_pct']} % |")
EOF
