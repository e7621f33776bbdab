"""The two processes of the load test: an echo server, and a client holding N connections.

Run as scripts (``python _load.py server IMPL N`` / ``python _load.py client PORT N``),
each in its own process, talking to the test over stdin/stdout lines:

server  prints ``listening PORT RSS``, then ``peak N RSS`` once N connections
        are open and have each echoed, then ``done`` once all have closed.
client  connects N sockets (at most 512 handshakes in flight), sends each a
        unique line and checks its echo, prints ``echoed N``, holds every
        connection open until a line arrives on stdin, then closes them all
        and prints ``closed``.

The client uses only the stdlib (non-blocking sockets and ``selectors``), so it
checks the server independently of asock. IMPL is ``asock-asyncio``,
``asock-uvloop``, ``asock-trio`` or ``uvloop-protocol`` (the reference: a plain
uvloop ``asyncio.Protocol`` echo server).
"""

from __future__ import annotations

import resource
import selectors
import socket
import sys
from typing import Any

#: Descriptors each process needs besides one per connection.
SPARE_FDS = 256
#: Connection attempts the client keeps in flight (the accept queue holds 4096).
IN_FLIGHT = 512
#: Seconds without progress after which a process gives up (a hang fails the test).
STALL = 60


def raise_fd_limit(needed: int) -> None:
    """Raise RLIMIT_NOFILE to ``needed`` (the hard limit too, where allowed); exit 3 if we can't."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(hard, needed)))
    except (ValueError, OSError):
        if hard < needed:
            print(f"fd-limit {hard}", flush=True)
            sys.exit(3)
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


# -- servers ----------------------------------------------------------------------------


class Tally:
    """Counts open connections and those that echoed; reports the peak once."""

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.open = 0
        self.echoed = 0
        self.reported = False

    def opened(self) -> None:
        self.open += 1

    def echo(self) -> None:
        self.echoed += 1
        if not self.reported and self.echoed >= self.wanted and self.open >= self.wanted:
            self.reported = True
            print(f"peak {self.open} {rss_bytes()}", flush=True)

    def closed(self) -> bool:
        """Count a close; True once the peak was reported and everything closed."""
        self.open -= 1
        return self.reported and self.open == 0


def serve_asock(backend: str, wanted: int) -> None:
    import anyio

    import asock

    tally = Tally(wanted)

    async def handle(conn: asock.socket, finished: anyio.Event) -> None:
        with conn:
            tally.opened()
            first = True
            while data := await conn.recv(65536):
                await conn.sendall(data)
                if first:
                    first = False
                    tally.echo()
        if tally.closed():
            finished.set()

    async def main() -> None:
        listener = await asock.create_server(("127.0.0.1", 0), backlog=4096)
        finished = anyio.Event()
        with listener:
            print(f"listening {listener.getsockname()[1]} {rss_bytes()}", flush=True)
            async with anyio.create_task_group() as tg:

                async def accept_forever() -> None:
                    while True:
                        conn, _ = await listener.accept()
                        tg.start_soon(handle, conn, finished)

                tg.start_soon(accept_forever)
                await finished.wait()
                tg.cancel_scope.cancel()
        print("done", flush=True)

    if backend == "uvloop":
        anyio.run(main, backend="asyncio", backend_options={"use_uvloop": True})
    else:
        anyio.run(main, backend=backend)


def serve_uvloop_protocol(wanted: int) -> None:
    import asyncio

    import uvloop

    tally = Tally(wanted)

    class Echo(asyncio.Protocol):
        def __init__(self, finished: asyncio.Event) -> None:
            self.finished = finished
            self.first = True
            self.transport: Any = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            tally.opened()

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)
            if self.first:
                self.first = False
                tally.echo()

        def connection_lost(self, exc: BaseException | None) -> None:
            if tally.closed():
                self.finished.set()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        finished = asyncio.Event()
        server = await loop.create_server(lambda: Echo(finished), "127.0.0.1", 0, backlog=4096)
        print(f"listening {server.sockets[0].getsockname()[1]} {rss_bytes()}", flush=True)
        await finished.wait()
        server.close()
        await server.wait_closed()
        print("done", flush=True)

    uvloop.run(main())


# -- the client ---------------------------------------------------------------------------


def run_client(port: int, wanted: int) -> None:
    selector = selectors.DefaultSelector()
    connections: list[socket.socket] = []
    started = echoed = 0
    replies: dict[socket.socket, bytearray] = {}

    def message(number: int) -> bytes:
        return f"connection {number:08d} says hello\n".encode()

    while echoed < wanted:
        while started < wanted and started - echoed < IN_FLIGHT:
            sock = socket.socket()
            sock.setblocking(False)
            connections.append(sock)
            sock.connect_ex(("127.0.0.1", port))
            selector.register(sock, selectors.EVENT_WRITE, started)
            started += 1
        events = selector.select(timeout=STALL)
        if not events:
            print(f"stalled after {echoed} echoes", flush=True)
            sys.exit(1)
        for key, _ in events:
            sock, number = key.fileobj, key.data
            assert isinstance(sock, socket.socket)
            if sock not in replies:  # the handshake finished
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    print(f"connect {number} failed: errno {error}", flush=True)
                    sys.exit(1)
                sock.send(message(number))  # a few bytes: always fit an empty buffer
                replies[sock] = bytearray()
                selector.modify(sock, selectors.EVENT_READ, number)
                continue
            data = sock.recv(4096)
            if not data:
                print(f"connection {number} closed before its echo", flush=True)
                sys.exit(1)
            replies[sock] += data
            expected = message(number)
            if len(replies[sock]) >= len(expected):
                if bytes(replies[sock]) != expected:
                    print(f"connection {number} got {bytes(replies[sock])!r}", flush=True)
                    sys.exit(1)
                selector.unregister(sock)
                echoed += 1
    print(f"echoed {echoed}", flush=True)
    sys.stdin.readline()  # hold every connection open until the test has measured
    for sock in connections:
        sock.close()
    print("closed", flush=True)


def main(argv: list[str]) -> None:
    role = argv[1]
    wanted = int(argv[3])
    raise_fd_limit(wanted + SPARE_FDS)
    if role == "client":
        run_client(int(argv[2]), wanted)
    elif argv[2] == "uvloop-protocol":
        serve_uvloop_protocol(wanted)
    else:
        serve_asock(argv[2].removeprefix("asock-"), wanted)


if __name__ == "__main__":
    main(sys.argv)
