"""``python -m asock bench``: asock against the stdlib, the event loops and trio.

:mod:`.impls` holds each implementation's version of each workload,
:mod:`.peers` the helper processes (echo load client, bulk source, memory
server) and :mod:`.runner` the schedule, the table, the JSON and the chart.
"""
