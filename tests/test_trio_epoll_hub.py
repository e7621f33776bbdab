"""The trio driver's two schemes (asock_core/drivers/trio_driver.py, trio_hub.py).

A run's first sockets wait in trio's own I/O manager; later ones are
registered with asock's epoll hub. These cases are about that bookkeeping, so
they run on trio only (the asyncio driver's hub has tests of its own). The
whole trio suite also runs once with every socket on the hub
(``ASOCK_HUB_AFTER=0`` in .ci/run).
"""

from __future__ import annotations

import errno
import os
import select
import socket as stdlib_socket
import threading
from typing import Any

import pytest

import asock

pytestmark = pytest.mark.skipif(not hasattr(select, "epoll"), reason="needs select.epoll")


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


@pytest.fixture
def trio_only(anyio_backend: Any) -> None:
    if anyio_backend[0] != "trio":
        pytest.skip("about the trio driver: asyncio and uvloop wait through asyncio_driver")


@pytest.fixture
def hub_after(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set how many sockets of a run wait directly before the hub takes the rest."""
    pytest.importorskip("trio")
    import asock_core.drivers

    def set_to(count: int) -> None:
        monkeypatch.setattr(asock_core.drivers, "HUB_AFTER", count)

    return set_to


async def _wait_for_one_byte(reader: asock.socket, writer: asock.socket) -> bytes:
    import trio

    received: list[bytes] = []

    async def read() -> None:
        received.append(await reader.recv(1))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await trio.sleep(0.01)  # the reader is parked by now
        await writer.send(b"x")
    return received[0]


async def test_a_run_moves_to_the_hub_after_its_first_sockets_and_they_follow(
    trio_only: None, hub_after: Any, no_fd_leak: None
) -> None:
    import trio

    hub_after(2)
    before = _open_fds()
    with trio.fail_after(5):
        pairs = [asock.socketpair() for _ in range(3)]
        for a, b in pairs:
            assert await _wait_for_one_byte(a, b) == b"x"
            assert await _wait_for_one_byte(b, a) == b"x"
        schemes = ["trio-hub" in s._all_queues() for pair in pairs for s in pair]
        # The first two sockets waited in trio's I/O manager; the rest in the hub.
        assert schemes == [False, False, True, True, True, True]
        # The three pairs, plus the hub's epoll instance.
        assert len(_open_fds() - before) == 7
        # Now that the run has a hub, the first two move to it at their next wait.
        a, b = pairs[0]
        assert await _wait_for_one_byte(a, b) == b"x"
        assert await _wait_for_one_byte(b, a) == b"x"
        assert "trio-hub" in a._all_queues() and "trio-hub" in b._all_queues()
        for a, b in pairs:
            a.close()
            b.close()
    # Checked while the run goes on: the hub closed with its last socket.
    assert _open_fds() == before


async def test_a_socket_that_waited_for_writing_first_keeps_its_scheme(
    trio_only: None, hub_after: Any, no_fd_leak: None
) -> None:
    import trio

    hub_after(0)
    a, b = asock.socketpair()
    with a, b, trio.fail_after(5):
        a.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, 4096)
        payload = os.urandom(1 << 20)
        received = bytearray()

        async def drain() -> None:
            while len(received) < len(payload):
                received.extend(await b.recv(65536))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.sendall, payload)  # waits for room many times
            await trio.sleep(0.05)
            nursery.start_soon(drain)
        assert bytes(received) == payload
        assert "trio-hub" in a._all_queues()
        assert await _wait_for_one_byte(a, b) == b"x"


async def test_several_waiters_on_one_hub_socket_and_a_cancelled_one_loses_nothing(
    trio_only: None, hub_after: Any, no_fd_leak: None
) -> None:
    import trio

    hub_after(0)
    receiver = asock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    sender = asock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
    with receiver, sender, trio.fail_after(5):
        await receiver.bind(("127.0.0.1", 0))
        got: list[bytes] = []
        cancelled: list[bool] = []

        async def read(scope: trio.CancelScope | None = None) -> None:
            if scope is None:
                got.append(await receiver.recv(100))
                return
            with scope:
                got.append(await receiver.recv(100))
            cancelled.append(scope.cancelled_caught)

        async with trio.open_nursery() as nursery:
            first_scope = trio.CancelScope()
            nursery.start_soon(read, first_scope)  # the queue's first reader
            nursery.start_soon(read)
            nursery.start_soon(read)
            await trio.sleep(0.02)
            first_scope.cancel()
            await trio.sleep(0.02)
            await sender.sendto(b"one", receiver.getsockname())
            await sender.sendto(b"two", receiver.getsockname())
        assert cancelled == [True]
        assert sorted(got) == [b"one", b"two"]
        # The cancelled reader's slot is free again: a new wait parks and wakes.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await trio.sleep(0.02)
            await sender.sendto(b"three", receiver.getsockname())
        assert got[-1] == b"three"


async def test_a_timed_wait_in_the_hub_times_out_then_waits_again(
    trio_only: None, hub_after: Any, no_fd_leak: None
) -> None:
    import trio

    hub_after(0)
    a, b = asock.socketpair()
    with a, b, trio.fail_after(5):
        a.settimeout(0.05)
        with pytest.raises(TimeoutError):
            await a.recv(1)
        assert "trio-hub" in a._all_queues()
        assert await _wait_for_one_byte(a, b) == b"x"


async def test_close_from_another_thread_wakes_a_hub_waiter_with_ebadf(
    trio_only: None, hub_after: Any, no_fd_leak: None
) -> None:
    import trio

    hub_after(0)
    a, b = asock.socketpair()
    with b, trio.fail_after(5):
        failures: list[OSError] = []

        async def read() -> None:
            try:
                await a.recv(1)
            except OSError as exc:
                failures.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await trio.sleep(0.02)
            await trio.to_thread.run_sync(a.close)
        assert [exc.errno for exc in failures] == [errno.EBADF]


def test_a_hub_socket_waits_again_in_a_later_run(hub_after: Any) -> None:
    """The hub closes when its run ends; the next run's hub takes the socket on."""
    import trio

    hub_after(0)
    before = _open_fds()
    a, b = asock.socketpair()
    with a, b:
        for _ in range(3):
            assert trio.run(_wait_for_one_byte, a, b) == b"x"
            assert trio.run(_wait_for_one_byte, b, a) == b"x"
            # Between runs: the pair is open, the run's epoll instance is not.
            assert len(_open_fds() - before) == 2
    assert _open_fds() == before


def test_close_outside_the_run_wakes_a_hub_waiter_with_ebadf(hub_after: Any) -> None:
    """close() from outside the run hands the wake-up to the run's own thread."""
    import trio

    hub_after(0)
    a, b = asock.socketpair()
    parked = threading.Event()
    outcome: list[BaseException | bytes] = []

    async def read() -> None:
        async def note_parked() -> None:
            await trio.sleep(0.02)
            parked.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(note_parked)
            try:
                outcome.append(await a.recv(1))
            except OSError as exc:
                outcome.append(exc)

    runner = threading.Thread(target=trio.run, args=(read,))
    runner.start()
    assert parked.wait(5)
    a.close()
    runner.join(5)
    b.close()
    assert not runner.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], OSError)
    assert outcome[0].errno == errno.EBADF


def test_the_hub_closed_before_its_task_ran_does_not_crash_the_run(hub_after: Any) -> None:
    """Its last socket closed before the hub's task first ran: the task ends quietly.

    (trio picks the order of a batch at random, so this repeats the case.)
    """
    import trio

    hub_after(0)
    before = _open_fds()

    async def main() -> None:
        a, b = asock.socketpair()
        with trio.CancelScope() as scope:
            scope.cancel()
            await a.recv(1)  # starts the hub, parks, is cancelled at once
        a.close()
        b.close()
        await trio.sleep(0.01)

    for _ in range(20):
        trio.run(main)
    assert _open_fds() == before


def test_a_waiter_parked_on_the_hub_when_the_run_ends_is_still_woken(hub_after: Any) -> None:
    """The hub's task is cancelled with the run; a shielded waiter goes on through trio."""
    import trio

    hub_after(0)
    a, b = asock.socketpair()
    received: list[bytes] = []

    async def shielded_reader() -> None:
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + 5
            received.append(await a.recv(10))

    async def main() -> None:
        trio.lowlevel.spawn_system_task(shielded_reader)
        await trio.sleep(0.05)  # parked on the hub; the run now begins to end
        threading.Timer(0.1, b._sock.send, args=(b"hello",)).start()

    with a, b:
        trio.run(main)
    assert received == [b"hello"]


def test_a_direct_socket_counts_in_each_run_and_follows_its_hub(hub_after: Any) -> None:
    import trio

    from asock_core.drivers import trio_hub

    hub_after(2)
    a, b = asock.socketpair()

    async def second_run() -> None:
        assert await _wait_for_one_byte(a, b) == b"x"
        assert trio_hub.run_state().direct == 1  # a counts here too
        others = [asock.socketpair() for _ in range(2)]
        for x, y in others:
            assert await _wait_for_one_byte(x, y) == b"x"
        assert trio_hub.run_state().hub is not None
        assert await _wait_for_one_byte(a, b) == b"x"
        assert await _wait_for_one_byte(a, b) == b"x"
        assert "trio-hub" in a._all_queues()  # moved to this run's hub
        for x, y in others:
            x.close()
            y.close()

    with a, b:
        assert trio.run(_wait_for_one_byte, a, b) == b"x"
        trio.run(second_run)


# -- the first reader's wait: trio's trap, yielded by the compiled trap_wait --


def test_the_first_readers_wait_is_compiled_exactly_when_the_extension_is() -> None:
    pytest.importorskip("trio")
    import trio

    from asock_core.drivers import trio_hub
    from asock_core.kernel_calls import COMPILED

    if COMPILED:
        from asock_core import _speedups

        assert trio_hub.reader_wait is _speedups.trap_wait
    else:
        assert trio_hub.reader_wait is trio.lowlevel.wait_task_rescheduled


async def test_trap_wait_returns_raises_and_is_cancelled_as_trios_own_wait(
    trio_only: None,
) -> None:
    """trap_wait awaited from Python code: the outcome trio resumes it with is
    unwrapped (a value returned, an error raised), a cancellation calls the
    trap's abort function, and one trap_wait cannot be awaited twice."""
    from asock_core.kernel_calls import COMPILED

    if not COMPILED:
        pytest.skip("trap_wait is in the compiled extension (the pure path uses trio's own wait)")
    import outcome
    import trio
    import trio.testing
    from trio._core._traps import WaitTaskRescheduled

    from asock_core._speedups import trap_wait

    aborted: list[object] = []

    def abort(raise_cancel: object) -> trio.lowlevel.Abort:
        aborted.append(raise_cancel)
        return trio.lowlevel.Abort.SUCCEEDED

    async def resume_soon(task: trio.lowlevel.Task, result: outcome.Outcome[Any]) -> None:
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.reschedule(task, result)

    trap = WaitTaskRescheduled(abort)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(resume_soon, trio.lowlevel.current_task(), outcome.Value(42))
            assert await trap_wait(trap) == 42
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                resume_soon, trio.lowlevel.current_task(), outcome.Error(KeyError("gone"))
            )
            with pytest.raises(KeyError, match="gone"):
                await trap_wait(trap)
        with trio.move_on_after(0.01) as scope:
            await trap_wait(trap)
        assert scope.cancelled_caught and len(aborted) == 1
        used = trap_wait(trap)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(resume_soon, trio.lowlevel.current_task(), outcome.Value(None))
            await used
        with pytest.raises(RuntimeError, match="already awaited"):
            await used
