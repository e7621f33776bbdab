"""Signals during blocking asock_sync calls (PEP 475).

A SIGALRM handler fires every few milliseconds while the main thread blocks
in asock_sync. The call is retried after each handler run (no
InterruptedError), and its timeout keeps counting from the call's start:
with a timeout much shorter than the run of signals, the call times out
while the signals are still coming, which a timeout restarted at every
interruption never would. A handler that raises ends the call with its
exception, as for the stdlib.
"""

from __future__ import annotations

import signal
import socket as stdlib_socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import asock_sync

from ._peers import GUARD, FullBacklog, fill_send_buffer, shrink_buffers

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "setitimer"), reason="needs signal.setitimer (Unix)"
)

#: Seconds between signals, and how many are sent at most: the run of signals
#: (1.5 s) is far longer than the timeouts below (0.2 s).
INTERVAL = 0.005
MAX_SIGNALS = 300
TIMEOUT = 0.2


class Alarm:
    """Counts SIGALRM deliveries; stops the timer after MAX_SIGNALS."""

    def __init__(self, raise_after: int | None = None) -> None:
        self.count = 0
        self.raise_after = raise_after

    def handler(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.count >= MAX_SIGNALS:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if self.raise_after is not None and self.count >= self.raise_after:
            raise KeyboardInterrupt  # what Ctrl-C does to a blocked call


@contextmanager
def signals_every(alarm: Alarm) -> Iterator[Alarm]:
    previous = signal.signal(signal.SIGALRM, alarm.handler)
    signal.setitimer(signal.ITIMER_REAL, INTERVAL, INTERVAL)
    try:
        yield alarm
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def later(delay: float, action: Callable[[], Any]) -> threading.Timer:
    timer = threading.Timer(delay, action)
    timer.start()
    return timer


def test_recv_is_retried_after_each_signal(no_fd_leak_sync: None) -> None:
    a, b = asock_sync.socketpair()
    with a, b:
        a.settimeout(GUARD)
        sender = later(0.1, lambda: b.sendall(b"after the signals"))
        with signals_every(Alarm()) as alarm:
            data = a.recv(100)
        sender.join()
        assert data == b"after the signals"
        assert alarm.count > 1  # the call really was interrupted, and carried on


@pytest.mark.parametrize("operation", ["recv", "recvfrom", "accept", "sendall", "connect"])
def test_timeout_counts_from_the_start_despite_signals(
    operation: str, no_fd_leak_sync: None
) -> None:
    closers: list[Any] = []
    try:
        if operation in ("recv", "sendall"):
            a, b = asock_sync.socketpair()
            closers += [a, b]
            if operation == "sendall":
                shrink_buffers(a._sock)
                fill_send_buffer(a._sock)
            call: Callable[[], Any] = (
                (lambda: a.recv(10)) if operation == "recv" else lambda: a.sendall(b"x" * 10**6)
            )
        elif operation == "recvfrom":
            a = asock_sync.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
            closers.append(a)
            a.bind(("127.0.0.1", 0))
            call = lambda: a.recvfrom(10)  # noqa: E731
        elif operation == "accept":
            a = asock_sync.create_server(("127.0.0.1", 0))
            closers.append(a)
            call = a.accept
        else:
            backlog = FullBacklog.open()
            a = asock_sync.socket()
            closers += [backlog, a]
            call = lambda: a.connect(backlog.address)  # noqa: E731
        a.settimeout(TIMEOUT)
        with signals_every(Alarm()) as alarm, pytest.raises(TimeoutError) as caught:
            call()
        # Timed out while signals were still arriving: the deadline was not
        # pushed back by each interruption.
        assert 1 < alarm.count < MAX_SIGNALS
        if operation == "sendall":
            assert caught.value.bytes_sent >= 0  # type: ignore[attr-defined]
    finally:
        for closer in closers:
            closer.close()


def test_a_raising_handler_ends_the_call_with_its_exception(no_fd_leak_sync: None) -> None:
    a, b = asock_sync.socketpair()
    with a, b:
        a.settimeout(GUARD)
        shrink_buffers(a._sock)
        with signals_every(Alarm(raise_after=5)), pytest.raises(KeyboardInterrupt) as caught:
            a.sendall(b"x" * 10**7)
        # Even an exception from a signal handler says how much was sent.
        sent = caught.value.bytes_sent  # type: ignore[attr-defined]
        assert sent > 0
        b.settimeout(GUARD)
        received = 0
        a.shutdown(stdlib_socket.SHUT_WR)
        while chunk := b.recv(1 << 20):
            received += len(chunk)
        assert received == sent
