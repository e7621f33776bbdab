"""Thread races around the descriptor's mode and close() on asock_sync (and asock).

No thread may block in the kernel past its own timeout or past a close().
"""

from __future__ import annotations

import fcntl
import os
import socket as stdlib_socket
import threading
import time

import asock
import asock_sync
from tests.conftest import open_fds

GUARD = 5.0


def _nonblocking(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK)


def _watch_mode(fd: int, stop: threading.Event, seen_blocking: list[int]) -> None:
    while not stop.is_set():
        try:
            if not _nonblocking(fd):
                seen_blocking.append(1)
        except OSError:
            return


def test_switching_between_timeouts_never_shows_a_blocking_descriptor() -> None:
    # settimeout(t) and settimeout(0.0) must never pass through blocking mode
    # (the old code called the stdlib's settimeout(value) and then 0.0).
    a, b = asock_sync.socketpair()
    a.settimeout(0.01)
    stop = threading.Event()
    seen: list[int] = []
    watcher = threading.Thread(target=_watch_mode, args=(a.fileno(), stop, seen))
    watcher.start()
    try:
        for i in range(20_000):
            a.settimeout(0.0 if i % 2 else 0.01)
            a.setblocking(False)
    finally:
        stop.set()
        watcher.join()
        a.close()
        b.close()
    assert not seen


def test_async_socket_descriptor_is_never_blocking_while_its_timeout_changes() -> None:
    # asock's descriptor is non-blocking for its whole life, whatever the timeout:
    # an event loop that found it blocking would block in the kernel.
    a, b = asock.socketpair()
    stop = threading.Event()
    seen: list[int] = []
    watcher = threading.Thread(target=_watch_mode, args=(a.fileno(), stop, seen))
    watcher.start()
    try:
        for i in range(20_000):
            a.settimeout(None if i % 2 else 0.01)
            a.setblocking(bool(i % 3))
    finally:
        stop.set()
        watcher.join()
        a.close()
        b.close()
    assert not seen


def test_sync_descriptor_mode_follows_the_timeout_as_the_stdlib_does() -> None:
    for timeout, blocking in ((None, True), (0.0, False), (2.5, False)):
        ours = asock_sync.socket()
        theirs = stdlib_socket.socket()
        try:
            ours.settimeout(timeout)
            theirs.settimeout(timeout)
            assert _nonblocking(ours.fileno()) == _nonblocking(theirs.fileno()) == (not blocking)
            assert ours.getblocking() == theirs.getblocking() == (timeout != 0.0)
        finally:
            ours.close()
            theirs.close()


def test_storm_of_timeouts_while_the_mode_flips_ends_on_close() -> None:
    """16 receivers and 8 acceptors with short timeouts, one thread flipping the mode.

    Every thread is back within GUARD seconds of close(): none is left in the
    kernel (the old code left receivers until the peer's FIN and acceptors
    until a client connected to the closed listener).
    """
    conn, peer = asock_sync.socketpair()
    listener = asock_sync.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    closing = threading.Event()
    outcomes: dict[str, str] = {}

    def keep_calling(name: str, call: object) -> None:
        while True:
            try:
                result = call()  # type: ignore[operator]
            except TimeoutError:
                continue
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except OSError as exc:
                if closing.is_set():
                    outcomes[name] = f"errno {exc.errno}"
                    return
                raise
            if closing.is_set():
                outcomes[name] = "returned after close"
                return
            if isinstance(result, tuple):
                result[0].close()

    def flip() -> None:
        modes = (None, 0.01, 0.0, 0.01)
        i = 0
        while not closing.is_set():
            for sock in (conn, listener):
                try:
                    sock.settimeout(modes[i % len(modes)])
                except OSError:
                    return  # closed
            i += 1

    threads = [
        threading.Thread(target=keep_calling, args=(f"recv{i}", lambda: conn.recv(1)), daemon=True)
        for i in range(16)
    ] + [
        threading.Thread(target=keep_calling, args=(f"accept{i}", listener.accept), daemon=True)
        for i in range(8)
    ]
    flipper = threading.Thread(target=flip, daemon=True)
    for thread in (*threads, flipper):
        thread.start()
    time.sleep(1.0)
    closing.set()
    conn.close()
    listener.close()
    deadline = time.monotonic() + GUARD
    for thread in (*threads, flipper):
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    peer.close()
    assert not stuck, f"still in the kernel after close(): {len(stuck)} threads"
    assert len(outcomes) == 24


def test_a_thread_waiting_with_a_timeout_holds_no_descriptor_of_its_own() -> None:
    # The old blocking driver made an eventfd in the first waiting thread; it
    # could take a number another thread had just freed and expected to be
    # EBADF. A wait now polls the socket alone.
    a, b = asock_sync.socketpair()
    a.settimeout(GUARD)
    before = open_fds()
    waiter = threading.Thread(target=lambda: a.recv(1))
    waiter.start()
    try:
        time.sleep(0.2)
        assert waiter.is_alive()
        assert open_fds() == before
    finally:
        b.send(b"x")
        waiter.join(GUARD)
        a.close()
        b.close()


def test_close_wakes_a_thread_blocked_in_the_kernel_in_blocking_mode() -> None:
    a, b = asock_sync.socketpair()
    assert not _nonblocking(a.fileno())  # blocking mode: the call sleeps in the kernel
    errors: list[OSError] = []

    def receive() -> None:
        try:
            a.recv(1)
        except OSError as exc:
            errors.append(exc)

    waiter = threading.Thread(target=receive)
    waiter.start()
    time.sleep(0.2)
    a.close()
    waiter.join(GUARD)
    b.close()
    assert not waiter.is_alive()
    assert [e.errno for e in errors] == [9]
    assert a.fileno() == -1


def test_close_without_calls_under_way_does_not_shut_a_shared_connection_down() -> None:
    # close() shuts down only for calls under way: a duplicate (dup, fork, a
    # descriptor passed on) keeps the connection, as with the stdlib.
    a, b = asock_sync.socketpair()
    copy = a.dup()
    a.send(b"1")
    assert b.recv(1) == b"1"
    a.close()
    copy.send(b"2")
    assert b.recv(1) == b"2"
    copy.close()
    assert b.recv(1) == b""
    b.close()


def _udp(family: int = stdlib_socket.AF_INET) -> asock_sync.socket:
    s = asock_sync.socket(family, stdlib_socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def test_close_ends_a_timed_wait_on_any_socket_type_at_once(tmp_path: object) -> None:
    """In timeout mode a waiting thread polls; close() ends the wait with EBADF.

    On datagram and listening sockets the shutdown that wakes the poll leaves
    the retried call with EAGAIN only: the wait itself must report the close
    rather than poll on until the timeout.
    """
    import pathlib

    unix_path = str(pathlib.Path(str(tmp_path)) / "listener")
    unix_listener = asock_sync.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
    unix_listener.bind(unix_path)
    unix_listener.listen()
    tcp_listener = asock_sync.socket()
    tcp_listener.bind(("127.0.0.1", 0))
    tcp_listener.listen()
    unix_dgram, unix_dgram_peer = asock_sync.socketpair(
        stdlib_socket.AF_UNIX, stdlib_socket.SOCK_DGRAM
    )
    cases = {
        "udp recvfrom": (_udp(), lambda s: s.recvfrom(1)),
        "unix dgram recv": (unix_dgram, lambda s: s.recv(1)),
        "tcp accept": (tcp_listener, lambda s: s.accept()),
        "unix accept": (unix_listener, lambda s: s.accept()),
    }
    outcomes: dict[str, object] = {}
    threads = []
    for name, (sock, call) in cases.items():
        sock.settimeout(30)

        def run(name: str = name, sock: asock_sync.socket = sock, call: object = call) -> None:
            started = time.monotonic()
            try:
                call(sock)  # type: ignore[operator]
            except OSError as exc:
                outcomes[name] = (exc.errno, time.monotonic() - started)

        thread = threading.Thread(target=run)
        thread.start()
        threads.append(thread)
    time.sleep(0.2)
    for sock, _ in cases.values():
        sock.close()
    for thread in threads:
        thread.join(GUARD)
    unix_dgram_peer.close()
    assert all(not t.is_alive() for t in threads)
    assert {name: errno for name, (errno, _) in outcomes.items()} == dict.fromkeys(cases, 9)  # type: ignore[misc]
    assert all(seconds < GUARD for _, seconds in outcomes.values())  # type: ignore[misc]
