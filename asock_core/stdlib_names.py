"""The stdlib ``socket`` names that both fronts pass through unchanged.

Constants, enums and exceptions are re-exported as the very same objects, so
``asock.AF_INET is socket.AF_INET`` and ``asock.timeout is TimeoutError``.
"""

from __future__ import annotations

import socket as _stdlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: The resolver functions: awaitable in asock, the stdlib's own in asock_sync.
RESOLVERS = (
    "getaddrinfo",
    "getnameinfo",
    "gethostbyname",
    "gethostbyname_ex",
    "gethostbyaddr",
    "getfqdn",
    "getservbyname",
    "getservbyport",
    "getprotobyname",
)

#: Names each front replaces with its own socket-aware or awaitable version.
WRAPPED = frozenset(
    {
        "socket",
        "SocketType",
        "socketpair",
        "fromfd",
        "create_connection",
        "create_server",
        "send_fds",
        "recv_fds",
        *RESOLVERS,
    }
)

#: Public names of the stdlib module that its ``__all__`` leaves out but its
#: documentation and users reach for: the enums of getaddrinfo's flags and of
#: the message flags (documented with the constants), and the errno values
#: the module imports for its own use, which code written against it reads as
#: ``socket.EAGAIN`` (CPython's test_socket does).
_EXTRA_PUBLIC = ("AddressInfo", "MsgFlag", "EAGAIN", "EBADF", "EWOULDBLOCK")

#: Every public name of the stdlib module that is passed through as it is.
PASSTHROUGH: tuple[str, ...] = tuple(
    sorted(
        name
        for name in (*_stdlib.__all__, *_EXTRA_PUBLIC)
        if name not in WRAPPED and hasattr(_stdlib, name)
    )
)


def export_into(namespace: dict[str, Any], *, include_resolvers: bool = False) -> list[str]:
    """Copy the pass-through names into ``namespace`` and return their names.

    With ``include_resolvers`` the stdlib's blocking resolver functions are
    copied too (the sync front uses them as they are).
    """
    names = list(PASSTHROUGH)
    if include_resolvers:
        names += RESOLVERS
    for name in names:
        namespace[name] = getattr(_stdlib, name)
    return names
