"""Awaitable file objects on a socket: ``asock.socket.makefile`` (and ``TLSSocket.makefile``).

A file reads and writes through two calls of its owner that take a deadline:
``recv(size, deadline) -> bytes`` and ``sendall(data, deadline)``. Each call of
the file computes one deadline from the owner's timeout when it starts and
spends it over every receive or send it makes, as ``sendall`` does.

Nothing is lost when a call is interrupted (a timeout, a cancellation, a
reset peer): bytes received are appended to the file's read buffer in the
same step as the system call that returned them, and a read only takes them
out of the buffer once it returns. Bytes written go into the write buffer
before anything is sent, and leave it only once the kernel took them. So the
next call carries on where the interrupted one stopped. (The stdlib's file
refuses every call after a timeout: its buffer may have lost data.)

The deadline-taking receive and send helpers for a plain ``asock.socket``
are here too; ``asock._tls`` reads and writes its ciphertext through them.
"""

from __future__ import annotations

import codecs
import io
import locale
import operator
import os
import socket as _stdlib
from collections.abc import Awaitable, Callable
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, TypeVar, overload

from asock_core import operations as ops
from asock_core.socket_base import READ, WRITE

if TYPE_CHECKING:
    import anyio
    from typing_extensions import Buffer

    from ._socket import socket

T = TypeVar("T")

#: The deadline of a call in non-blocking mode: it never waits, and raises the
#: BlockingIOError of its first attempt instead.
NO_WAIT = float("-inf")
_DONTWAIT = int(getattr(_stdlib, "MSG_DONTWAIT", 0))

#: How much a read to the end of the stream asks for at a time, and how many
#: bytes a text file decodes at a time (io.TextIOWrapper's chunk).
_READALL_CHUNK = 64 * 1024
_TEXT_CHUNK = 8192

_BINARY_MODES = Literal[
    "rb", "br", "wb", "bw", "rwb", "rbw", "wrb", "wbr", "brw", "bwr", "b"
]
_TEXT_MODES = Literal["r", "w", "rw", "wr", ""]


def call_deadline(timeout: float | None) -> float | None:
    """The deadline of a call that starts now under ``timeout``.

    ``None`` for no timeout, :data:`NO_WAIT` for non-blocking mode, else a
    monotonic time.
    """
    if timeout is None:
        return None
    if timeout == 0.0:
        return NO_WAIT
    return monotonic() + timeout


def _note_progress(exc: BaseException, sent: int) -> None:
    try:
        exc.bytes_sent = sent  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - exceptions with __slots__
        pass


class Guard(Protocol):
    """How a call awaits each of its waits; a file's guard lets close() interrupt them."""

    def __call__(self, wait: Callable[..., Awaitable[T]], /, *args: Any) -> Awaitable[T]:
        """Await ``wait(*args)`` and return its result."""


async def unguarded(wait: Callable[..., Awaitable[T]], /, *args: Any) -> T:
    """The :class:`Guard` that just awaits."""
    return await wait(*args)


async def recv_by(s: socket, size: int, deadline: float | None, guard: Guard) -> bytes:
    """Receive up to ``size`` bytes from ``s``, waiting until ``deadline`` at the latest.

    Returns ``b""`` at the end of the stream. Raises ``TimeoutError`` past
    the deadline, ``BlockingIOError`` for :data:`NO_WAIT`, OSError otherwise.
    Each wait goes through ``guard``. A cancelled or timed-out call took
    nothing from the kernel.
    """
    while True:
        try:
            return await s.recv(size, _DONTWAIT)
        except BlockingIOError:
            if deadline == NO_WAIT:
                raise
        await guard(ops.wait_until, s, READ, deadline)


async def recv_into_by(
    s: socket, buffer: Buffer, nbytes: int, flags: int, deadline: float | None, guard: Guard
) -> int:
    """``recv_into(buffer, nbytes, flags)`` on ``s``, waiting until ``deadline`` at the latest.

    Waits and raises as :func:`recv_by` does.
    """
    while True:
        try:
            return await s.recv_into(buffer, nbytes, flags | _DONTWAIT)
        except BlockingIOError:
            if deadline == NO_WAIT:
                raise
        await guard(ops.wait_until, s, READ, deadline)


async def sendall_by(s: socket, data: Buffer, deadline: float | None, guard: Guard) -> None:
    """Send all of ``data`` on ``s``, waiting until ``deadline`` at the latest.

    Each wait goes through ``guard``. Raises as ``socket.sendall`` does;
    whatever exception ends the call, a cancellation included, carries
    ``bytes_sent``.
    """
    sent = 0
    with memoryview(data) as view:
        chunk = view if view.itemsize == 1 and view.ndim == 1 else view.cast("B")
        total = chunk.nbytes
        try:
            while sent < total:
                try:
                    sent += await s.send(chunk[sent:], _DONTWAIT)
                    continue
                except BlockingIOError:
                    if deadline == NO_WAIT:
                        raise
                await guard(ops.wait_until, s, WRITE, deadline)
        except BaseException as exc:
            _note_progress(exc, sent)
            raise


class FileOwner(Protocol):
    """What a file needs of the socket it was made from."""

    _io_refs: int

    def gettimeout(self) -> float | None:
        """The timeout each call of the file starts its deadline from."""

    def fileno(self) -> int:
        """The descriptor."""

    def _decref_socketios(self) -> None:
        """Drop the reference a file held; closes the socket if it was closed."""


#: The owner's receive and send, each bounded by a deadline, waiting through a guard.
Receive = Callable[[int, float | None, Guard], Awaitable[bytes]]
SendAll = Callable[[memoryview, float | None, Guard], Awaitable[None]]


def _closed_file() -> ValueError:
    return ValueError("I/O operation on closed file.")


def _size_arg(size: int | None) -> int:
    if size is None:
        return -1
    try:
        return operator.index(size)
    except TypeError:
        raise TypeError(
            f"argument should be integer or None, not '{type(size).__name__}'"
        ) from None


def _split_lines(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


class SocketFile:
    """A binary file on a socket, made by ``makefile()`` with ``b`` in its mode.

    Its reading and writing methods are coroutines; ``close()`` too.
    ``buffering=0`` makes an unbuffered file: ``read(n)`` and ``readinto(b)``
    then receive once (fewer bytes than asked may come) and ``readline()``
    receives one byte at a time, never reading past the line. Otherwise
    ``read(n)`` and ``readinto(b)`` return as many bytes as asked, fewer only
    at the end of the stream.

    Every call takes one deadline from the socket's timeout and raises
    ``TimeoutError`` past it (``BlockingIOError`` in non-blocking mode, where
    it would wait). Whatever interrupts a call, a timeout, the event loop's
    cancellation or an OSError, the bytes already received stay buffered and
    the next read returns them, and bytes written stay buffered until the
    kernel took them: the file stays usable, unlike the stdlib's.

    One task at a time may read and one may write: a second one gets
    RuntimeError. ``close()`` from another task wakes a call waiting on the
    file with ``ValueError('I/O operation on closed file.')``.
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_owner",
        "_rbuf",
        "_readable",
        "_reading",
        "_recv",
        "_scopes",
        "_sendall",
        "_size",
        "_wbuf",
        "_writable",
        "_writing",
        "mode",
    )
    __module__ = "asock"

    def __init__(
        self,
        owner: FileOwner,
        recv: Receive,
        sendall: SendAll,
        *,
        reading: bool,
        writing: bool,
        buffering: int,
    ) -> None:
        self._owner = owner
        self._recv = recv
        self._sendall = sendall
        self._readable = reading
        self._writable = writing
        self._size = buffering
        self._rbuf = bytearray()
        self._wbuf = bytearray()
        self._closed = False
        self._reading = False
        self._writing = False
        self._scopes: set[anyio.CancelScope] = set()
        #: As the stdlib's SocketIO reports it: ``rb``, ``wb`` or ``rwb``.
        self.mode = ("r" if reading else "") + ("w" if writing else "") + "b"

    # -- state -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the file was closed."""
        return self._closed

    def readable(self) -> bool:
        """Whether the file was opened for reading. Raises ValueError once closed."""
        if self._closed:
            raise _closed_file()
        return self._readable

    def writable(self) -> bool:
        """Whether the file was opened for writing. Raises ValueError once closed."""
        if self._closed:
            raise _closed_file()
        return self._writable

    def seekable(self) -> bool:
        """Always False: a socket has no position. Raises ValueError once closed."""
        if self._closed:
            raise _closed_file()
        return False

    def fileno(self) -> int:
        """The socket's descriptor (-1 once the socket is closed). Never waits."""
        if self._closed:
            raise _closed_file()
        return self._owner.fileno()

    def _start_read(self) -> float | None:
        if self._closed:
            raise _closed_file()
        if not self._readable:
            raise io.UnsupportedOperation("File or stream is not readable.")
        if self._reading:
            raise RuntimeError("another task is already reading from this file")
        self._reading = True
        return call_deadline(self._owner.gettimeout())

    def _start_write(self) -> float | None:
        if self._closed:
            raise _closed_file()
        if not self._writable:
            raise io.UnsupportedOperation("File or stream is not writable.")
        if self._writing:
            raise RuntimeError("another task is already writing to this file")
        self._writing = True
        return call_deadline(self._owner.gettimeout())

    async def _guard(self, wait: Callable[..., Awaitable[T]], /, *args: Any) -> T:
        """Await one wait of a call so that close() from another task can end it.

        Only waits pay for the cancel scope (a few microseconds): a call
        that completes at once never gets here.
        """
        if self._closed:
            raise _closed_file()
        import anyio  # here, not at the top: `import asock` must not load anyio

        with anyio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                return await wait(*args)
            finally:
                self._scopes.discard(scope)
        raise _closed_file()  # close() cancelled the scope

    # -- reading -----------------------------------------------------------

    async def _fill(self, size: int, deadline: float | None) -> int:
        """Receive once, up to ``size`` bytes, into the buffer; 0 at the end of the stream."""
        data = await self._recv(size, deadline, self._guard)
        self._rbuf += data
        return len(data)

    async def _read(self, size: int, deadline: float | None) -> bytes:
        buf = self._rbuf
        if size < 0:
            while await self._fill(max(self._size, _READALL_CHUNK), deadline):
                pass
            size = len(buf)
        elif self._size == 0:
            if not buf and size:
                await self._fill(size, deadline)
        else:
            while len(buf) < size:
                if not await self._fill(max(self._size, size - len(buf)), deadline):
                    break
        data = bytes(buf[:size])
        del buf[:size]
        return data

    async def _read1(self, size: int, deadline: float | None) -> bytes:
        buf = self._rbuf
        if not buf and size:
            await self._fill(max(self._size, size) if size > 0 else self._size or 1, deadline)
        if size < 0:
            size = len(buf)
        data = bytes(buf[:size])
        del buf[:size]
        return data

    async def _readline(self, size: int, deadline: float | None) -> bytes:
        buf = self._rbuf
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end >= 0:
                end += 1
                break
            if 0 <= size <= len(buf):
                end = size
                break
            start = len(buf)
            if not await self._fill(self._size or 1, deadline):
                end = len(buf)
                break
        if 0 <= size < end:
            end = size
        line = bytes(buf[:end])
        del buf[:end]
        return line

    async def _readlines(self, hint: int, deadline: float | None) -> list[bytes]:
        # The lines are taken out of the buffer only once they are all in:
        # an interrupted call loses none of them.
        buf = self._rbuf
        scan = 0
        while True:
            if hint > 0:
                end = buf.find(b"\n", scan)
                while end >= 0:
                    scan = end + 1
                    if scan >= hint:
                        data = bytes(buf[:scan])
                        del buf[:scan]
                        return _split_lines(data)
                    end = buf.find(b"\n", scan)
            if not await self._fill(max(self._size, _READALL_CHUNK), deadline):
                data = bytes(buf)
                buf.clear()
                return _split_lines(data)

    async def read(self, size: int | None = -1) -> bytes:
        """Read ``size`` bytes, or to the end of the stream if ``size`` is negative or None.

        Waits for the data. Returns fewer bytes only at the end of the stream
        (or, unbuffered, what one receive got); ``b""`` there. Raises
        TypeError for a non-integer ``size``, ``io.UnsupportedOperation`` on a
        file not opened for reading, ValueError once closed, ``TimeoutError``
        past the deadline and OSError from the socket; data received before
        the error stays buffered.
        """
        size = _size_arg(size)
        deadline = self._start_read()
        try:
            return await self._read(size, deadline)
        finally:
            self._reading = False

    async def read1(self, size: int | None = -1) -> bytes:
        """Return buffered bytes, or what one receive of up to ``size`` bytes gets.

        Waits only if nothing is buffered; ``b""`` at the end of the stream.
        Raises as :meth:`read`.
        """
        size = _size_arg(size)
        deadline = self._start_read()
        try:
            return await self._read1(size, deadline)
        finally:
            self._reading = False

    async def readinto(self, b: Buffer) -> int:
        """Read into the writable buffer ``b``; return the number of bytes read.

        Fills ``b`` (unbuffered: receives once), fewer bytes only at the end
        of the stream. Raises TypeError for a read-only or non-buffer ``b``,
        else as :meth:`read`.
        """
        try:
            view = memoryview(b)
        except TypeError:
            raise TypeError(
                "readinto() argument must be read-write bytes-like object, "
                f"not {type(b).__name__}"
            ) from None
        with view:
            if view.readonly:
                raise TypeError(
                    "readinto() argument must be read-write bytes-like object, "
                    f"not {type(b).__name__}"
                )
            target = view.cast("B")
            deadline = self._start_read()
            try:
                data = await self._read(target.nbytes, deadline)
            finally:
                self._reading = False
            target[: len(data)] = data
            return len(data)

    async def readline(self, size: int | None = -1) -> bytes:
        """Read one line, up to and including ``b"\\n"`` (at most ``size`` bytes if given).

        Waits for the line; returns ``b""`` at the end of the stream and the
        last, unterminated line before it. Raises as :meth:`read`.
        """
        size = _size_arg(size)
        deadline = self._start_read()
        try:
            return await self._readline(size, deadline)
        finally:
            self._reading = False

    async def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Read lines to the end of the stream (or until they hold ``hint`` bytes).

        Waits for them. An interrupted call takes no line out of the buffer.
        Raises as :meth:`read`.
        """
        hint = _size_arg(hint)
        deadline = self._start_read()
        try:
            return await self._readlines(hint, deadline)
        finally:
            self._reading = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        """The next line (``async for line in file``); stops at the end of the stream."""
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    # -- writing -----------------------------------------------------------

    async def _write(self, data: memoryview, deadline: float | None) -> None:
        if self._size == 0:
            await self._sendall(data, deadline, self._guard)
            return
        self._wbuf += data
        if len(self._wbuf) >= self._size:
            await self._flush(deadline)

    async def _flush(self, deadline: float | None) -> None:
        buf = self._wbuf
        while buf:
            data = memoryview(bytes(buf))
            try:
                await self._sendall(data, deadline, self._guard)
            except BaseException as exc:
                del buf[: getattr(exc, "bytes_sent", 0)]
                raise
            del buf[: len(data)]

    async def write(self, b: Buffer) -> int:
        """Write the bytes-like ``b``; return its length.

        Buffered, the bytes go into the file's buffer, which is sent once it
        holds ``buffering`` bytes (waiting as needed); if sending fails, the
        bytes not sent stay buffered and go first with the next ``write`` or
        ``flush``: nothing is lost or sent twice. Unbuffered, all of ``b`` is
        sent and an error carries ``bytes_sent`` as ``sendall``'s does.
        Raises TypeError for a non-buffer, ``io.UnsupportedOperation`` on a
        file not opened for writing, ValueError once closed,
        ``TimeoutError`` past the deadline and OSError from the socket.
        """
        try:
            view = memoryview(b)
        except TypeError:
            raise TypeError(f"a bytes-like object is required, not '{type(b).__name__}'") from None
        with view:
            data = view if view.itemsize == 1 and view.ndim == 1 else view.cast("B")
            deadline = self._start_write()
            try:
                await self._write(data, deadline)
            finally:
                self._writing = False
            return data.nbytes

    async def flush(self) -> None:
        """Send whatever is buffered, waiting as needed; does nothing on a read-only file.

        Raises ValueError once closed, ``TimeoutError`` past the deadline and
        OSError from the socket; the bytes not sent stay buffered.
        """
        if self._closed:
            raise _closed_file()
        if not self._writable:
            return
        deadline = self._start_write()
        try:
            await self._flush(deadline)
        finally:
            self._writing = False

    # -- closing -----------------------------------------------------------

    async def close(self) -> None:
        """Flush a writer, then close the file; closing twice is harmless.

        Waits for the flush (unless another task is writing: its call then
        wakes with ValueError and the unsent bytes are dropped). Calls waiting
        on the file wake with ValueError. The socket's descriptor is closed
        once the socket and every file made from it are closed. The file is
        closed even if the flush raises (``TimeoutError``, OSError, a
        cancellation), and the error propagates.
        """
        if self._closed:
            return
        try:
            if self._wbuf and not self._writing:
                self._writing = True
                try:
                    await self._flush(call_deadline(self._owner.gettimeout()))
                finally:
                    self._writing = False
        finally:
            self._release()

    def _release(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._rbuf.clear()
        self._wbuf.clear()
        for scope in list(self._scopes):
            scope.cancel()
        self._owner._decref_socketios()

    def __del__(self) -> None:
        # As the stdlib's files: one dropped unclosed lets go of the socket
        # (nothing is flushed: that would need to wait).
        if not getattr(self, "_closed", True):
            self._closed = True
            self._owner._decref_socketios()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self._owner.fileno()}"
        return f"<asock.SocketFile mode={self.mode!r} {state}>"


class SocketTextFile:
    """A text file on a socket, made by ``makefile()`` without ``b`` in its mode.

    It decodes and encodes with ``encoding`` and ``errors`` through an
    incremental decoder and encoder, and treats newlines as
    ``io.TextIOWrapper`` does: with ``newline=None`` reading translates
    ``\\r\\n`` and ``\\r`` to ``\\n`` and writing translates ``\\n`` to
    ``os.linesep``; ``""`` splits lines at any of them without translating;
    ``"\\n"``, ``"\\r"`` or ``"\\r\\n"`` end lines there (and writing
    translates ``\\n`` to it). The bytes go through :attr:`buffer`, a
    :class:`SocketFile`, so timeouts, cancellation, the one-reader and
    one-writer rule and closing work as there; text decoded but not yet
    returned stays buffered across an interrupted call.
    """

    __slots__ = (
        "__weakref__",
        "_decoder",
        "_encoder",
        "_line_end",
        "_text",
        "_write_newline",
        "buffer",
        "encoding",
        "errors",
        "mode",
    )
    __module__ = "asock"

    def __init__(
        self,
        buffer: SocketFile,
        mode: str,
        encoding: str,
        errors: str,
        newline: str | None,
    ) -> None:
        #: The binary file underneath.
        self.buffer = buffer
        #: The mode given to ``makefile``.
        self.mode = mode
        #: The encoding's name, as ``io.TextIOWrapper`` reports it.
        self.encoding = encoding
        #: The error handler's name.
        self.errors = errors
        decoder: codecs.IncrementalDecoder | io.IncrementalNewlineDecoder
        decoder = codecs.getincrementaldecoder(encoding)(errors)
        if newline is None or newline == "":
            decoder = io.IncrementalNewlineDecoder(decoder, translate=newline is None)
        self._decoder = decoder
        self._encoder = codecs.getincrementalencoder(encoding)(errors)
        # The line end readline looks for; "" means any of \r, \n and \r\n.
        self._line_end: str = "\n" if newline is None else newline
        self._write_newline: str
        if newline is None:
            self._write_newline = os.linesep if os.linesep != "\n" else ""
        else:
            self._write_newline = "" if newline == "\n" else newline
        self._text = ""

    @property
    def closed(self) -> bool:
        """Whether the file was closed."""
        return self.buffer.closed

    @property
    def newlines(self) -> str | tuple[str, ...] | None:
        """The kinds of newline read so far, for ``newline=None`` or ``""`` (else None)."""
        return getattr(self._decoder, "newlines", None)

    def readable(self) -> bool:
        """Whether the file was opened for reading. Raises ValueError once closed."""
        return self.buffer.readable()

    def writable(self) -> bool:
        """Whether the file was opened for writing. Raises ValueError once closed."""
        return self.buffer.writable()

    def seekable(self) -> bool:
        """Always False. Raises ValueError once closed."""
        return self.buffer.seekable()

    def fileno(self) -> int:
        """The socket's descriptor. Never waits."""
        return self.buffer.fileno()

    # -- reading -----------------------------------------------------------

    async def _fill(self, deadline: float | None) -> bool:
        """Decode the next bytes into the text buffer; False at the end of the stream."""
        data = await self.buffer._read1(_TEXT_CHUNK, deadline)
        self._text += self._decoder.decode(data, final=not data)
        return bool(data)

    def _find_line_end(self, start: int) -> int:
        """The index just after the first line end at or after ``start``, or -1."""
        return _line_end_in(self._text, start, self._line_end)

    async def read(self, size: int | None = -1) -> str:
        """Read ``size`` characters, or to the end of the stream if ``size`` is negative or None.

        Waits for them; returns fewer only at the end of the stream (``""``
        there). Raises TypeError for a non-integer ``size``,
        ``io.UnsupportedOperation`` on a file not opened for reading,
        ValueError once closed, UnicodeDecodeError for undecodable bytes
        (with ``errors="strict"``), ``TimeoutError`` past the deadline and
        OSError from the socket; what was received before stays buffered.
        """
        size = _size_arg(size)
        buffer = self.buffer
        deadline = buffer._start_read()
        try:
            if size < 0:
                # The bytes stay in the binary buffer until all are in, then
                # are decoded at once.
                while await buffer._fill(_READALL_CHUNK, deadline):
                    pass
                data = bytes(buffer._rbuf)
                buffer._rbuf.clear()
                text = self._text + self._decoder.decode(data, final=True)
                self._text = ""
                return text
            while len(self._text) < size:
                if not await self._fill(deadline):
                    break
            text = self._text[:size]
            self._text = self._text[size:]
            return text
        finally:
            buffer._reading = False

    async def _readline(self, size: int, deadline: float | None) -> str:
        start = 0
        while True:
            end = self._find_line_end(start)
            if end >= 0:
                break
            if 0 <= size <= len(self._text):
                end = size
                break
            start = max(0, len(self._text) - 1)
            if not await self._fill(deadline):
                end = len(self._text)
                break
        if 0 <= size < end:
            end = size
        line = self._text[:end]
        self._text = self._text[end:]
        return line

    async def readline(self, size: int | None = -1) -> str:
        """Read one line, its line end included (at most ``size`` characters if given).

        Waits for the line; returns ``""`` at the end of the stream. Raises
        as :meth:`read`.
        """
        size = _size_arg(size)
        deadline = self.buffer._start_read()
        try:
            return await self._readline(size, deadline)
        finally:
            self.buffer._reading = False

    async def readlines(self, hint: int | None = -1) -> list[str]:
        """Read lines to the end of the stream (or until they hold ``hint`` characters).

        Waits for them. An interrupted call takes no line out of the buffer.
        Raises as :meth:`read`.
        """
        hint = _size_arg(hint)
        deadline = self.buffer._start_read()
        try:
            # As SocketFile.readlines: the lines leave the buffer all at once.
            scan = 0
            while True:
                if hint > 0:
                    end = self._find_line_end(scan)
                    while end >= 0 and end < hint:
                        scan = end
                        end = self._find_line_end(scan)
                    if end >= 0:
                        scan = end
                        break
                if not await self._fill(deadline):
                    scan = len(self._text)
                    break
            text = self._text[:scan]
            self._text = self._text[scan:]
            lines = []
            start = 0
            while start < len(text):
                end = _line_end_in(text, start, self._line_end)
                end = len(text) if end < 0 else end
                lines.append(text[start:end])
                start = end
            return lines
        finally:
            self.buffer._reading = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        """The next line (``async for line in file``); stops at the end of the stream."""
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    # -- writing -----------------------------------------------------------

    async def write(self, s: str) -> int:
        """Encode and write the string ``s``; return its length in characters.

        Buffered as :meth:`SocketFile.write`: waits only when the buffer is
        full, and bytes not sent stay buffered. Raises TypeError for a
        non-string, UnicodeEncodeError (with ``errors="strict"``),
        ``io.UnsupportedOperation`` on a file not opened for writing,
        ValueError once closed, ``TimeoutError`` and OSError.
        """
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        buffer = self.buffer
        deadline = buffer._start_write()
        try:
            text = s.replace("\n", self._write_newline) if self._write_newline else s
            await buffer._write(memoryview(self._encoder.encode(text)), deadline)
        finally:
            buffer._writing = False
        return len(s)

    async def flush(self) -> None:
        """Send whatever is buffered, as :meth:`SocketFile.flush`."""
        await self.buffer.flush()

    async def close(self) -> None:
        """Flush and close, as :meth:`SocketFile.close`."""
        self._text = ""
        await self.buffer.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<asock.SocketTextFile mode={self.mode!r} encoding={self.encoding!r}>"


def _line_end_in(text: str, start: int, line_end: str) -> int:
    """The index just after the first line end in ``text`` at or after ``start``, or -1.

    ``line_end`` is the newline to look for; ``""`` means universal newlines
    (``\r``, ``\n`` or ``\r\n``). The decoder holds back a final ``\r``
    until it sees what follows, so ``\r\n`` is never split across reads.
    """
    if line_end:
        found = text.find(line_end, start)
        return found + len(line_end) if found >= 0 else -1
    lf = text.find("\n", start)
    cr = text.find("\r", start, lf if lf >= 0 else len(text))
    if cr >= 0:
        return cr + 2 if text.startswith("\n", cr + 1) else cr + 1
    return lf + 1 if lf >= 0 else -1


def _text_settings(
    encoding: str | None, errors: str | None, newline: str | None
) -> tuple[str, str]:
    """Check the text arguments as io.TextIOWrapper does; return the encoding and errors."""
    if encoding is None:
        encoding = io.text_encoding(None, 3)
    if encoding == "locale":
        encoding = locale.getencoding()
    probe = io.TextIOWrapper(io.BytesIO(), encoding, errors, newline)
    try:
        return probe.encoding, str(probe.errors)
    finally:
        probe.detach()


def make_file(
    owner: FileOwner,
    recv: Receive,
    sendall: SendAll,
    mode: str = "r",
    buffering: int | None = None,
    *,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
) -> SocketFile | SocketTextFile:
    """The body of every ``makefile``: check the arguments, then make the file.

    The arguments are checked before the owner gains a reference, so a
    failed call leaves the socket as it was.
    """
    if not isinstance(mode, str):
        raise TypeError(f"mode must be str, not {type(mode).__name__}")
    if not set(mode) <= {"r", "w", "b"}:
        raise ValueError(f"invalid mode {mode!r} (only r, w, b allowed)")
    writing = "w" in mode
    reading = "r" in mode or not writing
    binary = "b" in mode
    size = -1 if buffering is None else operator.index(buffering)
    if size < 0:
        size = io.DEFAULT_BUFFER_SIZE
    if size == 0 and not binary:
        raise ValueError("unbuffered streams must be binary")
    if not binary:
        encoding, errors = _text_settings(encoding, errors, newline)
    file = SocketFile(owner, recv, sendall, reading=reading, writing=writing, buffering=size)
    owner._io_refs += 1
    if binary:
        return file
    assert encoding is not None and errors is not None
    return SocketTextFile(file, mode, encoding, errors, newline)


@overload
def socket_makefile(
    sock: socket,
    mode: _BINARY_MODES,
    buffering: int | None = None,
    *,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
) -> SocketFile: ...


@overload
def socket_makefile(
    sock: socket,
    mode: _TEXT_MODES = "r",
    buffering: int | None = None,
    *,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
) -> SocketTextFile: ...


@overload
def socket_makefile(
    sock: socket,
    mode: str,
    buffering: int | None = None,
    *,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
) -> SocketFile | SocketTextFile: ...


def socket_makefile(
    sock: socket,
    mode: str = "r",
    buffering: int | None = None,
    *,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
) -> SocketFile | SocketTextFile:
    """Return an awaitable file on the socket, as the stdlib's ``makefile`` (never waits).

    ``mode`` is made of ``r``, ``w`` and ``b`` (ValueError otherwise): with
    ``b`` a binary :class:`SocketFile`, without it a text
    :class:`SocketTextFile` using ``encoding``, ``errors`` and ``newline``
    as ``io.TextIOWrapper`` does (their errors too: LookupError, TypeError,
    ValueError). ``buffering`` is the buffer size (``None`` or negative:
    ``io.DEFAULT_BUFFER_SIZE``); 0, unbuffered, is allowed in binary mode
    only (ValueError otherwise). Reading and writing methods are
    coroutines, and so is ``close()``. The socket's timeout applies to each
    call of the file. The descriptor stays open until the socket and every
    file made from it are closed.
    """

    async def recv(size: int, deadline: float | None, guard: Guard) -> bytes:
        return await recv_by(sock, size, deadline, guard)

    async def sendall(data: memoryview, deadline: float | None, guard: Guard) -> None:
        await sendall_by(sock, data, deadline, guard)

    return make_file(
        sock, recv, sendall, mode, buffering, encoding=encoding, errors=errors, newline=newline
    )
