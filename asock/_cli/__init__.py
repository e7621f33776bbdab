"""The ``python -m asock`` commands: ``demo`` (and, later, ``bench``)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m asock")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="an echo server and clients on loopback")
    demo.add_argument("--clients", type=int, default=5)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args.clients)
    return 2  # pragma: no cover - argparse rejects unknown commands
