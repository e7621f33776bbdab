"""Bad input: asock raises the exception type the stdlib raises for the same
call on the same kind of socket, and the socket stays usable afterwards.

Each case runs the call on a stdlib socket and on an asock socket set up the
same way, compares the exception types (and errno values), then checks that
the asock socket still does real I/O.
"""

from __future__ import annotations

import errno
import inspect
import socket as stdlib_socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import asock


class _NoTruth:
    """Neither an integer nor a truth value: every setblocking refuses it."""

    def __bool__(self) -> bool:
        raise ValueError("no truth value")


GUARD = 10

Call = Callable[[Any], Any]

#: Calls on a connected stream socket (one end of a socketpair).
CONNECTED: dict[str, Call] = {
    "recv-negative": lambda s: s.recv(-1),
    "recv-str-size": lambda s: s.recv("10"),
    "recv-bad-flags": lambda s: s.recv(10, "0"),
    "recv_into-too-small": lambda s: s.recv_into(bytearray(2), 5),
    "recv_into-immutable": lambda s: s.recv_into(b"readonly"),
    "recv_into-negative": lambda s: s.recv_into(bytearray(2), -1),
    "recvmsg-negative": lambda s: s.recvmsg(-1),
    "recvmsg-negative-anc": lambda s: s.recvmsg(10, -1),
    "recvmsg_into-not-buffers": lambda s: s.recvmsg_into(5),
    "send-str": lambda s: s.send("text"),
    "sendall-str": lambda s: s.sendall("text"),
    "sendall-bad-flags": lambda s: s.sendall(b"x", "0"),
    "sendall-int": lambda s: s.sendall(5),
    "sendall-non-contiguous": lambda s: s.sendall(memoryview(b"abcdef")[::2]),
    "send-non-contiguous": lambda s: s.send(memoryview(b"abcdef")[::2]),
    "sendall-huge-flags": lambda s: s.sendall(b"x", 2**40),
    "sendmsg-not-iterable": lambda s: s.sendmsg(5),
    "sendmsg-bad-ancdata": lambda s: s.sendmsg([b"x"], [(1, 2)]),
    "sendto-missing-address": lambda s: s.sendto(b"x"),
    "settimeout-negative": lambda s: s.settimeout(-1),
    "settimeout-str": lambda s: s.settimeout("1"),
    "settimeout-nan": lambda s: s.settimeout(float("nan")),
    "settimeout-inf": lambda s: s.settimeout(float("inf")),
    "settimeout-huge-int": lambda s: s.settimeout(2**70),
    # 3.11 parses a C long, 3.12 on takes any object's truth value: this one
    # fails on both (TypeError, then its __bool__'s ValueError).
    "setblocking-no-truth": lambda s: s.setblocking(_NoTruth()),
    **(
        {
            "setblocking-str": lambda s: s.setblocking("yes"),
            "setblocking-none": lambda s: s.setblocking(None),
        }
        if sys.version_info < (3, 12)
        else {}
    ),
    "shutdown-bad-how": lambda s: s.shutdown(17),
    "getsockopt-bogus": lambda s: s.getsockopt(stdlib_socket.SOL_SOCKET, 99999),
    "setsockopt-bad-value": lambda s: s.setsockopt(
        stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, "x"
    ),
    "accept-on-connected": lambda s: s.accept(),
    "connect-str-on-unix-connected": lambda s: s.connect(5),
}

#: Calls on a fresh, unconnected AF_INET stream socket.
UNCONNECTED_TCP: dict[str, Call] = {
    "connect-str": lambda s: s.connect("127.0.0.1:80"),
    "connect-short-tuple": lambda s: s.connect(("127.0.0.1",)),
    "connect-str-port": lambda s: s.connect(("127.0.0.1", "80")),
    "connect-port-too-big": lambda s: s.connect(("127.0.0.1", 70000)),
    "connect-port-negative": lambda s: s.connect(("127.0.0.1", -1)),
    "connect-none-host": lambda s: s.connect((None, 80)),
    "connect-ipv6-address": lambda s: s.connect(("::1", 80, 0, 0)),
    "connect_ex-short-tuple": lambda s: s.connect_ex(("127.0.0.1",)),
    "connect_ex-str-port": lambda s: s.connect_ex(("127.0.0.1", "80")),
    "bind-bad-type": lambda s: s.bind(b"/tmp/x"),
    "bind-port-too-big": lambda s: s.bind(("127.0.0.1", 70000)),
    "recv-unconnected": lambda s: s.recv(1),
    "send-unconnected": lambda s: s.send(b"x"),
    "sendall-unconnected": lambda s: s.sendall(b"x"),
    "accept-not-listening": lambda s: s.accept(),
    "listen-str": lambda s: s.listen("5"),
    "getpeername-unconnected": lambda s: s.getpeername(),
    "sendfile-text-file": lambda s: s.sendfile(open(__file__)),
}

#: Calls on a bound AF_INET datagram socket.
UDP: dict[str, Call] = {
    "sendto-str-address": lambda s: s.sendto(b"x", "127.0.0.1"),
    "sendto-bad-flags": lambda s: s.sendto(b"x", "0", ("127.0.0.1", 9)),
    "sendto-too-many-args": lambda s: s.sendto(b"x", 0, ("127.0.0.1", 9), 4),
    "sendto-port-too-big": lambda s: s.sendto(b"x", ("127.0.0.1", 70000)),
    "sendto-too-big": lambda s: s.sendto(b"x" * 70000, s.getsockname()),
    "recvfrom-negative": lambda s: s.recvfrom(-1),
    "recvfrom_into-too-small": lambda s: s.recvfrom_into(bytearray(1), 4),
    "sendfile-on-datagram": lambda s: s.sendfile(open(__file__, "rb")),
    "send-unconnected-udp": lambda s: s.send(b"x"),
}


def outcome(exc: BaseException | None) -> tuple[type[BaseException] | None, int | None]:
    if exc is None:
        return None, None
    return type(exc), getattr(exc, "errno", None)


def stdlib_outcome(sock: stdlib_socket.socket, call: Call) -> tuple[Any, Any]:
    try:
        call(sock)
    except Exception as exc:
        return outcome(exc)
    return outcome(None)


async def asock_outcome(sock: asock.socket, call: Call) -> tuple[Any, Any]:
    try:
        result = call(sock)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:
        return outcome(exc)
    return outcome(None)


@pytest.mark.parametrize("name", sorted(CONNECTED))
async def test_connected_stream_bad_input_matches_stdlib(name: str, no_fd_leak: None) -> None:
    call = CONNECTED[name]
    ref_a, ref_b = stdlib_socket.socketpair()
    a, b = asock.socketpair()
    with ref_a, ref_b, a, b, anyio.fail_after(GUARD):
        expected = stdlib_outcome(ref_a, call)
        assert expected[0] is not None, "the case must fail on the stdlib too"
        assert await asock_outcome(a, call) == expected
        # Still usable both ways, and no byte went astray.
        a.settimeout(None)
        await a.sendall(b"ping")
        assert await b.recv(10) == b"ping"
        await b.sendall(b"pong")
        assert await a.recv(10) == b"pong"


@pytest.mark.parametrize("name", sorted(UNCONNECTED_TCP))
async def test_unconnected_tcp_bad_input_matches_stdlib(name: str, no_fd_leak: None) -> None:
    call = UNCONNECTED_TCP[name]
    ref = stdlib_socket.socket()
    sock = asock.socket()
    listener = await asock.create_server(("127.0.0.1", 0))
    with ref, sock, listener, anyio.fail_after(GUARD):
        expected = stdlib_outcome(ref, call)
        assert expected[0] is not None, "the case must fail on the stdlib too"
        assert await asock_outcome(sock, call) == expected
        await sock.connect(listener.getsockname())
        conn, _ = await listener.accept()
        with conn:
            await sock.sendall(b"still works")
            assert await conn.recv(20) == b"still works"


@pytest.mark.parametrize("name", sorted(UDP))
async def test_datagram_bad_input_matches_stdlib(name: str, no_fd_leak: None) -> None:
    call = UDP[name]
    ref = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    sock = asock.socket(asock.AF_INET, asock.SOCK_DGRAM)
    with ref, sock, anyio.fail_after(GUARD):
        ref.bind(("127.0.0.1", 0))
        await sock.bind(("127.0.0.1", 0))
        expected = stdlib_outcome(ref, call)
        assert expected[0] is not None, "the case must fail on the stdlib too"
        assert await asock_outcome(sock, call) == expected
        await sock.sendto(b"self", sock.getsockname())
        assert await sock.recvfrom(10) == (b"self", sock.getsockname())


CLOSED: dict[str, Call] = {
    "recv": lambda s: s.recv(1),
    "recv_into": lambda s: s.recv_into(bytearray(1)),
    "recvfrom": lambda s: s.recvfrom(1),
    "recvmsg": lambda s: s.recvmsg(1),
    "send": lambda s: s.send(b"x"),
    "sendall": lambda s: s.sendall(b"x"),
    "sendto": lambda s: s.sendto(b"x", ("127.0.0.1", 9)),
    "sendmsg": lambda s: s.sendmsg([b"x"]),
    "connect": lambda s: s.connect(("127.0.0.1", 9)),
    "connect_ex": lambda s: s.connect_ex(("127.0.0.1", 9)),
    "bind": lambda s: s.bind(("127.0.0.1", 0)),
    "accept": lambda s: s.accept(),
    "listen": lambda s: s.listen(),
    "getsockname": lambda s: s.getsockname(),
    "getpeername": lambda s: s.getpeername(),
    "getsockopt": lambda s: s.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_TYPE),
    "setsockopt": lambda s: s.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1),
    "settimeout": lambda s: s.settimeout(1.0),
    "setblocking": lambda s: s.setblocking(True),
    "shutdown": lambda s: s.shutdown(stdlib_socket.SHUT_RDWR),
    "dup": lambda s: s.dup(),
    "detach": lambda s: s.detach(),
    "close": lambda s: s.close(),
    "fileno": lambda s: s.fileno(),
    "gettimeout": lambda s: s.gettimeout(),
    "get_inheritable": lambda s: s.get_inheritable(),
}


@pytest.mark.parametrize("name", sorted(CLOSED))
async def test_closed_socket_matches_stdlib(name: str, no_fd_leak: None) -> None:
    call = CLOSED[name]
    ref = stdlib_socket.socket()
    sock = asock.socket()
    ref.close()
    sock.close()
    with anyio.fail_after(GUARD):
        assert await asock_outcome(sock, call) == stdlib_outcome(ref, call)


async def test_sendfile_bad_arguments_match_stdlib(tmp_path: Path, no_fd_leak: None) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc")
    ref_a, ref_b = stdlib_socket.socketpair()
    a, b = asock.socketpair()
    with ref_a, ref_b, a, b, open(path, "rb") as file, anyio.fail_after(GUARD):
        cases: list[Call] = [
            lambda s: s.sendfile(file, -1),
            lambda s: s.sendfile(file, 0, 0),
            lambda s: s.sendfile(file, 0, -5),
            lambda s: s.sendfile(file, "0"),
            lambda s: s.sendfile(file, 0, "3"),
        ]
        for call in cases:
            expected = stdlib_outcome(ref_a, call)
            assert expected[0] is not None
            assert await asock_outcome(a, call) == expected
        a.settimeout(0.0)
        ref_a.settimeout(0.0)
        assert await asock_outcome(a, lambda s: s.sendfile(file)) == stdlib_outcome(
            ref_a, lambda s: s.sendfile(file)
        )
        a.settimeout(None)
        assert await a.sendfile(file) == 3
        assert await b.recv(10) == b"abc"


CONSTRUCTOR_ARGS: list[tuple[Any, ...]] = [
    ("inet",),
    (stdlib_socket.AF_INET, "stream"),
    (12345, stdlib_socket.SOCK_STREAM),
    (stdlib_socket.AF_INET, 12345),
    (stdlib_socket.AF_INET, stdlib_socket.SOCK_STREAM, 12345),
    (-1, -1, -1, "fd"),
    (-1, -1, -1, -5),
]


@pytest.mark.parametrize("args", CONSTRUCTOR_ARGS, ids=repr)
async def test_constructor_errors_match_stdlib(args: tuple[Any, ...], no_fd_leak: None) -> None:
    expected = stdlib_outcome(None, lambda _: stdlib_socket.socket(*args))  # type: ignore[arg-type]
    assert expected[0] is not None
    assert await asock_outcome(None, lambda _: asock.socket(*args)) == expected  # type: ignore[arg-type]


async def test_refused_and_in_use_errors_are_the_stdlib_subclasses(no_fd_leak: None) -> None:
    holder = stdlib_socket.socket()
    holder.bind(("127.0.0.1", 0))  # bound, not listening: connecting is refused
    address = holder.getsockname()
    with holder, asock.socket() as sock, anyio.fail_after(GUARD):
        with pytest.raises(ConnectionRefusedError) as refused:
            await sock.connect(address)
        assert refused.value.errno == errno.ECONNREFUSED
        with asock.socket() as second:
            assert await second.connect_ex(address) == errno.ECONNREFUSED
        with asock.socket() as third:
            with pytest.raises(OSError) as in_use:
                await third.bind(address)
            assert in_use.value.errno == errno.EADDRINUSE
            await third.bind(("127.0.0.1", 0))  # usable after the failure
            assert third.getsockname()[1] != 0
