"""trio.socket's extras on asock.socket, and how host names are encoded.

``is_readable``, ``did_shutdown_SHUT_WR``, ``timeout``, the module functions
``wait_readable``/``wait_writable`` and ``set_custom_socket_factory``, each on
asyncio, uvloop and trio, over real socketpairs and loopback connections.
"""

from __future__ import annotations

import errno
import socket as stdlib_socket
import threading
from typing import Any

import anyio
import pytest
from core_helpers import fill_send_buffer

import asock
import asock_sync

V4 = stdlib_socket.AF_INET


async def _eventually(predicate: Any, timeout: float = 2.0) -> None:
    """Poll ``predicate()`` until it is true (the kernel may take a moment)."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.005)


def _listener() -> asock.socket:
    server = asock.socket(V4, stdlib_socket.SOCK_STREAM)
    server.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
    server._sock.bind(("127.0.0.1", 0))
    server.listen()
    return server


# -- is_readable ------------------------------------------------------------


async def test_is_readable_follows_data_and_eof(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with a, b:
        assert a.is_readable() is False
        await b.sendall(b"xy")
        assert a.is_readable() is True
        assert await a.recv(1) == b"x"
        assert a.is_readable() is True  # one byte left
        assert await a.recv(1) == b"y"
        assert a.is_readable() is False
        b.close()
        assert a.is_readable() is True  # EOF is waiting
        assert await a.recv(1) == b""


async def test_is_readable_on_listening_socket(no_fd_leak: None) -> None:
    with _listener() as server:
        assert server.is_readable() is False
        with asock.socket(V4, stdlib_socket.SOCK_STREAM) as client:
            await client.connect(server.getsockname())
            await _eventually(server.is_readable)
            conn, _ = await server.accept()
            conn.close()
            assert server.is_readable() is False


async def test_is_readable_on_closed_socket_raises_ebadf() -> None:
    a, b = asock.socketpair()
    b.close()
    a.close()
    with pytest.raises(OSError) as info:
        a.is_readable()
    assert info.value.errno == errno.EBADF


# -- did_shutdown_SHUT_WR ---------------------------------------------------


@pytest.mark.parametrize("how", [stdlib_socket.SHUT_WR, stdlib_socket.SHUT_RDWR])
async def test_did_shutdown_SHUT_WR_set_by_write_shutdowns(how: int, no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with a, b:
        assert a.did_shutdown_SHUT_WR is False
        a.shutdown(how)
        assert a.did_shutdown_SHUT_WR is True
        assert b.did_shutdown_SHUT_WR is False
        assert await b.recv(1) == b""  # the shutdown really happened


async def test_did_shutdown_SHUT_WR_not_set_by_read_shutdown_or_failure(
    no_fd_leak: None,
) -> None:
    a, b = asock.socketpair()
    with a, b:
        a.shutdown(stdlib_socket.SHUT_RD)
        assert a.did_shutdown_SHUT_WR is False
        with pytest.raises(OSError) as info:
            a.shutdown(7)
        assert info.value.errno == errno.EINVAL
        assert a.did_shutdown_SHUT_WR is False
    with asock.socket(V4, stdlib_socket.SOCK_STREAM) as unconnected:
        with pytest.raises(OSError) as info:
            unconnected.shutdown(stdlib_socket.SHUT_WR)
        assert info.value.errno == errno.ENOTCONN
        assert unconnected.did_shutdown_SHUT_WR is False
    with pytest.raises(OSError) as info:
        unconnected.shutdown(stdlib_socket.SHUT_WR)
    assert info.value.errno == errno.EBADF
    assert unconnected.did_shutdown_SHUT_WR is False


async def test_did_shutdown_SHUT_WR_is_per_object_and_read_only(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with a, b:
        a.shutdown(stdlib_socket.SHUT_WR)
        with a.dup() as copy:
            assert copy.did_shutdown_SHUT_WR is False  # as in trio: a new object
        with pytest.raises(AttributeError):
            a.did_shutdown_SHUT_WR = False  # type: ignore[misc]
        assert a.did_shutdown_SHUT_WR is True


def test_sync_front_has_no_did_shutdown_SHUT_WR(no_fd_leak_sync: None) -> None:
    a, b = asock_sync.socketpair()
    with a, b:
        a.shutdown(stdlib_socket.SHUT_WR)
        assert not hasattr(a, "did_shutdown_SHUT_WR")
        assert b.recv(1) == b""


# -- timeout ----------------------------------------------------------------


def test_timeout_property_is_gettimeout(no_fd_leak_sync: None) -> None:
    with asock.socket() as sock:
        assert sock.timeout is None
        sock.settimeout(2.5)
        assert sock.timeout == sock.gettimeout() == 2.5
        sock.setblocking(False)
        assert sock.timeout == 0.0
        sock.setblocking(True)
        assert sock.timeout is None
        with pytest.raises(AttributeError):
            sock.timeout = 1.0  # type: ignore[misc]
        assert sock.timeout is None


# -- wait_readable / wait_writable ------------------------------------------


async def test_wait_readable_returns_at_once_when_data_is_waiting(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with a, b:
        await b.sendall(b"x")
        with anyio.fail_after(1):
            await asock.wait_readable(a)
        assert await a.recv(1) == b"x"  # nothing was read


async def test_wait_readable_returns_at_once_after_a_missed_edge(no_fd_leak: None) -> None:
    """Data that arrived while nobody waited (its edge already gone) is seen."""
    a, b = asock.socketpair()
    with a, b:
        async with anyio.create_task_group() as tg:
            got: list[bytes] = []

            async def read_one() -> None:
                got.append(await a.recv(1))  # waits: the driver registers the socket

            tg.start_soon(read_one)
            await anyio.sleep(0.02)
            await b.sendall(b"xy")
        assert got == [b"x"]
        await anyio.sleep(0.02)  # the loop has run and dispatched the edge
        with anyio.fail_after(1):
            await asock.wait_readable(a)
        assert await a.recv(1) == b"y"


async def test_wait_readable_waits_for_data_without_reading(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with a, b:
        woken = anyio.Event()

        async def waiter() -> None:
            await asock.wait_readable(a)
            woken.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.05)
            assert not woken.is_set()
            await b.sendall(b"data")
            with anyio.fail_after(1):
                await woken.wait()
        assert await a.recv(10) == b"data"


async def test_wait_readable_ignores_the_socket_timeout(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with a, b:
        for timeout in (0.0, 0.01):
            a.settimeout(timeout)
            async with anyio.create_task_group() as tg:
                tg.start_soon(asock.wait_readable, a)
                await anyio.sleep(0.05)
                await b.sendall(b"x")
            assert await a.recv(1) == b"x"


async def test_several_tasks_wait_readable_at_once(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with a, b:
        woken = 0

        async def waiter() -> None:
            nonlocal woken
            await asock.wait_readable(a)
            woken += 1

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(waiter)
            await anyio.sleep(0.05)
            assert woken == 0
            await b.sendall(b"x")
        assert woken == 4


async def test_close_wakes_every_waiter_with_ebadf(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with b:
        await fill_send_buffer(a)
        errors: list[int | None] = []

        async def wait(fn: Any) -> None:
            with pytest.raises(OSError) as info:
                await fn(a)
            errors.append(info.value.errno)

        with anyio.fail_after(2):
            async with anyio.create_task_group() as tg:
                for fn in (asock.wait_readable, asock.wait_readable, asock.wait_writable,
                           asock.wait_writable):
                    tg.start_soon(wait, fn)
                await anyio.sleep(0.05)
                assert errors == []
                a.close()
        assert errors == [errno.EBADF] * 4


async def test_close_from_another_thread_wakes_waiter_with_ebadf(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with b:
        with anyio.fail_after(2):
            async with anyio.create_task_group() as tg:
                raised: list[OSError] = []

                async def waiter() -> None:
                    try:
                        await asock.wait_readable(a)
                    except OSError as exc:
                        raised.append(exc)

                tg.start_soon(waiter)
                await anyio.sleep(0.05)
                await anyio.to_thread.run_sync(a.close)
        assert [exc.errno for exc in raised] == [errno.EBADF]


async def test_wait_on_closed_socket_raises_ebadf_at_once() -> None:
    a, b = asock.socketpair()
    a.close()
    b.close()
    for fn in (asock.wait_readable, asock.wait_writable):
        with pytest.raises(OSError) as info:
            await fn(a)
        assert info.value.errno == errno.EBADF


async def test_wait_functions_reject_other_objects(no_fd_leak: None) -> None:
    plain_a, plain_b = stdlib_socket.socketpair()
    sync_a, sync_b = asock_sync.socketpair()
    with plain_a, plain_b, sync_a, sync_b:
        for fn in (asock.wait_readable, asock.wait_writable):
            for other in (plain_a, sync_a, 3, None):
                with pytest.raises(TypeError, match="expected an asock socket"):
                    await fn(other)  # type: ignore[arg-type]


async def test_wait_writable_returns_at_once_and_waits_when_full(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with a, b:
        with anyio.fail_after(1):
            await asock.wait_writable(a)
        sent = await fill_send_buffer(a)
        woken = anyio.Event()

        async def waiter() -> None:
            await asock.wait_writable(a)
            woken.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.05)
            assert not woken.is_set()
            received = 0
            while not woken.is_set():
                received += len(await b.recv(65536))
                await anyio.sleep(0.001)
        assert 0 < received <= sent


async def test_wait_readable_on_listener_returns_when_a_connection_is_pending(
    no_fd_leak: None,
) -> None:
    with _listener() as server, asock.socket(V4, stdlib_socket.SOCK_STREAM) as client:
        async with anyio.create_task_group() as tg:
            woken = anyio.Event()

            async def waiter() -> None:
                await asock.wait_readable(server)
                woken.set()

            tg.start_soon(waiter)
            await anyio.sleep(0.05)
            assert not woken.is_set()
            await client.connect(server.getsockname())
            with anyio.fail_after(2):
                await woken.wait()
        conn, _ = await server.accept()
        conn.close()


async def test_cancelled_wait_leaves_the_socket_usable(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with a, b:
        with anyio.move_on_after(0.05) as scope:
            await asock.wait_readable(a)
        assert scope.cancelled_caught
        async with anyio.create_task_group() as tg:
            tg.start_soon(asock.wait_readable, a)
            await anyio.sleep(0.02)
            await b.sendall(b"x")
        assert await a.recv(1) == b"x"


async def test_cancelled_waiter_does_not_strand_the_others(no_fd_leak: None) -> None:
    """On trio the first waiter leads and the others follow; cancelling it wakes them."""
    a, b = asock.socketpair()
    with a, b:
        woken = 0

        async def waiter() -> None:
            nonlocal woken
            await asock.wait_readable(a)
            woken += 1

        async with anyio.create_task_group() as tg:
            first = anyio.CancelScope()
            tg.start_soon(_in_scope, first, waiter)
            await anyio.sleep(0.02)  # it waits first: on trio, the leader
            tg.start_soon(waiter)
            tg.start_soon(waiter)
            await anyio.sleep(0.02)
            first.cancel()
            await anyio.sleep(0.05)
            assert woken == 0  # a wake-up without data is not readiness
            await b.sendall(b"x")
        assert woken == 2


async def _in_scope(scope: anyio.CancelScope, fn: Any) -> None:
    with scope:
        await fn()


# -- set_custom_socket_factory ----------------------------------------------


class RecordingFactory(asock.SocketFactory):
    """Hands out real asock sockets and records what it was asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, int, int]] = []

    def socket(
        self, family: int = V4, type: int = stdlib_socket.SOCK_STREAM, proto: int = 0
    ) -> Any:
        self.asked.append((family, type, proto))
        return asock.from_stdlib_socket(stdlib_socket.socket(family, type, proto))


async def test_socket_factory_answers_asock_socket(no_fd_leak: None) -> None:
    factory = RecordingFactory()
    assert asock.set_custom_socket_factory(factory) is None
    try:
        unix_dgram = (stdlib_socket.AF_UNIX, stdlib_socket.SOCK_DGRAM)
        with asock.socket() as s1, asock.socket(*unix_dgram) as s2:
            assert isinstance(s1, asock.socket)
            assert s2.type == stdlib_socket.SOCK_DGRAM
        with asock.socket(type=stdlib_socket.SOCK_DGRAM, proto=0):
            pass
        assert factory.asked == [
            (V4, stdlib_socket.SOCK_STREAM, 0),
            (stdlib_socket.AF_UNIX, stdlib_socket.SOCK_DGRAM, 0),
            (V4, stdlib_socket.SOCK_DGRAM, 0),
        ]
    finally:
        assert asock.set_custom_socket_factory(None) is factory
    with asock.socket():
        pass
    assert len(factory.asked) == 3
    assert asock.set_custom_socket_factory(None) is None


async def test_socket_factory_returns_whatever_the_factory_returns() -> None:
    sentinel = object()

    class Fake(asock.SocketFactory):
        def socket(self, family: int = V4, type: int = 1, proto: int = 0) -> Any:
            return sentinel

    class Failing(asock.SocketFactory):
        def socket(self, family: int = V4, type: int = 1, proto: int = 0) -> Any:
            raise OSError(errno.EMFILE, "no more")

    asock.set_custom_socket_factory(Fake())
    try:
        assert asock.socket() is sentinel
        assert asock.set_custom_socket_factory(Failing()).__class__ is Fake
        with pytest.raises(OSError, match="no more"):
            asock.socket()
    finally:
        asock.set_custom_socket_factory(None)


async def test_socket_factory_leaves_other_constructors_alone(no_fd_leak: None) -> None:
    factory = RecordingFactory()

    class Sub(asock.socket):
        __slots__ = ()

    asock.set_custom_socket_factory(factory)
    try:
        with Sub() as sub:
            assert type(sub) is Sub
        with stdlib_socket.socket() as plain:
            with asock.socket(fileno=plain.fileno()) as adopted:
                assert type(adopted) is asock.socket
                adopted.detach()
        a, b = asock.socketpair()
        with a, b, a.dup():
            pass
        with pytest.raises(TypeError):
            asock.socket(V4, stdlib_socket.SOCK_STREAM, 0, None, "extra")  # type: ignore[call-arg]
        assert factory.asked == []
        assert isinstance(asock.socket, type)
        assert issubclass(Sub, asock.socket)
        assert asock.SocketType is asock.socket
    finally:
        asock.set_custom_socket_factory(None)


async def test_socket_factory_is_used_by_create_connection(no_fd_leak: None) -> None:
    factory = RecordingFactory()
    with _listener() as server:
        asock.set_custom_socket_factory(factory)
        try:
            with await asock.create_connection(server.getsockname()) as conn:
                assert isinstance(conn, asock.socket)
        finally:
            asock.set_custom_socket_factory(None)
        assert [asked[:2] for asked in factory.asked] == [(V4, stdlib_socket.SOCK_STREAM)]
        accepted, _ = await server.accept()
        accepted.close()


async def test_socket_factory_is_per_event_loop(
    anyio_backend: tuple[str, dict[str, Any]], no_fd_leak: None
) -> None:
    factory = RecordingFactory()
    asock.set_custom_socket_factory(factory)
    try:
        backend, options = anyio_backend

        async def in_another_loop() -> tuple[bool, Any]:
            with asock.socket() as sock:
                return type(sock) is asock.socket, asock.set_custom_socket_factory(None)

        def run_loop() -> tuple[bool, Any]:
            return anyio.run(in_another_loop, backend=backend, backend_options=options)

        def no_loop() -> bool:
            with asock.socket() as sock:
                return type(sock) is asock.socket

        # Another event loop (in a thread) has no factory, nor has a thread without one.
        assert await anyio.to_thread.run_sync(run_loop) == (True, None)
        assert await anyio.to_thread.run_sync(no_loop)
        assert factory.asked == []
        with asock.socket():
            pass
        assert len(factory.asked) == 1
    finally:
        asock.set_custom_socket_factory(None)


def test_set_custom_socket_factory_outside_an_event_loop_raises() -> None:
    errors: list[BaseException] = []

    def call() -> None:
        try:
            asock.set_custom_socket_factory(None)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)


def test_socket_factory_is_abstract() -> None:
    with pytest.raises(TypeError):
        asock.SocketFactory()  # type: ignore[abstract]


# -- host-name encoding (docs/migrate-from-trio-socket.md) ------------------


class RecordingResolver(asock.HostnameResolver):
    """Resolves every name to 127.0.0.1 and records the hosts it was given."""

    def __init__(self) -> None:
        self.hosts: list[Any] = []

    async def getaddrinfo(
        self, host: bytes | str | None, port: bytes | str | int | None,
        family: int = 0, type: int = 0, proto: int = 0, flags: int = 0,
    ) -> list[Any]:
        self.hosts.append(host)
        return [(V4, type or stdlib_socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port or 0)))]

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
        raise stdlib_socket.gaierror(stdlib_socket.EAI_NONAME, "Name or service not known")


#: U+200D ZERO WIDTH JOINER: IDNA 2003 (the stdlib's codec) drops it, so the
#: system resolver is asked for "localhost"; IDNA 2008 (trio) rejects the name.
JOINED_LOCALHOST = "local\u200dhost"


async def test_system_resolver_gets_the_stdlib_idna_2003_form(no_fd_leak: None) -> None:
    assert JOINED_LOCALHOST.encode("idna") == b"localhost"
    idna = pytest.importorskip("idna")
    with pytest.raises(idna.IDNAError):
        idna.encode(JOINED_LOCALHOST, uts46=True)
    tcp = stdlib_socket.SOCK_STREAM
    expected = stdlib_socket.getaddrinfo("localhost", 80, V4, tcp)
    assert stdlib_socket.getaddrinfo(JOINED_LOCALHOST, 80, V4, tcp) == expected
    assert await asock.getaddrinfo(JOINED_LOCALHOST, 80, V4, tcp) == expected
    # A host name inside an address is encoded the same way.
    with _listener() as server, asock.socket(V4, stdlib_socket.SOCK_STREAM) as client:
        await client.connect((JOINED_LOCALHOST, server.getsockname()[1]))
        assert client.getpeername() == server.getsockname()
        conn, _ = await server.accept()
        conn.close()


async def test_custom_resolver_gets_the_host_as_given(no_fd_leak: None) -> None:
    resolver = RecordingResolver()
    asock.set_custom_hostname_resolver(resolver)
    try:
        await asock.getaddrinfo("faß.de", 80)
        await asock.getaddrinfo(b"xn--fa-hia.de", 80)
        with _listener() as server, asock.socket(V4, stdlib_socket.SOCK_STREAM) as client:
            await client.connect(("faß.de", server.getsockname()[1]))
            conn, _ = await server.accept()
            conn.close()
        with asock.socket(V4, stdlib_socket.SOCK_DGRAM) as udp:
            await udp.sendto(b"x", ("faß.de", 9))
    finally:
        asock.set_custom_hostname_resolver(None)
    # Not IDNA 2003 (b"fass.de", the stdlib's), not IDNA 2008 (b"xn--fa-hia.de", trio's).
    assert resolver.hosts == ["faß.de", b"xn--fa-hia.de", "faß.de", "faß.de"]


async def test_host_the_stdlib_cannot_encode_raises_unicode_error() -> None:
    too_long = "faß" + "x" * 70 + ".de"  # one label over 63 characters
    with pytest.raises(UnicodeError):
        stdlib_socket.getaddrinfo(too_long, 80)
    with pytest.raises(UnicodeError):
        await asock.getaddrinfo(too_long, 80)
    resolver = RecordingResolver()
    asock.set_custom_hostname_resolver(resolver)
    try:
        with pytest.raises(UnicodeError):
            await asock.getaddrinfo(too_long, 80)
    finally:
        asock.set_custom_hostname_resolver(None)
    assert resolver.hosts == []  # the stdlib's encoding comes first, as in trio
