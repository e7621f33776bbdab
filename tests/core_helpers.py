"""Helpers shared by the core test modules (imported like ``anyio_conformance``)."""

from __future__ import annotations

import asock


async def fill_send_buffer(sock: asock.socket) -> int:
    """Send until the kernel refuses more; return how many bytes went."""
    saved = sock.gettimeout()
    sock.settimeout(0.0)
    total = 0
    try:
        for size in (65536, 4096, 1):
            while True:
                try:
                    total += await sock.send(b"f" * size)
                except BlockingIOError:
                    break
    finally:
        sock.settimeout(saved)
    return total
