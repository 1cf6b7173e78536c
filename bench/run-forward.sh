#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Forwarded packet rate through the agent's ruleset (issue 3, third benchmark), in three
# network namespaces this script creates and deletes: src --veth-- rtr --veth-- snk.
# bench/udp-flood in src sends UDP to snk through rtr at the same offered load (BENCH_RATE
# packets/s for BENCH_SECONDS, BENCH_FLOWS source ports) in each case:
#   - baseline: rtr's forward hook holds a single drop rule (for an address nobody uses);
#   - the compiled ruleset of bench/gen-policy.py with ~10 and ~100k set elements (--proto
#     udp), src and snk being the first two services of the chain (an allowed flow, so every
#     packet passes the contain, established, forbid and allow lookups);
# "in" is what rtr's ingress veth received, "out" what snk's veth received; loss = 1 - out/in.
# Prints a markdown table. Run as root: CEREDIS_BUILD=<build dir> bench/run-forward.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$top/tests/lib/netns.sh"

build=${CEREDIS_BUILD:-$top/build}
ctl="$build/ceredisctl"
flood="$build/bench/udp-flood"
rate=${BENCH_RATE:-100000}
seconds=${BENCH_SECONDS:-5}
flows=${BENCH_FLOWS:-16}
[ "$(id -u)" -eq 0 ] || { echo "run-forward.sh: run as root" >&2; exit 2; }
[ -x "$ctl" ] && [ -x "$flood" ] || { echo "run-forward.sh: build ceredisctl and bench/udp-flood" >&2; exit 2; }

ns_init fwd
t=$ns_tmp
ns_add src
ns_add rtr
ns_add snk
ns_veth src a0 rtr ra
ns_veth rtr rb snk b0
# The gen-policy chain: s000000 = 172.16.0.10 -> s000001 = 172.16.0.12 on UDP 9000.
ns src ip addr add 172.16.0.10/32 dev a0
ns src ip route add 10.99.0.1/32 dev a0
ns src ip route add default via 10.99.0.1 dev a0
ns rtr ip addr add 10.99.0.1/32 dev ra
ns rtr ip addr add 10.99.1.1/32 dev rb
ns rtr ip route add 172.16.0.10/32 dev ra
ns rtr ip route add 172.16.0.12/32 dev rb
ns rtr sysctl -qw net.ipv4.ip_forward=1
ns snk ip addr add 172.16.0.12/32 dev b0
ns snk ip route add 10.99.1.1/32 dev b0
ns snk ip route add default via 10.99.1.1 dev b0
# No ICMP port-unreachable storm back through the router: the sink drops the datagrams.
printf 'table inet sink {\n chain input { type filter hook input priority 0; udp dport 9000 drop; }\n}\n' >"$t/sink.nft"
ns snk nft -f "$t/sink.nft"

stat() { # stat NS IFACE rx_packets
        ns "$1" cat "/sys/class/net/$2/statistics/$3"
}

run_case() { # run_case NAME ELEMENTS
        local in0 out0 in1 out1 gen
        # Warm ARP and conntrack, then measure.
        ns src "$flood" 172.16.0.12 9000 1000 1 "$flows" >/dev/null
        in0=$(stat rtr ra rx_packets); out0=$(stat snk b0 rx_packets)
        gen=$(ns src "$flood" 172.16.0.12 9000 "$rate" "$seconds" "$flows")
        sleep 0.2
        in1=$(stat rtr ra rx_packets); out1=$(stat snk b0 rx_packets)
        "$PYTHON" - "$1" "$2" "$gen" "$((in1 - in0))" "$((out1 - out0))" <<'PY'
import json, sys
name, elements, gen, n_in, n_out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = gen["seconds"]
loss = 1 - n_out / n_in if n_in else 0
print("| %s | %s | %.0f | %.0f | %.0f | %.2f %% |" % (name, elements, gen["sent"] / s, n_in / s, n_out / s, 100 * loss))
PY
}

echo "### Forwarded packet rate (UDP, 64-byte payload, $flows flows, offered $rate pps for $seconds s)"
echo
echo "| ruleset in rtr | set elements | sent pps | in pps (rtr) | out pps (snk) | loss |"
echo "|---|---:|---:|---:|---:|---:|"
printf 'table inet base {\n chain forward { type filter hook forward priority -10; policy accept; ip daddr 192.0.2.99 drop; }\n}\n' >"$t/base.nft"
ns rtr nft -f "$t/base.nft"
run_case "single drop rule" 0
ns rtr nft delete table inet base
for n in ${BENCH_SIZES:-10 100000}; do
        "$PYTHON" "$here/gen-policy.py" --elements "$n" --proto udp --policy "$t/g$n.yaml" --endpoints "$t/g$n.json"
        "$ctl" apply "$t/g$n.yaml" --endpoints "$t/g$n.json" --netns "$(ns_name rtr)" --state-dir "$t/state" >/dev/null
        el=$(ns rtr nft -j list table inet ceredis | "$PYTHON" -c 'import json,sys; print(sum(len(o["set"].get("elem", [])) for o in json.load(sys.stdin)["nftables"] if "set" in o))')
        run_case "ceredis gen$n" "$el"
done
