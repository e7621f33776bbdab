"""anyio socket semantics, written once and run against anyio's sockets and asock's.

Every test takes ``impl`` (anyio's own entry points, or asock.streams') and
runs on asyncio, uvloop and trio, so each behaviour is checked six ways; a
test that passes for anyio and fails for asock is a conformance bug.
Behaviours where anyio's own backends disagree with each other (send_eof on
a closed stream, UDP errors on asyncio) are tested for asock alone in
test_streams.py.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio import (
    BrokenResourceError,
    BusyResourceError,
    ClosedResourceError,
    EndOfStream,
    wait_all_tasks_blocked,
)
from anyio.abc import SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.text import TextStream
from anyio.streams.tls import TLSListener, TLSStream
from anyio_conformance import ANYIO, ASOCK, IMPLEMENTATIONS, Implementation, has_ipv6_loopback


@pytest.fixture(params=IMPLEMENTATIONS, ids=str)
def impl(request: pytest.FixtureRequest) -> Implementation:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def asock_fds_checked(impl: Implementation, request: pytest.FixtureRequest) -> None:
    """asock's side must not leak descriptors.

    anyio's own side is not checked: on uvloop its transports keep a
    descriptor of uvloop's open until the loop closes, after the test.
    """
    if impl is ASOCK:
        request.getfixturevalue("no_fd_leak")


def is_uvloop(anyio_backend: Any) -> bool:
    return bool(anyio_backend[1].get("use_uvloop"))


@pytest.fixture
async def tcp_pair(impl: Implementation) -> AsyncIterator[tuple[Any, Any]]:
    """A connected (client, server) pair of TCP streams on loopback."""
    listener = await impl.create_tcp_listener(local_host="127.0.0.1")
    async with listener:
        port = listener.extra(SocketAttribute.local_port)
        client = await impl.connect_tcp("127.0.0.1", port)
        server = await listener.listeners[0].accept()
    async with client, server:
        yield client, server


@pytest.fixture
async def unix_pair(impl: Implementation) -> AsyncIterator[tuple[Any, Any]]:
    """A connected (a, b) pair of UNIX streams made from a socketpair."""
    a, b = socket.socketpair()
    left = await impl.unix_stream_from_socket(a)
    right = await impl.unix_stream_from_socket(b)
    async with left, right:
        yield left, right


def reset(stream: Any) -> None:
    """Make the next close send RST instead of FIN (SO_LINGER with 0 seconds)."""
    raw = stream.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


# -- TCP streams -------------------------------------------------------------


async def test_tcp_roundtrip_and_attributes(tcp_pair: tuple[Any, Any]) -> None:
    client, server = tcp_pair
    await client.send(b"ping")
    assert await server.receive() == b"ping"
    await server.send(b"pong")
    assert await client.receive() == b"pong"

    assert client.extra(SocketAttribute.family) == socket.AF_INET
    assert server.extra(SocketAttribute.family) == socket.AF_INET
    assert client.extra(SocketAttribute.remote_address) == server.extra(
        SocketAttribute.local_address
    )
    assert server.extra(SocketAttribute.remote_address) == client.extra(
        SocketAttribute.local_address
    )
    assert client.extra(SocketAttribute.remote_port) == server.extra(SocketAttribute.local_port)
    assert server.extra(SocketAttribute.remote_port) == client.extra(SocketAttribute.local_port)
    assert client.extra(SocketAttribute.local_address)[0] == "127.0.0.1"
    raw = client.extra(SocketAttribute.raw_socket)
    assert raw.fileno() >= 0
    assert raw.getpeername() == server.extra(SocketAttribute.local_address)


async def test_tcp_nodelay_on_both_ends(tcp_pair: tuple[Any, Any]) -> None:
    for stream in tcp_pair:
        raw = stream.extra(SocketAttribute.raw_socket)
        assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_receive_rejects_max_bytes_below_one(tcp_pair: tuple[Any, Any]) -> None:
    client, server = tcp_pair
    for bad in (0, -1):
        with pytest.raises(ValueError):
            await client.receive(bad)
    await server.send(b"abcdef")
    got = await client.receive(3)
    assert got == b"abc"
    assert await client.receive(3) == b"def"


async def test_end_of_stream_after_send_eof_and_half_close(tcp_pair: tuple[Any, Any]) -> None:
    client, server = tcp_pair
    await client.send(b"request")
    await client.send_eof()
    await client.send_eof()  # idempotent
    received = b""
    with pytest.raises(EndOfStream):
        while True:
            received += await server.receive()
    assert received == b"request"
    with pytest.raises(EndOfStream):
        await server.receive()
    # The other direction still works after the half close.
    await server.send(b"response")
    assert await client.receive() == b"response"


async def test_end_of_stream_when_peer_closes(tcp_pair: tuple[Any, Any]) -> None:
    client, server = tcp_pair
    await server.send(b"last words")
    await server.aclose()
    assert await client.receive() == b"last words"
    with pytest.raises(EndOfStream):
        await client.receive()


async def test_closed_stream_raises_closed_resource_error(tcp_pair: tuple[Any, Any]) -> None:
    client, _ = tcp_pair
    await client.aclose()
    await client.aclose()  # closing twice is harmless
    with pytest.raises(ClosedResourceError):
        await client.receive()
    with pytest.raises(ClosedResourceError):
        await client.send(b"x")


async def test_aclose_wakes_a_blocked_receiver(tcp_pair: tuple[Any, Any]) -> None:
    client, _ = tcp_pair
    errors: list[BaseException] = []

    async def receiver() -> None:
        try:
            await client.receive()
        except ClosedResourceError as exc:
            errors.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(receiver)
            await wait_all_tasks_blocked()
            await client.aclose()
    assert len(errors) == 1


async def test_two_receivers_busy(tcp_pair: tuple[Any, Any]) -> None:
    client, server = tcp_pair
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.receive)
            await wait_all_tasks_blocked()
            with pytest.raises(BusyResourceError):
                await client.receive()
            await server.send(b"wake")  # the first receiver finishes normally


async def test_two_senders_busy(tcp_pair: tuple[Any, Any]) -> None:
    client, _server = tcp_pair
    big = b"x" * (32 * 1024 * 1024)  # more than both kernel buffers hold
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.send, big)
            await wait_all_tasks_blocked()
            with pytest.raises(BusyResourceError):
                await client.send(b"y")
            tg.cancel_scope.cancel()


async def test_reset_peer_breaks_receive_with_oserror_cause(tcp_pair: tuple[Any, Any]) -> None:
    client, server = tcp_pair
    reset(server)
    await server.aclose()
    with anyio.fail_after(5), pytest.raises(BrokenResourceError) as info:
        await client.receive()
    assert isinstance(info.value.__cause__, OSError)


async def test_reset_peer_breaks_send_with_oserror_cause(tcp_pair: tuple[Any, Any]) -> None:
    client, server = tcp_pair
    reset(server)
    await server.aclose()
    # A send may succeed into the kernel buffer before the RST is noticed.
    with anyio.fail_after(5), pytest.raises(BrokenResourceError) as info:
        for _ in range(1000):
            await client.send(b"data")
            await anyio.sleep(0.001)
    assert isinstance(info.value.__cause__, OSError)


async def test_receive_cancelled_while_waiting_loses_nothing(
    tcp_pair: tuple[Any, Any],
) -> None:
    client, server = tcp_pair
    with anyio.move_on_after(0.05) as scope:
        await client.receive()
    assert scope.cancelled_caught
    await server.send(b"after")
    with anyio.fail_after(5):
        assert await client.receive() == b"after"


async def test_receive_is_a_cancellation_point(
    tcp_pair: tuple[Any, Any], impl: Implementation, anyio_backend: Any,
    request: pytest.FixtureRequest,
) -> None:
    if impl is ANYIO and is_uvloop(anyio_backend):
        request.applymarker(pytest.mark.xfail(strict=True, reason=(
            "anyio's asyncio backend on uvloop: resume_reading() delivers buffered data "
            "at once, so receive() returns it without yielding, despite the cancellation"
        )))
    client, server = tcp_pair
    await server.send(b"data")
    await anyio.sleep(0.05)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await client.receive()
        pytest.fail("receive returned inside a cancelled scope")
    assert scope.cancelled_caught
    with anyio.fail_after(5):
        assert await client.receive() == b"data"


async def test_send_is_a_cancellation_point(tcp_pair: tuple[Any, Any]) -> None:
    client, server = tcp_pair
    with anyio.CancelScope() as scope:
        scope.cancel()
        await client.send(b"never")
        pytest.fail("send returned inside a cancelled scope")
    assert scope.cancelled_caught
    await client.send(b"sent")
    await client.send_eof()
    with anyio.fail_after(5):
        assert await server.receive() == b"sent"


async def test_large_transfer_arrives_intact(tcp_pair: tuple[Any, Any]) -> None:
    client, server = tcp_pair
    payload = os.urandom(4 * 1024 * 1024)
    received = bytearray()

    async def read_all() -> None:
        while True:
            try:
                received.extend(await server.receive())
            except EndOfStream:
                return

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_all)
            await client.send(payload)
            await client.send_eof()
    assert bytes(received) == payload


async def test_connect_tcp_refused_raises_oserror(impl: Implementation) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused
        with anyio.fail_after(5), pytest.raises(OSError) as info:
            await impl.connect_tcp("127.0.0.1", port)
    refused = info.value.__cause__ if info.value.__cause__ is not None else info.value
    assert isinstance(refused, ConnectionRefusedError)


async def test_connect_tcp_by_name_and_local_host(impl: Implementation) -> None:
    listener = await impl.create_tcp_listener(local_host="127.0.0.1")
    async with listener:
        port = listener.extra(SocketAttribute.local_port)
        with anyio.fail_after(5):
            async with await impl.connect_tcp(
                "localhost", port, local_host="127.0.0.1"
            ) as client:
                assert client.extra(SocketAttribute.local_address)[0] == "127.0.0.1"
                assert client.extra(SocketAttribute.remote_port) == port
                async with await listener.listeners[0].accept() as server:
                    await client.send(b"hi")
                    assert await server.receive() == b"hi"


async def test_tcp_listener_any_address_shares_one_port(impl: Implementation) -> None:
    listener = await impl.create_tcp_listener(local_port=0)
    async with listener:
        ports = {sub.extra(SocketAttribute.local_port) for sub in listener.listeners}
        assert len(ports) == 1
        port = ports.pop()
        with anyio.fail_after(5):
            async with await impl.connect_tcp("127.0.0.1", port) as client:
                await client.send(b"hello")
                await client.send_eof()


async def test_tcp_listener_family_and_ipv6(impl: Implementation) -> None:
    listener = await impl.create_tcp_listener(local_host="127.0.0.1", family=socket.AF_INET)
    async with listener:
        assert len(listener.listeners) == 1
        assert listener.extra(SocketAttribute.family) == socket.AF_INET
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback in this environment")
    listener = await impl.create_tcp_listener(local_host="::1")
    async with listener:
        assert listener.extra(SocketAttribute.family) == socket.AF_INET6
        port = listener.extra(SocketAttribute.local_port)
        assert listener.extra(SocketAttribute.local_address) == ("::1", port)
        with anyio.fail_after(5):
            async with await impl.connect_tcp("::1", port) as client:
                assert client.extra(SocketAttribute.remote_address) == ("::1", port)


async def test_listener_closed_and_busy(impl: Implementation) -> None:
    multi = await impl.create_tcp_listener(local_host="127.0.0.1")
    listener = multi.listeners[0]
    accepted: list[BaseException] = []

    async def acceptor() -> None:
        try:
            await listener.accept()
        except ClosedResourceError as exc:
            accepted.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(acceptor)
            await wait_all_tasks_blocked()
            with pytest.raises(BusyResourceError):
                await listener.accept()
            await multi.aclose()
    assert len(accepted) == 1
    with pytest.raises(ClosedResourceError):
        await listener.accept()


async def test_listener_serve(impl: Implementation) -> None:
    listener = await impl.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)

    async def upper_echo(stream: Any) -> None:
        async with stream:
            await stream.send((await stream.receive()).upper())

    with anyio.fail_after(5):
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, upper_echo)
            for word in (b"one", b"two", b"three"):
                async with await impl.connect_tcp("127.0.0.1", port) as client:
                    await client.send(word)
                    assert await client.receive() == word.upper()
            tg.cancel_scope.cancel()


async def test_stream_from_socket(impl: Implementation) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    conn, _ = listener.accept()
    listener.close()
    left = await impl.stream_from_socket(client)
    right = await impl.stream_from_socket(conn.detach())  # from a descriptor
    async with left, right:
        assert left.extra(SocketAttribute.remote_address) == right.extra(
            SocketAttribute.local_address
        )
        await left.send(b"adopted")
        with anyio.fail_after(5):
            assert await right.receive() == b"adopted"


async def test_from_socket_rejects_unsuitable_sockets(impl: Implementation) -> None:
    with socket.socket() as unconnected:
        with pytest.raises(ValueError):
            await impl.stream_from_socket(unconnected)
        with pytest.raises(ValueError):
            await impl.tcp_listener_from_socket(unconnected)  # not bound
        with pytest.raises(ValueError):
            await impl.udp_from_socket(unconnected)  # not a datagram socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(ValueError):
            await impl.stream_from_socket(udp)
        with pytest.raises(ValueError):
            await impl.connected_udp_from_socket(udp)  # not connected
    with pytest.raises(TypeError):
        await impl.stream_from_socket("not a socket")


# -- layered streams -----------------------------------------------------------


async def test_tls_listener_and_connect_tcp_tls(
    impl: Implementation, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    listener = await impl.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    tls_listener = TLSListener(listener, server_context)

    async def handler(stream: TLSStream) -> None:
        async with stream:
            request = await stream.receive()
            await stream.send(b"secure " + request)

    with anyio.fail_after(10):
        async with tls_listener, anyio.create_task_group() as tg:
            tg.start_soon(tls_listener.serve, handler)
            client = await impl.connect_tcp(
                "127.0.0.1", port, ssl_context=client_context, tls_hostname="localhost"
            )
            assert isinstance(client, TLSStream)
            async with client:
                await client.send(b"hello")
                assert await client.receive() == b"secure hello"
                assert client.extra(SocketAttribute.remote_port) == port
            tg.cancel_scope.cancel()


async def test_tls_rejects_wrong_hostname(
    impl: Implementation, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    listener = await impl.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    tls_listener = TLSListener(listener, server_context)

    async def handler(stream: TLSStream) -> None:
        await stream.aclose()

    with anyio.fail_after(10):
        async with tls_listener, anyio.create_task_group() as tg:
            tg.start_soon(tls_listener.serve, handler)
            with pytest.raises(ssl.SSLCertVerificationError):
                await impl.connect_tcp(
                    "127.0.0.1", port, ssl_context=client_context, tls_hostname="example.org"
                )
            tg.cancel_scope.cancel()


async def test_tls_over_adopted_streams_with_unwrap(
    unix_pair: tuple[Any, Any], server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    left, right = unix_pair
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            results: dict[str, Any] = {}

            async def serve() -> None:
                results["server"] = await TLSStream.wrap(
                    right, server_side=True, ssl_context=server_context
                )

            tg.start_soon(serve)
            client = await TLSStream.wrap(
                left, hostname="localhost", ssl_context=client_context
            )
        server = results["server"]
        await client.send(b"over tls")
        assert await server.receive() == b"over tls"
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.unwrap)
            transport, leftover = await client.unwrap()
        assert transport is left
        assert leftover == b""
        await left.send(b"plain again")
        assert await right.receive() == b"plain again"


async def test_buffered_and_text_streams(tcp_pair: tuple[Any, Any]) -> None:
    client, server = tcp_pair
    buffered = BufferedByteReceiveStream(server)
    await client.send(b"HEADER: value\r\n\r\nbody!")
    with anyio.fail_after(5):
        assert await buffered.receive_until(b"\r\n\r\n", 1024) == b"HEADER: value"
        assert await buffered.receive_exactly(5) == b"body!"

    text_client, text_server = TextStream(client), TextStream(server)
    word = "žluťoučký kůň"
    encoded = word.encode()
    # Split inside a multi-byte character: the decoder must carry it over.
    await client.send(encoded[:1])
    await client.send(encoded[1:])
    received = ""
    with anyio.fail_after(5):
        while received != word:
            received += await text_server.receive()
        await text_server.send("odpověď")
        assert await text_client.receive() == "odpověď"


# -- UNIX streams ---------------------------------------------------------------


async def test_unix_listener_and_connect(impl: Implementation, tmp_path: Path) -> None:
    path = tmp_path / "sock"
    path.write_bytes(b"")  # a regular file is never removed: bind must fail
    with pytest.raises(OSError):
        await impl.create_unix_listener(path)
    path.unlink()
    stale = await impl.create_unix_listener(path)
    await stale.aclose()  # leaves the socket file behind; the next listener removes it
    listener = await impl.create_unix_listener(path, mode=0o600)
    async with listener:
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert listener.extra(SocketAttribute.family) == socket.AF_UNIX
        assert listener.extra(SocketAttribute.local_address) == str(path)
        with anyio.fail_after(5):
            async with await impl.connect_unix(path) as client, await listener.accept() as server:
                assert client.extra(SocketAttribute.remote_address) == str(path)
                await client.send(b"unix")
                assert await server.receive() == b"unix"
                await client.send_eof()
                with pytest.raises(EndOfStream):
                    await server.receive()


async def test_connect_unix_missing_path(impl: Implementation, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await impl.connect_unix(tmp_path / "nothing-here")


async def test_unix_send_and_receive_fds(unix_pair: tuple[Any, Any], tmp_path: Path) -> None:
    left, right = unix_pair
    path = tmp_path / "file"
    path.write_bytes(b"through the fd")
    with open(path, "rb") as file:
        await left.send_fds(b"fd!", [file])
    with anyio.fail_after(5):
        message, fds = await right.receive_fds(3, 2)
    assert message == b"fd!"
    assert len(fds) == 1
    with os.fdopen(fds[0], "rb") as received:
        assert received.read() == b"through the fd"

    read_end, write_end = os.pipe()
    try:
        await left.send_fds(b"two", [read_end, write_end])
        with anyio.fail_after(5):
            message, fds = await right.receive_fds(10, 4)
        assert message == b"two"
        assert len(fds) == 2
        os.write(fds[1], b"pipe")
        assert os.read(fds[0], 4) == b"pipe"
        for fd in fds:
            os.close(fd)
    finally:
        os.close(read_end)
        os.close(write_end)


async def test_unix_fd_argument_errors_and_eof(unix_pair: tuple[Any, Any]) -> None:
    left, right = unix_pair
    with pytest.raises(ValueError):
        await left.send_fds(b"", [0])
    with pytest.raises(ValueError):
        await left.send_fds(b"x", [])
    with pytest.raises(ValueError):
        await right.receive_fds(-1, 1)
    with pytest.raises(ValueError):
        await right.receive_fds(1, 0)
    await left.send_eof()
    with anyio.fail_after(5), pytest.raises(EndOfStream):
        await right.receive_fds(1, 1)
    await left.aclose()
    with pytest.raises(ClosedResourceError):
        await left.send_fds(b"x", [0])


async def test_unix_reset_peer_breaks_stream(unix_pair: tuple[Any, Any]) -> None:
    left, right = unix_pair
    await left.send(b"unread")  # unread data makes the close an abort
    await right.aclose()
    with anyio.fail_after(5), pytest.raises(BrokenResourceError) as info:
        for _ in range(1000):
            await left.send(b"data")
    assert isinstance(info.value.__cause__, OSError)


# -- UDP ------------------------------------------------------------------------


async def test_udp_roundtrip_and_attributes(impl: Implementation) -> None:
    async with await impl.create_udp_socket(
        local_host="127.0.0.1"
    ) as a, await impl.create_udp_socket(family=socket.AF_INET, local_host="127.0.0.1") as b:
        assert a.extra(SocketAttribute.family) == socket.AF_INET
        b_port = b.extra(SocketAttribute.local_port)
        assert b.extra(SocketAttribute.local_address) == ("127.0.0.1", b_port)
        await a.sendto(b"datagram", "127.0.0.1", b_port)
        with anyio.fail_after(5):
            data, sender = await b.receive()
        assert data == b"datagram"
        assert sender == a.extra(SocketAttribute.local_address)
        await b.send((b"reply", sender))
        with anyio.fail_after(5):
            assert await a.receive() == (b"reply", ("127.0.0.1", b_port))


async def test_udp_needs_family_or_host(impl: Implementation) -> None:
    with pytest.raises(ValueError):
        await impl.create_udp_socket()


async def test_connected_udp(impl: Implementation) -> None:
    async with await impl.create_udp_socket(local_host="127.0.0.1") as server:
        port = server.extra(SocketAttribute.local_port)
        async with await impl.create_connected_udp_socket("127.0.0.1", port) as client:
            assert client.extra(SocketAttribute.remote_address) == ("127.0.0.1", port)
            assert client.extra(SocketAttribute.remote_port) == port
            await client.send(b"connected")
            with anyio.fail_after(5):
                data, sender = await server.receive()
            assert data == b"connected"
            assert sender == client.extra(SocketAttribute.local_address)
            await server.send((b"back", sender))
            with anyio.fail_after(5):
                assert await client.receive() == b"back"


async def test_udp_closed_busy_and_woken(impl: Implementation) -> None:
    udp = await impl.create_udp_socket(local_host="127.0.0.1")
    closed: list[BaseException] = []

    async def receiver() -> None:
        try:
            await udp.receive()
        except ClosedResourceError as exc:
            closed.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(receiver)
            await wait_all_tasks_blocked()
            with pytest.raises(BusyResourceError):
                await udp.receive()
            await udp.aclose()
    assert len(closed) == 1
    with pytest.raises(ClosedResourceError):
        await udp.receive()
    with pytest.raises(ClosedResourceError):
        await udp.send((b"x", ("127.0.0.1", 9)))


async def test_udp_ipv6(impl: Implementation) -> None:
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback in this environment")
    async with await impl.create_udp_socket(local_host="::1") as a, await impl.create_udp_socket(
        family=socket.AF_INET6, local_host="::1"
    ) as b:
        port = b.extra(SocketAttribute.local_port)
        await a.sendto(b"six", "::1", port)
        with anyio.fail_after(5):
            data, sender = await b.receive()
        assert data == b"six"
        assert sender == ("::1", a.extra(SocketAttribute.local_port))


async def test_udp_from_socket(impl: Implementation) -> None:
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw.bind(("127.0.0.1", 0))
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.connect(raw.getsockname())
    raw_address = raw.getsockname()
    peer_address = peer.getsockname()
    async with await impl.udp_from_socket(raw) as udp, await impl.connected_udp_from_socket(
        peer
    ) as connected:
        await connected.send(b"adopted")
        with anyio.fail_after(5):
            assert await udp.receive() == (b"adopted", peer_address)
        assert connected.extra(SocketAttribute.remote_address) == raw_address


# -- more edges -------------------------------------------------------------------


async def test_send_empty_is_a_no_op(tcp_pair: tuple[Any, Any]) -> None:
    client, server = tcp_pair
    await client.send(b"")
    await client.send(b"after")
    with anyio.fail_after(5):
        assert await server.receive() == b"after"


async def test_aclose_wakes_a_blocked_sender(tcp_pair: tuple[Any, Any]) -> None:
    client, _server = tcp_pair
    closed: list[BaseException] = []

    async def sender() -> None:
        try:
            await client.send(b"x" * (32 * 1024 * 1024))
        except ClosedResourceError as exc:
            closed.append(exc)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sender)
            await wait_all_tasks_blocked()
            await client.aclose()
    assert len(closed) == 1


async def test_unix_seqpacket_keeps_message_boundaries(
    impl: Implementation, tmp_path: Path
) -> None:
    path = tmp_path / "seq"
    listener = await impl.create_unix_listener(path, kind=socket.SOCK_SEQPACKET)
    async with listener:
        with anyio.fail_after(5):
            client = await impl.connect_unix(path, socket.SOCK_SEQPACKET)
            async with client, await listener.accept() as server:
                assert client.extra(SocketAttribute.raw_socket).type == socket.SOCK_SEQPACKET
                await client.send(b"first")
                await client.send(b"second")
                assert await server.receive() == b"first"
                assert await server.receive() == b"second"


async def test_unix_abstract_namespace_and_attributes(impl: Implementation) -> None:
    name = f"\0asock-conformance-{os.getpid()}-{impl.name}"
    listener = await impl.create_unix_listener(name)
    async with listener:
        assert listener.extra(SocketAttribute.local_address) == name.encode()
        assert listener.extra(SocketAttribute.local_port, None) is None
        with anyio.fail_after(5):
            async with await impl.connect_unix(name) as client, await listener.accept() as server:
                assert client.extra(SocketAttribute.remote_address) == name.encode()
                assert client.extra(SocketAttribute.remote_port, None) is None
                await server.send(b"abstract")
                assert await client.receive() == b"abstract"


async def test_receive_fds_drops_descriptors_beyond_maxfds(
    unix_pair: tuple[Any, Any],
) -> None:
    left, right = unix_pair
    pipes = [os.pipe() for _ in range(2)]
    try:
        await left.send_fds(b"four", [fd for pipe in pipes for fd in pipe])
        with anyio.fail_after(5):
            message, fds = await right.receive_fds(4, 1)
        assert message == b"four"
        assert len(fds) == 1
        os.close(fds[0])
    finally:
        for pipe in pipes:
            for fd in pipe:
                os.close(fd)


async def test_unconnected_udp_has_no_remote_address(impl: Implementation) -> None:
    async with await impl.create_udp_socket(family=socket.AF_INET, local_port=0) as udp:
        assert udp.extra(SocketAttribute.remote_address, None) is None
        assert udp.extra(SocketAttribute.local_address)[0] == "0.0.0.0"
        assert udp.extra(SocketAttribute.local_port) != 0


async def test_udp_reuse_port(impl: Implementation) -> None:
    async with await impl.create_udp_socket(
        local_host="127.0.0.1", reuse_port=True
    ) as first:
        port = first.extra(SocketAttribute.local_port)
        async with await impl.create_udp_socket(
            local_host="127.0.0.1", local_port=port, reuse_port=True
        ) as second:
            assert second.extra(SocketAttribute.local_port) == port
        with pytest.raises(OSError):
            await impl.create_udp_socket(local_host="127.0.0.1", local_port=port)


async def test_unix_listener_from_socket(impl: Implementation, tmp_path: Path) -> None:
    path = str(tmp_path / "adopted.sock")
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.bind(path)
    raw.listen()
    async with await impl.unix_listener_from_socket(raw) as listener:
        assert listener.extra(SocketAttribute.local_address) == path
        with anyio.fail_after(5):
            async with await impl.connect_unix(path.encode()) as client:
                async with await listener.accept() as server:
                    await server.send(b"adopted listener")
                    assert await client.receive() == b"adopted listener"


# -- UNIX datagrams -------------------------------------------------------------


async def test_unix_datagram_roundtrip(impl: Implementation, tmp_path: Path) -> None:
    a_path, b_path = str(tmp_path / "a.dgram"), str(tmp_path / "b.dgram")
    async with await impl.create_unix_datagram_socket(
        local_path=a_path
    ) as a, await impl.create_unix_datagram_socket(local_path=b_path, local_mode=0o600) as b:
        assert os.stat(b_path).st_mode & 0o777 == 0o600
        assert a.extra(SocketAttribute.family) == socket.AF_UNIX
        assert a.extra(SocketAttribute.local_address) == a_path
        assert a.extra(SocketAttribute.remote_address, None) is None
        await a.sendto(b"to b", b_path)
        with anyio.fail_after(5):
            assert await b.receive() == (b"to b", a_path)
        await b.send((b"to a", a_path))
        with anyio.fail_after(5):
            assert await a.receive() == (b"to a", b_path)


async def test_connected_unix_datagram(impl: Implementation, tmp_path: Path) -> None:
    server_path, client_path = str(tmp_path / "server"), str(tmp_path / "client")
    async with await impl.create_unix_datagram_socket(local_path=server_path) as server:
        with pytest.raises(FileNotFoundError):
            await impl.create_connected_unix_datagram_socket(tmp_path / "missing")
        async with await impl.create_connected_unix_datagram_socket(
            server_path, local_path=client_path
        ) as client:
            assert client.extra(SocketAttribute.remote_address) == server_path
            await client.send(b"hello")
            with anyio.fail_after(5):
                assert await server.receive() == (b"hello", client_path)
            await server.sendto(b"reply", client_path)
            with anyio.fail_after(5):
                assert await client.receive() == b"reply"


async def test_unix_datagram_closed_and_busy(impl: Implementation) -> None:
    dgram = await impl.create_unix_datagram_socket()
    closed: list[BaseException] = []

    async def receiver() -> None:
        try:
            await dgram.receive()
        except ClosedResourceError as exc:
            closed.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(receiver)
            await wait_all_tasks_blocked()
            with pytest.raises(BusyResourceError):
                await dgram.receive()
            await dgram.aclose()
    assert len(closed) == 1
    with pytest.raises(ClosedResourceError):
        await dgram.send((b"x", "/nonexistent"))


async def test_serve_many_concurrent_clients(impl: Implementation) -> None:
    listener = await impl.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)

    async def echo_until_eof(stream: Any) -> None:
        async with stream:
            try:
                while True:
                    await stream.send(await stream.receive())
            except EndOfStream:
                pass

    answers: dict[int, bytes] = {}

    async def client(n: int) -> None:
        async with await impl.connect_tcp("127.0.0.1", port) as stream:
            message = f"client {n} ".encode() * 100
            await stream.send(message)
            await stream.send_eof()
            received = b""
            try:
                while True:
                    received += await stream.receive()
            except EndOfStream:
                answers[n] = received

    with anyio.fail_after(20):
        async with listener, anyio.create_task_group() as server_tg:
            server_tg.start_soon(listener.serve, echo_until_eof)
            async with anyio.create_task_group() as clients:
                for n in range(50):
                    clients.start_soon(client, n)
            server_tg.cancel_scope.cancel()
    assert answers == {n: f"client {n} ".encode() * 100 for n in range(50)}
