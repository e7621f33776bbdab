"""Entry points with anyio's signatures that hand back asock-backed adapters.

``connect_tcp``, ``connect_unix``, ``create_tcp_listener``,
``create_unix_listener``, ``create_udp_socket``,
``create_connected_udp_socket``, ``create_unix_datagram_socket`` and
``create_connected_unix_datagram_socket`` take the arguments of the anyio functions of
the same names and follow their rules; the sockets are asock's and every
wait goes through asock's operation layer.
"""

from __future__ import annotations

import errno
import os
import socket as _stdlib
import ssl
import stat
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Literal, overload

from anyio.abc import SocketStream as _AnyioSocketStream
from anyio.streams.stapled import MultiListener
from anyio.streams.tls import TLSStream

from .._functions import create_connection
from .._resolver import getaddrinfo
from .._socket import socket
from ._adapters import (
    ConnectedUDPSocket,
    ConnectedUNIXDatagramSocket,
    SocketStream,
    TCPListener,
    UDPSocket,
    UNIXDatagramSocket,
    UNIXListener,
    UNIXSocketStream,
)

IPAddressType = str | IPv4Address | IPv6Address

#: anyio caps listen backlogs at 2**16.
_MAX_BACKLOG = 65536
#: How often create_tcp_listener retries when the ephemeral port the first
#: family got is taken in another family.
_EPHEMERAL_PORT_ATTEMPTS = 10


@overload
async def connect_tcp(
    remote_host: IPAddressType, remote_port: int, *,
    local_host: IPAddressType | None = ..., local_port: int | None = ...,
    tls: Literal[False] = ..., ssl_context: None = ...,
    tls_standard_compatible: bool = ..., tls_hostname: None = ...,
    happy_eyeballs_delay: float = ...,
) -> SocketStream: ...


@overload
async def connect_tcp(
    remote_host: IPAddressType, remote_port: int, *,
    local_host: IPAddressType | None = ..., local_port: int | None = ...,
    tls: bool = ..., ssl_context: ssl.SSLContext | None = ...,
    tls_standard_compatible: bool = ..., tls_hostname: str | None = ...,
    happy_eyeballs_delay: float = ...,
) -> SocketStream | TLSStream: ...


async def connect_tcp(
    remote_host: IPAddressType,
    remote_port: int,
    *,
    local_host: IPAddressType | None = None,
    local_port: int | None = None,
    tls: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    tls_standard_compatible: bool = True,
    tls_hostname: str | None = None,
    happy_eyeballs_delay: float = 0.25,
) -> SocketStream | TLSStream:
    """Connect over TCP, as ``anyio.connect_tcp``, and return an asock-backed stream.

    The addresses of ``remote_host`` are raced with Happy Eyeballs by
    :func:`asock.create_connection` (a new attempt every
    ``happy_eyeballs_delay`` seconds or as soon as one fails). With
    ``local_host`` (and optionally ``local_port``) every attempt binds to
    that address first; attempts in another family simply fail.

    With ``tls=True``, an ``ssl_context`` or a ``tls_hostname``, a TLS
    handshake follows and an ``anyio.streams.tls.TLSStream`` over the
    :class:`SocketStream` is returned (the server name defaults to
    ``remote_host``). Waits for resolution, connection and handshake.

    Raises ``OSError("All connection attempts failed")`` chained to the
    attempt's error (or to an ExceptionGroup of all of them), ``gaierror``
    if resolution fails, ``ssl.SSLError`` or ``BrokenResourceError`` if the
    handshake fails (the connection is then closed).
    """
    source_address = None
    if local_host:
        local = await getaddrinfo(str(local_host), local_port)
        source_address = local[0][4]
    try:
        sock = await create_connection(
            (str(remote_host), remote_port), None, source_address,
            all_errors=True, happy_eyeballs_delay=happy_eyeballs_delay,
        )
    except ExceptionGroup as group:
        errors = group.exceptions
        cause = errors[0] if len(errors) == 1 else ExceptionGroup(
            "multiple connection attempts failed", errors
        )
        raise OSError("All connection attempts failed") from cause
    try:
        sock.setsockopt(_stdlib.IPPROTO_TCP, _stdlib.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    stream = SocketStream(sock)
    if not (tls or ssl_context or tls_hostname):
        return stream
    try:
        return await TLSStream.wrap(
            stream, server_side=False, hostname=tls_hostname or str(remote_host),
            ssl_context=ssl_context, standard_compatible=tls_standard_compatible,
        )
    except BaseException:
        sock.close()
        raise


async def connect_unix(
    path: str | bytes | os.PathLike[Any],
    kind: int = _stdlib.SOCK_STREAM,
) -> UNIXSocketStream:
    """Connect to the AF_UNIX socket at ``path``, as ``anyio.connect_unix``.

    ``kind`` is SOCK_STREAM or SOCK_SEQPACKET. Waits for the connection;
    raises OSError (e.g. FileNotFoundError, ConnectionRefusedError).
    """
    sock = socket(_stdlib.AF_UNIX, kind)
    try:
        await sock.connect(os.fspath(path))
    except BaseException:
        sock.close()
        raise
    return UNIXSocketStream(sock)


async def _listening_socket(
    family: int, address: tuple[Any, ...], backlog: int, reuse_port: bool, v6only: bool = True
) -> socket:
    sock = socket(family, _stdlib.SOCK_STREAM)
    try:
        if family == _stdlib.AF_INET6:
            sock.setsockopt(_stdlib.IPPROTO_IPV6, _stdlib.IPV6_V6ONLY, v6only)
        sock.setsockopt(_stdlib.SOL_SOCKET, _stdlib.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(_stdlib.SOL_SOCKET, _stdlib.SO_REUSEPORT, 1)
        await sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


async def create_tcp_listener(
    *,
    local_host: IPAddressType | None = None,
    local_port: int = 0,
    family: int = _stdlib.AF_UNSPEC,
    backlog: int = _MAX_BACKLOG,
    reuse_port: bool = False,
) -> MultiListener[_AnyioSocketStream]:
    """Listen for TCP connections, as ``anyio.create_tcp_listener``.

    Returns an ``anyio.streams.stapled.MultiListener`` holding one
    :class:`TCPListener` per address ``local_host`` resolves to (all
    interfaces when omitted: one dual-stack IPv6 socket where the system
    supports it). With ``local_port=0`` every socket gets the same ephemeral
    port. ``backlog`` is capped at 65536. Waits only to resolve
    ``local_host``. Raises ``gaierror`` or OSError from bind/listen.
    """
    backlog = min(backlog, _MAX_BACKLOG)
    host = None if local_host is None else str(local_host)
    infos = await getaddrinfo(
        host, local_port, family, _stdlib.SOCK_STREAM, 0,
        _stdlib.AI_PASSIVE | _stdlib.AI_ADDRCONFIG,
    )
    if (
        host is None
        and family == _stdlib.AF_UNSPEC
        and _stdlib.has_dualstack_ipv6()
        and any(info[0] == _stdlib.AF_INET6 for info in infos)
    ):
        sock = await _listening_socket(
            _stdlib.AF_INET6, ("::", local_port), backlog, reuse_port, v6only=False
        )
        return MultiListener([TCPListener(sock)])

    # A set: glibc can return the same address twice.
    addresses = sorted({(info[0], info[4]) for info in infos})
    errors: list[OSError] = []
    for _ in range(_EPHEMERAL_PORT_ATTEMPTS):
        sockets: list[socket] = []
        port = local_port
        try:
            for addr_family, sockaddr in addresses:
                sock = await _listening_socket(
                    addr_family, (sockaddr[0], port, *sockaddr[2:]), backlog, reuse_port
                )
                sockets.append(sock)
                port = sock.getsockname()[1]
        except BaseException as exc:
            for sock in sockets:
                sock.close()
            if (
                isinstance(exc, OSError)
                and exc.errno == errno.EADDRINUSE
                and local_port == 0
                and sockets
            ):
                # The port the first family got is taken in another one:
                # start from another family and try again.
                errors.append(exc)
                addresses.append(addresses.pop(0))
                continue
            raise
        return MultiListener([TCPListener(sock) for sock in sockets])
    raise OSError(
        f"could not bind {len(addresses)} listeners to one ephemeral port"
    ) from ExceptionGroup("every attempt found the port taken", errors)


def _remove_stale_socket_file(path: str) -> None:
    # Linux abstract-namespace names have no file to remove.
    if path.startswith("\0"):
        return
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISSOCK(st.st_mode):
        os.unlink(path)


async def _unix_socket(
    path: str | bytes | os.PathLike[Any] | None, mode: int | None, kind: int
) -> socket:
    """An AF_UNIX socket bound to ``path`` (replacing a stale socket file) with ``mode``."""
    sock = socket(_stdlib.AF_UNIX, kind)
    if path is None:
        return sock
    try:
        path_str = os.fsdecode(path)
        _remove_stale_socket_file(path_str)
        await sock.bind(path_str)
        if mode is not None:
            os.chmod(path_str, mode)
    except BaseException:
        sock.close()
        raise
    return sock


async def create_unix_listener(
    path: str | bytes | os.PathLike[Any],
    *,
    mode: int | None = None,
    backlog: int = _MAX_BACKLOG,
    kind: int = _stdlib.SOCK_STREAM,
) -> UNIXListener:
    """Listen on the AF_UNIX path ``path``, as ``anyio.create_unix_listener``.

    A socket file already at ``path`` is removed first (any other file makes
    bind fail with OSError); ``mode`` sets its permissions. Never waits.
    """
    sock = await _unix_socket(path, mode, kind)
    try:
        sock.listen(min(backlog, _MAX_BACKLOG))
    except BaseException:
        sock.close()
        raise
    return UNIXListener(sock)


async def create_unix_datagram_socket(
    *,
    local_path: str | bytes | os.PathLike[Any] | None = None,
    local_mode: int | None = None,
) -> UNIXDatagramSocket:
    """An AF_UNIX datagram socket, as ``anyio.create_unix_datagram_socket``.

    Bound to ``local_path`` if given (a stale socket file there is removed
    first), so that others can send to it. Raises OSError. Never waits.
    """
    return UNIXDatagramSocket(await _unix_socket(local_path, local_mode, _stdlib.SOCK_DGRAM))


async def create_connected_unix_datagram_socket(
    remote_path: str | bytes | os.PathLike[Any],
    *,
    local_path: str | bytes | os.PathLike[Any] | None = None,
    local_mode: int | None = None,
) -> ConnectedUNIXDatagramSocket:
    """An AF_UNIX datagram socket connected to ``remote_path``.

    As ``anyio.create_connected_unix_datagram_socket``; ``local_path`` as in
    :func:`create_unix_datagram_socket`. Raises OSError (e.g.
    FileNotFoundError). Never waits.
    """
    sock = await _unix_socket(local_path, local_mode, _stdlib.SOCK_DGRAM)
    try:
        await sock.connect(os.fspath(remote_path))
    except BaseException:
        sock.close()
        raise
    return ConnectedUNIXDatagramSocket(sock)


async def _udp_socket(
    family: int, local: Any, remote: Any, reuse_port: bool
) -> socket:
    sock = socket(family, _stdlib.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(_stdlib.SOL_SOCKET, _stdlib.SO_REUSEPORT, 1)
        if local:
            await sock.bind(local)
        if remote:
            await sock.connect(remote)
    except BaseException:
        sock.close()
        raise
    return sock


async def _local_udp_address(host: IPAddressType, port: int, family: int) -> tuple[int, Any]:
    infos = await getaddrinfo(
        str(host), port, family, _stdlib.SOCK_DGRAM, 0,
        _stdlib.AI_PASSIVE | _stdlib.AI_ADDRCONFIG,
    )
    return infos[0][0], infos[0][4]


def _any_address(family: int, port: int) -> tuple[str, int]:
    return ("::" if family == _stdlib.AF_INET6 else "0.0.0.0", port)


async def create_udp_socket(
    family: int = _stdlib.AF_UNSPEC,
    *,
    local_host: IPAddressType | None = None,
    local_port: int = 0,
    reuse_port: bool = False,
) -> UDPSocket:
    """Create a bound UDP socket, as ``anyio.create_udp_socket``.

    The family comes from ``family`` or from resolving ``local_host``; without
    ``local_host`` the socket binds to every interface. Raises ValueError if
    neither is given, ``gaierror`` or OSError. Waits only to resolve.
    """
    if family == _stdlib.AF_UNSPEC and not local_host:
        raise ValueError('Either "family" or "local_host" must be given')
    if local_host:
        family, local = await _local_udp_address(local_host, local_port, family)
    else:
        local = _any_address(family, local_port)
    return UDPSocket(await _udp_socket(family, local, None, reuse_port))


async def create_connected_udp_socket(
    remote_host: IPAddressType,
    remote_port: int,
    *,
    family: int = _stdlib.AF_UNSPEC,
    local_host: IPAddressType | None = None,
    local_port: int = 0,
    reuse_port: bool = False,
) -> ConnectedUDPSocket:
    """Create a UDP socket connected to the peer, as ``anyio.create_connected_udp_socket``.

    The family comes from ``family``, ``local_host`` or ``remote_host`` in that
    order; the first address each resolves to is used. Raises ``gaierror`` or
    OSError. Waits only to resolve.
    """
    local = None
    if local_host:
        family, local = await _local_udp_address(local_host, local_port, family)
    remote_infos = await getaddrinfo(str(remote_host), remote_port, family, _stdlib.SOCK_DGRAM)
    family, remote = remote_infos[0][0], remote_infos[0][4]
    if local is None and local_port:
        local = _any_address(family, local_port)
    return ConnectedUDPSocket(await _udp_socket(family, local, remote, reuse_port))
