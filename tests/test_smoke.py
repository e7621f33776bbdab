import socket as stdlib_socket

import pytest

import asock
import asock_sync


def test_names_are_the_stdlib_objects() -> None:
    assert asock.AF_INET is stdlib_socket.AF_INET
    assert asock.timeout is TimeoutError
    assert asock_sync.error is OSError
    assert asock.htons is stdlib_socket.htons
    assert asock.SocketType is asock.socket


async def test_socketpair_roundtrip(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with a, b:
        await a.sendall(b"ping")
        assert await b.recv(4) == b"ping"


async def test_recv_timeout_raises_timeout_error() -> None:
    a, b = asock.socketpair()
    with a, b:
        b.settimeout(0.05)
        with pytest.raises(TimeoutError, match="timed out"):
            await b.recv(1)
