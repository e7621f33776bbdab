"""asock_sync's module functions behave as the stdlib's and return facade sockets."""

from __future__ import annotations

import errno
import os
import socket as stdlib_socket
from collections.abc import Iterator

import pytest

import asock_sync


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening)."""
    with stdlib_socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


def test_create_connection_returns_a_connected_facade_socket(no_fd_leak_sync: None) -> None:
    with asock_sync.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with asock_sync.create_connection(
            ("127.0.0.1", port), timeout=2.5, source_address=("127.0.0.1", 0)
        ) as client:
            assert isinstance(client, asock_sync.socket)
            assert client.gettimeout() == 2.5
            assert client.getsockname()[0] == "127.0.0.1"
            conn, address = listener.accept()
            with conn:
                assert address == client.getsockname()
                client.sendall(b"over create_connection")
                assert conn.recv(100) == b"over create_connection"


def test_create_connection_raises_the_first_error(closed_port: int, no_fd_leak_sync: None) -> None:
    with pytest.raises(ConnectionRefusedError):
        asock_sync.create_connection(("127.0.0.1", closed_port))


def test_create_connection_all_errors_matches_the_stdlib(
    closed_port: int, no_fd_leak_sync: None
) -> None:
    with pytest.raises(ExceptionGroup) as theirs:
        stdlib_socket.create_connection(("localhost", closed_port), all_errors=True)
    with pytest.raises(ExceptionGroup) as ours:
        asock_sync.create_connection(("localhost", closed_port), all_errors=True)
    assert [type(e) for e in ours.value.exceptions] == [type(e) for e in theirs.value.exceptions]
    assert all(isinstance(e, OSError) for e in ours.value.exceptions)


def test_create_connection_resolution_errors_are_gaierror() -> None:
    with pytest.raises(stdlib_socket.gaierror):
        asock_sync.create_connection(("no-such-host.invalid", 80))


def test_create_connection_timeout_stays_a_timeout_error(no_fd_leak_sync: None) -> None:
    with asock_sync.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        fillers = []
        try:
            for _ in range(4):
                filler = asock_sync.socket()
                fillers.append(filler)
                filler.settimeout(0.2)
                if filler.connect_ex(listener.getsockname()) != 0:
                    break
            else:
                pytest.skip("the kernel accepted every handshake; cannot saturate the backlog")
            with pytest.raises(TimeoutError, match="timed out"):
                asock_sync.create_connection(listener.getsockname(), timeout=0.1)
        finally:
            for filler in fillers:
                filler.close()


def test_create_server_listens_with_the_stdlib_options(no_fd_leak_sync: None) -> None:
    with asock_sync.create_server(("127.0.0.1", 0), backlog=5, reuse_port=True) as listener:
        assert isinstance(listener, asock_sync.socket)
        assert listener.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_ACCEPTCONN) == 1
        assert listener.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEPORT) == 1
        with stdlib_socket.create_connection(listener.getsockname()) as client:
            conn, _ = listener.accept()
            with conn:
                assert isinstance(conn, asock_sync.socket)
                client.sendall(b"hi")
                assert conn.recv(2) == b"hi"
    with pytest.raises(ValueError):
        asock_sync.create_server(("127.0.0.1", 0), dualstack_ipv6=True)


@pytest.mark.skipif(not stdlib_socket.has_dualstack_ipv6(), reason="no dual-stack IPv6 here")
def test_create_server_dualstack(no_fd_leak_sync: None) -> None:
    with asock_sync.create_server(
        ("", 0), family=stdlib_socket.AF_INET6, dualstack_ipv6=True
    ) as listener:
        port = listener.getsockname()[1]
        with asock_sync.create_connection(("127.0.0.1", port)) as client:
            conn, address = listener.accept()
            with conn:
                assert address[0] == "::ffff:127.0.0.1"
                client.sendall(b"v4 to v6")
                assert conn.recv(100) == b"v4 to v6"


@pytest.mark.parametrize(
    "args",
    [(), (stdlib_socket.AF_UNIX, stdlib_socket.SOCK_DGRAM), (None, stdlib_socket.SOCK_SEQPACKET)],
)
def test_socketpair_matches_the_stdlib(args: tuple[object, ...], no_fd_leak_sync: None) -> None:
    theirs = stdlib_socket.socketpair(*args)  # type: ignore[arg-type]
    a, b = asock_sync.socketpair(*args)  # type: ignore[arg-type]
    with a, b, theirs[0], theirs[1]:
        for ours, reference in zip((a, b), theirs, strict=True):
            assert isinstance(ours, asock_sync.socket)
            assert (ours.family, ours.type, ours.proto) == (
                reference.family,
                reference.type,
                reference.proto,
            )
        a.send(b"pair")
        assert b.recv(10) == b"pair"


def test_socketpair_errors_match_the_stdlib() -> None:
    with pytest.raises(OSError) as theirs:
        stdlib_socket.socketpair(stdlib_socket.AF_UNIX, 12345)
    with pytest.raises(type(theirs.value)) as ours:
        asock_sync.socketpair(stdlib_socket.AF_UNIX, 12345)
    assert ours.value.errno == theirs.value.errno


def test_fromfd_duplicates_and_keeps_the_default_timeout(no_fd_leak_sync: None) -> None:
    saved = asock_sync.getdefaulttimeout()
    a, b = stdlib_socket.socketpair()
    try:
        asock_sync.setdefaulttimeout(1.25)
        with a, b, asock_sync.fromfd(a.fileno(), a.family, a.type) as copy:
            assert copy.fileno() != a.fileno()
            assert copy.gettimeout() == 1.25
            copy.sendall(b"dup")
            assert b.recv(3) == b"dup"
    finally:
        asock_sync.setdefaulttimeout(saved)
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(OSError) as info:
        asock_sync.fromfd(fd, stdlib_socket.AF_INET, stdlib_socket.SOCK_STREAM)
    assert info.value.errno == errno.EBADF
