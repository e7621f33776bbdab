"""asock: the standard library's ``socket`` module, awaitable.

``import asock`` gives every public name of :mod:`socket`. Constants, enums
and exceptions are the very same objects (``asock.AF_INET is
socket.AF_INET``, ``asock.timeout is TimeoutError``) and the pure functions
are the stdlib's own. :class:`asock.socket` is an awaitable socket for
asyncio, uvloop and trio, and everything that can wait, name resolution
included, is a coroutine. The blocking front is :mod:`asock_sync`.
"""


from asock_core.stdlib_names import export_into as _export_into

from ._functions import (
    create_connection,
    create_server,
    from_stdlib_socket,
    fromfd,
    recv_fds,
    send_fds,
    socketpair,
    wait_readable,
    wait_writable,
)
from ._makefile import SocketFile, SocketTextFile
from ._resolver import (
    HostnameResolver,
    getaddrinfo,
    getfqdn,
    gethostbyaddr,
    gethostbyname,
    gethostbyname_ex,
    getnameinfo,
    getprotobyname,
    getservbyname,
    getservbyport,
    set_custom_hostname_resolver,
)
from ._socket import SocketFactory, SocketType, set_custom_socket_factory, socket
from ._tls import TLSSocket, wrap_tls

_passthrough = _export_into(globals())

__version__ = "0.1.0"

__all__ = [
    "HostnameResolver",
    "SocketFactory",
    "SocketFile",
    "SocketTextFile",
    "SocketType",
    "TLSSocket",
    "create_connection",
    "create_server",
    "from_stdlib_socket",
    "fromfd",
    "getaddrinfo",
    "getfqdn",
    "gethostbyaddr",
    "gethostbyname",
    "gethostbyname_ex",
    "getnameinfo",
    "getprotobyname",
    "getservbyname",
    "getservbyport",
    "recv_fds",
    "send_fds",
    "set_custom_hostname_resolver",
    "set_custom_socket_factory",
    "socket",
    "socketpair",
    "wait_readable",
    "wait_writable",
    "wrap_tls",
    *_passthrough,
]
