"""What the asyncio and trio drivers' epoll hubs share: asock's own epoll instance.

Both hubs register a socket once, edge-triggered, on its first wait, add
``EPOLLOUT`` on its first wait for writing, and unregister it on close() or
detach(), while the descriptor number is still the socket's. How the hub is
watched (a loop's ``add_reader``, a trio system task) and how waiters are
woken is each driver's own. Linux only: the drivers import this module only
where ``select.epoll`` exists.
"""

from __future__ import annotations

import select
from typing import Generic, Protocol, TypeVar

READ_MASK = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLET
BOTH_MASK = READ_MASK | select.EPOLLOUT
#: What in an epoll report wakes readers, and what wakes writers.
READABLE = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
WRITABLE = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR


class Registration(Protocol):
    """A socket's queue as the epoll set sees it."""

    fd: int
    watches_write: bool


Q = TypeVar("Q", bound=Registration)


class EpollSet(Generic[Q]):
    """An edge-triggered epoll instance and the queue of each socket registered with it."""

    __slots__ = ("epoll", "queues")

    def __init__(self) -> None:
        self.epoll = select.epoll()
        self.queues: dict[int, Q] = {}

    def watch(self, queue: Q) -> None:
        """Register ``queue``'s descriptor for reading (edge-triggered). Raises OSError."""
        # A socket garbage-collected without close() may have left its queue
        # under this number; the new one replaces it (the kernel dropped the
        # old registration with the old descriptor).
        try:
            self.epoll.register(queue.fd, READ_MASK)
        except FileExistsError:  # still registered through a dup of the old socket
            self.epoll.modify(queue.fd, READ_MASK)
        self.queues[queue.fd] = queue

    def watch_write(self, queue: Q) -> None:
        """Watch ``queue``'s descriptor for writing as well, from now on."""
        # Re-arming reports the current state, so a socket that became
        # writable in between still produces its edge.
        self.epoll.modify(queue.fd, BOTH_MASK)
        queue.watches_write = True

    def unwatch(self, queue: Q) -> bool:
        """Unregister ``queue``'s descriptor; True if that left the set empty."""
        if self.queues.get(queue.fd) is not queue:
            return False
        del self.queues[queue.fd]
        try:
            self.epoll.unregister(queue.fd)
        except (OSError, ValueError):
            pass  # closed behind asock's back: the kernel dropped it already
        return not self.queues
