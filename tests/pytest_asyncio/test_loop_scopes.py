"""asock under pytest-asyncio's markers, with each loop scope."""

from __future__ import annotations

import asyncio

import pytest

import asock

_seen: dict[str, asyncio.AbstractEventLoop] = {}


async def _wait_then_receive() -> None:
    """The receiver waits before the peer sends."""
    a, b = asock.socketpair()
    with a, b:
        receiving = asyncio.create_task(b.recv(5))
        await asyncio.sleep(0.01)
        assert not receiving.done()  # parked on asock's wait
        await a.sendall(b"hello")
        assert await asyncio.wait_for(receiving, 5) == b"hello"


async def _tcp_echo() -> None:
    server = await asock.create_server(("127.0.0.1", 0))
    with server:

        async def serve() -> None:
            conn, _ = await server.accept()
            with conn:
                await conn.sendall(await conn.recv(100))

        serving = asyncio.create_task(serve())
        client = await asock.create_connection(server.getsockname()[:2])
        with client:
            await client.sendall(b"ping")
            assert await asyncio.wait_for(client.recv(100), 5) == b"ping"
        await serving


def _runner_loop(request: pytest.FixtureRequest, scope: str) -> asyncio.AbstractEventLoop:
    runner: asyncio.Runner = request.getfixturevalue(f"_{scope}_scoped_runner")
    return runner.get_loop()


@pytest.mark.asyncio(loop_scope="function")
async def test_function_loop(request: pytest.FixtureRequest) -> None:
    loop = asyncio.get_running_loop()
    assert loop is _runner_loop(request, "function")
    _seen["function"] = loop
    await _wait_then_receive()
    await _tcp_echo()


@pytest.mark.asyncio(loop_scope="function")
async def test_function_loop_is_new(request: pytest.FixtureRequest) -> None:
    assert asyncio.get_running_loop() is not _seen["function"]
    assert _seen["function"].is_closed()
    await _wait_then_receive()


@pytest.mark.asyncio(loop_scope="module")
async def test_module_loop(request: pytest.FixtureRequest) -> None:
    loop = asyncio.get_running_loop()
    assert loop is _runner_loop(request, "module")
    _seen["module"] = loop
    await _wait_then_receive()


@pytest.mark.asyncio(loop_scope="module")
async def test_module_loop_is_shared() -> None:
    assert asyncio.get_running_loop() is _seen["module"]
    await _wait_then_receive()
    await _tcp_echo()


@pytest.mark.asyncio(loop_scope="session")
async def test_session_loop(request: pytest.FixtureRequest) -> None:
    assert asyncio.get_running_loop() is _runner_loop(request, "session")
    await _wait_then_receive()
    await _tcp_echo()
