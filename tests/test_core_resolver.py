"""The custom hostname resolver and Happy Eyeballs in ``asock.create_connection``.

A resolver installed with ``asock.set_custom_hostname_resolver`` maps test
names to loopback addresses (and, where a test needs it, to different ports
per address), so every race below runs against real loopback listeners:
refused ports (bound, not listening), and "blackholes" (listeners whose accept
queue is full, so the kernel drops new SYNs and the connect stays pending).
"""

from __future__ import annotations

import errno
import socket as stdlib_socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import anyio
import pytest
from core_helpers import Ticker

import asock

GUARD = 10
V4 = stdlib_socket.AF_INET
V6 = stdlib_socket.AF_INET6


class TableResolver(asock.HostnameResolver):
    """Answers from a table: name -> [(family, address, port or None)].

    A port of None means "the port asked for". Every question is recorded.
    """

    def __init__(self, table: dict[str, list[tuple[int, str, int | None]]]) -> None:
        self.table = table
        self.asked: list[tuple[Any, ...]] = []
        self.hang = anyio.Event()  # names mapped to "hang" wait on this forever

    async def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        self.asked.append((name, port, family, type))
        if name == "hang":
            await self.hang.wait()
        if name not in self.table:
            raise stdlib_socket.gaierror(stdlib_socket.EAI_NONAME, "Name or service not known")
        infos = []
        for fam, address, fixed_port in self.table[name]:
            if family not in (0, fam):
                continue
            real_port = fixed_port if fixed_port is not None else int(port or 0)
            sockaddr = (address, real_port) if fam == V4 else (address, real_port, 0, 0)
            infos.append((fam, type or stdlib_socket.SOCK_STREAM, 6, "", sockaddr))
        if not infos:
            raise stdlib_socket.gaierror(stdlib_socket.EAI_ADDRFAMILY, "no address of that family")
        return infos

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
        for name, entries in self.table.items():
            if any(address == sockaddr[0] for _, address, _ in entries):
                return name, str(sockaddr[1])
        raise stdlib_socket.gaierror(stdlib_socket.EAI_NONAME, "Name or service not known")


LOCALHOST_BOTH = {"localhost": [(V6, "::1", None), (V4, "127.0.0.1", None)]}


@contextmanager
def held_on_both(listen_v4: bool = False) -> Iterator[tuple[stdlib_socket.socket, int]]:
    """A port bound on both 127.0.0.1 and ::1, and the IPv4 socket holding it.

    The ::1 socket never listens, so it refuses; the IPv4 one listens if
    ``listen_v4``. Bound sockets hold the port, so nothing else takes it. The
    port is an ephemeral IPv4 one, which may still be taken on ::1 (an earlier
    test's connection in TIME_WAIT): another is tried then.
    """
    for _ in range(50):
        with ExitStack() as stack:
            if listen_v4:
                v4 = stack.enter_context(stdlib_socket.create_server(("127.0.0.1", 0)))
            else:
                v4 = stack.enter_context(stdlib_socket.socket(V4))
                v4.bind(("127.0.0.1", 0))
            port = v4.getsockname()[1]
            v6 = stack.enter_context(stdlib_socket.socket(V6))
            try:
                v6.bind(("::1", port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            yield v4, port
            return
    raise AssertionError("no port free on both 127.0.0.1 and ::1 in 50 tries")


@contextmanager
def refused_port() -> Iterator[int]:
    """A port that refuses connections on both ::1 and 127.0.0.1."""
    with held_on_both() as (_, port):
        yield port


@contextmanager
def blackhole(family: int) -> Iterator[int]:
    """A loopback listener whose accept queue is full: connects stay pending."""
    host = "::1" if family == V6 else "127.0.0.1"
    with stdlib_socket.socket(family) as listener:
        listener.bind((host, 0))
        listener.listen(0)
        # With backlog 0 Linux queues one connection; it is never accepted.
        with stdlib_socket.create_connection(listener.getsockname()[:2]):
            yield listener.getsockname()[1]


def pending_connections(listener: stdlib_socket.socket) -> int:
    count = 0
    listener.setblocking(False)
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


async def test_set_custom_resolver_returns_previous_and_answers_lookups() -> None:
    resolver = TableResolver(LOCALHOST_BOTH)
    assert asock.set_custom_hostname_resolver(resolver) is None
    try:
        infos = await asock.getaddrinfo("localhost", 80, type=asock.SOCK_STREAM)
        assert [info[4] for info in infos] == [("::1", 80, 0, 0), ("127.0.0.1", 80)]
        assert await asock.getnameinfo(("127.0.0.1", 80), 0) == ("localhost", "80")
        with pytest.raises(asock.gaierror):
            await asock.getaddrinfo("unknown.test", 80)
    finally:
        assert asock.set_custom_hostname_resolver(None) is resolver
    assert asock.set_custom_hostname_resolver(None) is None


async def test_numeric_hosts_never_reach_the_resolver() -> None:
    resolver = TableResolver({})
    asock.set_custom_hostname_resolver(resolver)
    infos = await asock.getaddrinfo("127.0.0.1", 80)
    assert infos and all(info[4] == ("127.0.0.1", 80) for info in infos)
    await asock.getaddrinfo("::1", 80)
    assert resolver.asked == []


@pytest.mark.parametrize("family", [V4, V6], ids=["AF_INET", "AF_INET6"])
async def test_socket_methods_resolve_through_the_custom_resolver(
    family: int, no_fd_leak: None
) -> None:
    resolver = TableResolver(LOCALHOST_BOTH)
    asock.set_custom_hostname_resolver(resolver)
    host = "::1" if family == V6 else "127.0.0.1"
    with stdlib_socket.create_server((host, 0), family=family) as listener, anyio.fail_after(GUARD):
        port = listener.getsockname()[1]
        async with asock.socket(family) as sock:
            await sock.bind(("localhost", 0))
            assert sock.getsockname()[0] == host
            await sock.connect(("localhost", port))
            assert sock.getpeername()[:2] == (host, port)
        # Each lookup asked only for the socket's own family.
        assert {asked[2] for asked in resolver.asked} == {family}
        async with asock.socket(family, asock.SOCK_DGRAM) as udp:
            await udp.bind(("localhost", 0))
            await udp.sendto(b"to myself", ("localhost", udp.getsockname()[1]))
            data, sender = await udp.recvfrom(100)
            assert data == b"to myself"
            assert sender == udp.getsockname()


async def test_happy_eyeballs_falls_back_to_ipv4_when_ipv6_is_refused(no_fd_leak: None) -> None:
    asock.set_custom_hostname_resolver(TableResolver(LOCALHOST_BOTH))
    # The IPv4 listener takes a port; the same port on ::1 is held, refusing.
    with held_on_both(listen_v4=True) as (listener, port):
        with anyio.fail_after(GUARD):
            sock = await asock.create_connection(("localhost", port), happy_eyeballs_delay=None)
            with sock:
                assert sock.family == V4
                assert sock.getpeername() == ("127.0.0.1", port)
                conn, _ = listener.accept()
                with conn:
                    await sock.sendall(b"over v4")
                    assert conn.recv(10) == b"over v4"


async def test_all_refused_raises_the_first_error(no_fd_leak: None) -> None:
    asock.set_custom_hostname_resolver(TableResolver(LOCALHOST_BOTH))
    with refused_port() as port, anyio.fail_after(GUARD):
        with pytest.raises(ConnectionRefusedError) as info:
            await asock.create_connection(("localhost", port))
        assert info.value.errno == errno.ECONNREFUSED
        with pytest.raises(ExceptionGroup) as group:
            await asock.create_connection(("localhost", port), all_errors=True)
        errors = group.value.exceptions
        assert len(errors) == 2
        assert all(isinstance(exc, ConnectionRefusedError) for exc in errors)


async def test_unknown_name_raises_gaierror(no_fd_leak: None) -> None:
    asock.set_custom_hostname_resolver(TableResolver({}))
    with anyio.fail_after(GUARD), pytest.raises(asock.gaierror):
        await asock.create_connection(("nowhere.test", 80))


async def test_happy_eyeballs_delay_starts_the_next_attempt(no_fd_leak: None) -> None:
    with blackhole(V6) as dead_port, stdlib_socket.create_server(("127.0.0.1", 0)) as live:
        live_port = live.getsockname()[1]
        asock.set_custom_hostname_resolver(
            TableResolver({"racy": [(V6, "::1", dead_port), (V4, "127.0.0.1", live_port)]})
        )
        with anyio.fail_after(GUARD):
            sock = await asock.create_connection(("racy", 0), happy_eyeballs_delay=0.05)
        with sock:
            assert sock.getpeername() == ("127.0.0.1", live_port)
            # The blackholed attempt was cancelled and its socket closed
            # (no_fd_leak checks); exactly one connection reached the live server.
            assert pending_connections(live) == 1


async def test_without_delay_the_next_attempt_waits_for_failure(no_fd_leak: None) -> None:
    with blackhole(V6) as dead_port, stdlib_socket.create_server(("127.0.0.1", 0)) as live:
        live_port = live.getsockname()[1]
        asock.set_custom_hostname_resolver(
            TableResolver({"racy": [(V6, "::1", dead_port), (V4, "127.0.0.1", live_port)]})
        )
        with anyio.fail_after(GUARD):
            with anyio.move_on_after(0.3) as scope:
                await asock.create_connection(("racy", 0), happy_eyeballs_delay=None)
            assert scope.cancelled_caught
            assert pending_connections(live) == 0
            # A per-attempt timeout makes the first attempt fail, which starts the next.
            sock = await asock.create_connection(
                ("racy", 0), timeout=0.1, happy_eyeballs_delay=None
            )
        with sock:
            assert sock.getpeername() == ("127.0.0.1", live_port)
            assert sock.gettimeout() == 0.1


async def test_every_attempt_timing_out_raises_timeout_error(no_fd_leak: None) -> None:
    with blackhole(V6) as port6, blackhole(V4) as port4:
        asock.set_custom_hostname_resolver(
            TableResolver({"dead": [(V6, "::1", port6), (V4, "127.0.0.1", port4)]})
        )
        with anyio.fail_after(GUARD):
            with pytest.raises(TimeoutError):
                await asock.create_connection(("dead", 0), timeout=0.1, happy_eyeballs_delay=0.02)
            with pytest.raises(ExceptionGroup) as group:
                await asock.create_connection(
                    ("dead", 0), timeout=0.1, happy_eyeballs_delay=0.02, all_errors=True
                )
        assert [type(exc) for exc in group.value.exceptions] == [TimeoutError, TimeoutError]


async def test_create_connection_options(no_fd_leak: None) -> None:
    with stdlib_socket.create_server(("127.0.0.1", 0)) as listener, anyio.fail_after(GUARD):
        address = listener.getsockname()
        async with await asock.create_connection(address, timeout=1.5) as sock:
            assert sock.gettimeout() == 1.5
        async with await asock.create_connection(address, source_address=("127.0.0.1", 0)) as sock:
            assert sock.getsockname()[0] == "127.0.0.1"
            assert sock.gettimeout() == stdlib_socket.getdefaulttimeout()
        assert pending_connections(listener) == 2


async def test_resolution_is_cancellable(no_fd_leak: None) -> None:
    resolver = TableResolver({})
    asock.set_custom_hostname_resolver(resolver)
    with anyio.fail_after(GUARD):
        with anyio.move_on_after(0.05) as scope:
            await asock.create_connection(("hang", 80))
        assert scope.cancelled_caught
        async with asock.socket() as sock:
            with anyio.move_on_after(0.05) as scope:
                await sock.connect(("hang", 80))
            assert scope.cancelled_caught
            # The socket is untouched and still usable.
            with stdlib_socket.create_server(("127.0.0.1", 0)) as listener:
                await sock.connect(listener.getsockname())
        with anyio.move_on_after(0.05) as scope:
            await asock.getaddrinfo("hang", 80)
        assert scope.cancelled_caught
    assert [asked[0] for asked in resolver.asked] == ["hang", "hang", "hang"]


async def test_system_resolver_runs_off_the_loop_and_is_cancellable() -> None:
    # No custom resolver: the lookup runs in a worker thread. The event loop
    # keeps running meanwhile, and a cancelled lookup returns at once.
    ticker = Ticker()

    with anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker.run)
            infos = await asock.getaddrinfo("localhost", 80, type=asock.SOCK_STREAM)
            tg.cancel_scope.cancel()
    assert infos and all(info[4][1] == 80 for info in infos)
    assert ticker.ticks > 0
    with anyio.CancelScope() as scope:
        scope.cancel()
        await asock.getaddrinfo("localhost", 80)
    assert scope.cancelled_caught


@pytest.mark.parametrize(
    "source_address", ["127.0.0.1", ("127.0.0.1",), ("127.0.0.1", "0")], ids=repr
)
async def test_bad_source_address_raises_the_stdlib_error(
    source_address: Any, no_fd_leak: None
) -> None:
    # Not an OSError: no further address is tried and nothing is wrapped in
    # an ExceptionGroup, exactly as socket.create_connection lets it through.
    asock.set_custom_hostname_resolver(TableResolver(LOCALHOST_BOTH))
    with stdlib_socket.create_server(("127.0.0.1", 0)) as listener, anyio.fail_after(GUARD):
        address = listener.getsockname()
        with pytest.raises(Exception) as expected:
            stdlib_socket.create_connection(address, source_address=source_address)
        with pytest.raises(Exception) as got:
            await asock.create_connection(address, source_address=source_address)
        assert type(got.value) is type(expected.value)
        assert str(got.value) == str(expected.value)
        with pytest.raises(type(expected.value)):
            await asock.create_connection(("localhost", address[1]), source_address=source_address)
        assert pending_connections(listener) == 0


@pytest.mark.parametrize(("family", "host"), [(V4, "127.0.0.1"), (V6, "::1")], ids=["v4", "v6"])
async def test_create_server_resolves_names_through_the_custom_resolver(
    family: int, host: str, no_fd_leak: None
) -> None:
    resolver = TableResolver(LOCALHOST_BOTH)
    asock.set_custom_hostname_resolver(resolver)
    with anyio.fail_after(GUARD):
        async with await asock.create_server(("localhost", 0), family=family) as listener:
            assert listener.getsockname()[0] == host
            assert (resolver.asked[-1][0], resolver.asked[-1][2]) == ("localhost", family)
            async with await asock.create_connection(listener.getsockname()[:2]) as client:
                conn, _ = await listener.accept()
                with conn:
                    await client.sendall(b"named")
                    assert await conn.recv(10) == b"named"
        # As in the stdlib, which looks the name up inside bind(): a plain
        # OSError that says which address it was binding.
        with pytest.raises(OSError) as info:
            await asock.create_server(("nowhere.test", 0), family=family)
        assert type(info.value) is OSError
        assert info.value.errno == stdlib_socket.EAI_NONAME
        assert "while attempting to bind on address ('nowhere.test', 0)" in str(info.value)
        assert resolver.asked[-1][0] == "nowhere.test"


async def test_errors_are_reported_in_address_order(no_fd_leak: None) -> None:
    # The first address times out after the second was refused: the stdlib,
    # which tries them one by one, reports the first address's error first.
    with blackhole(V6) as dead_port, refused_port() as closed_port:
        asock.set_custom_hostname_resolver(
            TableResolver({"mixed": [(V6, "::1", dead_port), (V4, "127.0.0.1", closed_port)]})
        )
        with anyio.fail_after(GUARD):
            with pytest.raises(TimeoutError):
                await asock.create_connection(("mixed", 0), timeout=0.1, happy_eyeballs_delay=0.01)
            with pytest.raises(ExceptionGroup) as group:
                await asock.create_connection(
                    ("mixed", 0), timeout=0.1, happy_eyeballs_delay=0.01, all_errors=True
                )
        kinds = [type(exc) for exc in group.value.exceptions]
        assert kinds == [TimeoutError, ConnectionRefusedError]


async def test_address_families_alternate(no_fd_leak: None) -> None:
    # Resolved as [v6 refused, v6 blackholed, v4 refused]; RFC 8305 order is
    # v6, v4, v6, which shows in the (address-ordered) errors.
    with blackhole(V6) as dead_port, refused_port() as closed_port:
        asock.set_custom_hostname_resolver(
            TableResolver(
                {
                    "many": [
                        (V6, "::1", closed_port),
                        (V6, "::1", dead_port),
                        (V4, "127.0.0.1", closed_port),
                    ]
                }
            )
        )
        with anyio.fail_after(GUARD), pytest.raises(ExceptionGroup) as group:
            await asock.create_connection(
                ("many", 0), timeout=0.1, happy_eyeballs_delay=0.01, all_errors=True
            )
        kinds = [type(exc) for exc in group.value.exceptions]
        assert kinds == [ConnectionRefusedError, ConnectionRefusedError, TimeoutError]
