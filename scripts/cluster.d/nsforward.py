#!/usr/bin/env python3
"""Forward TCP from the host's loopback into a network namespace.

    nsforward.py --netns /run/netns/NAME --listen 127.0.0.1:PORT --connect 127.0.0.1:PORT

Listens in the namespace this process starts in (the host's), then joins the
namespace given by ``--netns`` (setns(2)) so that every connection it makes
goes there: the listening socket keeps the namespace it was created in. This
keeps the control plane of a real-node cluster reachable on host loopback
(kubeconfig, kubectl, helm, tests) although it runs inside the namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import signal
import socket

CLONE_NEWNET = 0x40000000


def setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            writer.close()


async def handle(host: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection(host, port)
    except OSError:
        writer.close()
        return
    await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
    for w in (writer, up_writer):
        w.close()


async def serve(sock: socket.socket, host: str, port: int) -> None:
    server = await asyncio.start_server(lambda r, w: handle(host, port, r, w), sock=sock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--netns", required=True)
    ap.add_argument("--listen", required=True, help="HOST:PORT in this process's namespace")
    ap.add_argument("--connect", required=True, help="HOST:PORT in --netns")
    args = ap.parse_args()
    lhost, lport = args.listen.rsplit(":", 1)
    chost, cport = args.connect.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((lhost, int(lport)))
    sock.listen(128)
    setns(args.netns)
    asyncio.run(serve(sock, chost, int(cport)))


if __name__ == "__main__":
    main()
