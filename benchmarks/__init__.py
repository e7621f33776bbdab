"""``python -m benchmarks``: asock against the stdlib, the event loops and trio.

Not part of the installed package: run it from the repository root after
``python -m pip install -e '.[bench]'``. :mod:`.impls` holds each
implementation's version of each workload, :mod:`.peers` the helper processes
(echo load client, bulk source, memory server), :mod:`.runner` the schedule,
the table, the JSON and the chart, and :mod:`.__main__` the command line. The
targets it judges a run against are the table in docs/performance.md.
"""
