"""asock's own epoll instance for a trio run: the trio driver's scheme for many sockets.

A run that has many sockets waiting gets one edge-triggered epoll instance
(a :class:`TrioHub`),
watched by a trio system task through a single ``wait_readable`` on its
descriptor. A socket is registered with it once, on its first wait, and stays
registered until close() or detach(). A wait then costs no system call and
no registration in trio's I/O manager: the task parks with
``wait_task_rescheduled`` (or its compiled twin, see :func:`_reader_wait_scheme`),
and the hub's task drains the epoll instance and
reschedules the waiters of every socket that became ready, one trip through
trio's epoll for a whole batch of sockets.

trio's own ``wait_readable`` costs an ``epoll_ctl`` per wait (it uses
``EPOLLONESHOT``), allocates its per-descriptor record again after each
wake-up, and keeps four frames and two closures per waiting task. The hub
costs one step of its own task per batch of wake-ups instead.

Edge-triggered readiness is safe for the reason given in the asyncio driver:
the operation layer only waits after its system call failed with ``EAGAIN``
(or ``EINPROGRESS``), so the socket can only become ready by a new edge,
which epoll keeps until the hub collects it, and the waiter is parked before
the hub's task can run again. Several tasks may wait on one socket (trio
itself allows one per direction); each edge wakes them all, and those that
find nothing wait for the next.

``close()`` unregisters the descriptor while it is still open and wakes every
waiter; their retried call fails with EBADF. The hub closes its epoll
instance once no socket is registered with it, and when the run ends, so an
idle run holds no descriptor of asock's.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import outcome
import trio

from ..socket_base import READ, forget_on_owner

if TYPE_CHECKING:
    from ..socket_base import ForgetCountdown

from .epoll_set import READABLE as _READABLE
from .epoll_set import WRITABLE as _WRITABLE
from .epoll_set import EpollSet

_current_task = trio.lowlevel.current_task
_reschedule = trio.lowlevel.reschedule
_wait_task_rescheduled = trio.lowlevel.wait_task_rescheduled
_SUCCEEDED = trio.lowlevel.Abort.SUCCEEDED


def _reader_wait_scheme() -> tuple[Callable[[Any], Coroutine[Any, Any, bool]], Any]:
    """How a socket's first reader waits: ``(wait, make_trap)``.

    A wait is ``wait(queue.trap)``, ``queue.trap`` made by ``make_trap(queue)``.
    With the compiled extension, the trap is trio's own ``WaitTaskRescheduled``,
    made once per socket, and ``_speedups.trap_wait`` yields it to trio's
    scheduler, as ``wait_task_rescheduled`` does inside: no coroutine, generator
    or trap per wait (about 0.35 kB less per waiting connection, and less time
    per wait). That message is private to trio (``trio._core._traps``; the same
    from trio 0.2 to 0.35), so asock uses it only where it is the class trio's
    scheduler checks for and has the one field, and otherwise waits with the
    public ``wait_task_rescheduled(queue)``: then the "trap" is the queue
    itself, the abort function.
    """
    from ..kernel_calls import COMPILED

    if COMPILED:
        try:
            from trio._core import _run as trio_run
            from trio._core._traps import WaitTaskRescheduled

            from .._speedups import trap_wait
        except ImportError:
            pass
        else:
            fields = getattr(WaitTaskRescheduled, "__attrs_attrs__", ())
            if getattr(trio_run, "WaitTaskRescheduled", None) is WaitTaskRescheduled and [
                field.name for field in fields
            ] == ["abort_func"]:
                return trap_wait, WaitTaskRescheduled  # type: ignore[return-value]
    return _wait_task_rescheduled, lambda queue: queue


#: The first reader's wait, called with ``queue.trap`` (see _reader_wait_scheme).
reader_wait, _make_trap = _reader_wait_scheme()

_Tasks = list[trio.lowlevel.Task]


def _wake_task(task: trio.lowlevel.Task) -> None:
    # True: what a driver's wait returns when woken (trio's default is None).
    _reschedule(task, outcome.Value(True))


def _wake_all(tasks: _Tasks) -> None:
    for task in tasks:
        _wake_task(task)


class HubQueue:
    """One socket's registration with a hub, and the tasks waiting on it.

    The first reader and the first writer have a slot each; further waiters
    go to a list with an abort function of their own. The first reader's
    abort function is the queue itself (calling it empties the reader slot),
    so the common wait, one reader, allocates nothing but the wait itself
    (with the compiled extension one small object) and keeps no bound method
    alive per waiting connection.
    """

    __slots__ = (
        "fd", "hub", "more_readers", "more_writers", "reader", "trap", "watches_write", "writer",
    )

    def __init__(self, hub: TrioHub, fd: int) -> None:
        self.hub = hub
        self.fd = fd
        #: What the first reader's wait hands trio (reader_wait(self.trap)).
        self.trap = _make_trap(self)
        self.reader: trio.lowlevel.Task | None = None
        self.writer: trio.lowlevel.Task | None = None
        self.more_readers: _Tasks | None = None
        self.more_writers: _Tasks | None = None
        # EPOLLOUT is added on the first wait for writing: most sockets never
        # wait to send, and would otherwise be reported whenever the peer reads.
        self.watches_write = False

    def __call__(self, _: object) -> trio.lowlevel.Abort:
        """Abort the first reader's wait (trio calls it on cancellation)."""
        self.reader = None
        return _SUCCEEDED

    def _drop_writer(self, _: object) -> trio.lowlevel.Abort:
        self.writer = None
        return _SUCCEEDED

    def park(self, event: int) -> Coroutine[Any, Any, bool]:
        """The wait of the current task: trio's own lowest-level one, no frame of ours.

        True once woken (by readiness, or by close()).
        """
        task = _current_task()
        if event == READ:
            if self.reader is None:
                self.reader = task
                return reader_wait(self.trap)
            if self.more_readers is None:
                self.more_readers = []
            return _park_in(self.more_readers, task)
        if not self.watches_write:
            self.hub.watch_write(self)
        if self.writer is None:
            self.writer = task
            return _wait_task_rescheduled(self._drop_writer)
        if self.more_writers is None:
            self.more_writers = []
        return _park_in(self.more_writers, task)

    def wake(self, mask: int) -> None:
        """Reschedule the tasks that ``mask`` (epoll's report) concerns."""
        if mask & _READABLE:
            task = self.reader
            if task is not None:
                self.reader = None
                _wake_task(task)
            if self.more_readers:
                more, self.more_readers = self.more_readers, None
                _wake_all(more)
        if mask & _WRITABLE:
            task = self.writer
            if task is not None:
                self.writer = None
                _wake_task(task)
            if self.more_writers:
                more, self.more_writers = self.more_writers, None
                _wake_all(more)

    def _forget(self) -> None:
        # In the run's thread: drop the descriptor from the hub while the
        # number is still ours, and wake every waiter (their retry fails with EBADF).
        self.hub.forget(self)
        self.wake(_READABLE | _WRITABLE)
        # The socket is released: nobody waits here again. The trap refers
        # back to the queue; dropping it lets the queue go without the cycle
        # collector.
        self.trap = None

    def wake_closing(self, closing: bool) -> Callable[[ForgetCountdown], None] | None:
        """Unregister the descriptor and wake every waiter (see ``ReadinessQueue``)."""
        hub = self.hub
        if not hub.open:
            return None  # the run is over: nothing watches the descriptor, nobody waits
        if trio.lowlevel.in_trio_run() and trio.lowlevel.current_trio_token() is hub.token:
            self._forget()
            return None
        # Another thread: only the run's own thread may reschedule its tasks.
        return forget_on_owner(
            hub.token.run_sync_soon, self._forget, trio.RunFinishedError, closing
        )


def _park_in(tasks: _Tasks, task: trio.lowlevel.Task) -> Coroutine[Any, Any, bool]:
    tasks.append(task)

    def abort(_: object) -> trio.lowlevel.Abort:
        if task in tasks:  # the list is swapped out when its tasks are woken
            tasks.remove(task)
        return _SUCCEEDED

    return _wait_task_rescheduled(abort)


class TrioHub(EpollSet[HubQueue]):
    """asock's edge-triggered epoll instance for one trio run, and the task watching it."""

    __slots__ = ("fd", "open", "run", "token")

    def __init__(self, run: RunState) -> None:
        super().__init__()
        self.run = run
        self.fd = self.epoll.fileno()
        self.token = trio.lowlevel.current_trio_token()
        self.open = True
        try:
            trio.lowlevel.spawn_system_task(self._watch, name="asock epoll hub")
        except BaseException:  # RuntimeError: the run is shutting down
            self.open = False
            self.epoll.close()
            raise

    def register(self, fd: int) -> HubQueue:
        """Watch ``fd`` (edge-triggered, for reading) and return its queue. In the run."""
        queue = HubQueue(self, fd)
        self.watch(queue)
        return queue

    def adopt(self, queue: HubQueue) -> None:
        """Take over ``queue``, left by the hub of an earlier run (nobody waits in it)."""
        queue.hub = self
        queue.watches_write = False
        queue.reader = queue.writer = None
        queue.more_readers = queue.more_writers = None
        self.watch(queue)

    def forget(self, queue: HubQueue) -> None:
        """Unregister ``queue``'s descriptor; close the hub when it was the last. In the run."""
        if self.unwatch(queue):
            self._shut()
            # The watching task wakes with ClosedResourceError and ends.
            trio.lowlevel.notify_closing(self.fd)
            self.epoll.close()

    def _shut(self) -> None:
        self.open = False
        self.queues.clear()  # a socket's later close() finds nothing to forget
        if self.run.hub is self:
            self.run.hub = None

    async def _watch(self) -> None:
        epoll, queues = self.epoll, self.queues
        try:
            # `open` is checked before every wait and after every wake-up:
            # forget() may close the hub (and its descriptor, whose number
            # can then be reused) before this task has first run, or after
            # epoll woke it but before it ran; then it must not touch the
            # descriptor again.
            while self.open:
                await trio.lowlevel.wait_readable(self.fd)
                if not self.open:
                    return
                for fd, mask in epoll.poll(0):
                    queue = queues.get(fd)
                    if queue is None:
                        continue
                    reader = queue.reader
                    if reader is not None and mask & _READABLE and not queue.more_readers:
                        # wake()'s common case, inlined: this runs once per wake-up
                        queue.reader = None
                        _reschedule(reader, outcome.Value(True))
                        if mask & _WRITABLE:
                            queue.wake(mask & _WRITABLE)
                    else:
                        queue.wake(mask)
        except trio.ClosedResourceError:
            pass  # forget() closed the hub
        finally:
            if self.open:
                # Cancelled: the run is ending. Tasks may still wait (in other
                # system tasks, or shielded); wake them all, so that they
                # retry and, finding nothing, wait through trio's own I/O
                # manager for the rest of the run (no new hub is started).
                for queue in list(queues.values()):
                    queue.wake(_READABLE | _WRITABLE)
                self._shut()
                self.run.ending = True
                self.epoll.close()


class RunState:
    """What asock keeps per trio run: its hub, and how many sockets wait through trio."""

    __slots__ = ("direct", "ending", "hub")

    def __init__(self) -> None:
        #: The hub, while the run has one (its sockets' queues say which they use).
        self.hub: TrioHub | None = None
        #: Set when the hub was cancelled with the run: no new one is started then.
        self.ending = False
        #: Sockets that wait through trio's own I/O manager and are still open
        #: (kept by the trio driver, which starts the hub past drivers.HUB_AFTER).
        self.direct = 0


_RUN: trio.lowlevel.RunVar[RunState | None] = trio.lowlevel.RunVar("asock_trio_run")


def run_state() -> RunState:
    """The running trio run's state (made on first use)."""
    run = _RUN.get(None)
    if run is None:
        run = RunState()
        _RUN.set(run)
    return run


def start_hub(run: RunState) -> TrioHub | None:
    """Give the running trio run a hub (its watching task starts with it).

    None once the run is shutting down (trio takes no new system task then,
    or the run's hub has been cancelled with it): the caller waits through
    trio's own I/O manager instead.
    """
    if run.ending:
        return None
    try:
        run.hub = TrioHub(run)
    except RuntimeError:
        return None
    return run.hub
