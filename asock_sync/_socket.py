"""``asock_sync.socket``: the blocking drop-in, a thin front over the operation layer.

The descriptor's mode is the stdlib's: in blocking mode (timeout ``None``) it
is blocking, and a call blocks in the kernel, one system call as with the
stdlib. With a timeout, or in non-blocking mode, it is non-blocking, and each
call runs the *same* coroutine from :mod:`asock_core.operations` that
``asock`` awaits; its wait hook blocks the calling thread in ``poll``, so
:func:`~asock_core.operations.run_to_completion` finishes it in one step.

``close()`` from another thread wakes every thread blocked on the socket, in
the kernel or in ``poll``: each call counts itself in while it runs, and a
close that finds one shuts the socket down (which wakes them) and leaves the
descriptor to the last one out. See docs/semantics.md.
"""

from __future__ import annotations

import io
import socket as _stdlib
from _thread import allocate_lock
from collections.abc import Callable, Coroutine, Iterable

from asock_core import operations as ops
from asock_core.conversion import convert
from asock_core.drivers import blocking
from asock_core.kernel_calls import KernelCalls
from asock_core.socket_base import SocketBase, closed_socket_error

# typing is not imported at run time: it would be most of the import cost.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from typing import Any, NoReturn, TypeVar

    from typing_extensions import Buffer

    import asock

    T = TypeVar("T")



class socket(KernelCalls, SocketBase):
    """A blocking socket with the stdlib's interface and timeout semantics.

    ``socket(family=-1, type=-1, proto=-1, fileno=None)`` takes the stdlib's
    arguments and raises its errors. Blocking mode (timeout ``None``) waits as
    long as needed, non-blocking mode (``0.0``) raises ``BlockingIOError``
    instead of waiting, and timeout mode raises ``TimeoutError('timed out')``
    once the call's deadline passes (one deadline per call, however often it
    waits or is interrupted by a signal). Only ``accept``, ``connect``,
    ``connect_ex``, the ``recv*``/``send*`` methods and ``sendfile`` wait; every
    other method returns at once. Errors are the stdlib's: ``OSError`` and its
    subclasses for the system calls, ``TypeError``/``ValueError`` for bad
    arguments. Any thread may use it, several at once. ``close()`` from
    another thread wakes threads blocked on the socket with ``OSError(EBADF)``.
    """

    # _busy counts the calls under way and _closing is set by close() (both
    # in asock_core.kernel_calls.SocketState, which says why no lock guards
    # them). A call checks _closing after counting itself in, so either
    # close() sees the call or the call sees close().
    __slots__ = ("_mode_lock",)
    __module__ = "asock_sync"

    _kernel_blocks = True

    _mode_lock: threading.Lock

    def _adopt(self, sock: _stdlib.socket, timeout: float | None) -> None:
        self._busy = 0
        self._closing = False
        #: Held while the descriptor's mode changes, and by the attempts that
        #: take no MSG_DONTWAIT (accept, connect, sendfile) in timeout mode.
        self._mode_lock = allocate_lock()
        super()._adopt(sock, timeout)

    async def _wait(self, event: int, timeout: float | None) -> bool:
        # A close() under way shuts the socket down, which ends the poll. On a
        # datagram or listening socket the retried call would then only find
        # EAGAIN and poll again, so the wait itself reports the close.
        if not self._closing:
            woken = blocking.wait(self, event, timeout)
            if not self._closing:
                return woken
        raise closed_socket_error()

    def _set_timeout(self, timeout: float | None) -> None:
        with self._mode_lock:
            self._sock.setblocking(timeout is None)
            self._timeout = timeout

    def _attempt(self, fn: Callable[..., T], *args: Any) -> T:
        with self._mode_lock:
            if self._timeout is not None:
                return fn(*args)  # the descriptor is non-blocking while the lock is held
            # Switched to blocking mode since this call began: its own timeout
            # still holds, so this one attempt must not block in the kernel.
            sock = self._sock
            sock.setblocking(False)
            try:
                return fn(*args)
            finally:
                sock.setblocking(True)

    # -- running a call ------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run an operation of the operation layer, counted in (see close)."""
        self._busy += 1
        try:
            if self._closing:
                coro.close()
                raise closed_socket_error()
            result = ops.run_to_completion(coro)
        except BaseException as exc:
            self._busy -= 1
            if self._closing:
                self._leave_closed(getattr(exc, "bytes_sent", None))
            raise
        self._busy -= 1
        if self._closing:
            self._leave_closed()
        return result

    def _in_kernel(self, fn: Callable[..., T], op: Callable[..., Coroutine[Any, Any, T]],
                   *args: Any) -> T:
        """Blocking mode: ``fn(*args)`` blocks in the kernel, as the stdlib's call does.

        If another thread made the descriptor non-blocking meanwhile, the call
        waits through the operation layer's ``op`` instead.
        """
        self._busy += 1
        try:
            if not self._closing:
                return fn(*args)
        except BlockingIOError:
            pass
        finally:
            self._busy -= 1
            if self._closing:
                self._leave_closed()
        return self._run(op(self, *args))

    def _leave_closed(self, bytes_sent: int | None = None) -> NoReturn:
        # The socket was closed during (or before) this call: the last call out
        # closes the descriptor that close() left open for it. The call fails
        # with EBADF, keeping the bytes_sent of what the shutdown interrupted.
        if not self._busy and self._io_refs <= 0:
            self._sock.close()
        error = closed_socket_error()
        if bytes_sent is not None:
            error.bytes_sent = bytes_sent  # type: ignore[attr-defined]
        raise error from None

    # -- closing -------------------------------------------------------------

    def _real_close(self) -> None:
        self._closing = True
        if self._busy:
            # A thread may be blocked in the kernel on this socket, where
            # closing the descriptor would not wake it (Linux keeps it asleep).
            # Shutting the socket down does, for every socket type but a few
            # (docs/semantics.md); the last call out closes the descriptor.
            try:
                self._sock.shutdown(_stdlib.SHUT_RDWR)
            except OSError:
                pass
            if self._busy:
                return
        # Closing twice (here and in the last call out) is harmless: the
        # stdlib socket gives its descriptor up once.
        self._sock.close()

    def fileno(self) -> int:
        """Return the descriptor, or -1 once closed or detached. Never waits."""
        return -1 if self._closing else self._sock.fileno()

    @property
    def timeout(self) -> float | None:
        """The timeout, as ``gettimeout()`` returns it (read-only, as in the stdlib)."""
        return self._timeout

    # -- calls that wait -------------------------------------------------------

    def _accept(self) -> tuple[int, Any]:
        """Wait for a connection; return its bare descriptor and the peer's address.

        The stdlib's low-level accept, waiting like ``accept``.
        """
        return self._run(ops.accept_descriptor(self))

    def accept(self) -> tuple[socket, Any]:
        """Wait for a connection; return ``(socket, address)``.

        The new socket takes ``getdefaulttimeout()``, as with the stdlib.
        Blocks until a connection is pending, up to the timeout: raises
        ``BlockingIOError`` in non-blocking mode, ``TimeoutError`` when the
        timeout expires, OSError otherwise (EBADF if closed meanwhile).
        """
        return self._run(ops.accept(self))

    def bind(self, address: Any) -> None:
        """Bind to ``address``. A host name is resolved by the (blocking) stdlib call.

        Blocks only for that lookup. Raises ``gaierror`` or OSError (e.g. EADDRINUSE).
        """
        self._run(ops.bind(self, address))

    def connect(self, address: Any) -> None:
        """Connect to ``address``; blocks up to the timeout. Raises OSError or TimeoutError."""
        self._run(ops.connect(self, address))

    def connect_ex(self, address: Any) -> int:
        """Like ``connect`` but return the errno (0 on success) instead of raising it.

        Blocks as ``connect`` does; EWOULDBLOCK means the timeout expired.
        """
        return self._run(ops.connect_ex(self, address))

    # recv, recv_into, recvfrom, send, sendall and sendto come from
    # KernelCalls (compiled where it was built); with a timeout they wait here:

    def _recv_waiting(self, bufsize: int, flags: int = 0) -> bytes:
        return self._run(ops.recv(self, bufsize, flags))

    def _recv_into_waiting(self, buffer: Buffer, nbytes: int = 0, flags: int = 0) -> int:
        return self._run(ops.recv_into(self, buffer, nbytes, flags))

    def _send_waiting(self, data: Buffer, flags: int = 0) -> int:
        return self._run(ops.send(self, data, flags))

    def _recvfrom_waiting(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        return self._run(ops.recvfrom(self, bufsize, flags))

    def _sendto_waiting(self, data: Buffer, *args: Any) -> int:
        return self._run(ops.sendto(self, data, *args))

    def recvfrom_into(self, buffer: Buffer, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        """Receive into ``buffer``; return the count and the sender. Blocks like recv."""
        if self._timeout is None:
            return self._in_kernel(
                self._sock.recvfrom_into, ops.recvfrom_into, buffer, nbytes, flags
            )
        return self._run(ops.recvfrom_into(self, buffer, nbytes, flags))

    def recvmsg(self, *args: Any) -> tuple[bytes, list[Any], int, Any]:
        """``recvmsg(bufsize[, ancbufsize[, flags]])`` as in the stdlib. Blocks like recv."""
        if self._timeout is None:
            return self._in_kernel(self._sock.recvmsg, ops.recvmsg, *args)
        return self._run(ops.recvmsg(self, *args))

    def recvmsg_into(self, *args: Any) -> tuple[int, list[Any], int, Any]:
        """``recvmsg_into(buffers[, ancbufsize[, flags]])`` as in the stdlib. Blocks like recv."""
        if self._timeout is None:
            return self._in_kernel(self._sock.recvmsg_into, ops.recvmsg_into, *args)
        return self._run(ops.recvmsg_into(self, *args))

    def _sendall_waiting(self, data: Buffer, flags: int, sent: int) -> None:
        if not sent:
            self._run(ops.sendall(self, data, flags))
            return
        # What a signal or a mode switch cut short of a blocking-mode send
        # goes on here, counted in bytes_sent.
        try:
            self._run(ops.sendall(self, memoryview(data)[sent:], flags))
        except BaseException as exc:
            exc.bytes_sent = sent + getattr(exc, "bytes_sent", 0)  # type: ignore[attr-defined]
            raise

    def sendmsg(self, buffers: Iterable[Buffer], *args: Any) -> int:
        """``sendmsg(buffers[, ancdata[, flags[, address]]])`` as in the stdlib.

        Blocks like send.
        """
        return self._run(ops.sendmsg(self, buffers, *args))

    if hasattr(_stdlib.socket, "sendmsg_afalg"):

        def sendmsg_afalg(self, *args: Any, **kwargs: Any) -> int:
            """``sendmsg_afalg([msg], *, op[, iv[, assoclen[, flags]]])`` (Linux).

            Blocks like send.
            """
            return self._run(ops.sendmsg_afalg(self, *args, **kwargs))

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """Send a file with ``os.sendfile`` (or read/send); return the bytes sent.

        The timeout bounds the whole call. Raises ValueError in non-blocking mode.
        """
        return self._run(ops.sendfile(self, file, offset, count))

    def _sendfile_use_sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """``sendfile`` through ``os.sendfile`` only, as the stdlib's private method.

        Raises ``socket._GiveupOnSendfile`` before sending anything when the
        kernel can't send this file.
        """
        return self._run(ops.sendfile_kernel(self, file, offset, count))

    def _sendfile_use_send(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """``sendfile`` by reading and sending, as the stdlib's private method."""
        return self._run(ops.sendfile_copy(self, file, offset, count))

    def makefile(
        self, mode: str = "r", buffering: int | None = None, *,
        encoding: str | None = None, errors: str | None = None, newline: str | None = None,
    ) -> Any:
        """Return a file object on the socket, as the stdlib's ``makefile``.

        Only modes made of ``r``, ``w`` and ``b`` are allowed (ValueError
        otherwise). The socket stays open until the file is closed too.
        """
        if not set(mode) <= {"r", "w", "b"}:
            raise ValueError(f"invalid mode {mode!r} (only r, w, b allowed)")
        writing = "w" in mode
        reading = "r" in mode or not writing
        raw = _stdlib.SocketIO(self, ("r" if reading else "") + ("w" if writing else ""))  # type: ignore[arg-type]
        self._io_refs += 1
        if buffering is None or buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
        binary = "b" in mode
        if buffering == 0:
            if not binary:
                raise ValueError("unbuffered streams must be binary")
            return raw
        buffer: io.BufferedIOBase
        if reading and writing:
            buffer = io.BufferedRWPair(raw, raw, buffering)
        elif reading:
            buffer = io.BufferedReader(raw, buffering)
        else:
            buffer = io.BufferedWriter(raw, buffering)
        if binary:
            return buffer
        text = io.TextIOWrapper(buffer, io.text_encoding(encoding), errors, newline)  # type: ignore[type-var]
        text.mode = mode  # type: ignore[misc]
        return text

    if hasattr(_stdlib.socket, "share"):  # pragma: no cover - Windows only

        def share(self, process_id: int) -> bytes:
            """Return bytes that ``fromshare`` turns into this socket in ``process_id``."""
            return self._sock.share(process_id)  # type: ignore[attr-defined,no-any-return,unused-ignore]

    def to_async(self) -> asock.socket:
        """Hand this socket to async code as an ``asock.socket``.

        Same descriptor (no copy), same timeout; this object is left detached.
        Never waits.
        """
        return convert(self, "asock")  # type: ignore[return-value]


SocketType = socket
