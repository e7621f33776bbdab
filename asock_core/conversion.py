"""Handing one descriptor between the fronts, and the module functions they share.

A socket of either front, or a stdlib socket, can be taken over by the other
front's socket class: same descriptor, same timeout, the old object left
detached. The core imports neither front at import time; :func:`convert`
imports the one asked for when it is first needed, so ``asock_sync`` never
loads asyncio, and neither front imports the other.
"""

from __future__ import annotations

import importlib
import socket as _stdlib

from .socket_base import SocketBase

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    S = TypeVar("S", bound=SocketBase)


def convert(sock: SocketBase, front: str) -> SocketBase:
    """Hand ``sock`` to ``front`` (``"asock"`` or ``"asock_sync"``); ``sock`` is left detached.

    Same descriptor, same timeout. Never waits.
    """
    cls: type[SocketBase] = importlib.import_module(front).socket
    return cls._take_over(sock)


def adopt(cls: type[S], sock: _stdlib.socket) -> S:
    """Wrap the new stdlib socket ``sock`` in ``cls``, keeping its timeout."""
    return cls._from_stdlib(sock, sock.gettimeout())


def socketpair(cls: type[S], family: Any, type: int, proto: int) -> tuple[S, S]:
    """``socket.socketpair`` with both ends wrapped in ``cls``. Never waits."""
    a, b = _stdlib.socketpair(family, type, proto)
    return adopt(cls, a), adopt(cls, b)


def fromfd(cls: type[S], fd: int, family: int, type: int, proto: int) -> S:
    """``socket.fromfd`` (a duplicate of ``fd``) wrapped in ``cls``. Raises OSError."""
    return adopt(cls, _stdlib.fromfd(fd, family, type, proto))


def from_stdlib_socket(cls: type[S], sock: _stdlib.socket) -> S:
    """Take over a plain ``socket.socket``; ``sock`` is left detached.

    Raises TypeError for anything else, a subclass such as ``ssl.SSLSocket``
    included: taking its descriptor would silently drop the TLS layer (trio
    refuses it too), and the refused socket stays usable.
    """
    if type(sock) is not _stdlib.socket:
        raise TypeError(f"expected a socket.socket, not {type(sock).__name__}")
    return cls._take_over(sock)
