"""Scatter one received message over several buffers with recvmsg_into (asock).

The stdlib documentation's recvmsg_into example: one 22-byte message lands
in three buffers, one of them a window into the middle of a bytearray. The
call is awaited; if nothing had arrived yet it would wait for the message.

Run: python examples/scatter_receive_recvmsg_into.py [asyncio|uvloop|trio]
"""

from __future__ import annotations

from _backends import run

import asock


async def main() -> None:
    s1, s2 = asock.socketpair()
    with s1, s2:
        b1 = bytearray(b"----")
        b2 = bytearray(b"0123456789")
        b3 = bytearray(b"--------------")
        print("sent", await s1.send(b"Mary had a little lamb"), "bytes")
        print("recvmsg_into:", await s2.recvmsg_into([b1, memoryview(b2)[2:9], b3]))
        print("buffers:", [b1, b2, b3])


if __name__ == "__main__":
    run(main)
