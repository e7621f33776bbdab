"""Run every script in examples/ as its own process and check what it prints.

Each async example runs on asyncio, uvloop and trio (the backend is its first
argument); each ``_sync`` example runs once. So do the two snippets of
README.md. Every run has ``ResourceWarning`` turned into an error (and every
other warning shown), and must write nothing to stderr: an example that leaves
a socket or a stream unclosed fails. A script that hangs fails the test at the
timeout instead of hanging the suite.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BACKENDS = ["asyncio", "uvloop", "trio"]
TIMEOUT = 60
#: Every warning shown, ResourceWarning raised. The last -W option is matched
#: first, so "error" must come after "default" to win for ResourceWarning.
WARNINGS = ["-W", "default", "-W", "error::ResourceWarning"]
#: The worker pool's size, as in examples/udp_server_worker_pool*.py.
POOL_WORKERS = 4


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def _echo_any_family_output() -> list[str]:
    lines = [r"^AF_INET 127\.0\.0\.1 port \d+: received b'Hello, world'$"]
    if _has_ipv6_loopback():
        lines.append(r"^AF_INET6 ::1 port \d+: received b'Hello, world'$")
    else:
        lines.append(r"^::1: could not open socket$")
    return lines


ROOT_REASON = "opening an AF_PACKET socket needs root (CAP_NET_RAW)"

#: Example name -> regular expressions that must each match a line of its output.
EXPECTED: dict[str, list[str]] = {
    "echo_tcp_ipv4": [r"^Connected by 127\.0\.0\.1$", r"^Received b'Hello, world'$"],
    "echo_tcp_any_family": _echo_any_family_output(),
    "restart_server_reuseaddr": [
        r"^first server on port (\d+) served a client and stopped$",
        r"^restart without SO_REUSEADDR: Address already in use$",
        r"^restart with SO_REUSEADDR: bound port \d+ and served a client$",
    ],
    "scatter_receive_recvmsg_into": [
        r"^sent 22 bytes$",
        r"^recvmsg_into: \(22, \[\], 0, None\)$",
        re.escape(
            "buffers: [bytearray(b'Mary'), bytearray(b'01 had a 9'), bytearray(b'little lamb---')]"
        ),
    ],
    "pass_descriptor_send_fds": [
        r"^sender: sent descriptor \d+$",
        r"^receiver: got b'here is a pipe' and descriptor \[\d+\]$",
        r"^sender: read b'written through the passed descriptor'$",
    ],
    "capture_loopback_packets": [
        r"^captured on lo \(incoming\): IPv4 UDP 127\.0\.0\.1:(\d+) -> 127\.0\.0\.1:\1, "
        r"\d+ bytes: b'asock capture \d+'$",
        r"^the UDP socket received b'asock capture \d+' as well$",
    ],
    "udp_server_worker_pool": [
        r"^200 requests from 8 clients answered correctly$",
        rf"^{POOL_WORKERS} workers stopped$",
        # Every worker took part: one that served nothing prints 0 and fails.
        *(rf"^worker {n} served [1-9]\d* requests$" for n in range(POOL_WORKERS)),
    ],
    "chat_server": [
        r"^20 clients joined the chat$",
        r"^every client heard the 19 others; what user00 heard first:$",
        r"^   user\d\d: hello from user\d\d$",
    ],
    "anyio_line_server_on_asock": [
        r"^listening on 127\.0\.0\.1:\d+: <asock\.socket fd=\d+",
        *(
            rf"^{name}: sent '{word}', got '{word.upper()}'$"
            for name in ("ada", "bob", "cy")
            for word in ("hello", "from", name)
        ),
    ],
}

#: Examples that also exist for the sync front, as ``<name>_sync.py`` with the same output.
SYNC_VERSIONS = {
    "echo_tcp_ipv4",
    "echo_tcp_any_family",
    "restart_server_reuseaddr",
    "scatter_receive_recvmsg_into",
    "pass_descriptor_send_fds",
    "capture_loopback_packets",
    "udp_server_worker_pool",
}

NEEDS_ROOT = {"capture_loopback_packets"}


def _cases() -> list[object]:
    cases: list[object] = []
    for name in EXPECTED:
        marks = []
        if name in NEEDS_ROOT:
            marks.append(pytest.mark.skipif(os.geteuid() != 0, reason=ROOT_REASON))
        for backend in BACKENDS:
            backend_marks = list(marks)
            if backend == "uvloop" and sys.platform == "win32":
                backend_marks.append(pytest.mark.skip(reason="uvloop has no Windows build"))
            cases.append(pytest.param(f"{name}.py", [backend], name, marks=backend_marks,
                                      id=f"{name}-{backend}"))
        if name in SYNC_VERSIONS:
            cases.append(pytest.param(f"{name}_sync.py", [], name, marks=marks, id=f"{name}_sync"))
    return cases


def run_python(script: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a new interpreter, with the warning options above."""
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)  # the -W options alone decide
    # Import asock from this checkout even where it is not installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *WARNINGS, str(script), *args],
        capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=ROOT,
    )


def run_example(script: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return run_python(EXAMPLES / script, args)


@pytest.mark.parametrize(("script", "args", "name"), _cases())
def test_example_runs_and_prints_what_it_should(script: str, args: list[str], name: str) -> None:
    result = run_example(script, args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # a ResourceWarning lands here
    lines = result.stdout.splitlines()
    for pattern in EXPECTED[name]:
        assert any(re.search(pattern, line) for line in lines), (pattern, result.stdout)


def test_every_example_is_tested() -> None:
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    tested = set(EXPECTED) | {f"{name}_sync" for name in SYNC_VERSIONS}
    assert scripts == tested


def test_unknown_backend_is_refused() -> None:
    result = run_example("echo_tcp_ipv4.py", ["curio"])
    assert result.returncode != 0
    assert "usage:" in result.stderr


def test_a_leak_fails_the_run(tmp_path: Path) -> None:
    """The warning options catch a socket left for the garbage collector."""
    script = tmp_path / "leak.py"
    script.write_text("import asock_sync\nasock_sync.socket()\nprint('done')\n")
    result = run_python(script, [])
    assert result.stdout == "done\n"
    assert "ResourceWarning: unclosed <asock_sync.socket" in result.stderr


# -- the README's snippets --------------------------------------------------------------

README = ROOT / "README.md"
SNIPPETS = ["Async, in ten lines", "Blocking, in ten lines"]


def readme_snippet(heading: str) -> str:
    """The first fenced ``python`` block under the ``## heading`` of README.md."""
    text = README.read_text(encoding="utf-8")
    section = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, f"README.md has no section {heading!r}"
    block = re.search(r"^```python\n(.*?)^```$", section.group(1), re.M | re.S)
    assert block, f"README.md's section {heading!r} has no python block"
    return block.group(1)


def promised_output(code: str) -> list[str]:
    """What the snippet says it prints: the comment after each ``print(...)``."""
    return re.findall(r"print\(.*\)\s+#\s*(.*?)\s*$", code, re.M)


@pytest.mark.parametrize("heading", SNIPPETS)
def test_readme_snippet_runs_clean_and_prints_what_it_says(heading: str, tmp_path: Path) -> None:
    code = readme_snippet(heading)
    expected = promised_output(code)
    assert expected, "the snippet promises no output"
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    result = run_python(script, [])  # the async snippet's anyio.run uses asyncio
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # a ResourceWarning lands here
    assert result.stdout.splitlines() == expected
