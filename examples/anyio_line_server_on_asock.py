"""An anyio program whose listener and connections are asock sockets.

``asock.streams`` has the same entry points as anyio (``create_tcp_listener``,
``connect_tcp``, ...) and returns anyio stream objects, so anyio code, and
everything anyio builds on streams (here ``BufferedByteReceiveStream``), runs
over asock unchanged. The server answers each line with its upper-case form;
three clients talk to it at once, then the server is stopped.

Run: python examples/anyio_line_server_on_asock.py [asyncio|uvloop|trio]
"""

from __future__ import annotations

import anyio
from _backends import run
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from asock import streams


async def shout_back(client: SocketStream) -> None:
    async with client:
        reader = BufferedByteReceiveStream(client)
        try:
            while True:
                line = await reader.receive_until(b"\n", 65536)
                await client.send(line.upper() + b"\n")
        except anyio.IncompleteRead:
            pass  # the client closed the connection


async def talk(port: int, name: str) -> None:
    async with await streams.connect_tcp("127.0.0.1", port) as stream:
        reader = BufferedByteReceiveStream(stream)
        for word in ("hello", "from", name):
            await stream.send(word.encode() + b"\n")
            reply = await reader.receive_until(b"\n", 65536)
            print(f"{name}: sent {word!r}, got {reply.decode()!r}")


async def main() -> None:
    listener = await streams.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    print(f"listening on 127.0.0.1:{port}:", listener.listeners[0].asock_socket)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, shout_back)
        async with anyio.create_task_group() as clients:
            for name in ("ada", "bob", "cy"):
                clients.start_soon(talk, port, name)
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    run(main)
