"""Scatter one received message over several buffers with recvmsg_into (asock_sync).

The stdlib documentation's recvmsg_into example with ``import asock_sync as
socket``: one 22-byte message lands in three buffers, one of them a window
into the middle of a bytearray.

Run: python examples/scatter_receive_recvmsg_into_sync.py
"""

from __future__ import annotations

import asock_sync as socket


def main() -> None:
    s1, s2 = socket.socketpair()
    with s1, s2:
        b1 = bytearray(b"----")
        b2 = bytearray(b"0123456789")
        b3 = bytearray(b"--------------")
        print("sent", s1.send(b"Mary had a little lamb"), "bytes")
        print("recvmsg_into:", s2.recvmsg_into([b1, memoryview(b2)[2:9], b3]))
        print("buffers:", [b1, b2, b3])


if __name__ == "__main__":
    main()
