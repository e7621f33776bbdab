"""Cancellation races: a seeded fuzz of cancellations and timeouts at random moments.

Over TCP, UDP, UNIX stream and UNIX datagram sockets, senders and receivers
run concurrently; every call (recv, recv_into, recvfrom, recvmsg, send,
sendall, sendfile, accept, connect) runs under a randomly chosen deadline:
none, a cancel scope that expires after a random few milliseconds, one that
is cancelled before the call starts, or a short socket timeout. Afterwards:

* every byte a sender reports as sent (return value, or ``bytes_sent`` on
  the exception that ended sendall/sendfile, cancellation included) arrives,
  in order, and nothing else does;
* every datagram a sender reports as sent arrives exactly once;
* every connection whose connect succeeded is accepted and served (a
  cancelled accept took nothing from the kernel);
* the process holds exactly the descriptors it held before.

The seed is fixed per case, so a failure replays; set ASOCK_FUZZ_SEED to
explore others.
"""

from __future__ import annotations

import os
import random
import socket as stdlib_socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import pytest

import asock

from ._peers import GUARD, FullBacklog, shrink_buffers

T = TypeVar("T")

SEED = int(os.environ.get("ASOCK_FUZZ_SEED", "20261124"))
#: Calls per scenario at scale 1 (each one a chance to cut it short); the
#: slow run multiplies them by SLOW_SCALE.
STREAM_OPERATIONS = 1000
DATAGRAMS = 1500
CONNECTIONS = 300
SLOW_SCALE = 10
#: Calls each scenario must have cut short at scale 1 (cancelled, timed out),
#: so that a change making the fuzz toothless fails.
MINIMUM_CUTS = {
    "tcp": (100, 10),
    "unix": (100, 10),
    "udp": (10, 1),
    "unix-dgram": (10, 1),
    "connections": (30, 2),
}


@dataclass
class Cut:
    """How a call ended: its value, or the cancellation/TimeoutError that cut it short."""

    value: Any = None
    cut_by: BaseException | None = None

    @property
    def completed(self) -> bool:
        return self.cut_by is None


@dataclass
class Chaos:
    """Chooses, per call, how (and whether) it gets cut short."""

    rng: random.Random
    cancellations: int = 0
    timeouts: int = 0

    async def run(self, sock: asock.socket, call: Callable[[], Awaitable[Any]]) -> Cut:
        """Run ``call`` under a random deadline.

        Exceptions other than cancellation and TimeoutError propagate.
        """
        outcome = Cut()

        async def watched() -> None:
            try:
                outcome.value = await call()
            except BaseException as exc:
                outcome.cut_by = exc
                raise

        mode = self.rng.random()
        sock.settimeout(None)
        if mode < 0.3:
            await watched()
        elif mode < 0.45:
            sock.settimeout(self.rng.choice([0.0002, 0.001, 0.003]))
            try:
                await watched()
            except TimeoutError:
                self.timeouts += 1
            finally:
                sock.settimeout(None)
        elif mode < 0.6:
            # Cancelled after a random stretch of time.
            with anyio.CancelScope() as scope:
                scope.deadline = anyio.current_time() + self.rng.uniform(0, 0.002)
                await watched()
        else:
            # Cancelled after a random number of scheduling rounds: anywhere
            # from before the call starts to deep inside its wait.
            async with anyio.create_task_group() as tg:
                tg.start_soon(watched)
                for _ in range(self.rng.randint(0, 4)):
                    await anyio.lowlevel.checkpoint()
                tg.cancel_scope.cancel()
        if isinstance(outcome.cut_by, anyio.get_cancelled_exc_class()):
            self.cancellations += 1
        return outcome


def bytes_sent(outcome: Cut, completed_size: int | None = None) -> int:
    """What a send call sent: all of it, its return value, or its ``bytes_sent``."""
    if outcome.completed:
        return completed_size if completed_size is not None else int(outcome.value)
    progress = getattr(outcome.cut_by, "bytes_sent", 0)
    assert isinstance(progress, int)
    return progress


async def pause(rng: random.Random, how_often: float = 0.3) -> None:
    """Now and then fall behind for a moment, so that the other side has to wait."""
    if rng.random() < how_often:
        await anyio.sleep(rng.uniform(0, 0.003))


# -- streams: TCP and UNIX ---------------------------------------------------------


async def stream_pair(kind: str) -> tuple[asock.socket, asock.socket]:
    if kind == "unix":
        a, b = asock.socketpair()
    else:
        listener = await asock.create_server(("127.0.0.1", 0))
        with listener:
            a = asock.socket()
            await a.connect(listener.getsockname())
            b, _ = await listener.accept()
    if kind == "unix":
        shrink_buffers(a._sock)
        shrink_buffers(b._sock)
    else:
        # Small, but not tiny: a receive window below the loopback MSS only
        # reopens on the persist timer (a 200 ms stall each time).
        a.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, 4096)
        b.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_RCVBUF, 65536)
        for sock in (a, b):
            sock.setsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY, 1)
    return a, b


async def run_stream(kind: str, rng: random.Random, tmp_path: Any, scale: int) -> Chaos:
    chaos = Chaos(rng)
    operations = STREAM_OPERATIONS * scale
    data = rng.randbytes(operations * 3000)
    path = tmp_path / f"{kind}-payload"
    path.write_bytes(data)
    sender, receiver = await stream_pair(kind)
    position = 0  # bytes the sender was told were sent
    received = bytearray()

    async def send_all() -> None:
        nonlocal position
        with open(path, "rb") as file:
            for _ in range(operations):
                chunk = memoryview(data)[position : position + rng.randint(1, 6000)]
                if not chunk:
                    break
                await pause(rng)
                method = rng.choice(["send", "sendall", "sendfile"])
                if method == "send":
                    outcome = await chaos.run(sender, lambda c=chunk: sender.send(c))
                    position += bytes_sent(outcome)
                elif method == "sendall":
                    outcome = await chaos.run(sender, lambda c=chunk: sender.sendall(c))
                    position += bytes_sent(outcome, len(chunk))
                else:
                    size = len(chunk)
                    outcome = await chaos.run(
                        sender, lambda p=position, n=size: sender.sendfile(file, p, n)
                    )
                    position += bytes_sent(outcome)
        sender.shutdown(stdlib_socket.SHUT_WR)

    async def receive_all() -> None:
        buffer = bytearray(8192)
        while True:
            await pause(rng)
            method = rng.choice(["recv", "recv_into", "recvmsg", "recvfrom"])
            if method == "recv":
                chunk = (await chaos.run(receiver, lambda: receiver.recv(8192))).value
            elif method == "recv_into":
                n = (await chaos.run(receiver, lambda: receiver.recv_into(buffer))).value
                chunk = None if n is None else bytes(buffer[:n])
            elif method == "recvmsg":
                message = (await chaos.run(receiver, lambda: receiver.recvmsg(8192))).value
                chunk = None if message is None else message[0]
            else:
                pair = (await chaos.run(receiver, lambda: receiver.recvfrom(8192))).value
                chunk = None if pair is None else pair[0]
            if chunk is None:
                continue  # cut short: it took nothing
            if not chunk:
                return
            received.extend(chunk)

    with sender, receiver:
        async with anyio.create_task_group() as tg:
            tg.start_soon(receive_all)
            await send_all()
    assert len(received) == position
    assert received == data[:position]
    return chaos


# -- datagrams: UDP and UNIX ------------------------------------------------------------


async def datagram_pair(kind: str) -> tuple[asock.socket, asock.socket, Any]:
    if kind == "unix":
        a, b = asock.socketpair(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_DGRAM)
        shrink_buffers(a._sock)
        shrink_buffers(b._sock)
        return a, b, None
    receiver = asock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    await receiver.bind(("127.0.0.1", 0))
    sender = asock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    return sender, receiver, receiver.getsockname()


async def run_datagrams(kind: str, rng: random.Random, scale: int) -> Chaos:
    chaos = Chaos(rng)
    sender, receiver, address = await datagram_pair(kind)
    sent: set[int] = set()
    received: list[int] = []
    # UDP drops what overflows the receive buffer; the sender keeps at most
    # WINDOW datagrams in flight, so every loss would be asock's.
    window = 64
    progress = anyio.Event()

    async def send_all() -> None:
        nonlocal progress
        for number in range(DATAGRAMS * scale):
            while len(sent) - len(received) >= window:
                await progress.wait()
            await pause(rng, 0.6)  # a datagram send never waits: make the receiver wait
            message = struct.pack("!I", number) * rng.randint(1, 64)
            call: Callable[[], Awaitable[int]]
            if address is not None:
                call = lambda m=message: sender.sendto(m, address)  # noqa: E731
            elif rng.random() < 0.5:
                call = lambda m=message: sender.send(m)  # noqa: E731
            else:
                call = lambda m=message: sender.sendmsg([m])  # noqa: E731
            if (await chaos.run(sender, call)).completed:
                sent.add(number)
        await sender.sendto(b"", address) if address else await sender.send(b"")

    async def receive_all() -> None:
        nonlocal progress
        buffer = bytearray(512)
        while True:
            await pause(rng, 0.05)
            method = rng.choice(["recv", "recv_into", "recvfrom", "recvmsg"])
            if method == "recv":
                message = (await chaos.run(receiver, lambda: receiver.recv(512))).value
            elif method == "recv_into":
                n = (await chaos.run(receiver, lambda: receiver.recv_into(buffer))).value
                message = None if n is None else bytes(buffer[:n])
            elif method == "recvfrom":
                pair = (await chaos.run(receiver, lambda: receiver.recvfrom(512))).value
                message = None if pair is None else pair[0]
            else:
                result = (await chaos.run(receiver, lambda: receiver.recvmsg(512))).value
                message = None if result is None else result[0]
            if message is None:
                continue
            if not message:
                return  # the empty end marker
            received.append(struct.unpack_from("!I", message)[0])
            progress.set()
            progress = anyio.Event()

    with sender, receiver:
        async with anyio.create_task_group() as tg:
            tg.start_soon(receive_all)
            await send_all()
    assert sorted(received) == sorted(sent)
    assert len(set(received)) == len(received)
    return chaos


# -- connections: accept and connect ------------------------------------------------------


async def run_connections(rng: random.Random, scale: int) -> Chaos:
    chaos = Chaos(rng)
    listener = await asock.create_server(("127.0.0.1", 0), backlog=CONNECTIONS)
    address = listener.getsockname()
    served: list[int] = []
    confirmed: list[int] = []
    backlog = FullBacklog.open()

    async def serve(conn: asock.socket) -> None:
        with conn:
            request = await conn.recv(4)
            if len(request) == 4:
                served.append(struct.unpack("!I", request)[0])
                await conn.sendall(request)

    async def accept_all(tg: anyio.abc.TaskGroup, done: anyio.Event) -> None:
        while not done.is_set():
            accepted = (await chaos.run(listener, listener.accept)).value
            if accepted is not None:
                tg.start_soon(serve, accepted[0])

    async def connect_one(number: int) -> None:
        with asock.socket() as client:
            if not (await chaos.run(client, lambda: client.connect(address))).completed:
                return  # cut short: the kernel may still complete it; the server sees EOF
            client.settimeout(GUARD)
            await client.sendall(struct.pack("!I", number))
            echo = await client.recv(4)
            assert echo == struct.pack("!I", number), f"connection {number} lost: {echo!r}"
            confirmed.append(number)

    async def never_connects() -> None:
        # A connect that really waits (the queue is full): cut short every time.
        with asock.socket() as client:
            await chaos.run(client, lambda: client.connect(backlog.address))

    done = anyio.Event()
    with listener:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(accept_all, tg, done)
                async with anyio.create_task_group() as clients:
                    for number in range(CONNECTIONS * scale):
                        clients.start_soon(connect_one, number)
                        if number % 10 == 0:
                            clients.start_soon(never_connects_bounded, never_connects)
                        if rng.random() < 0.3:
                            await anyio.sleep(0)
                done.set()
                # Wake the acceptor one last time (a connection it serves and drops).
                async with await asock.create_connection(address):
                    pass
        finally:
            backlog.close()
    assert sorted(confirmed) == sorted(set(confirmed))
    assert set(confirmed) <= set(served)
    return chaos


async def never_connects_bounded(connect: Callable[[], Awaitable[None]]) -> None:
    with anyio.move_on_after(0.05):  # chaos may pick "no deadline": bound it anyway
        await connect()


# -- the tests ----------------------------------------------------------------------------

SCENARIOS = list(MINIMUM_CUTS)


async def fuzz(scenario: str, tmp_path: Any, anyio_backend: Any, scale: int) -> Chaos:
    name, options = anyio_backend
    rng = random.Random(f"{SEED}-{scale}-{scenario}-{name}-{bool(options)}")
    with anyio.fail_after(GUARD * 6 * scale):
        if scenario in ("tcp", "unix"):
            return await run_stream(scenario, rng, tmp_path, scale)
        if scenario in ("udp", "unix-dgram"):
            return await run_datagrams(scenario.partition("-")[0], rng, scale)
        return await run_connections(rng, scale)


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_cancellation_fuzz_loses_nothing(
    scenario: str, tmp_path: Any, anyio_backend: Any, no_fd_leak: None
) -> None:
    chaos = await fuzz(scenario, tmp_path, anyio_backend, 1)
    cancellations, timeouts = MINIMUM_CUTS[scenario]
    assert chaos.cancellations >= cancellations, chaos
    assert chaos.timeouts >= timeouts, chaos


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_cancellation_fuzz_loses_nothing_at_scale(
    scenario: str, tmp_path: Any, anyio_backend: Any, no_fd_leak: None
) -> None:
    chaos = await fuzz(scenario, tmp_path, anyio_backend, SLOW_SCALE)
    cancellations, timeouts = MINIMUM_CUTS[scenario]
    assert chaos.cancellations >= cancellations * SLOW_SCALE, chaos
    assert chaos.timeouts >= timeouts * SLOW_SCALE, chaos
