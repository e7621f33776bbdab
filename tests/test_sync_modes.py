"""Blocking, non-blocking and timeout modes of asock_sync, and their timing rules."""

from __future__ import annotations

import errno
import os
import re
import signal
import socket as stdlib_socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest

import asock_sync

#: Upper bound for a thread to finish; only reached if something is broken.
GUARD = 10.0


@pytest.fixture
def default_timeout() -> Iterator[None]:
    """Restore the process-wide default timeout after the test."""
    saved = asock_sync.getdefaulttimeout()
    yield
    asock_sync.setdefaulttimeout(saved)


@pytest.fixture
def tcp_pair() -> Iterator[tuple[asock_sync.socket, asock_sync.socket]]:
    """A connected loopback TCP pair (client, server side)."""
    with asock_sync.create_server(("127.0.0.1", 0)) as listener:
        client = asock_sync.create_connection(listener.getsockname())
        server, _ = listener.accept()
    with client, server:
        yield client, server


def _fill(sock: asock_sync.socket) -> int:
    """Send in non-blocking mode until the kernel buffers are full; return bytes sent."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    sent = 0
    try:
        while True:
            sent += sock.send(b"x" * 65536)
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(timeout)
    return sent


# -- the modes and their accessors ----------------------------------------


def test_new_socket_is_blocking_by_default() -> None:
    with asock_sync.socket() as sock:
        assert sock.gettimeout() is None
        assert sock.getblocking() is True


@pytest.mark.parametrize(
    ("call", "timeout", "blocking"),
    [
        (lambda s: s.setblocking(True), None, True),
        (lambda s: s.setblocking(False), 0.0, False),
        (lambda s: s.settimeout(None), None, True),
        (lambda s: s.settimeout(0), 0.0, False),
        (lambda s: s.settimeout(2), 2.0, True),
        (lambda s: s.settimeout(0.25), 0.25, True),
    ],
)
def test_getters_reflect_the_last_call(
    call: Callable[[asock_sync.socket], None], timeout: float | None, blocking: bool
) -> None:
    with asock_sync.socket() as sock, stdlib_socket.socket() as reference:
        sock.settimeout(7.0)  # something else first: the last call must win
        call(sock)
        call(reference)  # type: ignore[arg-type]
        assert sock.gettimeout() == reference.gettimeout() == timeout
        assert sock.getblocking() is reference.getblocking() is blocking
        assert sock.timeout == timeout


@pytest.mark.parametrize("bad", [-1, -0.5, "1", float("nan"), object()])
def test_bad_timeouts_raise_what_the_stdlib_raises(bad: object) -> None:
    with asock_sync.socket() as sock, stdlib_socket.socket() as reference:
        with pytest.raises(Exception) as theirs:
            reference.settimeout(bad)  # type: ignore[arg-type]
        with pytest.raises(theirs.type, match=re.escape(str(theirs.value))):
            sock.settimeout(bad)  # type: ignore[arg-type]
        assert sock.gettimeout() is None  # unchanged


def test_sock_nonblock_type_starts_in_non_blocking_mode() -> None:
    kind = stdlib_socket.SOCK_STREAM | stdlib_socket.SOCK_NONBLOCK
    with asock_sync.socket(stdlib_socket.AF_INET, kind) as sock:
        assert sock.gettimeout() == 0.0
        assert sock.type == stdlib_socket.SOCK_STREAM


def test_non_blocking_mode_raises_blocking_io_error_instead_of_waiting(
    tcp_pair: tuple[asock_sync.socket, asock_sync.socket],
) -> None:
    client, server = tcp_pair
    server.setblocking(False)
    with pytest.raises(BlockingIOError):
        server.recv(10)
    with pytest.raises(BlockingIOError):
        server.recv_into(bytearray(10))
    with pytest.raises(BlockingIOError):
        server.recvmsg(10)
    _fill(client)
    client.setblocking(False)
    with pytest.raises(BlockingIOError):
        client.send(b"more")
    with pytest.raises(BlockingIOError):
        client.sendall(b"more")
    with asock_sync.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_msg_dontwait_never_waits_even_in_blocking_mode(
    tcp_pair: tuple[asock_sync.socket, asock_sync.socket],
) -> None:
    _, server = tcp_pair
    assert server.gettimeout() is None
    with pytest.raises(BlockingIOError):
        server.recv(10, stdlib_socket.MSG_DONTWAIT)


def test_timeout_mode_raises_timeout_error_timed_out(
    tcp_pair: tuple[asock_sync.socket, asock_sync.socket],
) -> None:
    client, server = tcp_pair
    server.settimeout(0.05)
    for call in (lambda: server.recv(1), lambda: server.recvfrom(1), lambda: server.recvmsg(1)):
        with pytest.raises(TimeoutError) as info:
            call()
        assert info.value.args == ("timed out",)
        assert isinstance(info.value, asock_sync.timeout)
    client.sendall(b"late")
    assert server.recv(10) == b"late"  # a timeout costs no data


# -- default timeout and accept --------------------------------------------


def test_setdefaulttimeout_applies_to_new_sockets_only(default_timeout: None) -> None:
    with asock_sync.socket() as before:
        asock_sync.setdefaulttimeout(3.5)
        with asock_sync.socket() as after:
            assert after.gettimeout() == 3.5
        assert before.gettimeout() is None
        a, b = asock_sync.socketpair()
        with a, b:
            assert a.gettimeout() == b.gettimeout() == 3.5
        with asock_sync.create_server(("127.0.0.1", 0)) as listener:
            assert listener.gettimeout() == 3.5
            with asock_sync.create_connection(listener.getsockname()) as client:
                assert client.gettimeout() == 3.5
            with asock_sync.create_connection(listener.getsockname(), timeout=None) as client:
                assert client.gettimeout() is None


@pytest.mark.parametrize("listener_timeout", [None, 0.0, 5.0])
@pytest.mark.parametrize("default", [None, 2.5])
def test_accepted_socket_takes_the_default_timeout_not_the_listeners(
    default_timeout: None, listener_timeout: float | None, default: float | None
) -> None:
    with asock_sync.create_server(("127.0.0.1", 0)) as listener:
        asock_sync.setdefaulttimeout(default)
        listener.settimeout(listener_timeout)
        with stdlib_socket.create_connection(listener.getsockname()):
            # The connection is already queued, so even a non-blocking accept succeeds.
            listener.settimeout(listener_timeout or 5.0)
            conn, address = listener.accept()
            with conn:
                assert isinstance(conn, asock_sync.socket)
                assert conn.gettimeout() == default
                assert conn.getblocking() is True
                assert address[0] == "127.0.0.1"


# -- connect -------------------------------------------------------------------


@pytest.fixture
def saturated_listener() -> Iterator[tuple[str, int]]:
    """A listener whose accept queue is full: new handshakes are not answered."""
    with asock_sync.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        fillers = []
        try:
            for _ in range(4):
                filler = asock_sync.socket()
                fillers.append(filler)
                filler.settimeout(0.2)
                if filler.connect_ex(address) != 0:
                    break
            else:
                pytest.skip("the kernel accepted every handshake; cannot saturate the backlog")
            yield address
        finally:
            for filler in fillers:
                filler.close()


def test_connect_obeys_the_timeout(saturated_listener: tuple[str, int]) -> None:
    with asock_sync.socket() as sock:
        sock.settimeout(0.1)
        with pytest.raises(TimeoutError, match="timed out"):
            sock.connect(saturated_listener)
    with asock_sync.socket() as sock:
        sock.settimeout(0.1)
        # The stdlib's connect_ex reports its own timeout as EWOULDBLOCK.
        assert sock.connect_ex(saturated_listener) == errno.EWOULDBLOCK


def test_non_blocking_connect_reports_in_progress(saturated_listener: tuple[str, int]) -> None:
    with asock_sync.socket() as sock:
        sock.setblocking(False)
        with pytest.raises(BlockingIOError) as info:
            sock.connect(saturated_listener)
        assert info.value.errno == errno.EINPROGRESS
        assert sock.connect_ex(saturated_listener) == errno.EALREADY


def test_connect_to_a_closed_port_is_refused() -> None:
    with asock_sync.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()  # bound, never listening: refused
        with asock_sync.socket() as sock:
            assert sock.connect_ex(closed) == errno.ECONNREFUSED
        with asock_sync.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.connect(closed)
        with asock_sync.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.settimeout(2.0)
            sock.connect(closed)


# -- one deadline per call -----------------------------------------------------


def _slow_reader(sock: asock_sync.socket, stop: threading.Event, got: list[int]) -> None:
    # Makes steady progress, in steps much shorter than the sender's timeout,
    # until told to stop; then drains what is left.
    while not stop.is_set():
        got[0] += len(sock.recv(4096))
        time.sleep(0.01)
    sock.setblocking(False)
    try:
        while chunk := sock.recv(1 << 20):
            got[0] += len(chunk)
    except BlockingIOError:
        pass


def _send_with_sendall(sock: asock_sync.socket, payload: bytes, tmp_path: Path) -> None:
    sock.sendall(payload)


def _send_with_sendfile(sock: asock_sync.socket, payload: bytes, tmp_path: Path) -> None:
    path = tmp_path / "payload"
    path.write_bytes(payload)
    with path.open("rb") as file:
        sock.sendfile(file)


@pytest.mark.parametrize("send", [_send_with_sendall, _send_with_sendfile])
def test_timeout_bounds_the_whole_transfer_and_reports_progress(
    tcp_pair: tuple[asock_sync.socket, asock_sync.socket],
    tmp_path: Path,
    send: Callable[[asock_sync.socket, bytes, Path], None],
) -> None:
    client, server = tcp_pair
    payload = b"y" * (32 << 20)
    got = [0]
    stop = threading.Event()
    reader = threading.Thread(target=_slow_reader, args=(server, stop, got))
    reader.start()
    try:
        client.settimeout(0.3)
        # Each wait is short (the reader keeps draining), so only a deadline
        # for the whole call can end it before the 32 MiB are through.
        with pytest.raises(TimeoutError, match="timed out") as info:
            send(client, payload, tmp_path)
    finally:
        stop.set()
        reader.join(GUARD)
    sent = info.value.bytes_sent  # type: ignore[attr-defined]
    assert 0 < sent < len(payload)
    client.shutdown(stdlib_socket.SHUT_WR)
    server.setblocking(True)
    while chunk := server.recv(1 << 20):
        got[0] += len(chunk)
    assert got[0] == sent  # every byte reported as sent arrived, no more


def test_blocking_send_waits_for_room_and_never_returns_zero(
    tcp_pair: tuple[asock_sync.socket, asock_sync.socket],
) -> None:
    client, server = tcp_pair
    queued = _fill(client)

    def drain_later() -> None:
        time.sleep(0.1)
        left = queued
        while left > 0:
            left -= len(server.recv(1 << 20))

    drainer = threading.Thread(target=drain_later)
    drainer.start()
    try:
        assert client.gettimeout() is None
        sent = client.send(b"z" * 65536)
    finally:
        drainer.join(GUARD)
    assert sent > 0


# -- EINTR (PEP 475) with real signals -----------------------------------------


class Interrupted(Exception):
    """Raised by a test's signal handler."""


@pytest.fixture
def interval_timer() -> Iterator[Callable[[Callable[[int], None]], None]]:
    """Start SIGALRM every 10 ms, calling ``handler(count)``; stopped after the test."""
    if not hasattr(signal, "setitimer"):
        pytest.skip("signal.setitimer is not available")
    count = [0]
    old = signal.getsignal(signal.SIGALRM)

    def start(handler: Callable[[int], None]) -> None:
        def on_alarm(signum: int, frame: FrameType | None) -> None:
            count[0] += 1
            if count[0] > 2000:  # 20 s of interruptions: the call never ended
                raise Interrupted("the call kept restarting its timeout")
            handler(count[0])

        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)

    yield start
    signal.setitimer(signal.ITIMER_REAL, 0, 0)
    signal.signal(signal.SIGALRM, old)


def test_interrupted_recv_keeps_its_original_deadline(
    tcp_pair: tuple[asock_sync.socket, asock_sync.socket],
    interval_timer: Callable[[Callable[[int], None]], None],
) -> None:
    _, server = tcp_pair
    seen = []
    server.settimeout(0.3)
    interval_timer(seen.append)
    # A signal every 10 ms: if each interruption restarted the 0.3 s wait, the
    # call would never time out (the handler gives up after 2000 signals).
    with pytest.raises(TimeoutError, match="timed out"):
        server.recv(1)
    assert len(seen) >= 2


def test_blocking_recv_is_retried_after_signals_and_gets_its_data(
    tcp_pair: tuple[asock_sync.socket, asock_sync.socket],
    interval_timer: Callable[[Callable[[int], None]], None],
) -> None:
    client, server = tcp_pair
    interrupted_enough = threading.Event()

    def on_signal(count: int) -> None:
        if count >= 5:
            interrupted_enough.set()

    def send_after_signals() -> None:
        if interrupted_enough.wait(GUARD):
            client.sendall(b"after the signals")

    sender = threading.Thread(target=send_after_signals)
    sender.start()
    interval_timer(on_signal)
    try:
        assert server.recv(100) == b"after the signals"
    finally:
        sender.join(GUARD)
    assert interrupted_enough.is_set()


def test_exception_from_a_signal_handler_ends_the_call_and_loses_nothing(
    tcp_pair: tuple[asock_sync.socket, asock_sync.socket],
    interval_timer: Callable[[Callable[[int], None]], None],
) -> None:
    client, server = tcp_pair

    def on_signal(count: int) -> None:
        if count == 3:
            raise Interrupted(count)

    interval_timer(on_signal)
    with pytest.raises(Interrupted):
        server.recv(100)
    signal.setitimer(signal.ITIMER_REAL, 0, 0)
    client.sendall(b"still usable")
    assert server.recv(100) == b"still usable"


def test_interrupted_sendall_delivers_everything(
    tcp_pair: tuple[asock_sync.socket, asock_sync.socket],
    interval_timer: Callable[[Callable[[int], None]], None],
) -> None:
    client, server = tcp_pair
    payload = os.urandom(4 << 20)
    received = bytearray()

    def read_all() -> None:
        while chunk := server.recv(1 << 16):
            received.extend(chunk)
            time.sleep(0.001)

    reader = threading.Thread(target=read_all)
    reader.start()
    interval_timer(lambda count: None)
    try:
        client.sendall(payload)
        client.shutdown(stdlib_socket.SHUT_WR)
    finally:
        reader.join(GUARD)
    assert bytes(received) == payload
