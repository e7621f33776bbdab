"""An echo server and client that work over IPv4 or IPv6, driven by getaddrinfo.

The stdlib documentation's second example, with asock: neither end names an
address family. The server binds the first address ``getaddrinfo`` offers
for passive use, the client connects to the first one that answers. Both run
once for 127.0.0.1 and once for ::1 (skipped where the host has no IPv6).
``asock.getaddrinfo`` is awaited: a real name lookup runs off the event loop.

Run: python examples/echo_tcp_any_family.py [asyncio|uvloop|trio]
"""

from __future__ import annotations

import anyio
from _backends import run

import asock


async def open_listener(host: str) -> asock.socket | None:
    infos = await asock.getaddrinfo(
        host, 0, asock.AF_UNSPEC, asock.SOCK_STREAM, 0, asock.AI_PASSIVE
    )
    for family, kind, proto, _, address in infos:
        try:
            s = asock.socket(family, kind, proto)
        except OSError:
            continue
        try:
            await s.bind(address)
            s.listen(1)
        except OSError:
            s.close()
            continue
        return s
    return None


async def open_connection(host: str, port: int) -> asock.socket | None:
    for family, kind, proto, _, address in await asock.getaddrinfo(
        host, port, asock.AF_UNSPEC, asock.SOCK_STREAM
    ):
        try:
            s = asock.socket(family, kind, proto)
        except OSError:
            continue
        try:
            await s.connect(address)
        except OSError:
            s.close()
            continue
        return s
    return None


async def echo_one_connection(listener: asock.socket) -> None:
    conn, _ = await listener.accept()
    with conn:
        while data := await conn.recv(1024):
            await conn.sendall(data)


async def round_trip(host: str) -> None:
    listener = await open_listener(host)
    if listener is None:
        print(f"{host}: could not open socket")
        return
    with listener:
        port = listener.getsockname()[1]
        async with anyio.create_task_group() as tg:
            tg.start_soon(echo_one_connection, listener)
            client = await open_connection(host, port)
            if client is None:
                print(f"{host}: could not connect")
                tg.cancel_scope.cancel()
                return
            with client:
                await client.sendall(b"Hello, world")
                data = await client.recv(1024)
                print(f"{client.family.name} {host} port {port}: received {data!r}")


async def main() -> None:
    for host in ("127.0.0.1", "::1"):
        await round_trip(host)


if __name__ == "__main__":
    run(main)
