"""Close races: close() while operations wait, and a new socket on the same fd number.

* Every waiter (recv, recv_into, recvfrom, recvmsg, sendall, accept, connect)
  wakes with ``OSError(EBADF)`` when another task (or, for asock_sync,
  another thread) closes the socket; none hangs.
* A socket opened right after the close gets the old descriptor number. It
  must get none of the old socket's wake-ups (counted: its waiter waits
  exactly once, woken by its own data) and lose none of its own data.
"""

from __future__ import annotations

import errno
import socket as stdlib_socket
import tempfile
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

import asock
import asock_sync
import asock_sync._socket as asock_sync_socket_module
from asock_core import kernel_calls, operations
from asock_core.drivers import blocking

from ._peers import GUARD, FullBacklog, fill_send_buffer, shrink_buffers


class CountingSocket(asock.socket):
    """An asock socket that counts its readiness waits (the driver is untouched)."""

    __slots__ = ()
    waits: dict[int, int] = {}  # noqa: RUF012 - keyed by id(): __slots__ leaves no room

    def _wait(self, event: int, timeout: float | None) -> Awaitable[bool]:
        CountingSocket.waits[id(self)] = CountingSocket.waits.get(id(self), 0) + 1
        return super()._wait(event, timeout)


def file_of(size: int) -> Any:
    """An open regular file holding ``size`` bytes, positioned at its start."""
    file = tempfile.TemporaryFile()
    file.write(b"f" * size)
    file.seek(0)
    return file


def assert_ebadf(outcomes: dict[str, BaseException | object]) -> None:
    for name, outcome in outcomes.items():
        assert isinstance(outcome, OSError), f"{name}: {outcome!r}"
        assert outcome.errno == errno.EBADF, f"{name}: {outcome!r}"


class Waiters:
    """Operations waiting on asock sockets, each in its own task."""

    def __init__(self) -> None:
        self.outcomes: dict[str, BaseException | object] = {}
        self.sockets: list[asock.socket] = []
        self.peers: list[Any] = []

    async def run(self, name: str, call: Callable[[], Awaitable[Any]]) -> None:
        try:
            self.outcomes[name] = await call()
        except Exception as exc:
            self.outcomes[name] = exc

    async def start_all(self, tg: anyio.abc.TaskGroup) -> None:
        stream, stream_peer = asock.socketpair()
        shrink_buffers(stream._sock)
        fill_send_buffer(stream._sock)
        stream.settimeout(None)
        dgram = asock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
        await dgram.bind(("127.0.0.1", 0))
        listener = asock.socket()
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        backlog = FullBacklog.open()
        connecting = asock.socket()
        self.sockets += [stream, dgram, listener, connecting]
        self.peers += [stream_peer, backlog]
        buffer = bytearray(100)
        # Several tasks on one socket, both directions at once.
        tg.start_soon(self.run, "recv", lambda: stream.recv(100))
        tg.start_soon(self.run, "recv_into", lambda: stream.recv_into(buffer))
        tg.start_soon(self.run, "recvfrom", lambda: stream.recvfrom(100))
        tg.start_soon(self.run, "recvmsg", lambda: stream.recvmsg(100, 100))
        tg.start_soon(self.run, "sendall", lambda: stream.sendall(b"x" * 1_000_000))
        big_file = file_of(1_000_000)
        self.peers.append(big_file)
        tg.start_soon(self.run, "sendfile", lambda: stream.sendfile(big_file))
        tg.start_soon(self.run, "udp recvfrom", lambda: dgram.recvfrom(100))
        tg.start_soon(self.run, "udp recvfrom_into", lambda: dgram.recvfrom_into(bytearray(9)))
        tg.start_soon(self.run, "udp recvmsg", lambda: dgram.recvmsg(100))
        tg.start_soon(self.run, "udp recvmsg_into", lambda: dgram.recvmsg_into([bytearray(9)]))
        tg.start_soon(self.run, "accept", listener.accept)
        tg.start_soon(self.run, "accept again", listener.accept)
        tg.start_soon(self.run, "connect", lambda: connecting.connect(backlog.address))

    def close_peers(self) -> None:
        for peer in self.peers:
            peer.close()


@pytest.mark.parametrize("closer", ["task", "thread"])
async def test_close_wakes_every_waiter_with_ebadf(closer: str, no_fd_leak: None) -> None:
    waiters = Waiters()
    try:
        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                await waiters.start_all(tg)
                await wait_all_tasks_blocked()

                def close_all() -> None:
                    for sock in waiters.sockets:
                        sock.close()

                if closer == "task":
                    close_all()
                else:
                    await anyio.to_thread.run_sync(close_all)
    finally:
        waiters.close_peers()
        for sock in waiters.sockets:
            sock.close()
    assert len(waiters.outcomes) == 13
    assert_ebadf(waiters.outcomes)
    for sender in ("sendall", "sendfile"):
        error = waiters.outcomes[sender]
        assert isinstance(error, OSError)
        assert isinstance(error.bytes_sent, int)  # type: ignore[attr-defined]


async def _reuse_round(closer: str) -> None:
    old, old_peer = asock.socketpair()
    old_fd = old.fileno()
    outcomes: dict[str, BaseException | object] = {}
    fresh_received: list[bytes] = []

    async def wait_old(name: str, call: Callable[[], Awaitable[Any]]) -> None:
        try:
            outcomes[name] = await call()
        except Exception as exc:
            outcomes[name] = exc

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait_old, "recv", lambda: old.recv(10))
        tg.start_soon(wait_old, "recv_into", lambda: old.recv_into(bytearray(10)))
        await wait_all_tasks_blocked()
        if closer == "task":
            old.close()
        else:
            await anyio.to_thread.run_sync(old.close)
        # Right away: the lowest free descriptor is the one just closed.
        a, b = stdlib_socket.socketpair()
        fresh = CountingSocket._from_stdlib(a, None)
        fresh_peer = asock.socket._from_stdlib(b, None)
        with fresh, fresh_peer:
            assert fresh.fileno() == old_fd or fresh_peer.fileno() == old_fd

            received = anyio.Event()

            async def read_fresh() -> None:
                fresh_received.append(await fresh.recv(100))
                received.set()

            tg.start_soon(read_fresh)
            await wait_all_tasks_blocked()
            await fresh_peer.sendall(b"fresh data")
            await received.wait()
            assert fresh_received == [b"fresh data"]
            # Woken once, by its own data: no wake-up meant for the old socket.
            assert CountingSocket.waits.pop(id(fresh)) == 1
    old_peer.close()
    assert_ebadf(outcomes)


@pytest.mark.parametrize("closer", ["task", "thread"])
async def test_socket_reusing_the_fd_gets_only_its_own_wakeups(
    closer: str, no_fd_leak: None
) -> None:
    with anyio.fail_after(GUARD):
        for _ in range(20):
            await _reuse_round(closer)


async def _foreign_thread_round() -> None:
    old, old_peer = asock.socketpair()
    signal_in, signal_out = stdlib_socket.socketpair()
    doorbell = asock.from_stdlib_socket(signal_in)
    handed_over: list[stdlib_socket.socket] = []
    old_outcome: list[BaseException | object] = []
    fresh_received: list[bytes] = []

    def close_and_reopen() -> None:
        # A thread that is not the event loop's closes the socket, opens a new
        # one on the same number right away and hands it over; the event loop
        # may run the new socket's wait before it ran anything for the close.
        old.close()
        handed_over.extend(stdlib_socket.socketpair())
        signal_out.send(b"!")

    async def wait_old() -> None:
        try:
            old_outcome.append(await old.recv(10))
        except OSError as exc:
            old_outcome.append(exc)

    async def use_fresh() -> None:
        await doorbell.recv(1)
        fresh = CountingSocket._from_stdlib(handed_over[0], None)
        with fresh:

            async def deliver() -> None:
                await wait_all_tasks_blocked()
                handed_over[1].send(b"fresh data")

            tg.start_soon(deliver)
            fresh_received.append(await fresh.recv(100))
            assert CountingSocket.waits.pop(id(fresh)) == 1

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_old)
            tg.start_soon(use_fresh)
            await wait_all_tasks_blocked()
            thread = threading.Thread(target=close_and_reopen)
            thread.start()
        thread.join()
    finally:
        for sock in (old, old_peer, doorbell, signal_out, *handed_over):
            sock.close()
    assert fresh_received == [b"fresh data"]
    assert_ebadf({"old recv": old_outcome[0]})


async def test_socket_reusing_the_fd_after_a_close_in_a_foreign_thread(no_fd_leak: None) -> None:
    with anyio.fail_after(GUARD):
        for _ in range(50):
            await _foreign_thread_round()


# -- asock_sync: threads ------------------------------------------------------------


class ThreadWaiters:
    """Blocking asock_sync calls, each in its own thread."""

    def __init__(self) -> None:
        self.outcomes: dict[str, BaseException | object] = {}
        self.threads: list[threading.Thread] = []

    def start(self, name: str, call: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                self.outcomes[name] = call()
            except Exception as exc:
                self.outcomes[name] = exc

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(GUARD)
        hung = [thread.name for thread in self.threads if thread.is_alive()]
        assert not hung, f"still blocked after close(): {hung}"


#: Where a waiting asock_sync thread sits: in the kernel under a front method
#: or an operation (blocking mode), or in the blocking driver's poll. With the
#: compiled KernelCalls, recv/recv_into/send have no Python frame: the thread
#: then sits in the test's own lambda, in the C call.
_WAITING_IN = {
    blocking.__file__, asock_sync_socket_module.__file__, operations.__file__,
    kernel_calls.__file__, __file__,
}


def wait_until_blocked(threads: list[threading.Thread]) -> None:
    """Wait until every thread sits in a socket call (in the kernel or in poll) or has finished."""
    import sys
    import time

    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        frames = sys._current_frames()
        if all(
            not t.is_alive()
            or (t.ident in frames and frames[t.ident].f_code.co_filename in _WAITING_IN)  # type: ignore[index]
            for t in threads
        ):
            time.sleep(0.05)  # from the Python frame into the system call
            return
        time.sleep(0.005)
    raise AssertionError("threads never blocked")


def test_sync_close_from_another_thread_wakes_every_waiter(no_fd_leak_sync: None) -> None:
    stream, stream_peer = asock_sync.socketpair()
    shrink_buffers(stream._sock)
    fill_send_buffer(stream._sock)
    stream.settimeout(None)
    dgram = asock_sync.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    dgram.bind(("127.0.0.1", 0))
    listener = asock_sync.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    backlog = FullBacklog.open()
    connecting = asock_sync.socket()
    big_file = file_of(1_000_000)
    waiters = ThreadWaiters()
    try:
        waiters.start("recv", lambda: stream.recv(100))
        waiters.start("recv_into", lambda: stream.recv_into(bytearray(100)))
        waiters.start("recvfrom", lambda: stream.recvfrom(100))
        waiters.start("recvmsg", lambda: stream.recvmsg(100))
        waiters.start("sendall", lambda: stream.sendall(b"x" * 1_000_000))
        waiters.start("sendfile", lambda: stream.sendfile(big_file))
        waiters.start("udp recvfrom", lambda: dgram.recvfrom(100))
        waiters.start("udp recvmsg_into", lambda: dgram.recvmsg_into([bytearray(9)]))
        waiters.start("accept", listener.accept)
        waiters.start("accept again", listener.accept)
        waiters.start("connect", lambda: connecting.connect(backlog.address))
        wait_until_blocked(waiters.threads)
        for sock in (stream, dgram, listener, connecting):
            sock.close()
        waiters.join()
    finally:
        for sock in (stream, stream_peer, dgram, listener, connecting):
            sock.close()
        backlog.close()
        big_file.close()
    assert len(waiters.outcomes) == 11
    assert_ebadf(waiters.outcomes)


def test_sync_socket_reusing_the_fd_gets_its_own_data(no_fd_leak_sync: None) -> None:
    # Many rounds, closing at once rather than after the thread blocked: the
    # close lands anywhere in the thread's call, including between its check
    # for a closed socket and its system call.
    for round_number in range(300):
        old, old_peer = asock_sync.socketpair()
        waiters = ThreadWaiters()
        waiters.start("recv", lambda old=old: old.recv(10))  # type: ignore[misc]
        if round_number % 2:
            wait_until_blocked(waiters.threads)
        old.close()
        fresh, fresh_peer = asock_sync.socketpair()
        try:
            # The number may be reused at once (close() found no call under
            # way: one that starts later sees the close before it touches
            # the descriptor) or only once the old call is out; either way
            # the old call fails with EBADF and the new socket gets its data.
            fresh_waiters = ThreadWaiters()
            fresh_waiters.start("fresh recv", lambda fresh=fresh: fresh.recv(100))  # type: ignore[misc]
            # The old waiter finishes while the new socket is still idle.
            waiters.join()
            fresh_peer.sendall(b"fresh data")
            fresh_waiters.join()
        finally:
            for sock in (old_peer, fresh, fresh_peer):
                sock.close()
        assert_ebadf(waiters.outcomes)
        assert fresh_waiters.outcomes == {"fresh recv": b"fresh data"}
