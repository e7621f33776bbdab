"""The state every socket's calls read, and the sync front's blocking-mode fast calls.

:class:`SocketState` holds ``_sock`` (the stdlib socket), ``_timeout`` (the
socket's own timeout), ``_busy`` (calls under way, counted by the sync
front) and ``_closing`` (close() has begun). :class:`KernelCalls` gives the
sync front ``recv``, ``recv_into``, ``recvfrom``, ``send``, ``sendall`` and
``sendto``: in blocking mode each counts
itself in, makes the stdlib socket's call (which blocks in the kernel, one
system call, as the stdlib's own does), counts itself out and reports a
close() that happened meanwhile (``_leave_closed``). With a timeout, in
non-blocking mode, or when another thread made the descriptor non-blocking
meanwhile, the call goes to the front's ``_recv_waiting`` (``_recv_into_waiting``,
``_recvfrom_waiting``, ``_send_waiting``, ``_sendall_waiting``,
``_sendto_waiting``), which waits through the operation layer.

Both classes have a compiled twin in ``asock_core/_speedups.c``, built at
install time where a C compiler is found, and used unless the environment
sets ``ASOCK_PURE_PYTHON``. The compiled calls cost no Python frame: a
blocking program's recv and send then cost what the stdlib's do (hot row in
docs/performance.md). The two are kept line for line alike, and the test
suite runs on both (``.ci/run``).

``_busy`` is changed with ``+=``/``-=`` and no lock: under the GIL nothing
runs between the read and the write of an int attribute (no call, no jump
back), and the compiled twin changes it while it holds the GIL.
"""

from __future__ import annotations

import os
import socket as _stdlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn, Self

    from typing_extensions import Buffer

#: Sends never raise SIGPIPE (see asock_core.operations).
_NOSIGNAL = int(getattr(_stdlib, "MSG_NOSIGNAL", 0))
_DONTWAIT = int(getattr(_stdlib, "MSG_DONTWAIT", 0))


class SocketState:
    """The fields a socket's calls read: ``_sock``, ``_timeout``, ``_busy``, ``_closing``."""

    __slots__ = ("_busy", "_closing", "_sock", "_timeout")

    _sock: _stdlib.socket
    _timeout: float | None
    _busy: int
    _closing: bool

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        """A socket with no descriptor yet: timeout None, no call under way, not closing."""
        self = super().__new__(cls)
        self._timeout = None
        self._busy = 0
        self._closing = False
        return self


class KernelCalls(SocketState):
    """The sync front's blocking-mode recv, recv_into, recvfrom, send, sendall and sendto."""

    __slots__ = ()

    if TYPE_CHECKING:  # supplied by the front (asock_sync.socket)

        def _recv_waiting(self, bufsize: int, flags: int = 0) -> bytes: ...

        def _recv_into_waiting(self, buffer: Buffer, nbytes: int = 0, flags: int = 0) -> int: ...

        def _send_waiting(self, data: Buffer, flags: int = 0) -> int: ...

        def _recvfrom_waiting(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]: ...

        def _sendto_waiting(self, data: Buffer, *args: Any) -> int: ...

        def _sendall_waiting(self, data: Buffer, flags: int, sent: int) -> None: ...

        def _leave_closed(self, bytes_sent: int | None = None) -> NoReturn: ...

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Receive up to ``bufsize`` bytes; ``b""`` once the peer has closed.

        Blocks until data or EOF arrives, as the timeout allows: raises
        ``BlockingIOError`` in non-blocking mode or with MSG_DONTWAIT,
        ``TimeoutError`` when the timeout expires, OSError otherwise (EBADF
        if closed meanwhile).
        """
        if self._timeout is None:
            self._busy += 1
            try:
                if not self._closing:
                    return self._sock.recv(bufsize, flags)
            except BlockingIOError:
                pass  # another thread made the descriptor non-blocking meanwhile
            finally:
                self._busy -= 1
                if self._closing:
                    self._leave_closed()
        return self._recv_waiting(bufsize, flags)

    def recv_into(self, buffer: Buffer, nbytes: int = 0, flags: int = 0) -> int:
        """Receive into ``buffer``; return the number of bytes received. Blocks like recv."""
        if self._timeout is None:
            self._busy += 1
            try:
                if not self._closing:
                    return self._sock.recv_into(buffer, nbytes, flags)
            except BlockingIOError:
                pass
            finally:
                self._busy -= 1
                if self._closing:
                    self._leave_closed()
        return self._recv_into_waiting(buffer, nbytes, flags)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        """Receive up to ``bufsize`` bytes and the sender's address. Blocks like recv."""
        if self._timeout is None:
            self._busy += 1
            try:
                if not self._closing:
                    return self._sock.recvfrom(bufsize, flags)
            except BlockingIOError:
                pass
            finally:
                self._busy -= 1
                if self._closing:
                    self._leave_closed()
        return self._recvfrom_waiting(bufsize, flags)

    def send(self, data: Buffer, flags: int = 0) -> int:
        """Send what fits of ``data``; return the number of bytes sent (never 0).

        Blocks until at least one byte fits, as the timeout allows: raises
        ``BlockingIOError`` in non-blocking mode or with MSG_DONTWAIT,
        ``TimeoutError`` when the timeout expires, OSError (e.g.
        ``BrokenPipeError``) otherwise.
        """
        if self._timeout is None:
            self._busy += 1
            try:
                if not self._closing:
                    return self._sock.send(data, flags | _NOSIGNAL if type(flags) is int else flags)
            except BlockingIOError:
                pass
            finally:
                self._busy -= 1
                if self._closing:
                    self._leave_closed()
        return self._send_waiting(data, flags)

    def sendto(self, data: Buffer, *args: Any) -> int:
        """``sendto(data, address)`` or ``sendto(data, flags, address)``. Blocks like send.

        In blocking mode ``sendto(data, address)`` with an address tuple (the
        datagram path) is the stdlib's own call, which looks a host name up
        itself, blocking, as the sync front does anyway; made in the
        three-argument form with MSG_NOSIGNAL, as the operation layer makes it.
        """
        if self._timeout is None and len(args) == 1 and type(args[0]) is tuple:
            args = (_NOSIGNAL, args[0])
            self._busy += 1
            try:
                if not self._closing:
                    return self._sock.sendto(data, *args)
            except BlockingIOError:
                pass
            finally:
                self._busy -= 1
                if self._closing:
                    self._leave_closed()
        return self._sendto_waiting(data, *args)


    def sendall(self, data: Buffer, flags: int = 0) -> None:
        """Send all of ``data``; the timeout bounds the whole call.

        The exception that ends it early carries ``bytes_sent``. In blocking
        mode one send blocks in the kernel until all of it is queued, as the
        stdlib's sendall does; what a signal or a mode switch cuts short goes
        on through the front's ``_sendall_waiting``.
        """
        if (
            self._timeout is None
            and type(data) in (bytes, bytearray)
            and type(flags) is int
            and not flags & _DONTWAIT
        ):
            self._busy += 1
            sent = 0
            try:
                if not self._closing:
                    sent = self._sock.send(data, flags | _NOSIGNAL)
            except BlockingIOError:
                pass
            except BaseException as exc:
                self._busy -= 1
                exc.bytes_sent = 0  # type: ignore[attr-defined]
                if self._closing:
                    self._leave_closed(0)
                raise
            self._busy -= 1
            if self._closing:
                self._leave_closed(sent)
            if sent == len(data):  # type: ignore[arg-type]
                return None
            return self._sendall_waiting(data, flags, sent)
        return self._sendall_waiting(data, flags, 0)

#: Whether the compiled twin is in use.
COMPILED = False
if not os.environ.get("ASOCK_PURE_PYTHON"):
    try:
        from ._speedups import KernelCalls, SocketState  # noqa: F401
    except ImportError:  # not built (no compiler at install time): the Python twin serves
        pass
    else:
        COMPILED = True
