"""What each front loads when imported (in a fresh interpreter, by sys.modules)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Modules an import of the fronts must not load by itself.
HEAVY = ("asyncio", "anyio", "sniffio", "trio", "ssl", "uvloop")


def _loaded_after(statement: str) -> set[str]:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return {name.split(".")[0] for name in json.loads(out)}


def test_asock_sync_loads_no_event_loop_library_and_no_ssl() -> None:
    baseline = _loaded_after("import socket")
    loaded = _loaded_after("import asock_sync")
    # Whatever `import socket` loads itself may be there; nothing heavy beyond it.
    assert not {name for name in HEAVY if name in loaded and name not in baseline}
    assert "asock" not in loaded  # the async front is not run


def test_asock_sync_loads_neither_typing_nor_threading_beyond_what_socket_does() -> None:
    baseline = _loaded_after("import socket")
    loaded = _loaded_after("import asock_sync")
    for name in ("typing", "threading", "signal"):
        assert name not in loaded or name in baseline, name


def test_asock_loads_trio_and_anyio_only_when_used() -> None:
    loaded = _loaded_after("import asock")
    assert "trio" not in loaded
    assert "anyio" not in loaded
    assert "asock_sync" not in loaded


@pytest.mark.parametrize("front", ["asock", "asock_sync"])
def test_a_front_does_not_import_the_other(front: str) -> None:
    other = {"asock": "asock_sync", "asock_sync": "asock"}[front]
    assert other not in _loaded_after(f"import {front}")
