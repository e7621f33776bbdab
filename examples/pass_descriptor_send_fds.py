"""Hand an open file descriptor to another task with send_fds/recv_fds (asock).

Over an AF_UNIX socket pair, one task sends the write end of a pipe together
with a short message (SCM_RIGHTS); the other receives a *new* descriptor for
the same pipe, writes through it and closes it. The sender then reads what
was written from the read end. Between processes this is how a supervisor
hands listening sockets or files to its workers.

Run: python examples/pass_descriptor_send_fds.py [asyncio|uvloop|trio]
"""

from __future__ import annotations

import os

import anyio
from _backends import run

import asock


async def receiver(channel: asock.socket) -> None:
    message, fds, _, _ = await asock.recv_fds(channel, 1024, maxfds=1)
    print(f"receiver: got {message!r} and descriptor {fds}")
    for fd in fds:
        os.write(fd, b"written through the passed descriptor")
        os.close(fd)


async def main() -> None:
    read_end, write_end = os.pipe()
    sender, channel = asock.socketpair()
    with sender, channel:
        async with anyio.create_task_group() as tg:
            tg.start_soon(receiver, channel)
            await asock.send_fds(sender, [b"here is a pipe"], [write_end])
            print(f"sender: sent descriptor {write_end}")
    os.close(write_end)  # the receiver wrote through, and closed, its own copy
    with open(read_end, "rb") as pipe:
        print(f"sender: read {pipe.read()!r}")


if __name__ == "__main__":
    run(main)
