"""TLS over an asock socket: :func:`wrap_tls` and :class:`TLSSocket`.

The TLS protocol runs in an ``ssl.SSLObject`` over two ``ssl.MemoryBIO``s;
the ciphertext moves through the asock socket's own awaitable calls, never
through a blocking ``ssl.SSLSocket``. What the memory BIOs make possible:

- Receiving is lossless. Ciphertext goes into the incoming BIO in the same
  step as the system call that read it, and every record is decrypted at
  once into a plaintext buffer (:meth:`TLSSocket.pending` counts it). A
  ``recv`` interrupted while it waits leaves both where they are.
- Reading never goes past a record: the socket is first read with
  ``MSG_PEEK``, the records in what was seen are fed to the TLS object one
  at a time, and only what was fed is then taken from the kernel. Once the
  peer's close_notify is in, nothing after it is read, so :meth:`unwrap`
  hands back a plain socket whose next byte is the peer's first plaintext
  byte.
- Sending is resumable. Plaintext goes into the TLS object one record
  (16 KiB) at a time and its ciphertext is sent before the next record is
  made; ciphertext not yet sent when a call is interrupted is kept and goes
  first with the next call. So ``bytes_sent`` on the exception that ends
  ``sendall`` is exact: ``sendall(data[exc.bytes_sent:])`` sends the rest.

Two tasks may use one TLSSocket at once, one receiving and one sending.
Either may need to move ciphertext the other way (a send during a
renegotiation needs reads; a read may produce a TLS 1.3 KeyUpdate reply), so
each direction of ciphertext has a turn: one task at a time reads (or
sends) ciphertext, and another that needs the same waits for it to finish,
then looks again.
"""

from __future__ import annotations

import errno
import operator
import os
import socket as _stdlib
import ssl
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, Self, overload

from ._makefile import (
    _BINARY_MODES,
    _TEXT_MODES,
    NO_WAIT,
    Guard,
    SocketFile,
    SocketTextFile,
    call_deadline,
    make_file,
    recv_into_by,
    sendall_by,
    unguarded,
)
from ._socket import socket

if TYPE_CHECKING:
    import anyio
    from typing_extensions import Buffer

#: How much plaintext goes into one record (TLS's largest).
_PIECE = 16384
#: How much ciphertext one read looks at (MSG_PEEK), and how much plaintext
#: one SSLObject.read takes.
_PEEK_SIZE = 65536
_HEADER = 5  # a TLS record header: type, version (2 bytes), length (2 bytes)
_DONTWAIT = int(getattr(_stdlib, "MSG_DONTWAIT", 0))
_PEEK = int(_stdlib.MSG_PEEK)


def _closed_error() -> OSError:
    return OSError(errno.EBADF, os.strerror(errno.EBADF))


def _eof_error() -> ssl.SSLEOFError:
    return ssl.SSLEOFError(ssl.SSL_ERROR_EOF, "EOF occurred in violation of protocol")


def _note_progress(exc: BaseException, sent: int) -> None:
    try:
        exc.bytes_sent = sent  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - exceptions with __slots__
        pass


async def _wait_event(event: anyio.Event, deadline: float | None) -> None:
    """Wait for ``event`` until ``deadline`` (TimeoutError; BlockingIOError for NO_WAIT)."""
    if deadline is None:
        await event.wait()
        return
    if deadline == NO_WAIT:
        raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
    import anyio  # here, not at the top: `import asock` must not load anyio

    with anyio.move_on_after(deadline - monotonic()):
        await event.wait()
        return
    raise TimeoutError("timed out")


class _Turn:
    """One task at a time moves ciphertext one way; others wait until it is done."""

    __slots__ = ("_done", "busy")

    def __init__(self) -> None:
        self.busy = False
        self._done: anyio.Event | None = None

    def take(self) -> bool:
        """Take the turn if nobody has it; return whether it was taken."""
        if self.busy:
            return False
        self.busy = True
        return True

    def give(self) -> None:
        """End the turn and wake whoever waits for it."""
        self.busy = False
        done, self._done = self._done, None
        if done is not None:
            done.set()

    async def wait(self, deadline: float | None, guard: Guard) -> None:
        """Wait until the task that has the turn ends it (made only when someone waits)."""
        if self._done is None:
            import anyio  # here, not at the top: `import asock` must not load anyio

            self._done = anyio.Event()
        await guard(_wait_event, self._done, deadline)


def _size(value: Any, name: str) -> int:
    size = operator.index(value)
    if size < 0:
        raise ValueError(f"negative buffersize in {name}")
    return size


def _no_flags(flags: int, cls: type) -> None:
    if flags != 0:
        raise ValueError(f"non-zero flags not allowed in calls to recv() on {cls}")


class TLSSocket:
    """A TLS connection over an :class:`asock.socket`, returned by :func:`asock.wrap_tls`.

    The handshake is done by the time you have one. ``recv``, ``recv_into``,
    ``send``, ``sendall``, ``do_handshake`` and ``unwrap`` are coroutines;
    they follow the socket's timeout, one deadline per call
    (``TimeoutError`` past it, ``BlockingIOError`` in non-blocking mode
    where they would wait). ``makefile`` gives an awaitable file, as on
    ``asock.socket``. The other methods never wait.

    Guarantees: a ``recv`` interrupted while waiting (timeout, cancellation)
    loses no data, decrypted or not; the exception that ends ``sendall``
    carries ``bytes_sent`` and the TLSSocket stays usable, so
    ``sendall(data[exc.bytes_sent:])`` sends exactly the rest; ``close()``
    from another task wakes a task waiting in ``recv`` with
    ``OSError(EBADF)``. One task at a time may receive and one may send:
    a second one gets RuntimeError. ``close()`` sends no close_notify (as
    ``ssl.SSLSocket.close()``); ``unwrap()`` does.

    There is no public constructor: use :func:`asock.wrap_tls`.
    """

    __slots__ = (
        "__weakref__",
        "_body_left",
        "_closed",
        "_ended",
        "_established",
        "_failure",
        "_header",
        "_incoming",
        "_io_refs",
        "_outgoing",
        "_peer_closed",
        "_plain",
        "_raw_eof",
        "_reader",
        "_receiving",
        "_scratch",
        "_sending",
        "_sock",
        "_ssl",
        "_unsent",
        "_unwrapped",
        "_writer",
        "suppress_ragged_eofs",
    )
    __module__ = "asock"

    _sock: socket
    _ssl: ssl.SSLObject
    _incoming: ssl.MemoryBIO
    _outgoing: ssl.MemoryBIO
    suppress_ragged_eofs: bool
    _plain: bytearray
    _unsent: bytes
    _scratch: bytearray
    _header: bytearray
    _body_left: int
    _established: bool
    _peer_closed: bool
    _ended: bool
    _raw_eof: bool
    _failure: BaseException | None
    _unwrapped: bool
    _receiving: bool
    _sending: bool
    _reader: _Turn
    _writer: _Turn
    _io_refs: int
    _closed: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            f"{type(self).__name__} does not have a public constructor. "
            "Instances are returned by asock.wrap_tls()."
        )

    @classmethod
    def _create(
        cls,
        sock: socket,
        context: ssl.SSLContext,
        server_side: bool,
        server_hostname: str | bytes | None,
        suppress_ragged_eofs: bool,
        session: ssl.SSLSession | None,
    ) -> Self:
        self = cls.__new__(cls)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
            session=session,
        )
        self._sock = sock
        self.suppress_ragged_eofs = bool(suppress_ragged_eofs)
        self._plain = bytearray()
        self._unsent = b""
        self._scratch = bytearray(_PEEK_SIZE)
        self._header = bytearray()
        self._body_left = 0
        self._established = False
        self._peer_closed = False  # the peer's close_notify is in
        self._ended = False  # no more plaintext will come (close_notify or a quiet EOF)
        self._raw_eof = False
        self._failure = None
        self._unwrapped = False
        self._receiving = False
        self._sending = False
        self._reader = _Turn()
        self._writer = _Turn()
        self._io_refs = 0
        self._closed = False
        return self

    # -- moving ciphertext -----------------------------------------------

    def _advance(self) -> bool:
        """Let the TLS object take in the records fed so far; True to stop feeding.

        Decrypted data goes to the plaintext buffer. Feeding stops at the
        peer's close_notify, at a quiet EOF and at a failure (kept, and
        raised by the call that needs the stream next).
        """
        if self._failure is not None or self._ended:
            return True
        sslobj = self._ssl
        try:
            if not self._established:
                sslobj.do_handshake()
                self._established = True
            while True:
                data = sslobj.read(_PEEK_SIZE)
                if not data:
                    self._peer_closed = self._ended = True
                    return True
                self._plain += data
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLZeroReturnError:
            # The peer's close_notify, read after ours went out (unwrap).
            self._peer_closed = self._ended = True
            return True
        except ssl.SSLEOFError as exc:
            if self._established and self.suppress_ragged_eofs:
                self._ended = True
            else:
                self._failure = exc
            return True
        except (ssl.SSLError, OSError, ValueError) as exc:
            self._failure = exc
            return True

    def _take(self, seen: int) -> None:
        """Feed the ``seen`` bytes just peeked at, record by record, then take them in.

        Synchronous from the peek to the read that consumes, so nothing can
        interrupt it: each byte is fed to the TLS object exactly once.
        """
        if seen == 0:
            self._raw_eof = True
            self._incoming.write_eof()
            self._advance()
            return
        view = memoryview(self._scratch)[:seen]
        header = self._header
        incoming = self._incoming
        fed = pos = 0
        stopped = False
        while pos < seen:
            if self._body_left:
                step = min(self._body_left, seen - pos)
                pos += step
                self._body_left -= step
                if self._body_left:
                    break
            else:
                piece = view[pos : pos + _HEADER - len(header)]
                header += piece
                pos += len(piece)
                if len(header) < _HEADER:
                    break
                self._body_left = (header[3] << 8) | header[4]
                header.clear()
                if self._body_left:
                    continue
            # A whole record ends at pos.
            incoming.write(view[fed:pos])
            fed = pos
            if self._advance():
                stopped = True
                break
        if not stopped and fed < pos:
            incoming.write(view[fed:pos])  # part of a record: no close_notify came before it
            fed = pos
        # Take exactly what was fed out of the kernel: the same bytes, just peeked at.
        raw = self._sock._sock
        left = fed
        try:
            while left:
                got = raw.recv_into(view, left, _DONTWAIT)
                if not got:
                    raise ConnectionError("the socket lost data it had shown")  # pragma: no cover
                left -= got
        except BaseException as exc:  # pragma: no cover - the kernel had these bytes
            self._failure = exc
            raise

    async def _pull(self, deadline: float | None, guard: Guard) -> None:
        """Read ciphertext into the TLS object, or wait while another task does.

        Raises the stream's failure, or ``ssl.SSLEOFError`` when nothing more
        can come, instead of waiting in vain.
        """
        if self._failure is not None:
            raise self._failure
        if self._raw_eof or self._peer_closed:
            raise _eof_error()
        turn = self._reader
        if not turn.take():
            await turn.wait(deadline, guard)
            return
        try:
            seen = await recv_into_by(
                self._sock, self._scratch, 0, _PEEK, deadline, guard
            )
            self._take(seen)
        finally:
            turn.give()

    async def _send_unsent(self, deadline: float | None, guard: Guard) -> None:
        """Send the ciphertext made so far, in order; the caller has the writing turn."""
        outgoing = self._outgoing
        while True:
            if not self._unsent:
                if not outgoing.pending:
                    return
                self._unsent = outgoing.read()
            try:
                await sendall_by(self._sock, self._unsent, deadline, guard)
            except BaseException as exc:
                self._unsent = self._unsent[getattr(exc, "bytes_sent", 0) :]
                raise
            self._unsent = b""

    def _has_unsent(self) -> bool:
        return bool(self._unsent or self._outgoing.pending)

    async def _flush(self, deadline: float | None, guard: Guard) -> None:
        """Send every byte of ciphertext made so far, waiting for the writing turn."""
        turn = self._writer
        while self._has_unsent():
            if not turn.take():
                await turn.wait(deadline, guard)
                continue
            try:
                await self._send_unsent(deadline, guard)
            finally:
                turn.give()

    async def _flush_now(self) -> None:
        """Send what ciphertext fits without waiting, unless another task is sending.

        For what reading produced (a TLS 1.3 KeyUpdate reply, a renegotiation
        message): a receive must never wait for sending. What does not fit
        goes with the next send, or the next receive.
        """
        turn = self._writer
        if not self._has_unsent() or not turn.take():
            return
        try:
            await self._send_unsent(NO_WAIT, unguarded)
        except OSError:
            pass  # BlockingIOError: later. Anything else: the next send reports it.
        finally:
            turn.give()

    # -- the handshake -----------------------------------------------------

    def _claim_both(self) -> None:
        if self._receiving or self._sending:
            raise RuntimeError("another task is already using this TLSSocket")
        self._receiving = self._sending = True

    async def _handshake(self, deadline: float | None) -> None:
        self._claim_both()
        try:
            while not self._established:
                if self._failure is not None:
                    raise self._failure
                try:
                    self._ssl.do_handshake()
                    self._established = True
                    break
                except ssl.SSLWantReadError:
                    pass
                except (ssl.SSLError, OSError, ValueError) as exc:
                    self._failure = exc
                    raise
                await self._flush(deadline, unguarded)
                await self._pull(deadline, unguarded)
            await self._flush(deadline, unguarded)
        finally:
            self._receiving = self._sending = False

    async def do_handshake(self) -> None:
        """Do the TLS handshake; a no-op once it is done (``wrap_tls`` does it).

        Waits for the peer within the timeout. Raises
        ``ssl.SSLCertVerificationError`` when verification fails, other
        ``ssl.SSLError``\\ s, ``TimeoutError``, OSError, and RuntimeError if
        another task is receiving or sending.
        """
        self._check_open()
        deadline = call_deadline(self._sock.gettimeout())
        if self._established:
            await self._flush(deadline, unguarded)  # what an interrupted handshake left
            return
        await self._handshake(deadline)

    # -- receiving ---------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed or self._unwrapped:
            raise _closed_error()

    async def _receive(self, size: int, deadline: float | None, guard: Guard) -> bytes:
        if self._receiving:
            raise RuntimeError("another task is already receiving on this TLSSocket")
        self._receiving = True
        try:
            plain = self._plain
            while True:
                if plain or size == 0:
                    data = bytes(plain[:size])
                    del plain[:size]
                    return data
                if self._ended:
                    return b""
                if self._failure is not None:
                    raise self._failure
                if self._has_unsent():
                    await self._flush_now()
                await self._pull(deadline, guard)
                if self._has_unsent():
                    await self._flush_now()
        finally:
            self._receiving = False

    async def recv(self, bufsize: int = 1024, flags: int = 0) -> bytes:
        """Receive up to ``bufsize`` bytes of plaintext; ``b""`` once the TLS stream ended.

        Returns buffered plaintext at once; otherwise waits for a record.
        The stream ends with the peer's close_notify, or with an EOF without
        one if ``suppress_ragged_eofs`` (else that raises
        ``ssl.SSLEOFError``). Raises TypeError or ValueError for a bad
        ``bufsize`` or non-zero ``flags`` (as ``ssl.SSLSocket``),
        ``TimeoutError``, ``BlockingIOError`` in non-blocking mode,
        ``ssl.SSLError`` for a broken stream, ``OSError(EBADF)`` once closed
        (also when ``close()`` runs while this call waits), and RuntimeError
        if another task is receiving. Whatever interrupts it, nothing
        received is lost: the next call returns it.
        """
        size = _size(bufsize, "recv")
        _no_flags(flags, type(self))
        if self._closed:
            raise _closed_error()
        return await self._receive(size, call_deadline(self._sock.gettimeout()), unguarded)

    async def recv_into(self, buffer: Buffer, nbytes: int = 0, flags: int = 0) -> int:
        """Receive into ``buffer`` (at most ``nbytes`` bytes, 0 for its size); return the count.

        Waits and raises as :meth:`recv`; TypeError for a read-only buffer,
        ValueError for a negative ``nbytes`` or one past the buffer's end.
        """
        with memoryview(buffer) as view:
            if view.readonly:
                raise TypeError(
                    f"recv_into() argument 'buffer' must be read-write bytes-like object, "
                    f"not {type(buffer).__name__}"
                )
            target = view.cast("B")
            size = _size(nbytes, "recv_into")
            if size > target.nbytes:
                raise ValueError("buffer too small for requested bytes")
            _no_flags(flags, type(self))
            if self._closed:
                raise _closed_error()
            data = await self._receive(
                size or target.nbytes, call_deadline(self._sock.gettimeout()), unguarded
            )
            target[: len(data)] = data
            return len(data)

    def pending(self) -> int:
        """The number of decrypted bytes buffered, which ``recv`` returns without waiting."""
        return len(self._plain)

    # -- sending -----------------------------------------------------------

    def _start_send(self) -> None:
        self._check_open()
        if self._sending:
            raise RuntimeError("another task is already sending on this TLSSocket")
        self._sending = True

    async def _write_record(self, piece: memoryview, deadline: float | None, guard: Guard) -> int:
        """Put ``piece`` (at most one record) into the TLS stream; return its length.

        The TLS object may first need to read (a renegotiation): the records
        read then are kept for ``recv``.
        """
        while True:
            try:
                return self._ssl.write(piece)
            except ssl.SSLWantReadError:
                pass
            await self._flush(deadline, guard)
            await self._pull(deadline, guard)

    async def _sendall(self, data: memoryview, deadline: float | None, guard: Guard) -> None:
        total = data.nbytes
        accepted = 0
        try:
            await self._flush(deadline, guard)
            while accepted < total:
                accepted += await self._write_record(
                    data[accepted : accepted + _PIECE], deadline, guard
                )
                await self._flush(deadline, guard)
        except BaseException as exc:
            _note_progress(exc, accepted)
            raise

    async def sendall(self, data: Buffer) -> None:
        """Send all of ``data`` as TLS records, waiting as needed within one deadline.

        Raises TypeError for a non-buffer, ``TimeoutError``,
        ``BlockingIOError`` in non-blocking mode, ``ssl.SSLError``, OSError
        (``OSError(EBADF)`` once closed) and RuntimeError if another task is
        sending. The exception that ends it, a cancellation included,
        carries ``bytes_sent``: the plaintext bytes taken into the TLS
        stream. Their ciphertext not sent yet is kept and goes first with
        the next ``send``, ``sendall`` or ``unwrap``, so
        ``sendall(data[exc.bytes_sent:])`` delivers exactly the rest.
        """
        with memoryview(data) as view:
            chunk = view if view.itemsize == 1 and view.ndim == 1 else view.cast("B")
            self._start_send()
            try:
                await self._sendall(chunk, call_deadline(self._sock.gettimeout()), unguarded)
            finally:
                self._sending = False

    async def send(self, data: Buffer) -> int:
        """Send at most one record (16 KiB) of ``data``; return how many bytes it took.

        Waits until the record's ciphertext is handed to the kernel. Raises
        as :meth:`sendall`, with ``bytes_sent`` likewise (0, or the count
        taken if only sending its ciphertext failed).
        """
        with memoryview(data) as view:
            chunk = view if view.itemsize == 1 and view.ndim == 1 else view.cast("B")
            self._start_send()
            try:
                deadline = call_deadline(self._sock.gettimeout())
                accepted = 0
                try:
                    await self._flush(deadline, unguarded)
                    if chunk.nbytes:
                        accepted = await self._write_record(chunk[:_PIECE], deadline, unguarded)
                        await self._flush(deadline, unguarded)
                except BaseException as exc:
                    _note_progress(exc, accepted)
                    raise
                return accepted
            finally:
                self._sending = False

    # -- ending TLS --------------------------------------------------------

    async def unwrap(self) -> socket:
        """Shut TLS down with a close_notify exchange; return the plain socket, still open.

        Sends close_notify, then waits for the peer's, reading record by
        record: not a byte after the peer's close_notify is read, so the
        returned socket's next byte is the peer's first plaintext byte.
        Plaintext that came before the close_notify stays readable through
        ``recv`` (then ``b""``). Afterwards this object is detached: its
        other calls raise ``OSError(EBADF)`` and ``close()`` leaves the
        socket open. Raises ``TimeoutError`` (call it again to go on),
        ``ssl.SSLEOFError`` if the connection ends without the peer's
        close_notify, other ``ssl.SSLError``\\ s and OSError, and
        RuntimeError if another task is receiving or sending.
        """
        self._check_open()
        deadline = call_deadline(self._sock.gettimeout())
        self._claim_both()
        try:
            await self._flush(deadline, unguarded)
            while True:
                if self._failure is not None:
                    raise self._failure
                if self._raw_eof and not self._peer_closed:
                    raise _eof_error()  # the connection ended without the peer's close_notify
                try:
                    self._ssl.unwrap()
                    break
                except ssl.SSLWantReadError:
                    pass
                await self._flush(deadline, unguarded)
                await self._pull(deadline, unguarded)
            await self._flush(deadline, unguarded)
            self._unwrapped = True
            self._ended = True
            return self._sock
        finally:
            self._receiving = self._sending = False

    # -- files -------------------------------------------------------------

    async def _file_recv(self, size: int, deadline: float | None, guard: Guard) -> bytes:
        return await self._receive(size, deadline, guard)

    async def _file_sendall(self, data: memoryview, deadline: float | None, guard: Guard) -> None:
        if self._sending:
            raise RuntimeError("another task is already sending on this TLSSocket")
        self._sending = True
        try:
            await self._sendall(data, deadline, guard)
        finally:
            self._sending = False

    @overload
    def makefile(
        self,
        mode: _BINARY_MODES,
        buffering: int | None = None,
        *,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> SocketFile: ...

    @overload
    def makefile(
        self,
        mode: _TEXT_MODES = "r",
        buffering: int | None = None,
        *,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> SocketTextFile: ...

    @overload
    def makefile(
        self,
        mode: str,
        buffering: int | None = None,
        *,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> SocketFile | SocketTextFile: ...

    def makefile(
        self,
        mode: str = "r",
        buffering: int | None = None,
        *,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> SocketFile | SocketTextFile:
        """Return an awaitable file on the TLS stream, as ``asock.socket.makefile``.

        Never waits. Raises as ``asock.socket.makefile``. The file's reads
        and writes count as this socket's receiving and sending (one task
        each). The connection stays open until this object and every file
        made from it are closed.
        """
        return make_file(
            self,
            self._file_recv,
            self._file_sendall,
            mode,
            buffering,
            encoding=encoding,
            errors=errors,
            newline=newline,
        )

    def _decref_socketios(self) -> None:
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

    # -- plain calls -------------------------------------------------------

    def close(self) -> None:
        """Close the socket underneath (not after ``unwrap``); closing twice is harmless.

        Never waits and sends no close_notify. A task waiting in ``recv``
        or a send wakes with ``OSError(EBADF)``. While a file made by
        ``makefile`` is open, the descriptor stays open until it is closed.
        """
        self._closed = True
        if self._io_refs <= 0 and not self._unwrapped:
            self._sock.close()

    def fileno(self) -> int:
        """The socket's descriptor; -1 once closed or unwrapped."""
        if self._unwrapped:
            return -1
        return self._sock.fileno()

    def getpeername(self) -> Any:
        """The peer's address. Raises OSError (EBADF once closed or unwrapped)."""
        if self._unwrapped:
            raise _closed_error()
        return self._sock.getpeername()

    def getsockname(self) -> Any:
        """The socket's own address. Raises OSError (EBADF once closed or unwrapped)."""
        if self._unwrapped:
            raise _closed_error()
        return self._sock.getsockname()

    def gettimeout(self) -> float | None:
        """The socket's timeout, which every call of this object follows."""
        return self._sock.gettimeout()

    def settimeout(self, value: float | None) -> None:
        """Set the socket's timeout (its errors: ValueError, TypeError). Never waits."""
        self._sock.settimeout(value)

    def getpeercert(self, binary_form: bool = False) -> Any:
        """The peer's certificate, as ``ssl.SSLSocket.getpeercert``; None if it sent none."""
        return self._ssl.getpeercert(binary_form)

    def cipher(self) -> tuple[str, str, int] | None:
        """The cipher in use: ``(name, protocol version, secret bits)``."""
        return self._ssl.cipher()

    def version(self) -> str | None:
        """The protocol version negotiated, such as ``"TLSv1.3"``."""
        return self._ssl.version()

    def selected_alpn_protocol(self) -> str | None:
        """The ALPN protocol chosen in the handshake, or None."""
        return self._ssl.selected_alpn_protocol()

    def shared_ciphers(self) -> list[tuple[str, str, int]] | None:
        """The ciphers both sides offered (server side), as ``ssl.SSLSocket.shared_ciphers``."""
        return self._ssl.shared_ciphers()

    def get_channel_binding(self, cb_type: str = "tls-unique") -> bytes | None:
        """Channel binding data for ``cb_type``; ValueError for an unknown type."""
        return self._ssl.get_channel_binding(cb_type)

    @property
    def server_side(self) -> bool:
        """Whether this is the server end."""
        return self._ssl.server_side

    @property
    def server_hostname(self) -> str | None:
        """The host name the client asked for (client side), else None."""
        return self._ssl.server_hostname

    @property
    def context(self) -> ssl.SSLContext:
        """The ``ssl.SSLContext``; may be replaced (e.g. from an SNI callback)."""
        return self._ssl.context

    @context.setter
    def context(self, context: ssl.SSLContext) -> None:
        self._ssl.context = context

    @property
    def session(self) -> ssl.SSLSession | None:
        """The TLS session, to resume with ``wrap_tls(..., session=...)``."""
        return self._ssl.session

    @property
    def session_reused(self) -> bool:
        """Whether the handshake resumed an earlier session."""
        return self._ssl.session_reused

    def __repr__(self) -> str:
        state = "unwrapped" if self._unwrapped else f"fd={self.fileno()}"
        side = "server" if self.server_side else "client"
        return f"<asock.TLSSocket {side} {state} {self.version()}>"

    def __getstate__(self) -> NoReturn:
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def wrap_tls(
    sock: socket,
    context: ssl.SSLContext,
    *,
    server_side: bool = False,
    server_hostname: str | bytes | None = None,
    suppress_ragged_eofs: bool = True,
    session: ssl.SSLSession | None = None,
) -> TLSSocket:
    """Run TLS over the connected ``sock``; return a :class:`TLSSocket` with the handshake done.

    Waits for the handshake, within one deadline from the socket's timeout.
    The TLSSocket owns ``sock`` from then on (don't use ``sock`` directly;
    ``unwrap()`` gives it back). Raises TypeError for a ``sock`` that is not
    an ``asock.socket``, a ``context`` that is not an ``ssl.SSLContext`` or
    a ``server_hostname`` that is not a string, NotImplementedError for a
    non-stream socket, ValueError for ``server_hostname`` or ``session`` on
    the server side, for a ``context`` with ``check_hostname`` but no
    ``server_hostname`` and for a socket in non-blocking mode (these leave
    ``sock`` as it was; switch to non-blocking mode afterwards, on the
    TLSSocket, if you want it). If the handshake
    fails (``ssl.SSLCertVerificationError``, another ``ssl.SSLError``,
    ``TimeoutError``, OSError, a cancellation), ``sock`` is closed, as
    ``ssl.SSLContext.wrap_socket`` closes it.
    """
    if not isinstance(sock, socket):
        raise TypeError(f"expected an asock.socket, not {type(sock).__name__}")
    if not isinstance(context, ssl.SSLContext):
        raise TypeError(f"expected an ssl.SSLContext, not {type(context).__name__}")
    if server_hostname is not None and not isinstance(server_hostname, (str, bytes)):
        raise TypeError(
            f"server_hostname must be str or None, not {type(server_hostname).__name__}"
        )
    if sock.type != _stdlib.SOCK_STREAM:
        raise NotImplementedError("only stream sockets are supported")
    if server_side:
        if server_hostname:
            raise ValueError("server_hostname can only be specified in client mode")
        if session is not None:
            raise ValueError("session can only be specified in client mode")
    if context.check_hostname and not server_hostname:
        raise ValueError("check_hostname requires server_hostname")
    if sock.gettimeout() == 0.0:
        # As the stdlib refuses do_handshake_on_connect on a non-blocking socket.
        raise ValueError("the handshake needs a socket that may wait, not a non-blocking one")
    tls = TLSSocket._create(
        sock, context, server_side, server_hostname, suppress_ragged_eofs, session
    )
    try:
        await tls._handshake(call_deadline(sock.gettimeout()))
    except BaseException:
        tls.close()
        raise
    return tls

