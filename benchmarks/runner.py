"""Schedule the workloads, print the table, write the JSON and the chart.

Every figure in a table comes from the same invocation: for each workload the
runs are interleaved (run 1 of every implementation, then run 2, ...) so a
drift of the machine's speed during the run hits every column alike, and the
median of the runs is reported.
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
from typing import Any, TextIO

from .impls import UDP_WINDOW, Impl, NotAvailable, implementation_names, implementations
from .peers import raise_fd_limit


@dataclass(frozen=True)
class Settings:
    """How much work each workload does; ``--quick`` picks the small set."""

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


WORKLOADS = [
    Workload("hot", "us/op", True, "stdlib",
             "one task: send(1) then recv(1) on a socketpair; never waits"),
    Workload("pong", "us/round", True, "stdlib",
             "two tasks ping-pong 1 byte over a socketpair; every recv waits"),
    Workload("echo", "req/s", False, "uvloop Protocol",
             "echo server, connections from a separate load process"),
    Workload("bulk", "MiB/s", False, "stdlib",
             "one-way loopback TCP transfer into a reused recv_into buffer"),
    Workload("udp", "dgram/s", False, "stdlib",
             f"64-byte datagrams over loopback, windows of {UDP_WINDOW}"),
    Workload("memory", "B/conn", True, "uvloop Protocol",
             "server RSS per idle connection"),
]


@dataclass(frozen=True)
class Target:
    """A goal from the performance issue: ``impl`` against ``peer`` in one row."""

    workload: str
    impl: str
    peer: str
    at_most: bool
    ratio: float


TARGETS = [
    Target("hot", "asock/asyncio", "stdlib", True, 1.5),
    Target("hot", "asock/trio", "trio.socket", True, 0.5),
    Target("pong", "asock/uvloop", "uvloop Protocol", True, 1.5),
    Target("pong", "asock/uvloop", "uvloop sock_*", True, 0.6),
    Target("pong", "asock/asyncio", "asyncio sock_*", True, 0.8),
    Target("pong", "asock/trio", "trio.socket", True, 1.0),
    Target("hot", "asock_sync", "stdlib", True, 1.3),
    Target("pong", "asock_sync", "stdlib", True, 1.1),
    Target("echo", "asock/uvloop", "uvloop Protocol", False, 0.8),
    *(Target("bulk", flavour, "stdlib", False, 0.9)
      for flavour in ("asock/asyncio", "asock/uvloop", "asock/trio", "asock_sync")),
    *(Target("memory", flavour, "uvloop Protocol", True, 1.0)
      for flavour in ("asock/asyncio", "asock/uvloop", "asock/trio")),
]


# -- one sample of one cell --------------------------------------------------


def _udp_pair() -> tuple[_stdlib.socket, _stdlib.socket]:
    a = _stdlib.socket(_stdlib.AF_INET, _stdlib.SOCK_DGRAM)
    b = _stdlib.socket(_stdlib.AF_INET, _stdlib.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    return a, b


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise NotAvailable("no VmRSS in /proc")  # pragma: no cover


def _helper(*args: str, stdin: Any = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.peers", *args],
        stdin=stdin, stdout=subprocess.PIPE, text=True,
    )


class Session:
    """One bench invocation: its settings and the helper processes it shares."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._bulk_source: subprocess.Popen[str] | None = None
        self._bulk_port = 0

    def close(self) -> None:
        """Stop the helper processes."""
        if self._bulk_source is not None:
            assert self._bulk_source.stdin is not None
            self._bulk_source.stdin.close()
            self._bulk_source.wait(10)

    def sample(self, workload: str, impl: Impl) -> float:
        """Measure ``impl`` on ``workload`` once; return the figure in the row's unit."""
        s = self.settings
        if workload == "hot":
            return impl.hot(*_stdlib.socketpair(), s.hot_ops) / s.hot_ops * 1e6
        if workload == "pong":
            return impl.pong(*_stdlib.socketpair(), s.pong_rounds) / s.pong_rounds * 1e6
        if workload == "udp":
            return s.udp_datagrams / impl.udp(*_udp_pair(), s.udp_datagrams)
        if workload == "bulk":
            sock = _stdlib.create_connection(("127.0.0.1", self._bulk_port_number()))
            return s.bulk_bytes / impl.bulk(sock, s.bulk_bytes) / (1 << 20)
        if workload == "echo":
            return self._echo(impl)
        if workload == "memory":
            return self._memory(impl)
        raise ValueError(workload)

    def _bulk_port_number(self) -> int:
        if self._bulk_source is None:
            self._bulk_source = _helper("bulk-source", stdin=subprocess.PIPE)
            assert self._bulk_source.stdout is not None
            self._bulk_port = int(self._bulk_source.stdout.readline())
        return self._bulk_port

    def _echo(self, impl: Impl) -> float:
        s = self.settings
        listener = _stdlib.create_server(("127.0.0.1", 0), backlog=4096)
        client = _helper(
            "echo-client", str(listener.getsockname()[1]), str(s.echo_connections),
            str(s.echo_warmup), str(s.echo_seconds),
        )
        impl.serve(listener, client.wait, lambda: None)
        assert client.stdout is not None
        output = client.stdout.read()
        if client.returncode != 0:
            raise RuntimeError(f"echo client failed ({client.returncode})")
        return float(json.loads(output)["requests_per_s"])

    def _memory(self, impl: Impl) -> float:
        if not os.path.exists(f"/proc/{os.getpid()}/status"):
            raise NotAvailable("needs /proc to read the server's RSS")
        if impl.thread_per_connection:
            raise NotAvailable("one thread per connection")
        count = self.settings.memory_connections
        raise_fd_limit(count + 256)
        server = _helper("memory-server", impl.name, str(count), stdin=subprocess.PIPE)
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
    return {"bulk": s.bulk_runs, "echo": s.echo_runs, "memory": 1}.get(workload, s.runs)


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
    settings: Settings, workloads: list[str], progress_out: TextIO
) -> tuple[list[str], Results]:
    """Run every workload on every installed implementation; return columns and cells."""
    impls = implementations()
    results: Results = {w: {i.name: Cell([]) for i in impls} for w in workloads}
    steps = sum(_runs_for(w, settings) * len(impls) for w in workloads)
    progress = _Progress(steps, progress_out)
    session = Session(settings)
    try:
        for workload in workloads:
            for run in range(_runs_for(workload, settings)):
                for impl in impls:
                    cell = results[workload][impl.name]
                    progress.step(f"{workload} run {run + 1}: {impl.name}")
                    if cell.note:
                        continue  # n/a or failed on an earlier run
                    try:
                        cell.samples.append(session.sample(workload, impl))
                    except NotAvailable as why:
                        cell.note = f"n/a: {why}"
                    except Exception as exc:
                        cell.samples.clear()
                        cell.note = f"error: {type(exc).__name__}: {exc}"
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


def format_table(columns: list[str], results: Results) -> str:
    """The table: one row per workload, ``figure ratio`` per implementation."""
    header = ["workload (unit)", *columns]
    rows = [header]
    for workload in WORKLOADS:
        if workload.name not in results:
            continue
        better = "lower" if workload.lower_is_better else "higher"
        row = [f"{workload.name} ({workload.unit}, {better} better)"]
        for column in columns:
            cell = results[workload.name][column]
            median = cell.median
            if median is None:
                row.append("n/a" if cell.note.startswith("n/a") else "error")
                continue
            r = ratio(results, workload.name, column, workload.reference)
            row.append(f"{_format_value(median)} {'' if r is None else f'{r:.2f}x'}".strip())
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    references = ", ".join(
        f"{w.name}: {w.reference}" for w in WORKLOADS if w.name in results
    )
    lines.append(f"ratios are against each row's reference column ({references})")
    notes = sorted(
        {f"{column}, {w}: {cell.note}" for w, row in results.items()
         for column, cell in row.items() if cell.note}
    )
    lines.extend(f"  {note}" for note in notes)
    return "\n".join(lines)


def evaluate_targets(results: Results) -> list[dict[str, Any]]:
    """Each target with its measured ratio and whether it is met (None: not measured)."""
    verdicts = []
    for target in TARGETS:
        measured = ratio(results, target.workload, target.impl, target.peer)
        met = None if measured is None else (
            measured <= target.ratio if target.at_most else measured >= target.ratio
        )
        verdicts.append({**asdict(target), "measured": measured, "met": met})
    return verdicts


def format_targets(verdicts: list[dict[str, Any]]) -> str:
    """One line per target: the goal, the ratio measured in this run, met or missed."""
    lines = ["targets (ratios from this run):"]
    for v in verdicts:
        bound = "<=" if v["at_most"] else ">="
        goal = f"{v['workload']}: {v['impl']} {bound} {v['ratio']}x {v['peer']}"
        if v["met"] is None:
            lines.append(f"  {goal:<58} not measured")
        else:
            lines.append(f"  {goal:<58} {v['measured']:.2f}x  {'met' if v['met'] else 'MISSED'}")
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
            for w in WORKLOADS if w.name in results
        },
        "targets": verdicts,
    }


def plot(path: str, columns: list[str], results: Results) -> None:
    """Draw one bar chart per workload into ``path`` (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [w for w in WORKLOADS if w.name in results]
    figure, axes = plt.subplots(
        len(shown), 1, figsize=(11, 2.6 * len(shown)), squeeze=False, layout="constrained"
    )
    for axis, workload in zip(axes[:, 0], shown, strict=True):
        row = results[workload.name]
        names = [c for c in columns if row[c].median is not None]
        values = [row[c].median or 0.0 for c in names]
        colours = [
            "tab:orange" if c == workload.reference else
            "tab:blue" if c.startswith("asock") else "tab:gray" for c in names
        ]
        axis.barh(names, values, color=colours)
        axis.invert_yaxis()
        better = "lower" if workload.lower_is_better else "higher"
        axis.set_title(
            f"{workload.name}: {workload.description} ({workload.unit}, {better} is better)",
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

    Returns the exit status: 0, or 2 when ``--plot`` is asked without matplotlib
    (checked before measuring anything).
    """
    if plot_path and importlib.util.find_spec("matplotlib") is None:
        progress_out.write("--plot needs matplotlib: pip install 'asock[bench]'\n")
        return 2
    settings = QUICK if quick else DEFAULT
    missing = [n for n in implementation_names() if n not in {i.name for i in implementations()}]
    if missing:
        progress_out.write(f"not installed, left out: {', '.join(missing)}\n")
    columns, results = measure(settings, workloads, progress_out)
    verdicts = evaluate_targets(results)
    print(format_table(columns, results), file=out)
    print(file=out)
    print(format_targets(verdicts), file=out)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(to_json(settings, columns, results, verdicts), f, indent=1)
    if plot_path:
        plot(plot_path, columns, results)
    return 0
