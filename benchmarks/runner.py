"""Schedule the workloads, print the table, write the JSON and the chart.

Every figure in a table comes from the same invocation: for each workload the
runs are interleaved (run 1 of every implementation, then run 2, ...) so a
drift of the machine's speed during the run hits every column alike, and the
median of the runs is reported.

The targets are not kept here: :func:`load_targets` reads them from the table
between ``<!-- targets:begin -->`` and ``<!-- targets:end -->`` in
``docs/performance.md`` each time the bench runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import socket as _stdlib
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from .impls import (
    STREAMS_BACKENDS,
    STREAMS_LIBRARIES,
    UDP_WINDOW,
    Impl,
    NotAvailable,
    Serve,
    StreamsImpl,
    implementation_names,
    implementations,
    stream_implementations,
)
from .peers import pin_to_cpu, raise_fd_limit

#: The repository root: the helper processes run there, and the targets are read from it.
ROOT = Path(__file__).resolve().parent.parent
TARGETS_FILE = ROOT / "docs" / "performance.md"
TARGETS_BEGIN = "<!-- targets:begin -->"
TARGETS_END = "<!-- targets:end -->"


@dataclass(frozen=True)
class Settings:
    """How much work each workload does; ``--quick`` picks the small set.

    The http workload runs with the echo settings, the anyio streams rows with
    pong's rounds.
    """

    runs: int
    hot_ops: int
    pong_rounds: int
    udp_datagrams: int
    bulk_bytes: int
    bulk_runs: int
    echo_connections: int
    echo_warmup: float
    echo_seconds: float
    echo_runs: int
    memory_connections: int


DEFAULT = Settings(
    runs=5, hot_ops=20_000, pong_rounds=3_000, udp_datagrams=16_000 // UDP_WINDOW * UDP_WINDOW,
    bulk_bytes=1 << 30, bulk_runs=3, echo_connections=100, echo_warmup=0.1, echo_seconds=0.3,
    echo_runs=3, memory_connections=10_000,
)
QUICK = Settings(
    runs=1, hot_ops=1_000, pong_rounds=300, udp_datagrams=50 * UDP_WINDOW, bulk_bytes=8 << 20,
    bulk_runs=1, echo_connections=20, echo_warmup=0.05, echo_seconds=0.1, echo_runs=1,
    memory_connections=200,
)


@dataclass(frozen=True)
class Workload:
    """One row of the table."""

    name: str
    unit: str
    #: True when a smaller figure is better (times, bytes).
    lower_is_better: bool
    #: The column every ratio in this row is taken against.
    reference: str
    description: str


ECHO = Workload("echo", "req/s", False, "uvloop Protocol",
                "echo server, connections from a separate load process")
HTTP = Workload("http", "req/s", False, "uvloop Protocol",
                "HTTP/1.1 keep-alive 'hello' server, load from a separate process")
#: The anyio streams workload, for ``--only``; its figures fill :data:`STREAMS_ROWS`, each
#: row against anyio on its own backend (this entry is no row of its own).
STREAMS = Workload("streams", "us/round", True, "anyio",
                   "two tasks ping-pong 1 byte over loopback TCP through anyio's SocketStream")

#: What ``--only`` chooses from, in the order they run.
WORKLOADS = [
    Workload("hot", "us/op", True, "stdlib",
             "one task: send(1) then recv(1) on a socketpair; never waits"),
    Workload("pong", "us/round", True, "stdlib",
             "two tasks ping-pong 1 byte over a socketpair; every recv waits"),
    ECHO,
    HTTP,
    Workload("bulk", "MiB/s", False, "stdlib",
             "one-way loopback TCP transfer into a reused recv_into buffer"),
    Workload("udp", "dgram/s", False, "stdlib",
             f"64-byte datagrams over loopback, windows of {UDP_WINDOW}"),
    Workload("memory", "B/conn", True, "uvloop Protocol",
             "server RSS per idle connection"),
    STREAMS,
]

#: Rows measured by the echo and http workloads' samples: their requests per second
#: of the bench process's CPU time (where every server runs) over the load's window.
ECHO_CPU = Workload("echo-cpu", "req/server-CPU-s", False, "uvloop Protocol",
                    "echo requests per second of the server's CPU time")
HTTP_CPU = Workload("http-cpu", "req/server-CPU-s", False, "uvloop Protocol",
                    "HTTP requests per second of the server's CPU time")

#: The anyio streams rows, one per backend: asock.streams against anyio's own
#: streams on that backend (the reference). They have a table of their own.
STREAMS_ROWS = [
    Workload(f"streams-{backend}", "us/round", True, f"anyio/{backend}",
             f"{STREAMS.description}, on {backend}")
    for backend in STREAMS_BACKENDS
]

#: The rows each workload's sample fills (the first is the workload's own).
ROWS_OF = {w.name: [w] for w in WORKLOADS} | {
    "echo": [ECHO, ECHO_CPU], "http": [HTTP, HTTP_CPU], "streams": STREAMS_ROWS,
}
#: Every row of the tables, in order.
ROWS = [row for w in WORKLOADS for row in ROWS_OF[w.name]]

#: The name a row shows in the table when it is not its own: a second echo or http row.
_SHOWN_AS = {ECHO_CPU.name: ECHO.name, HTTP_CPU.name: HTTP.name}


def row_label(row: Workload) -> str:
    """The row's first column: ``echo-cpu`` shows as a second echo row, ``http-cpu`` as http."""
    better = "lower" if row.lower_is_better else "higher"
    return f"{_SHOWN_AS.get(row.name, row.name)} ({row.unit}, {better} better)"


@dataclass(frozen=True)
class Target:
    """A goal: ``impl`` against ``peer`` in one row, from the docs' targets table."""

    workload: str
    impl: str
    peer: str
    at_most: bool
    ratio: float


_TARGET_COLUMNS = ["row", "implementation", "peer", "at most / at least", "ratio"]


def _plain(cell: str) -> str:
    """A table cell's text without Markdown code marks or backslash escapes."""
    text = cell.strip()
    if len(text) >= 2 and text[0] == text[-1] == "`":
        return text[1:-1].strip()
    return text.replace("\\_", "_").replace("\\*", "*")


def parse_targets(text: str) -> list[Target]:
    """The targets in the Markdown table between the two marker lines of ``text``.

    The table's columns are ``row | implementation | peer | at most / at least |
    ratio``; a name may be written as code (in backticks). Raises ValueError on a
    missing marker, an unknown row or implementation, an implementation that is
    not in the row (an anyio streams row has its backend's two, the other rows
    the table's columns), or a malformed line.
    """
    begin = text.find(TARGETS_BEGIN)
    end = text.find(TARGETS_END, begin)
    if begin < 0 or end < 0:
        raise ValueError(f"no {TARGETS_BEGIN} ... {TARGETS_END} section")
    rows = [
        line.strip() for line in text[begin + len(TARGETS_BEGIN) : end].splitlines()
        if line.strip()
    ]
    if len(rows) < 2 or not all(line.startswith("|") for line in rows):
        raise ValueError("the targets section must hold one Markdown table and nothing else")
    cells = [[_plain(c) for c in line.strip().strip("|").split("|")] for line in rows]
    if [c.lower() for c in cells[0]] != _TARGET_COLUMNS:
        raise ValueError(f"targets table columns must be {' | '.join(_TARGET_COLUMNS)}")
    known_rows = {row.name for row in ROWS}
    known_impls = set(implementation_names())
    streams_cells = {
        w.name: {f"{library}/{w.name.removeprefix('streams-')}" for library in STREAMS_LIBRARIES}
        for w in STREAMS_ROWS
    }
    columns = known_impls - set().union(*streams_cells.values())
    targets = []
    for line, row in zip(rows[2:], cells[2:], strict=True):
        if len(row) != len(_TARGET_COLUMNS):
            raise ValueError(f"targets table: expected 5 cells in {line!r}")
        workload, impl, peer, bound, ratio_text = row
        if workload not in known_rows:
            raise ValueError(f"targets table: unknown row {workload!r} in {line!r}")
        for name in (impl, peer):
            if name not in known_impls:
                raise ValueError(f"targets table: unknown implementation {name!r} in {line!r}")
            if name not in streams_cells.get(workload, columns):
                raise ValueError(f"targets table: {name!r} is not in row {workload!r}: {line!r}")
        if bound not in ("at most", "at least"):
            raise ValueError(f"targets table: 'at most' or 'at least', not {bound!r}")
        try:
            value = float(ratio_text.rstrip("x\u00d7").strip())
        except ValueError:
            raise ValueError(f"targets table: bad ratio {ratio_text!r} in {line!r}") from None
        targets.append(Target(workload, impl, peer, bound == "at most", value))
    return targets


def load_targets(path: Path = TARGETS_FILE) -> list[Target]:
    """The targets, read from the table in ``docs/performance.md``."""
    try:
        return parse_targets(path.read_text(encoding="utf-8"))
    except ValueError as why:
        raise ValueError(f"{path}: {why}") from None


# -- one sample of one cell --------------------------------------------------


def _udp_pair() -> tuple[_stdlib.socket, _stdlib.socket]:
    a = _stdlib.socket(_stdlib.AF_INET, _stdlib.SOCK_DGRAM)
    b = _stdlib.socket(_stdlib.AF_INET, _stdlib.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    return a, b


def _tcp_pair() -> tuple[_stdlib.socket, _stdlib.socket]:
    """A connected loopback TCP pair, both ends with TCP_NODELAY (as anyio.connect_tcp sets)."""
    with _stdlib.create_server(("127.0.0.1", 0)) as listener:
        a = _stdlib.create_connection(listener.getsockname())
        b, _ = listener.accept()
    for sock in (a, b):
        sock.setsockopt(_stdlib.IPPROTO_TCP, _stdlib.TCP_NODELAY, 1)
    return a, b


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise NotAvailable("no VmRSS in /proc")  # pragma: no cover


def pin_cpus(notes: TextIO) -> int | None:
    """Pin the bench to one CPU; return the CPU for the helper processes (None: no pinning).

    The bench takes the first CPU it may run on (CPU 0 on most machines) and the
    helpers the second, so the server under test and its load never share a
    core. With a single CPU nothing is pinned, and ``notes`` says so.
    """
    if not hasattr(os, "sched_setaffinity"):
        notes.write("note: no os.sched_setaffinity on this system: nothing is pinned\n")
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if (os.cpu_count() or 1) < 2 or len(allowed) < 2:
        notes.write(
            "note: one CPU: the bench and its helper processes share it (nothing is pinned)\n"
        )
        return None
    mine, theirs = allowed[0], allowed[1]
    pin_to_cpu(mine)
    notes.write(f"pinned: the bench to CPU {mine}, its helper processes to CPU {theirs}\n")
    return theirs


class Session:
    """One bench invocation: its settings and the helper processes it shares."""

    def __init__(self, settings: Settings, helper_cpu: int | None = None) -> None:
        self.settings = settings
        self.helper_cpu = helper_cpu
        self._bulk_source: subprocess.Popen[str] | None = None
        self._bulk_port = 0

    def _helper(self, *args: str, stdin: Any = None) -> subprocess.Popen[str]:
        """Start ``python -m benchmarks.peers ARGS`` in the repository root, on the helper CPU."""
        pin = [] if self.helper_cpu is None else ["--cpu", str(self.helper_cpu)]
        return subprocess.Popen(
            [sys.executable, "-m", "benchmarks.peers", *pin, *args],
            cwd=ROOT, stdin=stdin, stdout=subprocess.PIPE, text=True,
        )

    def close(self) -> None:
        """Stop the helper processes."""
        if self._bulk_source is not None:
            assert self._bulk_source.stdin is not None
            self._bulk_source.stdin.close()
            self._bulk_source.wait(10)

    def sample(self, workload: str, impl: Impl | StreamsImpl) -> dict[str, float]:
        """Measure ``impl`` on ``workload`` once; return the figure of each row it fills."""
        s = self.settings
        if isinstance(impl, StreamsImpl):
            if workload != "streams":
                raise ValueError(workload)
            elapsed = impl.pong(*_tcp_pair(), s.pong_rounds)
            return {f"streams-{impl.backend}": elapsed / s.pong_rounds * 1e6}
        if workload == "hot":
            return {"hot": impl.hot(*_stdlib.socketpair(), s.hot_ops) / s.hot_ops * 1e6}
        if workload == "pong":
            elapsed = impl.pong(*_stdlib.socketpair(), s.pong_rounds)
            return {"pong": elapsed / s.pong_rounds * 1e6}
        if workload == "udp":
            return {"udp": s.udp_datagrams / impl.udp(*_udp_pair(), s.udp_datagrams)}
        if workload == "bulk":
            sock = _stdlib.create_connection(("127.0.0.1", self._bulk_port_number()))
            return {"bulk": s.bulk_bytes / impl.bulk(sock, s.bulk_bytes) / (1 << 20)}
        if workload == "echo":
            return self._serve_load(workload, impl.serve, "echo-client")
        if workload == "http":
            return self._serve_load(workload, impl.http, "http-client")
        if workload == "memory":
            return {"memory": self._memory(impl)}
        raise ValueError(workload)

    def _bulk_port_number(self) -> int:
        if self._bulk_source is None:
            self._bulk_source = self._helper("bulk-source", stdin=subprocess.PIPE)
            assert self._bulk_source.stdout is not None
            self._bulk_port = int(self._bulk_source.stdout.readline())
        return self._bulk_port

    def _serve_load(self, workload: str, serve: Serve, helper: str) -> dict[str, float]:
        """Requests per second, and per second of the server's CPU time (``WORKLOAD-cpu``).

        ``serve`` runs the server; ``helper`` (``echo-client`` or ``http-client``)
        is the load, started with the echo settings.

        Every server runs in this process (its threads or its event loop), so
        the server's CPU time is this process's: ``time.process_time()`` read
        when the load process prints ``begin`` and ``end`` around its window.
        Reading the clocks may lag those lines (the reading thread needs the
        GIL), so the utilisation is taken over the bench's own interval between
        the two readings, and applied to the load's steady request rate.
        """
        s = self.settings
        listener = _stdlib.create_server(("127.0.0.1", 0), backlog=4096)
        client = self._helper(
            helper, str(listener.getsockname()[1]), str(s.echo_connections),
            str(s.echo_warmup), str(s.echo_seconds),
        )
        marks: dict[str, tuple[float, float]] = {}
        output: list[str] = []

        def wait_stop() -> None:  # runs in a thread while the server serves
            assert client.stdout is not None
            while line := client.stdout.readline():
                if line.strip() in ("begin", "end"):
                    marks[line.strip()] = (time.process_time(), time.perf_counter())
                else:
                    output.append(line)
            client.wait()

        serve(listener, wait_stop, lambda: None)
        if client.returncode != 0:
            raise RuntimeError(f"{helper} failed ({client.returncode})")
        rate = float(json.loads("".join(output))["requests_per_s"])
        cpu = marks["end"][0] - marks["begin"][0]
        wall = marks["end"][1] - marks["begin"][1]
        if cpu <= 0:
            raise RuntimeError(f"no server CPU time measured in the {workload} window")
        return {workload: rate, f"{workload}-cpu": rate * wall / cpu}

    def _memory(self, impl: Impl) -> float:
        if not os.path.exists(f"/proc/{os.getpid()}/status"):
            raise NotAvailable("needs /proc to read the server's RSS")
        if impl.thread_per_connection:
            raise NotAvailable("one thread per connection")
        count = self.settings.memory_connections
        raise_fd_limit(count + 256)
        server = self._helper("memory-server", impl.name, str(count), stdin=subprocess.PIPE)
        assert server.stdout is not None and server.stdin is not None
        clients: list[_stdlib.socket] = []
        try:
            port = int(server.stdout.readline())
            time.sleep(0.1)  # let the server reach its accept loop before the baseline
            before = _rss_bytes(server.pid)
            for _ in range(count):
                clients.append(_stdlib.create_connection(("127.0.0.1", port)))
            if server.stdout.readline().strip() != "ready":
                raise RuntimeError("memory server did not accept every connection")
            time.sleep(0.1)  # the last handlers start waiting
            after = _rss_bytes(server.pid)
        finally:
            for client in clients:
                client.close()
            server.stdin.close()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()  # never leave a server holding thousands of sockets behind
                server.wait()
        return (after - before) / count


# -- the whole run -------------------------------------------------------------


@dataclass
class Cell:
    """What one implementation got on one workload."""

    samples: list[float]
    note: str = ""

    @property
    def median(self) -> float | None:
        """The median sample, or None when the cell could not be measured."""
        return statistics.median(self.samples) if self.samples else None


Results = dict[str, dict[str, Cell]]


def _runs_for(workload: str, s: Settings) -> int:
    return {
        "bulk": s.bulk_runs, "echo": s.echo_runs, "http": s.echo_runs, "memory": 1,
    }.get(workload, s.runs)


def _cells_of(
    workload: str, impls: list[Impl], streams: list[StreamsImpl]
) -> list[tuple[Impl | StreamsImpl, list[str]]]:
    """Who runs ``workload``, each with the rows its samples fill.

    Every column runs every workload of the table; the anyio streams workload
    runs its own implementations, each filling its backend's row.
    """
    if workload == STREAMS.name:
        return [(impl, [f"streams-{impl.backend}"]) for impl in streams]
    return [(impl, [row.name for row in ROWS_OF[workload]]) for impl in impls]


class _Progress:
    def __init__(self, total: int, out: TextIO) -> None:
        self.total = total
        self.done = 0
        self.out = out
        self.started = time.monotonic()
        self.live = out.isatty()

    def step(self, text: str) -> None:
        self.done += 1
        line = f"[{self.done:3}/{self.total}] {time.monotonic() - self.started:5.1f}s  {text}"
        if self.live:
            self.out.write("\r\033[K" + line)
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def finish(self) -> None:
        if self.live:
            self.out.write("\r\033[K")
        self.out.write(f"measured in {time.monotonic() - self.started:.1f}s\n")
        self.out.flush()


def measure(
    settings: Settings, workloads: list[str], progress_out: TextIO,
    helper_cpu: int | None = None,
) -> tuple[list[str], Results]:
    """Run every workload on every installed implementation; return columns and cells.

    The columns are the main table's; a row's cells are the implementations it
    was measured on (for an anyio streams row, its backend's two).
    """
    impls = implementations()
    streams = stream_implementations()
    runners = {w: _cells_of(w, impls, streams) for w in workloads}
    results: Results = {}
    for w in workloads:
        for impl, rows in runners[w]:
            for row in rows:
                results.setdefault(row, {})[impl.name] = Cell([])
    steps = sum(_runs_for(w, settings) * len(runners[w]) for w in workloads)
    progress = _Progress(steps, progress_out)
    session = Session(settings, helper_cpu)
    try:
        for workload in workloads:
            for run in range(_runs_for(workload, settings)):
                for impl, rows in runners[workload]:
                    cells = [results[row][impl.name] for row in rows]
                    progress.step(f"{workload} run {run + 1}: {impl.name}")
                    if cells[0].note:
                        continue  # n/a or failed on an earlier run
                    try:
                        figures = session.sample(workload, impl)
                    except NotAvailable as why:
                        for cell in cells:
                            cell.note = f"n/a: {why}"
                    except Exception as exc:
                        for cell in cells:
                            cell.samples.clear()
                            cell.note = f"error: {type(exc).__name__}: {exc}"
                    else:
                        for row, cell in zip(rows, cells, strict=True):
                            cell.samples.append(figures[row])
    finally:
        session.close()
        progress.finish()
    return [i.name for i in impls], results


# -- reporting -------------------------------------------------------------------


def _format_value(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(results: Results, workload: str, impl: str, peer: str) -> float | None:
    """``impl``'s median divided by ``peer``'s, or None if either is missing."""
    row = results.get(workload, {})
    mine = row[impl].median if impl in row else None
    theirs = row[peer].median if peer in row else None
    if mine is None or not theirs:
        return None
    return mine / theirs


def _cell_text(results: Results, row: Workload, column: str) -> str:
    """``figure ratio`` for one cell, or why it has no figure."""
    cell = results[row.name].get(column)
    if cell is None or cell.median is None:
        return "n/a" if cell is None or cell.note.startswith("n/a") else "error"
    r = ratio(results, row.name, column, row.reference)
    return f"{_format_value(cell.median)} {'' if r is None else f'{r:.2f}x'}".strip()


def _grid(rows: list[list[str]]) -> list[str]:
    """Lay ``rows`` out in columns (the first is a header, underlined); return the lines."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def format_table(columns: list[str], results: Results) -> str:
    """The tables: one row per workload, ``figure ratio`` per implementation.

    The main table has a column per implementation; the anyio streams rows
    follow in a table of their own, a column per stream library, a row per
    backend, each ratio against anyio's own streams on the same backend. The
    notes of every cell without a figure come last.
    """
    main = [w for w in ROWS if w.name in results and w not in STREAMS_ROWS]
    streams = [w for w in STREAMS_ROWS if w.name in results]
    lines = []
    if main:
        lines += _grid(
            [["workload (unit)", *columns]]
            + [[row_label(w), *(_cell_text(results, w, c) for c in columns)] for w in main]
        )
        references = ", ".join(
            f"{_SHOWN_AS[w.name]} per server-CPU-s: {w.reference}" if w.name in _SHOWN_AS
            else f"{w.name}: {w.reference}"
            for w in main
        )
        lines.append(f"ratios are against each row's reference column ({references})")
    if streams:
        if lines:
            lines.append("")
        lines += _grid(
            [["anyio streams (unit)", *STREAMS_LIBRARIES]]
            + [
                [row_label(w), *(
                    _cell_text(results, w, f"{library}/{w.name.removeprefix('streams-')}")
                    for library in STREAMS_LIBRARIES
                )]
                for w in streams
            ]
        )
        lines.append("ratios are against anyio's own streams on the same backend")
    notes = sorted(
        {f"{column}, {w}: {cell.note}" for w, row in results.items()
         for column, cell in row.items() if cell.note}
    )
    lines.extend(f"  {note}" for note in notes)
    return "\n".join(lines)


def evaluate_targets(results: Results, targets: list[Target]) -> list[dict[str, Any]]:
    """Each target with its measured ratio and whether it is met (None: not measured)."""
    verdicts = []
    for target in targets:
        measured = ratio(results, target.workload, target.impl, target.peer)
        met = None if measured is None else (
            measured <= target.ratio if target.at_most else measured >= target.ratio
        )
        verdicts.append({**asdict(target), "measured": measured, "met": met})
    return verdicts


def format_targets(verdicts: list[dict[str, Any]]) -> str:
    """One line per target: the goal, the ratio measured in this run, met or missed."""
    goals = [
        f"{v['workload']}: {v['impl']} {'<=' if v['at_most'] else '>='} {v['ratio']}x {v['peer']}"
        for v in verdicts
    ]
    width = max([58, *(len(goal) for goal in goals)])
    lines = ["targets (ratios from this run):"]
    for v, goal in zip(verdicts, goals, strict=True):
        if v["met"] is None:
            lines.append(f"  {goal:<{width}} not measured")
        else:
            verdict = "met" if v["met"] else "MISSED"
            lines.append(f"  {goal:<{width}} {v['measured']:.2f}x  {verdict}")
    return "\n".join(lines)


def to_json(
    settings: Settings, columns: list[str], results: Results, verdicts: list[dict[str, Any]]
) -> dict[str, Any]:
    """Every raw figure of the run, for ``--json``."""
    return {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "settings": asdict(settings),
        "implementations": columns,
        "streams_implementations": [i.name for i in stream_implementations()],
        "workloads": {
            w.name: {
                "unit": w.unit, "lower_is_better": w.lower_is_better,
                "reference": w.reference, "description": w.description,
                "results": {
                    column: {
                        "samples": cell.samples, "median": cell.median,
                        "ratio": ratio(results, w.name, column, w.reference),
                        "note": cell.note,
                    }
                    for column, cell in results[w.name].items()
                },
            }
            for w in ROWS if w.name in results
        },
        "targets": verdicts,
    }


def plot(path: str, results: Results) -> None:
    """Draw one bar chart per workload into ``path`` (needs matplotlib).

    The anyio streams rows share one chart, each backend's reference in orange.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts: list[tuple[Workload, list[Workload]]] = [
        (w, [w]) for w in ROWS if w.name in results and w not in STREAMS_ROWS
    ]
    streams = [w for w in STREAMS_ROWS if w.name in results]
    if streams:
        charts.append((STREAMS, streams))
    figure, axes = plt.subplots(
        len(charts), 1, figsize=(11, 2.6 * len(charts)), squeeze=False, layout="constrained"
    )
    for axis, (workload, rows) in zip(axes[:, 0], charts, strict=True):
        bars = [
            (column, cell.median, column == row.reference)
            for row in rows for column, cell in results[row.name].items()
            if cell.median is not None
        ]
        colours = [
            "tab:orange" if reference else
            "tab:blue" if column.startswith("asock") else "tab:gray"
            for column, _, reference in bars
        ]
        axis.barh([b[0] for b in bars], [b[1] for b in bars], color=colours)
        axis.invert_yaxis()
        better = "lower" if workload.lower_is_better else "higher"
        name = _SHOWN_AS.get(workload.name, workload.name)
        axis.set_title(
            f"{name}: {workload.description} ({workload.unit}, {better} is better)",
            fontsize=9,
        )
        axis.tick_params(labelsize=8)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def run(
    quick: bool, workloads: list[str], json_path: str | None, plot_path: str | None,
    out: TextIO = sys.stdout, progress_out: TextIO = sys.stderr,
) -> int:
    """Measure, print the table and the targets, write the files asked for.

    Pins this process to one CPU (see :func:`pin_cpus`). Returns the exit
    status: 0, or 2 when ``--plot`` is asked without matplotlib or the targets
    table cannot be read (both checked before measuring anything).
    """
    if plot_path and importlib.util.find_spec("matplotlib") is None:
        progress_out.write("--plot needs matplotlib: python -m pip install -e '.[bench]'\n")
        return 2
    try:
        targets = load_targets()
    except (OSError, ValueError) as why:
        progress_out.write(f"cannot read the targets: {why}\n")
        return 2
    settings = QUICK if quick else DEFAULT
    installed = {i.name for i in implementations()} | {i.name for i in stream_implementations()}
    missing = [n for n in implementation_names() if n not in installed]
    if missing:
        progress_out.write(f"not installed, left out: {', '.join(missing)}\n")
    helper_cpu = pin_cpus(progress_out)
    columns, results = measure(settings, workloads, progress_out, helper_cpu)
    verdicts = evaluate_targets(results, targets)
    print(format_table(columns, results), file=out)
    print(file=out)
    print(format_targets(verdicts), file=out)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(to_json(settings, columns, results, verdicts), f, indent=1)
    if plot_path:
        plot(plot_path, results)
    return 0
