"""The two implementations the conformance tests compare: anyio's own and asock's.

Each :class:`Implementation` exposes the same entry points under the same
names, so a test written once against ``impl`` runs against anyio's sockets
(the reference) and against asock's adapters; any difference in behaviour
is a failing test on one side only.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc

import asock.streams


@dataclass(frozen=True)
class Implementation:
    """One set of anyio-style socket entry points."""

    name: str
    connect_tcp: Callable[..., Awaitable[Any]]
    connect_unix: Callable[..., Awaitable[Any]]
    create_tcp_listener: Callable[..., Awaitable[Any]]
    create_unix_listener: Callable[..., Awaitable[Any]]
    create_udp_socket: Callable[..., Awaitable[Any]]
    create_connected_udp_socket: Callable[..., Awaitable[Any]]
    create_unix_datagram_socket: Callable[..., Awaitable[Any]]
    create_connected_unix_datagram_socket: Callable[..., Awaitable[Any]]
    stream_from_socket: Callable[[Any], Awaitable[Any]]
    unix_stream_from_socket: Callable[[Any], Awaitable[Any]]
    tcp_listener_from_socket: Callable[[Any], Awaitable[Any]]
    unix_listener_from_socket: Callable[[Any], Awaitable[Any]]
    udp_from_socket: Callable[[Any], Awaitable[Any]]
    connected_udp_from_socket: Callable[[Any], Awaitable[Any]]

    def __str__(self) -> str:
        return self.name


ANYIO = Implementation(
    name="anyio",
    connect_tcp=anyio.connect_tcp,
    connect_unix=anyio.connect_unix,
    create_tcp_listener=anyio.create_tcp_listener,
    create_unix_listener=anyio.create_unix_listener,
    create_udp_socket=anyio.create_udp_socket,
    create_connected_udp_socket=anyio.create_connected_udp_socket,
    create_unix_datagram_socket=anyio.create_unix_datagram_socket,
    create_connected_unix_datagram_socket=anyio.create_connected_unix_datagram_socket,
    stream_from_socket=anyio.abc.SocketStream.from_socket,
    unix_stream_from_socket=anyio.abc.UNIXSocketStream.from_socket,
    tcp_listener_from_socket=anyio.abc.SocketListener.from_socket,
    unix_listener_from_socket=anyio.abc.SocketListener.from_socket,
    udp_from_socket=anyio.abc.UDPSocket.from_socket,
    connected_udp_from_socket=anyio.abc.ConnectedUDPSocket.from_socket,
)

ASOCK = Implementation(
    name="asock",
    connect_tcp=asock.streams.connect_tcp,
    connect_unix=asock.streams.connect_unix,
    create_tcp_listener=asock.streams.create_tcp_listener,
    create_unix_listener=asock.streams.create_unix_listener,
    create_udp_socket=asock.streams.create_udp_socket,
    create_connected_udp_socket=asock.streams.create_connected_udp_socket,
    create_unix_datagram_socket=asock.streams.create_unix_datagram_socket,
    create_connected_unix_datagram_socket=asock.streams.create_connected_unix_datagram_socket,
    stream_from_socket=asock.streams.SocketStream.from_socket,
    unix_stream_from_socket=asock.streams.UNIXSocketStream.from_socket,
    tcp_listener_from_socket=asock.streams.TCPListener.from_socket,
    unix_listener_from_socket=asock.streams.UNIXListener.from_socket,
    udp_from_socket=asock.streams.UDPSocket.from_socket,
    connected_udp_from_socket=asock.streams.ConnectedUDPSocket.from_socket,
)

IMPLEMENTATIONS = [ANYIO, ASOCK]


def has_ipv6_loopback() -> bool:
    """Whether ``::1`` can be bound here (containers often lack IPv6)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True
