"""Shared fixtures: every async test runs on asyncio, asyncio+uvloop and trio."""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import AsyncIterator, Iterator

import hypothesis.internal.conjecture.optimiser  # noqa: F401
import pytest
import trustme

# hypothesis imports its optimiser lazily, from inside a test. hypothesis is a
# pytest plugin, so pytest's assertion rewriting compiles that module then, as
# deep in the stack as the test runs; on CPython 3.11 that compile failed once
# with "SystemError: AST constructor recursion depth mismatch" (a uvloop
# test of tests/reliability/test_hostile_args.py). Imported here, it compiles
# at the top of the stack.

BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(
        ("asyncio", {"use_uvloop": True}),
        id="uvloop",
        marks=pytest.mark.skipif(sys.platform == "win32", reason="uvloop has no Windows build"),
    ),
    pytest.param(("trio", {}), id="trio"),
]


@pytest.fixture(autouse=True)
def _full_fairness_budget() -> None:
    """Every test starts with a full fairness budget.

    The budget (every 128 immediate successes a call yields first) is counted
    process-wide, so without this a test that steps a call by hand, or counts
    its yields, would meet the budget's checkpoint wherever the tests before it
    left the count: a different place for each selection and order of tests.
    """
    from asock_core import async_calls, operations

    operations._budget = operations.FAIRNESS_BUDGET
    if async_calls.COMPILED:
        async_calls.AsyncCalls._link(operations)  # type: ignore[attr-defined]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Every ``async def`` test runs once per backend (``anyio_mode = auto``)."""
    return request.param  # type: ignore[no-any-return]


def open_fds() -> set[int]:
    """The descriptors open in this process right now."""
    return {int(name) for name in os.listdir("/proc/self/fd")}


def _assert_no_new_fds(before: set[int]) -> None:
    import gc

    gc.collect()
    leaked = {fd for fd in open_fds() - before if os.path.exists(f"/proc/self/fd/{fd}")}
    described = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in leaked if _readable(fd)}
    assert not leaked, f"descriptors leaked: {described or sorted(leaked)}"


def _readable(fd: int) -> bool:
    try:
        os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False
    return True


@pytest.fixture
async def no_fd_leak() -> AsyncIterator[None]:
    """Fail an async test that leaves descriptors open.

    Async, so the event loop (and its own descriptors) exists before the count.
    """
    before = open_fds()
    yield
    _assert_no_new_fds(before)


@pytest.fixture
def no_fd_leak_sync() -> Iterator[None]:
    """Fail a blocking (asock_sync) test that leaves descriptors open."""
    before = open_fds()
    yield
    _assert_no_new_fds(before)


@pytest.fixture(scope="session")
def authority() -> trustme.CA:
    """A certificate authority for the TLS tests (trustme)."""
    return trustme.CA()


@pytest.fixture
def server_context(authority: trustme.CA) -> ssl.SSLContext:
    """A fresh server context with a certificate for localhost and 127.0.0.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def client_context(authority: trustme.CA) -> ssl.SSLContext:
    """A fresh client context that trusts ``authority``."""
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context
