"""asock_sync: a drop-in for ``import socket`` built on the asock core.

``import asock_sync as socket`` gives every public name of :mod:`socket`:
the constants, enums and exceptions are the same objects, the resolver
functions are the stdlib's own, and :class:`asock_sync.socket` replays the
documented blocking, non-blocking and timeout semantics through the same
operation layer that ``asock`` awaits.
"""


import socket as _stdlib

from asock_core.stdlib_names import export_into as _export_into

from ._functions import (
    create_connection,
    create_server,
    from_stdlib_socket,
    fromfd,
    recv_fds,
    send_fds,
    socketpair,
)
from ._socket import SocketType, socket

_passthrough = _export_into(globals(), include_resolvers=True)

if hasattr(_stdlib, "fromshare"):  # pragma: no cover - Windows only
    # After the pass-through copy, which holds the stdlib's own fromshare.
    from ._functions import fromshare  # noqa: F401

# Private stdlib names that stdlib clients (http.client, smtplib, ftplib...)
# and CPython's own socket tests reach for through the module, served where
# this interpreter's socket module has them.
for _name in (
    "_GLOBAL_DEFAULT_TIMEOUT", "_GiveupOnSendfile", "_LOCALHOST", "_LOCALHOST_V6",
    "_blocking_errnos", "_intenum_converter",
):
    if hasattr(_stdlib, _name):
        globals()[_name] = getattr(_stdlib, _name)
del _name
if hasattr(_stdlib, "_fallback_socketpair"):  # Python 3.13: socketpair emulated over TCP
    from ._functions import _fallback_socketpair  # noqa: F401
#: The raw stream ``makefile`` builds on; it drives any object with the socket API.
SocketIO = _stdlib.SocketIO

__all__ = [
    "SocketType",
    "create_connection",
    "create_server",
    "from_stdlib_socket",
    "fromfd",
    "recv_fds",
    "send_fds",
    "socket",
    "socketpair",
    *_passthrough,
]
