"""asock.wrap_tls and asock.TLSSocket against real TLS peers.

The peers: another asock TLSSocket, a blocking stdlib ``ssl.SSLSocket`` in a
thread, anyio's ``TLSStream`` on the same event loop, and a peer the test
drives record by record (an ``ssl.SSLObject`` over an asock socket), which
can send half a record, or its close_notify and plaintext in one write.
Certificates come from trustme. Every failure path is covered: verification
failure, bad arguments (the stdlib's exception types), timeouts, cancellation
mid-record, a sendall cut short, close() while a task waits, two tasks in one
direction, ragged EOFs, and no descriptor leaks.
"""

from __future__ import annotations

import errno
import pickle
import socket as stdlib_socket
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
import trustme
from anyio import wait_all_tasks_blocked
from anyio.streams.tls import TLSStream

import asock

#: The tests whose peer is anyio's TLSStream: on uvloop, anyio's transport
#: leaves a descriptor of uvloop's own open until the loop closes (see
#: test_streams_conformance), so they check asock's sockets themselves there.
ANYIO_PEER_TESTS = {"test_anyio_tlsstream_peer_on_the_same_loop", "test_anyio_tlsstream_client"}


@pytest.fixture(autouse=True)
def fds_checked(request: pytest.FixtureRequest, anyio_backend: Any) -> None:
    """Every test must leave no descriptor open (but see ANYIO_PEER_TESTS)."""
    if request.node.originalname in ANYIO_PEER_TESTS and anyio_backend[1].get("use_uvloop"):
        return
    request.getfixturevalue("no_fd_leak")

GUARD = 10
SHORT = 0.05


def payload(size: int) -> bytes:
    """Bytes whose every prefix is distinct, so a peer can check what it got."""
    block = bytes(range(251))
    return (block * (size // len(block) + 1))[:size]


@asynccontextmanager
async def tls_pair(
    client_context: ssl.SSLContext,
    server_context: ssl.SSLContext,
    **client_kwargs: Any,
) -> AsyncIterator[tuple[asock.TLSSocket, asock.TLSSocket]]:
    """Two asock TLSSockets connected to each other, handshake done."""
    a, b = asock.socketpair()
    async with a, b:
        with anyio.fail_after(GUARD):
            servers: list[asock.TLSSocket] = []
            async with anyio.create_task_group() as tg:

                async def serve() -> None:
                    servers.append(await asock.wrap_tls(b, server_context, server_side=True))

                tg.start_soon(serve)
                client = await asock.wrap_tls(
                    a, client_context, server_hostname="localhost", **client_kwargs
                )
            async with client, servers[0]:
                yield client, servers[0]


@contextmanager
def stdlib_tls_peer(
    context: ssl.SSLContext,
    work: Callable[[ssl.SSLSocket], Any],
    *,
    server_side: bool = True,
) -> Iterator[tuple[asock.socket, list[Any]]]:
    """An asock socket whose peer is a blocking stdlib SSLSocket that ``work`` drives.

    The list gets what ``work`` returned, or the exception it raised.
    """
    ours, theirs = stdlib_socket.socketpair()
    theirs.settimeout(GUARD)
    outcome: list[Any] = []

    def run() -> None:
        try:
            kwargs: dict[str, Any] = {"server_side": server_side}
            if not server_side:
                kwargs["server_hostname"] = "localhost"
            with context.wrap_socket(theirs, **kwargs) as tls:
                outcome.append(work(tls))
        except BaseException as exc:
            outcome.append(exc)
        finally:
            theirs.close()

    thread = threading.Thread(target=run)
    sock = asock.from_stdlib_socket(ours)
    thread.start()
    try:
        with sock:
            yield sock, outcome
    finally:
        thread.join(GUARD)
        assert not thread.is_alive()


async def until(condition: Callable[[], object]) -> None:
    """Wait, within the guard, until ``condition()`` holds."""
    with anyio.fail_after(GUARD):
        while not condition():
            await anyio.sleep(0.001)


async def join(outcome: list[Any]) -> Any:
    with anyio.fail_after(GUARD):
        while not outcome:
            await anyio.sleep(0.005)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


class BioPeer:
    """A TLS peer the test drives by hand: an ``ssl.SSLObject`` over an asock socket.

    It shows the ciphertext it would send, so a test can send half a record,
    or a close_notify and plaintext in one write.
    """

    def __init__(self, sock: asock.socket, context: ssl.SSLContext, server_side: bool) -> None:
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(
            self.incoming,
            self.outgoing,
            server_side=server_side,
            server_hostname=None if server_side else "localhost",
        )

    async def flush(self) -> None:
        data = self.outgoing.read()
        if data:
            await self.sock.sendall(data)

    async def fill(self) -> None:
        data = await self.sock.recv(65536)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    async def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            await self.flush()
            await self.fill()
        await self.flush()

    def encrypt(self, data: bytes) -> bytes:
        self.tls.write(data)
        return self.outgoing.read()

    def close_notify(self) -> bytes:
        with pytest.raises(ssl.SSLWantReadError):
            self.tls.unwrap()
        return self.outgoing.read()

    async def read(self) -> bytes:
        while True:
            try:
                return self.tls.read(65536)
            except ssl.SSLWantReadError:
                await self.fill()


@asynccontextmanager
async def with_bio_server(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> AsyncIterator[tuple[asock.TLSSocket, BioPeer]]:
    """An asock TLS client whose server is a :class:`BioPeer`."""
    a, b = asock.socketpair()
    async with a, b:
        with anyio.fail_after(GUARD):
            peer = BioPeer(b, server_context, server_side=True)
            async with anyio.create_task_group() as tg:
                tg.start_soon(peer.handshake)
                client = await asock.wrap_tls(a, client_context, server_hostname="localhost")
            async with client:
                yield client, peer


# -- handshake, data and the plain calls -----------------------------------


async def test_asock_to_asock(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with tls_pair(client_context, server_context) as (client, server):
        assert isinstance(client, asock.TLSSocket)
        await client.sendall(b"ping")
        assert await server.recv(100) == b"ping"
        assert await server.send(b"pong") == 4
        target = bytearray(10)
        assert await client.recv_into(target) == 4
        assert target[:4] == b"pong"
        data = payload(300_000)
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.sendall, data)
            received = bytearray()
            while len(received) < len(data):
                received += await client.recv(65536)
        assert received == data


async def test_the_plain_calls(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with tls_pair(client_context, server_context) as (client, server):
        assert client.version() == "TLSv1.3"
        name, version, bits = client.cipher()  # type: ignore[misc]
        assert version == "TLSv1.3" and bits >= 128 and name
        cert = client.getpeercert()
        assert ("DNS", "localhost") in cert["subjectAltName"]
        assert isinstance(client.getpeercert(binary_form=True), bytes)
        assert server.getpeercert() is None  # no client certificate asked for
        assert client.server_side is False and server.server_side is True
        assert client.server_hostname == "localhost" and server.server_hostname is None
        assert client.context is client_context and server.context is server_context
        assert client.session_reused is False
        assert client.selected_alpn_protocol() is None
        assert client.pending() == 0
        assert client.fileno() >= 0
        assert client.getsockname() == server.getpeername()
        assert client.gettimeout() is None
        client.settimeout(2.5)
        assert client.gettimeout() == 2.5
        client.settimeout(None)
        assert isinstance(client.get_channel_binding(), bytes | type(None))
        assert server.shared_ciphers()
        assert "TLSSocket" in repr(client)
        await client.do_handshake()  # done already: a no-op
        with pytest.raises(TypeError):
            asock.TLSSocket()
        with pytest.raises(TypeError):
            pickle.dumps(client)


async def test_alpn(client_context: ssl.SSLContext, server_context: ssl.SSLContext) -> None:
    client_context.set_alpn_protocols(["h2", "http/1.1"])
    server_context.set_alpn_protocols(["http/1.1"])
    async with tls_pair(client_context, server_context) as (client, server):
        assert client.selected_alpn_protocol() == "http/1.1"
        assert server.selected_alpn_protocol() == "http/1.1"


async def test_stdlib_server_in_a_thread(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    def echo(tls: ssl.SSLSocket) -> str | None:
        version = tls.version()
        while data := tls.recv(65536):
            tls.sendall(data)
        return version

    with stdlib_tls_peer(server_context, echo) as (sock, outcome):
        tls = await asock.wrap_tls(sock, client_context, server_hostname="localhost")
        for message in (b"one", b"two", payload(50_000)):
            await tls.sendall(message)
            received = bytearray()
            while len(received) < len(message):
                received += await tls.recv(65536)
            assert received == message
        sock.shutdown(stdlib_socket.SHUT_WR)  # the server's recv sees an EOF
        assert await join(outcome) == "TLSv1.3"
        tls.close()


async def test_stdlib_client_in_a_thread(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    def talk(tls: ssl.SSLSocket) -> bytes:
        tls.sendall(b"hello from the stdlib\n")
        return tls.recv(100)

    with stdlib_tls_peer(client_context, talk, server_side=False) as (sock, outcome):
        async with await asock.wrap_tls(sock, server_context, server_side=True) as tls:
            f = tls.makefile("rwb")
            assert await f.readline() == b"hello from the stdlib\n"
            await f.write(b"hello from asock")
            await f.flush()
            assert await join(outcome) == b"hello from asock"
            await f.close()


async def test_anyio_tlsstream_peer_on_the_same_loop(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    ours, theirs = stdlib_socket.socketpair()
    transport = await anyio.abc.SocketStream.from_socket(theirs)
    sock = asock.from_stdlib_socket(ours)
    async with sock, transport, anyio.create_task_group() as tg:
        streams: list[TLSStream] = []

        async def serve() -> None:
            streams.append(
                await TLSStream.wrap(transport, server_side=True, ssl_context=server_context)
            )

        tg.start_soon(serve)
        tls = await asock.wrap_tls(sock, client_context, server_hostname="localhost")
        await until(lambda: streams)
        stream = streams[0]
        await tls.sendall(b"to anyio")
        assert await stream.receive() == b"to anyio"
        await stream.send(b"to asock")
        assert await tls.recv(100) == b"to asock"
        # A clean close_notify exchange both ways.
        outcome: list[Any] = []

        async def anyio_unwrap() -> None:
            outcome.append(await stream.unwrap())

        tg.start_soon(anyio_unwrap)
        plain = await tls.unwrap()
        await until(lambda: outcome)
        _, leftover = outcome[0]
        assert leftover == b""
        await plain.sendall(b"plain now")
        assert await transport.receive() == b"plain now"
    assert sock.fileno() == -1


async def test_anyio_tlsstream_client(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    ours, theirs = stdlib_socket.socketpair()
    transport = await anyio.abc.SocketStream.from_socket(theirs)
    sock = asock.from_stdlib_socket(ours)
    async with sock, transport, anyio.create_task_group() as tg:
        streams: list[TLSStream] = []

        async def connect() -> None:
            streams.append(
                await TLSStream.wrap(transport, hostname="localhost", ssl_context=client_context)
            )

        tg.start_soon(connect)
        tls = await asock.wrap_tls(sock, server_context, server_side=True)
        await until(lambda: streams)
        async with tls:
            text = tls.makefile("rw", encoding="utf-8", newline="\n")
            await streams[0].send("ünïcode line\n".encode())
            assert await text.readline() == "ünïcode line\n"
            await text.write("réponse\n")
            await text.flush()
            assert await streams[0].receive() == "réponse\n".encode()
            await text.close()
    assert sock.fileno() == -1


# -- verification and bad arguments ----------------------------------------


async def test_verification_failure_raises_and_closes_the_socket(
    server_context: ssl.SSLContext,
) -> None:
    stranger = ssl.create_default_context()
    trustme.CA().configure_trust(stranger)  # trusts another authority
    a, b = asock.socketpair()
    async with a, b, anyio.create_task_group() as tg:

        async def serve() -> None:
            with pytest.raises((ssl.SSLError, OSError)):
                await asock.wrap_tls(b, server_context, server_side=True)

        tg.start_soon(serve)
        with pytest.raises(ssl.SSLCertVerificationError) as error:
            await asock.wrap_tls(a, stranger, server_hostname="localhost")
        assert error.value.verify_code == 20  # unable to get local issuer certificate
        assert a.fileno() == -1  # closed, as wrap_socket closes it


async def test_wrong_host_name_fails_verification(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    a, b = asock.socketpair()
    async with a, b, anyio.create_task_group() as tg:

        async def serve() -> None:
            with pytest.raises((ssl.SSLError, OSError)):
                await asock.wrap_tls(b, server_context, server_side=True)

        tg.start_soon(serve)
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            await asock.wrap_tls(a, client_context, server_hostname="example.org")


async def test_bad_arguments(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    with stdlib_socket.socket() as plain, pytest.raises(TypeError):
        await asock.wrap_tls(plain, client_context, server_hostname="x")  # type: ignore[arg-type]
    a, b = asock.socketpair()
    async with a, b:
        cases: list[tuple[type[Exception], dict[str, Any], Any]] = [
            (TypeError, {"server_hostname": "x"}, "not a context"),
            (TypeError, {"server_hostname": 1}, client_context),
            (ValueError, {"server_hostname": ""}, client_context),
            (ValueError, {}, client_context),  # check_hostname requires server_hostname
            (ValueError, {"server_side": True, "server_hostname": "x"}, server_context),
            (ValueError, {"server_side": True, "session": object()}, server_context),
        ]
        for error, kwargs, context in cases:
            with pytest.raises(error):
                await asock.wrap_tls(a, context, **kwargs)
            assert a.fileno() >= 0  # refused before anything happened
        # The same arguments fail the same way with the stdlib.
        for error, kwargs, context in cases[2:]:
            with stdlib_socket.socket() as plain, pytest.raises(error):
                context.wrap_socket(plain, **kwargs)
    a, b = asock.socketpair()
    async with a, b:
        a.settimeout(0.0)
        with pytest.raises(ValueError, match="non-blocking"):
            await asock.wrap_tls(a, client_context, server_hostname="localhost")
        assert a.fileno() >= 0
        plain, other = stdlib_socket.socketpair()
        with plain, other:
            plain.setblocking(False)
            with pytest.raises(ValueError, match="non-blocking"):
                client_context.wrap_socket(plain, server_hostname="localhost")
    with asock.socket(type=asock.SOCK_DGRAM) as datagram:
        with pytest.raises(NotImplementedError):
            await asock.wrap_tls(datagram, client_context, server_hostname="x")
        with stdlib_socket.socket(type=stdlib_socket.SOCK_DGRAM) as plain:
            with pytest.raises(NotImplementedError):
                client_context.wrap_socket(plain, server_hostname="x")


async def test_bad_call_arguments(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with tls_pair(client_context, server_context) as (client, _):
        with pytest.raises(ValueError):
            await client.recv(-1)
        with pytest.raises(TypeError):
            await client.recv("10")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="non-zero flags"):
            await client.recv(10, stdlib_socket.MSG_PEEK)
        with pytest.raises(TypeError):
            await client.recv_into(b"read-only")
        with pytest.raises(ValueError):
            await client.recv_into(bytearray(4), 10)
        with pytest.raises(ValueError):
            await client.recv_into(bytearray(4), -1)
        with pytest.raises(TypeError):
            await client.sendall("text")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await client.send(12)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            client.settimeout(-1)
        with pytest.raises(TypeError):
            client.settimeout("1")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            client.get_channel_binding("no-such-binding")
        with pytest.raises(ValueError):
            client.makefile("x")
        assert await client.recv(0) == b""
        await client.sendall(b"")
        assert await client.send(b"") == 0


# -- unwrap ----------------------------------------------------------------


async def test_unwrap_both_ways_then_plaintext(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with tls_pair(client_context, server_context) as (client, server):
        await client.sendall(b"last secret")
        assert await server.recv(100) == b"last secret"
        plains: list[asock.socket] = []
        async with anyio.create_task_group() as tg:

            async def server_unwrap() -> None:
                plains.append(await server.unwrap())

            tg.start_soon(server_unwrap)
            plain_client = await client.unwrap()
        plain_server = plains[0]
        await plain_server.sendall(b"in the clear")
        assert await plain_client.recv(100) == b"in the clear"
        await plain_client.sendall(b"and back")
        assert await plain_server.recv(100) == b"and back"
        # The TLSSockets are detached: their calls fail, close() leaves the socket open.
        assert client.fileno() == -1
        with pytest.raises(OSError) as error:
            await client.sendall(b"x")
        assert error.value.errno == errno.EBADF
        with pytest.raises(OSError):
            client.getpeername()
        client.close()
        assert plain_client.fileno() >= 0


async def test_unwrap_with_a_stdlib_peer_that_sends_plaintext_right_after(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    def unwrap_and_talk(tls: ssl.SSLSocket) -> bytes:
        assert tls.recv(100) == b"stop tls"
        plain = tls.unwrap()
        plain.sendall(b"PLAINTEXT RIGHT AFTER")
        return plain.recv(100)

    with stdlib_tls_peer(server_context, unwrap_and_talk) as (sock, outcome):
        tls = await asock.wrap_tls(sock, client_context, server_hostname="localhost")
        await tls.sendall(b"stop tls")
        plain = await tls.unwrap()
        assert plain is sock
        assert await plain.recv(100) == b"PLAINTEXT RIGHT AFTER"
        await plain.sendall(b"got it")
        assert await join(outcome) == b"got it"


@pytest.mark.parametrize("recv_first", [False, True])
async def test_unwrap_reads_no_byte_past_the_peers_close_notify(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext, recv_first: bool
) -> None:
    async with with_bio_server(client_context, server_context) as (tls, peer):
        # Data, the close_notify and plaintext arrive in one write.
        wire = peer.encrypt(b"last words") + peer.close_notify() + b"PLAINTEXT"
        await peer.sock.sendall(wire)
        assert await tls.recv(100) == b"last words"
        if recv_first:
            assert await tls.recv(100) == b""  # the close_notify
            assert await tls.recv(100) == b""
        plain = await tls.unwrap()
        assert await plain.recv(100) == b"PLAINTEXT"
        # The peer gets our close_notify, then plaintext.
        while True:
            try:
                peer.tls.unwrap()
                break
            except ssl.SSLWantReadError:
                await peer.fill()
        await plain.sendall(b"ours")
        assert await peer.sock.recv(100) == b"ours"


async def test_unwrap_keeps_plaintext_that_came_before_the_close_notify(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with with_bio_server(client_context, server_context) as (tls, peer):
        await peer.sock.sendall(peer.encrypt(b"unread") + peer.close_notify())
        plain = await tls.unwrap()
        assert tls.pending() == 6
        assert await tls.recv(100) == b"unread"
        assert await tls.recv(100) == b""
        assert plain.fileno() >= 0


async def test_unwrap_timeout_then_again(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with with_bio_server(client_context, server_context) as (tls, peer):
        tls.settimeout(SHORT)
        with pytest.raises(TimeoutError):
            await tls.unwrap()  # the peer's close_notify does not come
        await peer.sock.sendall(peer.close_notify() + b"after")
        tls.settimeout(GUARD)
        plain = await tls.unwrap()
        assert await plain.recv(100) == b"after"


async def test_unwrap_when_the_peer_just_closes(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with with_bio_server(client_context, server_context) as (tls, peer):
        peer.sock.shutdown(stdlib_socket.SHUT_WR)
        with pytest.raises(ssl.SSLEOFError):
            await tls.unwrap()


# -- lossless receiving ----------------------------------------------------


async def test_recv_cancelled_mid_record_loses_nothing(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with with_bio_server(client_context, server_context) as (tls, peer):
        data = payload(6000)
        record = peer.encrypt(data)
        half = len(record) // 2
        await peer.sock.sendall(record[:half])
        with anyio.move_on_after(SHORT) as scope:
            await tls.recv(65536)
        assert scope.cancelled_caught
        assert tls.pending() == 0
        await peer.sock.sendall(record[half:])
        assert await tls.recv(65536) == data


async def test_recv_timeouts_at_every_kind_of_cut_lose_nothing(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with with_bio_server(client_context, server_context) as (tls, peer):
        tls.settimeout(SHORT)
        first, second = peer.encrypt(b"first record"), peer.encrypt(b"second record")
        wire = first + second
        # In the first header, in the first body, in the second header, in the second body.
        cuts = [3, len(first) - 2, len(first) + 4, len(wire) - 1, len(wire)]
        sent = 0
        for cut in cuts:
            await peer.sock.sendall(wire[sent:cut])
            sent = cut
            if cut == len(first) + 4:
                assert await tls.recv(100) == b"first record"
            if cut == len(wire):
                assert await tls.recv(100) == b"second record"
            else:
                with pytest.raises(TimeoutError):
                    await tls.recv(100)
        assert tls.pending() == 0


async def test_pending_counts_decrypted_bytes(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with tls_pair(client_context, server_context) as (client, server):
        await server.sendall(b"0123456789")
        assert await client.recv(1) == b"0"
        assert client.pending() == 9
        assert await client.recv(100) == b"123456789"
        assert client.pending() == 0


async def test_non_blocking_mode(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with tls_pair(client_context, server_context) as (client, server):
        client.settimeout(0.0)
        with pytest.raises(BlockingIOError):
            await client.recv(100)
        await server.sendall(b"now")
        with anyio.fail_after(GUARD):
            while True:
                try:
                    assert await client.recv(100) == b"now"
                    break
                except BlockingIOError:
                    await anyio.sleep(0.001)


# -- resumable sending -----------------------------------------------------


async def test_sendall_timeout_carries_bytes_sent_and_the_rest_follows(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with tls_pair(client_context, server_context) as (client, server):
        data = payload(8_000_000)
        client.settimeout(0.2)
        with pytest.raises(TimeoutError) as error:
            await client.sendall(data)  # nobody reads
        sent = error.value.bytes_sent  # type: ignore[attr-defined]
        assert 0 < sent < len(data)
        client.settimeout(None)
        received = bytearray()
        async with anyio.create_task_group() as tg:

            async def read_all() -> None:
                while len(received) < len(data):
                    received.extend(await server.recv(65536))

            tg.start_soon(read_all)
            await client.sendall(memoryview(data)[sent:])
        assert received == data


async def test_cancelled_sendall_carries_bytes_sent_and_the_rest_follows(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with tls_pair(client_context, server_context) as (client, server):
        data = payload(8_000_000)
        sent = -1
        with anyio.move_on_after(0.2):
            try:
                await client.sendall(data)
            except anyio.get_cancelled_exc_class() as exc:
                sent = exc.bytes_sent  # type: ignore[attr-defined]
                raise
        assert 0 < sent < len(data)
        received = bytearray()
        async with anyio.create_task_group() as tg:

            async def read_all() -> None:
                while len(received) < len(data):
                    received.extend(await server.recv(65536))

            tg.start_soon(read_all)
            done = 0
            while sent + done < len(data):  # send() takes one record at a time
                done += await client.send(memoryview(data)[sent + done :])
        assert received == data


async def test_a_send_that_needs_reads_first(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    # A TLSSocket whose handshake has not run: SSLObject.write wants to read
    # first, as during a renegotiation. A receiving task runs at the same time,
    # so the send waits for its reads; the records it reads stay for recv.
    a, b = asock.socketpair()
    async with a, b, anyio.create_task_group() as tg:
        client = asock.TLSSocket._create(a, client_context, False, "localhost", True, None)
        servers: list[asock.TLSSocket] = []

        async def serve() -> None:
            server = await asock.wrap_tls(b, server_context, server_side=True)
            servers.append(server)
            assert await server.recv(100) == b"early"
            await server.sendall(b"welcome")

        tg.start_soon(serve)
        received: list[bytes] = []

        async def receive() -> None:
            received.append(await client.recv(100))

        tg.start_soon(receive)
        await wait_all_tasks_blocked()
        await client.sendall(b"early")
        with anyio.fail_after(GUARD):
            while not received:
                await anyio.sleep(0.001)
        assert received == [b"welcome"]
        assert client.version() == "TLSv1.3"
        servers[0].close()
        client.close()


# -- closing and two tasks -------------------------------------------------


async def test_close_from_another_task_wakes_recv_with_ebadf(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with tls_pair(client_context, server_context) as (client, _):
        outcome: list[BaseException] = []
        async with anyio.create_task_group() as tg:

            async def receive() -> None:
                try:
                    await client.recv(100)
                except OSError as exc:
                    outcome.append(exc)

            tg.start_soon(receive)
            await wait_all_tasks_blocked()
            client.close()
        assert isinstance(outcome[0], OSError)
        assert outcome[0].errno == errno.EBADF
        assert client.fileno() == -1
        with pytest.raises(OSError) as error:
            await client.recv(100)
        assert error.value.errno == errno.EBADF
        with pytest.raises(OSError):
            await client.sendall(b"x")
        client.close()  # twice is harmless


async def test_close_from_another_task_wakes_sendall(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with tls_pair(client_context, server_context) as (client, _):
        outcome: list[BaseException] = []
        async with anyio.create_task_group() as tg:

            async def send() -> None:
                try:
                    await client.sendall(payload(8_000_000))
                except OSError as exc:
                    outcome.append(exc)

            tg.start_soon(send)
            await wait_all_tasks_blocked()
            client.close()
        assert outcome[0].errno == errno.EBADF
        assert outcome[0].bytes_sent > 0  # type: ignore[attr-defined]


async def test_one_receiver_and_one_sender_at_a_time(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with tls_pair(client_context, server_context) as (client, server):
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.recv, 100)
            await wait_all_tasks_blocked()
            with pytest.raises(RuntimeError, match="receiving"):
                await client.recv(100)
            with pytest.raises(RuntimeError, match="using"):
                await client.unwrap()
            f = client.makefile("rb")
            with pytest.raises(RuntimeError, match="receiving"):
                await f.read(1)
            # Receiving and sending at once is fine.
            await client.sendall(b"meanwhile")
            assert await server.recv(100) == b"meanwhile"
            tg.start_soon(client.sendall, payload(8_000_000))
            await wait_all_tasks_blocked()
            with pytest.raises(RuntimeError, match="sending"):
                await client.sendall(b"x")
            with pytest.raises(RuntimeError, match="sending"):
                await client.send(b"x")
            tg.cancel_scope.cancel()
            await f.close()


# -- the end of the stream ---------------------------------------------------


async def test_peer_close_notify_ends_the_stream(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with with_bio_server(client_context, server_context) as (tls, peer):
        await peer.sock.sendall(peer.encrypt(b"bye") + peer.close_notify())
        assert await tls.recv(100) == b"bye"
        assert await tls.recv(100) == b""
        assert await tls.recv(100) == b""


@pytest.mark.parametrize("suppress", [True, False])
async def test_ragged_eof(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext, suppress: bool
) -> None:
    a, b = asock.socketpair()
    async with a, b:
        peer = BioPeer(b, server_context, server_side=True)
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.handshake)
            tls = await asock.wrap_tls(
                a, client_context, server_hostname="localhost", suppress_ragged_eofs=suppress
            )
        async with tls:
            await b.sendall(peer.encrypt(b"cut"))
            b.shutdown(stdlib_socket.SHUT_WR)  # no close_notify
            assert await tls.recv(100) == b"cut"
            if suppress:
                assert await tls.recv(100) == b""
            else:
                with pytest.raises(ssl.SSLEOFError):
                    await tls.recv(100)
                with pytest.raises(ssl.SSLEOFError):
                    await tls.recv(100)


async def test_corrupt_record_raises_ssl_error_after_the_good_data(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    async with with_bio_server(client_context, server_context) as (tls, peer):
        good = peer.encrypt(b"good")
        bad = bytearray(peer.encrypt(b"bad!"))
        bad[-1] ^= 0xFF
        await peer.sock.sendall(good + bytes(bad))
        assert await tls.recv(100) == b"good"
        with pytest.raises(ssl.SSLError):
            await tls.recv(100)


# -- the handshake's deadline and failures ---------------------------------


async def test_handshake_timeout_closes_the_socket(client_context: ssl.SSLContext) -> None:
    a, b = asock.socketpair()
    async with a, b:
        a.settimeout(SHORT)
        with pytest.raises(TimeoutError):
            await asock.wrap_tls(a, client_context, server_hostname="localhost")
        assert a.fileno() == -1


async def test_handshake_cancelled_closes_the_socket(client_context: ssl.SSLContext) -> None:
    a, b = asock.socketpair()
    async with a, b:
        with anyio.move_on_after(SHORT) as scope:
            await asock.wrap_tls(a, client_context, server_hostname="localhost")
        assert scope.cancelled_caught
        assert a.fileno() == -1


async def test_handshake_with_a_peer_that_hangs_up(client_context: ssl.SSLContext) -> None:
    a, b = asock.socketpair()
    async with a, b:
        b.close()
        with pytest.raises((ssl.SSLError, OSError)):
            await asock.wrap_tls(a, client_context, server_hostname="localhost")


async def test_handshake_deadline_is_one_for_the_whole_handshake(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    # The server's flight comes in two halves, 0.15 s apart: each wait is
    # shorter than the 0.2 s timeout, the handshake as a whole is not.
    a, b = asock.socketpair()
    async with a, b, anyio.create_task_group() as tg:
        peer = BioPeer(b, server_context, server_side=True)

        async def slow_server() -> None:
            await peer.fill()  # the ClientHello
            with pytest.raises(ssl.SSLWantReadError):
                peer.tls.do_handshake()
            flight = peer.outgoing.read()
            await anyio.sleep(0.15)
            await b.sendall(flight[:100])
            await anyio.sleep(0.15)
            await b.sendall(flight[100:])

        tg.start_soon(slow_server)
        a.settimeout(0.2)
        with pytest.raises(TimeoutError):
            await asock.wrap_tls(a, client_context, server_hostname="localhost")
        assert a.fileno() == -1
        tg.cancel_scope.cancel()


async def test_session_resumption(
    client_context: ssl.SSLContext, server_context: ssl.SSLContext
) -> None:
    client_context.maximum_version = ssl.TLSVersion.TLSv1_2
    async with tls_pair(client_context, server_context) as (client, _):
        session = client.session
        assert session is not None
    async with tls_pair(client_context, server_context, session=session) as (client, server):
        assert client.session_reused
        assert server.session_reused
