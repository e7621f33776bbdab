"""Readiness waits for asyncio and uvloop.

A loop's first sockets wait through the loop's own registration (see the
last paragraph). Beyond them, where ``select.epoll`` exists, the loop gets
one edge-triggered epoll instance owned by asock (an :class:`_EpollHub`),
watched by the loop through a single ``add_reader``. A socket is registered
with it once, on its first wait, and stays registered until close() or
detach(), so a wait costs no system call: it parks a future in the
socket's queue, and the hub's reader callback drains the epoll instance and
wakes the waiters of each socket that became ready. (The loop's own
``add_reader``/``remove_reader`` per wait costs two ``epoll_ctl`` calls, and
on uvloop a libuv poll handle made and closed.)

Edge-triggered readiness is safe here because the operation layer only waits
after its system call failed with ``EAGAIN`` (or ``EINPROGRESS``): from then on
the socket can only become ready by a new edge, which epoll queues even while
nobody is collecting it, and the waiter is in place before the loop runs the
hub's callback again. Every waiter of a socket is woken by each edge; those
that find nothing when retrying wait for the next one.

``close()`` unregisters the descriptor from the epoll instance while it is
still open (so a later socket reusing the number never gets this one's
wake-ups) and wakes every waiter; their retried call fails with EBADF. The
hub closes its epoll instance as soon as no socket is registered, so an idle
loop holds no descriptor of asock's.

A loop's first ``drivers.HUB_AFTER`` sockets (while open) skip the hub:
they stay registered with the loop's own ``add_reader``/``add_writer``
between waits (:class:`_LoopRegistration`), which costs no extra
``epoll_wait`` and dispatch per wake-up. On the selector loop that
registration is made edge-triggered in the loop's own epoll instance; on
uvloop, and on loops without ``select.epoll``, it is level-triggered and
dropped when it fires with nobody waiting. Later sockets go to the hub,
whose one dispatch serves every socket ready in a pass and which holds no
per-socket handle of the loop's (on uvloop a libuv poll handle, about
0.5 kB per waiting connection).
"""

from __future__ import annotations

import asyncio
import functools
import select
import selectors
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .. import drivers
from ..socket_base import READ, forget_on_owner

if TYPE_CHECKING:
    from ..socket_base import ForgetCountdown, SocketBase

_Waiters = list["asyncio.Future[bool]"]


def _wake(waiters: _Waiters) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(True)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, or None."""
    return asyncio._get_running_loop()


if hasattr(select, "epoll"):
    from .epoll_set import READABLE as _READABLE
    from .epoll_set import WRITABLE as _WRITABLE
    from .epoll_set import EpollSet

    class _EpollQueue:
        """One socket's registration with a hub, and the tasks waiting on it."""

        __slots__ = ("fd", "fresh", "hub", "readers", "watches_write", "writers")

        def __init__(self, hub: _EpollHub, fd: int) -> None:
            self.hub = hub
            self.fd = fd
            # Until its first wait: the socket may still hold a queue for a
            # loop that closed since (see _drop_stale).
            self.fresh = True
            self.readers: _Waiters = []
            self.writers: _Waiters = []
            # EPOLLOUT is added on the first wait for writing: most sockets never
            # wait to send, and would otherwise get a wake-up whenever the peer reads.
            self.watches_write = False

        def park(self, event: int, timeout: float | None) -> Awaitable[bool]:
            if event == READ:
                readers = self.readers
                if not readers and timeout is None:
                    # _park's steady state, inlined (as in _LoopRegistration.park)
                    waiter = self.hub.loop.create_future()
                    readers.append(waiter)
                    return waiter
                return _park(self.hub.loop, readers, timeout)
            if not self.watches_write:
                self.hub.watch_write(self)
            return _park(self.hub.loop, self.writers, timeout)

        def wake_closing(self, closing: bool) -> None:
            # epoll_ctl is thread-safe: unregister now, while the number is
            # still ours, from whichever thread closes.
            self.hub.forget(self)
            loop = self.hub.loop
            if running_loop() is loop:
                self._wake_all()
                return
            try:
                loop.call_soon_threadsafe(self._wake_all)
            except RuntimeError:  # the loop is closed: nobody can be waiting on it
                pass

        def _wake_all(self) -> None:
            readers, self.readers = self.readers, []
            writers, self.writers = self.writers, []
            _wake(readers)
            _wake(writers)

    class _EpollHub(EpollSet[_EpollQueue]):
        """asock's edge-triggered epoll instance for one event loop."""

        __slots__ = ("loop",)

        def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
            super().__init__()
            self.loop = loop
            loop.add_reader(self.epoll.fileno(), self.dispatch)

        def register(self, fd: int) -> _EpollQueue:
            queue = _EpollQueue(self, fd)
            self.watch(queue)
            return queue

        def forget(self, queue: _EpollQueue) -> None:
            if self.unwatch(queue):
                self._close()

        def _close(self) -> None:
            if _hubs.get(self.loop) is self:
                del _hubs[self.loop]
            if running_loop() is self.loop or self.loop.is_closed():
                self._shut()
            else:
                try:
                    self.loop.call_soon_threadsafe(self._shut)
                except RuntimeError:  # closed meanwhile
                    self._shut()

        def drop(self) -> None:
            """Let go of a hub whose loop has closed (nobody can wait on it)."""
            self.queues.clear()  # a socket's later close() finds nothing to forget
            if _hubs.get(self.loop) is self:
                del _hubs[self.loop]
            self.epoll.close()

        def _shut(self) -> None:
            if self.queues and not self.loop.is_closed():
                # A close from another thread emptied the hub, and before this
                # ran on the loop a task registered a socket with it: keep
                # serving that socket rather than strand its waiters.
                _hubs.setdefault(self.loop, self)
                return
            try:
                self.loop.remove_reader(self.epoll.fileno())
            except (RuntimeError, ValueError):
                pass  # the loop is closed
            self.epoll.close()

        def dispatch(self) -> None:
            queues = self.queues
            for fd, mask in self.epoll.poll(0):
                queue = queues.get(fd)
                if queue is None:
                    continue
                if mask & _READABLE and queue.readers:
                    readers, queue.readers = queue.readers, []
                    for waiter in readers:  # _wake, inlined: this runs on every wake-up
                        if not waiter.done():
                            waiter.set_result(True)
                if mask & _WRITABLE and queue.writers:
                    writers, queue.writers = queue.writers, []
                    _wake(writers)

    _hubs: dict[asyncio.AbstractEventLoop, _EpollHub] = {}

    def _register(loop: asyncio.AbstractEventLoop, s: SocketBase) -> _EpollQueue:
        fd = s.fileno()
        hub = _hubs.get(loop)
        if hub is None:
            # A new loop: the hubs of loops closed since (pytest-asyncio's
            # loop per test, asyncio.run() in turn) go with their descriptors,
            # even those still holding an idle socket.
            for old in [old for old in list(_hubs.values()) if old.loop.is_closed()]:
                old.drop()
            hub = _hubs[loop] = _EpollHub(loop)
        return hub.register(fd)


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


def _stop_timer(timer: asyncio.TimerHandle, waiter: asyncio.Future[bool]) -> None:
    timer.cancel()


def _park(
    loop: asyncio.AbstractEventLoop, waiters: _Waiters, timeout: float | None
) -> asyncio.Future[bool]:
    """The future a waiting task awaits: True when woken, False on timeout.

    A bare future rather than a coroutine: the suspended task holds one frame
    less, which is both time and memory per waiting connection. A future
    that was cancelled or timed out stays in ``waiters`` (waking skips done
    futures) until the next wake-up swaps the list or the next wait prunes it.
    """
    if waiters:
        waiters[:] = [waiter for waiter in waiters if not waiter.done()]
    waiter: asyncio.Future[bool] = loop.create_future()
    waiters.append(waiter)
    if timeout is not None:
        timer = loop.call_later(timeout, _expire, waiter)
        waiter.add_done_callback(functools.partial(_stop_timer, timer))
    return waiter


async def _closing() -> bool:
    return True


class _LoopRegistration:
    """One socket's registration with the event loop itself, kept between waits.

    The registration stays in place between waits (no epoll_ctl, and on
    uvloop no libuv handle made and closed, per wait), and a wake-up costs
    no poll of asock's own beyond the loop's. How it must be armed depends
    on the loop:

    - uvloop reports readiness level-triggered and runs the callbacks its
      readiness made ready before it polls again, so a woken task has read
      the socket by the time the loop looks at it next. The registration is
      dropped only when it fires with nobody waiting.
    - The selector loop polls again before the woken task runs, so a
      level-triggered registration would fire again with nobody waiting
      (and be dropped and made again each wait). There the registration is
      made edge-triggered in the loop's own epoll instance (``edge``; see
      :func:`_edge_selector`), which is safe for the same reason as the hub
      is, and is kept until close().
    - Elsewhere (no ``select.epoll``) it is level-triggered, as on uvloop.
    """

    __slots__ = (
        "edge", "edge_key", "fd", "fresh", "loop", "readers", "reading", "writers", "writing",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        s: SocketBase,
        edge: selectors.EpollSelector | None,
    ) -> None:
        self.loop = loop
        self.fd = s.fileno()
        self.edge = edge
        #: The selector's key for the descriptor when it was last re-armed
        #: edge-triggered (a new key means somebody changed the registration).
        self.edge_key: object = None
        self.fresh = True  # until its first wait (see _drop_stale)
        count = _loop_registrations.get(loop)
        if count is None:
            # A new loop: counts left by sockets lost without close() on
            # loops closed since go, so no closed loop is held here.
            for old in [old for old in list(_loop_registrations) if old.is_closed()]:
                del _loop_registrations[old]
            count = 0
        _loop_registrations[loop] = count + 1
        self.readers: _Waiters = []
        self.writers: _Waiters = []
        self.reading = False
        self.writing = False

    def park(self, event: int, timeout: float | None) -> Awaitable[bool]:
        if event == READ:
            readers = self.readers
            if not self.reading:
                self.loop.add_reader(self.fd, self._readable)
                self.reading = True
                if self.edge is not None:
                    self._make_edge_triggered()
            elif not readers and timeout is None:
                # _park's steady state, inlined: a reader already registered,
                # nobody else waiting, no timer (one frame fewer per wait).
                waiter = self.loop.create_future()
                readers.append(waiter)
                return waiter
            return _park(self.loop, readers, timeout)
        if not self.writing:
            self.loop.add_writer(self.fd, self._writable)
            self.writing = True
            if self.edge is not None:
                self._make_edge_triggered()
        return _park(self.loop, self.writers, timeout)

    def _make_edge_triggered(self) -> None:
        # add_reader/add_writer have just (re-)armed the descriptor
        # level-triggered; no poll runs before this re-arms it. Re-arming
        # reports the current state, so an edge in between is not lost. The
        # mask is what the selector holds, so interest other code registered
        # on the descriptor (an add_writer of its own) is kept.
        selector = self.edge
        assert selector is not None
        key = selector._fd_to_key[self.fd]  # type: ignore[attr-defined]
        mask = select.EPOLLET
        if key.events & selectors.EVENT_READ:
            mask |= select.EPOLLIN
        if key.events & selectors.EVENT_WRITE:
            mask |= select.EPOLLOUT
        selector._selector.modify(self.fd, mask)  # type: ignore[attr-defined]
        self.edge_key = key

    def _fired_with_nobody_waiting(self) -> None:
        selector = self.edge
        assert selector is not None  # only edge-triggered registrations get here
        # Edge-triggered, that happens once per edge and needs nothing. But
        # other code's add_writer/remove_writer on the descriptor re-arms it
        # level-triggered (the selector replaces its key whenever it changes
        # the registration), and unread data would then fire this on every
        # pass of the loop: re-arm it edge-triggered, once. (Re-arming on
        # every such call would itself report the unread data again.)
        if selector._fd_to_key.get(self.fd) is not self.edge_key:  # type: ignore[attr-defined]
            self._make_edge_triggered()

    def _readable(self) -> None:
        readers = self.readers
        if readers:
            self.readers = []
            for waiter in readers:  # _wake, inlined: this runs on every wake-up
                if not waiter.done():
                    waiter.set_result(True)
        elif self.edge is None:
            self.loop.remove_reader(self.fd)
            self.reading = False
        else:
            self._fired_with_nobody_waiting()

    def _writable(self) -> None:
        if self.writers:
            writers, self.writers = self.writers, []
            _wake(writers)
        elif self.edge is None:
            self.loop.remove_writer(self.fd)
            self.writing = False
        else:
            self._fired_with_nobody_waiting()

    def _uncount(self) -> None:
        left = _loop_registrations.get(self.loop, 0) - 1
        if left > 0:
            _loop_registrations[self.loop] = left
        else:  # no count kept for a loop with none: a closed loop is not held
            _loop_registrations.pop(self.loop, None)

    def _forget(self) -> None:
        self._uncount()
        if self.reading:
            self.loop.remove_reader(self.fd)
            self.reading = False
        if self.writing:
            self.loop.remove_writer(self.fd)
            self.writing = False
        readers, self.readers = self.readers, []
        writers, self.writers = self.writers, []
        _wake(readers)
        _wake(writers)

    def wake_closing(self, closing: bool) -> Callable[[ForgetCountdown], None] | None:
        # The loop must drop the descriptor while the number is still ours
        # (libuv aborts on a registration whose descriptor was closed under
        # it), and only the loop's own thread may touch it while it runs. A
        # loop that is not running (between run_until_complete() calls, or
        # never run again before loop.close()) is forgotten at once: a
        # hand-over would wait for the loop to run, and loop.close() drops
        # it, leaving the descriptor open.
        if running_loop() is self.loop or not self.loop.is_running():
            if self.loop.is_closed():
                self._uncount()  # nothing watches the descriptor, nobody waits
            else:
                self._forget()
            return None
        # RuntimeError: the loop closed meanwhile, nothing watches the descriptor.
        return forget_on_owner(self.loop.call_soon_threadsafe, self._forget, RuntimeError, closing)


#: How many sockets are registered with each loop itself (_LoopRegistration), while any is.
_loop_registrations: dict[asyncio.AbstractEventLoop, int] = {}


def _hub_takes_over(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether a new socket on a loop-registration loop goes to the hub instead."""
    return hasattr(select, "epoll") and (
        loop in _hubs or _loop_registrations.get(loop, 0) >= drivers.HUB_AFTER
    )


def _drop_stale(s: SocketBase, loop: asyncio.AbstractEventLoop) -> None:
    """Drop ``s``'s queues for event loops that have closed.

    Run on a socket's first wait on ``loop``: a socket that waited on a loop
    now closed (the loop of the previous test, or of an earlier
    ``asyncio.run()``) would otherwise keep that loop, its hub and the hub's
    epoll descriptor until the socket closes.
    """

    def stale(key: object) -> bool:
        return key is not loop and isinstance(key, asyncio.AbstractEventLoop) and key.is_closed()

    for queue in s._drop_queues(stale):
        hub = getattr(queue, "hub", None)
        if hub is not None:
            hub.forget(queue)
        # a _LoopRegistration of a closed loop holds nothing to undo


def _edge_selector(loop: asyncio.AbstractEventLoop) -> selectors.EpollSelector | None:
    """A selector loop's ``EpollSelector``, if asock can re-arm in its epoll instance; or None.

    asyncio has no public way to register a descriptor edge-triggered, so
    asock re-arms its own registrations in the loop's epoll instance
    (``loop._selector._selector``) with ``EPOLLET``, reading the selector's
    key for the descriptor (``_fd_to_key``) to keep what it registered; both
    are the same in CPython 3.11-3.13. The loop's bookkeeping (which callback
    a descriptor has) is untouched. Any other selector, or a selector laid
    out otherwise, gets None and the hub.
    """
    selector = getattr(loop, "_selector", None)
    if (
        type(selector) is selectors.EpollSelector
        and isinstance(getattr(selector, "_selector", None), select.epoll)
        and isinstance(getattr(selector, "_fd_to_key", None), dict)
    ):
        return selector
    return None


def _is_uvloop(loop: asyncio.AbstractEventLoop) -> bool:
    return type(loop).__module__.startswith("uvloop")


#: Whether a loop class always gets level-triggered loop registrations
#: (uvloop, or no epoll); a selector loop's own selector decides for it.
_SCHEMES: dict[type, bool] = {}


class AsyncioDriver:
    """Waits on the running asyncio (or uvloop) event loop."""

    def wait(self, s: SocketBase, event: int, timeout: float | None) -> Awaitable[bool]:
        """Wait for ``event`` on ``s``; True when woken, False on timeout.

        A plain function returning the future the task parks on: no coroutine
        of its own per wait.
        """
        return self.wait_on(asyncio.get_running_loop(), s, event, timeout)

    def wait_on(
        self, loop: asyncio.AbstractEventLoop, s: SocketBase, event: int, timeout: float | None
    ) -> Awaitable[bool]:
        """:meth:`wait` on ``loop``, the running loop the caller already looked up."""
        if s._first_key is loop:
            # The steady state: the socket already waited on this loop. A
            # read of its first queue, never a write (SocketBase._queue's own
            # first step, without its frame: about 6% of a uvloop round trip).
            queue = s._first_queue
            if queue is not None and not queue.fresh:  # type: ignore[attr-defined]
                return queue.park(event, timeout)  # type: ignore[attr-defined,no-any-return]
        uses_loop = _SCHEMES.get(type(loop))
        if uses_loop is None:
            uses_loop = _SCHEMES[type(loop)] = _is_uvloop(loop) or not hasattr(select, "epoll")
        edge = None if uses_loop else _edge_selector(loop)
        if (uses_loop or edge is not None) and not _hub_takes_over(loop):
            queue = s._queue(loop, _LoopRegistration, loop, s, edge)
        else:
            queue = s._queue(loop, _register, loop, s)
        if queue is None:
            return _closing()  # the retried call reports EBADF
        if queue.fresh:  # type: ignore[attr-defined]
            queue.fresh = False  # type: ignore[attr-defined]
            _drop_stale(s, loop)
        return queue.park(event, timeout)  # type: ignore[attr-defined,no-any-return]

    async def checkpoint(self) -> None:
        """Yield to the event loop once."""
        await asyncio.sleep(0)

    def loop_running(self) -> bool:
        """Whether an asyncio (or uvloop) event loop runs in this thread."""
        return asyncio._get_running_loop() is not None


DRIVER = AsyncioDriver()
