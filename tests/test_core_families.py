"""Address families and socket kinds, descriptor passing, conversions between
the fronts, dup, repr and sendfile, against real sockets on every backend.
"""

from __future__ import annotations

import errno
import io
import os
import socket as stdlib_socket
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

import asock
import asock_sync

GUARD = 10
V4 = stdlib_socket.AF_INET
V6 = stdlib_socket.AF_INET6
#: Linux's IPV6_FLOWINFO_SEND (include/uapi/linux/in6.h): send the flow label
#: given in the destination address; the kernel then reports it in getpeername.
IPV6_FLOWINFO_SEND = 33

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="Linux-only feature (abstract names, autobind)"
)


async def roundtrip(a: asock.socket, b: asock.socket, data: bytes = b"hello") -> None:
    await a.sendall(data)
    received = b""
    while len(received) < len(data):
        received += await b.recv(len(data))
    assert received == data


# -- AF_INET / AF_INET6 ---------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "host"), [(V4, "127.0.0.1"), (V6, "::1")], ids=["AF_INET", "AF_INET6"]
)
async def test_ip_stream_and_datagram(family: int, host: str, no_fd_leak: None) -> None:
    with anyio.fail_after(GUARD):
        async with await asock.create_server((host, 0), family=family) as listener:
            async with asock.socket(family) as client:
                await client.connect(listener.getsockname())
                conn, address = await listener.accept()
                async with conn:
                    assert address == client.getsockname()
                    assert conn.family == family and conn.type == asock.SOCK_STREAM
                    await roundtrip(client, conn)
                    await roundtrip(conn, client, b"back")
        async with (
            asock.socket(family, asock.SOCK_DGRAM) as one,
            asock.socket(family, asock.SOCK_DGRAM) as two,
        ):
            await one.bind((host, 0))
            await two.bind((host, 0))
            await one.sendto(b"dgram", two.getsockname())
            data, sender = await two.recvfrom(100)
            assert (data, sender) == (b"dgram", one.getsockname())
            buffer = bytearray(10)
            await two.sendto(b"reply", sender)
            assert await one.recvfrom_into(buffer) == (5, two.getsockname())
            assert buffer[:5] == b"reply"


async def test_ipv6_addresses_keep_flowinfo_and_scope_id(no_fd_leak: None) -> None:
    with anyio.fail_after(GUARD):
        async with asock.socket(V6, asock.SOCK_DGRAM) as udp:
            await udp.bind(("::1", 0, 0, 0))
            name = udp.getsockname()
            assert len(name) == 4 and name[0] == "::1"
            await udp.sendto(b"x", name)
            data, sender = await udp.recvfrom(10)
            assert (data, sender) == (b"x", name)
        async with await asock.create_server(("::1", 0), family=V6) as listener:
            port = listener.getsockname()[1]
            # The flow label given in a 4-tuple reaches the kernel whether the
            # host is numeric or a name asock resolves first.
            asock.set_custom_hostname_resolver(_Ipv6Localhost())
            for host in ("::1", "localhost"):
                async with asock.socket(V6) as sock:
                    sock.setsockopt(asock.IPPROTO_IPV6, IPV6_FLOWINFO_SEND, 1)
                    await sock.connect((host, port, 0x12345, 0))
                    assert sock.getpeername() == ("::1", port, 0x12345, 0)
                    conn, _ = await listener.accept()
                    conn.close()
                reference = stdlib_socket.socket(V6)
                async with asock.socket(V6) as sock:
                    with pytest.raises(OverflowError) as expected:
                        reference.connect(("::1", port, 2**20, 0))
                    with pytest.raises(OverflowError) as got:
                        await sock.connect((host, port, 2**20, 0))
                    assert str(got.value) == str(expected.value)
                reference.close()


class _Ipv6Localhost(asock.HostnameResolver):
    """``localhost`` is ``::1`` (and ``127.0.0.1`` for AF_INET lookups)."""

    async def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        if host != "localhost":
            raise stdlib_socket.gaierror(stdlib_socket.EAI_NONAME, "Name or service not known")
        kind = type or stdlib_socket.SOCK_STREAM
        infos: list[Any] = []
        if family in (0, V6):
            infos.append((V6, kind, 0, "", ("::1", int(port or 0), 0, 0)))
        if family in (0, V4):
            infos.append((V4, kind, 0, "", ("127.0.0.1", int(port or 0))))
        return infos

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
        return "localhost", str(sockaddr[1])


async def test_dual_stack_server_accepts_both_families(no_fd_leak: None) -> None:
    if not stdlib_socket.has_dualstack_ipv6():
        pytest.skip("this host has no dual-stack IPv6 sockets")
    with anyio.fail_after(GUARD):
        async with await asock.create_server(("", 0), family=V6, dualstack_ipv6=True) as listener:
            port = listener.getsockname()[1]
            assert listener.getsockopt(asock.IPPROTO_IPV6, asock.IPV6_V6ONLY) == 0
            for family, host, seen_as in (
                (V4, "127.0.0.1", "::ffff:127.0.0.1"),
                (V6, "::1", "::1"),
            ):
                async with asock.socket(family) as client:
                    await client.connect((host, port))
                    conn, address = await listener.accept()
                    async with conn:
                        assert address[0] == seen_as
                        await roundtrip(client, conn)


# -- AF_UNIX ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["str", "bytes", "pathlike"])
async def test_unix_stream_paths(kind: str, tmp_path: Path, no_fd_leak: None) -> None:
    path = tmp_path / "stream.sock"
    address: Any = {"str": str(path), "bytes": os.fsencode(path), "pathlike": path}[kind]
    with anyio.fail_after(GUARD):
        async with asock.socket(asock.AF_UNIX) as listener:
            await listener.bind(address)
            listener.listen()
            assert listener.getsockname() == str(path)
            async with asock.socket(asock.AF_UNIX) as client:
                await client.connect(address)
                conn, peer_address = await listener.accept()
                async with conn:
                    assert peer_address == ""  # the client is unbound
                    assert client.getpeername() == str(path)
                    await roundtrip(client, conn)


async def test_unix_datagram_path_like_addresses(tmp_path: Path, no_fd_leak: None) -> None:
    # asock takes path-like AF_UNIX addresses in sendto and sendmsg too
    # (Python 3.11's socket module takes only str and bytes).
    path = tmp_path / "dgram-pathlike.sock"
    with anyio.fail_after(GUARD):
        async with (
            asock.socket(asock.AF_UNIX, asock.SOCK_DGRAM) as receiver,
            asock.socket(asock.AF_UNIX, asock.SOCK_DGRAM) as sender,
        ):
            await receiver.bind(path)
            assert await sender.sendto(b"one", path) == 3
            assert await sender.sendto(b"two", 0, path) == 3
            assert await sender.sendmsg([b"three"], [], 0, path) == 5
            assert [await receiver.recv(16) for _ in range(3)] == [b"one", b"two", b"three"]


async def test_unix_datagram_paths(tmp_path: Path, no_fd_leak: None) -> None:
    with anyio.fail_after(GUARD):
        async with (
            asock.socket(asock.AF_UNIX, asock.SOCK_DGRAM) as one,
            asock.socket(asock.AF_UNIX, asock.SOCK_DGRAM) as two,
        ):
            await one.bind(str(tmp_path / "one"))
            await two.bind(os.fsencode(tmp_path / "two"))
            await one.sendto(b"to two", str(tmp_path / "two"))
            assert await two.recvfrom(100) == (b"to two", str(tmp_path / "one"))
            await two.sendto(b"to one", os.fsencode(tmp_path / "one"))
            assert await one.recvfrom(100) == (b"to one", str(tmp_path / "two"))


@linux_only
async def test_unix_abstract_names_and_autobind(no_fd_leak: None) -> None:
    name = f"\0asock-test-{uuid.uuid4().hex}"
    with anyio.fail_after(GUARD):
        async with asock.socket(asock.AF_UNIX) as listener:
            await listener.bind(name)
            listener.listen()
            assert listener.getsockname() == name.encode()
            async with asock.socket(asock.AF_UNIX) as client:
                await client.bind("")  # autobind: the kernel picks an abstract name
                auto = client.getsockname()
                assert isinstance(auto, bytes) and auto.startswith(b"\0") and len(auto) > 1
                await client.connect(name)
                conn, peer_address = await listener.accept()
                async with conn:
                    assert peer_address == auto
                    await roundtrip(conn, client)
        async with (
            asock.socket(asock.AF_UNIX, asock.SOCK_DGRAM) as server,
            asock.socket(asock.AF_UNIX, asock.SOCK_DGRAM) as sender,
        ):
            await server.bind(name.encode())
            await sender.bind("")
            await sender.sendto(b"abstract", name)
            assert await server.recvfrom(100) == (b"abstract", sender.getsockname())


@pytest.mark.parametrize("kind", [asock.SOCK_STREAM, asock.SOCK_DGRAM, asock.SOCK_SEQPACKET])
async def test_unix_socketpair_kinds(kind: int, no_fd_leak: None) -> None:
    a, b = asock.socketpair(asock.AF_UNIX, kind)
    with a, b, anyio.fail_after(GUARD):
        assert (a.family, a.type) == (asock.AF_UNIX, kind)
        await roundtrip(a, b)
        if kind != asock.SOCK_STREAM:
            # Message boundaries are kept.
            await a.send(b"one")
            await a.send(b"two")
            assert [await b.recv(10), await b.recv(10)] == [b"one", b"two"]


async def test_scm_rights_passes_working_descriptors(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    read_fd, write_fd = os.pipe()
    received: list[int] = []
    try:
        with a, b, anyio.fail_after(GUARD):
            assert await asock.send_fds(a, [b"two fds"], [read_fd, write_fd]) == 7
            msg, received, flags, _ = await asock.recv_fds(b, 100, 4)
            assert (msg, flags, len(received)) == (b"two fds", 0, 2)
            assert not set(received) & {read_fd, write_fd}
            os.write(received[1], b"through the copy")
            assert os.read(read_fd, 100) == b"through the copy"
            os.write(write_fd, b"and back")
            assert os.read(received[0], 100) == b"and back"
            # Fewer slots than descriptors: the rest are dropped by the kernel
            # (not leaked) and MSG_CTRUNC says so.
            await asock.send_fds(a, [b"x"], [read_fd, write_fd])
            msg, one, flags, _ = await asock.recv_fds(b, 100, 1)
            received += one
            assert len(one) == 1 and flags & asock.MSG_CTRUNC
    finally:
        for fd in (read_fd, write_fd, *received):
            os.close(fd)


async def test_cancelled_recv_fds_loses_no_descriptor(no_fd_leak: None) -> None:
    a, b = asock.socketpair(asock.AF_UNIX, asock.SOCK_DGRAM)
    read_fd, write_fd = os.pipe()
    got: list[int] = []
    try:
        with a, b, anyio.fail_after(GUARD):
            with anyio.move_on_after(0.05) as scope:
                await asock.recv_fds(b, 100, 1)
            assert scope.cancelled_caught
            await asock.send_fds(a, [b"fd"], [write_fd])
            msg, got, _, _ = await asock.recv_fds(b, 100, 1)
            assert msg == b"fd" and len(got) == 1
            os.write(got[0], b"ok")
            assert os.read(read_fd, 10) == b"ok"
    finally:
        for fd in (read_fd, write_fd, *got):
            os.close(fd)


async def test_send_fds_rejects_non_asock_sockets() -> None:
    with stdlib_socket.socket(stdlib_socket.AF_UNIX) as plain:
        with pytest.raises(TypeError):
            await asock.send_fds(plain, [b"x"], [0])  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await asock.recv_fds(plain, 10, 1)  # type: ignore[arg-type]


# -- conversions, dup, repr ---------------------------------------------------------


@pytest.mark.parametrize("timeout", [None, 0.0, 2.5])
async def test_to_sync_and_back_keep_descriptor_and_timeout(
    timeout: float | None, no_fd_leak: None
) -> None:
    a, b = asock.socketpair()
    with a, b, anyio.fail_after(GUARD):
        a.settimeout(timeout)
        fd = a.fileno()
        sync = a.to_sync()
        assert isinstance(sync, asock_sync.socket)
        assert (sync.fileno(), sync.gettimeout()) == (fd, timeout)
        assert a.fileno() == -1  # handed over, not copied
        sync.sendall(b"from sync")
        assert await b.recv(20) == b"from sync"
        back = sync.to_async()
        assert isinstance(back, asock.socket)
        assert (back.fileno(), back.gettimeout()) == (fd, timeout)
        assert sync.fileno() == -1
        with back:
            await roundtrip(back, b)
            await roundtrip(b, back)


async def test_from_stdlib_socket_and_fromfd(no_fd_leak: None) -> None:
    plain_a, plain_b = stdlib_socket.socketpair()
    plain_a.settimeout(1.5)
    fd = plain_a.fileno()
    a = asock.from_stdlib_socket(plain_a)
    with a, plain_b, anyio.fail_after(GUARD):
        assert (a.fileno(), a.gettimeout()) == (fd, 1.5)
        assert plain_a.fileno() == -1
        plain_b.sendall(b"adopted")
        assert await a.recv(10) == b"adopted"
        copy = asock.fromfd(a.fileno(), a.family, a.type)
        with copy:
            assert copy.fileno() != fd
            plain_b.sendall(b"copy")
            assert await copy.recv(10) == b"copy"
    with pytest.raises(TypeError):
        asock.from_stdlib_socket(a)  # type: ignore[arg-type]


async def test_dup_is_independent_and_keeps_timeout(no_fd_leak: None) -> None:
    a, b = asock.socketpair()
    with b, anyio.fail_after(GUARD):
        a.settimeout(3.0)
        copy = a.dup()
        with copy:
            assert isinstance(copy, asock.socket)
            assert copy.fileno() != a.fileno() and copy.gettimeout() == 3.0
            # A task waiting on the original wakes with EBADF when it closes;
            # the duplicate still waits and receives normally.
            errors: list[int | None] = []

            async def wait_on_original() -> None:
                try:
                    await a.recv(10)
                except OSError as exc:
                    errors.append(exc.errno)

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait_on_original)
                await wait_all_tasks_blocked()
                a.close()
            assert errors == [errno.EBADF]

            async def late_send() -> None:
                await wait_all_tasks_blocked()
                await b.send(b"to the dup")

            async with anyio.create_task_group() as tg:
                tg.start_soon(late_send)
                assert await copy.recv(20) == b"to the dup"


async def test_repr_mirrors_the_stdlib(no_fd_leak: None) -> None:
    sock = asock.socket()
    with stdlib_socket.socket() as reference:
        reference.settimeout(2.0)
        sock.settimeout(2.0)
        text = repr(sock)
        assert text.startswith("<asock.socket fd=")
        assert "family=2, type=1, proto=0" in text
        assert text.endswith("timeout=2.0>")
        assert f"fd={sock.fileno()}," in text
        assert repr(reference).split(", family")[1].startswith(text.split(", family")[1][:20])
    sock.close()
    assert repr(sock).startswith("<asock.socket [closed] fd=-1")
    sync = asock_sync.socket()
    with sync:
        assert repr(sync).startswith("<asock_sync.socket fd=")


# -- sendfile ---------------------------------------------------------------------------


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(300_000))
    return path


async def receive_exactly(sock: asock.socket, size: int) -> bytes:
    received = bytearray()
    while len(received) < size:
        chunk = await sock.recv(size - len(received))
        assert chunk, "peer closed early"
        received += chunk
    return bytes(received)


def stdlib_sendfile(file: Any, offset: int, count: int | None) -> tuple[int, int]:
    """What the stdlib returns and where it leaves the file position."""
    a, b = stdlib_socket.socketpair()
    with a, b:
        a.settimeout(GUARD)
        b.settimeout(GUARD)
        received = bytearray()

        def drain() -> None:
            while chunk := b.recv(1 << 16):
                received.extend(chunk)

        reader = threading.Thread(target=drain)
        reader.start()
        try:
            sent = a.sendfile(file, offset, count)
        finally:
            a.shutdown(stdlib_socket.SHUT_WR)
            reader.join()
        assert len(received) == sent
        return sent, file.tell()


@pytest.mark.parametrize(
    ("offset", "count"),
    [
        (0, None),
        (100, None),
        (100, 1000),
        (299_000, 5000),
        (300_000, None),
        (400_000, None),
        (0, 1),
    ],
)
@pytest.mark.parametrize("kernel", [True, False], ids=["os.sendfile", "read+send"])
async def test_sendfile_offsets_counts_and_position(
    data_file: Path, offset: int, count: int | None, kernel: bool, no_fd_leak: None
) -> None:
    data = data_file.read_bytes()
    end = max(offset, len(data) if count is None else min(len(data), offset + count))
    with open(data_file, "rb") as disk:
        file: Any = disk if kernel else io.BytesIO(data)
        expected = stdlib_sendfile(file, offset, count)
        file.seek(0)
        a, b = asock.socketpair()
        with a, b, anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                result: list[int] = []

                async def send() -> None:
                    result.append(await a.sendfile(file, offset, count))

                tg.start_soon(send)
                received = await receive_exactly(b, end - offset)
            assert result == [end - offset]
            assert received == data[offset:end]
            assert (result[0], file.tell()) == expected


async def test_sendfile_from_the_current_position_of_a_fresh_file(
    data_file: Path, no_fd_leak: None
) -> None:
    # The offset argument, not the file position, says where to start.
    data = data_file.read_bytes()
    a, b = asock.socketpair()
    with a, b, open(data_file, "rb") as file, anyio.fail_after(GUARD):
        file.seek(5000)
        async with anyio.create_task_group() as tg:
            tg.start_soon(a.sendfile, file, 0, 10)
            assert await receive_exactly(b, 10) == data[:10]
        assert file.tell() == 10


@pytest.mark.parametrize("timeout", [None, 0.0, 0.5])
async def test_unix_connect_to_a_full_backlog_raises_like_the_stdlib(
    timeout: float | None, tmp_path: Path, no_fd_leak: None
) -> None:
    # Linux answers EAGAIN: no handshake runs in the background, so there is
    # nothing to wait for and the socket must not pass for connected.
    path = str(tmp_path / "busy.sock")
    with stdlib_socket.socket(stdlib_socket.AF_UNIX) as listener:
        listener.bind(path)
        listener.listen(0)
        queued = []
        try:
            while True:
                filler = stdlib_socket.socket(stdlib_socket.AF_UNIX)
                queued.append(filler)
                filler.setblocking(False)
                if filler.connect_ex(path) != 0:
                    break
            reference = stdlib_socket.socket(stdlib_socket.AF_UNIX)
            with reference:
                reference.settimeout(0.5)
                with pytest.raises(BlockingIOError) as expected:
                    reference.connect(path)
            async with asock.socket(asock.AF_UNIX) as sock:
                sock.settimeout(timeout)
                with anyio.fail_after(GUARD), pytest.raises(BlockingIOError) as got:
                    await sock.connect(path)
                assert got.value.errno == expected.value.errno == errno.EAGAIN
                # Once the listener makes room, the same socket connects.
                conn, _ = listener.accept()
                conn.close()
                sock.settimeout(GUARD)
                await sock.connect(path)
                assert sock.getpeername() == path
        finally:
            for filler in queued:
                filler.close()
