"""Capture a UDP datagram on the loopback interface with a raw AF_PACKET socket (asock).

A packet socket bound to ``lo`` sees every IPv4 frame on it: this script
sends a UDP datagram to itself, reads frames until that datagram shows
up, and decodes its Ethernet, IPv4 and UDP headers. (Outgoing copies are
only delivered to ETH_P_ALL sockets, so an ETH_P_IP socket sees each frame
once, as it arrives.)
Linux only, and opening a packet socket needs root (CAP_NET_RAW).

Run (as root): python examples/capture_loopback_packets.py [asyncio|uvloop|trio]
"""

from __future__ import annotations

import os
import struct

import anyio
from _backends import run

import asock

ETH_P_IP = 0x0800  # Ethernet type of IPv4: capture nothing else
DIRECTIONS = {asock.PACKET_HOST: "incoming", asock.PACKET_OUTGOING: "outgoing"}


def describe(frame: bytes) -> tuple[str, bytes]:
    """Decode an Ethernet frame that carries IPv4 and UDP; return a summary and the payload."""
    ip = frame[14:]
    header_length = (ip[0] & 0x0F) * 4
    protocol = ip[9]
    source, destination = asock.inet_ntoa(ip[12:16]), asock.inet_ntoa(ip[16:20])
    if protocol != asock.IPPROTO_UDP:
        return f"IPv4 protocol {protocol} {source} -> {destination}", b""
    sport, dport, length = struct.unpack("!HHH", ip[header_length : header_length + 6])
    payload = ip[header_length + 8 : header_length + length]
    return f"IPv4 UDP {source}:{sport} -> {destination}:{dport}, {len(payload)} bytes", payload


async def capture(sniffer: asock.socket, marker: bytes) -> tuple[str, int, str]:
    """Read frames until one carries ``marker``; return interface, packet type, summary."""
    while True:  # other traffic on lo comes and goes: skip it
        frame, (interface, _, packet_type, _, _) = await sniffer.recvfrom(65535)
        summary, payload = describe(frame)
        if payload == marker:
            return interface, packet_type, summary


async def send_until_captured(udp: asock.socket, marker: bytes, captured: anyio.Event) -> None:
    # A busy loopback can overflow the capture buffer and drop our frame: resend.
    while not captured.is_set():
        await udp.sendto(marker, udp.getsockname())
        with anyio.move_on_after(0.5):
            await captured.wait()


async def main() -> None:
    try:
        sniffer = asock.socket(asock.AF_PACKET, asock.SOCK_RAW, asock.htons(ETH_P_IP))
    except PermissionError as exc:
        raise SystemExit(f"capturing packets needs root (CAP_NET_RAW): {exc}") from None
    with sniffer, asock.socket(asock.AF_INET, asock.SOCK_DGRAM) as udp:
        await sniffer.bind(("lo", 0))
        await udp.bind(("127.0.0.1", 0))
        marker = f"asock capture {os.getpid()}".encode()
        captured = anyio.Event()
        with anyio.fail_after(10):  # give up rather than hang if the frame never shows
            async with anyio.create_task_group() as tg:
                tg.start_soon(send_until_captured, udp, marker, captured)
                interface, packet_type, summary = await capture(sniffer, marker)
                captured.set()
            data, _ = await udp.recvfrom(1024)
        direction = DIRECTIONS.get(packet_type, f"type {packet_type}")
        print(f"captured on {interface} ({direction}): {summary}: {marker!r}")
        print(f"the UDP socket received {data!r} as well")


if __name__ == "__main__":
    run(main)
