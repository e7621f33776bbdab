"""The core both fronts share: ``asock`` and ``asock_sync`` import it, and it imports neither.

- :mod:`.operations`: every operation that can wait, written once (the
  try/wait/retry loop, the deadline arithmetic, partial-progress accounting);
- :mod:`.socket_base`: socket state and every method that never waits;
- :mod:`.drivers`: how each backend waits for readiness, and nothing else;
- :mod:`.conversion`: handing a descriptor from one front to the other, and
  the module functions both fronts share;
- :mod:`.stdlib_names`: the stdlib names both fronts pass through.

The fronts (``asock.socket`` and ``asock_sync.socket``) only decide how a wait
is carried out. docs/internals.md walks through the layers.
"""
