"""asock_sync from many threads, next to event loops, and close() from another thread."""

from __future__ import annotations

import errno
import os
import socket as stdlib_socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import asock
import asock_sync

GUARD = 10.0


def _run_threads(
    targets: list[Callable[[], Any]],
) -> tuple[list[threading.Thread], list[Any]]:
    """Run each target in its own thread; return results or the exceptions raised."""
    results: list[Any] = [None] * len(targets)

    def run(index: int, target: Callable[[], Any]) -> None:
        try:
            results[index] = target()
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    return threads, results


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(GUARD)
    assert not any(thread.is_alive() for thread in threads), "a thread never woke up"


def test_any_thread_may_use_a_socket(no_fd_leak_sync: None) -> None:
    a, b = asock_sync.socketpair()
    with a, b, ThreadPoolExecutor(4) as pool:
        b.settimeout(GUARD)
        pool.submit(a.sendall, b"from a worker").result(GUARD)
        assert pool.submit(b.recv, 100).result(GUARD) == b"from a worker"
        future = pool.submit(b.recv, 100)  # blocks in a worker until the main thread sends
        a.sendall(b"from main")
        assert future.result(GUARD) == b"from main"


def test_several_threads_block_on_one_socket(no_fd_leak_sync: None) -> None:
    a, b = asock_sync.socketpair(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_DGRAM)
    with a, b:
        threads, results = _run_threads([lambda: b.recv(100) for _ in range(4)])
        time.sleep(0.05)  # let them block (they are correct either way)
        messages = [f"message {i}".encode() for i in range(4)]
        for message in messages:
            a.send(message)
        _join(threads)
    assert sorted(results) == messages  # each datagram went to exactly one thread


def test_several_threads_accept_on_one_listener(no_fd_leak_sync: None) -> None:
    with asock_sync.create_server(("127.0.0.1", 0)) as listener:

        def accept_and_read() -> bytes:
            conn, _ = listener.accept()
            with conn:
                return conn.recv(100)

        threads, results = _run_threads([accept_and_read for _ in range(3)])
        clients = []
        for i in range(3):
            client = asock_sync.create_connection(listener.getsockname())
            clients.append(client)
            client.sendall(b"client %d" % i)
        _join(threads)
        for client in clients:
            client.close()
    assert sorted(results) == [b"client 0", b"client 1", b"client 2"]


@pytest.mark.parametrize("timeout", [None, 30.0])
def test_close_from_another_thread_wakes_every_blocked_thread_with_ebadf(
    timeout: float | None, no_fd_leak_sync: None
) -> None:
    a, b = asock_sync.socketpair()
    with asock_sync.create_server(("127.0.0.1", 0)) as listener, a:
        for sock in (b, listener):
            sock.settimeout(timeout)
        threads, results = _run_threads(
            [lambda: b.recv(100), lambda: b.recv(100), lambda: listener.accept()]
        )
        time.sleep(0.1)  # let them block (a call that starts after close gets EBADF too)
        b.close()
        listener.close()
        _join(threads)
    for result in results:
        assert isinstance(result, OSError) and not isinstance(result, TimeoutError), result
        assert result.errno == errno.EBADF


def test_close_from_another_thread_wakes_a_blocked_sendall(no_fd_leak_sync: None) -> None:
    a, b = asock_sync.socketpair()
    with b:
        threads, results = _run_threads([lambda: a.sendall(b"x" * (16 << 20))])
        time.sleep(0.1)
        a.close()
        _join(threads)
    [error] = results
    assert isinstance(error, OSError) and error.errno == errno.EBADF
    assert error.bytes_sent > 0  # type: ignore[attr-defined]


BACKENDS = [
    pytest.param("asyncio", {}, id="asyncio"),
    pytest.param("asyncio", {"use_uvloop": True}, id="uvloop"),
    pytest.param("trio", {}, id="trio"),
]


@pytest.mark.parametrize(("backend", "options"), BACKENDS)
def test_blocking_calls_while_an_event_loop_serves_in_another_thread(
    backend: str, options: dict[str, Any]
) -> None:
    # Inherently multi-backend but not an async test: the point is a loop
    # running in *another* thread while this thread blocks.
    # One run first: uvloop opens a pipe the first time it runs in a process.
    anyio.run(anyio.lowlevel.checkpoint, backend=backend, backend_options=options)
    fds_before = set(os.listdir("/proc/self/fd"))
    ready = threading.Event()
    address: list[Any] = []

    async def serve() -> None:
        listener = asock.socket()
        with listener:
            await listener.bind(("127.0.0.1", 0))
            listener.listen()
            address.append(listener.getsockname())
            ready.set()
            for _ in range(3):
                conn, _ = await listener.accept()
                with conn:
                    while data := await conn.recv(1024):
                        await conn.sendall(data.upper())

    loop_thread = threading.Thread(
        target=anyio.run,
        args=(serve,),
        kwargs={
            "backend": backend,
            "backend_options": options,
        },
    )
    loop_thread.start()
    try:
        assert ready.wait(GUARD)

        def client(name: bytes) -> bytes:
            with asock_sync.create_connection(address[0], timeout=GUARD) as sock:
                sock.sendall(b"hello from " + name)
                sock.shutdown(stdlib_socket.SHUT_WR)
                with sock.makefile("rb") as stream:
                    return stream.read()

        # Two blocking clients in worker threads at once, one in this thread.
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(client, b"worker %d" % i) for i in range(2)]
            assert client(b"main") == b"HELLO FROM MAIN"
            assert sorted(f.result(GUARD) for f in futures) == [
                b"HELLO FROM WORKER 0",
                b"HELLO FROM WORKER 1",
            ]
    finally:
        loop_thread.join(GUARD)
    assert not loop_thread.is_alive()
    assert set(os.listdir("/proc/self/fd")) <= fds_before


async def test_blocking_calls_work_inside_a_running_loop_thread(no_fd_leak: None) -> None:
    # Blocking code called from a coroutine blocks the loop, exactly as the
    # stdlib would; it must not trip over the running loop (no loop of its own).
    a, b = asock_sync.socketpair()
    with a, b:
        a.sendall(b"inside a loop")
        assert b.recv(100) == b"inside a loop"
        b.settimeout(0.02)
        with pytest.raises(TimeoutError):
            b.recv(1)
        b.setblocking(False)
        with pytest.raises(BlockingIOError):
            b.recv(1)


def test_a_thread_that_loses_the_race_keeps_waiting_then_times_out(
    no_fd_leak_sync: None,
) -> None:
    # Both threads wake for the one datagram; the loser finds nothing, must not
    # raise BlockingIOError, and waits out the rest of its own deadline.
    a, b = asock_sync.socketpair(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_DGRAM)
    with a, b:
        b.settimeout(0.5)
        threads, results = _run_threads([lambda: b.recv(100), lambda: b.recv(100)])
        time.sleep(0.05)
        a.send(b"only one")
        _join(threads)
    assert sorted(map(type, results), key=str) == sorted([bytes, TimeoutError], key=str)
    assert b"only one" in results
