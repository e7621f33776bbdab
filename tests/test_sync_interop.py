"""to_async() / to_sync(): one descriptor moving between blocking and async code."""

from __future__ import annotations

import socket as stdlib_socket

import anyio
import anyio.to_thread
import pytest

import asock
import asock_sync

GUARD = 10.0


def test_to_async_keeps_the_descriptor_and_the_timeout(no_fd_leak_sync: None) -> None:
    a, b = asock_sync.socketpair()
    with b:
        a.settimeout(4.5)
        fd = a.fileno()
        converted = a.to_async()
        with converted:
            assert isinstance(converted, asock.socket)
            assert converted.fileno() == fd
            assert converted.gettimeout() == 4.5
            assert a.fileno() == -1  # the blocking object let go of it
            with pytest.raises(OSError):
                a.recv(1)
            back = converted.to_sync()
        with back:
            assert isinstance(back, asock_sync.socket)
            assert back.fileno() == fd and back.gettimeout() == 4.5
            assert converted.fileno() == -1
            back.sendall(b"same connection")
            assert b.recv(100) == b"same connection"


@pytest.mark.parametrize("timeout", [None, 0.0, 2.0])
def test_round_trip_keeps_every_mode(timeout: float | None) -> None:
    with asock_sync.socket() as sock:
        sock.settimeout(timeout)
        with sock.to_async() as converted:
            assert converted.gettimeout() == timeout
            with converted.to_sync() as back:
                assert back.gettimeout() == timeout
                assert back.getblocking() is (timeout != 0.0)


def test_from_stdlib_socket_adopts_without_copying(no_fd_leak_sync: None) -> None:
    plain = stdlib_socket.socket()
    plain.settimeout(1.5)
    fd = plain.fileno()
    with asock_sync.from_stdlib_socket(plain) as adopted:
        assert adopted.fileno() == fd and adopted.gettimeout() == 1.5
        assert plain.fileno() == -1
    with pytest.raises(TypeError):
        asock_sync.from_stdlib_socket(object())  # type: ignore[arg-type]


def _blocking_worker(sock: asock_sync.socket) -> asock.socket:
    """What a legacy blocking library would do with the connection."""
    assert sock.gettimeout() == 3.0  # the async side's timeout came along
    request = sock.recv(100)
    sock.sendall(b"worker saw " + request)
    sock.settimeout(None)
    with pytest.raises(BlockingIOError):
        sock.recv(100, stdlib_socket.MSG_DONTWAIT)  # nothing else queued
    return sock.to_async()


async def test_connection_goes_to_a_blocking_worker_thread_and_back(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with a:
        b.settimeout(3.0)
        fd = b.fileno()
        await a.sendall(b"request")
        with anyio.fail_after(GUARD):
            # The worker thread blocks on the socket while the loop keeps running.
            worker = anyio.to_thread.run_sync(_blocking_worker, b.to_sync())
            back = await worker
        assert b.fileno() == -1
        with back:
            assert back.fileno() == fd
            assert back.gettimeout() is None  # what the worker set stays
            assert await a.recv(100) == b"worker saw request"
            await back.sendall(b"async again")
            with anyio.fail_after(GUARD):
                assert await a.recv(100) == b"async again"
            back.settimeout(0.05)
            with pytest.raises(TimeoutError):
                await back.recv(1)


async def test_async_waiter_then_blocking_use_of_the_same_descriptor(no_fd_leak: None) -> None:
    # An async recv that waited (so the loop registered the descriptor) must not
    # keep a registration that breaks the blocking side afterwards.
    a, b = asock.socketpair()
    with a:
        b.settimeout(0.05)
        with pytest.raises(TimeoutError):
            await b.recv(1)
        sync_b = b.to_sync()
        with sync_b:
            sync_b.settimeout(GUARD)
            await a.sendall(b"to the blocking side")
            data = await anyio.to_thread.run_sync(sync_b.recv, 100)
            assert data == b"to the blocking side"
