"""The bench's helper processes, run as ``python -m benchmarks.peers [--cpu N] COMMAND``.

The runner starts them with the repository root as their working directory.
With ``--cpu N`` a helper first pins itself (and so every thread it starts) to
CPU N, the one the bench process does not use.

``echo-client PORT CONNECTIONS WARMUP SECONDS``
    The load for the echo workload, identical for every server: CONNECTIONS
    connections each keep one 100-byte request in flight. After WARMUP seconds
    it prints ``begin``, after SECONDS more ``end`` (the bench reads its own CPU
    time at each), then the requests per second completed in between as JSON.
``http-client PORT CONNECTIONS WARMUP SECONDS``
    The load for the http workload, the same way: CONNECTIONS keep-alive
    connections each keep one ``GET / HTTP/1.1`` request in flight, and a
    request is done when the fixed response's bytes have all arrived.
``bulk-source``
    Prints its port, then for each connection reads an 8-byte size and sends
    that many bytes with blocking ``sendall``; exits when stdin closes.
``memory-server IMPL CONNECTIONS``
    Runs IMPL's echo server, prints its port, prints ``ready`` once
    CONNECTIONS connections were accepted, and exits when stdin closes.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import socket as _stdlib
import sys
import threading
from time import perf_counter
from typing import Any

#: The echo load's request (the echo is as long).
REQUEST = b"r" * 100
#: The http load's request, sent again on each keep-alive connection.
HTTP_REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
#: Every http server's answer to each request.
HTTP_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
_SOURCE_BLOCK = b"b" * (1 << 20)


def raise_fd_limit(needed: int) -> None:
    """Raise RLIMIT_NOFILE to at least ``needed`` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class _Requester(asyncio.Protocol):
    def __init__(self, counter: list[int], request: bytes, reply_size: int) -> None:
        self.counter = counter
        self.request = request
        self.reply_size = reply_size
        self.pending = 0
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.pending = self.reply_size
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.pending -= len(data)
        if self.pending <= 0:
            self.counter[0] += 1
            self.pending = self.reply_size
            self.transport.write(self.request)


async def _load(
    port: int, connections: int, warmup: float, seconds: float, request: bytes, reply_size: int
) -> float:
    loop = asyncio.get_running_loop()
    counter = [0]
    transports = []
    for _ in range(connections):
        transport, _ = await loop.create_connection(
            lambda: _Requester(counter, request, reply_size), "127.0.0.1", port
        )
        transports.append(transport)
    await asyncio.sleep(warmup)
    print("begin", flush=True)
    before, start = counter[0], perf_counter()
    await asyncio.sleep(seconds)
    rate = (counter[0] - before) / (perf_counter() - start)
    print("end", flush=True)
    for transport in transports:
        transport.abort()
    return rate


def load_client(
    port: int, connections: int, warmup: float, seconds: float, request: bytes, reply_size: int
) -> None:
    """Load the server on ``port`` with ``request``, done once ``reply_size`` bytes came back.

    Prints ``begin`` and ``end`` around the measuring window, then requests per
    second as JSON.
    """
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        rate = runner.run(_load(port, connections, warmup, seconds, request, reply_size))
    print(json.dumps({"requests_per_s": rate}), flush=True)


def _send_bulk(conn: _stdlib.socket) -> None:
    with conn:
        header = b""
        while len(header) < 8:
            chunk = conn.recv(8 - len(header))
            if not chunk:
                return
            header += chunk
        left = int.from_bytes(header, "big")
        block = memoryview(_SOURCE_BLOCK)
        try:
            while left > 0:
                piece = block[: min(left, len(block))]
                conn.sendall(piece)
                left -= len(piece)
        except OSError:
            pass


def bulk_source() -> None:
    """Serve bulk transfers one at a time until stdin closes."""
    listener = _stdlib.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            _send_bulk(conn)

    threading.Thread(target=serve, daemon=True).start()
    sys.stdin.read()


def memory_server(impl_name: str, connections: int) -> None:
    """Run ``impl_name``'s echo server and report when it holds ``connections``."""
    from .impls import implementations

    raise_fd_limit(connections + 256)
    impl = {i.name: i for i in implementations()}[impl_name]
    listener = _stdlib.create_server(("127.0.0.1", 0), backlog=4096)
    print(listener.getsockname()[1], flush=True)
    accepted = 0

    def on_connection() -> None:
        nonlocal accepted
        accepted += 1
        if accepted == connections:
            gc.collect()
            print("ready", flush=True)

    impl.serve(listener, sys.stdin.read, on_connection)


def pin_to_cpu(cpu: int) -> None:
    """Pin this process's threads, and every thread they start later, to ``cpu``."""
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]  # the calling thread; threads started later inherit its mask
    for tid in threads:
        os.sched_setaffinity(tid, {cpu})


def main(argv: list[str]) -> None:
    """Run the helper named by ``argv[0]`` (after ``--cpu N``, if given)."""
    if argv[:1] == ["--cpu"]:
        pin_to_cpu(int(argv[1]))
        argv = argv[2:]
    command, args = argv[0], argv[1:]
    if command in ("echo-client", "http-client"):
        request, reply_size = (
            (REQUEST, len(REQUEST)) if command == "echo-client"
            else (HTTP_REQUEST, len(HTTP_RESPONSE))
        )
        load_client(
            int(args[0]), int(args[1]), float(args[2]), float(args[3]), request, reply_size
        )
    elif command == "bulk-source":
        bulk_source()
    elif command == "memory-server":
        memory_server(args[0], int(args[1]))
    else:
        raise SystemExit(f"unknown helper {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
