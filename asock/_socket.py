"""``asock.socket``: the awaitable socket, a thin front over the operation layer.

Every method that can wait is a coroutine from :mod:`asock_core.operations`
(recv, recv_into, recvfrom, send, sendall and sendto come through
:class:`~asock_core.async_calls.AsyncCalls`, compiled where built); this
class only says how to wait (the running loop's driver) and how to resolve
names (off the loop). The methods that never wait come from
:class:`~asock_core.socket_base.SocketBase`.
"""

from __future__ import annotations

import select
import socket as _stdlib
from _thread import allocate_lock
from abc import ABC, abstractmethod
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from asock_core import operations as ops
from asock_core.async_calls import AsyncCalls
from asock_core.conversion import convert
from asock_core.drivers import checkpoint, forget_outside_waits, wait
from asock_core.socket_base import READ, SocketBase, closed_socket_error

from ._makefile import socket_makefile
from ._resolver import resolve_address

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from anyio.lowlevel import RunVar

    import asock_sync


if hasattr(select, "poll"):
    _POLL_EVENTS = (select.POLLIN, select.POLLOUT)

    def ready_now(fd: int, event: int) -> bool:
        """Whether ``fd`` is ready for ``event`` (READ or WRITE) right now. Never waits.

        A hang-up or a pending error counts as ready: the next call won't block.
        """
        poller = select.poll()
        poller.register(fd, _POLL_EVENTS[event])
        return bool(poller.poll(0))

else:  # pragma: no cover - Windows

    def ready_now(fd: int, event: int) -> bool:
        """Whether ``fd`` is ready for ``event`` (READ or WRITE) right now. Never waits."""
        if event == READ:
            return bool(select.select([fd], [], [], 0)[0])
        return bool(select.select([], [fd], [], 0)[1])


# -- the custom socket factory (trio's set_custom_socket_factory) -------------


class SocketFactory(ABC):
    """Makes the objects ``asock.socket(family, type, proto)`` returns, for one event loop.

    Install one with :func:`asock.set_custom_socket_factory`, typically in
    tests, to hand out fake or instrumented sockets.
    """

    __slots__ = ()

    @abstractmethod
    def socket(
        self, family: int = _stdlib.AF_INET, type: int = _stdlib.SOCK_STREAM, proto: int = 0
    ) -> Any:
        """Create and return the socket ``asock.socket(family, type, proto)`` stands for.

        Called with the stdlib's defaults filled in (``AF_INET``,
        ``SOCK_STREAM``, ``0``), never with ``fileno``: ``asock.socket(...,
        fileno=fd)`` always makes a real socket. Whatever it returns or raises,
        ``asock.socket(...)`` returns or raises. To make a real asock socket
        here, use ``asock.from_stdlib_socket(socket.socket(family, type,
        proto))`` or a subclass of ``asock.socket``: calling ``asock.socket``
        itself would ask the factory again.
        """


#: The factory of each event loop, an ``anyio.lowlevel.RunVar`` made by the
#: first set_custom_socket_factory: until then asock.socket() never looks one up.
_factory_var: RunVar[SocketFactory | None] | None = None
_factory_var_lock = allocate_lock()


def set_custom_socket_factory(factory: SocketFactory | None) -> SocketFactory | None:
    """Install ``factory`` for the running event loop; return the previous one.

    From then on, in this event loop (this ``trio.run`` or this asyncio
    loop), ``asock.socket(family, type, proto)`` without ``fileno`` returns
    ``factory.socket(family, type, proto)``, and so do the functions built on
    it (``create_connection``, ``asock.streams.connect_tcp``, ...).
    Subclasses of ``asock.socket``, ``accept``, ``dup``, ``socketpair``,
    ``fromfd``, ``from_stdlib_socket`` and ``create_server`` make real sockets
    as before. ``None`` restores the default; the first call returns
    ``None``. Never waits. Raises RuntimeError outside an event loop.
    """
    global _factory_var
    if _factory_var is None:
        from anyio.lowlevel import RunVar

        with _factory_var_lock:
            if _factory_var is None:
                _factory_var = RunVar("asock_socket_factory", None)
    previous = _factory_var.get()
    _factory_var.set(factory)
    return previous


def _socket_arguments(
    family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None
) -> tuple[int, int, int, int | None]:
    return family, type, proto, fileno


class _SocketClass(type):
    """``asock.socket``'s metaclass: calling the class consults the custom factory."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        var = _factory_var
        if var is not None and cls is socket:
            try:
                factory = var.get()
                family, kind, proto, fileno = _socket_arguments(*args, **kwargs)
            except (RuntimeError, TypeError):
                # No event loop (so no factory), or arguments the stdlib will reject.
                factory = None
            if factory is not None and fileno is None:
                # socket.socket's defaults: -1 means AF_INET, SOCK_STREAM, 0.
                return factory.socket(
                    _stdlib.AF_INET if family == -1 else family,
                    _stdlib.SOCK_STREAM if kind == -1 else kind,
                    0 if proto == -1 else proto,
                )
        return super().__call__(*args, **kwargs)


class socket(AsyncCalls, SocketBase, metaclass=_SocketClass):
    """An awaitable socket on asyncio, uvloop or trio.

    ``socket(family=-1, type=-1, proto=-1, fileno=None)`` takes the stdlib's
    arguments and raises its errors. The OS socket is always non-blocking; the
    timeout (``settimeout``) is applied by asock as a deadline on each call:
    ``None`` waits as long as needed, ``0.0`` raises ``BlockingIOError``
    instead of waiting, ``t > 0`` raises ``TimeoutError('timed out')`` after t
    seconds. New sockets start with ``getdefaulttimeout()``.

    Methods that can wait are coroutines: ``accept``, ``bind``, ``connect``,
    ``connect_ex``, ``recv``, ``recv_into``, ``recvfrom``, ``recvfrom_into``,
    ``recvmsg``, ``recvmsg_into``, ``send``, ``sendall``, ``sendto``,
    ``sendmsg``, ``sendmsg_afalg`` and ``sendfile``. Each tries its system
    call first and waits only if it would block; a cancelled call had no
    effect. ``close()`` wakes every waiting task with ``OSError(EBADF)``.
    """

    __slots__ = ("_shut_wr",)
    __module__ = "asock"

    _on_event_loop = True
    #: Set by a successful shutdown(SHUT_WR or SHUT_RDWR); unset means False.
    _shut_wr: bool

    # The driver's function itself: a method of its own would cost a frame per wait.
    _wait = wait

    def _checkpoint(self) -> Awaitable[None]:
        return checkpoint()

    async def _resolve_address(self, address: tuple[Any, ...]) -> Any:
        sock = self._sock
        return await resolve_address(sock.family, sock.type, sock.proto, address)

    # -- trio.socket's extras ---------------------------------------------

    @property
    def timeout(self) -> float | None:
        """The timeout, as ``gettimeout()`` returns it (read-only, as in the stdlib)."""
        return self._timeout

    @property
    def did_shutdown_SHUT_WR(self) -> bool:
        """Whether ``shutdown(SHUT_WR)`` or ``shutdown(SHUT_RDWR)`` succeeded on this object.

        False for a new socket, and for one made by ``dup()``, ``accept()`` or
        ``from_stdlib_socket`` whatever its descriptor's state, as in trio.
        Read-only.
        """
        try:
            return self._shut_wr
        except AttributeError:
            return False

    def shutdown(self, how: int) -> None:
        """Shut down one or both halves of the connection. Never waits.

        Raises OSError as the stdlib does (``ENOTCONN`` on an unconnected
        socket, ``EBADF`` once closed). Once ``SHUT_WR`` or ``SHUT_RDWR``
        succeeded, :attr:`did_shutdown_SHUT_WR` is True.
        """
        self._sock.shutdown(how)
        if how in (_stdlib.SHUT_WR, _stdlib.SHUT_RDWR):
            self._shut_wr = True

    def is_readable(self) -> bool:
        """Whether a receive would not block now, as trio's ``is_readable``.

        True once data, the end of the stream or a pending error is waiting,
        and on a listening socket once a connection is pending. Never waits
        (a zero-timeout ``poll``). Raises ``OSError(EBADF)`` once closed.
        """
        fd = self._sock.fileno()
        if fd < 0:
            raise closed_socket_error()
        return ready_now(fd, READ)

    accept = ops.accept
    bind = ops.bind
    connect = ops.connect
    connect_ex = ops.connect_ex
    # recv, recv_into, recvfrom, send, sendall and sendto come from AsyncCalls.
    recvfrom_into = ops.recvfrom_into
    recvmsg = ops.recvmsg
    recvmsg_into = ops.recvmsg_into
    sendmsg = ops.sendmsg
    sendfile = ops.sendfile
    if hasattr(_stdlib.socket, "sendmsg_afalg"):
        sendmsg_afalg = ops.sendmsg_afalg
    makefile = socket_makefile

    def to_sync(self) -> asock_sync.socket:
        """Hand this socket to blocking code as an ``asock_sync.socket``.

        Same descriptor (no copy), same timeout; this object is left detached.
        Never waits.
        """
        return convert(self, "asock_sync")  # type: ignore[return-value]

    def _real_close(self) -> None:
        forget_outside_waits(self)
        super()._real_close()

    def detach(self) -> int:
        """Give up the descriptor without closing it and return it.

        Waiting tasks wake with EBADF, as on close. Returns at once, but from
        another thread than a trio or uvloop loop that watches the descriptor:
        then it waits (1 s at most) for that loop to forget it.
        """
        forget_outside_waits(self)
        return super().detach()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


SocketType = socket
