"""``asock_sync.socket``: the blocking drop-in, a thin front over the operation layer.

Each I/O method runs the *same* coroutine from :mod:`asock._core.operations`
that ``asock`` awaits. Here the wait hook blocks the calling thread in
``poll`` and returns, so the coroutine never suspends and
:func:`~asock._core.operations.run_to_completion` finishes it in one step: no
event loop is involved. ``recv``, ``recv_into`` and ``send`` are the
operation layer's plain-function twins, which enter that coroutine only when
the first attempt would block.
"""

from __future__ import annotations

import io
import socket as _stdlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from asock._core import operations as ops
from asock._core.socket_base import SocketBase
from asock._drivers import blocking

if TYPE_CHECKING:
    from typing_extensions import Buffer

    import asock

class socket(SocketBase):
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

    __slots__ = ()
    __module__ = "asock_sync"

    _yields = False

    async def _wait(self, event: int, timeout: float | None) -> bool:
        return blocking.wait(self, event, timeout)

    @property
    def timeout(self) -> float | None:
        """The timeout, as ``gettimeout()`` returns it (read-only, as in the stdlib)."""
        return self._timeout

    def _accept(self) -> tuple[int, Any]:
        """Wait for a connection; return its bare descriptor and the peer's address.

        The stdlib's low-level accept, waiting like ``accept``.
        """
        return ops.run_to_completion(ops.accept_descriptor(self))

    def accept(self) -> tuple[socket, Any]:
        """Wait for a connection; return ``(socket, address)``.

        The new socket takes ``getdefaulttimeout()``, as with the stdlib.
        Blocks until a connection is pending, up to the timeout: raises
        ``BlockingIOError`` in non-blocking mode, ``TimeoutError`` when the
        timeout expires, OSError otherwise (EBADF if closed meanwhile).
        """
        return ops.run_to_completion(ops.accept(self))

    def bind(self, address: Any) -> None:
        """Bind to ``address``. A host name is resolved by the (blocking) stdlib call.

        Blocks only for that lookup. Raises ``gaierror`` or OSError (e.g. EADDRINUSE).
        """
        ops.run_to_completion(ops.bind(self, address))

    def connect(self, address: Any) -> None:
        """Connect to ``address``; blocks up to the timeout. Raises OSError or TimeoutError."""
        ops.run_to_completion(ops.connect(self, address))

    def connect_ex(self, address: Any) -> int:
        """Like ``connect`` but return the errno (0 on success) instead of raising it.

        Blocks as ``connect`` does; EWOULDBLOCK means the timeout expired.
        """
        return ops.run_to_completion(ops.connect_ex(self, address))

    recv = ops.recv_blocking

    recv_into = ops.recv_into_blocking

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        """Receive up to ``bufsize`` bytes and the sender's address. Blocks like recv."""
        return ops.run_to_completion(ops.recvfrom(self, bufsize, flags))

    def recvfrom_into(self, buffer: Buffer, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        """Receive into ``buffer``; return the count and the sender. Blocks like recv."""
        return ops.run_to_completion(ops.recvfrom_into(self, buffer, nbytes, flags))

    def recvmsg(self, *args: Any) -> tuple[bytes, list[Any], int, Any]:
        """``recvmsg(bufsize[, ancbufsize[, flags]])`` as in the stdlib. Blocks like recv."""
        return ops.run_to_completion(ops.recvmsg(self, *args))

    def recvmsg_into(self, *args: Any) -> tuple[int, list[Any], int, Any]:
        """``recvmsg_into(buffers[, ancbufsize[, flags]])`` as in the stdlib. Blocks like recv."""
        return ops.run_to_completion(ops.recvmsg_into(self, *args))

    send = ops.send_blocking

    def sendall(self, data: Buffer, flags: int = 0) -> None:
        """Send all of ``data``; the timeout bounds the whole call.

        The exception that ends it early carries ``bytes_sent``.
        """
        ops.run_to_completion(ops.sendall(self, data, flags))

    def sendto(self, data: Buffer, *args: Any) -> int:
        """``sendto(data, address)`` or ``sendto(data, flags, address)``. Blocks like send."""
        return ops.run_to_completion(ops.sendto(self, data, *args))

    def sendmsg(self, buffers: Iterable[Buffer], *args: Any) -> int:
        """``sendmsg(buffers[, ancdata[, flags[, address]]])`` as in the stdlib.

        Blocks like send.
        """
        return ops.run_to_completion(ops.sendmsg(self, buffers, *args))

    if hasattr(_stdlib.socket, "sendmsg_afalg"):

        def sendmsg_afalg(self, *args: Any, **kwargs: Any) -> int:
            """``sendmsg_afalg([msg], *, op[, iv[, assoclen[, flags]]])`` (Linux).

            Blocks like send.
            """
            return ops.run_to_completion(ops.sendmsg_afalg(self, *args, **kwargs))

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """Send a file with ``os.sendfile`` (or read/send); return the bytes sent.

        The timeout bounds the whole call. Raises ValueError in non-blocking mode.
        """
        return ops.run_to_completion(ops.sendfile(self, file, offset, count))

    def _sendfile_use_sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """``sendfile`` through ``os.sendfile`` only, as the stdlib's private method.

        Raises ``socket._GiveupOnSendfile`` before sending anything when the
        kernel can't send this file.
        """
        return ops.run_to_completion(ops.sendfile_kernel(self, file, offset, count))

    def _sendfile_use_send(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """``sendfile`` by reading and sending, as the stdlib's private method."""
        return ops.run_to_completion(ops.sendfile_copy(self, file, offset, count))

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
        import asock

        return asock.socket._take_over(self)


SocketType = socket
