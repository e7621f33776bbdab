"""The ``python -m asock`` commands: ``demo`` and ``bench``."""

from __future__ import annotations

import argparse

_WORKLOADS = ["hot", "pong", "echo", "bulk", "udp", "memory"]


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m asock")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="an echo server and clients on loopback")
    demo.add_argument("--clients", type=int, default=5)
    bench = commands.add_parser(
        "bench",
        help="compare asock with the stdlib, asyncio, uvloop, trio and anyio on loopback",
        description="Measure every workload on every installed implementation in one run "
        "and print one table (median of several runs, each figure with its ratio to the "
        "row's reference). Progress goes to stderr, the table to stdout.",
    )
    bench.add_argument("--quick", action="store_true", help="a few seconds of small runs (CI)")
    bench.add_argument("--json", metavar="FILE", help="write every raw figure to FILE")
    bench.add_argument("--plot", metavar="FILE.png", help="draw a bar chart (needs matplotlib)")
    bench.add_argument(
        "--only", metavar="WORKLOAD", action="append", choices=_WORKLOADS,
        help="run only this workload (repeatable): " + ", ".join(_WORKLOADS),
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args.clients)
    if args.command == "bench":
        from .._bench.runner import run

        return run(args.quick, args.only or _WORKLOADS, args.json, args.plot)
    return 2  # pragma: no cover - argparse rejects unknown commands
