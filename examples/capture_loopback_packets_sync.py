"""Capture a UDP datagram on the loopback interface with a raw AF_PACKET socket (asock_sync).

A packet socket bound to ``lo`` sees every IPv4 frame on it: this script
sends a UDP datagram to itself, reads frames until that datagram shows
up, and decodes its Ethernet, IPv4 and UDP headers. (Outgoing copies are
only delivered to ETH_P_ALL sockets, so an ETH_P_IP socket sees each frame
once, as it arrives.)
Linux only, and opening a packet socket needs root (CAP_NET_RAW).

Run (as root): python examples/capture_loopback_packets_sync.py
"""

from __future__ import annotations

import os
import struct
import time

import asock_sync as socket

ETH_P_IP = 0x0800  # Ethernet type of IPv4: capture nothing else
DIRECTIONS = {socket.PACKET_HOST: "incoming", socket.PACKET_OUTGOING: "outgoing"}


def describe(frame: bytes) -> tuple[str, bytes]:
    """Decode an Ethernet frame that carries IPv4 and UDP; return a summary and the payload."""
    ip = frame[14:]
    header_length = (ip[0] & 0x0F) * 4
    protocol = ip[9]
    source, destination = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
    if protocol != socket.IPPROTO_UDP:
        return f"IPv4 protocol {protocol} {source} -> {destination}", b""
    sport, dport, length = struct.unpack("!HHH", ip[header_length : header_length + 6])
    payload = ip[header_length + 8 : header_length + length]
    return f"IPv4 UDP {source}:{sport} -> {destination}:{dport}, {len(payload)} bytes", payload


def capture(sniffer: socket.socket, marker: bytes, wait: float) -> tuple[str, int, str] | None:
    """Read frames for ``wait`` seconds until one carries ``marker``; None if none did."""
    deadline = time.monotonic() + wait
    while (remaining := deadline - time.monotonic()) > 0:
        sniffer.settimeout(remaining)
        try:
            frame, (interface, _, packet_type, _, _) = sniffer.recvfrom(65535)
        except TimeoutError:
            return None
        summary, payload = describe(frame)
        if payload == marker:
            return interface, packet_type, summary
    return None


def main() -> None:
    try:
        sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    except PermissionError as exc:
        raise SystemExit(f"capturing packets needs root (CAP_NET_RAW): {exc}") from None
    with sniffer, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        sniffer.bind(("lo", 0))
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(10)
        marker = f"asock capture {os.getpid()}".encode()
        # A busy loopback can overflow the capture buffer and drop our frame:
        # send again every half second, for ten seconds at most.
        for _ in range(20):
            udp.sendto(marker, udp.getsockname())
            if found := capture(sniffer, marker, wait=0.5):
                break
        else:
            raise SystemExit("the datagram never showed up on lo")
        interface, packet_type, summary = found
        data, _ = udp.recvfrom(1024)
        direction = DIRECTIONS.get(packet_type, f"type {packet_type}")
        print(f"captured on {interface} ({direction}): {summary}: {marker!r}")
        print(f"the UDP socket received {data!r} as well")


if __name__ == "__main__":
    main()
