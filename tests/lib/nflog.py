#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Read a pcap file captured on an nflog:GROUP interface (LINKTYPE_NFLOG, 239) and print one
line per record, tab-separated: PREFIX SRC DST PROTO DPORT (the prefix as logged, trailing
space included). Used to prove which ruleset rule logged a given connection. Bounded parsing:
a malformed record ends the file, never a crash."""
import socket
import struct
import sys

NFULA_PAYLOAD = 9
NFULA_PREFIX = 10


def parse_ip(pkt):
    if len(pkt) < 1:
        return None
    v = pkt[0] >> 4
    if v == 4 and len(pkt) >= 20:
        ihl = (pkt[0] & 0x0F) * 4
        proto = pkt[9]
        src = socket.inet_ntop(socket.AF_INET, pkt[12:16])
        dst = socket.inet_ntop(socket.AF_INET, pkt[16:20])
        l4 = pkt[ihl:]
    elif v == 6 and len(pkt) >= 40:
        proto = pkt[6]  # no extension headers in test traffic
        src = socket.inet_ntop(socket.AF_INET6, pkt[8:24])
        dst = socket.inet_ntop(socket.AF_INET6, pkt[24:40])
        l4 = pkt[40:]
    else:
        return None
    dport = struct.unpack("!H", l4[2:4])[0] if proto in (6, 17) and len(l4) >= 4 else 0
    return src, dst, proto, dport


def records(data):
    if len(data) < 24:
        return
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 239:
        raise SystemExit("not an NFLOG capture (linktype %d)" % linktype)
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        rec = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(rec) < 4:
            break
        prefix, payload = "", b""
        p = 4  # family, version, resource id
        while p + 4 <= len(rec):
            # TLV length and type are in host byte order (little endian here).
            tlen, ttype = struct.unpack("<HH", rec[p:p + 4])
            if tlen < 4 or p + tlen > len(rec):
                break
            val = rec[p + 4:p + tlen]
            if ttype & 0x7FFF == NFULA_PREFIX:
                prefix = val.split(b"\0", 1)[0].decode("ascii", "replace")
            elif ttype & 0x7FFF == NFULA_PAYLOAD:
                payload = val
            p += (tlen + 3) & ~3
        ip = parse_ip(payload)
        if ip:
            yield prefix, ip


def main():
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    for prefix, (src, dst, proto, dport) in records(data):
        print("%s\t%s\t%s\t%d\t%d" % (prefix, src, dst, proto, dport))


if __name__ == "__main__":
    main()
