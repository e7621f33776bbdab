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
def asyncio_only(anyio_backend: Any) -> None:
    if anyio_backend[0] != "asyncio":
        pytest.skip("the trio driver has a hub of its own (test_trio_epoll_hub.py)")
    if anyio_backend[1].get("use_uvloop"):
        pytest.skip("on uvloop a socket stays registered with the loop itself (see below)")


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
    asyncio_only: None, no_fd_leak: None
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
    asyncio_only: None, no_fd_leak: None
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
    asyncio_only: None, no_fd_leak: None
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


async def test_uvloop_moves_later_sockets_to_the_hub(
    anyio_backend: Any, monkeypatch: pytest.MonkeyPatch, no_fd_leak: None
) -> None:
    """On uvloop a loop's first sockets register with the loop itself, later ones with the hub."""
    if anyio_backend[0] != "asyncio" or not anyio_backend[1].get("use_uvloop"):
        pytest.skip("the choice between the two schemes is uvloop's")
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
        schemes = [type((s._queues or {})[loop]).__name__ for pair in pairs for s in pair]
        assert schemes == ["_LoopRegistration"] * 2 + ["_EpollQueue"] * 4
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
