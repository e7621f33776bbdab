"""``python -m benchmarks``: run the benchmark (from the repository root).

See ``python -m benchmarks --help`` and docs/performance.md.
"""

from __future__ import annotations

import argparse

from .runner import WORKLOADS, run

_WORKLOADS = [w.name for w in WORKLOADS]


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Compare asock with the stdlib, asyncio, uvloop, trio and anyio on "
        "loopback. Measure every workload on every installed implementation in one run "
        "and print one table (median of several runs, each figure with its ratio to the "
        "row's reference), then a verdict on each target of docs/performance.md. "
        "Progress goes to stderr, the table to stdout.",
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds of small runs (CI)")
    parser.add_argument("--json", metavar="FILE", help="write every raw figure to FILE")
    parser.add_argument("--plot", metavar="FILE.png", help="draw a bar chart (needs matplotlib)")
    parser.add_argument(
        "--only", metavar="WORKLOAD", action="append", choices=_WORKLOADS,
        help="run only this workload (repeatable): " + ", ".join(_WORKLOADS),
    )
    args = parser.parse_args(argv)
    return run(args.quick, args.only or _WORKLOADS, args.json, args.plot)


if __name__ == "__main__":
    raise SystemExit(main())
