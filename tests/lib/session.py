#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A long-lived TCP session standing in for an operator's SSH connection: connects from SRC to
DST:PORT (an echo listener), then exchanges one line every 100 ms. The status file always
holds "ok N" (N exchanges so far) or, from the first failure on, "broken N WHY"; the process
then exits. A check reads the file twice to see that N advances."""
import argparse
import os
import socket
import sys
import time


def write_status(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--status", required=True)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("port", type=int)
    args = ap.parse_args()
    family = socket.AF_INET6 if ":" in args.dst else socket.AF_INET
    n = 0
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(args.timeout)
        s.bind((args.src, 0))
        s.connect((args.dst, args.port))
        f = s.makefile("rwb", buffering=0)
        while True:
            msg = b"ping %d\n" % n
            f.write(msg)
            if f.readline() != msg:
                raise ConnectionError("echo mismatch or closed")
            n += 1
            write_status(args.status, "ok %d" % n)
            time.sleep(0.1)
    except (OSError, ConnectionError) as e:
        write_status(args.status, "broken %d %s" % (n, e))
        sys.exit(1)


if __name__ == "__main__":
    main()
