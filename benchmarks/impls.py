"""Each implementation's version of each workload.

Every workload function takes plain stdlib sockets made by the runner, adopts
them the way its implementation does, and runs to completion on its own event
loop (or threads). The code is what a user of that library would write; no
implementation gets hand-tuned shortcuts (no hoisted method look-ups).

``hot(a, b, n)``, ``pong(a, b, n)`` and ``bulk(sock, nbytes)`` return elapsed
seconds; ``udp(a, b, n)`` returns elapsed seconds for ``n`` datagrams;
``serve(listener, wait_stop, on_connection)`` runs an echo server and
``http(listener, wait_stop, on_connection)`` an HTTP/1.1 keep-alive server,
each until ``wait_stop()`` (a blocking call, run in a thread) returns.

The anyio streams rows have implementations of their own (:class:`StreamsImpl`:
one stream library on one backend), which run only there.
"""

from __future__ import annotations

import asyncio
import socket as _stdlib
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import Any

import anyio
from anyio.abc import SocketStream as AnyioSocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

import asock
import asock.streams
import asock_sync

from .peers import HTTP_RESPONSE

#: The receive buffer every bulk receiver reuses.
BULK_BUFFER = 256 * 1024
#: Datagrams sent before the receiver takes them: small enough that the
#: loopback socket buffer never drops one.
UDP_WINDOW = 16
UDP_PAYLOAD = b"d" * 64
_ECHO_CHUNK = 65536
_HEADER = 8
#: The listen backlog of every echo server: the memory workload connects 10,000 clients.
_BACKLOG = 4096
#: What ends each HTTP request (the load sends no body).
_END_OF_REQUEST = b"\r\n\r\n"


class NotAvailable(Exception):
    """The implementation has no way to run this workload (shown as n/a)."""


#: Blocks until the server should stop (run in a thread).
Stop = Callable[[], object]
Serve = Callable[[_stdlib.socket, Stop, Callable[[], None]], None]


@dataclass(frozen=True)
class Impl:
    """One column of the table: how one library runs each workload."""

    name: str
    hot: Callable[[_stdlib.socket, _stdlib.socket, int], float]
    pong: Callable[[_stdlib.socket, _stdlib.socket, int], float]
    bulk: Callable[[_stdlib.socket, int], float]
    udp: Callable[[_stdlib.socket, _stdlib.socket, int], float]
    #: The echo server (the memory workload's server too).
    serve: Serve
    #: The HTTP/1.1 keep-alive server.
    http: Serve
    #: Serves each connection with a thread (no memory figure: 10,000 threads
    #: take minutes to start and stop on a small machine).
    thread_per_connection: bool = False


def _not_available(why: str) -> Callable[..., Any]:
    def workload(*args: Any) -> Any:
        for arg in args:
            if isinstance(arg, _stdlib.socket):
                arg.close()
        raise NotAvailable(why)

    return workload


def _check_bulk(received: int, expected: int) -> None:
    if received != expected:
        raise RuntimeError(f"bulk: received {received} of {expected} bytes")


def _header(nbytes: int) -> bytes:
    return nbytes.to_bytes(_HEADER, "big")


def _answer(buffer: bytearray) -> bytes:
    """Take the complete requests off the front of ``buffer``; return one response to each.

    Every server that reads raw bytes parses with this, so they all pay the same.
    """
    count = buffer.count(_END_OF_REQUEST)
    if count:
        del buffer[: buffer.rfind(_END_OF_REQUEST) + len(_END_OF_REQUEST)]
    return HTTP_RESPONSE * count


# -- threads: the stdlib socket module and asock_sync ------------------------


def _sync_impl(name: str, module: Any) -> Impl:
    def adopt(raw: _stdlib.socket) -> Any:
        return raw if module is _stdlib else module.from_stdlib_socket(raw)

    def hot(a_raw: _stdlib.socket, b_raw: _stdlib.socket, n: int) -> float:
        with adopt(a_raw) as a, adopt(b_raw) as b:
            start = perf_counter()
            for _ in range(n):
                a.send(b"x")
                b.recv(1)
            return perf_counter() - start

    def pong(a_raw: _stdlib.socket, b_raw: _stdlib.socket, n: int) -> float:
        with adopt(a_raw) as a, adopt(b_raw) as b:

            def echo() -> None:
                for _ in range(n):
                    b.send(b.recv(1))

            thread = threading.Thread(target=echo)
            start = perf_counter()
            thread.start()
            for _ in range(n):
                a.send(b"x")
                a.recv(1)
            elapsed = perf_counter() - start
            thread.join()
            return elapsed

    def bulk(raw: _stdlib.socket, nbytes: int) -> float:
        buffer = bytearray(BULK_BUFFER)
        received = 0
        with adopt(raw) as s:
            start = perf_counter()
            s.sendall(_header(nbytes))
            while count := s.recv_into(buffer):
                received += count
            elapsed = perf_counter() - start
        _check_bulk(received, nbytes)
        return elapsed

    def udp(a_raw: _stdlib.socket, b_raw: _stdlib.socket, n: int) -> float:
        with adopt(a_raw) as a, adopt(b_raw) as b:
            address = b.getsockname()
            start = perf_counter()
            for _ in range(n // UDP_WINDOW):
                for _ in range(UDP_WINDOW):
                    a.sendto(UDP_PAYLOAD, address)
                for _ in range(UDP_WINDOW):
                    b.recvfrom(2048)
            return perf_counter() - start

    def echo(conn: Any) -> None:
        with conn:
            try:
                while data := conn.recv(_ECHO_CHUNK):
                    conn.sendall(data)
            except OSError:
                pass

    def http(conn: Any) -> None:
        with conn:
            buffer = bytearray()
            try:
                while data := conn.recv(_ECHO_CHUNK):
                    buffer += data
                    if answer := _answer(buffer):
                        conn.sendall(answer)
            except OSError:
                pass

    def serve(
        handle: Callable[[Any], None], listener_raw: _stdlib.socket, wait_stop: Stop,
        on_connection: Callable[[], None],
    ) -> None:
        listener = adopt(listener_raw)

        def accept_loop() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return  # shut down below
                on_connection()
                threading.Thread(target=handle, args=(conn,), daemon=True).start()

        acceptor = threading.Thread(target=accept_loop, daemon=True)
        acceptor.start()
        wait_stop()
        # shutdown() wakes a thread blocked in the stdlib's accept; close() alone would not.
        listener.shutdown(_stdlib.SHUT_RDWR)
        acceptor.join()
        listener.close()

    return Impl(
        name, hot, pong, bulk, udp, partial(serve, echo), partial(serve, http),
        thread_per_connection=True,
    )


# -- asock, on any of its backends ---------------------------------------------


async def _asock_hot(a_raw: _stdlib.socket, b_raw: _stdlib.socket, n: int) -> float:
    with asock.from_stdlib_socket(a_raw) as a, asock.from_stdlib_socket(b_raw) as b:
        start = perf_counter()
        for _ in range(n):
            await a.send(b"x")
            await b.recv(1)
        return perf_counter() - start


async def _asock_echo(b: asock.socket, n: int) -> None:
    for _ in range(n):
        await b.send(await b.recv(1))


async def _asock_ping(a: asock.socket, n: int) -> float:
    start = perf_counter()
    for _ in range(n):
        await a.send(b"x")
        await a.recv(1)
    return perf_counter() - start


# Tasks are spawned the way each event loop's own users spawn them (as the
# peers' columns do), so no task-group library's per-task cost is counted.


async def _asock_pong_asyncio(a_raw: _stdlib.socket, b_raw: _stdlib.socket, n: int) -> float:
    with asock.from_stdlib_socket(a_raw) as a, asock.from_stdlib_socket(b_raw) as b:
        echo = asyncio.create_task(_asock_echo(b, n))
        elapsed = await _asock_ping(a, n)
        await echo
        return elapsed


async def _asock_pong_trio(a_raw: _stdlib.socket, b_raw: _stdlib.socket, n: int) -> float:
    import trio

    with asock.from_stdlib_socket(a_raw) as a, asock.from_stdlib_socket(b_raw) as b:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_asock_echo, b, n)
            elapsed = await _asock_ping(a, n)
        return elapsed


async def _asock_bulk(raw: _stdlib.socket, nbytes: int) -> float:
    buffer = bytearray(BULK_BUFFER)
    received = 0
    with asock.from_stdlib_socket(raw) as s:
        start = perf_counter()
        await s.sendall(_header(nbytes))
        while count := await s.recv_into(buffer):
            received += count
        elapsed = perf_counter() - start
    _check_bulk(received, nbytes)
    return elapsed


async def _asock_udp(a_raw: _stdlib.socket, b_raw: _stdlib.socket, n: int) -> float:
    with asock.from_stdlib_socket(a_raw) as a, asock.from_stdlib_socket(b_raw) as b:
        address = b.getsockname()
        start = perf_counter()
        for _ in range(n // UDP_WINDOW):
            for _ in range(UDP_WINDOW):
                await a.sendto(UDP_PAYLOAD, address)
            for _ in range(UDP_WINDOW):
                await b.recvfrom(2048)
        return perf_counter() - start


async def _asock_echo_handle(conn: asock.socket) -> None:
    with conn:
        try:
            while data := await conn.recv(_ECHO_CHUNK):
                await conn.sendall(data)
        except OSError:
            pass


async def _asock_http_handle(conn: asock.socket) -> None:
    with conn:
        buffer = bytearray()
        try:
            while data := await conn.recv(_ECHO_CHUNK):
                buffer += data
                if answer := _answer(buffer):
                    await conn.sendall(answer)
        except OSError:
            pass


async def _asock_serve_asyncio(
    handle: Callable[[asock.socket], Coroutine[Any, Any, None]], listener_raw: _stdlib.socket,
    wait_stop: Stop, on_connection: Callable[[], None],
) -> None:
    listener = asock.from_stdlib_socket(listener_raw)
    handlers: set[asyncio.Task[None]] = set()

    async def accept_loop() -> None:
        while True:
            conn, _ = await listener.accept()
            on_connection()
            task = asyncio.create_task(handle(conn))
            handlers.add(task)
            task.add_done_callback(handlers.discard)

    with listener:
        acceptor = asyncio.create_task(accept_loop())
        await asyncio.get_running_loop().run_in_executor(None, wait_stop)
        acceptor.cancel()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(acceptor, *handlers, return_exceptions=True)


async def _asock_serve_trio(
    handle: Callable[[asock.socket], Coroutine[Any, Any, None]], listener_raw: _stdlib.socket,
    wait_stop: Stop, on_connection: Callable[[], None],
) -> None:
    import trio

    listener = asock.from_stdlib_socket(listener_raw)
    with listener:
        async with trio.open_nursery() as nursery:

            async def accept_loop() -> None:
                while True:
                    conn, _ = await listener.accept()
                    on_connection()
                    nursery.start_soon(handle, conn)

            nursery.start_soon(accept_loop)
            await trio.to_thread.run_sync(wait_stop)
            nursery.cancel_scope.cancel()


def _asock_impl(name: str, factory: Callable[[], asyncio.AbstractEventLoop]) -> Impl:
    runs = _in_loop(factory)
    return Impl(
        name, runs(_asock_hot), runs(_asock_pong_asyncio), runs(_asock_bulk), runs(_asock_udp),
        runs(partial(_asock_serve_asyncio, _asock_echo_handle)),
        runs(partial(_asock_serve_asyncio, _asock_http_handle)),
    )


def _asock_trio_impl() -> Impl:
    import trio

    def runs(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            return trio.run(fn, *args)

        return run

    return Impl(
        "asock/trio", runs(_asock_hot), runs(_asock_pong_trio), runs(_asock_bulk),
        runs(_asock_udp), runs(partial(_asock_serve_trio, _asock_echo_handle)),
        runs(partial(_asock_serve_trio, _asock_http_handle)),
    )


# -- asyncio and uvloop: loop.sock_* and Protocols ----------------------------


def _in_loop(factory: Callable[[], asyncio.AbstractEventLoop]) -> Callable[..., Any]:
    def runs(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            with asyncio.Runner(loop_factory=factory) as runner:
                return runner.run(fn(*args))

        return run

    return runs


async def _sock_hot(a: _stdlib.socket, b: _stdlib.socket, n: int) -> float:
    loop = asyncio.get_running_loop()
    with a, b:
        a.setblocking(False)
        b.setblocking(False)
        start = perf_counter()
        for _ in range(n):
            await loop.sock_sendall(a, b"x")
            await loop.sock_recv(b, 1)
        return perf_counter() - start


async def _sock_pong(a: _stdlib.socket, b: _stdlib.socket, n: int) -> float:
    loop = asyncio.get_running_loop()
    with a, b:
        a.setblocking(False)
        b.setblocking(False)

        async def echo() -> None:
            for _ in range(n):
                await loop.sock_sendall(b, await loop.sock_recv(b, 1))

        start = perf_counter()
        task = asyncio.create_task(echo())
        for _ in range(n):
            await loop.sock_sendall(a, b"x")
            await loop.sock_recv(a, 1)
        elapsed = perf_counter() - start
        await task
        return elapsed


async def _sock_bulk(s: _stdlib.socket, nbytes: int) -> float:
    loop = asyncio.get_running_loop()
    buffer = bytearray(BULK_BUFFER)
    received = 0
    with s:
        s.setblocking(False)
        start = perf_counter()
        await loop.sock_sendall(s, _header(nbytes))
        while count := await loop.sock_recv_into(s, buffer):
            received += count
        elapsed = perf_counter() - start
    _check_bulk(received, nbytes)
    return elapsed


async def _sock_udp(a: _stdlib.socket, b: _stdlib.socket, n: int) -> float:
    loop = asyncio.get_running_loop()
    with a, b:
        a.setblocking(False)
        b.setblocking(False)
        address = b.getsockname()
        start = perf_counter()
        try:
            for _ in range(n // UDP_WINDOW):
                for _ in range(UDP_WINDOW):
                    await loop.sock_sendto(a, UDP_PAYLOAD, address)
                for _ in range(UDP_WINDOW):
                    await loop.sock_recvfrom(b, 2048)
        except NotImplementedError:
            module = type(loop).__module__
            raise NotAvailable(f"{module} has no sock_sendto/sock_recvfrom") from None
        return perf_counter() - start


async def _sock_echo_handle(conn: _stdlib.socket) -> None:
    loop = asyncio.get_running_loop()
    with conn:
        try:
            while data := await loop.sock_recv(conn, _ECHO_CHUNK):
                await loop.sock_sendall(conn, data)
        except OSError:
            pass


async def _sock_http_handle(conn: _stdlib.socket) -> None:
    loop = asyncio.get_running_loop()
    with conn:
        buffer = bytearray()
        try:
            while data := await loop.sock_recv(conn, _ECHO_CHUNK):
                buffer += data
                if answer := _answer(buffer):
                    await loop.sock_sendall(conn, answer)
        except OSError:
            pass


async def _sock_serve(
    handle: Callable[[_stdlib.socket], Coroutine[Any, Any, None]], listener: _stdlib.socket,
    wait_stop: Stop, on_connection: Callable[[], None],
) -> None:
    loop = asyncio.get_running_loop()
    listener.setblocking(False)
    handlers: set[asyncio.Task[None]] = set()

    async def accept_loop() -> None:
        while True:
            conn, _ = await loop.sock_accept(listener)
            conn.setblocking(False)
            on_connection()
            task = asyncio.create_task(handle(conn))
            handlers.add(task)
            task.add_done_callback(handlers.discard)

    with listener:
        acceptor = asyncio.create_task(accept_loop())
        await loop.run_in_executor(None, wait_stop)
        acceptor.cancel()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(acceptor, *handlers, return_exceptions=True)


class _PingProtocol(asyncio.Protocol):
    def __init__(self, rounds: int, done: asyncio.Future[None]) -> None:
        self.rounds = rounds
        self.done = done
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.rounds -= 1
        if self.rounds > 0:
            self.transport.write(b"x")
        elif not self.done.done():
            self.done.set_result(None)


class _EchoProtocol(asyncio.Protocol):
    def __init__(self, on_connection: Callable[[], None] | None = None) -> None:
        self.on_connection = on_connection
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.on_connection is not None:
            self.on_connection()

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class _HttpProtocol(_EchoProtocol):
    def __init__(self, on_connection: Callable[[], None] | None = None) -> None:
        super().__init__(on_connection)
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if answer := _answer(self.buffer):
            self.transport.write(answer)


async def _protocol_pong(a: _stdlib.socket, b: _stdlib.socket, n: int) -> float:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    ping, _ = await loop.connect_accepted_socket(lambda: _PingProtocol(n, done), a)
    pong, _ = await loop.connect_accepted_socket(_EchoProtocol, b)
    start = perf_counter()
    ping.write(b"x")
    await done
    elapsed = perf_counter() - start
    ping.close()
    pong.close()
    return elapsed


class _BulkProtocol(asyncio.BufferedProtocol):
    def __init__(self, done: asyncio.Future[None]) -> None:
        self.buffer = memoryview(bytearray(BULK_BUFFER))
        self.received = 0
        self.done = done

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.received += nbytes

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _protocol_bulk(s: _stdlib.socket, nbytes: int) -> float:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    start = perf_counter()
    transport, protocol = await loop.create_connection(lambda: _BulkProtocol(done), sock=s)
    transport.write(_header(nbytes))
    await done
    elapsed = perf_counter() - start
    _check_bulk(protocol.received, nbytes)
    return elapsed


class _DatagramSink(asyncio.DatagramProtocol):
    def __init__(self, on_window: Callable[[], None]) -> None:
        self.count = 0
        self.on_window = on_window

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.count += 1
        if self.count % UDP_WINDOW == 0:
            self.on_window()


async def _protocol_udp(a: _stdlib.socket, b: _stdlib.socket, n: int) -> float:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    address = b.getsockname()
    windows = n // UDP_WINDOW
    sender, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=a)

    def send_window() -> None:
        nonlocal windows
        if windows == 0:
            done.set_result(None)
            return
        windows -= 1
        for _ in range(UDP_WINDOW):
            sender.sendto(UDP_PAYLOAD, address)

    receiver, _ = await loop.create_datagram_endpoint(lambda: _DatagramSink(send_window), sock=b)
    start = perf_counter()
    send_window()
    await done
    elapsed = perf_counter() - start
    sender.close()
    receiver.close()
    return elapsed


async def _protocol_serve(
    protocol: Callable[[Callable[[], None]], asyncio.Protocol], listener: _stdlib.socket,
    wait_stop: Stop, on_connection: Callable[[], None],
) -> None:
    loop = asyncio.get_running_loop()
    # create_server listens again with its own backlog (100 by default): keep the runner's.
    server = await loop.create_server(
        lambda: protocol(on_connection), sock=listener, backlog=_BACKLOG
    )
    await loop.run_in_executor(None, wait_stop)
    server.close()
    if hasattr(server, "close_clients"):
        server.close_clients()


def _loop_impls(prefix: str, factory: Callable[[], asyncio.AbstractEventLoop]) -> list[Impl]:
    runs = _in_loop(factory)
    no_hot = _not_available("a Protocol is only called once data has arrived")
    return [
        Impl(
            f"{prefix} sock_*", runs(_sock_hot), runs(_sock_pong), runs(_sock_bulk),
            runs(_sock_udp), runs(partial(_sock_serve, _sock_echo_handle)),
            runs(partial(_sock_serve, _sock_http_handle)),
        ),
        Impl(
            f"{prefix} Protocol", no_hot, runs(_protocol_pong), runs(_protocol_bulk),
            runs(_protocol_udp), runs(partial(_protocol_serve, _EchoProtocol)),
            runs(partial(_protocol_serve, _HttpProtocol)),
        ),
    ]


# -- asyncio streams (on uvloop) --------------------------------------------------


async def _streams_pong(a: _stdlib.socket, b: _stdlib.socket, n: int) -> float:
    ping_reader, ping_writer = await asyncio.open_connection(sock=a)
    pong_reader, pong_writer = await asyncio.open_connection(sock=b)

    async def echo() -> None:
        for _ in range(n):
            pong_writer.write(await pong_reader.read(1))
            await pong_writer.drain()

    start = perf_counter()
    task = asyncio.create_task(echo())
    for _ in range(n):
        ping_writer.write(b"x")
        await ping_writer.drain()
        await ping_reader.read(1)
    elapsed = perf_counter() - start
    await task
    for writer in (ping_writer, pong_writer):
        writer.close()
        await writer.wait_closed()
    return elapsed


async def _streams_bulk(s: _stdlib.socket, nbytes: int) -> float:
    received = 0
    # A StreamReader has no read-into: each read returns a new bytes object.
    reader, writer = await asyncio.open_connection(sock=s)
    start = perf_counter()
    writer.write(_header(nbytes))
    await writer.drain()
    while data := await reader.read(BULK_BUFFER):
        received += len(data)
    elapsed = perf_counter() - start
    writer.close()
    await writer.wait_closed()
    _check_bulk(received, nbytes)
    return elapsed


async def _streams_echo_handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_ECHO_CHUNK):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def _streams_http_handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            await reader.readuntil(_END_OF_REQUEST)
            writer.write(HTTP_RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, OSError):
        pass
    finally:
        writer.close()


async def _streams_serve(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]],
    listener: _stdlib.socket, wait_stop: Stop, on_connection: Callable[[], None],
) -> None:
    # A plain function whose coroutine start_server runs as the connection's task: no
    # second coroutine frame per connection.
    def connected(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Coroutine[Any, Any, None]:
        on_connection()
        return handle(reader, writer)

    # start_server listens again with its own backlog (100 by default): keep the runner's.
    server = await asyncio.start_server(connected, sock=listener, backlog=_BACKLOG)
    await asyncio.get_running_loop().run_in_executor(None, wait_stop)
    server.close()
    if hasattr(server, "close_clients"):
        server.close_clients()


def _streams_impl(name: str, factory: Callable[[], asyncio.AbstractEventLoop]) -> Impl:
    runs = _in_loop(factory)
    return Impl(
        name, _not_available("a StreamReader is only fed once data has arrived"),
        runs(_streams_pong), runs(_streams_bulk),
        _not_available("asyncio streams have no datagram API"),
        runs(partial(_streams_serve, _streams_echo_handle)),
        runs(partial(_streams_serve, _streams_http_handle)),
    )


# -- trio.socket -----------------------------------------------------------------


def _trio_impl() -> Impl:
    import trio

    async def hot(a_raw: _stdlib.socket, b_raw: _stdlib.socket, n: int) -> float:
        with trio.socket.from_stdlib_socket(a_raw) as a, trio.socket.from_stdlib_socket(b_raw) as b:
            start = perf_counter()
            for _ in range(n):
                await a.send(b"x")
                await b.recv(1)
            return perf_counter() - start

    async def pong(a_raw: _stdlib.socket, b_raw: _stdlib.socket, n: int) -> float:
        with trio.socket.from_stdlib_socket(a_raw) as a, trio.socket.from_stdlib_socket(b_raw) as b:

            async def echo() -> None:
                for _ in range(n):
                    await b.send(await b.recv(1))

            async with trio.open_nursery() as nursery:
                start = perf_counter()
                nursery.start_soon(echo)
                for _ in range(n):
                    await a.send(b"x")
                    await a.recv(1)
                elapsed = perf_counter() - start
            return elapsed

    async def bulk(raw: _stdlib.socket, nbytes: int) -> float:
        buffer = bytearray(BULK_BUFFER)
        received = 0
        with trio.socket.from_stdlib_socket(raw) as s:
            start = perf_counter()
            await s.send(_header(nbytes))
            while count := await s.recv_into(buffer):
                received += count
            elapsed = perf_counter() - start
        _check_bulk(received, nbytes)
        return elapsed

    async def udp(a_raw: _stdlib.socket, b_raw: _stdlib.socket, n: int) -> float:
        with trio.socket.from_stdlib_socket(a_raw) as a, trio.socket.from_stdlib_socket(b_raw) as b:
            address = b.getsockname()
            start = perf_counter()
            for _ in range(n // UDP_WINDOW):
                for _ in range(UDP_WINDOW):
                    await a.sendto(UDP_PAYLOAD, address)
                for _ in range(UDP_WINDOW):
                    await b.recvfrom(2048)
            return perf_counter() - start

    async def echo(conn: Any) -> None:
        with conn:
            try:
                while data := await conn.recv(_ECHO_CHUNK):
                    while data:
                        data = data[await conn.send(data) :]
            except OSError:
                pass

    async def http(conn: Any) -> None:
        with conn:
            buffer = bytearray()
            try:
                while data := await conn.recv(_ECHO_CHUNK):
                    buffer += data
                    answer = _answer(buffer)
                    while answer:
                        answer = answer[await conn.send(answer) :]
            except OSError:
                pass

    async def serve(
        handle: Callable[[Any], Coroutine[Any, Any, None]], listener_raw: _stdlib.socket,
        wait_stop: Stop, on_connection: Callable[[], None],
    ) -> None:
        listener = trio.socket.from_stdlib_socket(listener_raw)

        with listener:
            async with trio.open_nursery() as nursery:

                async def accept_loop() -> None:
                    while True:
                        conn, _ = await listener.accept()
                        on_connection()
                        nursery.start_soon(handle, conn)

                nursery.start_soon(accept_loop)
                await trio.to_thread.run_sync(wait_stop)
                nursery.cancel_scope.cancel()

    def runs(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            return trio.run(fn, *args)

        return run

    return Impl(
        "trio.socket", runs(hot), runs(pong), runs(bulk), runs(udp), runs(partial(serve, echo)),
        runs(partial(serve, http)),
    )


# -- anyio streams (on asyncio) ---------------------------------------------------


async def _anyio_hot(a_raw: _stdlib.socket, b_raw: _stdlib.socket, n: int) -> float:
    from anyio.abc import UNIXSocketStream

    async with await UNIXSocketStream.from_socket(a_raw) as a:
        async with await UNIXSocketStream.from_socket(b_raw) as b:
            start = perf_counter()
            for _ in range(n):
                await a.send(b"x")
                await b.receive(1)
            return perf_counter() - start


async def _anyio_pong(a_raw: _stdlib.socket, b_raw: _stdlib.socket, n: int) -> float:
    from anyio.abc import UNIXSocketStream

    async with await UNIXSocketStream.from_socket(a_raw) as a:
        async with await UNIXSocketStream.from_socket(b_raw) as b:

            async def echo() -> None:
                for _ in range(n):
                    await b.send(await b.receive(1))

            async with anyio.create_task_group() as tasks:
                start = perf_counter()
                tasks.start_soon(echo)
                for _ in range(n):
                    await a.send(b"x")
                    await a.receive(1)
                elapsed = perf_counter() - start
            return elapsed


async def _anyio_bulk(raw: _stdlib.socket, nbytes: int) -> float:
    from anyio.abc import SocketStream

    received = 0
    # anyio streams have no recv_into: each receive returns a new bytes object.
    async with await SocketStream.from_socket(raw) as s:
        start = perf_counter()
        await s.send(_header(nbytes))
        try:
            while True:
                received += len(await s.receive(BULK_BUFFER))
        except anyio.EndOfStream:
            pass
        elapsed = perf_counter() - start
    _check_bulk(received, nbytes)
    return elapsed


async def _anyio_udp(a_raw: _stdlib.socket, b_raw: _stdlib.socket, n: int) -> float:
    from anyio.abc import UDPSocket

    host, port = b_raw.getsockname()
    async with await UDPSocket.from_socket(a_raw) as a, await UDPSocket.from_socket(b_raw) as b:
        start = perf_counter()
        for _ in range(n // UDP_WINDOW):
            for _ in range(UDP_WINDOW):
                await a.sendto(UDP_PAYLOAD, host, port)
            for _ in range(UDP_WINDOW):
                await b.receive()
        return perf_counter() - start


async def _anyio_echo_handle(stream: AnyioSocketStream) -> None:
    async with stream:
        try:
            while True:
                await stream.send(await stream.receive(_ECHO_CHUNK))
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            pass


async def _anyio_http_handle(stream: AnyioSocketStream) -> None:
    # anyio's own way to read up to a delimiter: a buffered stream over the socket's.
    buffered = BufferedByteReceiveStream(stream)
    async with stream:
        try:
            while True:
                await buffered.receive_until(_END_OF_REQUEST, _ECHO_CHUNK)
                await stream.send(HTTP_RESPONSE)
        except (anyio.IncompleteRead, anyio.BrokenResourceError, OSError):
            pass


async def _anyio_serve(
    handle: Callable[[AnyioSocketStream], Coroutine[Any, Any, None]],
    listener_raw: _stdlib.socket, wait_stop: Stop, on_connection: Callable[[], None],
) -> None:
    from anyio.abc import SocketListener

    listener = await SocketListener.from_socket(listener_raw)

    async with listener, anyio.create_task_group() as tasks:

        async def accept_loop() -> None:
            while True:
                stream = await listener.accept()
                on_connection()
                tasks.start_soon(handle, stream)

        tasks.start_soon(accept_loop)
        await anyio.to_thread.run_sync(wait_stop)
        tasks.cancel_scope.cancel()


def _anyio_impl() -> Impl:
    def runs(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            return anyio.run(fn, *args, backend="asyncio")

        return run

    return Impl(
        "anyio", runs(_anyio_hot), runs(_anyio_pong), runs(_anyio_bulk), runs(_anyio_udp),
        runs(partial(_anyio_serve, _anyio_echo_handle)),
        runs(partial(_anyio_serve, _anyio_http_handle)),
    )


# -- the anyio streams rows: asock.streams against anyio's own --------------------

#: The backends of the anyio streams rows, one row each.
STREAMS_BACKENDS = ("asyncio", "uvloop", "trio")
#: The columns of the anyio streams rows: the library whose ``SocketStream`` is used.
STREAMS_LIBRARIES = ("asock.streams", "anyio")


@dataclass(frozen=True)
class StreamsImpl:
    """One cell of the anyio streams rows: one library's ``SocketStream`` on one backend."""

    library: str
    backend: str
    pong: Callable[[_stdlib.socket, _stdlib.socket, int], float]

    @property
    def name(self) -> str:
        """``library/backend``, e.g. ``asock.streams/uvloop``: how targets name it."""
        return f"{self.library}/{self.backend}"


async def _stream_pong(
    stream_type: Any, a_raw: _stdlib.socket, b_raw: _stdlib.socket, n: int
) -> float:
    async with await stream_type.from_socket(a_raw) as a:
        async with await stream_type.from_socket(b_raw) as b:

            async def echo() -> None:
                for _ in range(n):
                    await b.send(await b.receive(1))

            async with anyio.create_task_group() as tasks:
                start = perf_counter()
                tasks.start_soon(echo)
                for _ in range(n):
                    await a.send(b"x")
                    await a.receive(1)
                elapsed = perf_counter() - start
            return elapsed


def _run_stream_pong(
    stream_type: Any, backend: str, options: dict[str, Any],
    a: _stdlib.socket, b: _stdlib.socket, n: int,
) -> float:
    return anyio.run(_stream_pong, stream_type, a, b, n, backend=backend, backend_options=options)


def stream_implementations() -> list[StreamsImpl]:
    """Every cell of the anyio streams rows installed here, row by row.

    Without uvloop or trio their row is left out.
    """
    backends: list[tuple[str, str, dict[str, Any]]] = [("asyncio", "asyncio", {})]
    uvloop_factory = _uvloop_factory()
    if uvloop_factory is not None:
        backends.append(("uvloop", "asyncio", {"loop_factory": uvloop_factory}))
    if _has_trio():
        backends.append(("trio", "trio", {}))
    # anyio's SocketStream is abstract: its from_socket builds the backend's own stream.
    types: dict[str, Any] = {
        "asock.streams": asock.streams.SocketStream, "anyio": AnyioSocketStream,
    }
    return [
        StreamsImpl(
            library, backend, partial(_run_stream_pong, types[library], anyio_backend, options)
        )
        for backend, anyio_backend, options in backends
        for library in STREAMS_LIBRARIES
    ]


# -- the columns ----------------------------------------------------------------


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _has_trio() -> bool:
    try:
        import trio  # noqa: F401
    except ImportError:
        return False
    return True


def implementations() -> list[Impl]:
    """Every implementation installed here, in table order.

    Without uvloop or trio their columns are left out (the runner says so).
    """
    impls = [_asock_impl("asock/asyncio", asyncio.new_event_loop)]
    uvloop_factory = _uvloop_factory()
    if uvloop_factory is not None:
        impls.append(_asock_impl("asock/uvloop", uvloop_factory))
    if _has_trio():
        impls.append(_asock_trio_impl())
    impls.append(_sync_impl("asock_sync", asock_sync))
    impls.append(_sync_impl("stdlib", _stdlib))
    impls.extend(_loop_impls("asyncio", asyncio.new_event_loop))
    if uvloop_factory is not None:
        impls.extend(_loop_impls("uvloop", uvloop_factory))
        impls.append(_streams_impl("asyncio streams/uvloop", uvloop_factory))
    if _has_trio():
        impls.append(_trio_impl())
    impls.append(_anyio_impl())
    return impls


def implementation_names() -> list[str]:
    """The names of every implementation the bench knows, installed or not.

    The table's columns, then the cells of the anyio streams rows.
    """
    return [
        "asock/asyncio", "asock/uvloop", "asock/trio", "asock_sync", "stdlib",
        "asyncio sock_*", "asyncio Protocol", "uvloop sock_*", "uvloop Protocol",
        "asyncio streams/uvloop", "trio.socket", "anyio",
    ] + [f"{library}/{backend}" for backend in STREAMS_BACKENDS for library in STREAMS_LIBRARIES]
