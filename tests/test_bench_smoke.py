"""``python -m asock bench --quick``: the benchmark runs end to end and reports every cell.

These tests check the shape of what the bench prints and writes, never a
timing: speed is judged by reading the table, not by the test suite.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.impls import implementation_names, implementations
from benchmarks.runner import TARGETS, WORKLOADS

ROOT = Path(__file__).resolve().parent.parent
INSTALLED = [impl.name for impl in implementations()]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    json_path = out / "bench.json"
    command = [sys.executable, "-m", "asock", "bench", "--quick", "--json", str(json_path)]
    plot_path = out / "bench.png"
    if importlib.util.find_spec("matplotlib") is not None:
        command += ["--plot", str(plot_path)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return {
        "stdout": done.stdout,
        "stderr": done.stderr,
        "json": json.loads(json_path.read_text()),
        "plot": plot_path if plot_path.exists() else None,
        "plot_asked": "--plot" in command,
    }


def test_table_has_a_row_per_workload_and_a_column_per_implementation(
    quick_run: dict[str, Any],
) -> None:
    lines = quick_run["stdout"].splitlines()
    header = lines[0]
    assert header.startswith("workload")
    for name in INSTALLED:
        assert name in header
    rows = {line.split(" ", 1)[0]: line for line in lines[2 : 2 + len(WORKLOADS)]}
    assert list(rows) == [w.name for w in WORKLOADS]
    for workload in WORKLOADS:
        row = rows[workload.name]
        assert f"({workload.unit}," in row
        # Every measured cell shows its ratio; the reference column shows 1.00x.
        assert "1.00x" in row
        assert "error" not in row


def test_progress_goes_to_stderr(quick_run: dict[str, Any]) -> None:
    assert "memory run 1" in quick_run["stderr"]
    assert "measured in" in quick_run["stderr"]


def test_json_holds_every_cell_with_samples_or_a_reason(quick_run: dict[str, Any]) -> None:
    data = quick_run["json"]
    assert data["implementations"] == INSTALLED
    assert set(data["workloads"]) == {w.name for w in WORKLOADS}
    for name, workload in data["workloads"].items():
        assert workload["reference"] in INSTALLED
        results = workload["results"]
        assert set(results) == set(INSTALLED)
        for impl, cell in results.items():
            if cell["note"]:
                assert cell["note"].startswith("n/a: "), (name, impl, cell["note"])
                assert cell["samples"] == [] and cell["median"] is None
            else:
                assert cell["samples"], (name, impl)
                assert all(sample > 0 for sample in cell["samples"])
                assert cell["median"] == statistics.median(cell["samples"])
                assert cell["ratio"] > 0
        assert results[workload["reference"]]["ratio"] == 1.0


def test_only_what_cannot_run_is_marked_not_available(quick_run: dict[str, Any]) -> None:
    not_available = {
        (name, impl)
        for name, workload in quick_run["json"]["workloads"].items()
        for impl, cell in workload["results"].items()
        if cell["note"]
    }
    expected = {
        ("hot", "asyncio Protocol"), ("hot", "uvloop Protocol"), ("udp", "uvloop sock_*"),
        ("memory", "stdlib"), ("memory", "asock_sync"),
    }
    assert not_available == {cell for cell in expected if cell[1] in INSTALLED}


def test_every_target_is_judged_in_the_same_run(quick_run: dict[str, Any]) -> None:
    verdicts = quick_run["json"]["targets"]
    assert len(verdicts) == len(TARGETS)
    for verdict in verdicts:
        if verdict["impl"] in INSTALLED and verdict["peer"] in INSTALLED:
            assert isinstance(verdict["met"], bool)
            assert verdict["measured"] > 0
    assert "targets (ratios from this run):" in quick_run["stdout"]


def test_plot_is_a_png(quick_run: dict[str, Any]) -> None:
    if not quick_run["plot_asked"]:
        pytest.skip("matplotlib is not installed (the 'bench' extra)")
    assert quick_run["plot"].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_every_known_implementation_is_either_run_or_reported_missing() -> None:
    assert set(INSTALLED) <= set(implementation_names())


def test_unknown_workload_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asock", "bench", "--only", "nonsense"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert "invalid choice" in done.stderr
