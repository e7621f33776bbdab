"""ssl.SSLContext.wrap_socket accepts asock_sync sockets: real handshakes over loopback."""

from __future__ import annotations

import socket as stdlib_socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import asock_sync

GUARD = 10.0


@pytest.fixture
def tls_server(
    server_context: ssl.SSLContext,
) -> Iterator[tuple[tuple[str, int], list[Any], threading.Event]]:
    """A one-connection TLS echo server whose sockets are asock_sync's."""
    listener = asock_sync.create_server(("127.0.0.1", 0))
    outcome: list[Any] = []
    finished = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        conn.settimeout(GUARD)
        outcome.append(conn.fileno())
        try:
            with server_context.wrap_socket(conn, server_side=True) as tls:
                outcome.append(tls.version())
                while data := tls.recv(1024):
                    tls.sendall(b"echo: " + data)
        except (ssl.SSLError, OSError) as exc:
            outcome.append(exc)
        finally:
            finished.set()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield listener.getsockname(), outcome, finished
    finally:
        thread.join(GUARD)
        listener.close()
    assert not thread.is_alive()


def test_handshake_and_echo_over_an_asock_sync_socket(
    no_fd_leak_sync: None,
    tls_server: tuple[tuple[str, int], list[Any], threading.Event],
    client_context: ssl.SSLContext,
) -> None:
    address, outcome, finished = tls_server
    raw = asock_sync.create_connection(address, timeout=GUARD)
    fd = raw.fileno()
    with client_context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.fileno() == fd  # the same descriptor, wrapped in place
        assert raw.fileno() == -1  # ssl took it over (detach)
        assert tls.gettimeout() == GUARD  # the facade's timeout came along
        version = tls.version()
        assert version is not None and version.startswith("TLS")
        tls.sendall(b"secret")
        assert tls.recv(100) == b"echo: secret"
        cert = tls.getpeercert()
        assert cert is not None and ("DNS", "localhost") in cert["subjectAltName"]
    assert finished.wait(GUARD)
    assert isinstance(outcome[0], int)
    assert outcome[1] == version


def test_untrusted_certificate_fails_the_handshake(
    no_fd_leak_sync: None, tls_server: tuple[tuple[str, int], list[Any], threading.Event]
) -> None:
    address, outcome, finished = tls_server
    untrusting = ssl.create_default_context()  # does not know the test CA
    raw = asock_sync.create_connection(address, timeout=GUARD)
    with pytest.raises(ssl.SSLCertVerificationError):
        untrusting.wrap_socket(raw, server_hostname="localhost")
    raw.close()
    assert finished.wait(GUARD)
    assert isinstance(outcome[-1], (ssl.SSLError, OSError))  # the server saw it fail


def test_handshake_on_an_unconnected_socket_fails_like_the_stdlib(
    client_context: ssl.SSLContext, no_fd_leak_sync: None
) -> None:
    errors = []
    for sock in (stdlib_socket.socket(), asock_sync.socket()):
        with (
            sock,
            client_context.wrap_socket(
                sock, server_hostname="localhost", do_handshake_on_connect=False
            ) as tls,
        ):
            with pytest.raises(OSError) as info:
                tls.do_handshake()
            errors.append((type(info.value), info.value.errno))
    assert errors[0] == errors[1]
