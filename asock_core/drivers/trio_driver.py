"""Readiness waits for trio, on ``trio.lowlevel.wait_readable``/``wait_writable``.

trio lets only one task wait for each kind of readiness on a descriptor, but
asock lets several (a pool of tasks reading one UDP socket). So one waiter
leads and parks in trio's I/O manager; the others follow and are woken when
the leader returns, for any reason, to retry their own call. Closing the
socket uses ``notify_closing``, which wakes the leader with
``ClosedResourceError``; the retried call then fails with EBADF.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import trio

from ..socket_base import READ, WRITE, forget_on_owner

if TYPE_CHECKING:
    from ..socket_base import ForgetCountdown, SocketBase



_current_trio_token = trio.lowlevel.current_trio_token


class _TrioQueue:
    """The tasks waiting for one kind of readiness on one socket."""

    __slots__ = ("fd", "followers", "leading", "token", "wait_ready")

    def __init__(self, event: int) -> None:
        self.wait_ready = (
            trio.lowlevel.wait_readable if event == READ else trio.lowlevel.wait_writable
        )
        self.leading = False
        self.fd = -1
        self.followers: list[trio.lowlevel.Task] = []
        self.token: trio.lowlevel.TrioToken | None = None

    async def wait(self, s: SocketBase, event: int) -> bool:
        if self.leading:
            task = trio.lowlevel.current_task()
            self.followers.append(task)

            def abort(_: Any) -> trio.lowlevel.Abort:
                self.followers.remove(task)
                return trio.lowlevel.Abort.SUCCEEDED

            await trio.lowlevel.wait_task_rescheduled(abort)
            return True
        fd = s.fileno()
        if fd < 0:
            return True
        self.leading = True
        self.fd = fd
        self.token = _current_trio_token()
        try:
            await self.wait_ready(fd)
        except trio.ClosedResourceError:
            pass  # notify_closing: the retried call fails with EBADF
        finally:
            self.leading = False
            if self.followers:  # most waits have none: no new list per wait
                followers, self.followers = self.followers, []
                for task in followers:
                    trio.lowlevel.reschedule(task)
        return True

    def wake_closing(self, closing: bool) -> Callable[[ForgetCountdown], None] | None:
        # Called even with nobody waiting: notify_closing also drops trio's
        # epoll registration, which would otherwise outlive a dup()ed fd.
        token = self.token
        if token is None:
            return None
        fd = self.fd
        if trio.lowlevel.in_trio_run() and trio.lowlevel.current_trio_token() is token:
            trio.lowlevel.notify_closing(fd)
            return None
        # Another thread: only trio's own thread may touch its I/O manager
        # (a new socket on a number trio still holds gets BusyResourceError).
        return forget_on_owner(
            token.run_sync_soon, lambda: trio.lowlevel.notify_closing(fd),
            trio.RunFinishedError, closing,
        )


#: The keys of a socket's two trio queues (made once: a wait allocates nothing).
_KEYS = (("trio", READ), ("trio", WRITE))


async def _closing() -> bool:
    return True


async def _wait_until_timeout(queue: _TrioQueue, s: SocketBase, event: int, timeout: float) -> bool:
    with trio.move_on_after(timeout):
        return await queue.wait(s, event)
    return False


class TrioDriver:
    """Waits in trio's I/O manager."""

    def wait(self, s: SocketBase, event: int, timeout: float | None) -> Coroutine[Any, Any, bool]:
        """Wait for ``event`` on ``s``; True when woken, False on timeout.

        A plain function returning the waiting coroutine: one coroutine fewer per wait.
        """
        key = _KEYS[event]
        queues = s._queues
        # The steady state reads _queues (never writes it), as the asyncio
        # driver does; a new socket goes through SocketBase._queue.
        queue = queues.get(key) if queues else None
        if queue is None:
            queue = s._queue(key, _TrioQueue, event)
        if queue is None:
            return _closing()  # the retried call reports EBADF
        assert type(queue) is _TrioQueue
        if timeout is None:
            return queue.wait(s, event)
        return _wait_until_timeout(queue, s, event, timeout)

    async def checkpoint(self) -> None:
        """Yield to the trio scheduler once (a cancellation point)."""
        await trio.lowlevel.checkpoint()


DRIVER = TrioDriver()
