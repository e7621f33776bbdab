"""asock.streams behaviour that anyio's own backends do not agree on, or that is asock's own.

The behaviour shared with anyio is in test_streams_conformance.py, run against
both implementations. Here: adopting asock sockets, errors on paths where
anyio's asyncio and trio backends differ (the adapters follow the trio
backend: an OSError becomes BrokenResourceError), Happy Eyeballs through
asock's resolver hook, and full-duplex transfers.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pytest
import trustme
from anyio import BrokenResourceError, ClosedResourceError, EndOfStream
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSListener, TLSStream

import asock
import asock.streams
import asock_sync
from asock.streams import (
    ConnectedUDPSocket,
    SocketStream,
    TCPListener,
    UDPSocket,
    UNIXSocketStream,
)

pytestmark = pytest.mark.usefixtures("no_fd_leak")


@pytest.fixture
async def tcp_pair() -> AsyncIterator[tuple[SocketStream, SocketStream]]:
    listener = await asock.streams.create_tcp_listener(local_host="127.0.0.1")
    async with listener:
        port = listener.extra(SocketAttribute.local_port)
        client = await asock.streams.connect_tcp("127.0.0.1", port)
        server = await listener.listeners[0].accept()
    assert isinstance(server, SocketStream)
    async with client, server:
        yield client, server


class FixedResolver(asock.HostnameResolver):
    """Answers every lookup of ``name`` with ``addresses``, in that order."""

    def __init__(self, name: str, addresses: list[str]) -> None:
        self.name = name
        self.addresses = addresses

    async def getaddrinfo(
        self, host: bytes | str | None, port: bytes | str | int | None,
        family: int = 0, type: int = 0, proto: int = 0, flags: int = 0,
    ) -> list[Any]:
        if host != self.name:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        infos = []
        for address in self.addresses:
            fam = socket.AF_INET6 if ":" in address else socket.AF_INET
            if family in (0, fam):
                sockaddr = (address, port, 0, 0) if fam == socket.AF_INET6 else (address, port)
                infos.append((fam, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return infos

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
        raise NotImplementedError


async def test_adopting_an_asock_socket_clears_its_timeout() -> None:
    a, b = asock.socketpair()
    a.settimeout(0.01)
    left = await UNIXSocketStream.from_socket(a)
    right = await UNIXSocketStream.from_socket(b)
    async with left, right:
        assert left.asock_socket is a
        assert a.gettimeout() is None
        # With the 0.01 s timeout left in place this would raise TimeoutError.
        with anyio.move_on_after(0.1) as scope:
            await left.receive()
        assert scope.cancelled_caught
        await right.send(b"late")
        assert await left.receive() == b"late"


async def test_adopting_a_stdlib_socket_detaches_it() -> None:
    a, b = socket.socketpair()
    fd = a.fileno()
    stream = await UNIXSocketStream.from_socket(a)
    async with stream:
        assert a.fileno() == -1  # the stdlib object gave its descriptor away
        assert stream.asock_socket.fileno() == fd
        b.sendall(b"x")
        assert await stream.receive() == b"x"
    b.close()


async def test_adopting_an_asock_sync_socket_detaches_it() -> None:
    # A connection a blocking worker made can be handed to anyio code as is.
    a, b = asock_sync.socketpair()
    fd = a.fileno()
    stream = await UNIXSocketStream.from_socket(a)
    async with stream:
        assert a.fileno() == -1  # the sync-front object gave its descriptor away
        assert stream.asock_socket.fileno() == fd
        b.sendall(b"x")
        assert await stream.receive() == b"x"
        await stream.send(b"y")
        b.settimeout(5)
        assert b.recv(1) == b"y"
    b.close()


async def test_from_socket_rejects_non_socket_descriptor_and_keeps_it() -> None:
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(ValueError):
            await SocketStream.from_socket(read_end)
        os.fstat(read_end)  # still open: the caller keeps it
    finally:
        os.close(read_end)
        os.close(write_end)


async def test_from_socket_checks_family() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname()) as client:
        with pytest.raises(ValueError, match="AF_UNIX"):
            await UNIXSocketStream.from_socket(client)
        assert client.fileno() != -1


async def test_listener_and_udp_from_asock_sockets() -> None:
    raw = asock.socket()
    await raw.bind(("127.0.0.1", 0))
    raw.listen()
    async with await TCPListener.from_socket(raw) as listener:
        port = listener.extra(SocketAttribute.local_port)
        async with await asock.streams.connect_tcp("127.0.0.1", port) as client:
            async with await listener.accept() as server:
                await client.send(b"via asock listener")
                assert await server.receive() == b"via asock listener"
    udp = asock.socket(socket.AF_INET, socket.SOCK_DGRAM)
    await udp.bind(("127.0.0.1", 0))
    async with await UDPSocket.from_socket(udp) as wrapped:
        assert wrapped.extra(SocketAttribute.local_address) == udp.getsockname()


async def test_send_eof_on_closed_and_broken_streams(
    tcp_pair: tuple[SocketStream, SocketStream],
) -> None:
    client, server = tcp_pair
    raw = server.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await server.aclose()
    with pytest.raises(ClosedResourceError):
        await server.send_eof()
    with anyio.fail_after(5), pytest.raises(BrokenResourceError):
        await client.receive()  # the RST has arrived
    with pytest.raises(BrokenResourceError) as info:
        await client.send_eof()
    assert isinstance(info.value.__cause__, OSError)


async def test_socket_closed_underneath_is_broken_not_closed(
    tcp_pair: tuple[SocketStream, SocketStream],
) -> None:
    client, _ = tcp_pair
    client.asock_socket.close()  # not through aclose(): the stream did not close itself
    with pytest.raises(BrokenResourceError) as info:
        await client.receive()
    assert isinstance(info.value.__cause__, OSError)


async def test_connected_udp_refused_is_broken() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    udp = await asock.streams.create_connected_udp_socket("127.0.0.1", port)
    async with udp:
        assert isinstance(udp, ConnectedUDPSocket)
        await udp.send(b"anyone?")
        with anyio.fail_after(5), pytest.raises(BrokenResourceError) as info:
            await udp.receive()
        assert isinstance(info.value.__cause__, ConnectionRefusedError)


async def test_udp_send_resolves_host_names() -> None:
    async with await asock.streams.create_udp_socket(
        local_host="127.0.0.1"
    ) as a, await asock.streams.create_udp_socket(local_host="127.0.0.1") as b:
        previous = asock.set_custom_hostname_resolver(
            FixedResolver("udp-peer.test", ["127.0.0.1"])
        )
        try:
            await a.sendto(b"by name", "udp-peer.test", b.extra(SocketAttribute.local_port))
        finally:
            asock.set_custom_hostname_resolver(previous)
        with anyio.fail_after(5):
            assert (await b.receive())[0] == b"by name"


async def test_send_fds_accepts_objects_with_fileno() -> None:
    a, b = asock.socketpair()
    left = await UNIXSocketStream.from_socket(a)
    right = await UNIXSocketStream.from_socket(b)
    extra_a, extra_b = socket.socketpair()
    async with left, right:
        with extra_a, extra_b:
            await left.send_fds(b"sock", [extra_a])
            message, fds = await right.receive_fds(4, 1)
            assert message == b"sock"
            with socket.socket(fileno=fds[0]) as passed:
                passed.sendall(b"through the passed socket")
                assert extra_b.recv(100) == b"through the passed socket"
            with pytest.raises(TypeError):
                await left.send_fds(b"bad", [object()])  # type: ignore[list-item]


@contextmanager
def silent_endpoint(port: int) -> Iterator[tuple[str, int]]:
    """A TCP address on loopback whose connects neither succeed nor fail.

    A listener with backlog 0 whose one queue slot is taken: the kernel
    drops further SYNs, so a connect to it waits (until TCP gives up, minutes later).
    """
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.2", port))
        listener.listen(0)
        filler.connect(listener.getsockname())
        yield listener.getsockname()


async def test_happy_eyeballs_moves_past_a_silent_address() -> None:
    listener = await asock.streams.create_tcp_listener(local_host="127.0.0.1")
    async with listener:
        port = listener.extra(SocketAttribute.local_port)
        with silent_endpoint(port):
            previous = asock.set_custom_hostname_resolver(
                FixedResolver("eyeballs.test", ["127.0.0.2", "127.0.0.1"])
            )
            try:
                with anyio.fail_after(5):
                    stream = await asock.streams.connect_tcp(
                        "eyeballs.test", port, happy_eyeballs_delay=0.05
                    )
            finally:
                asock.set_custom_hostname_resolver(previous)
            async with stream:
                assert stream.extra(SocketAttribute.remote_address) == ("127.0.0.1", port)


async def test_cancelled_connect_leaves_nothing_open() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.2", 0))
        port = probe.getsockname()[1]
    with silent_endpoint(port):
        with anyio.move_on_after(0.1) as scope:
            await asock.streams.connect_tcp("127.0.0.2", port)
        assert scope.cancelled_caught


async def test_all_attempts_failing_chains_every_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        previous = asock.set_custom_hostname_resolver(
            FixedResolver("refusing.test", ["127.0.0.1", "127.0.0.2"])
        )
        try:
            with anyio.fail_after(5), pytest.raises(OSError, match="All connection") as info:
                await asock.streams.connect_tcp("refusing.test", port)
        finally:
            asock.set_custom_hostname_resolver(previous)
    group = info.value.__cause__
    assert isinstance(group, ExceptionGroup)
    assert len(group.exceptions) == 2
    assert all(isinstance(exc, ConnectionRefusedError) for exc in group.exceptions)


async def test_unresolvable_host_raises_gaierror() -> None:
    previous = asock.set_custom_hostname_resolver(FixedResolver("known.test", []))
    try:
        with pytest.raises(socket.gaierror):
            await asock.streams.connect_tcp("unknown.test", 80)
    finally:
        asock.set_custom_hostname_resolver(previous)


async def test_listener_per_family_share_one_port() -> None:
    previous = asock.set_custom_hostname_resolver(
        FixedResolver("both.test", ["::1", "127.0.0.1"])
    )
    try:
        listener = await asock.streams.create_tcp_listener(local_host="both.test")
    except OSError as exc:
        pytest.skip(f"IPv6 loopback unavailable: {exc}")
    finally:
        asock.set_custom_hostname_resolver(previous)
    async with listener:
        families = sorted(sub.extra(SocketAttribute.family) for sub in listener.listeners)
        assert families == [socket.AF_INET, socket.AF_INET6]
        ports = {sub.extra(SocketAttribute.local_port) for sub in listener.listeners}
        assert len(ports) == 1


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_tls_handshake_failure_closes_the_connection(ca: trustme.CA) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    tcp = await asock.streams.create_tcp_listener(local_host="127.0.0.1")
    port = tcp.extra(SocketAttribute.local_port)
    listener = TLSListener(tcp, server_context)

    async def handler(stream: TLSStream) -> None:
        await stream.aclose()

    with anyio.fail_after(10):
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handler)
            # tls=True with the system trust store: trustme's CA is unknown.
            with pytest.raises(ssl.SSLCertVerificationError):
                await asock.streams.connect_tcp("localhost", port, tls=True)
            tg.cancel_scope.cancel()


async def test_full_duplex_transfer(tcp_pair: tuple[SocketStream, SocketStream]) -> None:
    """Both ends send 8 MiB at once while reading: no deadlock, nothing lost."""
    client, server = tcp_pair
    payloads = {client: os.urandom(8 * 1024 * 1024), server: os.urandom(8 * 1024 * 1024)}
    received: dict[SocketStream, bytearray] = {client: bytearray(), server: bytearray()}

    async def pump(stream: SocketStream) -> None:
        await stream.send(payloads[stream])
        await stream.send_eof()

    async def drain(stream: SocketStream) -> None:
        while True:
            try:
                received[stream].extend(await stream.receive())
            except EndOfStream:
                return

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for stream in (client, server):
                tg.start_soon(pump, stream)
                tg.start_soon(drain, stream)
    assert received[server] == payloads[client]
    assert received[client] == payloads[server]


async def test_unix_datagram_from_socketpair() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    connected = await asock.streams.ConnectedUNIXDatagramSocket.from_socket(a)
    unconnected = await asock.streams.UNIXDatagramSocket.from_socket(b)
    async with connected, unconnected:
        await connected.send(b"one datagram")
        await connected.send(b"two")
        with anyio.fail_after(5):
            assert (await unconnected.receive())[0] == b"one datagram"
            assert (await unconnected.receive())[0] == b"two"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as inet:
        with pytest.raises(ValueError):
            await asock.streams.UNIXDatagramSocket.from_socket(inet)
