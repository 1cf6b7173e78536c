#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Docker events -> rules, on the real testbed (tests/testbed/, CEREDIS_TESTBED_NAME
# ceredis-bench-docker) with the agent in Docker mode enforcing policies/ceredis.yaml (issue 4
# item 5). Two measurements, printed as Markdown:
#
#  1. Latency, over N restarts (default 50) of the `ralph` container (a private service): the
#     container is stopped, the agent seen dropping its address from the live set, then
#     started. Inside view: Docker's `start` event timeNano -> the commit time of the first
#     agent `ruleset-update` that answers it (event_last_nsec >= timeNano; the fields come from
#     agent/daemon/docker.c). Outside view: `docker start` returning -> the address present in
#     `nft list set inet ceredis private4` in the VPS namespace (polled; resolution = one nft
#     call, a few ms).
#  2. The exposure window of a NEW private container: probers connect in a tight loop (200 ms
#     timeout) from the Internet namespace to its published port (IPv4 DNAT and IPv6 userland
#     proxy) and from the ollama container's namespace to its address, from before `docker run`
#     until 2 s after the agent reported it; every connection that completes is an exposure.
#     Control: the same prober reaches the proxy's 443 throughout, and the new listener answers
#     inside its own container.
#
# Usage (root): bench/run-docker.sh [BUILD_DIR] [RESTARTS]; CEREDIS_BENCH_RAW=DIR keeps the raw
# data (agent events, Docker start times, probe timelines). Exit non-zero when anything was
# reachable, a prober left a gap over 1 s, or a measurement could not be taken. Everything is
# removed on every exit path.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-${CEREDIS_BUILD:-$top/build}}
restarts=${2:-50}
tb=$top/tests/testbed/testbed.sh
export CEREDIS_TESTBED_NAME=ceredis-bench-docker
unset CEREDIS_TESTBED_DIR
[ "$(id -u)" = 0 ] || { echo "run-docker: needs root" >&2; exit 2; }
[ -x "$build/ceredis-agent" ] || { echo "run-docker: no $build/ceredis-agent" >&2; exit 2; }

work=$(mktemp -d /tmp/ceredis-bench-docker.XXXXXX)
agent_pid=
probe_pids=()
finish() {
        local rc=$?
        trap - EXIT INT TERM HUP
        for p in "${probe_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        if [ -n "$agent_pid" ]; then
                kill "$agent_pid" 2>/dev/null
                wait "$agent_pid" 2>/dev/null
        fi
        [ -z "${CEREDIS_BENCH_RAW:-}" ] || cp -r "$work/." "$CEREDIS_BENCH_RAW/"
        "$tb" down >"$work/down.log" 2>&1 || { cat "$work/down.log" >&2; rc=1; }
        rm -rf "$work"
        exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

die() { echo "run-docker: $*" >&2; exit 1; }
now() { date +%s%N; }
dk() { /usr/bin/docker -H "unix://$TB_DOCKER_SOCK" "$@"; }
# set_has SET ADDR: ADDR is an element of the live SET. A failed listing (nft can fail while a
# commit is in flight) is retried, never read as "absent".
set_has() {
        local out i
        for ((i = 0; i < 20; i++)); do
                if out=$(ip netns exec "$TB_NS_VPS" nft list set inet ceredis "$1" 2>&1); then
                        grep -qw -- "$2" <<<"$out"
                        return
                fi
                echo "run-docker: nft list set $1 failed, retrying: $out" >>"$work/nft-errors"
        done
        die "cannot list set $1: $out"
}

"$tb" images >"$work/images.log" 2>&1 || { tail -n 20 "$work/images.log" >&2; die "testbed images"; }
env=$("$tb" up --compose "$top/tests/testbed/compose/ceredis.yml" 2>"$work/testbed.log") ||
        { tail -n 20 "$work/testbed.log" >&2; die "testbed up"; }
eval "$env"

"$build/ceredis-agent" --policy "$top/policies/ceredis.yaml" --netns "$TB_NS_VPS" \
        --docker-host "unix://$TB_DOCKER_SOCK" --state-dir "$work/state" --foreground \
        >"$work/agent.out" 2>"$work/agent.err" &
agent_pid=$!
for ((i = 0; i < 100; i++)); do
        grep -q '"by":"docker"' "$work/agent.out" && break
        sleep 0.1
done
grep -q '"by":"docker"' "$work/agent.out" || { tail "$work/agent.err" >&2; die "agent did not apply"; }

# ---- 1. start event -> rules live ----------------------------------------------------------

id=$(dk ps -q --no-trunc --filter label=com.docker.compose.service=ralph)
[ -n "$id" ] || die "no ralph container"
addr=$(dk inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$id")
for ((i = 0; i < 100; i++)); do set_has private4 "$addr" && break; sleep 0.05; done
set_has private4 "$addr" || die "ralph $addr not in private4 before the run"
# dockerd keeps only its last 256 events for --since: follow the stream during the run instead.
dk events --filter "container=$id" --filter event=start --format '{{.TimeNano}}' >"$work/starts" 2>/dev/null &
events_pid=$!
probe_pids+=("$events_pid")
sleep 0.5
: >"$work/outside"
for ((r = 0; r < restarts; r++)); do
        dk stop -t 0 "$id" >/dev/null || die "docker stop"
        for ((i = 0; i < 500; i++)); do set_has private4 "$addr" || break; sleep 0.01; done
        set_has private4 "$addr" && die "restart $r: the stopped container's $addr stayed in private4"
        dk start "$id" >/dev/null || die "docker start"
        t0=$(now)
        addr=$(dk inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$id")
        while ! set_has private4 "$addr"; do
                (($(now) - t0 < 5000000000)) || die "restart $r: $addr not live after 5 s"
        done
        echo $((($(now) - t0) / 1000)) >>"$work/outside"
done
for ((i = 0; i < 50; i++)); do [ "$(wc -l <"$work/starts")" -ge "$restarts" ] && break; sleep 0.1; done
kill "$events_pid"
wait "$events_pid" 2>/dev/null
probe_pids=()

# ---- 2. the exposure window of a new private container -------------------------------------

cat >"$work/probe-loop.py" <<'EOF'
# Connect to DST PORT in a loop until STOPFILE exists (READYFILE is created after the first
# attempt); then print one line per attempt: the wall-clock
# nanoseconds it started, and ok (handshake completed), refused, timeout or error.
import os, socket, sys, time
dst, port, stop, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
out = []
while not os.path.exists(stop):
    t = time.time_ns()
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(0.2)
    try:
        s.connect((dst, port))
        r = "ok"
    except socket.timeout:
        r = "timeout"
    except ConnectionRefusedError:
        r = "refused"
    except OSError:
        r = "error"
    finally:
        s.close()
    out.append(f"{t} {r}")
    if len(out) == 1:
        open(ready, "w").close()
    if r in ("refused", "error", "ok"):
        time.sleep(0.005)
print(dst, port)
print("\n".join(out))
EOF
new_ip=172.19.0.200
new_port=15432
ollama_pid=$(dk inspect -f '{{.State.Pid}}' "$(dk ps -q --filter label=com.docker.compose.service=ollama)")
stop=$work/stop
ip netns exec "$TB_NS_INET" python3 "$work/probe-loop.py" "$TB_VPS_IP" "$new_port" "$stop" "$work/ready.1" >"$work/p.inet4" &
probe_pids+=($!)
ip netns exec "$TB_NS_INET" python3 "$work/probe-loop.py" "$TB_VPS_IP6" "$new_port" "$stop" "$work/ready.2" >"$work/p.inet6" &
probe_pids+=($!)
nsenter --net="/proc/$ollama_pid/ns/net" python3 "$work/probe-loop.py" "$new_ip" 5432 "$stop" "$work/ready.3" >"$work/p.ollama" &
probe_pids+=($!)
ip netns exec "$TB_NS_INET" python3 "$work/probe-loop.py" "$TB_VPS_IP" 443 "$stop" "$work/ready.4" >"$work/p.control" &
probe_pids+=($!)
for ((i = 0; i < 300; i++)); do
        [ "$(ls "$work" | grep -c '^ready\.')" = 4 ] && break
        sleep 0.1
done
[ "$(ls "$work" | grep -c '^ready\.')" = 4 ] || die "the probers did not start"
sleep 1
w0=$(now)
new_id=$(dk run -d --name newpg --network ceredis_private --ip "$new_ip" -p "$new_port:5432" \
        -v "$top/tests/testbed/compose/files:/testbed:ro" \
        ceredis-testbed/busybox:latest /bin/sh /testbed/standin.sh newpg 5432) || die "docker run"
w1=$(now)
for ((i = 0; i < 100; i++)); do
        grep -q '"name":"newpg"' "$work/agent.out" && break
        sleep 0.05
done
grep -q '"name":"newpg"' "$work/agent.out" || die "the agent never reported newpg"
w2=$(now)
sleep 2
touch "$stop"
for p in "${probe_pids[@]}"; do wait "$p"; done
probe_pids=()
w3=$(now)
inside=$(dk exec newpg timeout 2 wget -qO- http://127.0.0.1:5432/ 2>&1)

# ---- report ---------------------------------------------------------------------------------

python3 - "$work" "$restarts" "$w0" "$w1" "$w2" "$w3" "$inside" <<'EOF'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
w0, w1, w2, w3 = (int(x) for x in sys.argv[3:7])
inside = sys.argv[7]
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))]
starts = [int(x) for x in open(f"{work}/starts").read().split()]
updates = []
for line in open(f"{work}/agent.out"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "ruleset-update" and e.get("by") == "docker" and "event_last_nsec" in e:
        updates.append(e)
inside_us, compile_us, deliver_us, missing = [], [], [], 0
for i, s in enumerate(starts):
    nxt = starts[i + 1] if i + 1 < len(starts) else None
    u = next((u for u in updates if u["event_last_nsec"] >= s and (nxt is None or u["event_last_nsec"] < nxt)), None)
    if u is None:
        missing += 1
        continue
    inside_us.append((u["commit_nsec"] - s) / 1000)
    if "event_rx_nsec" in u:
        deliver_us.append((u["event_rx_nsec"] - u["event_last_nsec"]) / 1000)
    compile_us.append(u["usec"])
outside_us = [int(x) for x in open(f"{work}/outside").read().split()]
print(f"## Docker start -> rules live ({n} stop/start cycles of `ralph`, private service)\n")
print("| view | n | p50 | p99 | max |")
print("|---|---|---|---|---|")
def row(name, v):
    if not v:
        print(f"| {name} | 0 | - | - | - |"); return
    print(f"| {name} | {len(v)} | {pct(v, 50) / 1000:.2f} ms | {pct(v, 99) / 1000:.2f} ms | {max(v) / 1000:.2f} ms |")
row("start event timeNano -> agent commit (inside)", inside_us)
row("of which: Docker's last event -> read by the agent", deliver_us)
row("of which: compile + nft_update (`usec`)", compile_us)
row("`docker start` returned -> element in `private4` (outside, polled)", outside_us)
if missing or len(starts) != n:
    print(f"\n{len(starts)} start events seen, {missing} without a matching ruleset-update.")
print(f"\n## Exposure window of a new private container (newpg, 172.19.0.200, -p 15432:5432)\n")
print(f"`docker run` returned after {(w1 - w0) / 1e6:.0f} ms; the agent reported the container "
      f"{(w2 - w0) / 1e6:.0f} ms after `docker run` began; probing ran from at least 1 s before it to "
      f"{(w3 - w0) / 1e6:.0f} ms after.\n")
print("| prober | target | attempts | completed | refused | timed out | other errors | largest gap between attempts, run -> reported |")
print("|---|---|---|---|---|---|---|---|")
names = {"inet4": "Internet ns", "inet6": "Internet ns", "ollama": "ollama container", "control": "Internet ns (control: allowed)"}
bad, ctl_ok, gap_bad = 0, 0, False
for k in ("inet4", "inet6", "ollama", "control"):
    lines = open(f"{work}/p.{k}").read().split("\n")
    dst, port = lines[0].split()
    att = [(int(t), r) for t, r in (l.split() for l in lines[1:] if l.strip())]
    cnt = {r: sum(1 for _, x in att if x == r) for r in ("ok", "refused", "timeout", "error")}
    ts = [t for t, _ in att] + [w3]
    inwin = [t for t in ts if w0 <= t <= w2]
    pts = [max(t for t in ts if t <= w0)] + inwin + [min(t for t in ts if t > w2)] if inwin else []
    gap = max((b - a for a, b in zip(pts, pts[1:])), default=0) / 1e6
    if k == "control":
        ctl_ok = cnt["ok"]
    else:
        bad += cnt["ok"]
        gap_bad |= gap == 0 or gap > 1000
    shown = dst if ":" not in dst else f"[{dst}]"
    print(f"| {names[k]} | {shown}:{port} | {len(att)} | {cnt['ok']} | {cnt['refused']} | {cnt['timeout']} | {cnt['error']} | {gap:.0f} ms |")
print(f"\nListener check inside newpg (`wget http://127.0.0.1:5432/`): `{inside.strip()}`")
if bad or ctl_ok == 0 or gap_bad or "newpg" not in inside or missing or len(starts) != n or len(outside_us) != n:
    print("\nFAILED: exposure seen, or a measurement or control is missing")
    sys.exit(1)
EOF
