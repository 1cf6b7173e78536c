#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The watcher's per-packet cost (issue 5's benchmark, the part that needs no traffic generator):
# instructions per packet of decode + flow table + classify on fixed captures, measured with
# callgrind against a bare pcap_next_ex loop over the same file (bench/bench-classify).
#   header.pcap   20k TCP SYNs from 2k Internet addresses to PostgreSQL (header-only: the
#                 flow is looked up or created and judged, no payload)
#   established.pcap 20k ACKs on 200 allowed Internet -> proxy:443 flows (header-only, every
#                 packet a flow-table hit)
#   payload.pcap  5k Grafana -> PostgreSQL sessions (read-only flow): SYN, then a Query
#                 message with a SELECT (first-payload inspection: the PostgreSQL decoder and
#                 the SQL classifier run on every Query)
# Prints a Markdown table. Usage: bench/run-watch.sh [BUILD_DIR] (default ./build).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-${CEREDIS_BUILD:-$top/build}}
bin="$build/bench/bench-classify"
[ -x "$bin" ] || { echo "run-watch: $bin not built" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "run-watch: valgrind missing" >&2; exit 2; }
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

python3 - "$t" <<'EOF'
import struct, sys
out = sys.argv[1]
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def frame(src, dst, sport, dport, flags, seq, payload=b""):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 64240, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, bytes(src), bytes(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\x02\x42\xac\x13\x00\x02" + b"\x02\x42\xac\x13\x00\x03" + b"\x08\x00" + ip + tcp
def write(name, frames):
    with open(f"{out}/{name}", "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(fr), len(fr)) + fr)
pg, grafana = [172, 18, 1, 6], [172, 18, 1, 10]
write("header.pcap", [frame([198, 51, 100 + (i // 250) % 8, i % 250], pg, 1024 + i, 5432, 0x02, i)
                      for i in range(20000)])
q = b"SELECT student, cefr_level FROM evaluations WHERE competency = 'oral'\0"
query = b"Q" + struct.pack("!I", 4 + len(q)) + q
frames = []
for i in range(5000):
    frames.append(frame(grafana, pg, 20000 + i, 5432, 0x02, 1000))
    frames.append(frame(grafana, pg, 20000 + i, 5432, 0x18, 1001, query))
write("payload.pcap", frames)
# Header-only packets of established flows: 200 Internet clients on the proxy's 443 (allowed,
# no L7 decoder), 100 ACKs each, interleaved: a flow-table hit and a cached decision.
proxy = [172, 18, 0, 2]
write("established.pcap", [frame([198, 51, 100, i % 200], proxy, 30000 + i % 200, 443, 0x10, i)
                           for i in range(20000)])
write("empty.pcap", [])
EOF

ir() { # ir OUTFILE CMD...: total instructions of CMD under callgrind
        local f=$1
        shift
        valgrind --tool=callgrind --callgrind-out-file="$f" "$@" >/dev/null 2>&1
        callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done { gsub(",", "", $1); print $1; done = 1 }'
}

# The one-time costs (policy load, map, flow table allocation; opening the file) are measured
# on an empty capture and taken out.
bare0=$(ir "$t/bare0.out" "$bin" bare "$t/empty.pcap")
full0=$(ir "$t/full0.out" "$bin" classify "$t/empty.pcap" "$top/policies/ceredis.yaml" "$top/tests/data/endpoints.json")
echo "| capture | packets | Ir/packet bare pcap_next_ex | Ir/packet with decode + flows + classify | added per packet |"
echo "|---|---|---|---|---|"
for cap in header established payload; do
        n=$("$bin" bare "$t/$cap.pcap" | awk '{ print $2 }')
        bare=$(ir "$t/bare.out" "$bin" bare "$t/$cap.pcap")
        full=$(ir "$t/full.out" "$bin" classify "$t/$cap.pcap" "$top/policies/ceredis.yaml" \
                "$top/tests/data/endpoints.json")
        b=$(((bare - bare0) / n))
        f=$(((full - full0) / n))
        echo "| $cap.pcap | $n | $b | $f | $((f - b)) |"
done
