"""Readiness waits for asyncio and uvloop, on the loop's own add_reader/add_writer.

A socket has at most one reader and one writer registration per loop, shared
by every task waiting on it; the first waiter registers, the wake-up wakes
them all (each retries its call, and those that find nothing wait again), and
the registration is dropped as soon as nobody waits, so an idle socket costs
the selector nothing.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .._core.socket_base import READ

if TYPE_CHECKING:
    from .._core.socket_base import SocketBase


class _LoopQueue:
    """The tasks of one loop waiting for one kind of readiness on one socket."""

    __slots__ = ("event", "fd", "loop", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop, event: int) -> None:
        self.loop = loop
        self.event = event
        self.fd = -1
        self.waiters: list[asyncio.Future[bool]] = []

    def _register(self, fd: int) -> None:
        self.fd = fd
        if self.event == READ:
            self.loop.add_reader(fd, self.wake_all)
        else:
            self.loop.add_writer(fd, self.wake_all)

    def _unregister(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            if self.event == READ:
                self.loop.remove_reader(fd)
            else:
                self.loop.remove_writer(fd)

    def wake_all(self) -> None:
        waiters, self.waiters = self.waiters, []
        self._unregister()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(True)

    def discard(self, waiter: asyncio.Future[bool]) -> None:
        try:
            self.waiters.remove(waiter)
        except ValueError:
            return
        if not self.waiters:
            self._unregister()

    def wake_closing(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.wake_all()
        else:
            # The loop belongs to another thread: only it may touch its selector.
            self.loop.call_soon_threadsafe(self.wake_all)

    def release(self) -> None:
        pass


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class AsyncioDriver:
    """Waits on the running asyncio (or uvloop) event loop."""

    async def wait(self, s: SocketBase, event: int, timeout: float | None) -> bool:
        """Wait for ``event`` on ``s``; True when woken, False on timeout."""
        loop = asyncio.get_running_loop()
        queue = s._queue((loop, event), lambda: _LoopQueue(loop, event))
        if queue is None:
            return True  # closing: the retried call reports EBADF
        assert isinstance(queue, _LoopQueue)
        waiter: asyncio.Future[bool] = loop.create_future()
        if not queue.waiters:
            fd = s._sock.fileno()
            if fd < 0:
                return True
            queue._register(fd)
        queue.waiters.append(waiter)
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()
            queue.discard(waiter)

    async def checkpoint(self) -> None:
        """Yield to the event loop once."""
        await asyncio.sleep(0)


DRIVER = AsyncioDriver()
