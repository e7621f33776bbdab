"""Helpers shared by the core test modules (imported like ``anyio_conformance``)."""

from __future__ import annotations

import anyio

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


class Ticker:
    """Counts how often a task of its own gets to run: one tick per scheduling pass.

    Start ``run`` in a task group; ``ticks`` then shows whether the code under
    test lets other tasks run.
    """

    def __init__(self) -> None:
        self.ticks = 0

    async def run(self) -> None:
        """Tick and yield, forever (cancel the task group to stop it)."""
        while True:
            self.ticks += 1
            await anyio.sleep(0)
