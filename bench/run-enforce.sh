#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Enforcement benchmarks (issue 3 item 6), each side by side with its baseline in the same run,
# all inside a network namespace this script creates and deletes:
#  1. apply time and peak RSS of `ceredisctl apply` vs `nft -f` of the very script
#     `ceredisctl policy compile` prints, for the reference policy and synthetic policies of
#     about 1k, 10k and 100k set elements (bench/gen-policy.py);
#  2. incremental update of one service address on the 100k-element ruleset over the agent's
#     persistent netlink socket (bench/bench-nft-update, nft_update()) vs `nft add element`
#     and `nft delete element` processes.
# Prints markdown tables. Run as root: CEREDIS_BUILD=<build dir> bench/run-enforce.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$top/tests/lib/netns.sh"

build=${CEREDIS_BUILD:-$top/build}
ctl="$build/ceredisctl"
repeat=${BENCH_REPEAT:-5}
sizes=(${BENCH_SIZES:-1000 10000 100000})
[ "$(id -u)" -eq 0 ] || { echo "run-enforce.sh: run as root" >&2; exit 2; }
[ -x "$ctl" ] || { echo "run-enforce.sh: $ctl not built" >&2; exit 2; }

ns_init bench
t=$ns_tmp
ns_add b
nsname=$(ns_name b)
# The policies name eth0 as the public interface; a veth pair is enough (no traffic here).
ns b ip link add eth0 type veth peer name eth1

timeit() { # timeit CMD...: JSON from bench/timeit.py, run inside the bench namespace
        ns b "$PYTHON" "$here/timeit.py" --repeat "$repeat" --warmup 1 -- "$@"
}
field() { # field JSON KEY
        "$PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}
elements() { # number of set elements in an nft script
        "$PYTHON" - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
n = 0
for block in re.findall(r"elements = \{(.*?)\}", text, re.S):
    n += len([e for e in block.split(",") if e.strip()])
print(n)
PY
}

# Policies: the reference (with endpoints as the test suite assigns them) and synthetic ones.
names=(reference)
"$ctl" policy show "$top/policies/ceredis.yaml" --json >"$t/ref.json"
"$PYTHON" "$top/tests/lib/expect.py" endpoints "$t/ref.json" --net dmz=172.19.0.0/16,fd00:19::/64 \
        --net private=172.18.0.0/16,fd00:18::/64 >"$t/reference.endpoints.json"
cp "$top/policies/ceredis.yaml" "$t/reference.yaml"
for n in "${sizes[@]}"; do
        "$PYTHON" "$here/gen-policy.py" --elements "$n" --policy "$t/gen$n.yaml" --endpoints "$t/gen$n.endpoints.json"
        names+=("gen$n")
done
# The other shape: few services (20) with many addresses each, from the endpoints file.
for n in ${BENCH_REPLICAS:-${sizes[-1]}}; do
        "$PYTHON" "$here/gen-policy.py" --elements "$n" --shape replicas --policy "$t/rep$n.yaml" --endpoints "$t/rep$n.endpoints.json"
        names+=("rep$n")
done

echo "### Apply: \`ceredisctl apply\` vs \`nft -f\` of the compiled script (median of $repeat, after 1 warm-up)"
echo
echo "| policy | set elements | ceredisctl apply | nft -f | ratio | apply peak RSS | nft -f peak RSS | of which policy check |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for name in "${names[@]}"; do
        "$ctl" policy compile "$t/$name.yaml" --endpoints "$t/$name.endpoints.json" >"$t/$name.nft"
        ours=$(timeit "$ctl" apply "$t/$name.yaml" --endpoints "$t/$name.endpoints.json" \
                --netns "$nsname" --state-dir "$t/state")
        theirs=$(timeit nft -f "$t/$name.nft")
        check=$(timeit "$ctl" policy check "$t/$name.yaml")
        o=$(field "$ours" median_ms); n=$(field "$theirs" median_ms)
        awk -v name="$name" -v el="$(elements "$t/$name.nft")" -v o="$o" -v n="$n" \
                -v ro="$(field "$ours" max_rss_kb)" -v rn="$(field "$theirs" max_rss_kb)" \
                -v c="$(field "$check" median_ms)" \
                'BEGIN { printf "| %s | %d | %.1f ms | %.1f ms | %.2f | %.1f MB | %.1f MB | %.1f ms |\n",
                        name, el, o, n, o / n, ro / 1024, rn / 1024, c }'
done
echo

# Incremental update on the largest ruleset: one more address for a service in the middle of
# the chain (its allow/private/forbid elements appear, then go again).
big=gen${sizes[-1]}
svc=$("$PYTHON" -c 'import json,sys; k=sorted(json.load(open(sys.argv[1]))); print(k[len(k)//2])' "$t/$big.endpoints.json")
upd=$("$build/bench/bench-nft-update" "$t/$big.yaml" "$t/$big.endpoints.json" "$nsname" "$svc" 172.31.255.1 1000)
# The same kind of change by nft processes: one allow4 element added, then deleted.
elem=$(grep -A4 'set allow4' "$t/$big.nft" | grep -oE '[0-9.]+ \. [0-9.]+ \. tcp \. [0-9]+' | head -n1)
elem=${elem%% . *} # a source address that exists; the new element pairs it with a new one
one_nft=$(ns b "$PYTHON" - "$elem" <<'PY'
import statistics, subprocess, sys, time
elem = sys.argv[1]
runs = []
for i in range(6):
    op = "delete" if i % 2 else "add"
    t0 = time.perf_counter()
    subprocess.run(["nft", op, "element", "inet", "ceredis", "allow4",
                    "{ 172.31.255.1 . %s . tcp . 9000 }" % elem], check=True)
    runs.append((time.perf_counter() - t0) * 1000)
print("%.2f" % statistics.median(runs))
PY
)
echo "### Incremental update on the $(elements "$t/$big.nft")-element ruleset ($big)"
echo
echo "| method | one update | 1,000 updates |"
echo "|---|---:|---:|"
printf '| nft_update() over a persistent socket (bench-nft-update) | %s µs median, %s µs p99, %s µs first | %s ms for %s updates |\n' \
        "$(field "$upd" median_us)" "$(field "$upd" p99_us)" "$(field "$upd" first_us)" "$(field "$upd" total_ms)" \
        "$(field "$upd" updates)"
printf '| recompiling the policy for the event (ruleset_compile, outside netlink) | %s µs | - |\n' \
        "$(field "$upd" compile_us)"
printf '| the container-event fast path: `ruleset_compile_address()` + `nft_update_elements()` | %s µs median, %s µs p99, %s µs first | %s ms for %s updates |\n' \
        "$(field "$upd" elem_median_us)" "$(field "$upd" elem_p99_us)" "$(field "$upd" elem_first_us)" \
        "$(field "$upd" elem_total_ms)" "$(field "$upd" elem_updates)"
printf '| compiling the delta for the event (`ruleset_compile_address`) | %s µs | - |\n' \
        "$(field "$upd" delta_compile_us)"
if [ -n "$(field "$upd" index_us 2>/dev/null)" ]; then
        printf '| building the policy'"'"'s `RulesetIndex` (once per policy) | %s µs | - |\n' "$(field "$upd" index_us)"
        printf '| compiling the delta with the index (`ruleset_compile_address`, first event) | %s µs | - |\n' \
                "$(field "$upd" delta_compile_indexed_us)"
        printf '| one container event as the daemon handles it: indexed compile + `nft_update_elements()` + `ruleset_apply_delta()` on its full ruleset (one batch per event, not coalesced) | %s µs median, %s µs p99, %s µs first | %s ms for %s events |\n' \
                "$(field "$upd" event_median_us)" "$(field "$upd" event_p99_us)" "$(field "$upd" event_first_us)" \
                "$(field "$upd" event_total_ms)" "$(field "$upd" event_updates)"
        printf '| ... of which patching the full ruleset (`ruleset_apply_delta`); afterwards `nft_verify()` of it against the kernel: %s | %s µs median | - |\n' \
                "$(field "$upd" event_model_verified | sed 's/True/equal/; s/False/DIFFERS/')" "$(field "$upd" event_model_median_us)"
        printf '| a burst of %s events for %s addresses coalesced into one batch: indexed compiles + `ruleset_delta_merge()`, then one `nft_update_elements()` (%s elements) | - | %s ms compile + %s ms add (delete: %s ms) |\n' \
                "$(field "$upd" burst_events)" "$(field "$upd" burst_events)" "$(field "$upd" burst_elements)" \
                "$(field "$upd" burst_compile_ms)" "$(field "$upd" burst_add_ms)" "$(field "$upd" burst_del_ms)"
fi
awk -v m="$one_nft" 'BEGIN { printf "| `nft add/delete element` processes (6 runs) | %.2f ms median | ~%.0f ms (1,000 x median) |\n", m, m * 1000 }'
