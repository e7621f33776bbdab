"""Socket state and every socket method that never waits.

Both fronts subclass :class:`SocketBase`. It owns a stdlib socket whose
timeout (``None``, ``0.0`` or a positive number) is asock's own, applied by the
operation layer as one deadline per call. The descriptor's O_NONBLOCK flag
depends on the front: always set on the async front (an event loop never
blocks in the kernel); on the sync front it is clear in blocking mode and set
otherwise, exactly as the stdlib sets it (see :attr:`SocketBase._kernel_blocks`).
"""

from __future__ import annotations

import builtins
import errno
import operator
import os
import socket as _stdlib
import sys
import warnings
from _thread import allocate_lock

# typing is not imported at run time: it would be most of the import cost.
from .kernel_calls import SocketState

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import TracebackType
    from typing import Any, ClassVar, Protocol, Self

    class ReadinessQueue(Protocol):
        """What a driver keeps per socket while tasks or threads wait on it."""

        def wake_closing(self, closing: bool) -> Callable[[ForgetCountdown], None] | None:
            """Wake every waiter because the socket is being closed (or detached).

            Called while the descriptor is still open, from the closing
            thread. The loop behind the queue must forget the descriptor
            before its number can be reused. Return None once that is done
            (or when it can be done at once); when closing from another
            thread than the loop's, instead return a function that has the
            loop forget it and then call ``countdown.forgotten()``: the
            descriptor is closed then, and close() itself does not wait.
            """


READ = 0
WRITE = 1


class ForgetCountdown:
    """A descriptor that loops in other threads must forget before it is closed.

    Each loop calls :meth:`forgotten` once it has dropped the descriptor; the
    last one closes it. Any thread may call it.
    """

    __slots__ = ("fd", "left", "lock")

    def __init__(self, fd: int, loops: int) -> None:
        self.fd = fd
        self.left = loops
        self.lock = allocate_lock()

    def forgotten(self) -> None:
        """One loop has forgotten the descriptor; the last one closes it."""
        with self.lock:
            self.left -= 1
            if self.left:
                return
        os.close(self.fd)


#: How long detach() in another thread waits for the loop that watches the
#: descriptor to forget it (seconds); only a loop blocked outside its event
#: loop takes long.
FOREIGN_DETACH_WAIT = 1.0


def forget_on_owner(
    schedule: Callable[[Callable[[], None]], object],
    forget: Callable[[], None],
    owner_gone: type[BaseException],
    closing: bool,
) -> Callable[[ForgetCountdown], None] | None:
    """A ``wake_closing`` result for a loop that runs in another thread.

    Only the loop's own thread may touch its registrations, and it must
    forget the descriptor before the number can be reused. ``schedule`` runs
    a function on that loop (``call_soon_threadsafe``, ``run_sync_soon``) and
    raises ``owner_gone`` once the loop is over; ``forget`` drops the
    descriptor from it and wakes its waiters. For close() the descriptor is
    handed over: the loop forgets it and then it is closed, and close() does
    not wait (two loops closing each other's sockets never stall each
    other). detach() must hand the descriptor back already forgotten, so it
    waits for the loop, at most FOREIGN_DETACH_WAIT seconds.
    """
    if closing:

        def close_later(countdown: ForgetCountdown) -> None:
            def forget_then_close() -> None:
                try:
                    forget()
                finally:
                    countdown.forgotten()

            try:
                schedule(forget_then_close)
            except owner_gone:  # the loop is over: nothing watches the descriptor
                countdown.forgotten()

        return close_later
    import threading  # here: asock_sync, which never gets here, must not pay for it

    forgotten = threading.Event()

    def forget_now() -> None:
        try:
            forget()
        finally:
            forgotten.set()

    try:
        schedule(forget_now)
    except owner_gone:
        return None
    forgotten.wait(FOREIGN_DETACH_WAIT)
    return None


def closed_socket_error() -> OSError:
    """The error the stdlib raises for an operation on a closed socket."""
    return OSError(errno.EBADF, os.strerror(errno.EBADF))


_C_LONG_MIN, _C_LONG_MAX = -(2**63), 2**63 - 1
#: Python 3.12's setblocking takes any object for its truth value; 3.11's a C long.
_FLAG_IS_TRUTH = sys.version_info >= (3, 12)

#: Marks a socket whose descriptor was released: nobody may start waiting on it.
_RELEASED: dict[object, ReadinessQueue] = {}
#: The key of a socket that has no first queue (never a driver's key).
_NO_KEY = object()
#: Guards making a socket's queues against close() swapping them for _RELEASED.
_queues_lock = allocate_lock()


class SocketBase(SocketState):
    """State shared by ``asock.socket`` and ``asock_sync.socket``.

    Subclasses supply :meth:`_wait` (how to wait for readiness) and
    :meth:`_checkpoint` (how to let other tasks run); everything else about a
    socket is here or in :mod:`asock_core.operations`.
    """

    __slots__ = ("__weakref__", "_closed", "_first_key", "_first_queue", "_io_refs", "_queues")

    #: Whether the front runs on an event loop (``asock``). If so, calls that
    #: complete at once yield to the loop now and then, and host names in
    #: addresses are looked up off the loop; if not (``asock_sync``), calls
    #: never yield and the stdlib call resolves names itself, blocking.
    _on_event_loop: ClassVar[bool] = False
    #: Whether blocking mode blocks in the kernel (``asock_sync``: the
    #: descriptor is then in blocking mode, as the stdlib's is) rather than in
    #: the front's driver (``asock``: the descriptor is always non-blocking).
    _kernel_blocks: ClassVar[bool] = False

    # A socket's driver state, one queue per key (an event loop, a trio
    # scheme): the first in two slots of its own, any more in the _queues
    # dict. Nearly every socket only ever has one, and a dict for it would
    # cost about 180 bytes per connection. Drivers read the slots first.
    _first_key: object
    _first_queue: ReadinessQueue | None
    _queues: dict[object, ReadinessQueue] | None

    def __init__(
        self,
        family: int = -1,
        type: int = -1,
        proto: int = -1,
        fileno: int | None = None,
    ) -> None:
        # The stdlib constructor validates the arguments and auto-detects
        # family/type/proto from ``fileno``; asock inherits its exact errors.
        # Its timeout is the default one, or 0.0 for a SOCK_NONBLOCK type.
        sock = _stdlib.socket(family, type, proto, fileno)
        self._adopt(sock, sock.gettimeout())

    def _adopt(self, sock: _stdlib.socket, timeout: float | None) -> None:
        try:
            sock.setblocking(self._kernel_blocks and timeout is None)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._timeout = timeout
        self._first_key = _NO_KEY
        self._first_queue = None
        self._queues = None
        self._io_refs = 0
        self._closed = False

    @classmethod
    def _from_stdlib(cls, sock: _stdlib.socket, timeout: float | None = None) -> Self:
        """Adopt ``sock`` (same descriptor, no copy) with the given timeout."""
        self = cls.__new__(cls)
        self._adopt(sock, timeout)
        return self

    @classmethod
    def _from_fd(cls, fd: int, family: int, type: int, proto: int) -> Self:
        """Wrap a descriptor fresh from accept(); it gets the default timeout."""
        return cls._from_stdlib(
            _stdlib.socket(family, type, proto, fd), _stdlib.getdefaulttimeout()
        )

    # -- hooks supplied by the fronts ------------------------------------

    def _wait(self, event: int, timeout: float | None) -> Awaitable[bool]:
        """Wait until the socket may be ready for ``event``.

        Returns True when woken (ready, or closed: the retried call will tell)
        and False when ``timeout`` seconds passed first.
        """
        raise NotImplementedError

    def _checkpoint(self) -> Awaitable[None]:
        """Let other tasks run; only called when ``_on_event_loop`` is true."""
        raise NotImplementedError

    async def _resolve_address(self, address: tuple[Any, ...]) -> Any:
        """Resolve the host name in ``address``; only called if ``_on_event_loop``."""
        raise NotImplementedError

    def _attempt(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Make a system call that takes no MSG_DONTWAIT (accept, connect, sendfile).

        The operation layer calls this for such an attempt when the call may
        not block in the kernel (its timeout is not None). The async front's
        descriptor is always non-blocking, so the call is simply made.
        """
        return fn(*args)

    @classmethod
    def _take_over(cls, owner: Any) -> Self:
        """Take ``owner``'s descriptor (no copy) and timeout; ``owner`` is left detached.

        ``owner`` is a stdlib socket or a socket of either asock front.
        Raises TypeError for anything else. Never waits.
        """
        if not isinstance(owner, (_stdlib.socket, SocketBase)):
            raise TypeError(f"expected a socket.socket, not {builtins.type(owner).__name__}")
        timeout = owner.gettimeout()
        family, kind, proto = owner.family, owner.type, owner.proto
        return cls._from_stdlib(_stdlib.socket(family, kind, proto, owner.detach()), timeout)

    def dup(self) -> Self:
        """Return a new socket of the same class on a duplicate descriptor.

        The copy keeps the timeout. Never waits. Raises OSError.
        """
        return type(self)._from_stdlib(self._sock.dup(), self._timeout)

    def _queue(
        self, key: object, factory: Callable[..., ReadinessQueue], *args: Any
    ) -> ReadinessQueue | None:
        """Return the driver's queue for ``key``, made by ``factory(*args)`` if new.

        Returns None once close() or detach() has begun: the caller must not
        wait then, but retry its call at once (which fails with EBADF). Drivers
        reach a socket's queues through this method only.
        """
        queue = self.queue_at(key)
        if queue is not None:
            return queue
        # Made under the lock close() swaps the queues under, so a queue is
        # either seen (woken and released) by close() or never made; and two
        # threads racing here end up sharing one queue.
        with _queues_lock:
            queues = self._queues
            if queues is _RELEASED:
                return None
            queue = self.queue_at(key)
            if queue is None:
                queue = factory(*args)
                if self._first_queue is None:
                    self._first_queue = queue
                    self._first_key = key
                else:
                    if queues is None:
                        queues = self._queues = {}
                    queues[key] = queue
        return queue

    def queue_at(self, key: object) -> ReadinessQueue | None:
        """The driver's queue for ``key``, if there is one (a read: never makes one)."""
        if self._first_key is key:
            return self._first_queue
        queues = self._queues
        return queues.get(key) if queues else None

    def _all_queues(self) -> dict[object, ReadinessQueue]:
        """Every queue the socket's drivers hold, by key (a copy; for tests and reports)."""
        queues = dict(self._queues or {})
        if self._first_queue is not None:
            queues[self._first_key] = self._first_queue
        return queues

    def _drop_queues(self, stale: Callable[[object], bool]) -> list[ReadinessQueue]:
        """Remove and return the driver's queues whose key ``stale(key)`` says is gone.

        For a queue made for an event loop that has closed since: the socket
        now waits on another loop. Cheap while the socket has a single queue.
        Drivers undo what the returned queues hold themselves.
        """
        if not self._queues:
            return []
        with _queues_lock:
            queues = self._queues
            if not queues or queues is _RELEASED:
                return []
            dropped = [queues.pop(key) for key in [key for key in queues if stale(key)]]
            if self._first_queue is not None and stale(self._first_key):
                dropped.append(self._first_queue)
                self._first_queue = None
                self._first_key = _NO_KEY
                if queues:
                    # The newest queue (the one being waited on now) takes
                    # the slots the drivers read first.
                    self._first_key, self._first_queue = queues.popitem()
            return dropped

    def _released(self) -> bool:
        """Whether close() or detach() has begun (waiters must not block)."""
        return self._queues is _RELEASED

    # -- attributes --------------------------------------------------------

    @property
    def family(self) -> _stdlib.AddressFamily:
        """The socket's address family."""
        return self._sock.family

    @property
    def type(self) -> _stdlib.SocketKind:
        """The socket's type."""
        return self._sock.type

    @property
    def proto(self) -> int:
        """The socket's protocol."""
        return self._sock.proto

    def fileno(self) -> int:
        """Return the descriptor, or -1 once closed or detached. Never waits."""
        return self._sock.fileno()

    def __repr__(self) -> str:
        inner = repr(self._sock)
        prefix = "<socket.socket"
        if inner.startswith(prefix):
            inner = inner[len(prefix) :]
        cls = type(self)
        return f"<{cls.__module__}.{cls.__qualname__}{inner[:-1]}, timeout={self._timeout}>"

    def __getstate__(self) -> Any:
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")

    # -- plain calls, passed to the stdlib socket --------------------------

    def getsockname(self) -> Any:
        """Return the socket's own address. Never waits. Raises OSError."""
        return self._sock.getsockname()

    def getpeername(self) -> Any:
        """Return the connected peer's address. Never waits. Raises OSError."""
        return self._sock.getpeername()

    # The optional arguments are passed on only when given, never as a default
    # value, so an explicit None fails with the stdlib's TypeError.

    def getsockopt(self, level: int, optname: int, *buflen: int) -> int | bytes:
        """``getsockopt(level, optname[, buflen])``, as the stdlib. Never waits."""
        return self._sock.getsockopt(level, optname, *buflen)

    def setsockopt(self, level: int, optname: int, value: Any, *optlen: int) -> None:
        """``setsockopt(level, optname, value[, optlen])`` (all stdlib forms). Never waits."""
        self._sock.setsockopt(level, optname, value, *optlen)

    def listen(self, *backlog: int) -> None:
        """``listen([backlog])``: enable accepting connections. Never waits. Raises OSError."""
        self._sock.listen(*backlog)

    def shutdown(self, how: int) -> None:
        """Shut down one or both halves of the connection. Never waits."""
        self._sock.shutdown(how)

    def get_inheritable(self) -> bool:
        """Return whether the descriptor is inherited by child processes."""
        return self._sock.get_inheritable()

    def set_inheritable(self, inheritable: bool) -> None:
        """Set whether the descriptor is inherited by child processes."""
        self._sock.set_inheritable(inheritable)

    if hasattr(_stdlib.socket, "ioctl"):  # pragma: no cover - Windows only

        def ioctl(self, control: int, option: Any) -> Any:
            """Pass an ioctl to the stdlib socket (Windows only)."""
            return self._sock.ioctl(control, option)  # type: ignore[attr-defined]

    # -- timeouts ----------------------------------------------------------

    def gettimeout(self) -> float | None:
        """Return the timeout in seconds, ``None`` (blocking) or ``0.0``."""
        return self._timeout

    def settimeout(self, value: float | None) -> None:
        """Set the timeout: ``None`` blocks, ``0.0`` never waits, t > 0 bounds each call.

        Raises ValueError for a negative value and TypeError for a non-number,
        exactly as the stdlib does. Never waits.
        """
        if self.fileno() < 0:
            raise closed_socket_error()  # as the stdlib's fcntl on a closed socket
        timeout = None
        if value is not None:
            # The stdlib parses and rounds the value. For any value but None it
            # sets O_NONBLOCK, which every mode but blocking mode wants on both
            # fronts, so no other thread ever sees the descriptor blocking
            # while the socket is not in blocking mode. asock applies t > 0 itself.
            sock = self._sock
            sock.settimeout(value)
            timeout = sock.gettimeout()
            if timeout:
                sock.settimeout(0.0)
        self._set_timeout(timeout)

    def _set_timeout(self, timeout: float | None) -> None:
        """Switch to the parsed ``timeout``; the front puts the descriptor in its mode."""
        self._timeout = timeout

    def getblocking(self) -> bool:
        """Return False in non-blocking mode (timeout 0.0), True otherwise."""
        return self._timeout != 0.0

    def setblocking(self, flag: bool) -> None:
        """``setblocking(True)`` is ``settimeout(None)``; False is ``settimeout(0.0)``.

        ``flag`` is parsed as this Python's stdlib parses it: on 3.11 it must
        be an integer (TypeError otherwise, OverflowError if too big), from
        3.12 on any object counts by its truth value. Never waits.
        """
        # Parsed as this Python's stdlib parses it, without touching the
        # descriptor: _set_timeout alone sets its mode.
        if _FLAG_IS_TRUTH:
            blocking = bool(flag)
        else:
            value = operator.index(flag)
            if not _C_LONG_MIN <= value <= _C_LONG_MAX:
                raise OverflowError("Python int too large to convert to C long")
            blocking = bool(value)
        if self.fileno() < 0:
            raise closed_socket_error()  # as the stdlib's fcntl on a closed socket
        self._set_timeout(None if blocking else 0.0)

    # -- closing -----------------------------------------------------------

    def _release_descriptor(
        self, give_up: Callable[[], int | None], closing: bool
    ) -> int | None:
        # Waiters are woken while the descriptor number is still ours (trio and
        # the event loops must unregister it before it can be reused); they
        # retry their call only after ``give_up`` ran, so the retry fails with
        # EBADF instead of waiting again. A loop in another thread that still
        # watches the descriptor is left to close it once it has forgotten
        # it: close() never waits for another thread's loop.
        with _queues_lock:
            queues = list(self._all_queues().values())
            self._queues = _RELEASED
            self._first_queue = None
            self._first_key = _NO_KEY
        if not queues:
            return give_up()
        closers = [
            closer for queue in queues if (closer := queue.wake_closing(closing)) is not None
        ]
        if not closers:
            return give_up()
        countdown = ForgetCountdown(self._sock.detach(), len(closers))
        for closer in closers:
            closer(countdown)
        return None

    def close(self) -> None:
        """Close the socket; every task or thread waiting on it wakes with EBADF.

        Never waits. Closing twice is harmless. While a ``makefile`` stream is
        open (asock_sync) the descriptor stays open until the stream closes.
        """
        self._closed = True
        if self._io_refs <= 0:
            self._real_close()

    def _real_close(self) -> None:
        self._release_descriptor(self._sock.close, closing=True)

    def detach(self) -> int:
        """Give up the descriptor without closing it and return it.

        Waiters on an event loop wake with EBADF, as on close (threads of the
        sync front blocked in the kernel return when their call completes).
        Returns at once, but for a detach from another thread than a trio or
        uvloop loop that watches the descriptor: it waits (1 s at most) for
        that loop to forget it, so that the descriptor handed back is free.
        """
        self._closed = True
        fd = self._release_descriptor(self._sock.detach, closing=False)
        assert fd is not None
        return fd

    def _decref_socketios(self) -> None:
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

    def __del__(self) -> None:
        # An unset slot means __init__ failed before a descriptor existed.
        sock: _stdlib.socket | None = getattr(self, "_sock", None)
        if sock is not None and sock.fileno() >= 0:
            # Like the stdlib, warn about the leak, naming this socket (not the
            # inner one). Close first: with warnings turned into errors the
            # warning raises, and the descriptor must be closed all the same.
            description = repr(self)
            self._real_close()
            warnings.warn(f"unclosed {description}", ResourceWarning, stacklevel=2, source=self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: builtins.type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
