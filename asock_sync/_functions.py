"""asock_sync's module-level functions: the stdlib's, returning facade sockets."""

from __future__ import annotations

import socket as _stdlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from asock._core import operations as ops
from asock._core.socket_base import SocketBase

from ._socket import socket

if TYPE_CHECKING:
    from typing_extensions import Buffer

_DEFAULT_TIMEOUT: Any = _stdlib._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]


def _adopt(sock: _stdlib.socket) -> socket:
    return socket._from_stdlib(sock, sock.gettimeout())


def socketpair(
    family: int | None = None, type: int = _stdlib.SOCK_STREAM, proto: int = 0
) -> tuple[socket, socket]:
    """Return a pair of connected sockets, as ``socket.socketpair``.

    ``family`` None means AF_UNIX where there is one. Never waits. Raises OSError.
    """
    a, b = _stdlib.socketpair(family, type, proto)
    return _adopt(a), _adopt(b)


def fromfd(fd: int, family: int, type: int, proto: int = 0) -> socket:
    """Return a socket on a duplicate of ``fd``, as ``socket.fromfd``.

    Never waits. Raises OSError for a bad descriptor.
    """
    return _adopt(_stdlib.fromfd(fd, family, type, proto))


def from_stdlib_socket(sock: _stdlib.socket) -> socket:
    """Adopt a stdlib socket (same descriptor, same timeout); ``sock`` is left detached.

    Raises TypeError for anything but a ``socket.socket``. Never waits.
    """
    if not isinstance(sock, _stdlib.socket):
        raise TypeError(f"expected a socket.socket, not {type(sock).__name__}")
    return socket._take_over(sock)


if hasattr(_stdlib, "fromshare"):  # pragma: no cover - Windows only

    def fromshare(info: bytes) -> socket:
        """Return a socket from ``socket.share`` data (Windows only)."""
        return _adopt(_stdlib.fromshare(info))  # type: ignore[attr-defined,unused-ignore]


def create_server(
    address: tuple[Any, ...], *, family: int = _stdlib.AF_INET, backlog: int | None = None,
    reuse_port: bool = False, dualstack_ipv6: bool = False,
) -> socket:
    """Create a listening TCP socket, as ``socket.create_server``.

    Blocks only to resolve a host name. Raises ValueError for unsupported
    options and OSError from bind/listen.
    """
    return _adopt(
        _stdlib.create_server(
            address, family=family, backlog=backlog, reuse_port=reuse_port,
            dualstack_ipv6=dualstack_ipv6,
        )
    )


def create_connection(
    address: tuple[str | None, int], timeout: float | None = _DEFAULT_TIMEOUT,
    source_address: tuple[Any, ...] | None = None, *, all_errors: bool = False,
) -> socket:
    """Connect to ``(host, port)``, trying each resolved address in turn, as the stdlib.

    ``timeout`` is set on each attempt and kept on the result. If all fail,
    the first error is raised, or with ``all_errors`` an ExceptionGroup.
    """
    # The class is looked up on the package at each call, as the stdlib looks
    # up its module global: code that replaces ``asock_sync.socket`` sees it used.
    import asock_sync

    host, port = address
    exceptions: list[OSError] = []
    for family, kind, proto, _, sockaddr in _stdlib.getaddrinfo(
        host, port, 0, _stdlib.SOCK_STREAM
    ):
        sock = None
        try:
            sock = asock_sync.socket(family, kind, proto)
            if timeout is not _DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            exceptions.clear()
            return sock
        except OSError as exc:
            exceptions.append(exc)
            if sock is not None:
                sock.close()
    if not exceptions:
        raise OSError("getaddrinfo returns an empty list")
    try:
        if not all_errors:
            raise exceptions[0]
        raise ExceptionGroup("create_connection failed", exceptions)
    finally:
        exceptions.clear()  # break the reference cycle through the tracebacks


def send_fds(
    sock: Any, buffers: Iterable[Buffer], fds: Iterable[int], flags: int = 0, address: Any = None
) -> int:
    """Send ``fds`` with ``buffers`` over an AF_UNIX socket (SCM_RIGHTS), as the stdlib.

    Blocks and raises as ``socket.sendmsg`` does.
    """
    if isinstance(sock, SocketBase):
        return ops.run_to_completion(ops.send_fds(sock, buffers, fds, flags, address))
    return _stdlib.send_fds(sock, buffers, fds, flags, address)


def recv_fds(
    sock: Any, bufsize: int, maxfds: int, flags: int = 0
) -> tuple[bytes, list[int], int, Any]:
    """Receive data and up to ``maxfds`` descriptors, as ``socket.recv_fds``.

    Blocks and raises as ``socket.recvmsg`` does.
    """
    if isinstance(sock, SocketBase):
        return ops.run_to_completion(ops.recv_fds(sock, bufsize, maxfds, flags))
    return _stdlib.recv_fds(sock, bufsize, maxfds, flags)
