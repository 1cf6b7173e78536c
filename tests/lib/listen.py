#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""TCP listeners for the test topologies: one process per namespace, listening dual stack
([::] with IPV6_V6ONLY off) on every port given, echoing whatever a client sends, so probes
can tell "connected" from "refused" and a long-lived session can exchange data. Writes the
--ready file once every socket listens."""
import argparse
import asyncio
import socket


async def echo(reader, writer):
    try:
        while True:
            data = await reader.read(4096)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ready", help="file to create once listening")
    ap.add_argument("ports", nargs="+", type=int)
    args = ap.parse_args()
    servers = []
    for port in sorted(set(args.ports)):
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", port))
        sock.listen(1024)
        servers.append(await asyncio.start_server(echo, sock=sock))
    if args.ready:
        open(args.ready, "w").close()
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
