"""``asock.socket``: the awaitable socket, a thin front over the operation layer.

Every method that can wait is a coroutine from :mod:`asock_core.operations`;
this class only says how to wait (the running loop's driver) and how to
resolve names (off the loop). The methods that never wait come from
:class:`~asock_core.socket_base.SocketBase`.
"""

from __future__ import annotations

import socket as _stdlib
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from asock_core import operations as ops
from asock_core.conversion import convert
from asock_core.socket_base import SocketBase
from asock_core.drivers import current_driver
from ._resolver import resolve_address

if TYPE_CHECKING:
    from collections.abc import Awaitable

    import asock_sync


class socket(SocketBase):
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

    __slots__ = ()
    __module__ = "asock"

    _on_event_loop = True

    def _wait(self, event: int, timeout: float | None) -> Awaitable[bool]:
        return current_driver().wait(self, event, timeout)

    def _checkpoint(self) -> Awaitable[None]:
        return current_driver().checkpoint()

    async def _resolve_address(self, address: tuple[Any, ...]) -> Any:
        sock = self._sock
        return await resolve_address(sock.family, sock.type, sock.proto, address)

    accept = ops.accept
    bind = ops.bind
    connect = ops.connect
    connect_ex = ops.connect_ex
    recv = ops.recv
    recv_into = ops.recv_into
    recvfrom = ops.recvfrom
    recvfrom_into = ops.recvfrom_into
    recvmsg = ops.recvmsg
    recvmsg_into = ops.recvmsg_into
    send = ops.send
    sendall = ops.sendall
    sendto = ops.sendto
    sendmsg = ops.sendmsg
    sendfile = ops.sendfile
    if hasattr(_stdlib.socket, "sendmsg_afalg"):
        sendmsg_afalg = ops.sendmsg_afalg

    def to_sync(self) -> asock_sync.socket:
        """Hand this socket to blocking code as an ``asock_sync.socket``.

        Same descriptor (no copy), same timeout; this object is left detached.
        Never waits.
        """
        return convert(self, "asock_sync")  # type: ignore[return-value]

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
