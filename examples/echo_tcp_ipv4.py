"""A TCP echo server and its client over IPv4, in one process, with asock.

The first example of the stdlib's socket documentation, made awaitable: the
server accepts one connection and sends back everything it reads until the
client closes; the client sends a greeting and prints the echo. The only
changes from the blocking version are ``await`` on the calls that can wait and
a task group to run both ends at once.

Run: python examples/echo_tcp_ipv4.py [asyncio|uvloop|trio]
"""

from __future__ import annotations

import anyio
from _backends import run

import asock

HOST = "127.0.0.1"  # loopback only; "" would listen on every interface


async def echo_one_connection(listener: asock.socket) -> None:
    conn, address = await listener.accept()
    with conn:
        print("Connected by", address[0])
        while data := await conn.recv(1024):
            await conn.sendall(data)


async def greet(port: int) -> None:
    with asock.socket(asock.AF_INET, asock.SOCK_STREAM) as s:
        await s.connect((HOST, port))
        await s.sendall(b"Hello, world")
        data = await s.recv(1024)
    print("Received", repr(data))


async def main() -> None:
    with asock.socket(asock.AF_INET, asock.SOCK_STREAM) as listener:
        await listener.bind((HOST, 0))  # port 0: the kernel picks a free port
        listener.listen(1)
        port = listener.getsockname()[1]
        async with anyio.create_task_group() as tg:
            tg.start_soon(echo_one_connection, listener)
            await greet(port)


if __name__ == "__main__":
    run(main)
