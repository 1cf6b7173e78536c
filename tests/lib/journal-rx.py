#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A receiver of journald's native protocol, for tests: PID 1 is not systemd here, so there is
no journald. Run it inside a private mount namespace whose /run/systemd is a tmpfs of the test's
own; it binds /run/systemd/journal/socket, decodes each datagram into {FIELD: value} and writes
it as one JSON line.

  journal-rx.py --count N --ready FILE   print N entries on stdout, then exit (10 s each at most);
                                         FILE is created once the socket is bound
  journal-rx.py --out FILE               append entries to FILE until our parent exits (the
                                         parent exec()s the program under test)
"""
import argparse
import json
import os
import socket
import struct

SOCKET = "/run/systemd/journal/socket"


def decode(data):
    """One datagram: FIELD=value lines, or FIELD\\n + little-endian 64-bit size + value + \\n."""
    entry, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            v = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        entry[k.decode()] = v.decode(errors="replace")
    return entry


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int)
    ap.add_argument("--ready")
    ap.add_argument("--out")
    args = ap.parse_args()
    parent = os.getppid()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(SOCKET)
    if args.ready:
        open(args.ready, "w").close()
    if args.count is not None:
        s.settimeout(10)
        for _ in range(args.count):
            print(json.dumps(decode(s.recv(1 << 20))), flush=True)
        return
    out = open(args.out, "a")
    s.settimeout(0.5)
    while os.getppid() == parent:
        try:
            data = s.recv(1 << 20)
        except socket.timeout:
            continue
        out.write(json.dumps(decode(data)) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
