"""asock_sync's module-level functions: the stdlib's, returning sync-front sockets."""

from __future__ import annotations

import socket as _stdlib
import sys
from collections.abc import Iterable

from asock_core import conversion
from asock_core import operations as ops

from ._socket import socket

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from typing_extensions import Buffer

_DEFAULT_TIMEOUT: Any = _stdlib._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]


def socketpair(
    family: int | None = None, type: int = _stdlib.SOCK_STREAM, proto: int = 0
) -> tuple[socket, socket]:
    """Return a pair of connected sockets, as ``socket.socketpair``.

    ``family`` None means AF_UNIX where there is one. Never waits. Raises OSError.
    """
    return conversion.socketpair(socket, family, type, proto)


def fromfd(fd: int, family: int, type: int, proto: int = 0) -> socket:
    """Return a socket on a duplicate of ``fd``, as ``socket.fromfd``.

    Never waits. Raises OSError for a bad descriptor.
    """
    return conversion.fromfd(socket, fd, family, type, proto)


def from_stdlib_socket(sock: _stdlib.socket) -> socket:
    """Adopt a stdlib socket (same descriptor, same timeout); ``sock`` is left detached.

    Raises TypeError for anything but a plain ``socket.socket`` (an
    ``ssl.SSLSocket`` included). Never waits.
    """
    return conversion.from_stdlib_socket(socket, sock)


if hasattr(_stdlib, "_fallback_socketpair"):  # Python 3.13+

    def _fallback_socketpair(
        family: int = _stdlib.AF_INET, type: int = _stdlib.SOCK_STREAM, proto: int = 0
    ) -> tuple[socket, socket]:
        """The stdlib's socketpair emulated over loopback TCP, on asock_sync sockets.

        The stdlib's algorithm step by step (connect, accept, then check that
        each end's name is the other's peer name), but with the socket class
        looked up on the package at each call, so that code patching
        ``asock_sync.socket`` (as CPython's test_socket patches
        ``socket.socket.getsockname``) sees its patch used. Raises ValueError
        for anything but AF_INET/AF_INET6 SOCK_STREAM proto 0, ConnectionError
        when another connection got in first, OSError from the calls.
        """
        if family == _stdlib.AF_INET:
            host = "127.0.0.1"  # the stdlib's _LOCALHOST
        elif family == _stdlib.AF_INET6:
            host = "::1"  # the stdlib's _LOCALHOST_V6
        else:
            raise ValueError("Only AF_INET and AF_INET6 socket address families are supported")
        if type != _stdlib.SOCK_STREAM:
            raise ValueError("Only SOCK_STREAM socket type is supported")
        if proto != 0:
            raise ValueError("Only protocol zero is supported")

        cls = sys.modules["asock_sync"].socket
        lsock = cls(family, type, proto)
        try:
            lsock.bind((host, 0))
            lsock.listen()
            addr, port = lsock.getsockname()[:2]  # on IPv6, without flow info and scope id
            csock = cls(family, type, proto)
            try:
                csock.setblocking(False)
                try:
                    csock.connect((addr, port))
                except (BlockingIOError, InterruptedError):
                    pass
                csock.setblocking(True)
                ssock, _ = lsock.accept()
            except BaseException:
                csock.close()
                raise
        finally:
            lsock.close()

        # Authenticate: another process may have connected to host:port first.
        try:
            if (
                ssock.getsockname() != csock.getpeername()
                or csock.getsockname() != ssock.getpeername()
            ):
                raise ConnectionError("Unexpected peer connection")
        except BaseException:
            ssock.close()
            csock.close()
            raise
        return ssock, csock


if hasattr(_stdlib, "fromshare"):  # pragma: no cover - Windows only

    def fromshare(info: bytes) -> socket:
        """Return a socket from ``socket.share`` data (Windows only)."""
        return conversion.adopt(socket, _stdlib.fromshare(info))  # type: ignore[attr-defined,unused-ignore]


def create_server(
    address: tuple[Any, ...], *, family: int = _stdlib.AF_INET, backlog: int | None = None,
    reuse_port: bool = False, dualstack_ipv6: bool = False,
) -> socket:
    """Create a listening TCP socket, as ``socket.create_server``.

    Blocks only to resolve a host name. Raises ValueError for unsupported
    options and OSError from bind/listen.
    """
    return conversion.adopt(
        socket,
        _stdlib.create_server(
            address, family=family, backlog=backlog, reuse_port=reuse_port,
            dualstack_ipv6=dualstack_ipv6,
        ),
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
    cls = sys.modules["asock_sync"].socket

    host, port = address
    exceptions: list[OSError] = []
    for family, kind, proto, _, sockaddr in _stdlib.getaddrinfo(
        host, port, 0, _stdlib.SOCK_STREAM
    ):
        sock: socket | None = None
        try:
            sock = cls(family, kind, proto)
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
    if isinstance(sock, socket):
        return sock._run(ops.send_fds(sock, buffers, fds, flags, address))
    return _stdlib.send_fds(sock, buffers, fds, flags, address)


def recv_fds(
    sock: Any, bufsize: int, maxfds: int, flags: int = 0
) -> tuple[bytes, list[int], int, Any]:
    """Receive data and up to ``maxfds`` descriptors, as ``socket.recv_fds``.

    Blocks and raises as ``socket.recvmsg`` does.
    """
    if isinstance(sock, socket):
        return sock._run(ops.recv_fds(sock, bufsize, maxfds, flags))
    return _stdlib.recv_fds(sock, bufsize, maxfds, flags)
