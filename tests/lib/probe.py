#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Parallel TCP connect prober, run inside a source namespace. Reads lines "ID SRC DST PORT"
from stdin (SRC is a local address to bind, or "-") and prints "ID RESULT" per line, where
RESULT is ok (handshake completed), refused (RST), timeout (no answer: dropped) or error:WHY.
All probes run at once with asyncio, so a whole matrix costs about one timeout."""
import argparse
import asyncio
import errno
import socket
import sys


async def probe(ident, src, dst, port, timeout):
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        if src != "-":
            sock.bind((src, 0))
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, (dst, port)), timeout)
        return ident, "ok"
    except asyncio.TimeoutError:
        return ident, "timeout"
    except ConnectionRefusedError:
        return ident, "refused"
    except OSError as e:
        return ident, "error:" + (errno.errorcode.get(e.errno, str(e.errno)))
    finally:
        sock.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=1.5)
    args = ap.parse_args()
    jobs = []
    for line in sys.stdin:
        f = line.split()
        if len(f) != 4:
            continue
        jobs.append(probe(f[0], f[1], f[2], int(f[3]), args.timeout))
    for ident, result in await asyncio.gather(*jobs):
        print(ident, result)


if __name__ == "__main__":
    asyncio.run(main())
