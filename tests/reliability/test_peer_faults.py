"""Peer faults: resets, closed peers, peers that stop reading, nobody listening.

* A peer that closes with ``SO_LINGER`` 0 sends RST: recv raises
  ConnectionResetError, whether it was already waiting or called later.
* Writing to a closed peer raises BrokenPipeError or ConnectionResetError,
  and never SIGPIPE: checked in a subprocess whose SIGPIPE action is the
  default one (which kills), for every sending method.
* A peer that stops reading: the sender's timeout fires, the exception says
  how many bytes left (``bytes_sent``), and the peer then reads exactly that
  many.
* connect to a port nobody listens on raises ConnectionRefusedError.
"""

from __future__ import annotations

import errno
import os
import socket as stdlib_socket
import struct
import subprocess
import sys
import textwrap
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

import asock
import asock_sync

from ._peers import GUARD

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def reset_on_close(sock: Any) -> None:
    """Make close() abort the connection with RST (SO_LINGER on, 0 seconds)."""
    sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_LINGER, struct.pack("ii", 1, 0))


async def tcp_pair() -> tuple[asock.socket, asock.socket]:
    listener = await asock.create_server(("127.0.0.1", 0))
    with listener:
        client = asock.socket()
        await client.connect(listener.getsockname())
        server, _ = await listener.accept()
    return client, server


def sync_tcp_pair() -> tuple[asock_sync.socket, asock_sync.socket]:
    with asock_sync.create_server(("127.0.0.1", 0)) as listener:
        client = asock_sync.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return client, server


# -- RST -------------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["while-waiting", "before-the-call"])
async def test_reset_makes_recv_raise_connection_reset(when: str, no_fd_leak: None) -> None:
    client, server = await tcp_pair()
    with client, server, anyio.fail_after(GUARD):
        reset_on_close(server)
        if when == "before-the-call":
            server.close()
            with pytest.raises(ConnectionResetError):
                await client.recv(100)
            return
        outcome: list[BaseException] = []

        async def receive() -> None:
            try:
                await client.recv(100)
            except OSError as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(receive)
            await wait_all_tasks_blocked()
            server.close()
        assert len(outcome) == 1
        assert isinstance(outcome[0], ConnectionResetError)


@pytest.mark.parametrize("method", ["recv", "recv_into", "recvfrom", "recvmsg"])
async def test_every_receive_method_reports_the_reset(method: str, no_fd_leak: None) -> None:
    client, server = await tcp_pair()
    with client, server, anyio.fail_after(GUARD):
        reset_on_close(server)
        server.close()
        args = (bytearray(10),) if method == "recv_into" else (10,)
        with pytest.raises(ConnectionResetError):
            await getattr(client, method)(*args)


def test_sync_reset_makes_recv_raise_connection_reset(no_fd_leak_sync: None) -> None:
    client, server = sync_tcp_pair()
    with client, server:
        client.settimeout(GUARD)
        reset_on_close(server)
        server.close()
        with pytest.raises(ConnectionResetError):
            client.recv(100)


async def test_sendall_to_a_reset_peer_reports_progress(no_fd_leak: None) -> None:
    client, server = await tcp_pair()
    with client, server, anyio.fail_after(GUARD):
        reset_on_close(server)
        server.close()
        await anyio.sleep(0)  # RST crosses loopback at once; one tick is plenty
        with pytest.raises((ConnectionResetError, BrokenPipeError)) as caught:
            await client.sendall(b"x" * 10_000_000)
        assert caught.value.bytes_sent == 0  # type: ignore[union-attr]


# -- writing to a closed peer, with SIGPIPE's default action ----------------------------

SIGPIPE_SCRIPT = textwrap.dedent(
    """
    import signal, sys, tempfile
    # The default action kills the process: a send that raised SIGPIPE would end it here.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    import anyio, asock, asock_sync

    def blob():
        f = tempfile.TemporaryFile()
        f.write(b"y" * 100_000)
        f.seek(0)
        return f

    SENDS = {
        "send": lambda s: s.send(b"x"),
        "sendall": lambda s: s.sendall(b"x" * 1_000_000),
        "sendto": lambda s: s.sendto(b"x", 0, PEER[s]),
        "sendmsg": lambda s: s.sendmsg([b"x"]),
        "sendfile": lambda s: s.sendfile(blob()),
    }

    def pairs(module):
        a, b = module.socketpair()
        yield "unix", a, b
        with module.create_server(("127.0.0.1", 0)) as listener:
            a = module.create_connection(listener.getsockname())
            b, _ = listener.accept()
        yield "tcp", a, b

    PEER = {}  # each TCP sender's peer address, taken while it was still connected

    def report(front, kind, name, exc):
        print(front, kind, name, type(exc).__name__, flush=True)

    for kind, a, b in pairs(asock_sync):
        with a, b:
            PEER[a] = a.getpeername()
            b.close()
            for name, send in SENDS.items():
                if kind == "unix" and name == "sendto":
                    continue
                try:
                    for _ in range(3):  # TCP may take the first bytes before the RST
                        send(a)
                except OSError as exc:
                    report("asock_sync", kind, name, exc)

    async def main():
        a, b = asock.socketpair()
        listener = await asock.create_server(("127.0.0.1", 0))
        c = asock.socket()
        await c.connect(listener.getsockname())
        d, _ = await listener.accept()
        listener.close()
        for kind, x, y in (("unix", a, b), ("tcp", c, d)):
            with x, y:
                PEER[x] = x.getpeername()
                y.close()
                for name, send in SENDS.items():
                    if kind == "unix" and name == "sendto":
                        continue
                    try:
                        for _ in range(3):
                            await send(x)
                    except OSError as exc:
                        report("asock", kind, name, exc)

    anyio.run(main, backend=sys.argv[1], backend_options=(
        {"use_uvloop": True} if sys.argv[2] == "uvloop" else {}))
    print("alive", flush=True)
    """
)


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_writing_to_a_closed_peer_never_raises_sigpipe(backend: str) -> None:
    # Run in a child: SIGPIPE's default action would kill the test process.
    anyio_backend = "asyncio" if backend == "uvloop" else backend
    result = subprocess.run(
        [sys.executable, "-c", SIGPIPE_SCRIPT, anyio_backend, backend],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert lines[-1] == "alive"
    outcomes = {tuple(line.split()[:3]): line.split()[3] for line in lines[:-1]}
    methods = ["send", "sendall", "sendto", "sendmsg", "sendfile"]
    expected = {
        (front, kind, name)
        for front in ("asock_sync", "asock")
        for kind in ("unix", "tcp")
        for name in methods
        if not (kind == "unix" and name == "sendto")
    }
    assert set(outcomes) == expected
    assert set(outcomes.values()) <= {"BrokenPipeError", "ConnectionResetError"}, outcomes


# -- a peer that stops reading ------------------------------------------------------------


async def drain(sock: asock.socket) -> int:
    total = 0
    while chunk := await sock.recv(1 << 20):
        total += len(chunk)
    return total


@pytest.mark.parametrize("method", ["sendall", "sendfile"])
async def test_timeout_against_a_stalled_reader_reports_bytes_sent(
    method: str, tmp_path: Any, no_fd_leak: None
) -> None:
    client, server = await tcp_pair()
    payload = os.urandom(1 << 16) * 128  # 8 MiB: far more than the buffers hold
    path = tmp_path / "payload"
    path.write_bytes(payload)
    with client, server, anyio.fail_after(GUARD):
        client.settimeout(0.2)
        with pytest.raises(TimeoutError) as caught:
            if method == "sendall":
                await client.sendall(payload)
            else:
                with open(path, "rb") as f:
                    await client.sendfile(f)
        sent = caught.value.bytes_sent  # type: ignore[attr-defined]
        assert 0 < sent < len(payload)
        client.shutdown(stdlib_socket.SHUT_WR)
        received = b""
        while chunk := await server.recv(1 << 20):
            received += chunk
        assert received == payload[:sent]


def test_sync_timeout_against_a_stalled_reader_reports_bytes_sent(
    no_fd_leak_sync: None,
) -> None:
    client, server = sync_tcp_pair()
    payload = os.urandom(1 << 16) * 128
    with client, server:
        client.settimeout(0.2)
        with pytest.raises(TimeoutError) as caught:
            client.sendall(payload)
        sent = caught.value.bytes_sent  # type: ignore[attr-defined]
        assert 0 < sent < len(payload)
        client.shutdown(stdlib_socket.SHUT_WR)
        server.settimeout(GUARD)
        received = bytearray()
        while chunk := server.recv(1 << 20):
            received += chunk
        assert received == payload[:sent]


# -- nobody listening ------------------------------------------------------------------


def unused_port() -> tuple[stdlib_socket.socket, int]:
    """A port bound but never listening (held, so nothing else can take it)."""
    holder = stdlib_socket.socket()
    holder.bind(("127.0.0.1", 0))
    return holder, holder.getsockname()[1]


@pytest.mark.parametrize("timeout", [None, 5.0])
async def test_connect_to_a_closed_port_is_refused(
    timeout: float | None, no_fd_leak: None
) -> None:
    holder, port = unused_port()
    with holder, anyio.fail_after(GUARD):
        with asock.socket() as s:
            s.settimeout(timeout)
            with pytest.raises(ConnectionRefusedError):
                await s.connect(("127.0.0.1", port))
        with asock.socket() as s:
            s.settimeout(timeout)
            assert await s.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED
        with pytest.raises(ConnectionRefusedError):
            await asock.create_connection(("127.0.0.1", port), timeout=timeout)


@pytest.mark.parametrize("timeout", [None, 5.0])
def test_sync_connect_to_a_closed_port_is_refused(
    timeout: float | None, no_fd_leak_sync: None
) -> None:
    holder, port = unused_port()
    with holder, asock_sync.socket() as s:
        s.settimeout(timeout)
        with pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))
        with pytest.raises(ConnectionRefusedError):
            asock_sync.create_connection(("127.0.0.1", port), timeout=timeout)
