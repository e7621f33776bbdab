"""asock under pytest-trio's ``@pytest.mark.trio``."""

from __future__ import annotations

import pytest

import asock

trio = pytest.importorskip("trio")
pytest.importorskip("pytest_trio")


@pytest.mark.trio
async def test_trio_socketpair() -> None:
    a, b = asock.socketpair()
    with a, b:
        received: list[bytes] = []

        async def receive() -> None:
            received.append(await b.recv(5))  # waits: nothing sent yet

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            await trio.sleep(0.01)
            assert not received
            await a.sendall(b"hello")
        assert received == [b"hello"]
