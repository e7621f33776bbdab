"""Real peers the reliability tests share: sockets in states that make calls wait."""

from __future__ import annotations

import select
import socket as stdlib_socket
import time
from dataclasses import dataclass, field

#: Generous guard (seconds) around anything that could hang: a hang fails the test.
GUARD = 10


@dataclass
class FullBacklog:
    """A listener whose accept queue is full, so a new connect() stays pending.

    ``listen(0)`` leaves room for one connection; once it is taken (and never
    accepted), Linux drops further SYNs and a connecting socket keeps waiting.
    """

    listener: stdlib_socket.socket
    fillers: list[stdlib_socket.socket] = field(default_factory=list)

    @classmethod
    def open(cls) -> FullBacklog:
        listener = stdlib_socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        self = cls(listener)
        connected = False
        deadline = time.monotonic() + GUARD
        while time.monotonic() < deadline:
            filler = stdlib_socket.socket()
            filler.setblocking(False)
            self.fillers.append(filler)
            filler.connect_ex(self.address)
            # A handshake with room in the queue completes at once on loopback
            # (even on a loaded machine, well within the wait); with the queue
            # full the SYN is dropped and retried only after a second.
            _, writable, _ = select.select([], [filler], [], 0.5)
            if writable:
                error = filler.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_ERROR)
                assert not error, f"filler connect failed: errno {error}"
                connected = True
            elif connected:
                return self  # one took the only place, the next one waits: full
        raise AssertionError("the accept queue never filled up")

    @property
    def address(self) -> tuple[str, int]:
        return self.listener.getsockname()  # type: ignore[no-any-return]

    def close(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.listener.close()


def fill_send_buffer(sock: stdlib_socket.socket) -> int:
    """Write to ``sock`` (non-blocking) until the kernel takes no more; return bytes written."""
    sock.setblocking(False)
    written = 0
    chunk = b"\0" * 65536
    while True:
        try:
            written += sock.send(chunk)
        except BlockingIOError:
            return written


def shrink_buffers(sock: stdlib_socket.socket) -> None:
    """Make the kernel buffers small so a large send has to wait."""
    sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, 4096)
    sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_RCVBUF, 4096)
