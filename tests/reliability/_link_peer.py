"""The two processes of the link-failure test, each run inside its own network namespace.

``python _link_peer.py server ADDRESS``
    asock_sync server: prints ``listening PORT``, accepts one connection,
    checks every byte against the shared pattern until EOF, prints
    ``received N`` (or ``mismatch AT``), closes.

``python _link_peer.py client ADDRESS PORT FRONT``
    FRONT is ``asyncio``, ``uvloop`` or ``trio`` (asock) or ``sync``
    (asock_sync). Streams the pattern with a 0.5 s timeout and prints
    ``streaming``; when a sendall times out (the test took the link down) it
    prints ``timeout SENT BYTES_SENT``, SENT counting the partial progress.
    On a line from stdin (the link is back) it sends 1 MiB more from
    exactly there, shuts down its side, waits for the server to close and
    prints ``sent TOTAL``.
"""

from __future__ import annotations

import random
import socket
import sys
from typing import Any

BLOCK = random.Random(5).randbytes(1 << 20)
DOUBLE = BLOCK + BLOCK
CHUNK = 64 * 1024
AFTER_RESUME = 1 << 20
STREAM_TIMEOUT = 0.5


def pattern(position: int, size: int) -> memoryview:
    """``size`` (<= 1 MiB) bytes of the endless pattern from stream offset ``position``."""
    start = position % len(BLOCK)
    return memoryview(DOUBLE)[start : start + size]


def say(*words: Any) -> None:
    print(*words, flush=True)


def server(address: str) -> None:
    import asock_sync

    with asock_sync.create_server((address, 0)) as listener:
        say("listening", listener.getsockname()[1])
        conn, _ = listener.accept()
    received = 0
    buffer = bytearray(256 * 1024)
    with conn:
        conn.settimeout(120)
        while n := conn.recv_into(buffer):
            if buffer[:n] != pattern(received, n):
                say("mismatch", received)
                return
            received += n
    say("received", received)


def client_sync(address: str, port: int) -> None:
    import asock_sync

    with asock_sync.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHUNK)
        s.connect((address, port))
        s.settimeout(STREAM_TIMEOUT)
        say("streaming")
        position = 0
        while True:
            try:
                s.sendall(pattern(position, CHUNK))
            except TimeoutError as exc:
                position += exc.bytes_sent  # type: ignore[attr-defined]
                say("timeout", position, exc.bytes_sent)  # type: ignore[attr-defined]
                break
            position += CHUNK
        sys.stdin.readline()
        s.settimeout(120)
        end = position + AFTER_RESUME
        while position < end:
            size = min(CHUNK, end - position)
            s.sendall(pattern(position, size))
            position += size
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1) == b""  # the server read everything and closed
        say("sent", position)


async def client_async(address: str, port: int) -> None:
    import anyio.to_thread

    import asock

    with asock.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHUNK)
        await s.connect((address, port))
        s.settimeout(STREAM_TIMEOUT)
        say("streaming")
        position = 0
        while True:
            try:
                await s.sendall(pattern(position, CHUNK))
            except TimeoutError as exc:
                position += exc.bytes_sent  # type: ignore[attr-defined]
                say("timeout", position, exc.bytes_sent)  # type: ignore[attr-defined]
                break
            position += CHUNK
        await anyio.to_thread.run_sync(sys.stdin.readline)
        s.settimeout(120)
        end = position + AFTER_RESUME
        while position < end:
            size = min(CHUNK, end - position)
            await s.sendall(pattern(position, size))
            position += size
        s.shutdown(socket.SHUT_WR)
        assert await s.recv(1) == b""
        say("sent", position)


def main(argv: list[str]) -> None:
    if argv[1] == "server":
        server(argv[2])
        return
    address, port, front = argv[2], int(argv[3]), argv[4]
    if front == "sync":
        client_sync(address, port)
        return
    import anyio

    options = {"use_uvloop": True} if front == "uvloop" else {}
    backend = "asyncio" if front == "uvloop" else front
    anyio.run(client_async, address, port, backend=backend, backend_options=options)


if __name__ == "__main__":
    main(sys.argv)
