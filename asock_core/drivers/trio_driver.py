"""Readiness waits for trio: trio's own for a few sockets, asock's epoll hub for many.

A run's first sockets wait with ``trio.lowlevel.wait_readable``/``wait_writable``
(the direct scheme, :class:`_TrioQueue`). Once more than ``drivers.HUB_AFTER``
sockets have waited in the run and are still open, further sockets are
registered with an epoll instance owned by asock and watched by one trio
system task (:mod:`.trio_hub`). Each scheme wins where the other loses:

- trio's wait costs an ``epoll_ctl`` and four frames per wait, but a wake-up
  is one step of the woken task;
- the hub's wait costs no system call and one frame, but a wake-up first
  runs the hub's task, which costs an extra pass of trio's scheduler. With
  one socket ready at a time (a ping-pong) that pass is paid in full and the
  round trip is about 40% slower; with many sockets ready at once it is
  shared, and an echo server on 100 connections serves about 30% more
  requests per CPU-second, in half the memory per waiting connection.

Once the run has a hub, the sockets that waited through trio move to it too,
each at its next wait (a socket's first wait on the hub registers it, once).

In the direct scheme trio lets only one task wait for each kind of readiness on a descriptor, but
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

from .. import drivers
from ..socket_base import READ, WRITE, forget_on_owner
from .trio_hub import HubQueue, RunState, TrioHub, reader_wait, run_state, start_hub

if TYPE_CHECKING:
    from ..socket_base import ForgetCountdown, SocketBase



_current_trio_token = trio.lowlevel.current_trio_token
_current_task = trio.lowlevel.current_task


class _TrioQueue:
    """The tasks waiting for one kind of readiness on one socket."""

    __slots__ = ("counted_in", "fd", "followers", "leading", "token", "wait_ready")

    def __init__(self, event: int) -> None:
        self.wait_ready = (
            trio.lowlevel.wait_readable if event == READ else trio.lowlevel.wait_writable
        )
        self.leading = False
        self.fd = -1
        self.followers: list[trio.lowlevel.Task] = []
        self.token: trio.lowlevel.TrioToken | None = None
        #: The run whose count of direct sockets this socket is in (on one
        #: of its two queues: the direction it waited for first).
        self.counted_in: RunState | None = None

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
        token = _current_trio_token()
        if token is not self.token:
            if self.counted_in is not None:
                # First wait in a new run: count the socket in this run (it
                # moves to this run's hub, if it gets one, like its others).
                self.counted_in.direct -= 1
                self.counted_in = run_state()
                self.counted_in.direct += 1
            self.token = token
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
        if self.counted_in is not None:
            self.counted_in.direct -= 1
            self.counted_in = None
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


#: The keys of a socket's two direct queues (made once: a wait allocates
#: nothing), and of its queue in a hub (one for both directions).
_KEYS = (("trio", READ), ("trio", WRITE))
_HUB_KEY = "trio-hub"


async def _closing() -> bool:
    return True


async def _wait_until_timeout(queue: _TrioQueue, s: SocketBase, event: int, timeout: float) -> bool:
    with trio.move_on_after(timeout):
        return await queue.wait(s, event)
    return False


def _park(queue: HubQueue, event: int, timeout: float | None) -> Coroutine[Any, Any, bool]:
    if timeout is None:
        return queue.park(event)
    return _park_until(queue, event, timeout)


async def _park_until(queue: HubQueue, event: int, timeout: float) -> bool:
    with trio.move_on_after(timeout):
        await queue.park(event)
        return True
    return False


class TrioDriver:
    """Waits in trio's I/O manager, or on asock's hub once a run has many sockets."""

    def wait(self, s: SocketBase, event: int, timeout: float | None) -> Coroutine[Any, Any, bool]:
        """Wait for ``event`` on ``s``; True when woken, False on timeout.

        A plain function returning the awaitable the task parks on: the
        waiting coroutine, or in the hub trio's ``wait_task_rescheduled`` itself.
        """
        # The steady states read the socket's first queue (never write it),
        # as the asyncio driver does: a socket on the hub, or on trio's own
        # wait for one direction only.
        key = s._first_key
        if key is _HUB_KEY:
            queue = s._first_queue
            if type(queue) is HubQueue and queue.hub.open:
                if event == READ and timeout is None and queue.reader is None:
                    # HubQueue.park's common case, inlined: this runs on every wait
                    queue.reader = _current_task()
                    return reader_wait(queue.trap)
                return _park(queue, event, timeout)
        elif key is _KEYS[event] and not s._queues:
            queue = s._first_queue
            if type(queue) is _TrioQueue and queue.counted_in is not None and (
                queue.counted_in.hub is None
            ):
                # trio's own wait, in a run that has no hub
                if timeout is None:
                    return queue.wait(s, event)
                return _wait_until_timeout(queue, s, event, timeout)
        return self._other_wait(s, event, timeout)

    def _other_wait(
        self, s: SocketBase, event: int, timeout: float | None
    ) -> Coroutine[Any, Any, bool]:
        # A socket with more than one queue (both directions waited through
        # trio, or moving to the hub), or one that never waited in this run.
        queue = s.queue_at(_HUB_KEY)
        if type(queue) is HubQueue and queue.hub.open:
            return _park(queue, event, timeout)
        queue = s.queue_at(_KEYS[event])
        if type(queue) is _TrioQueue and (queue.counted_in is None or queue.counted_in.hub is None):
            # trio's own wait, in a run that has no hub (or for a direction
            # that moves with the other one)
            return self._direct_wait(queue, s, event, timeout)
        return self._first_wait(s, event, timeout)

    @staticmethod
    def _direct_wait(
        queue: _TrioQueue, s: SocketBase, event: int, timeout: float | None
    ) -> Coroutine[Any, Any, bool]:
        if timeout is None:
            return queue.wait(s, event)
        return _wait_until_timeout(queue, s, event, timeout)

    def _first_wait(
        self, s: SocketBase, event: int, timeout: float | None
    ) -> Coroutine[Any, Any, bool]:
        fd = s.fileno()
        if fd < 0:
            return _closing()
        run = run_state()
        hub = run.hub
        left = s.queue_at(_HUB_KEY)
        if hub is None and (left is not None or run.direct >= drivers.HUB_AFTER):
            hub = start_hub(run)
        if hub is not None:
            # Every socket of a run that has a hub waits on it, those that
            # waited through trio before included (from their next wait on).
            return self._hub_wait(s, hub, left, fd, event, timeout)
        first_direction = s.queue_at(_KEYS[1 - event]) is None
        queue = s._queue(_KEYS[event], _TrioQueue, event)
        if queue is None:
            return _closing()
        assert type(queue) is _TrioQueue
        if first_direction and queue.counted_in is None:
            # a socket counts once, whichever direction it waits for first
            run.direct += 1
            queue.counted_in = run
        return self._direct_wait(queue, s, event, timeout)

    @staticmethod
    def _hub_wait(
        s: SocketBase, hub: TrioHub, left: object, fd: int, event: int, timeout: float | None
    ) -> Coroutine[Any, Any, bool]:
        if type(left) is HubQueue:
            # The queue of a hub whose run is over: this run's hub takes it on.
            hub.adopt(left)
            if s._released():  # closed meanwhile, from another thread
                hub.forget(left)
                return _closing()
            return _park(left, event, timeout)
        queue = s._queue(_HUB_KEY, hub.register, fd)
        if queue is None:
            return _closing()  # the retried call reports EBADF
        return _park(queue, event, timeout)  # type: ignore[arg-type]

    async def checkpoint(self) -> None:
        """Yield to the trio scheduler once (a cancellation point)."""
        await trio.lowlevel.checkpoint()


DRIVER = TrioDriver()
