"""``python -m benchmarks --quick``: the benchmark runs end to end and reports every cell.

These tests check the shape of what the bench prints and writes, never a
timing: speed is judged by reading the table, not by the test suite. The bench
is run the way its users run it, from the repository root.
"""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.impls import (
    STREAMS_LIBRARIES,
    implementation_names,
    implementations,
    stream_implementations,
)
from benchmarks.peers import HTTP_REQUEST, HTTP_RESPONSE
from benchmarks.runner import ROWS, STREAMS_ROWS, load_targets, parse_targets, row_label

ROOT = Path(__file__).resolve().parent.parent
INSTALLED = [impl.name for impl in implementations()]
#: The cells of the anyio streams rows installed here (``library/backend``).
STREAMS_INSTALLED = [impl.name for impl in stream_implementations()]
#: The rows of the main table, and the anyio streams rows whose backend is installed.
MAIN_ROWS = [w for w in ROWS if w not in STREAMS_ROWS]
STREAMS_SHOWN = [w for w in STREAMS_ROWS if w.reference in STREAMS_INSTALLED]
TARGETS = load_targets()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    json_path = out / "bench.json"
    command = [sys.executable, "-m", "benchmarks", "--quick", "--json", str(json_path)]
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
    rows = lines[2 : 2 + len(MAIN_ROWS)]
    assert [row.split("  ", 1)[0].strip() for row in rows] == [row_label(w) for w in MAIN_ROWS]
    assert "echo (req/server-CPU-s, higher better)" in rows[3]
    assert rows[4].startswith("http (req/s, higher better)")
    assert "http (req/server-CPU-s, higher better)" in rows[5]
    for row in rows:
        # Every measured cell shows its ratio; the reference column shows 1.00x.
        assert "1.00x" in row
        assert "error" not in row
        measured = len(re.findall(r" \d+(\.\d+)?[kM]? \d+\.\d\dx", row))
        assert measured + row.count(" n/a") == len(INSTALLED), row


def test_anyio_streams_have_a_table_of_their_own(quick_run: dict[str, Any]) -> None:
    lines = quick_run["stdout"].splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("anyio streams (unit)"))
    assert lines[start].split() == ["anyio", "streams", "(unit)", *STREAMS_LIBRARIES]
    rows = lines[start + 2 : start + 2 + len(STREAMS_SHOWN)]
    assert [row.split("  ", 1)[0].strip() for row in rows] == [
        row_label(w) for w in STREAMS_SHOWN
    ]
    for row in rows:
        # asock.streams against anyio's own streams on the same backend (1.00x).
        assert re.fullmatch(r"\S+ \(us/round, lower better\)( +\d+(\.\d+)? \d+\.\d\dx){2}", row)
        assert row.endswith(" 1.00x")
    assert lines[start + 2 + len(STREAMS_SHOWN)].startswith("ratios are against anyio's own")


def test_progress_goes_to_stderr(quick_run: dict[str, Any]) -> None:
    assert "memory run 1" in quick_run["stderr"]
    assert "streams run 1: asock.streams/asyncio" in quick_run["stderr"]
    assert "measured in" in quick_run["stderr"]


def test_helpers_are_pinned_or_the_run_says_why_not(quick_run: dict[str, Any]) -> None:
    stderr = quick_run["stderr"]
    assert "pinned: the bench to CPU" in stderr or "nothing is pinned" in stderr


def test_json_holds_every_cell_with_samples_or_a_reason(quick_run: dict[str, Any]) -> None:
    data = quick_run["json"]
    assert data["implementations"] == INSTALLED
    assert data["streams_implementations"] == STREAMS_INSTALLED
    assert set(data["workloads"]) == {w.name for w in MAIN_ROWS + STREAMS_SHOWN}
    assert data["workloads"]["echo-cpu"]["unit"] == "req/server-CPU-s"
    assert data["workloads"]["http-cpu"]["unit"] == "req/server-CPU-s"
    for name, workload in data["workloads"].items():
        results = workload["results"]
        if name.startswith("streams-"):
            backend = name.removeprefix("streams-")
            assert workload["reference"] == f"anyio/{backend}"
            assert set(results) == {f"{library}/{backend}" for library in STREAMS_LIBRARIES}
        else:
            assert workload["reference"] in INSTALLED
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
        ("hot", "asyncio streams/uvloop"), ("udp", "asyncio streams/uvloop"),
    }
    assert not_available == {cell for cell in expected if cell[1] in INSTALLED}


@pytest.mark.parametrize("workload", ["echo", "http"])
def test_servers_report_requests_per_server_cpu_second(
    quick_run: dict[str, Any], workload: str
) -> None:
    workloads = quick_run["json"]["workloads"]
    for impl in INSTALLED:
        per_cpu = workloads[f"{workload}-cpu"]["results"][impl]
        assert len(per_cpu["samples"]) == len(workloads[workload]["results"][impl]["samples"])
        assert per_cpu["median"] > 0
        if "pinned: the bench to CPU" in quick_run["stderr"]:
            # A server pinned to one CPU never uses more than that CPU (slack: the clock
            # reads lag the load's window a little), so per CPU-second >= per second.
            assert per_cpu["median"] >= 0.8 * workloads[workload]["results"][impl]["median"]


def _receive_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


@pytest.mark.parametrize("name", INSTALLED)
def test_every_http_server_answers_each_request_on_a_keep_alive_connection(name: str) -> None:
    impl = {i.name: i for i in implementations()}[name]
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()
    server = threading.Thread(target=impl.http, args=(listener, stop.wait, lambda: None))
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(HTTP_REQUEST)
            assert _receive_exactly(conn, len(HTTP_RESPONSE)) == HTTP_RESPONSE
            conn.sendall(HTTP_REQUEST * 2)  # pipelined: two answers
            assert _receive_exactly(conn, 2 * len(HTTP_RESPONSE)) == HTTP_RESPONSE * 2
            conn.sendall(HTTP_REQUEST[:7])  # one request in two reads
            time.sleep(0.05)
            conn.sendall(HTTP_REQUEST[7:])
            assert _receive_exactly(conn, len(HTTP_RESPONSE)) == HTTP_RESPONSE
    finally:
        stop.set()
        server.join(10)
    assert not server.is_alive()


def test_every_target_is_judged_in_the_same_run(quick_run: dict[str, Any]) -> None:
    verdicts = quick_run["json"]["targets"]
    assert len(verdicts) == len(TARGETS) > 0
    for verdict, target in zip(verdicts, TARGETS, strict=True):
        assert (verdict["workload"], verdict["impl"], verdict["peer"]) == (
            target.workload, target.impl, target.peer,
        )
        installed = INSTALLED + STREAMS_INSTALLED
        if verdict["impl"] in installed and verdict["peer"] in installed:
            assert isinstance(verdict["met"], bool)
            assert verdict["measured"] > 0
    stdout = quick_run["stdout"]
    assert "targets (ratios from this run):" in stdout
    printed = stdout.split("targets (ratios from this run):\n", 1)[1].splitlines()
    assert len(printed) == len(TARGETS)
    for line, target in zip(printed, TARGETS, strict=True):
        bound = "<=" if target.at_most else ">="
        goal = f"{target.workload}: {target.impl} {bound} {target.ratio}x {target.peer}"
        assert line.strip().startswith(goal), (line, goal)
        assert re.search(r"( \d+\.\d\dx  (met|MISSED)| not measured)$", line), line


def test_targets_table_in_the_docs_names_known_rows_and_columns() -> None:
    known = set(implementation_names())
    rows = {w.name for w in ROWS}
    for target in TARGETS:
        assert target.workload in rows
        assert {target.impl, target.peer} <= known
        assert target.ratio > 0


def test_targets_parser_reads_the_table_between_the_markers() -> None:
    text = (
        "| row | implementation | peer | at most / at least | ratio |\n"  # not in the markers
        "<!-- targets:begin -->\n"
        "| row | implementation | peer | at most / at least | ratio |\n"
        "| --- | --- | --- | --- | --- |\n"
        "| pong | `asock/asyncio` | `asyncio sock_*` | at most | 0.5 |\n"
        "| echo | asock/trio | trio.socket | at least | 1.3x |\n"
        "<!-- targets:end -->\n"
    )
    first, second = parse_targets(text)
    assert (first.workload, first.impl, first.peer, first.at_most, first.ratio) == (
        "pong", "asock/asyncio", "asyncio sock_*", True, 0.5,
    )
    assert (second.workload, second.at_most, second.ratio) == ("echo", False, 1.3)
    with pytest.raises(ValueError, match="unknown implementation"):
        parse_targets(text.replace("trio.socket", "trio.sockets"))
    with pytest.raises(ValueError, match="not in row 'echo'"):
        parse_targets(text.replace("trio.socket", "anyio/trio"))
    streams = text.replace(
        "| echo | asock/trio | trio.socket |", "| streams-trio | asock.streams/trio | anyio/trio |"
    )
    assert parse_targets(streams)[1].workload == "streams-trio"
    with pytest.raises(ValueError, match="not in row 'streams-trio'"):
        parse_targets(streams.replace("anyio/trio", "anyio/uvloop"))
    with pytest.raises(ValueError, match="no <!-- targets:begin -->"):
        parse_targets(text.replace("<!-- targets:end -->", ""))


def test_plot_is_a_png(quick_run: dict[str, Any]) -> None:
    if not quick_run["plot_asked"]:
        pytest.skip("matplotlib is not installed (the 'bench' extra)")
    assert quick_run["plot"].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_every_known_implementation_is_either_run_or_reported_missing() -> None:
    assert set(INSTALLED + STREAMS_INSTALLED) <= set(implementation_names())


def test_unknown_workload_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "nonsense"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert "invalid choice" in done.stderr
