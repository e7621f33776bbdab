"""anyio streams over asock sockets.

Adapters that implement anyio's abstract socket classes
(``anyio.abc.SocketStream``, ``UNIXSocketStream``, ``SocketListener``,
``UDPSocket``, ``ConnectedUDPSocket``, ``UNIXDatagramSocket``,
``ConnectedUNIXDatagramSocket``) with anyio's semantics, each owning an
:class:`asock.socket`, and entry points with the signatures of anyio's own
(``connect_tcp``, ``create_tcp_listener``, ...). Everything anyio builds on
byte streams (``TLSStream``, ``TLSListener``, ``BufferedByteReceiveStream``,
``TextStream``) runs over them unchanged, on asyncio, uvloop and trio.
"""

from __future__ import annotations

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
from ._connect import (
    connect_tcp,
    connect_unix,
    create_connected_udp_socket,
    create_connected_unix_datagram_socket,
    create_tcp_listener,
    create_udp_socket,
    create_unix_datagram_socket,
    create_unix_listener,
)

__all__ = [
    "ConnectedUDPSocket",
    "ConnectedUNIXDatagramSocket",
    "SocketStream",
    "TCPListener",
    "UDPSocket",
    "UNIXDatagramSocket",
    "UNIXListener",
    "UNIXSocketStream",
    "connect_tcp",
    "connect_unix",
    "create_connected_udp_socket",
    "create_connected_unix_datagram_socket",
    "create_tcp_listener",
    "create_udp_socket",
    "create_unix_datagram_socket",
    "create_unix_listener",
]
