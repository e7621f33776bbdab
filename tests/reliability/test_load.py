"""Load: an asock echo server process holds N concurrent TCP connections from a client process.

Every connection must get its own echo while all N are open at once, on
each backend. The server's memory per connection (RSS growth from listening
to the peak, divided by N) is printed next to that of a plain uvloop
``asyncio.Protocol`` echo server measured in the same run; only correctness
is asserted (no timing or memory thresholds).

Both sizes run in the normal suite (10,000 connections take a few seconds per
backend); the 500-connection run still covers machines whose RLIMIT_NOFILE
hard limit is too low for 10,000 (there the big run skips, saying so).
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_load.py")
BACKENDS = ["asyncio", "uvloop", "trio"]
#: Seconds to wait for any one line from a process before calling it hung.
LINE_TIMEOUT = 120


class Peer:
    """A load-test process and a reader thread that queues its output lines."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, PEERS, *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": ROOT},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put("")  # end of output

    def expect(self, word: str) -> list[str]:
        """The next line, which must start with ``word``; its fields after it."""
        try:
            line = self.lines.get(timeout=LINE_TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no {word!r} line within {LINE_TIMEOUT} s") from None
        fields = line.split()
        if fields[:1] == ["fd-limit"]:
            pytest.skip(f"RLIMIT_NOFILE hard limit {fields[1]} is too low and can't be raised")
        assert fields[:1] == [word], (line, self.stderr())
        return fields[1:]

    def stderr(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def finish(self) -> None:
        assert self.process.wait(timeout=LINE_TIMEOUT) == 0, self.stderr()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@dataclass
class Run:
    impl: str
    connections: int
    bytes_per_connection: float


def load(impl: str, connections: int) -> Run:
    """Run one server and one client; check every echo; return the memory figure."""
    server = Peer("server", impl, str(connections))
    client = None
    try:
        port, baseline = server.expect("listening")
        client = Peer("client", port, str(connections))
        assert client.expect("echoed") == [str(connections)]
        count, peak = server.expect("peak")
        assert int(count) == connections
        client.release()
        client.expect("closed")
        client.finish()
        server.expect("done")
        server.finish()
    finally:
        for peer in (server, client):
            if peer is not None:
                peer.kill()
    return Run(impl, connections, (int(peak) - int(baseline)) / connections)


@pytest.fixture(scope="module")
def reference() -> Iterator[dict[int, Run]]:
    """uvloop Protocol server runs, by connection count, made once per module."""
    yield {}


def check_backend(backend: str, connections: int, reference: dict[int, Run]) -> None:
    if connections not in reference:
        reference[connections] = load("uvloop-protocol", connections)
    ours = load(f"asock-{backend}", connections)
    theirs = reference[connections]
    print(
        f"\n{connections} connections: asock on {backend}: "
        f"{ours.bytes_per_connection / 1024:.1f} KiB per connection; "
        f"uvloop Protocol: {theirs.bytes_per_connection / 1024:.1f} KiB per connection"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_echo_server_holds_500_connections(
    backend: str, reference: dict[int, Run], no_fd_leak_sync: None
) -> None:
    check_backend(backend, 500, reference)


@pytest.mark.parametrize("backend", BACKENDS)
def test_echo_server_holds_10000_connections(
    backend: str, reference: dict[int, Run], no_fd_leak_sync: None
) -> None:
    check_backend(backend, 10_000, reference)
