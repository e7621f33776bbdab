"""``python -m asock``: the command-line entry point (see ``python -m asock --help``)."""

from asock._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
