"""Regression tests for defects found in review, one section per defect.

Real sockets throughout: TLS over a socketpair with trustme certificates,
loopback connections to a port that refuses, a custom hostname resolver that
records what it is asked.
"""

from __future__ import annotations

import gc
import os
import socket as stdlib_socket
import ssl
import sys
import threading
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import trustme

import asock
import asock_sync
from asock import streams

FRONTS = [pytest.param(asock, id="asock"), pytest.param(asock_sync, id="asock_sync")]


# -- from_stdlib_socket refuses ssl.SSLSocket and socket.socket subclasses ---


@pytest.fixture
def tls_pair() -> Iterator[tuple[ssl.SSLSocket, ssl.SSLSocket]]:
    """A client and a server SSLSocket, handshake done, over a socketpair."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    a, b = stdlib_socket.socketpair()
    servers: list[ssl.SSLSocket] = []
    thread = threading.Thread(
        target=lambda: servers.append(server_context.wrap_socket(a, server_side=True))
    )
    thread.start()
    try:
        client = client_context.wrap_socket(b, server_hostname="localhost")
    finally:
        thread.join()
    with client, servers[0] as server:
        yield client, server
    a.close()
    b.close()


@pytest.mark.parametrize("front", FRONTS)
def test_from_stdlib_socket_refuses_ssl_socket(
    front: Any, tls_pair: tuple[ssl.SSLSocket, ssl.SSLSocket], no_fd_leak_sync: None
) -> None:
    client, server = tls_pair
    fd = client.fileno()
    with pytest.raises(TypeError, match=r"expected a socket\.socket, not SSLSocket"):
        front.from_stdlib_socket(client)
    # Untouched: same descriptor, and the TLS layer still works both ways.
    assert client.fileno() == fd
    client.sendall(b"ping")
    assert server.recv(4) == b"ping"
    server.sendall(b"pong")
    assert client.recv(4) == b"pong"


class SubSocket(stdlib_socket.socket):
    """Any subclass of socket.socket: its descriptor is not asock's to take."""


@pytest.mark.parametrize("front", FRONTS)
def test_from_stdlib_socket_refuses_socket_subclass(front: Any, no_fd_leak_sync: None) -> None:
    a, b = stdlib_socket.socketpair()
    with b, SubSocket(fileno=a.detach()) as sub:
        with pytest.raises(TypeError, match=r"expected a socket\.socket, not SubSocket"):
            front.from_stdlib_socket(sub)
        assert sub.fileno() >= 0
        sub.sendall(b"still mine")
        assert b.recv(10) == b"still mine"


# -- sendmsg_afalg with keyword arguments ------------------------------------

needs_afalg = pytest.mark.skipif(
    not hasattr(stdlib_socket.socket, "sendmsg_afalg"), reason="no sendmsg_afalg here"
)

AFALG_CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (([b"x"],), {"op": getattr(stdlib_socket, "ALG_OP_ENCRYPT", 1)}),
    ((), {"msg": [b"x"], "op": getattr(stdlib_socket, "ALG_OP_ENCRYPT", 1), "flags": 0}),
    (([b"x"],), {"op": getattr(stdlib_socket, "ALG_OP_DECRYPT", 0), "iv": b"\0" * 16,
                 "assoclen": 0}),
]


def _stdlib_afalg_error(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[type, str]:
    a, b = stdlib_socket.socketpair()
    with a, b:
        with pytest.raises(OSError) as info:
            a.sendmsg_afalg(*args, **kwargs)
    return type(info.value), str(info.value)


@needs_afalg
@pytest.mark.parametrize(("args", "kwargs"), AFALG_CALLS)
async def test_sendmsg_afalg_keywords_raise_the_stdlib_oserror(
    args: tuple[Any, ...], kwargs: dict[str, Any], no_fd_leak: None
) -> None:
    expected = _stdlib_afalg_error(args, kwargs)
    a, b = asock.socketpair()
    with a, b:
        with pytest.raises(OSError) as info:
            await a.sendmsg_afalg(*args, **kwargs)
    assert (type(info.value), str(info.value)) == expected


@needs_afalg
@pytest.mark.parametrize(("args", "kwargs"), AFALG_CALLS)
def test_sync_sendmsg_afalg_keywords_raise_the_stdlib_oserror(
    args: tuple[Any, ...], kwargs: dict[str, Any], no_fd_leak_sync: None
) -> None:
    expected = _stdlib_afalg_error(args, kwargs)
    a, b = asock_sync.socketpair()
    with a, b:
        with pytest.raises(OSError) as info:
            a.sendmsg_afalg(*args, **kwargs)
    assert (type(info.value), str(info.value)) == expected


# -- getaddrinfo: only EAI_NONAME from the numeric attempt means a lookup -----


class RecordingResolver(asock.HostnameResolver):
    """Resolves any name to 127.0.0.1 and records every question."""

    def __init__(self) -> None:
        self.asked: list[tuple[Any, ...]] = []

    async def getaddrinfo(
        self, host: bytes | str | None, port: bytes | str | int | None,
        family: int = 0, type: int = 0, proto: int = 0, flags: int = 0,
    ) -> list[Any]:
        self.asked.append((host, port, family, type, proto, flags))
        sockaddr = ("127.0.0.1", 80)
        return [(stdlib_socket.AF_INET, stdlib_socket.SOCK_STREAM, 6, "", sockaddr)]

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
        raise stdlib_socket.gaierror(stdlib_socket.EAI_NONAME, "Name or service not known")


@pytest.fixture
async def recording_resolver() -> Any:
    resolver = RecordingResolver()
    asock.set_custom_hostname_resolver(resolver)
    yield resolver
    asock.set_custom_hostname_resolver(None)


@pytest.mark.parametrize(
    ("port", "kind", "code"),
    [
        (80, -1, "EAI_SOCKTYPE"),
        ("no-such-service-here", stdlib_socket.SOCK_STREAM, "EAI_SERVICE"),
    ],
)
async def test_getaddrinfo_raises_other_numeric_errors_at_once(
    port: Any, kind: int, code: str, recording_resolver: RecordingResolver
) -> None:
    with pytest.raises(stdlib_socket.gaierror) as expected:
        stdlib_socket.getaddrinfo("example.test", port, 0, kind)
    with pytest.raises(stdlib_socket.gaierror) as info:
        await asock.getaddrinfo("example.test", port, 0, kind)
    assert info.value.errno == expected.value.errno == getattr(stdlib_socket, code)
    assert recording_resolver.asked == []


async def test_getaddrinfo_looks_up_names_only(recording_resolver: RecordingResolver) -> None:
    infos = await asock.getaddrinfo("127.0.0.1", 80, 0, stdlib_socket.SOCK_STREAM)
    assert infos[0][4] == ("127.0.0.1", 80)
    assert recording_resolver.asked == []  # numeric: answered in the task
    await asock.getaddrinfo("example.test", 80, 0, stdlib_socket.SOCK_STREAM)
    assert recording_resolver.asked == [
        ("example.test", 80, 0, stdlib_socket.SOCK_STREAM, 0, 0)
    ]


# -- a failed create_connection leaves no reference cycles --------------------


class Marker:
    """Hung on an exception: freed with it, so a weak reference tells when it goes."""


@pytest.fixture
def refused_address() -> Iterator[tuple[str, int]]:
    """A loopback address that refuses connections (bound, not listening)."""
    with stdlib_socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()


class TwoAddresses(asock.HostnameResolver):
    """``twice.test`` is 127.0.0.1 twice: two attempts, two errors."""

    async def getaddrinfo(
        self, host: bytes | str | None, port: bytes | str | int | None,
        family: int = 0, type: int = 0, proto: int = 0, flags: int = 0,
    ) -> list[Any]:
        sockaddr = ("127.0.0.1", int(port or 0))
        return [(stdlib_socket.AF_INET, stdlib_socket.SOCK_STREAM, 6, "", sockaddr)] * 2

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
        raise NotImplementedError


@pytest.mark.parametrize("all_errors", [False, True])
@pytest.mark.parametrize("host", ["127.0.0.1", "twice.test"])
async def test_failed_create_connection_leaves_no_cycles(
    all_errors: bool, host: str, refused_address: tuple[str, int], no_fd_leak: None
) -> None:
    """Derived from anyio's test_happy_eyeballs_refcycles (CPython gh-124859)."""
    asock.set_custom_hostname_resolver(TwoAddresses())
    refs: list[weakref.ref[Marker]] = []
    gc.collect()
    gc.disable()
    try:
        try:
            await asock.create_connection(
                (host, refused_address[1]), all_errors=all_errors, happy_eyeballs_delay=None
            )
        except Exception as exc:  # OSError, or an ExceptionGroup of them
            for error in (exc, *getattr(exc, "exceptions", ())):
                assert isinstance(error, (OSError, ExceptionGroup))
                marker = Marker()
                error.marker = marker  # type: ignore[union-attr]
                refs.append(weakref.ref(marker))
            del marker, error
        else:  # pragma: no cover
            pytest.fail("the connection should have been refused")
        # With the exception gone, reference counting alone must free it.
        assert refs and [ref() for ref in refs] == [None] * len(refs)
    finally:
        gc.enable()
        asock.set_custom_hostname_resolver(None)


# -- an unclosed socket collected with warnings as errors is still closed -----


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


async def test_collected_socket_is_closed_even_if_its_warning_raises(no_fd_leak: None) -> None:
    unraisable: list[tuple[Any, str]] = []
    saved_hook = sys.unraisablehook

    def hook(info: Any) -> None:
        unraisable.append((info.exc_type, str(info.exc_value)))

    a, b = asock.socketpair()
    with b:
        async with anyio.create_task_group() as tg:
            # A recv that waits once, so the driver knows the socket (asyncio:
            # the epoll hub). It ends with data: a cancelled one would leave
            # its exception's traceback holding the socket a while longer.
            tg.start_soon(a.recv, 1)
            await anyio.sleep(0.02)
            await b.sendall(b"x")
        fd = a.fileno()
        sys.unraisablehook = hook
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", ResourceWarning)
                del a
                gc.collect()
        finally:
            sys.unraisablehook = saved_hook
        assert not _is_open(fd)
        assert len(unraisable) == 1
        exc_type, message = unraisable[0]
        assert exc_type is ResourceWarning and message.startswith("unclosed <asock.socket")
        assert await b.recv(1) == b""  # the peer sees the close


def test_sync_collected_socket_is_closed_even_if_its_warning_raises(
    no_fd_leak_sync: None,
) -> None:
    unraisable: list[Any] = []
    saved_hook = sys.unraisablehook
    a, b = asock_sync.socketpair()
    with b:
        fd = a.fileno()
        sys.unraisablehook = lambda info: unraisable.append(info.exc_type)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", ResourceWarning)
                del a
                gc.collect()
        finally:
            sys.unraisablehook = saved_hook
        assert not _is_open(fd)
        assert unraisable == [ResourceWarning]


# -- a non-buffer to sendall: the stdlib's message ----------------------------

NOT_BYTES = [pytest.param("x", id="str"), pytest.param(5, id="int"), pytest.param([1], id="list")]


def _stdlib_message(data: Any) -> str:
    a, b = stdlib_socket.socketpair()
    with a, b:
        with pytest.raises(TypeError) as info:
            a.sendall(data)
    return str(info.value)


@pytest.mark.parametrize("data", NOT_BYTES)
async def test_sendall_non_buffer_message_is_the_stdlib_one(data: Any, no_fd_leak: None) -> None:
    expected = _stdlib_message(data)
    assert expected == f"a bytes-like object is required, not '{type(data).__name__}'"
    a, b = asock.socketpair()
    with a, b:
        with pytest.raises(TypeError) as info:
            await a.sendall(data)
        assert str(info.value) == expected
        assert info.value.__suppress_context__  # no memoryview error chained


@pytest.mark.parametrize("data", NOT_BYTES)
def test_sync_sendall_non_buffer_message_is_the_stdlib_one(
    data: Any, no_fd_leak_sync: None
) -> None:
    a, b = asock_sync.socketpair()
    with a, b:
        with pytest.raises(TypeError) as info:
            a.sendall(data)
        assert str(info.value) == _stdlib_message(data)


@pytest.mark.parametrize("data", NOT_BYTES)
async def test_sendto_host_name_non_buffer_message_is_the_stdlib_one(
    data: Any, no_fd_leak: None
) -> None:
    """sendto checks the data before asock looks the host up (_parse_bytes_like)."""
    with stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as plain:
        with pytest.raises(TypeError) as expected:
            plain.sendto(data, ("localhost", 9))
    with asock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as udp:
        with pytest.raises(TypeError) as info:
            await udp.sendto(data, ("localhost", 9))
    assert str(info.value) == str(expected.value)


async def test_sendall_keeps_buffer_errors(no_fd_leak: None) -> None:
    strided = memoryview(b"abcdef")[::2]
    a, b = asock.socketpair()
    with a, b:
        with pytest.raises(BufferError, match="not C-contiguous"):
            await a.sendall(strided)


# -- asock.streams from_socket: the timeout becomes None (documented) ---------


async def test_stream_from_socket_sets_timeout_to_none(no_fd_leak: None) -> None:
    for timeout in (0.0, 0.02):
        a, b = asock.socketpair()
        a.settimeout(timeout)
        async with await streams.UNIXSocketStream.from_socket(a) as stream, b:
            assert a.gettimeout() is None and stream.asock_socket is a
            received: list[bytes] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(_receive_into, stream, received)
                await anyio.sleep(0.1)  # longer than the old timeout: no error
                await b.sendall(b"late")
            assert received == [b"late"]


async def _receive_into(stream: streams.SocketStream, received: list[bytes]) -> None:
    received.append(await stream.receive())


async def test_from_socket_sets_timeout_to_none_for_every_source(no_fd_leak: None) -> None:
    plain_a, plain_b = stdlib_socket.socketpair()
    plain_a.settimeout(5)
    async with await streams.SocketStream.from_socket(plain_a) as stream:
        assert stream.asock_socket.gettimeout() is None
    plain_b.close()
    sync_a, sync_b = asock_sync.socketpair()
    sync_a.settimeout(0.0)
    async with await streams.SocketStream.from_socket(sync_a) as stream:
        assert stream.asock_socket.gettimeout() is None
    sync_b.close()
    with stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(1.5)
        async with await streams.UDPSocket.from_socket(udp) as datagrams:
            assert datagrams.asock_socket.gettimeout() is None


# -- sendto: an address whose host is unhashable ------------------------------
# The numeric-host cache looked the host up in a set before anything checked
# it, so a list as the host raised "unhashable type" instead of the stdlib's
# error (found by tests/reliability/test_hostile_args.py).

UNHASHABLE_HOSTS = [
    pytest.param(memoryview(b"abcdefgh")[::2], ([], None), id="strided-data"),
    pytest.param(b"x", ([], 9), id="list-host"),
    pytest.param(b"x", ({}, 9), id="dict-host"),
]


def _stdlib_sendto_error(data: Any, address: Any) -> BaseException:
    with stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as plain:
        with pytest.raises(Exception) as expected:
            plain.sendto(data, address)
    return expected.value


@pytest.mark.parametrize(("data", "address"), UNHASHABLE_HOSTS)
async def test_sendto_unhashable_host_fails_like_the_stdlib(
    data: Any, address: Any, no_fd_leak: None
) -> None:
    expected = _stdlib_sendto_error(data, address)
    with asock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as udp:
        with pytest.raises(type(expected)) as info:
            await udp.sendto(data, address)
    assert str(info.value) == str(expected)


@pytest.mark.parametrize(("data", "address"), UNHASHABLE_HOSTS)
def test_sync_sendto_unhashable_host_fails_like_the_stdlib(
    data: Any, address: Any, no_fd_leak_sync: None
) -> None:
    expected = _stdlib_sendto_error(data, address)
    with asock_sync.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as udp:
        with pytest.raises(type(expected)) as info:
            udp.sendto(data, address)
    assert str(info.value) == str(expected)
