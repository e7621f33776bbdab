"""Timeouts (None / 0.0 / t), default timeouts, outer cancellation, and the
exact ``bytes_sent`` of a sendall/sendfile that ends early.

Every async test runs on asyncio, uvloop and trio with real sockets; the few
that use one library's own cancellation API skip the others and say so.
"""

from __future__ import annotations

import asyncio
import errno
import io
import socket as stdlib_socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked
from core_helpers import fill_send_buffer

import asock

GUARD = 10
#: Long enough that a correct timeout fires well before the guard.
SHORT = 0.05


def payload(size: int) -> bytes:
    """Bytes whose every prefix is distinct, so a peer can check what it got."""
    block = bytes(range(251))
    return (block * (size // len(block) + 1))[:size]


def small_buffers(*socks: asock.socket) -> None:
    for sock in socks:
        sock.setsockopt(asock.SOL_SOCKET, asock.SO_SNDBUF, 4096)
        sock.setsockopt(asock.SOL_SOCKET, asock.SO_RCVBUF, 4096)


@contextmanager
def blackhole_listener(family: int = stdlib_socket.AF_INET) -> Iterator[Any]:
    """A loopback listener whose accept queue is full, so new SYNs are dropped.

    A connect to it stays in progress (the kernel retries the SYN for minutes),
    without sending anything beyond this machine's loopback.
    """
    host = "::1" if family == stdlib_socket.AF_INET6 else "127.0.0.1"
    listener = stdlib_socket.socket(family)
    listener.bind((host, 0))
    listener.listen(0)
    # With backlog 0 Linux queues one connection; it is never accepted.
    filler = stdlib_socket.create_connection(listener.getsockname()[:2])
    try:
        yield listener.getsockname()
    finally:
        filler.close()
        listener.close()


@contextmanager
def default_timeout(value: float | None) -> Iterator[None]:
    saved = stdlib_socket.getdefaulttimeout()
    stdlib_socket.setdefaulttimeout(value)
    try:
        yield
    finally:
        stdlib_socket.setdefaulttimeout(saved)


@asynccontextmanager
async def tcp_pair() -> AsyncIterator[tuple[asock.socket, asock.socket]]:
    """A connected loopback TCP pair with small buffers."""
    async with await asock.create_server(("127.0.0.1", 0)) as listener:
        client = asock.socket()
        small_buffers(client)
        await client.connect(listener.getsockname())
        server, _ = await listener.accept()
        server.setsockopt(asock.SOL_SOCKET, asock.SO_RCVBUF, 65536)
        with client, server:
            yield client, server


# -- settimeout(None) ---------------------------------------------------------


async def test_timeout_none_waits_until_data_arrives(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with a, b, anyio.fail_after(GUARD):
        b.settimeout(None)

        async def late_sender() -> None:
            await anyio.sleep(SHORT * 2)
            await a.send(b"late")

        async with anyio.create_task_group() as tg:
            tg.start_soon(late_sender)
            assert await b.recv(10) == b"late"


# -- settimeout(0.0) ------------------------------------------------------------


async def test_timeout_zero_raises_blocking_io_error(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    udp = asock.socket(asock.AF_INET, asock.SOCK_DGRAM)
    listener = await asock.create_server(("127.0.0.1", 0))
    with a, b, udp, listener, anyio.fail_after(GUARD):
        for sock in (b, udp, listener):
            sock.settimeout(0.0)
        await udp.bind(("127.0.0.1", 0))
        with pytest.raises(BlockingIOError):
            await b.recv(1)
        with pytest.raises(BlockingIOError):
            await b.recv_into(bytearray(1))
        with pytest.raises(BlockingIOError):
            await udp.recvfrom(1)
        with pytest.raises(BlockingIOError):
            await b.recvmsg(1)
        with pytest.raises(BlockingIOError):
            await listener.accept()
        await fill_send_buffer(a)
        a.settimeout(0.0)
        with pytest.raises(BlockingIOError):
            await a.send(b"x")
        with pytest.raises(BlockingIOError) as info:
            await a.sendall(b"x" * 10)
        assert info.value.bytes_sent == 0  # type: ignore[attr-defined]
        # Still usable: a blocking call now succeeds once there is data.
        b.settimeout(None)
        assert await b.recv(1) == b"f"


async def test_timeout_zero_connect_raises_einprogress(no_fd_leak: None) -> None:
    with blackhole_listener() as target, asock.socket() as sock:
        sock.settimeout(0.0)
        with pytest.raises(BlockingIOError) as info:
            await sock.connect(target)
        assert info.value.errno == errno.EINPROGRESS
    with blackhole_listener() as target, asock.socket() as sock:
        sock.settimeout(0.0)
        assert await sock.connect_ex(target) == errno.EINPROGRESS


# -- settimeout(t) ----------------------------------------------------------------


async def test_timeout_raises_timed_out_for_each_operation(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    full, peer = asock.socketpair()
    udp = asock.socket(asock.AF_INET, asock.SOCK_DGRAM)
    listener = await asock.create_server(("127.0.0.1", 0))
    with a, b, full, peer, udp, listener, anyio.fail_after(GUARD):
        await udp.bind(("127.0.0.1", 0))
        await fill_send_buffer(full)
        calls: list[tuple[asock.socket, Callable[[], Any]]] = [
            (b, lambda: b.recv(1)),
            (b, lambda: b.recv_into(bytearray(1))),
            (b, lambda: b.recvmsg(1)),
            (udp, lambda: udp.recvfrom(1)),
            (udp, lambda: udp.recvfrom_into(bytearray(1))),
            (listener, listener.accept),
            (full, lambda: full.send(b"x")),
            (full, lambda: full.sendall(b"x")),
        ]
        for sock, call in calls:
            sock.settimeout(SHORT)
            with pytest.raises(TimeoutError) as info:
                await call()
            assert str(info.value) == "timed out"
            assert type(info.value) is asock.timeout
        # Nothing was consumed or left behind: the sockets still work.
        await a.send(b"ok")
        assert await b.recv(2) == b"ok"
        assert await peer.recv(1) == b"f"


async def test_timeout_on_connect(no_fd_leak: None) -> None:
    with blackhole_listener() as target, anyio.fail_after(GUARD):
        with asock.socket() as sock:
            sock.settimeout(SHORT)
            with pytest.raises(TimeoutError, match=r"^timed out$"):
                await sock.connect(target)
        with asock.socket() as sock, stdlib_socket.socket() as reference:
            # connect_ex reports a timeout as EWOULDBLOCK, as the stdlib does.
            sock.settimeout(SHORT)
            reference.settimeout(SHORT)
            expected = reference.connect_ex(target)
            assert await sock.connect_ex(target) == expected == errno.EWOULDBLOCK


async def test_sendall_deadline_covers_the_whole_call(no_fd_leak: None) -> None:
    # The reader keeps draining, so no single wait reaches the timeout; only
    # a deadline for the whole call can end the sendall.
    data = payload(20_000_000)
    async with tcp_pair() as (client, server):
        received = bytearray()

        async def slow_reader() -> None:
            while True:
                chunk = await server.recv(8192)
                if not chunk:
                    return
                received.extend(chunk)
                await anyio.sleep(0.005)

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(slow_reader)
                client.settimeout(0.3)
                with pytest.raises(TimeoutError) as info:
                    await client.sendall(data)
                client.shutdown(asock.SHUT_WR)
        sent = info.value.bytes_sent  # type: ignore[attr-defined]
        assert 0 < sent < len(data)
        assert bytes(received) == data[:sent]


# -- default timeouts ----------------------------------------------------------


async def test_new_sockets_take_the_default_timeout(no_fd_leak: None) -> None:
    with default_timeout(2.5):
        sock = asock.socket()
        a, b = asock.socketpair()
        server = await asock.create_server(("127.0.0.1", 0))
        with sock, a, b, server:
            assert [s.gettimeout() for s in (sock, a, b, server)] == [2.5] * 4
            fd_copy = asock.fromfd(a.fileno(), a.family, a.type)
            with fd_copy:
                assert fd_copy.gettimeout() == 2.5
    with asock.socket() as sock:
        assert sock.gettimeout() is None


@pytest.mark.parametrize("default", [None, 0.0, 3.0])
@pytest.mark.parametrize("listener_timeout", [None, 0.0, 1.5])
async def test_accepted_sockets_follow_the_stdlib_rule(
    default: float | None, listener_timeout: float | None, no_fd_leak: None
) -> None:
    with default_timeout(default):
        listener = await asock.create_server(("127.0.0.1", 0))
        reference = stdlib_socket.create_server(("127.0.0.1", 0))
        with listener, reference:
            listener.settimeout(listener_timeout)
            reference.settimeout(listener_timeout)
            c1 = stdlib_socket.create_connection(listener.getsockname(), timeout=GUARD)
            c2 = stdlib_socket.create_connection(reference.getsockname(), timeout=GUARD)
            with c1, c2, anyio.fail_after(GUARD):
                listener.settimeout(GUARD if listener_timeout == 0.0 else listener_timeout)
                conn, _ = await listener.accept()
                reference.settimeout(GUARD)
                expected, _ = reference.accept()
                with conn, expected:
                    assert conn.gettimeout() == expected.gettimeout() == default
                    assert conn.getblocking() == expected.getblocking()


# -- outer cancellation -----------------------------------------------------------


async def assert_still_usable(a: asock.socket, b: asock.socket) -> None:
    """The socket still works after the cancelled call, and lost no data.

    Both ways: data already there is found, and a new wait is woken.
    """
    await a.send(b"after")
    with anyio.fail_after(GUARD):
        assert await b.recv(10) == b"after"
        received: list[bytes] = []
        async with anyio.create_task_group() as tasks:

            async def read() -> None:
                received.append(await b.recv(10))

            tasks.start_soon(read)
            await wait_all_tasks_blocked()
            await a.send(b"again")
        assert received == [b"again"]


async def test_anyio_fail_after_interrupts_a_wait(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with a, b:
        with pytest.raises(TimeoutError):
            with anyio.fail_after(SHORT):
                await b.recv(10)
        await assert_still_usable(a, b)
        with anyio.move_on_after(SHORT) as scope:
            await b.recv(10)
        assert scope.cancelled_caught
        await assert_still_usable(a, b)


async def test_anyio_cancel_scope_interrupts_accept_and_connect(no_fd_leak: None) -> None:
    listener = await asock.create_server(("127.0.0.1", 0))
    with listener, blackhole_listener() as target:
        with anyio.move_on_after(SHORT) as scope:
            await listener.accept()
        assert scope.cancelled_caught
        with asock.socket() as sock:
            with anyio.move_on_after(SHORT) as scope:
                await sock.connect(target)
            assert scope.cancelled_caught


async def test_asyncio_timeout_interrupts_a_wait(anyio_backend_name: str, no_fd_leak: None) -> None:
    if anyio_backend_name != "asyncio":
        pytest.skip("asyncio.timeout and Task.cancel exist only on asyncio (and uvloop)")
    a, b = asock.socketpair()
    with a, b:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(SHORT):
                await b.recv(10)
        # The timed-out waiter took no wake-up with it (the socket's
        # registration itself is kept between waits).
        await assert_still_usable(a, b)

        task = asyncio.ensure_future(b.recv(10))
        await wait_all_tasks_blocked()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await assert_still_usable(a, b)


async def test_trio_move_on_after_interrupts_a_wait(
    anyio_backend_name: str, no_fd_leak: None
) -> None:
    if anyio_backend_name != "trio":
        pytest.skip("trio.move_on_after exists only on trio")
    import trio

    a, b = asock.socketpair()
    with a, b:
        with trio.move_on_after(SHORT) as scope:
            await b.recv(10)
        assert scope.cancelled_caught
        await assert_still_usable(a, b)
        # A second task can wait on the socket again: trio's registration is free.
        with trio.move_on_after(SHORT) as scope:
            await b.recv(10)
        assert scope.cancelled_caught


# -- bytes_sent on partial progress ------------------------------------------------


async def drain(sock: asock.socket) -> bytes:
    received = bytearray()
    while chunk := await sock.recv(1 << 16):
        received += chunk
    return bytes(received)


async def test_sendall_timeout_reports_exact_bytes_sent(no_fd_leak: None) -> None:
    data = payload(2_000_000)
    async with tcp_pair() as (client, server):
        client.settimeout(SHORT)
        with anyio.fail_after(GUARD):
            with pytest.raises(TimeoutError) as info:
                await client.sendall(data)
            client.shutdown(asock.SHUT_WR)
            received = await drain(server)
        sent = info.value.bytes_sent  # type: ignore[attr-defined]
        assert 0 < sent < len(data)
        assert received == data[:sent]


async def test_cancelled_sendall_reports_exact_bytes_sent(no_fd_leak: None) -> None:
    data = payload(2_000_000)
    sent = -1
    async with tcp_pair() as (client, server):
        with anyio.fail_after(GUARD):
            with anyio.move_on_after(SHORT) as scope:
                try:
                    await client.sendall(data)
                except anyio.get_cancelled_exc_class() as exc:
                    sent = exc.bytes_sent  # type: ignore[attr-defined]
                    raise
            assert scope.cancelled_caught
            client.shutdown(asock.SHUT_WR)
            received = await drain(server)
        assert 0 < sent < len(data)
        assert received == data[:sent]


async def test_sendall_to_a_closed_peer_reports_bytes_sent(no_fd_leak: None) -> None:
    data = payload(4_000_000)
    async with tcp_pair() as (client, server):
        received = bytearray()

        async def read_some_then_close() -> None:
            while len(received) < 100_000:
                received.extend(await server.recv(8192))
            server.close()

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_some_then_close)
                with pytest.raises(OSError) as info:
                    await client.sendall(data)
        assert info.value.errno in (errno.EPIPE, errno.ECONNRESET)
        sent = info.value.bytes_sent  # type: ignore[attr-defined]
        assert len(received) <= sent < len(data)
        assert bytes(received) == data[: len(received)]


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(payload(3_000_000))
    return path


@pytest.mark.parametrize("how", ["timeout", "cancel"])
@pytest.mark.parametrize("kernel", [True, False], ids=["os.sendfile", "read+send"])
async def test_interrupted_sendfile_reports_exact_bytes_sent(
    big_file: Path, how: str, kernel: bool, no_fd_leak: None
) -> None:
    data = big_file.read_bytes()
    offset = 1000
    sent = -1
    async with tcp_pair() as (client, server):
        with open(big_file, "rb") as disk:
            file: Any = disk if kernel else io.BytesIO(data)
            with anyio.fail_after(GUARD):
                if how == "timeout":
                    client.settimeout(SHORT)
                    with pytest.raises(TimeoutError) as info:
                        await client.sendfile(file, offset)
                    sent = info.value.bytes_sent  # type: ignore[attr-defined]
                else:
                    with anyio.move_on_after(SHORT):
                        try:
                            await client.sendfile(file, offset)
                        except anyio.get_cancelled_exc_class() as exc:
                            sent = exc.bytes_sent  # type: ignore[attr-defined]
                            raise
                client.shutdown(asock.SHUT_WR)
                received = await drain(server)
            assert 0 < sent < len(data) - offset
            assert received == data[offset : offset + sent]
            # The file position ends right after the last byte sent.
            assert file.tell() == offset + sent


async def test_closing_socket_during_sendall_reports_progress(no_fd_leak: None) -> None:
    data = payload(2_000_000)
    async with tcp_pair() as (client, server):
        errors: list[OSError] = []

        async def sender() -> None:
            try:
                await client.sendall(data)
            except OSError as exc:
                errors.append(exc)

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(sender)
                await wait_all_tasks_blocked()
                client.close()
            received = await drain(server)
        assert errors and errors[0].errno == errno.EBADF
        sent = errors[0].bytes_sent  # type: ignore[attr-defined]
        assert 0 < sent < len(data)
        assert received == data[:sent]
