"""anyio's socket stream, listener and datagram classes, implemented on asock sockets.

Each adapter owns one :class:`asock.socket` and calls its awaitable methods
(the operation layer does every wait). What the adapters add is anyio's
contract on top: every call is a checkpoint, two tasks using the same
direction at once get ``BusyResourceError``, a stream closed here gives
``ClosedResourceError`` and an ``OSError`` from the kernel becomes
``BrokenResourceError`` chained to it.
"""

from __future__ import annotations

import socket as _stdlib
import sys
from collections.abc import Awaitable, Callable, Collection
from io import IOBase
from typing import Any, NoReturn, Self, TypeVar

from anyio import (
    BrokenResourceError,
    ClosedResourceError,
    EndOfStream,
    ResourceGuard,
    abc,
)
from anyio.lowlevel import checkpoint

from asock_core import drivers
from asock_core.socket_base import SocketBase

from .._functions import recv_fds, send_fds
from .._socket import socket

#: anyio's receive sizes: a stream reads up to 64 KiB by default and a
#: datagram socket reads whole datagrams of up to 64 KiB.
_MAX_READ = 65536

#: Anything the ``from_socket`` constructors adopt.
SocketLike = SocketBase | _stdlib.socket | int  # asock.socket, asock_sync.socket, stdlib, fd

T = TypeVar("T")


def ip_sockaddr(sockaddr: Any) -> Any:
    """Shorten an IPv6 socket address to anyio's ``(host, port)`` form.

    A non-zero scope id is kept as ``host%scope``; other addresses pass as they are.
    """
    if isinstance(sockaddr, tuple) and len(sockaddr) == 4:
        host, port, _flowinfo, scope_id = sockaddr
        if scope_id:
            return f"{host.partition('%')[0]}%{scope_id}", port
        return host, port
    return sockaddr


def adopt(
    sock_or_fd: Any,
    kind: int,
    family: int = _stdlib.AF_UNSPEC,
    *,
    require_connected: bool = False,
    require_bound: bool = False,
) -> socket:
    """Check an existing socket for an adapter and return it as an asock socket.

    Accepts an ``asock.socket``, an ``asock_sync.socket`` or a stdlib
    ``socket.socket`` (either adopted: it is left detached) or a descriptor
    (wrapped as is, not duplicated). Raises
    TypeError for anything else and ValueError, leaving the argument
    untouched, when the socket has the wrong type or family or is not
    connected/bound as required. Never waits. The adapter made from it
    then sets the socket's timeout to None.
    """
    probe: Any
    if isinstance(sock_or_fd, (_stdlib.socket, SocketBase)):  # asock's sockets included
        probe = sock_or_fd
    elif isinstance(sock_or_fd, int):
        try:
            probe = _stdlib.socket(fileno=sock_or_fd)
        except OSError as exc:
            raise ValueError(f"descriptor {sock_or_fd} is not a usable socket: {exc}") from exc
    else:
        raise TypeError(
            f"expected an asock or asock_sync socket, a socket.socket or a descriptor, "
            f"not {type(sock_or_fd).__name__}"
        )
    try:
        _check(probe, kind, family, require_connected, require_bound)
    except BaseException:
        if isinstance(sock_or_fd, int):
            probe.detach()  # the caller still owns the descriptor
        raise
    if isinstance(probe, socket):
        return probe
    return socket._take_over(probe)


def _check(
    sock: Any, kind: int, family: int, require_connected: bool, require_bound: bool
) -> None:
    if sock.type != kind:
        raise ValueError(f"expected a {_stdlib.SocketKind(kind).name} socket, got {sock.type.name}")
    if family != _stdlib.AF_UNSPEC and sock.family != family:
        raise ValueError(f"expected an {_stdlib.AddressFamily(family).name} socket, "
                         f"got {sock.family.name}")
    if require_connected:
        try:
            sock.getpeername()
        except OSError as exc:
            raise ValueError("the socket must be connected") from exc
    if require_bound:
        try:
            name = sock.getsockname()
        except OSError:
            name = None
        ip = sock.family in (_stdlib.AF_INET, _stdlib.AF_INET6)
        if not (name[1] if ip and name else name):
            raise ValueError("the socket must be bound to a local address")



def _trio_lowlevel() -> Any:
    """``trio.lowlevel``, imported when a trio run first needs it."""
    import trio.lowlevel

    return trio.lowlevel

class _Adapter:
    """The asock socket, close state and error translation all adapters share."""

    def __init__(self, sock: socket) -> None:
        # anyio's objects have no timeouts (cancel scopes bound every wait),
        # so a timeout left on an adopted socket must not turn into an error:
        # a t > 0 would end a quiet receive with TimeoutError, and 0.0 every
        # wait with BlockingIOError, both reported as BrokenResourceError.
        # So the socket is put in blocking mode, for good (docs/anyio.md).
        sock.settimeout(None)
        self._socket = sock
        self._closed = False

    @property
    def _raw_socket(self) -> _stdlib.socket:
        # The stdlib socket under the asock one: anyio's ``raw_socket``
        # attribute, which its typed-attribute mixin also reads addresses from.
        return self._socket._sock

    @property
    def asock_socket(self) -> socket:
        """The :class:`asock.socket` this object owns. Never waits."""
        return self._socket

    async def _call(self, operation: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run one asock operation as an anyio checkpoint; translate its OSError.

        The checkpoint comes before the system call, so a cancellation
        pending there costs no data.
        """
        # Raised before the checkpoint so that using a closed object fails
        # the same way whether or not a cancellation is pending.
        if self._closed:
            raise ClosedResourceError
        if sys.modules["sniffio"].thread_local.name != "trio":
            # asyncio: a schedule point first (asyncio.sleep(0), which also
            # delivers a pending cancellation before anything is taken).
            await drivers.checkpoint()
            try:
                return await operation(*args)
            except OSError as exc:
                self._fail(exc)
        # trio: a cancellation point first, then the operation, then a
        # schedule point only if the operation let no other task run (it
        # completed at once), as trio's own streams do. A full checkpoint
        # first cost a second trip through the scheduler on every call that
        # waits anyway. (On asyncio the shielded checkpoint, an anyio cancel
        # scope, costs more than the trip it saves.)
        await _trio_lowlevel().checkpoint_if_cancelled()
        yields = drivers.yields
        try:
            result = await operation(*args)
        except OSError as exc:
            self._fail(exc)
        if drivers.yields == yields:
            await _trio_lowlevel().cancel_shielded_checkpoint()
        return result

    def _fail(self, exc: OSError) -> NoReturn:
        if self._closed:
            raise ClosedResourceError from None
        raise BrokenResourceError from exc

    async def aclose(self) -> None:
        """Close the socket; tasks blocked on it raise ClosedResourceError.

        Closing twice is harmless. The socket is closed at once; the call
        then yields (a checkpoint).
        """
        self._closed = True
        self._socket.close()
        await checkpoint()


class SocketStream(_Adapter, abc.SocketStream):
    """A connected stream socket (TCP) as an ``anyio.abc.SocketStream``.

    Raises ``BusyResourceError`` when a second task receives (or sends) while
    one already does, ``ClosedResourceError`` once :meth:`aclose` was called,
    and ``BrokenResourceError`` (chained to the ``OSError``) when the
    connection fails.
    """

    def __init__(self, sock: socket) -> None:
        super().__init__(sock)
        self._receive_guard = ResourceGuard("reading from")
        self._send_guard = ResourceGuard("writing to")

    @classmethod
    async def from_socket(cls, sock_or_fd: SocketLike) -> Self:
        """Wrap a connected stream socket (asock, stdlib or descriptor); takes ownership.

        Raises ValueError if it is not a connected SOCK_STREAM socket. Never waits.
        The socket's timeout becomes None (anyio bounds waits with cancel scopes).
        """
        return cls(adopt(sock_or_fd, _stdlib.SOCK_STREAM, require_connected=True))

    async def receive(self, max_bytes: int = _MAX_READ) -> bytes:
        """Wait for data and return up to ``max_bytes`` of it.

        Raises ``EndOfStream`` once the peer has finished sending and
        ValueError if ``max_bytes`` is less than 1.
        """
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        with self._receive_guard:
            data = await self._call(self._socket.recv, max_bytes)
        if not data:
            raise EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        """Send all of ``item``, waiting while the kernel's buffer is full."""
        with self._send_guard:
            await self._call(self._socket.sendall, item)

    async def send_eof(self) -> None:
        """Shut down the sending half; the peer's receive sees ``EndOfStream``.

        Idempotent. Never waits.
        """
        if self._closed:
            raise ClosedResourceError
        try:
            self._socket.shutdown(_stdlib.SHUT_WR)
        except OSError as exc:
            self._fail(exc)


def _descriptor(fd: Any) -> int:
    if isinstance(fd, int):
        return fd
    if isinstance(fd, IOBase) or hasattr(fd, "fileno"):
        return int(fd.fileno())
    raise TypeError(f"expected a descriptor or an object with fileno(), not {type(fd).__name__}")


class UNIXSocketStream(SocketStream, abc.UNIXSocketStream):
    """A connected AF_UNIX stream socket as an ``anyio.abc.UNIXSocketStream``.

    Adds descriptor passing (SCM_RIGHTS) to :class:`SocketStream`.
    """

    @classmethod
    async def from_socket(cls, sock_or_fd: SocketLike) -> Self:
        """Wrap a connected AF_UNIX stream socket; takes ownership.

        Raises ValueError for another family or type or an unconnected socket.
        Never waits.
        The socket's timeout becomes None (anyio bounds waits with cancel scopes).
        """
        return cls(
            adopt(sock_or_fd, _stdlib.SOCK_STREAM, _stdlib.AF_UNIX, require_connected=True)
        )

    async def send_fds(self, message: bytes, fds: Collection[int | IOBase]) -> None:
        """Send ``message`` with the descriptors ``fds`` (ints or objects with fileno()).

        The descriptors travel with the first bytes; the rest of the message
        follows as plain data. Raises ValueError for an empty message or no
        descriptors. Waits like :meth:`send`.
        """
        if not message:
            raise ValueError("message must not be empty")
        if not fds:
            raise ValueError("fds must not be empty")
        filenos = [_descriptor(fd) for fd in fds]
        with self._send_guard:
            await self._call(self._send_with_fds, memoryview(message), filenos)

    async def _send_with_fds(self, view: memoryview, filenos: list[int]) -> None:
        sent = await send_fds(self._socket, [view], filenos)
        if sent < len(view):
            await self._socket.sendall(view[sent:])

    async def receive_fds(self, msglen: int, maxfds: int) -> tuple[bytes, list[int]]:
        """Receive up to ``msglen`` bytes and up to ``maxfds`` descriptors.

        The caller owns (and must close) the returned descriptors. Raises
        ``EndOfStream`` at the end of the stream and ValueError for a
        negative ``msglen`` or ``maxfds`` below 1. Waits like :meth:`receive`.
        """
        if not isinstance(msglen, int) or msglen < 0:
            raise ValueError("msglen must be a non-negative integer")
        if not isinstance(maxfds, int) or maxfds < 1:
            raise ValueError("maxfds must be a positive integer")
        with self._receive_guard:
            message, fds, _flags, _address = await self._call(
                recv_fds, self._socket, msglen, maxfds
            )
        if not message and not fds:
            raise EndOfStream
        return message, fds


class _Listener(_Adapter):
    def __init__(self, sock: socket) -> None:
        super().__init__(sock)
        self._accept_guard = ResourceGuard("accepting connections from")

    async def _accept(self) -> socket:
        with self._accept_guard:
            conn, _address = await self._call(self._socket.accept)
        assert isinstance(conn, socket)
        return conn


class TCPListener(_Listener, abc.SocketListener):
    """A listening TCP socket as an ``anyio.abc.SocketListener`` (``serve()`` works).

    Accepted streams have TCP_NODELAY set, as anyio's do.
    """

    @classmethod
    async def from_socket(cls, sock_or_fd: SocketLike) -> Self:
        """Wrap a bound stream socket, listening or about to; takes ownership.

        Raises ValueError for an unbound or non-stream socket. Never waits.
        The socket's timeout becomes None (anyio bounds waits with cancel scopes).
        """
        return cls(adopt(sock_or_fd, _stdlib.SOCK_STREAM, require_bound=True))

    async def accept(self) -> SocketStream:
        """Wait for a connection and return it as a :class:`SocketStream`.

        Raises ``BusyResourceError`` if another task is accepting,
        ``ClosedResourceError`` once closed, ``BrokenResourceError`` on an
        OSError.
        """
        conn = await self._accept()
        try:
            conn.setsockopt(_stdlib.IPPROTO_TCP, _stdlib.TCP_NODELAY, 1)
        except BaseException:
            conn.close()
            raise
        return SocketStream(conn)


class UNIXListener(_Listener, abc.SocketListener):
    """A listening AF_UNIX socket as an ``anyio.abc.SocketListener``."""

    @classmethod
    async def from_socket(cls, sock_or_fd: SocketLike) -> Self:
        """Wrap a bound AF_UNIX stream socket; takes ownership. Never waits.

        Raises ValueError for another family or type or an unbound socket.
        The socket's timeout becomes None (anyio bounds waits with cancel scopes).
        """
        return cls(adopt(sock_or_fd, _stdlib.SOCK_STREAM, _stdlib.AF_UNIX, require_bound=True))

    async def accept(self) -> UNIXSocketStream:
        """Wait for a connection and return it as a :class:`UNIXSocketStream`.

        Raises as :meth:`TCPListener.accept` does.
        """
        return UNIXSocketStream(await self._accept())


class _Datagram(_Adapter):
    def __init__(self, sock: socket) -> None:
        super().__init__(sock)
        self._receive_guard = ResourceGuard("reading from")
        self._send_guard = ResourceGuard("writing to")


class _ConnectedDatagram(_Datagram):
    async def receive(self) -> bytes:
        """Wait for a datagram from the connected peer and return it."""
        with self._receive_guard:
            return await self._call(self._socket.recv, _MAX_READ)

    async def send(self, item: bytes) -> None:
        """Send ``item`` as one datagram to the connected peer."""
        with self._send_guard:
            await self._call(self._socket.send, item)


class UDPSocket(_Datagram, abc.UDPSocket):
    """An unconnected UDP socket as an ``anyio.abc.UDPSocket``.

    Items are ``(data, (host, port))``. Raises like :class:`SocketStream`,
    except that there is no end of stream.
    """

    @classmethod
    async def from_socket(cls, sock_or_fd: SocketLike) -> Self:
        """Wrap a bound datagram socket; takes ownership. Never waits.

        Raises ValueError for an unbound or non-datagram socket.
        The socket's timeout becomes None (anyio bounds waits with cancel scopes).
        """
        return cls(adopt(sock_or_fd, _stdlib.SOCK_DGRAM, require_bound=True))

    async def receive(self) -> tuple[bytes, tuple[str, int]]:
        """Wait for a datagram; return it and its sender's ``(host, port)``."""
        with self._receive_guard:
            data, address = await self._call(self._socket.recvfrom, _MAX_READ)
        return data, ip_sockaddr(address)

    async def send(self, item: tuple[bytes, tuple[str, int]]) -> None:
        """Send the datagram ``(data, (host, port))``; a host name is resolved first."""
        data, address = item
        with self._send_guard:
            await self._call(self._socket.sendto, data, address)


class ConnectedUDPSocket(_ConnectedDatagram, abc.ConnectedUDPSocket):
    """A connected UDP socket as an ``anyio.abc.ConnectedUDPSocket``; items are bytes.

    An ICMP error reported for an earlier datagram (such as ECONNREFUSED)
    surfaces as ``BrokenResourceError`` from the next call, as on anyio's
    trio backend.
    """

    @classmethod
    async def from_socket(cls, sock_or_fd: SocketLike) -> Self:
        """Wrap a connected datagram socket; takes ownership. Never waits.

        Raises ValueError for an unconnected or non-datagram socket.
        The socket's timeout becomes None (anyio bounds waits with cancel scopes).
        """
        return cls(adopt(sock_or_fd, _stdlib.SOCK_DGRAM, require_connected=True))


class UNIXDatagramSocket(_Datagram, abc.UNIXDatagramSocket):
    """An unconnected AF_UNIX datagram socket as an ``anyio.abc.UNIXDatagramSocket``.

    Items are ``(data, path)``. Raises like :class:`UDPSocket`.
    """

    @classmethod
    async def from_socket(cls, sock_or_fd: SocketLike) -> Self:
        """Wrap an AF_UNIX datagram socket; takes ownership. Never waits.

        Raises ValueError for another family or type.
        The socket's timeout becomes None (anyio bounds waits with cancel scopes).
        """
        return cls(adopt(sock_or_fd, _stdlib.SOCK_DGRAM, _stdlib.AF_UNIX))

    async def receive(self) -> tuple[bytes, str]:
        """Wait for a datagram; return it and the sender's path (as the kernel reports it)."""
        with self._receive_guard:
            data, address = await self._call(self._socket.recvfrom, _MAX_READ)
        return data, address

    async def send(self, item: tuple[bytes, str]) -> None:
        """Send the datagram ``(data, path)``."""
        data, path = item
        with self._send_guard:
            await self._call(self._socket.sendto, data, path)


class ConnectedUNIXDatagramSocket(_ConnectedDatagram, abc.ConnectedUNIXDatagramSocket):
    """A connected AF_UNIX datagram socket as an ``anyio.abc.ConnectedUNIXDatagramSocket``."""

    @classmethod
    async def from_socket(cls, sock_or_fd: SocketLike) -> Self:
        """Wrap a connected AF_UNIX datagram socket; takes ownership. Never waits.

        Raises ValueError for another family or type or an unconnected socket.
        The socket's timeout becomes None (anyio bounds waits with cancel scopes).
        """
        return cls(
            adopt(sock_or_fd, _stdlib.SOCK_DGRAM, _stdlib.AF_UNIX, require_connected=True)
        )
