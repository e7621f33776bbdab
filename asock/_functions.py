"""asock's module-level functions that make or feed sockets.

``create_connection`` races the resolved addresses with Happy Eyeballs
(RFC 8305); the other functions wrap the stdlib's and hand back asock sockets.
"""

from __future__ import annotations

import socket as _stdlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import anyio
    from typing_extensions import Buffer


from asock_core import conversion
from asock_core import operations as ops
from asock_core.socket_base import READ, WRITE, SocketBase, closed_socket_error

from ._resolver import getaddrinfo, resolve_address
from ._socket import ready_now, socket

_DEFAULT_TIMEOUT: Any = _stdlib._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]


def socketpair(
    family: int = _stdlib.AF_UNIX, type: int = _stdlib.SOCK_STREAM, proto: int = 0
) -> tuple[socket, socket]:
    """Return a pair of connected asock sockets, as ``socket.socketpair``. Never waits."""
    return conversion.socketpair(socket, family, type, proto)


def fromfd(fd: int, family: int, type: int, proto: int = 0) -> socket:
    """Return an asock socket on a duplicate of ``fd``, as ``socket.fromfd``.

    Never waits. Raises OSError for a bad descriptor.
    """
    return conversion.fromfd(socket, fd, family, type, proto)


def from_stdlib_socket(sock: _stdlib.socket) -> socket:
    """Adopt a stdlib socket (same descriptor, same timeout); ``sock`` is left detached.

    Raises TypeError for anything but a plain ``socket.socket`` (an
    ``ssl.SSLSocket`` included: its TLS layer would be lost). Never waits.
    """
    return conversion.from_stdlib_socket(socket, sock)


def _check_socket(sock: Any) -> SocketBase:
    if not isinstance(sock, SocketBase):
        raise TypeError(f"expected an asock socket, not {type(sock).__name__}")
    return sock


async def _wait_ready(sock: Any, event: int) -> None:
    if not isinstance(sock, socket):
        raise TypeError(f"expected an asock socket, not {type(sock).__name__}")
    fd = sock.fileno()
    if fd < 0:
        raise closed_socket_error()
    # The asyncio driver is edge-triggered: it reports only a readiness that
    # begins after the wait does. So a socket ready already is answered here.
    if ready_now(fd, event):
        if ops._budget_spent():
            await sock._checkpoint()
        return
    while True:
        await sock._wait(event, None)
        fd = sock.fileno()
        if fd < 0 or sock._released():
            raise closed_socket_error()
        # A wake-up may find the socket not ready (another task took the data,
        # or trio woke the followers of a waiter that was cancelled): wait again.
        if ready_now(fd, event):
            return


async def wait_readable(sock: socket) -> None:
    """Wait until ``sock`` is readable, without reading: trio's ``wait_readable``.

    Returns once a receive would not block (data, the end of the stream or
    a pending error is waiting) or, on a listening socket, a connection is
    pending. Returns at once if that is so already; such a return yields to
    the event loop every 128th time, as an asock call that completes at once
    does. Waits through the socket's own driver, as long as needed whatever
    its timeout (bound it with a cancel scope); any number of tasks may wait
    at once. Raises ``OSError(EBADF)`` if the socket is closed, also when
    ``close()`` wakes the wait, and TypeError for anything but an
    ``asock.socket``. Cancellable.
    """
    await _wait_ready(sock, READ)


async def wait_writable(sock: socket) -> None:
    """Wait until ``sock`` is writable, without writing: trio's ``wait_writable``.

    Returns once a send would not block (room in the send buffer, or a
    pending error) or an outgoing ``connect`` has finished. Otherwise as
    :func:`wait_readable`: returns at once if ready, waits as long as needed,
    raises ``OSError(EBADF)`` if closed or closed meanwhile and TypeError for
    anything but an ``asock.socket``. Cancellable.
    """
    await _wait_ready(sock, WRITE)


async def send_fds(
    sock: socket, buffers: Iterable[Buffer], fds: Iterable[int], flags: int = 0,
    address: Any = None,
) -> int:
    """Send ``fds`` with ``buffers`` over an AF_UNIX socket (SCM_RIGHTS). Waits as send does."""
    return await ops.send_fds(_check_socket(sock), buffers, fds, flags, address)


async def recv_fds(
    sock: socket, bufsize: int, maxfds: int, flags: int = 0
) -> tuple[bytes, list[int], int, Any]:
    """Receive data and up to ``maxfds`` descriptors. Waits as recv does."""
    return await ops.recv_fds(_check_socket(sock), bufsize, maxfds, flags)


async def create_server(
    address: tuple[Any, ...], *, family: int = _stdlib.AF_INET, backlog: int | None = None,
    reuse_port: bool = False, dualstack_ipv6: bool = False,
) -> socket:
    """Create a listening TCP socket, as ``socket.create_server``.

    A host name is resolved off the event loop first (this is the only wait).
    Raises ValueError for unsupported options and OSError from bind/listen.
    """
    if ops.needs_lookup(family, address):
        try:
            address = await resolve_address(family, _stdlib.SOCK_STREAM, 0, address)
        except _stdlib.gaierror as exc:
            # The stdlib resolves inside bind() and reports any bind error so.
            message = f"{exc.strerror} (while attempting to bind on address {address!r})"
            raise OSError(exc.errno, message) from None
    sock = _stdlib.create_server(
        address, family=family, backlog=backlog, reuse_port=reuse_port,
        dualstack_ipv6=dualstack_ipv6,
    )
    return conversion.adopt(socket, sock)


def _interleave(infos: list[Any]) -> list[Any]:
    """Alternate address families, starting with the first (RFC 8305, section 4)."""
    if not infos:
        return infos
    first_family = infos[0][0]
    first = [info for info in infos if info[0] == first_family]
    other = [info for info in infos if info[0] != first_family]
    out: list[Any] = []
    for i in range(max(len(first), len(other))):
        out.extend(group[i] for group in (first, other) if i < len(group))
    return out


async def create_connection(
    address: tuple[str | None, int], timeout: float | None = _DEFAULT_TIMEOUT,
    source_address: tuple[Any, ...] | None = None, *, all_errors: bool = False,
    happy_eyeballs_delay: float | None = 0.25,
) -> socket:
    """Connect to ``(host, port)`` and return the connected asock socket. Waits.

    The addresses ``getaddrinfo`` returns are tried with Happy Eyeballs
    (RFC 8305): families alternate, and a new attempt starts whenever the
    previous one fails or ``happy_eyeballs_delay`` seconds pass (``None``:
    only when it fails). The first to connect wins; the others are cancelled
    and closed. ``timeout`` is set on every attempt's socket and kept on the
    result. If all fail, the error of the first address is raised, or with
    ``all_errors`` an ``ExceptionGroup`` of all of them in address order, as
    the stdlib does (whichever attempt happened to fail first).
    """
    import anyio  # here, not at the top: `import asock` must not load anyio

    host, port = address
    infos = _interleave(await getaddrinfo(host, port, 0, _stdlib.SOCK_STREAM))
    if not infos:
        raise OSError("getaddrinfo returns an empty list")
    #: Each failed attempt's error under its position in ``infos``: attempts
    #: overlap, so they fail in any order, but errors are reported in address order.
    errors: dict[int, OSError] = {}
    #: An error that is not an OSError (a bad ``source_address``, say) ends
    #: every attempt and is raised as it is, as the stdlib lets it through.
    fatal: list[Exception] = []
    winner: socket | None = None

    try:
        async with anyio.create_task_group() as tg:

            async def attempt(position: int, info: Any, failed: anyio.Event) -> None:
                nonlocal winner
                family, kind, proto, _, sockaddr = info
                sock = None
                try:
                    sock = socket(family, kind, proto)
                    if timeout is not _DEFAULT_TIMEOUT:
                        sock.settimeout(timeout)
                    if source_address:
                        await sock.bind(source_address)
                    await sock.connect(sockaddr)
                except OSError as exc:
                    errors[position] = exc
                    if sock is not None:
                        sock.close()
                    failed.set()
                    return
                except Exception as exc:
                    if sock is not None:
                        sock.close()
                    fatal.append(exc)
                    tg.cancel_scope.cancel()
                    return
                except BaseException:
                    if sock is not None:
                        sock.close()
                    raise
                if winner is None:
                    winner = sock
                    tg.cancel_scope.cancel()
                else:  # pragma: no cover - two attempts finishing in one tick
                    sock.close()

            for position, info in enumerate(infos):
                if winner is not None:
                    break
                failed = anyio.Event()
                tg.start_soon(attempt, position, info, failed)
                if happy_eyeballs_delay is None:
                    await failed.wait()
                else:
                    with anyio.move_on_after(happy_eyeballs_delay):
                        await failed.wait()
    except BaseException:
        # Cancelled from outside in the tick the winner connected: don't leak it.
        if winner is not None:
            winner.close()
        raise

    try:
        if fatal:
            if winner is not None:  # pragma: no cover - a winner and a failure in one tick
                winner.close()
            raise fatal[0]
        if winner is not None:
            return winner
        if not all_errors:
            raise errors[min(errors)]
        raise ExceptionGroup(
            "create_connection failed", [errors[position] for position in sorted(errors)]
        )
    finally:
        # The raised error's traceback holds this frame (and each attempt's,
        # whose closure holds these containers): empty them, or the errors
        # would form reference cycles that only the garbage collector frees.
        # CPython's create_connection does the same.
        errors.clear()
        fatal.clear()
