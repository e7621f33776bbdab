"""Tests run by pytest-asyncio's (and pytest-trio's) own markers, not by anyio's plugin.

The project sets ``anyio_mode = "auto"``, which makes anyio's plugin add its
``anyio_backend`` fixture (three backends) to *every* ``async def`` test, even
one marked ``@pytest.mark.asyncio``: such a test is then collected three
times and run three times by pytest-asyncio. Here ``anyio_backend`` is a
plain, unparametrized fixture whose value is None, so each test is collected
once and anyio's plugin leaves it to pytest-asyncio. The same holds for
``@pytest.mark.trio`` (pytest-trio): test_pytest_trio.py.
"""

from __future__ import annotations

import pytest
import pytest_asyncio


@pytest.fixture
def anyio_backend() -> None:
    """No anyio backend in this directory: pytest-asyncio runs these tests."""
    return None


@pytest.fixture(autouse=True)
def _run_by_pytest_asyncio(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("trio") is None:
        assert pytest_asyncio.is_async_test(request.node), request.node
    assert "[" not in request.node.name, "collected per anyio backend"
