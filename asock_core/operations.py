"""Every socket operation that can wait, written once for both fronts.

Each operation follows the same plan, taken from trio's socket wrapper:

1. make the system call at once, never blocking in the kernel unless the
   call is in blocking mode (see below);
2. only if it would block, wait for readiness through ``s._wait``, a hook the
   front supplies (an event-loop wait in ``asock``, a blocking ``poll`` in
   ``asock_sync``);
3. after waking, make the call again *in the caller*, never in a loop
   callback. A cancelled wait therefore has had no effect: no byte, datagram
   or connection is taken from the kernel and then dropped.

The operations are coroutines. ``asock`` awaits them on an event loop;
``asock_sync`` drives the very same coroutines with a wait hook that blocks and
never suspends (see :func:`run_to_completion`). So the
retry loop, the deadline arithmetic and the partial-progress accounting live
here and nowhere else.

An attempt never blocks in the kernel unless its call is in blocking mode:
the sync front's descriptor is in blocking mode while its socket is (as the
stdlib's is), and another thread may switch it at any moment. So recv and
send attempts carry MSG_DONTWAIT, and the calls that take no flags (accept,
connect, os.sendfile) go through ``s._attempt`` when the call has a timeout.

Timeout rules (the stdlib's, ``Notes on socket timeouts``):
``None`` waits as long as needed, ``0.0`` re-raises the ``BlockingIOError`` of
the first attempt, and ``t > 0`` computes one deadline per call from a
monotonic clock; ``sendall`` and ``sendfile`` spend that one deadline over the
whole call, and expiry raises ``TimeoutError('timed out')``.
"""

from __future__ import annotations

import array
import errno
import functools
import io
import operator
import os
import select
import socket as _stdlib
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from time import monotonic

from .socket_base import READ, WRITE, SocketBase, closed_socket_error

# typing is not imported at run time: it would be most of the import cost.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol, TypeVar

    from typing_extensions import Buffer

    class BinaryFile(Protocol):
        """What sendfile needs of a file: fileno/read and, optionally, seek."""

        def read(self, size: int = -1, /) -> bytes:
            """Read up to ``size`` bytes."""

        def fileno(self) -> int:
            """The file's descriptor."""

        def seek(self, offset: int, whence: int = 0, /) -> int:
            """Move the file position."""

    T = TypeVar("T")



#: How many operations may complete without waiting before one of them yields
#: to the event loop first. A loop over a socket that always has data would
#: otherwise never let other tasks run. The yield comes *before* the system
#: call, so a cancellation delivered there costs no data.
FAIRNESS_BUDGET = 128
#: One count for the whole process, not one per task, loop or thread: it only
#: decides how often an immediate success yields, and any task that keeps
#: succeeding still yields at least once every FAIRNESS_BUDGET of its own
#: calls. A per-loop count would cost a look-up on the path every immediate
#: success takes; a lost update between threads only shifts one yield.
_budget = FAIRNESS_BUDGET

#: The chunk the sendfile fallback reads from a file that has no descriptor.
_SENDFILE_CHUNK = 64 * 1024
#: os.sendfile is capped per call so the count never overflows (bpo-38319).
_SENDFILE_MAX = 2**30


def _budget_spent() -> bool:
    global _budget
    _budget -= 1
    if _budget > 0:
        return False
    _budget = FAIRNESS_BUDGET
    return True


def deadline_after(timeout: float | None) -> float | None:
    """The monotonic deadline for a call started now with ``timeout``."""
    return None if timeout is None else monotonic() + timeout


async def wait_until(s: SocketBase, event: int, deadline: float | None) -> None:
    """Wait for ``event`` on ``s`` until ``deadline``; raise TimeoutError past it."""
    if deadline is None:
        await s._wait(event, None)
        return
    remaining = deadline - monotonic()
    if remaining <= 0.0 or not await s._wait(event, remaining):
        raise TimeoutError("timed out")


#: A call whose flags hold MSG_DONTWAIT asked not to wait, whatever the timeout.
_DONTWAIT = int(getattr(_stdlib, "MSG_DONTWAIT", 0))  # a plain int: IntFlag & costs ~1us
#: Sends never raise SIGPIPE, even in a process that restored its default
#: action (which kills): a broken connection is BrokenPipeError, as usual.
_NOSIGNAL = int(getattr(_stdlib, "MSG_NOSIGNAL", 0))
#: What every recv attempt adds to the caller's flags, and every send attempt.
_RECV_EXTRA = _DONTWAIT
_SEND_EXTRA = _DONTWAIT | _NOSIGNAL


def _kernel_flags(flags: Any, extra: int) -> Any:
    """``flags`` plus ``extra`` for the system call; a non-int is left for the stdlib to reject."""
    return flags | extra if type(flags) is int else flags


def _wont_wait(s: SocketBase, flags: int) -> bool:
    """Whether a call that would block raises at once instead of waiting.

    True in non-blocking mode and when ``flags`` hold MSG_DONTWAIT. Only
    called after the system call accepted ``flags`` as an int.
    """
    return s._timeout == 0.0 or bool(flags & _DONTWAIT)


async def _call(
    s: SocketBase, event: int, fn: Callable[..., T], *args: Any, flags: int = 0
) -> T:
    """Try ``fn(*args)``; while it would block, wait for ``event`` and retry.

    ``flags`` are the call's own message flags (``args`` hold the attempt's,
    MSG_DONTWAIT added): with MSG_DONTWAIT among them the BlockingIOError of
    the first attempt is raised, as in non-blocking mode.

    This is the one try-first prologue. ``recv``, ``recv_into``, ``recvfrom``,
    ``send`` and ``sendto`` (to a numeric address seen before) repeat it
    inline, because a call that completes at once then costs no second
    coroutine: that took the udp row from 162k to 182k datagrams/s on asyncio
    (docs/performance.md).
    tests/test_core_waiting.py::test_inlined_prologues_match_call holds the
    copies to the same behaviour.
    """
    global _budget
    if s._on_event_loop:
        # _budget_spent(), inlined: this is the path every immediate success takes.
        _budget -= 1
        if _budget <= 0:
            _budget = FAIRNESS_BUDGET
            await s._checkpoint()
    try:
        return fn(*args)
    except BlockingIOError:
        if _wont_wait(s, flags):
            raise
    return await _retry(s, event, fn, *args)


async def checkpoint_then(s: SocketBase, op: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Yield once, then run ``op(s, *args)``.

    The compiled twin of :mod:`asock_core.async_calls` hands a call here
    when its fairness budget runs out; the yield comes before any system
    call, as in ``_call``.
    """
    try:
        await s._checkpoint()
    except BaseException as exc:
        if op is sendall:  # whatever ends a sendall says how much it sent
            _note_progress(exc, 0)
        raise
    return await op(s, *args)


async def _retry(s: SocketBase, event: int, fn: Callable[..., T], *args: Any) -> T:
    """After a first attempt would have blocked: wait for ``event``, retry, until done.

    One deadline for the whole call, counted from here.
    """
    deadline = deadline_after(s._timeout)
    while True:
        if deadline is None:
            await s._wait(event, None)  # wait_until's own first step, one coroutine fewer
        else:
            await wait_until(s, event, deadline)
        try:
            return fn(*args)
        except BlockingIOError:
            pass


def run_to_completion(coro: Coroutine[Any, Any, T]) -> T:
    """Run an operation whose waits block instead of suspending; return its result.

    This is how ``asock_sync`` drives the operations: its wait hook blocks in
    ``poll`` and returns, so the coroutine finishes in one step.
    """
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("an asock_sync operation tried to suspend")


# -- name resolution inside addresses ------------------------------------


#: Host strings already found numeric. A datagram socket passes the same
#: address to every sendto; the cache spares each call the family look-up (an
#: enum conversion) and the inet_pton calls (together ~1us per datagram).
_numeric_hosts: set[str] = set()
_NUMERIC_HOSTS_KEPT = 256


def _is_numeric_host(host: str) -> bool:
    if host in ("", "<broadcast>"):
        return True
    try:
        _stdlib.inet_pton(_stdlib.AF_INET, host)
    except OSError:
        try:
            _stdlib.inet_pton(_stdlib.AF_INET6, host.partition("%")[0])
        except (OSError, ValueError):
            return False
    if len(_numeric_hosts) >= _NUMERIC_HOSTS_KEPT:
        _numeric_hosts.clear()
    _numeric_hosts.add(host)
    return True


#: The port range the stdlib's address parser accepts before it resolves the
#: host (a C int); the 0-65535 check comes after the lookup.
_C_INT_MIN, _C_INT_MAX = -(2**31), 2**31 - 1


def _host_parses(host: str) -> bool:
    """Whether the stdlib's address parser accepts ``host`` as a name to look up."""
    if "\0" in host:
        return False  # TypeError: host name must not contain null character
    if host.isascii():
        return True
    try:
        host.encode("idna")
    except UnicodeError:
        return False  # TypeError: encoding of hostname failed
    return True


def needs_lookup(family: int, address: Any) -> bool:
    """Whether ``address`` names a host the stdlib call would look up itself.

    Only an address the stdlib's parser accepts up to the lookup qualifies
    (right length, a parsable host, integer fields, a port within a C int);
    anything else goes to the stdlib call untouched and fails there exactly
    as it would without asock.
    """
    if family not in (_stdlib.AF_INET, _stdlib.AF_INET6) or type(address) is not tuple:
        return False
    arity_ok = len(address) == 2 if family == _stdlib.AF_INET else 2 <= len(address) <= 4
    return (
        arity_ok
        and type(address[0]) is str
        and all(isinstance(field, int) for field in address[1:])
        and _C_INT_MIN <= address[1] <= _C_INT_MAX
        and _host_parses(address[0])
        and not _is_numeric_host(address[0])
    )


def _wants_lookup(s: SocketBase, address: Any) -> bool:
    if type(address) is tuple and address and type(address[0]) is str and (
        address[0] in _numeric_hosts
    ):
        return False  # a numeric host is never looked up, whatever else the address holds
    return s._on_event_loop and needs_lookup(s._sock.family, address)


def _unix_path(s: SocketBase, address: Any) -> Any:
    """An AF_UNIX address given as a path-like object, as its str or bytes path.

    asock takes path-like AF_UNIX addresses (``pathlib.Path``) everywhere an
    address goes; Python 3.11's own socket module takes only str and bytes.
    """
    if (
        type(address) not in (tuple, str, bytes)
        and isinstance(address, os.PathLike)
        and s._sock.family == _stdlib.AF_UNIX
    ):
        return os.fspath(address)
    return address


async def _address(s: SocketBase, address: Any) -> Any:
    """Resolve a host name inside an IP address without blocking the loop.

    Anything :func:`needs_lookup` turns down is passed on untouched (but for
    a path-like AF_UNIX path, see :func:`_unix_path`), so the stdlib call
    raises its own error for it.
    """
    if _wants_lookup(s, address):
        return await s._resolve_address(address)
    return _unix_path(s, address)


# sendto and sendmsg parse some arguments before they look the address up;
# asock checks those the same way before its own lookup, so a bad argument
# fails with the stdlib's error rather than with the lookup's.


def _parse_c_int(value: Any) -> None:
    if not _C_INT_MIN <= operator.index(value) <= _C_INT_MAX:  # TypeError for a non-integer
        raise OverflowError("signed integer is out of range")


def _parse_bytes_like(data: Any) -> None:
    try:
        view = memoryview(data)
    except TypeError as exc:
        # A non-buffer: raise the stdlib's message (PyObject_GetBuffer's, which
        # cuts the type's name at 100 characters), not memoryview's own.
        message = str(exc)
        prefix = "memoryview: a bytes-like object is required, not '"
        if not message.startswith(prefix):  # pragma: no cover - a buffer hook's own error
            raise
        name = message[len(prefix) : -1]
        raise TypeError(f"a bytes-like object is required, not '{name[:100]}'") from None
    with view:
        if not view.c_contiguous:
            raise BufferError("memoryview: underlying buffer is not C-contiguous")


# -- the operations ---------------------------------------------------------


async def accept_descriptor(s: SocketBase) -> tuple[int, Any]:
    """Accept a connection; return its bare descriptor and the peer's address."""
    accept_fd = s._sock._accept  # type: ignore[attr-defined]
    if s._timeout is None:
        return await _call(s, READ, accept_fd)
    return await _call(s, READ, s._attempt, accept_fd)


async def accept(s: SocketBase) -> tuple[Any, Any]:
    """Wait for a connection; return ``(socket, address)``.

    The new socket is of the same class as this one and starts with
    ``getdefaulttimeout()``. Waits until a connection is pending, as the
    timeout allows: raises ``BlockingIOError`` in non-blocking mode,
    ``TimeoutError`` when the timeout expires, OSError otherwise.
    """
    fd, address = await accept_descriptor(s)
    # No await between the accept and the wrapping: a cancellation can't leak fd.
    sock = s._sock
    return type(s)._from_fd(fd, sock.family, sock.type, sock.proto), address


async def bind(s: SocketBase, address: Any) -> None:
    """Bind to ``address``, resolving a host name first if there is one.

    Waits only for that lookup, which runs off the event loop. Raises
    ``gaierror`` if the lookup fails and OSError (e.g. EADDRINUSE) from bind.
    """
    s._sock.bind(await _address(s, address))


async def connect(s: SocketBase, address: Any) -> None:
    """Connect to ``address``, waiting for the handshake as the timeout allows.

    A host name is looked up first, off the event loop. Raises
    ``BlockingIOError`` (EINPROGRESS) in non-blocking mode and (EAGAIN) when
    an AF_UNIX listener's backlog is full, ``TimeoutError``
    when the timeout expires, ``gaierror`` if the lookup fails and OSError
    (e.g. ``ConnectionRefusedError``) if the connection fails.
    """
    sock = s._sock
    address = await _address(s, address)
    if s._on_event_loop and _budget_spent():
        await s._checkpoint()
    try:
        if s._timeout is None:
            sock.connect(address)
        else:
            s._attempt(sock.connect, address)
        return
    except BlockingIOError as exc:
        # Only EINPROGRESS means a handshake goes on in the background. EAGAIN
        # (an AF_UNIX listener with a full backlog) started nothing that could
        # finish, and the stdlib raises it too.
        if s._timeout == 0.0 or exc.errno != errno.EINPROGRESS:
            raise
    except InterruptedError:
        pass  # the connection goes on in the background (connect(2), EINTR)
    deadline = deadline_after(s._timeout)
    while True:
        await wait_until(s, WRITE, deadline)
        error = sock.getsockopt(_stdlib.SOL_SOCKET, _stdlib.SO_ERROR)  # EBADF once closed
        if error:
            raise OSError(error, os.strerror(error))
        if _handshake_over(sock):
            return
        # Woken before the handshake ended: a close() under way in another
        # thread wakes waiters before it releases the descriptor. Wait again;
        # the next look sees EBADF.


def _handshake_over(sock: _stdlib.socket) -> bool:
    """Whether a connect in progress has ended: the kernel then reports POLLOUT."""
    fd = sock.fileno()
    if fd < 0:
        raise closed_socket_error()
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return bool(poller.poll(0))


async def connect_ex(s: SocketBase, address: Any) -> int:
    """Like connect, but return the errno instead of raising OSError for it.

    Returns 0 once connected, EINPROGRESS in non-blocking mode and
    EWOULDBLOCK when the timeout expires. Waits as connect does; a failed
    host name lookup still raises ``gaierror``.
    """
    try:
        await connect(s, address)
    except (_stdlib.gaierror, _stdlib.herror):
        raise
    except OSError as exc:
        if exc.errno is not None:
            return exc.errno  # ETIMEDOUT from the kernel included
        if isinstance(exc, TimeoutError):
            # The socket's own timeout expired: the stdlib reports EWOULDBLOCK.
            return errno.EWOULDBLOCK
        raise
    return 0


def _flag_arg(args: tuple[Any, ...], index: int) -> int:
    """The flags among positional ``args`` (0 when not given)."""
    return args[index] if len(args) > index else 0


def _recvmsg_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``(bufsize_or_buffers[, ancbufsize[, flags]])`` with the recv attempt's flags.

    A wrong count of arguments is passed on untouched for the stdlib to reject.
    """
    if len(args) == 1:
        return (args[0], 0, _RECV_EXTRA)
    if len(args) == 2:
        return (*args, _RECV_EXTRA)
    if len(args) == 3:
        return (args[0], args[1], _kernel_flags(args[2], _RECV_EXTRA))
    return args


async def recv(s: SocketBase, bufsize: int, flags: int = 0) -> bytes:
    """Receive up to ``bufsize`` bytes; ``b""`` once the peer has closed.

    Waits until data or EOF arrives, as the timeout allows: raises
    ``BlockingIOError`` in non-blocking mode or with MSG_DONTWAIT,
    ``TimeoutError`` when the timeout expires, OSError otherwise.
    """
    global _budget
    if s._on_event_loop:  # _call's first attempt, inlined (see _call)
        _budget -= 1
        if _budget <= 0:
            _budget = FAIRNESS_BUDGET
            await s._checkpoint()
    kernel_flags = flags | _RECV_EXTRA if type(flags) is int else flags  # _kernel_flags, inlined
    try:
        return s._sock.recv(bufsize, kernel_flags)
    except BlockingIOError:
        if _wont_wait(s, flags):
            raise
    return await _retry(s, READ, s._sock.recv, bufsize, kernel_flags)


async def recv_into(s: SocketBase, buffer: Buffer, nbytes: int = 0, flags: int = 0) -> int:
    """Receive into ``buffer``; return the number of bytes received.

    Waits and raises as ``recv`` does.
    """
    global _budget
    if s._on_event_loop:  # _call's first attempt, inlined (see _call)
        _budget -= 1
        if _budget <= 0:
            _budget = FAIRNESS_BUDGET
            await s._checkpoint()
    kernel_flags = flags | _RECV_EXTRA if type(flags) is int else flags  # _kernel_flags, inlined
    try:
        return s._sock.recv_into(buffer, nbytes, kernel_flags)
    except BlockingIOError:
        if _wont_wait(s, flags):
            raise
    return await _retry(s, READ, s._sock.recv_into, buffer, nbytes, kernel_flags)


async def recvfrom(s: SocketBase, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
    """Receive up to ``bufsize`` bytes and the sender's address.

    Waits and raises as ``recv`` does.
    """
    global _budget
    if s._on_event_loop:  # _call's first attempt, inlined (see _call)
        _budget -= 1
        if _budget <= 0:
            _budget = FAIRNESS_BUDGET
            await s._checkpoint()
    kernel_flags = flags | _RECV_EXTRA if type(flags) is int else flags  # _kernel_flags, inlined
    try:
        return s._sock.recvfrom(bufsize, kernel_flags)
    except BlockingIOError:
        if _wont_wait(s, flags):
            raise
    return await _retry(s, READ, s._sock.recvfrom, bufsize, kernel_flags)


async def recvfrom_into(
    s: SocketBase, buffer: Buffer, nbytes: int = 0, flags: int = 0
) -> tuple[int, Any]:
    """Receive into ``buffer``; return the byte count and the sender's address.

    Waits and raises as ``recv`` does.
    """
    kernel_flags = _kernel_flags(flags, _RECV_EXTRA)
    return await _call(s, READ, s._sock.recvfrom_into, buffer, nbytes, kernel_flags, flags=flags)


async def recvmsg(s: SocketBase, *args: Any) -> tuple[bytes, list[Any], int, Any]:
    """``recvmsg(bufsize[, ancbufsize[, flags]])`` as in the stdlib.

    Waits and raises as ``recv`` does.
    """
    return await _call(s, READ, s._sock.recvmsg, *_recvmsg_args(args), flags=_flag_arg(args, 2))


async def recvmsg_into(s: SocketBase, *args: Any) -> tuple[int, list[Any], int, Any]:
    """``recvmsg_into(buffers[, ancbufsize[, flags]])`` as in the stdlib.

    Waits and raises as ``recv`` does.
    """
    kernel_args = _recvmsg_args(args)
    return await _call(s, READ, s._sock.recvmsg_into, *kernel_args, flags=_flag_arg(args, 2))


async def send(s: SocketBase, data: Buffer, flags: int = 0) -> int:
    """Send what fits of ``data``; return the number of bytes sent.

    Waits until at least one byte fits, as the timeout allows: raises
    ``BlockingIOError`` in non-blocking mode or with MSG_DONTWAIT,
    ``TimeoutError`` when the timeout expires, OSError (e.g.
    ``BrokenPipeError``) otherwise.
    """
    global _budget
    if s._on_event_loop:  # _call's first attempt, inlined (see _call)
        _budget -= 1
        if _budget <= 0:
            _budget = FAIRNESS_BUDGET
            await s._checkpoint()
    kernel_flags = flags | _SEND_EXTRA if type(flags) is int else flags  # _kernel_flags, inlined
    try:
        return s._sock.send(data, kernel_flags)
    except BlockingIOError:
        if _wont_wait(s, flags):
            raise
    return await _retry(s, WRITE, s._sock.send, data, kernel_flags)


async def sendto(s: SocketBase, data: Buffer, *args: Any) -> int:
    """``sendto(data, address)`` or ``sendto(data, flags, address)``.

    A host name in ``address`` is looked up first, off the event loop
    (``gaierror`` if that fails). Then waits and raises as ``send`` does.
    """
    global _budget
    if len(args) == 1:
        address = args[0]
        if (
            type(address) is tuple and address and type(address[0]) is str
            and address[0] in _numeric_hosts
        ):
            # The datagram path: a numeric host seen before needs no look-up
            # and no re-parsing, and _call's prologue is inlined (together
            # about a fifth of a datagram's cost, udp row).
            if s._on_event_loop:
                _budget -= 1
                if _budget <= 0:
                    _budget = FAIRNESS_BUDGET
                    await s._checkpoint()
            try:
                return s._sock.sendto(data, _SEND_EXTRA, address)
            except BlockingIOError:
                if s._timeout == 0.0:
                    raise
            return await _retry(s, WRITE, s._sock.sendto, data, _SEND_EXTRA, address)
    if args:
        args = (*args[:-1], _unix_path(s, args[-1]))
    if len(args) in (1, 2) and _wants_lookup(s, args[-1]):
        _parse_bytes_like(data)
        if len(args) == 2:
            _parse_c_int(args[0])
        args = (*args[:-1], await s._resolve_address(args[-1]))
    flags = args[0] if len(args) == 2 else 0
    if len(args) == 1:
        args = (_SEND_EXTRA, args[0])
    elif len(args) == 2:
        args = (_kernel_flags(args[0], _SEND_EXTRA), args[1])
    return await _call(s, WRITE, s._sock.sendto, data, *args, flags=flags)


async def sendmsg(s: SocketBase, buffers: Iterable[Buffer], *args: Any) -> int:
    """``sendmsg(buffers[, ancdata[, flags[, address]]])`` as in the stdlib.

    A host name in ``address`` is looked up first, off the event loop
    (``gaierror`` if that fails). Then waits and raises as ``send`` does.
    """
    if len(args) == 3:
        args = (*args[:2], _unix_path(s, args[2]))
    if len(args) == 3 and _wants_lookup(s, args[2]):
        _parse_c_int(args[1])
        args = (*args[:2], await s._resolve_address(args[2]))
    flags = _flag_arg(args, 1)
    if len(args) <= 1:
        args = (args[0] if args else (), _SEND_EXTRA)
    else:
        args = (args[0], _kernel_flags(args[1], _SEND_EXTRA), *args[2:])
    return await _call(s, WRITE, s._sock.sendmsg, buffers, *args, flags=flags)


async def sendmsg_afalg(s: SocketBase, *args: Any, **kwargs: Any) -> int:
    """``sendmsg_afalg([msg], *, op[, iv[, assoclen[, flags]]])`` (Linux).

    Waits and raises as ``send`` does.
    """
    flags = kwargs.get("flags", 0)
    kernel_kwargs = {**kwargs, "flags": _kernel_flags(flags, _SEND_EXTRA)}
    attempt = functools.partial(s._sock.sendmsg_afalg, *args, **kernel_kwargs)
    return await _call(s, WRITE, attempt, flags=flags)


def _note_progress(exc: BaseException, sent: int) -> None:
    # Partial progress is never hidden: whatever ends a sendall/sendfile early
    # (timeout, cancellation, a reset peer) says how many bytes left.
    try:
        exc.bytes_sent = sent  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - exceptions with __slots__
        pass


async def sendall(s: SocketBase, data: Buffer, flags: int = 0) -> None:
    """Send all of ``data``, waiting as often as needed within one deadline.

    Returns None once the kernel has taken every byte. Raises
    ``BlockingIOError`` in non-blocking mode (or with MSG_DONTWAIT) when the
    data does not fit, ``TimeoutError`` when the deadline passes and OSError
    if the connection fails. Whatever exception ends the call, a
    cancellation included, carries ``bytes_sent``.
    """
    sock = s._sock
    sent = 0
    kernel_flags = _kernel_flags(flags, _SEND_EXTRA)
    try:
        view = memoryview(data)
    except TypeError:
        _parse_bytes_like(data)  # raises the stdlib's TypeError
        raise  # pragma: no cover - it always does
    with view:
        chunk = view if view.itemsize == 1 and view.ndim == 1 else view.cast("B")
        total = chunk.nbytes
        timeout = s._timeout
        deadline = deadline_after(timeout)
        try:
            if s._on_event_loop and _budget_spent():
                await s._checkpoint()
            while True:
                try:
                    sent += sock.send(chunk[sent:], kernel_flags)
                    if sent >= total:
                        return
                    continue
                except BlockingIOError:
                    if timeout == 0.0 or flags & _DONTWAIT:
                        raise
                await wait_until(s, WRITE, deadline)
        except BaseException as exc:
            _note_progress(exc, sent)
            raise


async def sendall_after(s: SocketBase, data: Buffer, flags: int, sent: int) -> None:
    """The rest of a ``sendall`` whose first send (the compiled twin's) took ``sent`` bytes.

    The exception that ends it counts those bytes in ``bytes_sent`` too.
    """
    try:
        with memoryview(data) as view:
            await sendall(s, view.cast("B")[sent:], flags)
    except BaseException as exc:
        _note_progress(exc, sent + getattr(exc, "bytes_sent", 0))
        raise


async def sendfile(
    s: SocketBase, file: BinaryFile, offset: int = 0, count: int | None = None
) -> int:
    """Send ``file`` from ``offset`` (``count`` bytes or to its end); return bytes sent.

    Uses ``os.sendfile`` when the kernel accepts the file, else reads and
    sends. One deadline covers the whole call; the file position ends
    after the last byte sent; whatever exception ends the call carries
    ``bytes_sent``. Raises ValueError for a non-stream socket, a text file, a
    bad offset or count, or a socket in non-blocking mode.
    """
    deadline = _sendfile_deadline(s, file, offset, count)
    try:
        return await _sendfile_with(s, _sendfile_kernel, file, offset, count, deadline)
    except GiveUpOnSendfile:
        return await _sendfile_with(s, _sendfile_copy, file, offset, count, deadline)


async def sendfile_kernel(
    s: SocketBase, file: BinaryFile, offset: int = 0, count: int | None = None
) -> int:
    """``sendfile`` through ``os.sendfile`` only.

    Raises :data:`GiveUpOnSendfile`, before sending anything, when the file
    has no usable descriptor or the kernel refuses the pair.
    """
    deadline = _sendfile_deadline(s, file, offset, count)
    return await _sendfile_with(s, _sendfile_kernel, file, offset, count, deadline)


async def sendfile_copy(
    s: SocketBase, file: BinaryFile, offset: int = 0, count: int | None = None
) -> int:
    """``sendfile`` by reading the file and sending each block."""
    deadline = _sendfile_deadline(s, file, offset, count)
    return await _sendfile_with(s, _sendfile_copy, file, offset, count, deadline)


#: The stdlib's own signal that os.sendfile can't serve a file; the caller
#: falls back to reading and sending.
GiveUpOnSendfile: type[Exception] = _stdlib._GiveupOnSendfile  # type: ignore[attr-defined]


def _sendfile_deadline(
    s: SocketBase, file: BinaryFile, offset: int, count: int | None
) -> float | None:
    _stdlib.socket._check_sendfile_params(s, file, offset, count)  # type: ignore[attr-defined]
    return deadline_after(s._timeout)


def _refuse_non_blocking(s: SocketBase) -> None:
    # Checked where the stdlib checks it: after an empty regular file was
    # already answered with 0, before anything is sent.
    if s._timeout == 0.0:
        raise ValueError("non-blocking sockets are not supported")


async def _sendfile_with(
    s: SocketBase,
    blocks: Callable[..., Any],
    file: BinaryFile,
    offset: int,
    count: int | None,
    deadline: float | None,
) -> int:
    sent = 0
    try:
        if s._on_event_loop and _budget_spent():
            await s._checkpoint()
        async for n in blocks(s, file, offset, count, deadline):
            sent += n
        return sent
    except GiveUpOnSendfile:
        raise  # nothing was sent: the fallback starts from the same place
    except BaseException as exc:
        _note_progress(exc, sent)
        raise
    finally:
        if sent > 0 and hasattr(file, "seek"):
            file.seek(offset + sent)


async def _sendfile_kernel(
    s: SocketBase, file: BinaryFile, offset: int, count: int | None, deadline: float | None
) -> Any:
    try:
        fileno = file.fileno()
    except (AttributeError, io.UnsupportedOperation) as exc:
        raise GiveUpOnSendfile(exc) from None
    try:
        size = os.fstat(fileno).st_size
    except OSError as exc:
        raise GiveUpOnSendfile(exc) from None
    if not size:
        return
    _refuse_non_blocking(s)
    if offset > sys.maxsize or (count is not None and count > sys.maxsize):
        # The stdlib hands both to os.sendfile unclamped, which refuses them.
        raise OverflowError("Python int too large to convert to C ssize_t")
    end = size if count is None else min(size, offset + count)
    progressed = False
    while offset < end:
        try:
            args = (s._sock.fileno(), fileno, offset, min(end - offset, _SENDFILE_MAX))
            n = _os_sendfile(*args) if deadline is None else s._attempt(_os_sendfile, *args)
        except BlockingIOError:
            await wait_until(s, WRITE, deadline)
            continue
        except OSError as exc:
            if progressed:
                raise
            # e.g. EINVAL: this kind of file can't be sent by the kernel.
            raise GiveUpOnSendfile(exc) from None
        if n == 0:
            return  # the file shrank under us
        progressed = True
        offset += n
        yield n


def _os_sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
    """``os.sendfile`` that never raises SIGPIPE (it takes no MSG_NOSIGNAL).

    Where SIGPIPE is not ignored, it is blocked in this thread for the call,
    and the one a broken connection raised is taken off again.
    """
    import signal  # here, not at the top: it adds a tenth to asock_sync's import time

    sigpipe = getattr(signal, "SIGPIPE", None)
    if sigpipe is None or signal.getsignal(sigpipe) == signal.SIG_IGN:
        return os.sendfile(out_fd, in_fd, offset, count)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {sigpipe})
    try:
        return os.sendfile(out_fd, in_fd, offset, count)
    except BrokenPipeError:
        if sigpipe not in blocked:
            signal.sigtimedwait({sigpipe}, 0)
        raise
    finally:
        if sigpipe not in blocked:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


async def _sendfile_copy(
    s: SocketBase, file: BinaryFile, offset: int, count: int | None, deadline: float | None
) -> Any:
    _refuse_non_blocking(s)
    if offset:
        file.seek(offset)
    left = count
    while left is None or left > 0:
        block = file.read(_SENDFILE_CHUNK if left is None else min(left, _SENDFILE_CHUNK))
        if not block:
            return
        view = memoryview(block)
        while view:
            try:
                n = s._sock.send(view, _SEND_EXTRA)
            except BlockingIOError:
                await wait_until(s, WRITE, deadline)
                continue
            view = view[n:]
            if left is not None:
                left -= n
            yield n


# -- descriptor passing --------------------------------------------------


async def send_fds(
    s: SocketBase,
    buffers: Iterable[Buffer],
    fds: Iterable[int],
    flags: int = 0,
    address: Any = None,
) -> int:
    """Send ``fds`` over an AF_UNIX socket with SCM_RIGHTS, as ``socket.send_fds``."""
    ancillary = [(_stdlib.SOL_SOCKET, _stdlib.SCM_RIGHTS, array.array("i", fds))]
    return await sendmsg(s, buffers, ancillary, flags, address)


async def recv_fds(
    s: SocketBase, bufsize: int, maxfds: int, flags: int = 0
) -> tuple[bytes, list[int], int, Any]:
    """Receive data and up to ``maxfds`` descriptors, as ``socket.recv_fds``."""
    fds = array.array("i")
    msg, ancdata, msg_flags, address = await recvmsg(
        s, bufsize, _stdlib.CMSG_LEN(maxfds * fds.itemsize), flags
    )
    for level, kind, data in ancdata:
        if level == _stdlib.SOL_SOCKET and kind == _stdlib.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds), msg_flags, address
