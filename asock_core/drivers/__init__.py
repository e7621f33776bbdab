"""Backend drivers: each only knows how to wait for a socket's readiness.

``asyncio_driver`` serves asyncio and uvloop (anything with ``add_reader``),
``trio_driver`` serves trio, and ``blocking`` serves ``asock_sync`` threads.
The operation layer (:mod:`asock_core.operations`) decides when to wait and
for how long; a driver only waits.

A new driver provides ``wait(s, event, timeout) -> awaitable bool`` and
``checkpoint() -> awaitable``; it makes a socket's per-driver state through
``SocketBase._queue`` only (it may read ``_first_key``/``_first_queue`` or
call ``queue_at`` first, never write them; keys match by identity),
and wakes its waiters from the queue's ``wake_closing`` when the socket is
closed (see docs/internals.md).

Nothing here imports an event loop library: ``asock_sync`` loads this package
for ``blocking`` and must not pay for asyncio or trio.
"""

from __future__ import annotations

import os
import sys

#: How many sockets of a trio run or an asyncio/uvloop loop wait through the
#: library's own registration (and are still open) before later ones go to
#: asock's epoll hub; see docs/backends.md. ``ASOCK_HUB_AFTER`` sets it (0:
#: every socket on the hub; .ci/run runs the whole suite once that way).
HUB_AFTER = int(os.environ.get("ASOCK_HUB_AFTER", "4"))

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable
    from typing import Any, Protocol

    from ..socket_base import SocketBase
    from .asyncio_driver import AsyncioDriver

    class Driver(Protocol):
        """How one async library waits for readiness and yields."""

        def wait(self, s: SocketBase, event: int, timeout: float | None) -> Awaitable[bool]:
            """Wait for ``event``; True when woken, False after ``timeout`` seconds."""

        async def checkpoint(self) -> None:
            """Let other tasks run (a cancellation may be delivered here)."""


_trio_driver: Driver | None = None
_asyncio_driver: AsyncioDriver | None = None


def current_driver() -> Driver:
    """Return the driver for the async library running in this thread.

    Raises RuntimeError outside asyncio, uvloop or trio. Imports the driver
    (and its library) on first use.
    """
    global _trio_driver, _asyncio_driver
    # trio marks its runs for sniffio; sniffio is only imported by an async
    # library (anyio, trio), so while it is absent only asyncio can be running.
    sniffio = sys.modules.get("sniffio")
    name = None
    if sniffio is not None:
        name = sniffio.thread_local.name or sniffio.current_async_library_cvar.get()
        if name == "trio":
            if _trio_driver is None:
                from .trio_driver import DRIVER

                _trio_driver = DRIVER
            return _trio_driver
    if _asyncio_driver is None:
        from .asyncio_driver import DRIVER as ASYNCIO

        _asyncio_driver = ASYNCIO
    if name in (None, "asyncio") and _asyncio_driver.loop_running():
        return _asyncio_driver
    raise RuntimeError(
        "asock sockets are awaited inside asyncio, uvloop or trio; "
        f"found {name or 'no running event loop'} (use asock_sync for blocking code)"
    )


_running_loop: Any = None
_asyncio_wait_on: Any = None

#: How many times a task of this process let others run inside an async
#: front's call (a wait, or a fairness checkpoint). anyio's stream adapters
#: compare it around an operation: unchanged means the call completed without
#: yielding, and only then do they add a schedule point of their own.
yields = 0


def wait(s: SocketBase, event: int, timeout: float | None) -> Awaitable[bool]:
    """Wait for ``event`` on ``s`` through the driver of the library running here.

    :func:`current_driver` then ``driver.wait``, with the running loop looked
    up once (on Python 3.11 each look-up is a ``getpid()`` system call, and
    this runs on every wait) and trio's mark checked once.
    """
    global _running_loop, _asyncio_wait_on, yields
    yields += 1
    sniffio = sys.modules.get("sniffio")
    if sniffio is not None and sniffio.thread_local.name == "trio":
        return (_trio_driver or current_driver()).wait(s, event, timeout)
    if _running_loop is None:
        from .asyncio_driver import DRIVER as ASYNCIO
        from .asyncio_driver import running_loop

        _running_loop, _asyncio_wait_on = running_loop, ASYNCIO.wait_on
    loop = _running_loop()
    if loop is not None:
        return _asyncio_wait_on(loop, s, event, timeout)  # type: ignore[no-any-return]
    return current_driver().wait(s, event, timeout)


def checkpoint() -> Awaitable[None]:
    """Let other tasks run once, through the driver of the library running here."""
    global yields
    yields += 1
    return current_driver().checkpoint()


def forget_outside_waits(s: SocketBase) -> None:
    """Wake tasks that wait on ``s`` through their library rather than through asock.

    On trio, a task in ``trio.lowlevel.wait_readable(fd)`` (anyio's
    ``wait_readable(sock)`` included) is woken with ClosedResourceError when
    an asock socket is closed in that run, even if asock itself never waited
    on it. Called by the async front before it releases the descriptor.
    """
    sniffio = sys.modules.get("sniffio")
    if sniffio is not None and sniffio.thread_local.name == "trio":
        fd = s.fileno()
        if fd >= 0:
            import trio

            trio.lowlevel.notify_closing(fd)
