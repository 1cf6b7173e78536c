#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# The agent's side of bench/run-watch-live.sh: starts ceredis-agent (the command after --) with
# its stdout on a pipe, then measures
#   - detection latency: forbidden SYNs crafted with raw sockets inside the Internet namespace
#     (one new source address per packet, so that the aggregator lets every one out at once),
#     from the send to the event's JSON line arriving on the agent's stdout (and to the
#     event's own "ts" stamp, taken when the agent classified the NFLOG record);
#   - RSS and CPU of the agent idle, and during a 100k-packet SYN scan from the Internet
#     namespace of the VPS's public address.
# Prints one JSON object. Usage:
#   watch-latency.py INET_NS TARGETS SAMPLES SCAN_PACKETS -- AGENT_CMD...
# TARGETS is a comma-separated list of forbidden destinations (the store services' addresses).
import ctypes, json, os, random, select, socket, struct, subprocess, sys, time
from datetime import datetime

CLONE_NEWNET = 0x40000000


def enter_netns(name):
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")
    os.close(fd)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn(src, dst, sport, dport):
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    tcp = tcp[:16] + struct.pack("!H", csum(s + d + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, s, d)
    return ip + tcp


def proc_cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def proc_mem_kb(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else None


def ts_parse(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def main():
    sep = sys.argv.index("--")
    inet_ns, targets, samples, scan_n = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4])
    agent_cmd = sys.argv[sep + 1:]
    agent = subprocess.Popen(agent_cmd, stdout=subprocess.PIPE, bufsize=0)
    buf = b""
    lines = []  # (arrival time, parsed event)

    def pump(timeout):
        nonlocal buf
        end = time.time() + timeout
        while True:
            left = end - time.time()
            if left <= 0:
                return
            r, _, _ = select.select([agent.stdout], [], [], left)
            if not r:
                return
            chunk = os.read(agent.stdout.fileno(), 1 << 16)
            now = time.time()
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    lines.append((now, json.loads(line)))
                except ValueError:
                    pass

    try:
        t0 = time.time()
        while time.time() - t0 < 30 and not any(e.get("event") == "started" for _, e in lines):
            pump(0.2)
            if agent.poll() is not None:
                raise SystemExit("agent exited before it started")
        if not any(e.get("event") == "started" for _, e in lines):
            raise SystemExit("agent did not start within 30 s")
        pump(2.0)  # let the start-up settle (rules loaded, bridges opened)
        pid = agent.pid

        # Idle: RSS, and CPU over 10 s.
        rss_idle = proc_mem_kb(pid, "VmRSS")
        c0, w0 = proc_cpu_s(pid), time.time()
        pump(10.0)
        cpu_idle = (proc_cpu_s(pid) - c0) / (time.time() - w0)

        enter_netns(inet_ns)
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)

        # Latency: one send every 10 ms, each from a source address not used before.
        sent = {}
        i = 0
        for t in targets:
            for h in range(1, 255):
                if i >= samples:
                    break
                src = f"198.51.100.{h}"
                sent[(src, t)] = time.time()
                sock.sendto(syn(src, t, 40000 + i % 20000, 5432), (t, 0))
                i += 1
                pump(0.010)
        pump(2.0)
        lat_pipe, lat_ts = [], []
        for arrived, e in lines:
            if e.get("event") != "violation":
                continue
            k = (e.get("src", {}).get("ip"), e.get("dst", {}).get("ip"))
            if k in sent:
                lat_pipe.append((arrived - sent[k]) * 1000)
                lat_ts.append((ts_parse(e["ts"]) - sent[k]) * 1000)
                del sent[k]

        # A 100k-packet SYN scan of the VPS's public address from random Internet sources.
        rss_before = proc_mem_kb(pid, "VmRSS")
        c0, w0 = proc_cpu_s(pid), time.time()
        peak = rss_before
        for n in range(scan_n):
            src = "198.51.100.%d" % random.randint(1, 254)
            sock.sendto(syn(src, "203.0.113.10", random.randint(1024, 65535), n % 65535 + 1), ("203.0.113.10", 0))
            if n % 5000 == 0:
                peak = max(peak, proc_mem_kb(pid, "VmRSS"))
                pump(0)
        scan_s = time.time() - w0
        pump(2.0)
        cpu_scan = (proc_cpu_s(pid) - c0) / (time.time() - w0)
        peak = max(peak, proc_mem_kb(pid, "VmRSS"))
        print(json.dumps({
            "samples": len(lat_pipe), "lost": len(sent),
            "latency_ms_pipe": {"p50": pct(lat_pipe, 50), "p90": pct(lat_pipe, 90), "p99": pct(lat_pipe, 99),
                                "max": max(lat_pipe) if lat_pipe else None},
            "latency_ms_ts": {"p50": pct(lat_ts, 50), "p99": pct(lat_ts, 99)},
            "rss_idle_kb": rss_idle, "cpu_idle_pct": round(cpu_idle * 100, 2),
            "scan_packets": scan_n, "scan_s": round(scan_s, 2), "rss_scan_peak_kb": peak,
            "hwm_kb": proc_mem_kb(pid, "VmHWM"), "cpu_scan_pct": round(cpu_scan * 100, 1),
            "events": sum(1 for _, e in lines if e.get("event") == "violation"),
        }))
    finally:
        agent.terminate()
        try:
            agent.wait(10)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()


if __name__ == "__main__":
    main()
