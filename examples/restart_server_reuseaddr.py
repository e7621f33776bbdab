"""Restart a server on the same port at once, thanks to SO_REUSEADDR (asock).

When a server closes a connection first, the kernel keeps that connection in
TIME_WAIT for a while, and binding the port again fails with EADDRINUSE. Set
SO_REUSEADDR on the listener (before bind, in every run) and the restarted
server binds at once. This script serves one client, stops, then tries to
restart twice: without the option (refused) and with it (accepted).

Run: python examples/restart_server_reuseaddr.py [asyncio|uvloop|trio]
"""

from __future__ import annotations

import errno

import anyio
from _backends import run

import asock

HOST = "127.0.0.1"


async def open_listener(port: int, reuse_address: bool) -> asock.socket:
    listener = asock.socket(asock.AF_INET, asock.SOCK_STREAM)
    try:
        if reuse_address:
            listener.setsockopt(asock.SOL_SOCKET, asock.SO_REUSEADDR, 1)
        await listener.bind((HOST, port))
        listener.listen(1)
    except BaseException:
        listener.close()
        raise
    return listener


async def serve_one_client(listener: asock.socket) -> None:
    """Accept a client, greet it and hang up first (which leaves TIME_WAIT here)."""

    async def server() -> None:
        conn, _ = await listener.accept()
        with conn:
            await conn.sendall(b"bye\n")

    async with anyio.create_task_group() as tg:
        tg.start_soon(server)
        client = await asock.create_connection(listener.getsockname())
        with client:
            while await client.recv(1024):
                pass  # read until the server's close arrives


async def main() -> None:
    with await open_listener(0, reuse_address=True) as first:
        port = first.getsockname()[1]
        await serve_one_client(first)
    print(f"first server on port {port} served a client and stopped")

    try:
        with await open_listener(port, reuse_address=False):
            print("restart without SO_REUSEADDR: bound (no TIME_WAIT left)")
    except OSError as exc:
        assert exc.errno == errno.EADDRINUSE
        print(f"restart without SO_REUSEADDR: {exc.strerror}")

    with await open_listener(port, reuse_address=True) as second:
        await serve_one_client(second)
    print(f"restart with SO_REUSEADDR: bound port {port} and served a client")


if __name__ == "__main__":
    run(main)
