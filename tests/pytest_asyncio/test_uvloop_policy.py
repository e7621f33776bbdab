"""asock on uvloop under pytest-asyncio, chosen by the event_loop_policy fixture.

pytest-asyncio 1.x deprecates overriding ``event_loop_policy`` (its
replacement is the ``pytest_asyncio_loop_factories`` hook, see
tests/pytest_asyncio/factories/), but the override still works and is what
most existing suites do, so it is tested here with the warning silenced.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

import asock

uvloop = pytest.importorskip("uvloop")

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="uvloop has no Windows build"),
    pytest.mark.filterwarnings('ignore:Overriding the "event_loop_policy":DeprecationWarning'),
]


@pytest.fixture(scope="module")
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    return uvloop.EventLoopPolicy()  # type: ignore[no-any-return]


@pytest.mark.asyncio
async def test_uvloop_socketpair() -> None:
    assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
    a, b = asock.socketpair()
    with a, b:
        receiving = asyncio.create_task(b.recv(5))
        await asyncio.sleep(0.01)
        assert not receiving.done()
        await a.sendall(b"hello")
        assert await asyncio.wait_for(receiving, 5) == b"hello"


@pytest.mark.asyncio(loop_scope="module")
async def test_uvloop_module_loop_tcp() -> None:
    assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
    server = await asock.create_server(("127.0.0.1", 0))
    with server:
        client = await asock.create_connection(server.getsockname()[:2])
        conn, _ = await server.accept()
        with client, conn:
            receiving = asyncio.create_task(conn.recv(4))
            await asyncio.sleep(0.01)
            assert not receiving.done()
            await client.sendall(b"ping")
            assert await asyncio.wait_for(receiving, 5) == b"ping"
