"""close() from another thread than the loop's hands the descriptor to that loop.

The loop forgets the descriptor and then closes it; close() itself never waits
for another thread's loop. Two trio threads closing each other's sockets used
to stall each other for a second per socket, and then free the number before
its owner had forgotten it.
"""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
import uvloop

import asock

GUARD = 5.0


@pytest.fixture(scope="module")
def warm_loops() -> None:
    """Run each loop once first: uvloop keeps a pipe of its own from its first run on."""
    uvloop.run(asyncio.sleep(0))
    trio.run(trio.lowlevel.checkpoint)


def _descriptor_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class LoopThread:
    """An event loop in a thread of its own whose socket waits in recv."""

    def __init__(self, flavour: str) -> None:
        self.flavour = flavour
        self.sock, self.peer = asock.socketpair()
        self.fd = self.sock.fileno()
        self.waiting = threading.Event()
        self.unblock = threading.Event()
        self.outcome: list[Any] = []
        self.fd_open_after_close: list[bool] = []
        self.schemes: set[str] = set()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        assert self.waiting.wait(GUARD)

    async def _body(self, spawn: Callable[[Any], Any], pause: Callable[[], Any]) -> None:
        async def receive() -> None:
            try:
                self.outcome.append(await self.sock.recv(1))
            except OSError as exc:
                self.outcome.append(exc)

        waiter = spawn(receive)
        await pause()
        await pause()
        queues = self.sock._all_queues()
        assert queues
        self.schemes = {type(queue).__name__ for queue in queues.values()}
        self.waiting.set()
        # Block the loop outside its event loop until the other thread has
        # closed our socket: the descriptor must still be open then.
        assert self.unblock.wait(GUARD)
        self.fd_open_after_close.append(_descriptor_open(self.fd))
        if self.flavour == "trio":
            return  # the nursery waits for the receiver
        await waiter

    def _run(self) -> None:
        if self.flavour == "trio":

            async def main() -> None:
                async with trio.open_nursery() as nursery:
                    await self._body(nursery.start_soon, trio.lowlevel.checkpoint)

            trio.run(main)
        else:

            async def main_asyncio() -> None:
                await self._body(lambda fn: asyncio.ensure_future(fn()), lambda: asyncio.sleep(0))

            runner = uvloop.run if self.flavour == "uvloop" else asyncio.run
            runner(main_asyncio())  # type: ignore[operator]
        self.peer.close()


@pytest.mark.parametrize("flavour", ["trio", "uvloop", "asyncio"])
def test_close_from_another_thread_is_finished_by_the_owning_loop(
    flavour: str, warm_loops: None, no_fd_leak_sync: None
) -> None:
    owner = LoopThread(flavour)
    owner.start()
    owner.sock.close()  # returns at once, though the owning loop is blocked
    assert owner.sock.fileno() == -1
    owner.unblock.set()
    owner.thread.join(GUARD)
    assert not owner.thread.is_alive()
    outcome = owner.outcome[0]
    assert isinstance(outcome, OSError) and outcome.errno == errno.EBADF
    if owner.schemes != {"_EpollQueue"}:
        # trio (its own wait or the hub) and uvloop's own registration watch
        # the descriptor in the loop's thread: it stays open until that
        # thread has forgotten it, then that thread closes it. The asyncio
        # driver's hub forgets it at once, from any thread.
        assert owner.fd_open_after_close == [True]
    else:
        assert flavour != "trio"


@pytest.mark.parametrize("flavour", ["trio", "uvloop"])
def test_two_loops_closing_each_others_sockets_do_not_stall(
    flavour: str, warm_loops: None, no_fd_leak_sync: None
) -> None:
    # Each loop thread is blocked (outside its event loop) while the other
    # thread closes its socket; with a close() that waited for the owning
    # loop, each would wait for the other.
    first, second = LoopThread(flavour), LoopThread(flavour)
    first.start()
    second.start()
    closed = threading.Barrier(2, timeout=GUARD)

    def close_other(other: LoopThread) -> None:
        other.sock.close()
        closed.wait()
        other.unblock.set()

    closers = [
        threading.Thread(target=close_other, args=(other,)) for other in (second, first)
    ]
    for closer in closers:
        closer.start()
    for thread in (*closers, first.thread, second.thread):
        thread.join(GUARD)
        assert not thread.is_alive()
    for owner in (first, second):
        # (closed at once where the asyncio driver's hub watched it: see above)
        assert owner.fd_open_after_close == [owner.schemes != {"_EpollQueue"}]
        outcome = owner.outcome[0]
        assert isinstance(outcome, OSError) and outcome.errno == errno.EBADF


async def test_trio_outside_wait_ends_when_the_socket_closes(anyio_backend: Any) -> None:
    """A task waiting through trio itself (not asock) wakes when asock closes the socket."""
    if anyio_backend[0] != "trio":
        pytest.skip("trio's own wait_readable; asyncio has no such outside wait")
    a, b = asock.socketpair()
    outcome: list[BaseException] = []

    async def wait_outside() -> None:
        try:
            await trio.lowlevel.wait_readable(a.fileno())
        except trio.ClosedResourceError as exc:
            outcome.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait_outside)
        await trio.testing.wait_all_tasks_blocked()
        a.close()
    b.close()
    assert len(outcome) == 1


async def test_trio_outside_wait_ends_when_the_socket_is_detached(anyio_backend: Any) -> None:
    if anyio_backend[0] != "trio":
        pytest.skip("trio's own wait_readable; asyncio has no such outside wait")
    import anyio

    a, b = asock.socketpair()
    outcome: list[BaseException] = []

    async def wait_outside() -> None:
        try:
            await anyio.wait_readable(a)  # type: ignore[arg-type]
        except (trio.ClosedResourceError, anyio.ClosedResourceError) as exc:
            outcome.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait_outside)
        await trio.testing.wait_all_tasks_blocked()
        fd = a.detach()
    os.close(fd)
    b.close()
    assert len(outcome) == 1
