"""Keep this package's ``slow`` tests out of the plain ``python -m pytest`` run.

They run when the marker expression names them (``tox -e slow`` runs
``pytest -m slow``). Only items in this package are touched.
"""

from __future__ import annotations

import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow (over a minute): run with tox -e slow / pytest -m slow")
    for item in items:
        if item.get_closest_marker("slow") and str(item.path).startswith(HERE):
            item.add_marker(skip)
