"""A socket made under one test's loop works under the next test's loop, and
nothing of a closed loop stays behind (asock's epoll hub, its descriptor, the
socket's queue for that loop)."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator

import pytest

import asock
from asock_core.drivers import asyncio_driver

_loops: list[asyncio.AbstractEventLoop] = []


def _epoll_fds() -> set[int]:
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:[eventpoll]":
                fds.add(int(name))
        except OSError:
            pass
    return fds


@pytest.fixture(scope="module")
def before() -> set[int]:
    """The epoll descriptors open before any loop of this module."""
    return _epoll_fds()


@pytest.fixture(scope="module")
def pair(before: set[int]) -> Iterator[tuple[asock.socket, asock.socket]]:
    a, b = asock.socketpair()
    with a, b:
        yield a, b


def _hub_fds() -> set[int]:
    return {hub.epoll.fileno() for hub in asyncio_driver._hubs.values()}


def _check_nothing_of_closed_loops(before: set[int]) -> None:
    gc.collect()
    loop = asyncio.get_running_loop()
    assert not [old for old in asyncio_driver._hubs if old.is_closed()]
    selector_fd = loop._selector.fileno()  # type: ignore[attr-defined]
    assert _epoll_fds() <= before | _hub_fds() | {selector_fd}
    assert len(asyncio_driver._hubs) <= 1


async def _wait_on(pair: tuple[asock.socket, asock.socket]) -> None:
    a, b = pair
    receiving = asyncio.create_task(b.recv(5))
    await asyncio.sleep(0.01)
    assert not receiving.done()
    await a.sendall(b"hello")
    assert await asyncio.wait_for(receiving, 5) == b"hello"
    sending_back = asyncio.create_task(a.recv(2))
    await asyncio.sleep(0)
    await b.sendall(b"ok")
    assert await asyncio.wait_for(sending_back, 5) == b"ok"


@pytest.mark.asyncio(loop_scope="function")
async def test_first_loop_waits(pair: tuple[asock.socket, asock.socket]) -> None:
    _loops.append(asyncio.get_running_loop())
    await _wait_on(pair)


@pytest.mark.asyncio(loop_scope="function")
async def test_next_loop_waits_on_the_same_pair(
    pair: tuple[asock.socket, asock.socket], before: set[int]
) -> None:
    assert _loops[0].is_closed()
    _loops.append(asyncio.get_running_loop())
    await _wait_on(pair)
    # Waiting here dropped the pair's queues for the first, closed loop, and
    # with them that loop's hub and its epoll descriptor.
    for s in pair:
        assert set(s._all_queues()) == {asyncio.get_running_loop()}
    _check_nothing_of_closed_loops(before)


@pytest.mark.asyncio(loop_scope="function")
async def test_a_new_loop_drops_the_hubs_of_closed_ones(before: set[int]) -> None:
    # The pair last waited on the previous (now closed) loop and is idle
    # here: a new hub, made for this loop, drops that loop's hub.
    assert _loops[1].is_closed()
    a, b = asock.socketpair()
    with a, b:
        receiving = asyncio.create_task(b.recv(1))
        await asyncio.sleep(0)
        await a.sendall(b"x")
        assert await receiving == b"x"
        _check_nothing_of_closed_loops(before)
