"""Blocking readiness waits for ``asock_sync``: ``poll`` in the calling thread.

A thread waits here only when its call has a timeout (or lost a race with a
mode switch); in blocking mode the sync front blocks in the kernel instead.
The poll watches the socket alone. ``close()`` from another thread wakes it
the way it wakes a thread blocked in the kernel: it shuts the socket down
(see ``asock_sync.socket.close``), which the poll reports as readable and
writable, and the retried call then fails with EBADF. So a wait allocates no
descriptor of its own, and none can take a number another thread just freed.
"""

from __future__ import annotations

import math
import select

from ..socket_base import READ

TYPE_CHECKING = False

if TYPE_CHECKING:
    from ..socket_base import SocketBase

_POLL_EVENTS = (select.POLLIN, select.POLLOUT)
#: The longest single poll() in seconds: its timeout is a C int of milliseconds.
_MAX_POLL_SECONDS = (2**31 - 1) // 1000


def wait(s: SocketBase, event: int, timeout: float | None) -> bool:
    """Block until ``s`` may be ready for ``event``; False after ``timeout`` s.

    Returns True at once for a closed socket: the retried call reports EBADF.
    Interrupted polls are retried by ``select.poll`` itself (PEP 475); the
    operation layer's deadline keeps counting from the call's start.
    """
    fd = s.fileno()
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, _POLL_EVENTS[event != READ])
    if timeout is None:
        return bool(poller.poll())
    if timeout > _MAX_POLL_SECONDS:
        # poll() takes a C int of milliseconds; a longer timeout (settimeout
        # accepts years) waits in slices. A slice that ends reports a wake-up,
        # so the operation retries and waits again for what is left.
        poller.poll(_MAX_POLL_SECONDS * 1000)
        return True
    return bool(poller.poll(math.ceil(timeout * 1000)))
