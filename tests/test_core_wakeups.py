"""Readiness corner cases: one readiness event for several waiters, a woken
waiter that is cancelled before it retries, and descriptor numbers reused
after close (stale registrations in the event loop's poller).

An edge-triggered poller reports "readable" once per arrival; these tests
check that no waiter is left asleep while data it could take is queued.
"""

from __future__ import annotations

import errno

import anyio
import pytest
from anyio import wait_all_tasks_blocked
from core_helpers import Ticker

import asock

GUARD = 10


@pytest.mark.parametrize("waiters", [2, 5])
async def test_one_burst_wakes_every_stream_waiter(waiters: int, no_fd_leak: None) -> None:
    # All bytes arrive in one write (one readiness event); each waiter takes one.
    a, b = asock.socketpair()
    got: list[bytes] = []

    async def take_one() -> None:
        got.append(await b.recv(1))

    with a, b, anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            for _ in range(waiters):
                tg.start_soon(take_one)
            await wait_all_tasks_blocked()
            a._sock.send(bytes(range(waiters)))
    assert sorted(got) == [bytes([i]) for i in range(waiters)]


@pytest.mark.parametrize("kind", [asock.SOCK_DGRAM, "udp"])
async def test_one_burst_of_datagrams_wakes_every_waiter(kind: object, no_fd_leak: None) -> None:
    count = 6
    if kind == "udp":
        receiver = asock.socket(asock.AF_INET, asock.SOCK_DGRAM)
        sender = asock.socket(asock.AF_INET, asock.SOCK_DGRAM)
        await receiver.bind(("127.0.0.1", 0))
        target = receiver.getsockname()

        def burst() -> None:
            for i in range(count):
                sender._sock.sendto(b"%d" % i, target)
    else:
        sender, receiver = asock.socketpair(asock.AF_UNIX, asock.SOCK_DGRAM)

        def burst() -> None:
            for i in range(count):
                sender._sock.send(b"%d" % i)

    got: list[bytes] = []

    async def take_one() -> None:
        data, _ = await receiver.recvfrom(10)
        got.append(data)

    with sender, receiver, anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(take_one)
            await wait_all_tasks_blocked()
            burst()  # all datagrams queued before any waiter runs
    assert sorted(got) == sorted(b"%d" % i for i in range(count))


async def test_woken_waiter_cancelled_before_retry_leaves_data_for_others(
    no_fd_leak: None,
) -> None:
    a, b = asock.socketpair(asock.AF_UNIX, asock.SOCK_DGRAM)
    got: list[bytes] = []
    first = anyio.CancelScope()

    async def waiter(scope: anyio.CancelScope) -> None:
        with scope:
            got.append(await b.recv(100))

    with a, b, anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter, first)
            await wait_all_tasks_blocked()
            tg.start_soon(waiter, anyio.CancelScope())
            await wait_all_tasks_blocked()
            # The datagram is queued and the first waiter cancelled in one tick:
            # whichever waiter the readiness event reaches, someone must take it.
            a._sock.send(b"only one")
            first.cancel()
    assert got == [b"only one"]


async def test_ready_then_cancelled_reader_does_not_swallow_the_event(no_fd_leak: None) -> None:
    # The readiness event is delivered while the only waiter is being cancelled;
    # a later call must still see the data without a new arrival.
    a, b = asock.socketpair()
    with a, b, anyio.fail_after(GUARD):
        for round_ in range(20):
            early: list[bytes] = []
            with anyio.CancelScope() as scope:

                async def wait_then_cancel(number: int) -> None:
                    await wait_all_tasks_blocked()
                    a._sock.send(b"r%02d" % number)
                    scope.cancel()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(wait_then_cancel, round_)
                    early.append(await b.recv(3))
            data = early[0] if early else await b.recv(3)
            assert data == b"r%02d" % round_


async def test_reused_descriptor_numbers_wait_correctly(no_fd_leak: None) -> None:
    # Register a socket with the poller, close it while a duplicate keeps the
    # open file alive, and let a new socket take the old number: both the
    # duplicate and the newcomer must still wake up for their own data.
    a, peer = asock.socketpair()
    copy = a.dup()
    with peer, copy, anyio.fail_after(GUARD):
        with anyio.move_on_after(0.02):
            await a.recv(1)  # leaves the poller with a registration for a's fd
        old_fd = a.fileno()
        a.close()
        c, d = asock.socketpair()
        with c, d:
            assert old_fd in (c.fileno(), d.fileno()), "the kernel reuses the lowest free number"
            newcomer, its_peer = (c, d) if c.fileno() == old_fd else (d, c)

            async def late(sock: asock.socket, data: bytes) -> None:
                await wait_all_tasks_blocked()
                await sock.send(data)

            async with anyio.create_task_group() as tg:
                tg.start_soon(late, its_peer, b"new")
                assert await newcomer.recv(10) == b"new"
            async with anyio.create_task_group() as tg:
                tg.start_soon(late, peer, b"dup")
                assert await copy.recv(10) == b"dup"
            # Traffic on the duplicate must not be mistaken for the newcomer's.
            await peer.send(b"noise")
            newcomer.settimeout(0.05)
            with pytest.raises(TimeoutError):
                await newcomer.recv(10)
            assert await copy.recv(10) == b"noise"


async def test_close_wakes_a_pending_connect(no_fd_leak: None) -> None:
    import socket as stdlib_socket

    with stdlib_socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        # The accept queue holds one connection; further SYNs are dropped.
        with stdlib_socket.create_connection(listener.getsockname()):
            sock = asock.socket()
            errors: list[int | None] = []

            async def connect() -> None:
                try:
                    await sock.connect(listener.getsockname())
                except OSError as exc:
                    errors.append(exc.errno)

            with anyio.fail_after(GUARD):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(connect)
                    await wait_all_tasks_blocked()
                    sock.close()
            assert errors == [errno.EBADF]


async def test_pool_of_accept_tasks_takes_each_connection_once(no_fd_leak: None) -> None:
    import socket as stdlib_socket

    count = 12
    accepted: list[asock.socket] = []
    listener = await asock.create_server(("127.0.0.1", 0), backlog=count)

    async def acceptor() -> None:
        while True:
            conn, _ = await listener.accept()
            accepted.append(conn)
            if len(accepted) == count:
                tg.cancel_scope.cancel()

    clients = []
    try:
        with listener, anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(acceptor)
                await wait_all_tasks_blocked()
                for _ in range(count):
                    clients.append(stdlib_socket.create_connection(listener.getsockname()))
            # Each accepted socket is a distinct client.
            peers = sorted(conn.getpeername() for conn in accepted)
            assert peers == sorted(client.getsockname() for client in clients)
    finally:
        for sock in (*accepted, *clients):
            sock.close()


async def test_several_writers_waiting_on_one_full_socket(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    size, writers = 300_000, 3
    received = 0

    async def writer(mark: bytes) -> None:
        await a.sendall(mark * size)

    with a, b, anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            for i in range(writers):
                tg.start_soon(writer, b"%d" % i)
            await wait_all_tasks_blocked()  # every writer now waits for room
            while received < size * writers:
                received += len(await b.recv(1 << 16))
    assert received == size * writers


async def test_descriptor_rewrapped_after_detach_still_waits(no_fd_leak: None) -> None:
    # The poller may still know the descriptor from the first wrapper (detach
    # leaves it open); each new wrapper must be able to wait on it again.
    a, peer = asock.socketpair()

    async def late(data: bytes) -> None:
        await wait_all_tasks_blocked()
        await peer.send(data)

    with peer, anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(late, b"first")
            assert await a.recv(10) == b"first"
        rewrapped = asock.socket(fileno=a.detach())
        async with anyio.create_task_group() as tg:
            tg.start_soon(late, b"second")
            assert await rewrapped.recv(10) == b"second"
        round_trip = rewrapped.to_sync().to_async()
        with round_trip:
            async with anyio.create_task_group() as tg:
                tg.start_soon(late, b"third")
                assert await round_trip.recv(10) == b"third"


async def test_peer_close_wakes_every_reader_and_writer(no_fd_leak: None) -> None:
    # End of file and a broken pipe are one event each, but every waiter sees them.
    readers_pair = asock.socketpair()
    writers_pair = asock.socketpair()
    reader_side, closing_reader_peer = readers_pair
    writer_side, closing_writer_peer = writers_pair
    eofs: list[bytes] = []
    write_errors: list[int | None] = []

    async def read() -> None:
        eofs.append(await reader_side.recv(10))

    async def write() -> None:
        try:
            await writer_side.sendall(b"w" * 100_000)
        except OSError as exc:
            write_errors.append(exc.errno)

    with reader_side, closing_reader_peer, writer_side, closing_writer_peer:
        writer_side.settimeout(0.0)
        try:
            while True:
                await writer_side.send(b"f" * 65536)
        except BlockingIOError:
            writer_side.settimeout(None)
        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(read)
                    tg.start_soon(write)
                await wait_all_tasks_blocked()
                closing_reader_peer.close()
                closing_writer_peer.close()
    assert eofs == [b""] * 3
    assert len(write_errors) == 3
    assert set(write_errors) <= {errno.EPIPE, errno.ECONNRESET}


FAIRNESS_OPS = ["recv", "recv_into", "recvfrom", "recvfrom_into", "recvmsg", "send", "sendall"]


@pytest.mark.parametrize("op", FAIRNESS_OPS)
async def test_every_immediate_operation_yields_now_and_then(op: str) -> None:
    # Each op always succeeds at once here (peeked data is never consumed;
    # datagrams to a bound UDP socket are dropped when it is full). The
    # ticker only runs if the op yields to the event loop from time to time.
    sink = asock.socket(asock.AF_INET, asock.SOCK_DGRAM)
    sock = asock.socket(asock.AF_INET, asock.SOCK_DGRAM)
    await sink.bind(("127.0.0.1", 0))
    await sock.bind(("127.0.0.1", 0))
    await sock.connect(sink.getsockname())
    await sink.sendto(b"peek", sock.getsockname())
    buffer = bytearray(4)
    peek = asock.MSG_PEEK
    calls = {
        "recv": lambda: sock.recv(4, peek),
        "recv_into": lambda: sock.recv_into(buffer, 4, peek),
        "recvfrom": lambda: sock.recvfrom(4, peek),
        "recvfrom_into": lambda: sock.recvfrom_into(buffer, 4, peek),
        "recvmsg": lambda: sock.recvmsg(4, 0, peek),
        "send": lambda: sock.send(b"x"),
        "sendall": lambda: sock.sendall(b"x"),
    }
    call = calls[op]
    ticker = Ticker()

    with sink, sock, anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker.run)
            await anyio.sleep(0)
            start, loops = ticker.ticks, 0
            while ticker.ticks < start + 3 and loops < 50_000:
                await call()
                loops += 1
            tg.cancel_scope.cancel()
    assert ticker.ticks >= start + 3, f"{op} never yielded in {loops} calls"
