"""Run an async example on the backend named on its command line.

Every async example ends with ``run(main)``: ``python examples/<name>.py``
runs on asyncio, and ``python examples/<name>.py uvloop`` (or ``trio``) runs
the very same code on that backend. asock itself needs no such switch; it
finds the running event loop by itself.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

import anyio

BACKENDS = ("asyncio", "uvloop", "trio")


def run(main: Callable[[], Awaitable[object]]) -> None:
    """Run ``main`` on the backend given as the first argument (default asyncio)."""
    name = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    if name not in BACKENDS:
        raise SystemExit(f"usage: {sys.argv[0]} [{'|'.join(BACKENDS)}]")
    if name == "trio":
        anyio.run(main, backend="trio")
    else:
        anyio.run(main, backend="asyncio", backend_options={"use_uvloop": name == "uvloop"})
