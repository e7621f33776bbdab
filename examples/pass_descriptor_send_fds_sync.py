"""Hand an open file descriptor to another thread with send_fds/recv_fds (asock_sync).

Over an AF_UNIX socket pair, the main thread sends the write end of a pipe
together with a short message (SCM_RIGHTS); a second thread receives a *new*
descriptor for the same pipe, writes through it and closes it. The main
thread then reads what was written from the read end.

Run: python examples/pass_descriptor_send_fds_sync.py
"""

from __future__ import annotations

import os
import threading

import asock_sync as socket


def receiver(channel: socket.socket) -> None:
    message, fds, _, _ = socket.recv_fds(channel, 1024, maxfds=1)
    print(f"receiver: got {message!r} and descriptor {fds}")
    for fd in fds:
        os.write(fd, b"written through the passed descriptor")
        os.close(fd)


def main() -> None:
    read_end, write_end = os.pipe()
    sender, channel = socket.socketpair()
    with sender, channel:
        thread = threading.Thread(target=receiver, args=(channel,))
        thread.start()
        socket.send_fds(sender, [b"here is a pipe"], [write_end])
        thread.join()  # before printing: two threads' prints may interleave
        print(f"sender: sent descriptor {write_end}")
    os.close(write_end)  # the receiver wrote through, and closed, its own copy
    with open(read_end, "rb") as pipe:
        print(f"sender: read {pipe.read()!r}")


if __name__ == "__main__":
    main()
