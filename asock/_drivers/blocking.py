"""Blocking readiness waits for ``asock_sync``: ``poll`` in the calling thread.

Each waiting thread polls the socket together with a per-socket wake-up
descriptor (an eventfd, or a pipe where there is none). ``close()`` from
another thread signals it, so a thread blocked on a socket that is closed
under it wakes with EBADF; with the stdlib on Linux it would sleep on.
"""

from __future__ import annotations

import math
import os
import select
import threading
from typing import TYPE_CHECKING

from .._core.socket_base import READ

if TYPE_CHECKING:
    from .._core.socket_base import SocketBase

_POLL_EVENTS = (select.POLLIN, select.POLLOUT)
#: The longest single poll() in seconds: its timeout is a C int of milliseconds.
_MAX_POLL_SECONDS = (2**31 - 1) // 1000


class _ThreadWake:
    """The wake-up descriptor shared by all threads waiting on one socket.

    It stays open while any thread still polls it, even after the socket is
    released: a thread that got past its checks just as another thread
    closed the socket must find it signalled, not closed (or, worse, its
    number reused by some other file).
    """

    __slots__ = ("closing", "lock", "read_fd", "released", "users", "write_fd")

    def __init__(self) -> None:
        if hasattr(os, "eventfd"):
            self.read_fd = self.write_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        else:  # pragma: no cover - platforms without eventfd
            self.read_fd, self.write_fd = os.pipe()
            os.set_blocking(self.write_fd, False)
        self.lock = threading.Lock()
        self.users = 0
        self.closing = False
        self.released = False

    def enter(self) -> bool:
        """Count the calling thread in; False once closing began (don't wait then)."""
        with self.lock:
            if self.closing:
                return False
            self.users += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.users -= 1
            if self.released and not self.users:
                self._close()

    def wake_closing(self) -> None:
        with self.lock:
            self.closing = True
            try:
                os.write(self.write_fd, (1).to_bytes(8, "little"))
            except OSError:  # pragma: no cover - already signalled
                pass

    def release(self) -> None:
        with self.lock:
            self.released = True
            if not self.users:
                self._close()

    def _close(self) -> None:
        os.close(self.read_fd)
        if self.write_fd != self.read_fd:  # pragma: no cover - pipe fallback
            os.close(self.write_fd)


def wait(s: SocketBase, event: int, timeout: float | None) -> bool:
    """Block until ``s`` may be ready for ``event``; False after ``timeout`` s.

    Interrupted polls are retried by ``select.poll`` itself (PEP 475); the
    operation layer's deadline keeps counting from the call's start.
    """
    queues = s._queues
    wake = queues.get(_ThreadWake) if queues else None
    if wake is None:
        wake = s._queue(_ThreadWake, _ThreadWake)
        if wake is None:
            return True
    assert isinstance(wake, _ThreadWake)
    if not wake.enter():
        return True
    try:
        return _poll(s, wake, event, timeout)
    finally:
        wake.leave()


def _poll(s: SocketBase, wake: _ThreadWake, event: int, timeout: float | None) -> bool:
    # Checked after joining the queue: a close() that began earlier is seen
    # here, one that begins later signals the wake-up descriptor.
    fd = s._sock.fileno()
    if fd < 0 or s._released():
        return True
    poller = select.poll()
    poller.register(fd, _POLL_EVENTS[event != READ])
    poller.register(wake.read_fd, select.POLLIN)
    if timeout is None:
        return bool(poller.poll())
    if timeout > _MAX_POLL_SECONDS:
        # poll() takes a C int of milliseconds; a longer timeout (settimeout
        # accepts years) waits in slices. A slice that ends reports a wake-up,
        # so the operation retries and waits again for what is left.
        poller.poll(_MAX_POLL_SECONDS * 1000)
        return True
    return bool(poller.poll(math.ceil(timeout * 1000)))
