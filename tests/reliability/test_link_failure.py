"""A real link failure: two network namespaces joined by a veth pair.

The server runs in one namespace, the client in the other (``ip netns exec``),
each in its own process. While the client streams, the test takes the link
down: the client's timeout fires and reports ``bytes_sent``. The test brings
the link back: the transfer completes, and the server receives exactly the
number of bytes the client says it sent (every byte checked against the
pattern). The client runs on each asock backend and on asock_sync.

Needs root and iproute2 (``ip``); skips, saying which is missing, otherwise.
The namespaces (and with them the veth pair) are always removed.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_link_peer.py")
LINE_TIMEOUT = 60
CLIENT_ADDRESS = "10.213.77.1"
SERVER_ADDRESS = "10.213.77.2"


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


@dataclass
class Veth:
    """Two namespaces and the veth pair between them."""

    client_ns: str
    server_ns: str
    client_dev: str

    def set_link(self, state: str) -> None:
        ip("-n", self.client_ns, "link", "set", self.client_dev, state)


@pytest.fixture
def veth() -> Iterator[Veth]:
    if sys.platform != "linux":
        pytest.skip("network namespaces are Linux-only")
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces and a veth pair")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 is missing (no 'ip' command): apt-get install -y iproute2")
    tag = f"{os.getpid() % 100000}"
    link = Veth(f"asock-cli-{tag}", f"asock-srv-{tag}", f"asc{tag}")
    server_dev = f"ass{tag}"
    made: list[str] = []
    try:
        try:
            for ns in (link.client_ns, link.server_ns):
                ip("netns", "add", ns)
                made.append(ns)
            ip("link", "add", link.client_dev, "type", "veth", "peer", "name", server_dev)
        except RuntimeError as exc:
            pytest.skip(f"can't create namespaces or a veth pair here: {exc}")
        ip("link", "set", link.client_dev, "netns", link.client_ns)
        ip("link", "set", server_dev, "netns", link.server_ns)
        for ns, dev, address in (
            (link.client_ns, link.client_dev, CLIENT_ADDRESS),
            (link.server_ns, server_dev, SERVER_ADDRESS),
        ):
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield link
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        # Only left behind if moving it into its namespace failed.
        subprocess.run(["ip", "link", "del", link.client_dev], capture_output=True, timeout=30)


class Peer:
    """A process inside a namespace, with its output lines queued by a thread."""

    def __init__(self, namespace: str, *args: str) -> None:
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, PEER, *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": ROOT},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put("")

    def expect(self, word: str) -> list[str]:
        try:
            line = self.lines.get(timeout=LINE_TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no {word!r} line within {LINE_TIMEOUT} s") from None
        fields = line.split()
        if fields[:1] != [word]:
            self.process.kill()
            assert self.process.stderr is not None
            raise AssertionError(f"expected {word!r}, got {line!r}: {self.process.stderr.read()}")
        return fields[1:]

    def send_line(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=LINE_TIMEOUT)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("front", ["asyncio", "uvloop", "trio", "sync"])
def test_link_down_times_out_with_bytes_sent_and_resumes_exactly(
    front: str, veth: Veth, no_fd_leak_sync: None
) -> None:
    server = Peer(veth.server_ns, "server", SERVER_ADDRESS)
    client = None
    try:
        (port,) = server.expect("listening")
        client = Peer(veth.client_ns, "client", SERVER_ADDRESS, port, front)
        client.expect("streaming")
        veth.set_link("down")
        try:
            sent_before, bytes_sent = map(int, client.expect("timeout"))
        finally:
            veth.set_link("up")
        assert sent_before > 0
        assert 0 <= bytes_sent <= sent_before
        client.send_line()
        (total,) = map(int, client.expect("sent"))
        assert total == sent_before + (1 << 20)
        assert server.expect("received") == [str(total)]
        assert client.process.wait(timeout=LINE_TIMEOUT) == 0
        assert server.process.wait(timeout=LINE_TIMEOUT) == 0
    finally:
        for peer in (client, server):
            if peer is not None:
                peer.close()
