"""Try first, then wait: immediate results, cancelled waits that lose nothing,
several waiters on one socket, fairness, and close() waking every waiter.

Every test runs on asyncio, uvloop and trio with real sockets.
"""

from __future__ import annotations

import errno
import os
import socket as stdlib_socket
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked
from core_helpers import Ticker, fill_send_buffer

import asock

# Generous guard: a hang fails the test instead of the suite.
GUARD = 10


async def cancel_waiting_call(
    call: Callable[[], Awaitable[Any]], deliver: Callable[[], None], deliver_first: bool
) -> list[Any]:
    """Start ``call``, let it block, then deliver data and cancel it.

    With ``deliver_first`` the data reaches the kernel in the same tick as the
    cancellation, before the waiting task can run: the window in which a
    design that reads in a loop callback would drop it. Returns what the
    cancelled call returned, if it managed to complete.
    """
    results: list[Any] = []
    scope = anyio.CancelScope()

    async def waiter() -> None:
        with scope:
            results.append(await call())

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await wait_all_tasks_blocked()
        if deliver_first:
            deliver()
            scope.cancel()
        else:
            scope.cancel()
            await wait_all_tasks_blocked()
            deliver()
    return results


async def test_immediate_data_is_returned_without_waiting() -> None:
    a, b = asock.socketpair()
    with a, b:
        a._sock.send(b"ready")
        with anyio.fail_after(GUARD):
            assert await b.recv(10) == b"ready"
        # No driver queue was ever made: the call never got as far as a wait.
        assert not b._all_queues()
        b.settimeout(0.0)
        a._sock.send(b"again")
        assert await b.recv(10) == b"again"


@pytest.mark.parametrize("deliver_first", [False, True], ids=["cancel-then-send", "send+cancel"])
async def test_cancelled_recv_loses_no_bytes(deliver_first: bool, no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with a, b, anyio.fail_after(GUARD):
        payload = b"0123456789" * 10
        early = await cancel_waiting_call(
            lambda: b.recv(1000), lambda: a._sock.sendall(payload), deliver_first
        )
        received = b"".join(early)
        b.settimeout(0.0)
        while len(received) < len(payload):
            received += await b.recv(1000)
        assert received == payload


@pytest.mark.parametrize("deliver_first", [False, True], ids=["cancel-then-send", "send+cancel"])
async def test_cancelled_recv_into_loses_no_bytes(deliver_first: bool, no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with a, b, anyio.fail_after(GUARD):
        buffer = bytearray(100)
        payload = bytes(range(64))
        early = await cancel_waiting_call(
            lambda: b.recv_into(buffer), lambda: a._sock.sendall(payload), deliver_first
        )
        if early:
            assert bytes(buffer[: early[0]]) == payload[: early[0]]
            got = early[0]
        else:
            got = await b.recv_into(buffer)
        assert got == len(payload)
        assert bytes(buffer[:got]) == payload


@pytest.mark.parametrize("deliver_first", [False, True], ids=["cancel-then-send", "send+cancel"])
async def test_cancelled_recvfrom_loses_no_datagram(deliver_first: bool, no_fd_leak: None) -> None:
    with (
        asock.socket(asock.AF_INET, asock.SOCK_DGRAM) as server,
        stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as client,
    ):
        await server.bind(("127.0.0.1", 0))
        client.bind(("127.0.0.1", 0))
        target = server.getsockname()
        with anyio.fail_after(GUARD):
            early = await cancel_waiting_call(
                lambda: server.recvfrom(100),
                lambda: client.sendto(b"datagram", target),
                deliver_first,
            )
            got = early[0] if early else await server.recvfrom(100)
        assert got == (b"datagram", client.getsockname())
        server.settimeout(0.0)
        with pytest.raises(BlockingIOError):
            await server.recvfrom(100)  # delivered once, not twice


@pytest.mark.parametrize("deliver_first", [False, True], ids=["cancel-then-send", "send+cancel"])
async def test_cancelled_recvmsg_loses_no_message(deliver_first: bool, no_fd_leak: None) -> None:
    a, b = asock.socketpair(asock.AF_UNIX, asock.SOCK_DGRAM)
    with a, b, anyio.fail_after(GUARD):
        early = await cancel_waiting_call(
            lambda: b.recvmsg(100), lambda: a._sock.send(b"message"), deliver_first
        )
        msg, ancdata, flags, _ = early[0] if early else await b.recvmsg(100)
        assert (msg, ancdata, flags) == (b"message", [], 0)


@pytest.mark.parametrize("deliver_first", [False, True], ids=["cancel-then-send", "send+cancel"])
async def test_cancelled_accept_loses_no_connection(deliver_first: bool, no_fd_leak: None) -> None:
    listener = await asock.create_server(("127.0.0.1", 0))
    client = stdlib_socket.socket()
    with listener, client, anyio.fail_after(GUARD):
        early = await cancel_waiting_call(
            listener.accept, lambda: client.connect(listener.getsockname()), deliver_first
        )
        conn, address = early[0] if early else await listener.accept()
        with conn:
            assert address == client.getsockname()
            client.sendall(b"hello")
            assert await conn.recv(10) == b"hello"


async def test_pool_of_recvfrom_tasks_gets_each_datagram_once(no_fd_leak: None) -> None:
    count, workers = 200, 8
    server = asock.socket(asock.AF_INET, asock.SOCK_DGRAM)
    client = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    with server, client:
        await server.bind(("127.0.0.1", 0))
        target = server.getsockname()
        received: list[int] = []

        async def worker() -> None:
            while True:
                data, _ = await server.recvfrom(100)
                received.append(int(data))
                if len(received) == count:
                    tg.cancel_scope.cancel()

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                for _ in range(workers):
                    tg.start_soon(worker)
                await wait_all_tasks_blocked()
                for i in range(count):
                    client.sendto(str(i).encode(), target)
                    if i % 16 == 0:
                        # Let the pool drain so the receive buffer never overflows.
                        await anyio.sleep(0)
        assert sorted(received) == list(range(count))


async def test_several_recv_tasks_on_one_stream_share_the_bytes(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    total = 50_000
    chunks: list[bytes] = []

    async def reader() -> None:
        while True:
            data = await b.recv(997)
            chunks.append(data)
            if sum(map(len, chunks)) >= total:
                tg.cancel_scope.cancel()

    with a, b, anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(reader)
            await wait_all_tasks_blocked()
            await a.sendall(b"z" * total)
    assert sum(map(len, chunks)) == total


async def test_cancelling_one_waiter_leaves_the_others_waiting(no_fd_leak: None) -> None:
    # On trio the first waiter leads (parks in trio's I/O manager) and the
    # others follow it; cancelling the leader must hand the lead on.
    a, b = asock.socketpair(asock.AF_UNIX, asock.SOCK_DGRAM)
    got: list[bytes] = []
    first = anyio.CancelScope()

    async def waiter(scope: anyio.CancelScope | None) -> None:
        with scope or anyio.CancelScope():
            got.append(await b.recv(100))

    with a, b, anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter, first)
            await wait_all_tasks_blocked()
            for _ in range(3):
                tg.start_soon(waiter, None)
            await wait_all_tasks_blocked()
            first.cancel()
            await wait_all_tasks_blocked()
            for i in range(3):
                a._sock.send(b"m%d" % i)
    assert sorted(got) == [b"m0", b"m1", b"m2"]


async def test_a_busy_reader_does_not_starve_other_tasks() -> None:
    # The socket always has data (MSG_PEEK never consumes it): without the
    # fairness budget the loop would never yield and the ticker never run.
    a, b = asock.socketpair()
    ticker = Ticker()

    with a, b, anyio.fail_after(GUARD):
        await a.sendall(b"always")
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker.run)
            await anyio.sleep(0)
            start = ticker.ticks
            loops = 0
            while ticker.ticks < start + 5 and loops < 100_000:
                assert await b.recv(6, asock.MSG_PEEK) == b"always"
                loops += 1
            tg.cancel_scope.cancel()
        assert ticker.ticks >= start + 5, f"other task starved over {loops} recv calls"


async def test_a_busy_sender_does_not_starve_other_tasks() -> None:
    # UDP sends to a socket that drops what it cannot hold never block.
    with (
        asock.socket(asock.AF_INET, asock.SOCK_DGRAM) as sender,
        stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as sink,
    ):
        sink.bind(("127.0.0.1", 0))
        target = sink.getsockname()
        ticker = Ticker()

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(ticker.run)
                await anyio.sleep(0)
                start = ticker.ticks
                loops = 0
                while ticker.ticks < start + 5 and loops < 100_000:
                    await sender.sendto(b"x", target)
                    loops += 1
                tg.cancel_scope.cancel()
        assert ticker.ticks >= start + 5, f"other task starved over {loops} sendto calls"


CLOSERS = ["close", "detach", "with", "async-with", "close-from-thread"]


@pytest.mark.parametrize("how", CLOSERS)
async def test_closing_wakes_every_waiter_with_ebadf(how: str, no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    await fill_send_buffer(b)
    errors: list[BaseException] = []
    release = anyio.Event()

    async def expect_ebadf(call: Callable[[], Awaitable[Any]]) -> None:
        try:
            await call()
        except OSError as exc:
            errors.append(exc)

    async def hold() -> None:
        if how == "with":
            with b:
                await release.wait()
        elif how == "async-with":
            async with b:
                await release.wait()

    with a, anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(hold)
            for _ in range(3):
                tg.start_soon(expect_ebadf, lambda: b.recv(10))
            tg.start_soon(expect_ebadf, lambda: b.sendall(b"more"))
            tg.start_soon(expect_ebadf, lambda: b.send(b"more"))
            await wait_all_tasks_blocked()
            if how == "close":
                b.close()
            elif how == "detach":
                os.close(b.detach())
            elif how == "close-from-thread":
                await anyio.to_thread.run_sync(b.close)
            else:
                release.set()
        assert len(errors) == 5
        assert all(exc.errno == errno.EBADF for exc in errors), errors
        assert b.fileno() == -1
        # The peer sees the close once it drained the buffer: nothing kept
        # the descriptor alive.
        while await a.recv(1 << 20):
            pass


async def test_close_wakes_accept_and_recvfrom(no_fd_leak: None) -> None:
    listener = await asock.create_server(("127.0.0.1", 0))
    udp = asock.socket(asock.AF_INET, asock.SOCK_DGRAM)
    await udp.bind(("127.0.0.1", 0))
    errors: list[int | None] = []

    async def expect_ebadf(call: Callable[[], Awaitable[Any]]) -> None:
        with pytest.raises(OSError) as info:
            await call()
        errors.append(info.value.errno)

    with anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(expect_ebadf, listener.accept)
            tg.start_soon(expect_ebadf, lambda: udp.recvfrom(10))
            await wait_all_tasks_blocked()
            listener.close()
            udp.close()
    assert errors == [errno.EBADF, errno.EBADF]


async def test_operations_after_close_raise_ebadf_at_once() -> None:
    a, b = asock.socketpair()
    a.close()
    b.close()
    with anyio.fail_after(GUARD):
        for call in (lambda: b.recv(1), lambda: b.send(b"x"), lambda: b.sendall(b"x")):
            with pytest.raises(OSError) as info:
                await call()
            assert info.value.errno == errno.EBADF


def test_close_after_the_trio_run_that_waited_has_ended(no_fd_leak_sync: None) -> None:
    # trio only, by nature: the socket outlives the trio.run that last waited on it,
    # and close() must neither raise trio.RunFinishedError nor leave the descriptor open.
    import trio

    a, b = asock.socketpair()

    async def wait_briefly() -> None:
        with trio.move_on_after(0.01):
            await a.recv(1)

    trio.run(wait_briefly)
    a.close()
    b.close()
    assert a.fileno() == -1


# -- the inlined copies of the try-first prologue -----------------------------
#
# asock_core.operations._call is the one prologue; recv, recv_into, recvfrom,
# send and sendto (numeric address seen before) repeat it inline for speed.
# Every copy is held to the same behaviour here, next to recvmsg, which goes
# through _call itself.


async def _udp_pair() -> tuple[asock.socket, asock.socket, Any]:
    a = asock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    b = asock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    await a.bind(("127.0.0.1", 0))
    await b.bind(("127.0.0.1", 0))
    return a, b, b.getsockname()


_RECEIVERS: dict[str, Callable[[asock.socket], Awaitable[Any]]] = {
    "recv": lambda s: s.recv(1),
    "recv_into": lambda s: s.recv_into(bytearray(1)),
    "recvfrom": lambda s: s.recvfrom(1),
    "recvmsg (through _call)": lambda s: s.recvmsg(1),
}


def _payload(result: Any) -> Any:
    """The data (or count) part of a receive call's result."""
    return result if isinstance(result, (bytes, int)) else result[0]


@pytest.mark.parametrize("name", list(_RECEIVERS))
async def test_inlined_prologues_match_call(name: str, no_fd_leak: None) -> None:
    receive = _RECEIVERS[name]
    a, b = asock.socketpair()
    with a, b:
        # Immediate: data already there, no wait.
        await a.send(b"x")
        assert _payload(await receive(b)) == (1 if name == "recv_into" else b"x")
        # Non-blocking mode: BlockingIOError at once.
        b.settimeout(0.0)
        with pytest.raises(BlockingIOError):
            await receive(b)
        # A timeout: TimeoutError('timed out') after it.
        b.settimeout(0.05)
        with pytest.raises(TimeoutError, match="timed out"):
            await receive(b)
        # Blocking mode: waits, then gets what arrives.
        b.settimeout(None)
        async with anyio.create_task_group() as tasks:
            got: list[Any] = []

            async def wait_for_it() -> None:
                got.append(await receive(b))

            tasks.start_soon(wait_for_it)
            await wait_all_tasks_blocked()
            assert not got
            await a.send(b"y")
        assert [_payload(result) for result in got] == [1 if name == "recv_into" else b"y"]
        # Cancelled while waiting: nothing taken from the kernel.
        with anyio.move_on_after(0.05):
            await receive(b)
        await a.send(b"z")
        assert await b.recv(1) == b"z"
        # MSG_DONTWAIT (where the call takes flags): BlockingIOError at once.
        if name in ("recv", "recvfrom"):
            call = b.recv if name == "recv" else b.recvfrom
            with pytest.raises(BlockingIOError):
                await call(1, stdlib_socket.MSG_DONTWAIT)
        # After close: EBADF at once.
        b.close()
        with pytest.raises(OSError) as closed:
            await receive(b)
        assert closed.value.errno == errno.EBADF


async def test_inlined_send_prologues_match_call(no_fd_leak: None) -> None:
    a, b, address = await _udp_pair()
    with a, b:
        assert await a.sendto(b"1", address) == 1  # the numeric host is cached now
        assert await a.sendto(b"2", address) == 1  # ...and takes the inlined path
        assert await a.sendto(b"3", 0, address) == 1  # flags: the general path
        assert [(await b.recvfrom(1))[0] for _ in range(3)] == [b"1", b"2", b"3"]
        a.close()
        for call in (lambda: a.sendto(b"x", address), lambda: a.send(b"x")):
            with pytest.raises(OSError) as closed:
                await call()
            assert closed.value.errno == errno.EBADF
