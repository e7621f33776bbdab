"""The async front's hot calls: recv, recv_into, recvfrom, send, sendall and sendto.

:class:`AsyncCalls` is a base of ``asock.socket``. In pure Python its
methods are the operation layer's coroutines (:mod:`asock_core.operations`).
Its compiled twin, in ``asock_core/_async_calls.c``, returns an awaitable
(a ``collections.abc.Coroutine``) that does what those coroutines do when it
is first awaited, with no Python frame: the fairness budget, the attempt
with MSG_DONTWAIT, and, when the call would block, the wait and the retry in
the awaiting task. Its recv, recv_into and send attempts make the system
call on the descriptor directly, so an attempt that would block costs no
Python exception; so do recvfrom and sendto on an AF_INET socket (sendto to
an address the stdlib would parse as the same numeric one; recvfrom hands
out the same sender tuple again while the sender is the same). With a
timeout it hands the rest of the call to ``operations._retry``, which owns
the deadline (``sendall`` makes one send
of everything and hands what is left to ``operations.sendall_after``); anything unusual (keyword
arguments, a non-int size, a buffer the stdlib refuses) goes to the Python
operation itself, so errors are the stdlib's. What each bought is in
docs/performance.md.

The compiled twin is used where ``asock_core.kernel_calls.COMPILED`` is
true (built at install, ``ASOCK_PURE_PYTHON`` unset); the test suite runs
on both (``.ci/run``).

One difference shows: the compiled methods are not coroutine functions
(``inspect.iscoroutinefunction`` is false), though what they return is a
coroutine for ``asyncio.iscoroutine``, ``asyncio.create_task`` and trio's
``start_soon``. Like a coroutine, the call does nothing until awaited.
"""

from __future__ import annotations

from . import operations
from .kernel_calls import COMPILED, SocketState

__all__ = ["COMPILED", "AsyncCalls"]


class AsyncCalls(SocketState):
    """The async front's recv, recv_into, recvfrom, send, sendall and sendto."""

    __slots__ = ()

    recv = operations.recv
    recv_into = operations.recv_into
    recvfrom = operations.recvfrom
    send = operations.send
    sendall = operations.sendall
    sendto = operations.sendto


if COMPILED:
    from . import _speedups

    _speedups.AsyncCalls._link(operations)
    AsyncCalls = _speedups.AsyncCalls  # type: ignore[misc]
