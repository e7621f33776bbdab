"""Backend drivers: each only knows how to wait for a socket's readiness.

``asyncio_driver`` serves asyncio and uvloop (anything with ``add_reader``),
``trio_driver`` serves trio, and ``blocking`` serves ``asock_sync`` threads.
The operation layer (:mod:`asock._core.operations`) decides when to wait and
for how long; a driver only waits.
"""

from __future__ import annotations

from asyncio import _get_running_loop
from typing import TYPE_CHECKING, Protocol

import sniffio

from .asyncio_driver import DRIVER as _ASYNCIO_DRIVER

if TYPE_CHECKING:
    from .._core.socket_base import SocketBase


class Driver(Protocol):
    """How one async library waits for readiness and yields."""

    async def wait(self, s: SocketBase, event: int, timeout: float | None) -> bool:
        """Wait for ``event``; True when woken, False after ``timeout`` seconds."""

    async def checkpoint(self) -> None:
        """Let other tasks run (a cancellation may be delivered here)."""


_trio_driver: Driver | None = None


def current_driver() -> Driver:
    """Return the driver for the async library running in this thread.

    Raises RuntimeError outside asyncio, uvloop or trio.
    """
    name = sniffio.thread_local.name or sniffio.current_async_library_cvar.get()
    if name == "trio":
        global _trio_driver
        if _trio_driver is None:
            from .trio_driver import DRIVER

            _trio_driver = DRIVER
        return _trio_driver
    if name in (None, "asyncio") and _get_running_loop() is not None:
        return _ASYNCIO_DRIVER
    raise RuntimeError(
        "asock sockets are awaited inside asyncio, uvloop or trio; "
        f"found {name or 'no running event loop'} (use asock_sync for blocking code)"
    )
