"""Run CPython's ``test.test_socket`` against one socket module; print JSON outcomes.

Usage: ``python run_cpython_socket.py {stdlib|asock_sync} OUTFILE [TEST_ID...]``
(with test ids such as ``GeneralModuleTests.testCrucialConstants``, only those run).

With ``asock_sync`` the suite's source has its ``import socket`` line replaced
by ``import asock_sync as socket`` before it is compiled, so every socket the
tests create, and every module function they call, is asock_sync's. The suite
is found through ``test.test_socket.__file__`` (never a hard-coded path). The
VSOCK classes are left out: on hosts with a vsock device they hang.

The result file maps each test id to ``pass``, ``fail``, ``error`` or ``skip``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import types
import unittest
from typing import Any

MODULE_NAME = "test_socket_under_test"
_IMPORT_LINE = re.compile(r"^import socket$", re.MULTILINE)
_LEFT_OUT = re.compile(r"VSOCK", re.IGNORECASE)


def load_suite_module(front: str) -> types.ModuleType:
    """Compile CPython's test_socket with ``socket`` bound to ``front``."""
    spec = importlib.util.find_spec("test.test_socket")
    if spec is None or spec.origin is None:
        raise RuntimeError("CPython's test.test_socket is not installed")
    with open(spec.origin, encoding="utf-8") as f:
        source = f.read()
    if front == "asock_sync":
        source, count = _IMPORT_LINE.subn("import asock_sync as socket", source)
        if count != 1:
            raise RuntimeError(f"expected one 'import socket' line, found {count}")
    elif front != "stdlib":
        raise ValueError(f"unknown front {front!r}")
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = spec.origin
    sys.modules[MODULE_NAME] = module
    exec(compile(source, spec.origin, "exec"), module.__dict__)
    return module


class _Recorder(unittest.TextTestResult):
    """Keeps one outcome per test id (subtests fold into their test)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outcomes: dict[str, str] = {}

    def _set(self, test: Any, outcome: str) -> None:
        test_id = test.id().removeprefix(MODULE_NAME + ".")
        if self.outcomes.get(test_id) in ("fail", "error") and outcome in ("pass", "skip"):
            return  # a failed subtest decides the outcome of its test
        self.outcomes[test_id] = outcome

    def addSuccess(self, test: Any) -> None:
        super().addSuccess(test)
        self._set(test, "pass")

    def addFailure(self, test: Any, err: Any) -> None:
        super().addFailure(test, err)
        self._set(test, "fail")

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)
        if isinstance(test, unittest.TestCase):
            self._set(test, "error")
        else:  # a class or module fixture failed: every test in it is lost
            self.outcomes[f"<fixture> {test}"] = "error"

    def addSkip(self, test: Any, reason: str) -> None:
        super().addSkip(test, reason)
        if isinstance(test, unittest.TestCase):
            self._set(test, "skip")

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._set(test, "pass")

    def addUnexpectedSuccess(self, test: Any) -> None:
        super().addUnexpectedSuccess(test)
        self._set(test, "fail")

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._set(test, "fail" if failed else "error")


def _selected(suite: unittest.TestSuite, only: set[str]) -> unittest.TestSuite:
    kept = unittest.TestSuite()
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            kept.addTest(_selected(item, only))
        elif _LEFT_OUT.search(type(item).__name__):
            continue
        elif not only or item.id().removeprefix(MODULE_NAME + ".") in only:
            kept.addTest(item)
    return kept


def main(argv: list[str]) -> int:
    """Run the suite for ``argv[0]`` and write the outcomes to ``argv[1]``."""
    front, out_path, *only = argv
    module = load_suite_module(front)
    suite = _selected(unittest.defaultTestLoader.loadTestsFromModule(module), set(only))
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=_Recorder)
    result = runner.run(suite)
    assert isinstance(result, _Recorder)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result.outcomes, f, indent=0, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
