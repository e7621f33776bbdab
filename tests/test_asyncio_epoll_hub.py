"""The asyncio driver's own epoll instance (asock_core/drivers/asyncio_driver.py).

These cases are about that driver's bookkeeping, so they run on asyncio and
uvloop only (the trio driver's hub is tested in test_trio_epoll_hub.py).
"""

from __future__ import annotations

import gc
import os
import select
import socket as stdlib_socket
import warnings
from typing import Any

import anyio
import pytest

import asock

pytestmark = pytest.mark.skipif(not hasattr(select, "epoll"), reason="needs select.epoll")


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


@pytest.fixture
def on_the_hub(anyio_backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncio or uvloop, every socket on the hub (the trio hub: test_trio_epoll_hub.py)."""
    if anyio_backend[0] != "asyncio":
        pytest.skip("the trio driver has a hub of its own (test_trio_epoll_hub.py)")
    import asock_core.drivers

    monkeypatch.setattr(asock_core.drivers, "HUB_AFTER", 0)


@pytest.fixture(params=["hub", "selector loop's own epoll"])
def scheme(
    request: pytest.FixtureRequest, anyio_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The plain selector loop with each of its two schemes.

    The hub, or the loop's own epoll instance, edge-triggered (a loop's first
    sockets; uvloop's registration: see below).
    """
    if anyio_backend[0] != "asyncio" or anyio_backend[1].get("use_uvloop"):
        pytest.skip("the selector loop's two schemes")
    import asock_core.drivers

    # Every socket of the test on the scheme, however many the test opens.
    monkeypatch.setattr(asock_core.drivers, "HUB_AFTER", 0 if request.param == "hub" else 10**6)
    return str(request.param)


async def test_uvloop_and_forced_loop_registration_survive_descriptor_reuse(
    anyio_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop-registration scheme (uvloop's, and the one without epoll).

    On asyncio it is forced, as on a platform without epoll (macOS, the BSDs).
    A socket stays registered between waits; closing it drops the
    registration, so a new socket on the same number waits and wakes.
    """
    if anyio_backend[0] != "asyncio":
        pytest.skip("trio waits in its own I/O manager")
    import asyncio

    from asock_core.drivers import asyncio_driver

    loop = asyncio.get_running_loop()
    if not anyio_backend[1].get("use_uvloop"):
        monkeypatch.setitem(asyncio_driver._SCHEMES, type(loop), True)
    before = _open_fds()
    for _ in range(3):
        a, b = asock.socketpair()
        numbers = {a.fileno(), b.fileno()}
        for _ in range(5):
            assert await _wait_for_one_byte(a, b) == b"x"
            assert await _wait_for_one_byte(b, a) == b"x"
        a.close()
        b.close()
        again, again_peer = asock.socketpair()
        assert {again.fileno(), again_peer.fileno()} == numbers
        assert await _wait_for_one_byte(again, again_peer) == b"x"
        again.close()
        again_peer.close()
    assert _open_fds() == before


async def _wait_for_one_byte(reader: asock.socket, writer: asock.socket) -> bytes:
    async with anyio.create_task_group() as tasks:
        received: list[bytes] = []

        async def read() -> None:
            received.append(await reader.recv(1))

        tasks.start_soon(read)
        await anyio.sleep(0.01)  # the reader is parked in the epoll instance by now
        await writer.send(b"x")
    return received[0]


async def test_the_epoll_descriptor_goes_when_the_last_socket_closes(
    on_the_hub: None, no_fd_leak: None
) -> None:
    before = _open_fds()
    with anyio.fail_after(5):
        a, b = asock.socketpair()
        assert await _wait_for_one_byte(a, b) == b"x"
        assert await _wait_for_one_byte(b, a) == b"x"
        during = _open_fds() - before
        # The pair, plus the epoll instance created by the first wait.
        assert len(during) == 3
        a.close()
        assert len(_open_fds() - before) == 2  # b still registered: the hub stays
        b.close()
    # Checked while the loop still runs: an idle loop keeps no descriptor of asock's.
    assert _open_fds() == before


async def test_a_socket_lost_without_close_does_not_disturb_its_successor(
    scheme: str, no_fd_leak: None
) -> None:
    with anyio.fail_after(5):
        keep_hub_a, keep_hub_b = asock.socketpair()  # keeps the epoll instance alive
        lost, lost_peer = stdlib_socket.socketpair()
        lost_number = lost.fileno()
        lost_async = asock.from_stdlib_socket(lost)
        peer = asock.from_stdlib_socket(lost_peer)
        assert await _wait_for_one_byte(lost_async, peer) == b"x"
        # Dropped without close(): the descriptor is closed by the garbage
        # collector, behind the driver's back, and its number becomes free.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            del lost_async, lost
            gc.collect()
        successor, successor_peer = asock.socketpair()
        with keep_hub_a, keep_hub_b, successor, successor_peer, peer:
            if lost_number not in (successor.fileno(), successor_peer.fileno()):
                pytest.skip("the kernel did not hand the freed number out again")
            reused = successor if successor.fileno() == lost_number else successor_peer
            other = successor_peer if reused is successor else successor
            for _ in range(3):
                assert await _wait_for_one_byte(reused, other) == b"x"


async def test_a_sender_that_waited_for_room_is_woken_each_time_room_appears(
    scheme: str, no_fd_leak: None
) -> None:
    # The first wait to send arms EPOLLOUT on a socket registered for reading
    # only; every later wait must still get its own wake-up.
    with anyio.fail_after(10):
        a, b = asock.socketpair()
        with a, b:
            a.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, 4096)
            payload = os.urandom(2 * 1024 * 1024)
            received = bytearray()

            async def drain() -> None:
                while len(received) < len(payload):
                    await anyio.sleep(0.001)  # let the sender fill the buffer and wait
                    received.extend(await b.recv(65536))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(drain)
                await a.sendall(payload)
            assert bytes(received) == payload


async def test_later_sockets_of_a_loop_go_to_the_hub(
    anyio_backend: Any, monkeypatch: pytest.MonkeyPatch, no_fd_leak: None
) -> None:
    """A loop's first sockets register with the loop itself, later ones with the hub."""
    if anyio_backend[0] != "asyncio":
        pytest.skip("the trio driver's split is tested in test_trio_epoll_hub.py")
    import asyncio

    import asock_core.drivers
    from asock_core.drivers import asyncio_driver

    monkeypatch.setattr(asock_core.drivers, "HUB_AFTER", 2)
    loop = asyncio.get_running_loop()
    before = _open_fds()
    with anyio.fail_after(5):
        pairs = [asock.socketpair() for _ in range(3)]
        for a, b in pairs:
            assert await _wait_for_one_byte(a, b) == b"x"
            assert await _wait_for_one_byte(b, a) == b"x"
        schemes = [type(s._all_queues()[loop]).__name__ for pair in pairs for s in pair]
        assert schemes == ["_LoopRegistration"] * 2 + ["_EpollQueue"] * 4
        # Edge-triggered in the selector loop's own epoll; level-triggered on uvloop.
        edges = [s._all_queues()[loop].edge is not None for s in pairs[0]]  # type: ignore[attr-defined]
        assert edges == [not anyio_backend[1].get("use_uvloop")] * 2
        assert asyncio_driver._loop_registrations[loop] == 2
        # The three pairs, plus the hub's epoll instance.
        assert len(_open_fds() - before) == 7
        for a, b in pairs:
            a.close()
            b.close()
        # Both schemes undone: no count left for the loop, no epoll instance.
        assert loop not in asyncio_driver._loop_registrations
    assert _open_fds() == before


def test_a_socket_closed_after_its_uvloop_loop_does_not_keep_the_loop() -> None:
    uvloop = pytest.importorskip("uvloop")
    import asyncio
    import weakref

    from asock_core.drivers import asyncio_driver

    pair = asock.socketpair()
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def wait_once() -> None:
        a, b = pair
        reader = asyncio.ensure_future(a.recv(1))
        await asyncio.sleep(0.01)
        await b.send(b"x")
        assert await reader == b"x"
        loops.append(weakref.ref(asyncio.get_running_loop()))

    uvloop.run(wait_once())
    for s in pair:
        s.close()
    del s
    gc.collect()
    assert loops[0]() is None
    assert not [loop for loop in asyncio_driver._loop_registrations if loop.is_closed()]


def _epoll_events(epoll_fd: int, fd: int) -> int | None:
    """The events the kernel has for ``fd`` in the epoll instance ``epoll_fd``, or None."""
    with open(f"/proc/self/fdinfo/{epoll_fd}") as info:
        for line in info:
            fields = line.split()
            if fields[:1] == ["tfd:"] and int(fields[1]) == fd:
                return int(fields[3], 16)
    return None


async def test_the_selector_loop_keeps_an_edge_triggered_registration(
    anyio_backend: Any, monkeypatch: pytest.MonkeyPatch, no_fd_leak: None
) -> None:
    """On the plain selector loop a socket's registration in the loop's own epoll
    instance is edge-triggered, is kept between waits (also when it fires with
    nobody waiting), gains EPOLLOUT on the first wait to send, and goes with close()."""
    if anyio_backend[0] != "asyncio" or anyio_backend[1].get("use_uvloop"):
        pytest.skip("the selector loop's own epoll instance")
    import asyncio

    import asock_core.drivers

    monkeypatch.setattr(asock_core.drivers, "HUB_AFTER", 4)  # whatever ASOCK_HUB_AFTER says
    loop = asyncio.get_running_loop()
    epoll_fd = loop._selector._selector.fileno()  # type: ignore[attr-defined]
    with anyio.fail_after(10):
        a, b = asock.socketpair()
        fd = a.fileno()
        assert await _wait_for_one_byte(a, b) == b"x"
        events = _epoll_events(epoll_fd, fd)
        assert events is not None
        assert events & select.EPOLLET and events & select.EPOLLIN
        assert not events & select.EPOLLOUT
        # Data while nobody waits: the registration fires once, is kept, and
        # the next recv finds the data by trying first.
        await b.send(b"yz")
        for _ in range(5):
            await asyncio.sleep(0)
        assert loop._selector.get_key(fd) is not None  # type: ignore[attr-defined]
        assert await a.recv(2) == b"yz"
        # ... and a later wait is still woken through it.
        assert await _wait_for_one_byte(a, b) == b"x"
        # A wait for room adds EPOLLOUT, still edge-triggered, and reading still wakes.
        a.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, 4096)
        payload = os.urandom(512 * 1024)
        received = bytearray()

        async def drain() -> None:
            while len(received) < len(payload):
                await anyio.sleep(0.001)
                received.extend(await b.recv(65536))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(drain)
            await a.sendall(payload)
        assert bytes(received) == payload
        events = _epoll_events(epoll_fd, fd)
        assert events is not None
        assert events & select.EPOLLET and events & select.EPOLLIN and events & select.EPOLLOUT
        assert await _wait_for_one_byte(a, b) == b"x"
        a.close()
        assert _epoll_events(epoll_fd, fd) is None
        with pytest.raises(KeyError):
            loop._selector.get_key(fd)  # type: ignore[attr-defined]
        b.close()


async def test_other_codes_writer_does_not_leave_the_registration_level_triggered(
    anyio_backend: Any, monkeypatch: pytest.MonkeyPatch, no_fd_leak: None
) -> None:
    """Other code's add_writer/remove_writer on the descriptor re-arms it level-triggered;
    the next time asock's reader fires with nobody waiting it is edge-triggered again
    (unread data would otherwise fire it on every pass of the loop), with the other
    code's interest kept."""
    if anyio_backend[0] != "asyncio" or anyio_backend[1].get("use_uvloop"):
        pytest.skip("the selector loop's own epoll instance")
    import asyncio

    import asock_core.drivers

    monkeypatch.setattr(asock_core.drivers, "HUB_AFTER", 4)
    loop = asyncio.get_running_loop()
    epoll_fd = loop._selector._selector.fileno()  # type: ignore[attr-defined]
    with anyio.fail_after(10):
        a, b = asock.socketpair()
        with a, b:
            fd = a.fileno()
            assert await _wait_for_one_byte(a, b) == b"x"
            writable: list[int] = []
            loop.add_writer(fd, writable.append, 1)
            events = _epoll_events(epoll_fd, fd)
            assert events is not None and not events & select.EPOLLET
            await b.send(b"unread")  # fires asock's reader with nobody waiting
            for _ in range(5):
                await asyncio.sleep(0)
            events = _epoll_events(epoll_fd, fd)
            assert events is not None
            assert events & select.EPOLLET and events & select.EPOLLIN
            assert events & select.EPOLLOUT  # the other code's interest is kept
            assert writable  # and its callback still runs
            loop.remove_writer(fd)
            await b.send(b"more")
            for _ in range(5):
                await asyncio.sleep(0)
            events = _epoll_events(epoll_fd, fd)
            assert events is not None and events & select.EPOLLET
            assert not events & select.EPOLLOUT
            assert await a.recv(100) == b"unreadmore"
            assert await _wait_for_one_byte(a, b) == b"x"


@pytest.mark.parametrize("flavour", ["asyncio", "uvloop"])
def test_close_and_detach_on_a_loop_that_is_not_running_act_at_once(flavour: str) -> None:
    """Between run_until_complete() calls nothing runs the loop: close() closes the
    descriptor at once and detach() returns at once with it forgotten (a hand-over to
    the loop would wait for it to run again, and loop.close() would drop it)."""
    import asyncio
    import time

    before = _open_fds()
    if flavour == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        a, b = asock.socketpair()

        async def one_wait_each() -> None:
            assert await _wait_for_one_byte(a, b) == b"x"
            assert await _wait_for_one_byte(b, a) == b"x"

        loop.run_until_complete(one_wait_each())
        number = a.fileno()
        a.close()
        assert not os.path.exists(f"/proc/self/fd/{number}")  # stat: opens no descriptor
        started = time.monotonic()
        detached = b.detach()
        assert time.monotonic() - started < 0.5
        try:
            if flavour == "asyncio":
                with pytest.raises(KeyError):
                    loop._selector.get_key(detached)  # type: ignore[attr-defined]
            # Nothing of asock's is left to run on the loop: a registration
            # made on the number now is not dropped when the loop runs (its
            # peer is closed, so it is readable at once).
            seen: list[int] = []
            loop.add_reader(detached, seen.append, 1)
            loop.run_until_complete(asyncio.sleep(0.05))
            assert seen
            loop.remove_reader(detached)
        finally:
            os.close(detached)
    finally:
        loop.close()
    assert _open_fds() == before


def test_a_socket_on_one_loop_after_another_waits_through_its_first_slot() -> None:
    """The queue of a closed loop is dropped on the socket's first wait on the next
    loop, and the new loop's queue takes the slots the drivers read first (else every
    later wait would take the slow path)."""
    import asyncio

    a, b = asock.socketpair()
    with a, b:

        async def wait_once() -> bool:
            assert await _wait_for_one_byte(a, b) == b"x"
            return a._first_key is asyncio.get_running_loop() and len(a._all_queues()) == 1

        assert [asyncio.run(wait_once()) for _ in range(3)] == [True] * 3
