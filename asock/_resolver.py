"""Name resolution that never blocks the event loop, with a pluggable hook.

Lookups run in a worker thread (``anyio.to_thread``) and may be cancelled: the
caller stops waiting at once and the thread's late answer is dropped. Numeric
hosts are answered in the task, with no thread. A test or an application may
install a :class:`HostnameResolver` for the current event loop (the counterpart of
trio's ``set_custom_hostname_resolver``), for example to make ``localhost``
resolve to both ``::1`` and ``127.0.0.1``.
"""

from __future__ import annotations

import socket as _stdlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from anyio.lowlevel import RunVar


T = TypeVar("T")

AddrInfo = tuple[
    _stdlib.AddressFamily, _stdlib.SocketKind, int, str, tuple[str, int] | tuple[str, int, int, int]
]


class HostnameResolver(ABC):
    """A custom resolver for asock's awaitable lookups on one event loop."""

    @abstractmethod
    async def getaddrinfo(
        self, host: bytes | str | None, port: bytes | str | int | None,
        family: int = 0, type: int = 0, proto: int = 0, flags: int = 0,
    ) -> list[Any]:
        """Return a list like ``socket.getaddrinfo`` does, or raise ``gaierror``."""

    @abstractmethod
    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
        """Return ``(host, port)`` like ``socket.getnameinfo`` does."""


_resolver_var: RunVar[HostnameResolver | None] | None = None


def _custom_resolver() -> RunVar[HostnameResolver | None]:
    """The per-event-loop resolver variable, made on first use (anyio is loaded then)."""
    global _resolver_var
    if _resolver_var is None:
        from anyio.lowlevel import RunVar

        _resolver_var = RunVar("asock_custom_resolver", None)
    return _resolver_var


def set_custom_hostname_resolver(resolver: HostnameResolver | None) -> HostnameResolver | None:
    """Install ``resolver`` for the running event loop; return the previous one.

    ``None`` restores the system resolver. Must be called inside the event
    loop (asyncio, uvloop or trio) whose lookups it should answer.
    """
    previous = _custom_resolver().get()
    _custom_resolver().set(resolver)
    return previous


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    import anyio.to_thread  # here, not at the top: `import asock` must not load anyio

    return await anyio.to_thread.run_sync(partial(fn, *args), abandon_on_cancel=True)


async def getaddrinfo(
    host: bytes | str | None, port: bytes | str | int | None,
    family: int = 0, type: int = 0, proto: int = 0, flags: int = 0,
) -> list[Any]:
    """Awaitable ``socket.getaddrinfo``: waits for the lookup, off the event loop.

    A numeric host is answered at once, in the task. Any other host goes to
    the custom resolver if one is installed, else to the system's
    ``getaddrinfo`` in a worker thread. A ``str`` host reaches the system
    resolver IDNA 2003-encoded by the stdlib (``"faß.de"`` as ``fass.de``),
    and a custom resolver as it was given (see docs/migrate-from-trio-socket.md).
    Raises ``gaierror`` as the stdlib does (an error that is not about the
    host, such as ``EAI_SOCKTYPE``, at once, without a lookup) and
    ``UnicodeError`` for a host the stdlib cannot encode; cancellable.
    """
    try:
        return _stdlib.getaddrinfo(
            host, port, family, type, proto, flags | _stdlib.AI_NUMERICHOST
        )
    except _stdlib.gaierror as exc:
        # Only "not a numeric host" calls for a real lookup (which may block);
        # any other answer (a bad type, family or service) would be the
        # lookup's answer too.
        if exc.errno != _stdlib.EAI_NONAME:
            raise
    resolver = _custom_resolver().get()
    if resolver is not None:
        return await resolver.getaddrinfo(host, port, family, type, proto, flags)
    return await _in_thread(_stdlib.getaddrinfo, host, port, family, type, proto, flags)


async def getnameinfo(sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
    """Awaitable ``socket.getnameinfo``; honours the custom resolver.

    Waits for the lookup, off the event loop; cancellable. Raises
    ``gaierror`` as the stdlib does.
    """
    resolver = _custom_resolver().get()
    if resolver is not None:
        return await resolver.getnameinfo(sockaddr, flags)
    return await _in_thread(_stdlib.getnameinfo, sockaddr, flags)


async def gethostbyname(hostname: str) -> str:
    """Awaitable ``socket.gethostbyname`` (IPv4 only), off the event loop.

    Waits for the lookup; cancellable. Raises ``gaierror`` as the stdlib does.
    """
    return await _in_thread(_stdlib.gethostbyname, hostname)


async def gethostbyname_ex(hostname: str) -> tuple[str, list[str], list[str]]:
    """Awaitable ``socket.gethostbyname_ex``, off the event loop.

    Waits for the lookup; cancellable. Raises ``gaierror`` as the stdlib does.
    """
    return await _in_thread(_stdlib.gethostbyname_ex, hostname)


async def gethostbyaddr(ip_address: str) -> tuple[str, list[str], list[str]]:
    """Awaitable ``socket.gethostbyaddr``, off the event loop.

    Waits for the lookup; cancellable. Raises ``herror`` or ``gaierror`` as
    the stdlib does.
    """
    return await _in_thread(_stdlib.gethostbyaddr, ip_address)


async def getfqdn(name: str = "") -> str:
    """Awaitable ``socket.getfqdn``, off the event loop.

    Waits for the lookup; cancellable. Never raises for an unknown name: it
    is returned unchanged, as the stdlib does.
    """
    return await _in_thread(_stdlib.getfqdn, name)


async def getservbyname(servicename: str, protocolname: str | None = None) -> int:
    """Awaitable ``socket.getservbyname`` (reads the services database).

    Waits off the event loop; cancellable. Raises OSError for an unknown service.
    """
    if protocolname is None:
        return await _in_thread(_stdlib.getservbyname, servicename)
    return await _in_thread(_stdlib.getservbyname, servicename, protocolname)


async def getservbyport(port: int, protocolname: str | None = None) -> str:
    """Awaitable ``socket.getservbyport`` (reads the services database).

    Waits off the event loop; cancellable. Raises OSError for an unknown port
    and OverflowError outside 0-65535.
    """
    if protocolname is None:
        return await _in_thread(_stdlib.getservbyport, port)
    return await _in_thread(_stdlib.getservbyport, port, protocolname)


async def getprotobyname(protocolname: str) -> int:
    """Awaitable ``socket.getprotobyname`` (reads the protocols database).

    Waits off the event loop; cancellable. Raises OSError for an unknown protocol.
    """
    return await _in_thread(_stdlib.getprotobyname, protocolname)


async def resolve_address(family: int, type: int, proto: int, address: tuple[Any, ...]) -> Any:
    """Replace the host name in ``(host, port[, flowinfo, scope_id])`` by its first address.

    Only the host is looked up (for ``family``); the other fields are kept as
    given, so the stdlib call that receives the address checks them exactly
    as it would have (a port out of 0-65535 raises its OverflowError, not a
    lookup error, and is never wrapped around). Waits for the lookup; raises
    ``gaierror``.
    """
    host, *rest = address
    if _custom_resolver().get() is None and isinstance(host, str) and host.isascii():
        # The socket calls hand an ASCII name to the system resolver as it is;
        # getaddrinfo() would IDNA-encode it and reject names they accept ("a..b").
        host = host.encode("ascii")
    infos = await getaddrinfo(host, None, family, type, proto)
    return (infos[0][4][0], *rest)
