"""A line-based chat server with many clients, in one process (asock).

Each client connects, introduces itself with ``NICK <name>``, and every line
it sends afterwards is relayed to all the other members. The script starts
the server and a crowd of clients; once all have joined, each says one line
and reads everyone else's, then leaves. The server drops a member when its
connection ends (or a relay to it fails), and the script checks that every
client heard every other one.

Run: python examples/chat_server.py [asyncio|uvloop|trio]
"""

from __future__ import annotations

import anyio
from _backends import run

import asock

CLIENTS = 20


class LineReader:
    """Split what a stream socket receives into lines."""

    def __init__(self, sock: asock.socket) -> None:
        self.sock = sock
        self.buffer = b""

    async def readline(self) -> bytes:
        """Return the next line without its newline; b"" once the peer closed."""
        while b"\n" not in self.buffer:
            data = await self.sock.recv(4096)
            if not data:
                return b""
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


class Member:
    def __init__(self, conn: asock.socket) -> None:
        self.conn = conn
        # Several sessions may relay to one member at once; a sendall that has
        # to wait must not let another message cut into the middle of its line.
        self.sending = anyio.Lock()

    async def send_line(self, line: bytes) -> None:
        async with self.sending:
            await self.conn.sendall(line)


class ChatServer:
    def __init__(self) -> None:
        self.members: dict[bytes, Member] = {}

    async def relay(self, sender: bytes, line: bytes) -> None:
        message = sender + b": " + line + b"\n"
        for name, member in list(self.members.items()):
            if name == sender:
                continue
            try:
                await member.send_line(message)
            except OSError:  # that member is gone; its own session cleans up
                self.members.pop(name, None)

    async def session(self, conn: asock.socket) -> None:
        with conn:
            reader = LineReader(conn)
            command, _, name = (await reader.readline()).partition(b" ")
            if command != b"NICK" or not name or name in self.members:
                await conn.sendall(b"* refused\n")
                return
            member = self.members[name] = Member(conn)
            try:
                await member.send_line(b"* welcome " + name + b"\n")
                while line := await reader.readline():
                    await self.relay(name, line)
            finally:
                self.members.pop(name, None)

    async def serve(self, listener: asock.socket) -> None:
        async with anyio.create_task_group() as tg:
            while True:
                conn, _ = await listener.accept()
                tg.start_soon(self.session, conn)


async def chat_client(
    name: str, port: int, joined: anyio.abc.ObjectSendStream[str], start: anyio.Event
) -> list[bytes]:
    """Join, wait until everyone has, say one line and collect the others' lines."""
    async with await asock.create_connection(("127.0.0.1", port)) as sock:
        reader = LineReader(sock)
        await sock.sendall(f"NICK {name}\n".encode())
        welcome = await reader.readline()
        assert welcome == f"* welcome {name}".encode(), welcome
        await joined.send(name)
        await start.wait()
        await sock.sendall(f"hello from {name}\n".encode())
        heard = [await reader.readline() for _ in range(CLIENTS - 1)]
    return heard


async def main() -> None:
    transcripts: dict[str, list[bytes]] = {}
    start = anyio.Event()
    joined_send, joined_receive = anyio.create_memory_object_stream[str](CLIENTS)

    async def client(name: str, port: int) -> None:
        transcripts[name] = await chat_client(name, port, joined_send, start)

    with joined_send, joined_receive, asock.socket(asock.AF_INET, asock.SOCK_STREAM) as listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        async with anyio.create_task_group() as server_tg:
            server_tg.start_soon(ChatServer().serve, listener)
            async with anyio.create_task_group() as clients_tg:
                for n in range(CLIENTS):
                    clients_tg.start_soon(client, f"user{n:02d}", port)
                for _ in range(CLIENTS):
                    await joined_receive.receive()
                print(f"{CLIENTS} clients joined the chat")
                start.set()
            server_tg.cancel_scope.cancel()  # stop accepting; sessions are over

    names = sorted(transcripts)
    for name in names:
        expected = {f"{other}: hello from {other}".encode() for other in names if other != name}
        assert set(transcripts[name]) == expected, (name, transcripts[name])
    print(f"every client heard the {CLIENTS - 1} others; what {names[0]} heard first:")
    for line in transcripts[names[0]][:3]:
        print("  ", line.decode())


if __name__ == "__main__":
    run(main)
