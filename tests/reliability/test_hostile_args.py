"""Hostile arguments: asock and asock_sync fail exactly where and how the stdlib does.

Each example builds the same socket three times (stdlib, asock_sync, asock),
in the same state (connected with data waiting, bound, or fresh), makes the
same generated call on each, and then checks that

* the call raised the same exception type, or returned the same value;
* the sockets are left in the same state: open or closed, same timeout, and
  a follow-up read (or SO_ERROR query) gives the same outcome, so an asock
  socket is usable exactly when the stdlib's is.

Timeouts are 0.0 or 0.05 s on all three, so nothing can block for long; the
asock call also runs under ``anyio.fail_after`` so a hang fails the example.
"""

from __future__ import annotations

import array
import io
import os
import select
import socket as stdlib_socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import asock
import asock_sync

HAS_IPV6 = stdlib_socket.has_ipv6

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- fixed peers every example may aim at ---------------------------------------


class Targets:
    """A refused TCP port and a UDP sink on the same number, both owned by this module.

    Generated addresses only ever name these ports (or invalid ones), never
    a port some other test may be listening on.
    """

    def __init__(self) -> None:
        self.tcp = stdlib_socket.socket()
        self.tcp.bind(("127.0.0.1", 0))  # bound, never listening: connects are refused
        self.port = self.tcp.getsockname()[1]
        self.udp = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))

    def drain(self) -> None:
        self.udp.setblocking(False)
        while True:
            try:
                self.udp.recv(65536)
            except BlockingIOError:
                return

    def close(self) -> None:
        self.tcp.close()
        self.udp.close()


@pytest.fixture(autouse=True)
def in_a_scratch_directory(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative AF_UNIX path, should one be bound, lands in a scratch directory."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def targets() -> Iterator[Targets]:
    t = Targets()
    yield t
    t.close()


# -- argument strategies -----------------------------------------------------------

JUNK = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.lists(st.integers(0, 3), max_size=2),
    st.just(object()),
    st.integers(-(2**70), 2**70),
)

SIZES = st.one_of(
    st.integers(-3, 70_000),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, True]),
    JUNK,
)

FLAGS = st.one_of(
    st.sampled_from(
        [
            0,
            stdlib_socket.MSG_PEEK,
            stdlib_socket.MSG_DONTWAIT,
            stdlib_socket.MSG_OOB,
            stdlib_socket.MSG_TRUNC,
            stdlib_socket.MSG_WAITALL,
            stdlib_socket.MSG_PEEK | stdlib_socket.MSG_TRUNC,
            -1,
            2**31,
            2**32,
            -(2**31) - 1,
        ]
    ),
    JUNK,
)

#: Host names: numeric, resolvable, unresolvable (.invalid), malformed.
HOSTS = st.one_of(
    st.sampled_from(
        [
            "127.0.0.1",
            "localhost",
            "",
            "<broadcast>",
            "::1",
            "0",
            "256.1.1.1",
            "x.invalid",
            "a..b.invalid",
            "a\0b",
            "127.0.0.1\0",
            "\u00e9t\u00e9.invalid",
            "\udcff",
            "a" * 64 + ".invalid",
            b"localhost",
            b"x.invalid",
            bytearray(b"127.0.0.1"),
        ]
    ),
    st.text(alphabet="abc.-\0\u00e9", max_size=6).map(lambda name: name + ".invalid"),
    JUNK,
)


def ports(targets_port: int) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(
            [targets_port, 0, -1, 65536, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**40, True]
        ),
        st.integers(65536, 2**33),
        st.integers(-(2**33), -1),
        JUNK,
    )


def ip_addresses(targets_port: int) -> st.SearchStrategy[Any]:
    extra = st.sampled_from([0, 1, -1, 2**20, 2**32, 2**64, "x", None, 1.5])
    return st.one_of(
        st.tuples(HOSTS, ports(targets_port)),
        st.tuples(HOSTS, ports(targets_port), extra),
        st.tuples(HOSTS, ports(targets_port), extra, extra),
        st.tuples(HOSTS, ports(targets_port), extra, extra, extra),
        st.tuples(HOSTS),
        st.lists(st.sampled_from(["127.0.0.1", targets_port]), max_size=3),
        JUNK,
    )


UNIX_ADDRESSES = st.one_of(
    st.sampled_from(
        [
            "",
            "\0asock-reliability-nobody-listens",
            "/nonexistent/asock/socket",
            "a" * 200,
            b"/nonexistent/asock/socket",
            b"",
            b"\0",
            "/nonexistent/\udcff",
        ]
    ),
    # No generated text or bytes, no relative paths: binding one leaves a file
    # behind, and the next variant's bind would find the name taken.
    st.none(),
    st.integers(-(2**70), 2**70),
    st.lists(st.integers(0, 3), max_size=2),
)

#: Buffers to receive into, by name (each variant gets its own fresh object).
INTO_BUFFERS = st.sampled_from(
    ["bytearray0", "bytearray16", "bytes16", "readonly_view", "array_i4", "str", "none", "strided"]
)
#: Data to send, by name or as literal bytes.
SEND_DATA = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(["bytearray", "str", "int", "none", "array_d", "strided", "list", "2d"]),
)
FILES = st.sampled_from(["regular", "text", "bytesio", "none", "empty"])

SOCKOPTS = st.tuples(
    st.sampled_from([stdlib_socket.SOL_SOCKET, stdlib_socket.IPPROTO_TCP, -1, 2**40]),
    st.sampled_from(
        [
            stdlib_socket.SO_REUSEADDR,
            stdlib_socket.SO_RCVBUF,
            stdlib_socket.SO_KEEPALIVE,
            stdlib_socket.SO_LINGER,
            stdlib_socket.TCP_NODELAY,
            9999,
            -1,
            "x",
        ]
    ),
)


def build_buffer(name: str) -> Any:
    if name == "bytearray0":
        return bytearray(0)
    if name == "bytearray16":
        return bytearray(16)
    if name == "bytes16":
        return bytes(16)
    if name == "readonly_view":
        return memoryview(bytes(16))
    if name == "array_i4":
        return array.array("i", [0] * 4)
    if name == "strided":
        return memoryview(bytearray(32))[::2]
    if name == "str":
        return "sixteen chars..."
    return None


def build_data(spec: Any) -> Any:
    if isinstance(spec, bytes):
        return spec
    return {
        "bytearray": bytearray(b"bytearray data"),
        "str": "text, not bytes",
        "int": 12,
        "none": None,
        "array_d": array.array("d", [1.5, 2.5]),
        "strided": memoryview(b"abcdefgh")[::2],
        "list": [b"a", b"b"],
        "2d": memoryview(bytearray(b"abcdef")).cast("B", (2, 3)),
    }[spec]


@dataclass
class FileMaker:
    """Per-variant files for sendfile (each call moves its file's position)."""

    directory: str
    opened: list[Any] = field(default_factory=list)

    def make(self, name: str) -> Any:
        if name == "none":
            return None
        if name == "bytesio":
            return io.BytesIO(b"x" * 3000)
        path = os.path.join(self.directory, f"f{len(self.opened)}")
        with open(path, "wb") as f:
            f.write(b"" if name == "empty" else b"y" * 3000)
        handle = open(path, "r" if name == "text" else "rb")  # closed in close()
        self.opened.append(handle)
        return handle

    def close(self) -> None:
        for handle in self.opened:
            handle.close()


# -- socket states -------------------------------------------------------------------


@dataclass
class Setup:
    """One socket under test plus the peers that keep its state alive."""

    sock: Any
    peer: stdlib_socket.socket | None = None
    peer_address: Any = None
    others: list[stdlib_socket.socket] = field(default_factory=list)

    def close(self) -> None:
        self.sock.close()
        for other in [self.peer, *self.others]:
            if other is not None:
                other.close()


def _wait_readable(sock: stdlib_socket.socket) -> None:
    select.select([sock], [], [], 5)


def make_state(kind: str, timeout: float) -> Setup:
    """A stdlib socket in state ``kind``; the caller wraps it for asock/asock_sync."""
    if kind == "tcp":
        listener = stdlib_socket.create_server(("127.0.0.1", 0))
        client = stdlib_socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        listener.close()
        server.sendall(b"hello over tcp")
        _wait_readable(client)
        setup = Setup(client, peer=server)
    elif kind == "udp":
        receiver = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
        receiver.bind(("127.0.0.1", 0))
        sender = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
        sender.sendto(b"a datagram", receiver.getsockname())
        _wait_readable(receiver)
        setup = Setup(receiver, peer=sender, peer_address=receiver.getsockname())
    elif kind == "unix":
        a, b = stdlib_socket.socketpair()
        b.sendall(b"hello over unix")
        setup = Setup(a, peer=b)
    elif kind == "unix_dgram":
        a, b = stdlib_socket.socketpair(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_DGRAM)
        b.send(b"unix datagram")
        setup = Setup(a, peer=b)
    elif kind == "tcp6_fresh":
        setup = Setup(stdlib_socket.socket(stdlib_socket.AF_INET6))
    elif kind == "udp_fresh":
        setup = Setup(stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM))
    elif kind == "unix_fresh":
        setup = Setup(stdlib_socket.socket(stdlib_socket.AF_UNIX))
    else:
        assert kind == "tcp_fresh"
        setup = Setup(stdlib_socket.socket())
    setup.sock.settimeout(timeout)
    return setup


CONNECTED = ("tcp", "udp", "unix", "unix_dgram")
FRESH = ("tcp_fresh", "udp_fresh", "unix_fresh") + (("tcp6_fresh",) if HAS_IPV6 else ())


@st.composite
def calls(draw: st.DrawFn, targets_port: int) -> tuple[str, str, list[Any]]:
    """Draw ``(socket kind, method name, argument specs)``."""
    kind = draw(st.sampled_from(CONNECTED + FRESH))
    unix = kind.startswith("unix")
    address = UNIX_ADDRESSES if unix else ip_addresses(targets_port)
    method = draw(
        st.sampled_from(
            [
                "recv", "recv_into", "recvfrom", "recvfrom_into", "recvmsg", "recvmsg_into",
                "send", "sendall", "sendto", "sendmsg", "sendfile", "connect", "connect_ex",
                "bind", "accept", "listen", "shutdown", "settimeout", "setblocking",
                "getsockopt", "setsockopt",
            ]
        )
    )
    options: dict[str, list[Any]] = {
        "recv": [SIZES, FLAGS],
        "recvfrom": [SIZES, FLAGS],
        "recv_into": [INTO_BUFFERS.map(lambda b: ("buffer", b)), SIZES, FLAGS],
        "recvfrom_into": [INTO_BUFFERS.map(lambda b: ("buffer", b)), SIZES, FLAGS],
        "recvmsg": [SIZES, SIZES, FLAGS],
        "recvmsg_into": [
            st.lists(INTO_BUFFERS.map(lambda b: ("buffer", b)), max_size=2).map(
                lambda bs: ("buffers", bs)
            ),
            SIZES,
            FLAGS,
        ],
        "send": [SEND_DATA.map(lambda d: ("data", d)), FLAGS],
        "sendall": [SEND_DATA.map(lambda d: ("data", d)), FLAGS],
        "sendto": [SEND_DATA.map(lambda d: ("data", d)), st.one_of(FLAGS, address), address],
        "sendmsg": [
            st.lists(SEND_DATA.map(lambda d: ("data", d)), max_size=2).map(
                lambda ds: ("buffers", ds)
            ),
            st.sampled_from([[], [(stdlib_socket.SOL_SOCKET, stdlib_socket.SCM_RIGHTS, b"123")],
                             None, "x", [(1, 2)]]),
            FLAGS,
            address,
        ],
        # Offsets are integers: the stdlib never checks the offset's type, so a
        # non-integer fails wherever its algorithm first does arithmetic on it.
        "sendfile": [
            FILES.map(lambda f: ("file", f)),
            st.integers(-3, 4000),
            st.one_of(st.none(), SIZES),
        ],
        "connect": [address],
        "connect_ex": [address],
        "bind": [address],
        "accept": [],
        "listen": [st.one_of(st.integers(-5, 5), SIZES)],
        "shutdown": [st.one_of(st.integers(-1, 3), JUNK)],
        "settimeout": [st.one_of(st.sampled_from([0.0, 0.05, -1, float("nan")]), JUNK)],
        "setblocking": [st.sampled_from([False, 0, "", None, b"", []])],
        "getsockopt": [
            SOCKOPTS.map(lambda lo: ("pair", lo)),
            st.sampled_from([-1, 0, 4, 1024, 1025, 2**40, "x"]),
        ],
        "setsockopt": [
            SOCKOPTS.map(lambda lo: ("pair", lo)),
            st.sampled_from([0, 1, -1, 2**40, b"\0" * 8, b"", "x", None]),
        ],
    }
    strategies = options[method]
    # Sometimes drop trailing arguments (optional ones, or required ones:
    # the arity error must match).
    count = draw(st.integers(max(0, len(strategies) - 2), len(strategies)))
    args: list[Any] = []
    for strategy in strategies[:count]:
        value = draw(strategy)
        if isinstance(value, tuple) and len(value) == 2 and value[0] == "pair":
            args.extend(value[1])
        else:
            args.append(value)
    # A stray argument only after all the real ones: always an arity error.
    if count == len(strategies) and draw(st.integers(0, 9)) == 0:
        args.append(draw(JUNK))
    return kind, method, args


def realize(spec: Any, files: FileMaker) -> Any:
    """Turn an argument spec into a fresh argument (buffers and files are per variant)."""
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        tag, value = spec
        if tag == "buffer":
            return build_buffer(value)
        if tag == "buffers":
            return [build_buffer(v) for v in value]
        if tag == "data":
            return build_data(value)
        if tag == "file":
            return files.make(value)
    return spec


@dataclass
class Outcome:
    """What a call did: its exception type, or its comparable result."""

    error: type[BaseException] | None
    value: Any = None


def comparable(method: str, result: Any, args: list[Any]) -> Any:
    if method == "accept":
        result[0].close()
        return "accepted"
    if method in ("recvfrom", "recvfrom_into", "recvmsg", "recvmsg_into") and result:
        result = result[:-1]  # the sender's address holds a per-variant ephemeral port
    if has_flag(method, args, stdlib_socket.MSG_TRUNC):
        # On a stream socket MSG_TRUNC discards the data: the bytes returned
        # are an unfilled buffer (whatever memory held), only their count means anything.
        if isinstance(result, bytes):
            return len(result)
        if isinstance(result, tuple):
            return tuple(len(item) if isinstance(item, bytes) else item for item in result)
    return result


def run_sync_call(sock: Any, method: str, args: list[Any]) -> Outcome:
    try:
        return Outcome(None, comparable(method, getattr(sock, method)(*args), args))
    except Exception as exc:
        return Outcome(type(exc))


async def run_async_call(sock: asock.socket, method: str, args: list[Any]) -> Outcome:
    outcome = Outcome(None)
    with anyio.move_on_after(5) as guard:
        try:
            result = getattr(sock, method)(*args)
            if method not in ("listen", "shutdown", "settimeout", "setblocking", "getsockopt",
                              "setsockopt"):
                result = await result
            outcome = Outcome(None, comparable(method, result, args))
        except Exception as exc:
            outcome = Outcome(type(exc))
    assert not guard.cancelled_caught, f"asock {method}{tuple(args)!r} hung"
    return outcome


def probe_state(setup: Setup, read: Callable[[], Any]) -> tuple[Any, ...]:
    """The socket's observable state, and what a follow-up read gives."""
    sock = setup.sock
    if sock.fileno() == -1:
        return ("closed",)
    state: tuple[Any, ...] = ("open", sock.gettimeout())
    sock.settimeout(1.0)
    if setup.peer is not None:
        try:
            if setup.peer_address is not None:
                setup.peer.sendto(b"probe", setup.peer_address)
            else:
                setup.peer.send(b"probe")
        except OSError as exc:
            state += ("peer", type(exc))
    try:
        return (*state, read())
    except Exception as exc:
        return (*state, type(exc))


def sync_read(setup: Setup) -> Any:
    if setup.peer is None:
        return setup.sock.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_ERROR)
    return setup.sock.recv(4096)


async def async_read(setup: Setup) -> Any:
    if setup.peer is None:
        return setup.sock.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_ERROR)
    with anyio.fail_after(5):
        return await setup.sock.recv(4096)


def stdlib_outcome(
    kind: str, method: str, specs: list[Any], timeout: float, tmp: str
) -> tuple[Outcome, tuple[Any, ...]]:
    setup = make_state(kind, timeout)
    files = FileMaker(tmp)
    try:
        outcome = run_sync_call(setup.sock, method, [realize(s, files) for s in specs])
        return outcome, probe_state(setup, lambda: sync_read(setup))
    finally:
        setup.close()
        files.close()


def describe(kind: str, method: str, specs: list[Any], timeout: float) -> str:
    return f"{kind} socket, timeout {timeout}: {method}{tuple(specs)!r}"


#: Where each method takes its flags argument.
FLAGS_POSITION = {
    "recv": 1, "recvfrom": 1, "recv_into": 2, "recvfrom_into": 2, "recvmsg": 2,
    "recvmsg_into": 2, "send": 1, "sendall": 1, "sendmsg": 2,
}


def has_flag(method: str, args: list[Any], flag: int) -> bool:
    """Whether the call's flags argument holds ``flag``."""
    position = 1 if method == "sendto" and len(args) == 3 else FLAGS_POSITION.get(method)
    if position is None or position >= len(args):
        return False
    flags = args[position]
    return isinstance(flags, int) and bool(flags & flag)  # MsgFlag members included


def assert_same_outcome(
    outcome: Outcome, expected: Outcome, method: str, specs: list[Any], timeout: float
) -> None:
    """``outcome`` must be ``expected``, with two documented exceptions.

    In timeout mode CPython polls *before* its first attempt, asock tries the
    call first (its core design). On a socket that can never become ready
    for the call (accept on a UDP socket, recv on a listening one) the
    stdlib's poll runs out and it raises TimeoutError, while asock reports
    the call's own error (EOPNOTSUPP, ENOTCONN, ...) at once.

    A call whose flags hold MSG_DONTWAIT never waits in asock (the behaviour
    CPython's own test suite checks); CPython 3.11 in timeout mode still
    polls and raises TimeoutError where asock raises BlockingIOError.
    """
    where = f"{method}{tuple(specs)!r}, timeout {timeout}"
    if timeout > 0 and expected.error is TimeoutError and outcome.error is not None:
        if has_flag(method, specs, stdlib_socket.MSG_DONTWAIT) and outcome.error is BlockingIOError:
            return
        if issubclass(outcome.error, OSError) and not issubclass(
            outcome.error, (TimeoutError, BlockingIOError)
        ):
            return
    assert outcome == expected, where


# -- the tests -------------------------------------------------------------------------


@SETTINGS
@given(data=st.data(), timeout=st.sampled_from([0.0, 0.05]))
def test_asock_sync_fails_like_the_stdlib(
    data: st.DataObject, timeout: float, targets: Targets, tmp_path: Any
) -> None:
    kind, method, specs = data.draw(calls(targets.port))
    expected, expected_state = stdlib_outcome(kind, method, specs, timeout, str(tmp_path))

    setup = make_state(kind, timeout)
    setup.sock = asock_sync.from_stdlib_socket(setup.sock)
    files = FileMaker(str(tmp_path))
    try:
        outcome = run_sync_call(setup.sock, method, [realize(s, files) for s in specs])
        state = probe_state(setup, lambda: sync_read(setup))
    finally:
        setup.close()
        files.close()
        targets.drain()
    assert_same_outcome(outcome, expected, method, specs, timeout)
    where = describe(kind, method, specs, timeout)
    assert state == expected_state, where


@SETTINGS
@given(data=st.data(), timeout=st.sampled_from([0.0, 0.05]))
async def test_asock_fails_like_the_stdlib(
    data: st.DataObject, timeout: float, targets: Targets
) -> None:
    kind, method, specs = data.draw(calls(targets.port))
    with tempfile.TemporaryDirectory() as tmp:
        expected, expected_state = stdlib_outcome(kind, method, specs, timeout, tmp)

        setup = make_state(kind, timeout)
        setup.sock = asock.from_stdlib_socket(setup.sock)
        files = FileMaker(tmp)
        try:
            outcome = await run_async_call(
                setup.sock, method, [realize(s, files) for s in specs]
            )
            if setup.sock.fileno() == -1:
                state: tuple[Any, ...] = ("closed",)
            else:
                state = ("open", setup.sock.gettimeout())
                setup.sock.settimeout(1.0)
                if setup.peer is not None:
                    try:
                        if setup.peer_address is not None:
                            setup.peer.sendto(b"probe", setup.peer_address)
                        else:
                            setup.peer.send(b"probe")
                    except OSError as exc:
                        state += ("peer", type(exc))
                try:
                    state += (await async_read(setup),)
                except Exception as exc:
                    state += (type(exc),)
        finally:
            setup.close()
            files.close()
            targets.drain()
    assert_same_outcome(outcome, expected, method, specs, timeout)
    where = describe(kind, method, specs, timeout)
    assert state == expected_state, where


def test_unresolvable_name_raises_gaierror_everywhere(targets: Targets) -> None:
    # The named case from the brief, without hypothesis: a .invalid name.
    for make in (stdlib_socket.socket, asock_sync.socket):
        with make() as s, pytest.raises(stdlib_socket.gaierror):
            s.connect(("no-such-host.invalid", targets.port))


async def test_unresolvable_name_raises_gaierror_in_asock(targets: Targets) -> None:
    with asock.socket() as s:
        with anyio.fail_after(10), pytest.raises(stdlib_socket.gaierror):
            await s.connect(("no-such-host.invalid", targets.port))
        # Still usable: the same socket connects afterwards (and is refused).
        with anyio.fail_after(10), pytest.raises(ConnectionRefusedError):
            await s.connect(("127.0.0.1", targets.port))


#: Calls whose arguments the stdlib rejects before it looks the address up
#: (so a name that can't be resolved must not turn the error into gaierror),
#: and calls it rejects only after the lookup (the port range).
LOOKUP_ORDER_CASES = [
    ("connect", (("x.invalid", 80, 0),)),
    ("connect", (("x.invalid", 2**31),)),
    ("connect", (("x.invalid", 80.0),)),
    ("connect", (("a\0b.invalid", 80),)),
    ("connect", (("\udcff", 80),)),
    ("connect", (("localhost", 70000),)),
    ("connect", (("localhost", -1),)),
    ("bind", (("localhost", 2**16),)),
    ("sendto", ("text", ("x.invalid", 9))),
    ("sendto", (memoryview(b"abcd")[::2], ("x.invalid", 9))),
    ("sendto", (b"x", "flags", ("x.invalid", 9))),
    ("sendto", (b"x", 2**40, ("x.invalid", 9))),
    ("sendto", (b"x", 0, 0, ("x.invalid", 9))),
    ("sendto", (b"x", ("localhost", 70000))),
    ("sendmsg", ([b"x"], [], "flags", ("x.invalid", 9))),
    ("sendmsg", ([b"x"], [], 0, ("x.invalid", 9), 5)),
    ("sendmsg", (["text"], [], 0, ("x.invalid", 9))),
]


@pytest.mark.parametrize(("method", "args"), LOOKUP_ORDER_CASES)
async def test_argument_errors_keep_the_stdlib_order_around_the_lookup(
    method: str, args: tuple[Any, ...]
) -> None:
    kind = stdlib_socket.SOCK_STREAM if method == "connect" else stdlib_socket.SOCK_DGRAM
    with stdlib_socket.socket(stdlib_socket.AF_INET, kind) as reference:
        with pytest.raises(Exception) as expected:  # any type: compared below
            getattr(reference, method)(*args)
    with asock.socket(stdlib_socket.AF_INET, kind) as s, anyio.fail_after(10):
        with pytest.raises(expected.type):
            await getattr(s, method)(*args)


#: Module-level calls with bad arguments, made with the stdlib, asock_sync and asock.
MODULE_CASES = [
    ("create_connection", (("x.invalid", 80),)),
    ("create_connection", (("localhost",),)),
    ("create_connection", (("a\0b.invalid", 80),)),
    ("create_connection", (("127.0.0.1", 1), -1)),
    ("create_connection", (("127.0.0.1", 1), "x")),
    ("create_connection", ("127.0.0.1:80",)),
    ("create_server", (("localhost", 70000),)),
    ("create_server", (("x.invalid", 0),)),
    ("create_server", (("a\0b", 0),)),
    ("create_server", (("127.0.0.1", 0, 0),)),
    ("create_server", (("", -1),)),
    ("getaddrinfo", ("a\0b", 80)),
    ("getaddrinfo", ("x.invalid", 80)),
    ("getaddrinfo", ("localhost", "http", 999)),
    ("getaddrinfo", ("a..b", 80)),
    ("getnameinfo", (("127.0.0.1", 80), "x")),
    ("getnameinfo", (("127.0.0.1",), 0)),
    ("getnameinfo", (("x.invalid", 80), 0)),
    ("gethostbyname", ("x.invalid",)),
    ("gethostbyname", ("a\0b",)),
    ("getservbyname", ("no-such-service",)),
    ("getservbyport", (70000,)),
    ("getprotobyname", ("no-such-protocol",)),
    ("socketpair", (stdlib_socket.AF_INET,)),
    ("fromfd", (-1, stdlib_socket.AF_INET, stdlib_socket.SOCK_STREAM)),
]


def _close_result(result: Any) -> None:
    for item in result if isinstance(result, tuple) else (result,):
        if hasattr(item, "close"):
            item.close()


@pytest.mark.parametrize(("name", "args"), MODULE_CASES)
async def test_module_functions_fail_like_the_stdlib(name: str, args: tuple[Any, ...]) -> None:
    with pytest.raises(Exception) as expected:  # any type: the others must match it
        _close_result(getattr(stdlib_socket, name)(*args))
    with pytest.raises(expected.type) as sync_raised:
        _close_result(getattr(asock_sync, name)(*args))
    assert type(sync_raised.value) is expected.type
    with anyio.fail_after(10), pytest.raises(expected.type) as async_raised:
        result = getattr(asock, name)(*args)
        if hasattr(result, "__await__"):
            result = await result
        _close_result(result)
    assert type(async_raised.value) is expected.type
