#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A unix-socket relay: LISTEN_PATH -> TARGET_PATH, every connection copied both ways. The
Docker suite points the agent at it so that killing the relay is "Docker went away" (every
connection, the events stream too, closes at once) and starting it again is "Docker is back",
without touching the testbed's dockerd.

  unix-proxy.py LISTEN_PATH TARGET_PATH"""
import asyncio
import os
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main():
    listen, target = sys.argv[1], sys.argv[2]

    async def handle(cr, cw):
        try:
            tr, tw = await asyncio.open_unix_connection(target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pipe(cr, tw), pipe(tr, cw))

    if os.path.exists(listen):
        os.unlink(listen)
    server = await asyncio.start_unix_server(handle, path=listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
