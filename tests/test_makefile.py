"""asock.socket.makefile: awaitable binary and text files on a socket.

The peers are real: another asock socket on the same loop, or a stdlib socket
driven by a thread. Every failure path is covered: bad arguments (with the
stdlib's exception types), timeouts and cancellation in the middle of a line
(no byte lost, the file stays usable), non-blocking mode, close() while a
call waits, two tasks on one file, and the descriptor's lifetime.
"""

from __future__ import annotations

import array
import errno
import gc
import io
import os
import socket as stdlib_socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked
from core_helpers import fill_send_buffer

import asock

pytestmark = pytest.mark.usefixtures("no_fd_leak")

GUARD = 10
SHORT = 0.05


@asynccontextmanager
async def pair() -> AsyncIterator[tuple[asock.socket, asock.socket]]:
    a, b = asock.socketpair()
    async with a, b:
        with anyio.fail_after(GUARD):
            yield a, b


@contextmanager
def stdlib_peer(
    work: Callable[[stdlib_socket.socket], Any],
) -> Iterator[tuple[asock.socket, list[Any]]]:
    """An asock socket whose peer is a stdlib socket that ``work`` drives in a thread.

    The list receives ``work``'s result, or its exception.
    """
    ours, theirs = stdlib_socket.socketpair()
    theirs.settimeout(GUARD)
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work(theirs))
        except BaseException as exc:
            outcome.append(exc)
        finally:
            theirs.close()

    thread = threading.Thread(target=run)
    sock = asock.from_stdlib_socket(ours)
    thread.start()
    try:
        with sock:
            yield sock, outcome
    finally:
        thread.join(GUARD)
        assert not thread.is_alive()


async def join(outcome: list[Any]) -> Any:
    """Wait (off the loop) until the peer thread reported, and return what it did."""
    with anyio.fail_after(GUARD):
        while not outcome:
            await anyio.sleep(0.005)
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


# -- modes and arguments -------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "kind", "readable", "writable", "reported"),
    [
        ("r", asock.SocketTextFile, True, False, "r"),
        ("w", asock.SocketTextFile, False, True, "w"),
        ("rw", asock.SocketTextFile, True, True, "rw"),
        ("rb", asock.SocketFile, True, False, "rb"),
        ("wb", asock.SocketFile, False, True, "wb"),
        ("rwb", asock.SocketFile, True, True, "rwb"),
        ("b", asock.SocketFile, True, False, "rb"),
        ("", asock.SocketTextFile, True, False, ""),
    ],
)
async def test_modes(
    mode: str, kind: type, readable: bool, writable: bool, reported: str
) -> None:
    async with pair() as (a, _):
        f = a.makefile(mode)
        assert type(f) is kind
        assert f.mode == reported
        assert f.readable() is readable
        assert f.writable() is writable
        assert f.seekable() is False
        assert f.fileno() == a.fileno()
        assert not f.closed
        await f.close()
        assert f.closed


@pytest.mark.parametrize("mode", ["x", "rt", "a", "r+", "wx", "R"])
async def test_bad_mode_is_valueerror_like_the_stdlib(mode: str) -> None:
    with stdlib_socket.socket() as plain, pytest.raises(ValueError) as stdlib_error:
        plain.makefile(mode)
    async with pair() as (a, _):
        with pytest.raises(ValueError) as error:
            a.makefile(mode)
        assert str(error.value) == str(stdlib_error.value)
        assert a._io_refs == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"mode": "r", "buffering": 0}, ValueError),
        ({"mode": "w", "buffering": 0}, ValueError),
        ({"mode": "rb", "buffering": "8"}, TypeError),
        ({"mode": "r", "encoding": "no-such-codec"}, LookupError),
        ({"mode": "r", "encoding": "hex"}, LookupError),
        ({"mode": "r", "encoding": 8}, TypeError),
        ({"mode": "r", "errors": 8}, TypeError),
        ({"mode": "r", "newline": "x"}, ValueError),
        ({"mode": "r", "newline": 8}, TypeError),
        ({"mode": 8}, TypeError),
    ],
)
async def test_bad_arguments_raise_the_stdlibs_errors(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with stdlib_socket.socket() as plain:
        with pytest.raises(error):
            plain.makefile(**kwargs)
    async with pair() as (a, _):
        with pytest.raises(error):
            a.makefile(**kwargs)
        # A refused call took no reference: close() closes the descriptor at once.
        assert a._io_refs == 0
        a.close()
        assert a.fileno() == -1


async def test_unbuffered_binary_is_allowed() -> None:
    async with pair() as (a, b):
        async with a.makefile("rwb", buffering=0) as f:
            await f.write(b"sent at once")
            assert await b.recv(100) == b"sent at once"


# -- binary reading ------------------------------------------------------


async def test_binary_reads_from_an_asock_peer() -> None:
    async with pair() as (a, b):
        f = a.makefile("rb")
        await b.sendall(b"one\ntwo\nthree\nfour\nfive\nsix")
        assert await f.readline() == b"one\n"
        assert await f.read(4) == b"two\n"
        assert await f.readline(3) == b"thr"
        assert await f.readline() == b"ee\n"
        assert await f.read1(2) == b"fo"
        target = bytearray(3)
        assert await f.readinto(target) == 3
        assert target == b"ur\n"
        b.shutdown(stdlib_socket.SHUT_WR)
        assert await f.readlines() == [b"five\n", b"six"]
        assert await f.read() == b""
        assert await f.readline() == b""
        await f.close()


async def test_read_n_waits_for_all_n_bytes() -> None:
    async with pair() as (a, b), anyio.create_task_group() as tg:
        f = a.makefile("rb")

        async def dribble() -> None:
            for part in (b"ab", b"cd", b"ef"):
                await anyio.sleep(0.01)
                await b.sendall(part)

        tg.start_soon(dribble)
        assert await f.read(5) == b"abcde"
        assert await f.read(1) == b"f"
        await f.close()


async def test_readlines_with_hint_and_async_iteration() -> None:
    async with pair() as (a, b):
        f = a.makefile("rb")
        await b.sendall(b"a\nbb\nccc\ndddd\n")
        b.shutdown(stdlib_socket.SHUT_WR)
        assert await f.readlines(3) == [b"a\n", b"bb\n"]
        assert [line async for line in f] == [b"ccc\n", b"dddd\n"]
        await f.close()


async def test_binary_reads_from_a_stdlib_peer_thread() -> None:
    lines = [b"%d: %s\n" % (i, b"x" * i) for i in range(200)]

    def send_lines(peer: stdlib_socket.socket) -> None:
        with peer.makefile("wb") as out:
            out.writelines(lines)

    with stdlib_peer(send_lines) as (sock, outcome):
        async with sock.makefile("rb") as f:
            got = [line async for line in f]
        await join(outcome)
    assert got == lines


async def test_unbuffered_readline_reads_no_byte_past_the_line() -> None:
    async with pair() as (a, b):
        await b.sendall(b"header\nrest of the stream")
        f = a.makefile("rb", buffering=0)
        assert await f.readline() == b"header\n"
        await f.close()
        assert await a.recv(100) == b"rest of the stream"


async def test_unbuffered_read_returns_what_one_receive_got() -> None:
    async with pair() as (a, b):
        f = a.makefile("rb", buffering=0)
        await b.sendall(b"abc")
        assert await f.read(100) == b"abc"
        target = bytearray(10)
        await b.sendall(b"de")
        assert await f.readinto(target) == 2
        await f.close()


# -- binary writing ------------------------------------------------------


async def test_buffered_write_goes_out_on_flush_and_close() -> None:
    def read_all(peer: stdlib_socket.socket) -> bytes:
        with peer.makefile("rb") as incoming:
            return incoming.read()

    with stdlib_peer(read_all) as (sock, outcome):
        f = sock.makefile("wb", buffering=1024)
        assert await f.write(b"first ") == 6
        await f.flush()
        await f.write(bytearray(b"second "))
        await f.write(memoryview(b"third"))
        await f.close()
        sock.shutdown(stdlib_socket.SHUT_WR)
        assert await join(outcome) == b"first second third"


async def test_buffered_write_sends_once_the_buffer_is_full() -> None:
    async with pair() as (a, b):
        f = a.makefile("wb", buffering=8)
        await f.write(b"1234")
        b.settimeout(0.0)
        with pytest.raises(BlockingIOError):
            await b.recv(100)
        await f.write(b"5678")
        b.settimeout(GUARD)
        assert await b.recv(100) == b"12345678"
        await f.close()


async def test_write_takes_any_buffer() -> None:
    async with pair() as (a, b):
        async with a.makefile("wb") as f:
            await f.write(array.array("H", [1, 2]))
        assert await b.recv(100) == bytes(array.array("H", [1, 2]))


# -- text ------------------------------------------------------------------


async def test_text_decodes_characters_split_across_receives() -> None:
    async with pair() as (a, b), anyio.create_task_group() as tg:
        f = a.makefile("r", encoding="utf-8")
        data = "héllo wörld €\n".encode()

        async def one_byte_at_a_time() -> None:
            for i in range(len(data)):
                await b.sendall(data[i : i + 1])
                await anyio.sleep(0.001)

        tg.start_soon(one_byte_at_a_time)
        assert await f.readline() == "héllo wörld €\n"
        await f.close()


@pytest.mark.parametrize(
    ("newline", "lines"),
    [
        (None, ["a\n", "b\n", "c\n", "d"]),
        ("", ["a\r\n", "b\r", "c\n", "d"]),
        ("\n", ["a\r\n", "b\rc\n", "d"]),
        ("\r", ["a\r", "\nb\r", "c\nd"]),
        ("\r\n", ["a\r\n", "b\rc\nd"]),
    ],
)
async def test_text_newlines_as_textiowrapper(newline: str | None, lines: list[str]) -> None:
    raw = b"a\r\nb\rc\nd"
    reference = io.TextIOWrapper(io.BytesIO(raw), "ascii", newline=newline).readlines()
    assert reference == lines
    async with pair() as (a, b):
        f = a.makefile("r", encoding="ascii", newline=newline)
        # "\r" and "\n" in separate sends: the decoder must not split "\r\n".
        for part in (b"a\r", b"\nb\r", b"c\nd"):
            await b.sendall(part)
            await anyio.sleep(0.005)
        b.shutdown(stdlib_socket.SHUT_WR)
        assert [line async for line in f] == lines
        await f.close()


async def test_text_read_readlines_and_sizes() -> None:
    async with pair() as (a, b):
        f = a.makefile("r", encoding="utf-8", newline=None)
        await b.sendall("ab€d\r\nsecond\nthird\nlast".encode())
        b.shutdown(stdlib_socket.SHUT_WR)
        assert await f.read(3) == "ab€"
        assert await f.readline(2) == "d\n"
        assert await f.readlines(3) == ["second\n"]
        assert await f.read() == "third\nlast"
        assert await f.read() == ""
        assert f.newlines == ("\n", "\r\n")
        await f.close()


async def test_text_write_encodes_and_translates() -> None:
    async with pair() as (a, b):
        f = a.makefile("w", encoding="utf-16-le", newline="\r\n")
        assert await f.write("é\n") == 2
        await f.flush()
        assert await b.recv(100) == "é\r\n".encode("utf-16-le")
        g = a.makefile("w", encoding="ascii", errors="replace")
        await g.write("naïve")
        await g.close()
        assert await b.recv(100) == b"na?ve"
        await f.close()


async def test_text_errors_handler_and_strict_decoding() -> None:
    async with pair() as (a, b):
        lenient = a.makefile("r", encoding="utf-8", errors="replace")
        await b.sendall(b"ok \xff\n")
        assert await lenient.readline() == "ok \ufffd\n"
        await lenient.close()
        strict = a.makefile("r", encoding="utf-8")
        await b.sendall(b"bad \xff\n")
        with pytest.raises(UnicodeDecodeError):
            await strict.readline()
        await strict.close()


async def test_text_rw_file_talks_to_a_stdlib_peer() -> None:
    def upper_echo(peer: stdlib_socket.socket) -> None:
        with peer.makefile("rw", encoding="utf-8", newline="\n") as text:
            for line in text:
                text.write(line.upper())
                text.flush()

    with stdlib_peer(upper_echo) as (sock, outcome):
        f = sock.makefile("rw", encoding="utf-8", newline="\n")
        for word in ("ça", "va", "bien"):
            await f.write(word + "\n")
            await f.flush()
            assert await f.readline() == word.upper() + "\n"
        await f.close()
        sock.shutdown(stdlib_socket.SHUT_WR)
        await join(outcome)


# -- failure paths ---------------------------------------------------------


async def test_wrong_direction_closed_file_and_bad_buffers() -> None:
    async with pair() as (a, _):
        reader = a.makefile("rb")
        writer = a.makefile("wb")
        text = a.makefile("r")
        with pytest.raises(io.UnsupportedOperation):
            await reader.write(b"x")
        with pytest.raises(io.UnsupportedOperation):
            await writer.read()
        with pytest.raises(TypeError):
            await reader.readinto(b"read-only")
        with pytest.raises(TypeError):
            await reader.readinto("not a buffer")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await reader.read("3")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await writer.write("text")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await a.makefile("w").write(b"bytes")  # type: ignore[arg-type]
        await writer.flush()  # nothing buffered: returns at once
        await reader.flush()  # a read-only file has nothing to flush
        for f in (reader, writer, text):
            await f.close()
            await f.close()  # twice is harmless
        with pytest.raises(ValueError, match="closed file"):
            await reader.read()
        with pytest.raises(ValueError, match="closed file"):
            await writer.write(b"x")
        with pytest.raises(ValueError, match="closed file"):
            await text.readline()
        with pytest.raises(ValueError):
            reader.fileno()
        # One file above was never closed (the text writer): let it go.
        gc.collect()


async def test_readline_timeout_keeps_the_partial_line() -> None:
    async with pair() as (a, b):
        a.settimeout(SHORT)
        f = a.makefile("rb")
        await b.sendall(b"par")
        with pytest.raises(TimeoutError):
            await f.readline()
        await b.sendall(b"tial\n")
        assert await f.readline() == b"partial\n"
        await f.close()


async def test_read_n_timeout_keeps_the_bytes_and_the_file_stays_usable() -> None:
    async with pair() as (a, b):
        a.settimeout(SHORT)
        f = a.makefile("rb")
        await b.sendall(b"12345")
        with pytest.raises(TimeoutError):
            await f.read(10)
        with pytest.raises(TimeoutError):
            await f.readlines()
        await b.sendall(b"67890")
        assert await f.read(10) == b"1234567890"
        await f.close()


async def test_text_timeout_keeps_decoded_and_undecoded_data() -> None:
    async with pair() as (a, b):
        a.settimeout(SHORT)
        f = a.makefile("r", encoding="utf-8")
        euro = "€".encode()
        await b.sendall(b"price: " + euro[:1])
        with pytest.raises(TimeoutError):
            await f.readline()
        with pytest.raises(TimeoutError):
            await f.read()
        await b.sendall(euro[1:] + b"5\n")
        assert await f.readline() == "price: €5\n"
        await f.close()


async def test_one_deadline_per_call_of_the_file() -> None:
    # Each receive gets data in time, but the call as a whole runs past its deadline.
    async with pair() as (a, b), anyio.create_task_group() as tg:
        a.settimeout(0.3)
        f = a.makefile("rb")

        async def dribble() -> None:
            for _ in range(10):
                await anyio.sleep(0.1)
                await b.sendall(b"x")

        tg.start_soon(dribble)
        with pytest.raises(TimeoutError):
            await f.readline()
        tg.cancel_scope.cancel()
        await f.close()


async def test_cancelled_readline_loses_nothing() -> None:
    async with pair() as (a, b):
        f = a.makefile("rb")
        await b.sendall(b"first half, ")
        with anyio.move_on_after(SHORT) as scope:
            await f.readline()
        assert scope.cancelled_caught
        await b.sendall(b"second half\n")
        assert await f.readline() == b"first half, second half\n"
        await f.close()


async def test_non_blocking_mode_raises_blockingioerror_and_keeps_data() -> None:
    async with pair() as (a, b):
        a.settimeout(0.0)
        f = a.makefile("rb")
        with pytest.raises(BlockingIOError):
            await f.read(1)
        await b.sendall(b"no newline yet")
        await anyio.sleep(SHORT)
        with pytest.raises(BlockingIOError):
            await f.readline()
        await b.sendall(b"\n")
        await anyio.sleep(SHORT)
        assert await f.readline() == b"no newline yet\n"
        await f.close()


async def test_write_timeout_keeps_the_unsent_bytes_for_the_next_flush() -> None:
    async with pair() as (a, b):
        await fill_send_buffer(a)
        a.settimeout(SHORT)
        f = a.makefile("wb", buffering=4096)
        data = bytes(range(256)) * 64  # 16 KiB
        with pytest.raises(TimeoutError):
            await f.write(data)
        received = bytearray()
        async with anyio.create_task_group() as tg:

            async def drain() -> None:
                while True:
                    chunk = await b.recv(65536)
                    if not chunk:
                        return
                    received.extend(chunk)

            tg.start_soon(drain)
            a.settimeout(GUARD)
            await f.flush()
            await f.close()
            a.shutdown(stdlib_socket.SHUT_WR)
        assert received.endswith(data)
        assert received[: -len(data)] == b"f" * (len(received) - len(data))


async def test_unbuffered_write_timeout_carries_bytes_sent() -> None:
    async with pair() as (a, b):
        filled = await fill_send_buffer(a)
        a.settimeout(0.3)
        f = a.makefile("wb", buffering=0)
        received = bytearray()

        async def drain(limit: int) -> None:
            while len(received) < limit:
                chunk = await b.recv(65536)
                if not chunk:
                    return
                received.extend(chunk)

        async with anyio.create_task_group() as tg:
            tg.start_soon(drain, filled + 20_000)
            with pytest.raises(TimeoutError) as error:
                await f.write(b"y" * 1_000_000)
        sent = error.value.bytes_sent  # type: ignore[attr-defined]
        assert 0 < sent < 1_000_000
        a.shutdown(stdlib_socket.SHUT_WR)
        await drain(10**9)
        assert received == b"f" * filled + b"y" * sent
        await f.close()


async def test_close_from_another_task_wakes_a_waiting_read() -> None:
    async with pair() as (a, b), anyio.create_task_group() as tg:
        f = a.makefile("rb")
        outcome: list[BaseException] = []

        async def reader() -> None:
            try:
                await f.readline()
            except ValueError as exc:
                outcome.append(exc)

        tg.start_soon(reader)
        await wait_all_tasks_blocked()
        await f.close()
        with anyio.fail_after(GUARD):
            while not outcome:
                await anyio.sleep(0.001)
        assert "closed file" in str(outcome[0])
        # The woken read took nothing from the kernel: the socket still gets it all.
        await b.sendall(b"for the socket")
        assert await a.recv(100) == b"for the socket"


async def test_close_from_another_task_wakes_a_waiting_write() -> None:
    async with pair() as (a, _), anyio.create_task_group() as tg:
        await fill_send_buffer(a)
        f = a.makefile("wb", buffering=0)
        outcome: list[BaseException] = []

        async def writer() -> None:
            try:
                await f.write(b"z" * 100_000)
            except ValueError as exc:
                outcome.append(exc)

        tg.start_soon(writer)
        await wait_all_tasks_blocked()
        await f.close()
        with anyio.fail_after(GUARD):
            while not outcome:
                await anyio.sleep(0.001)


async def test_the_descriptor_stays_open_until_the_socket_and_every_file_close() -> None:
    a, b = asock.socketpair()
    async with b:
        f = a.makefile("rb")
        g = a.makefile("w")
        fd = a.fileno()
        a.close()
        assert a.fileno() == fd  # still open: two files hold it
        await b.sendall(b"still works\n")
        assert await f.readline() == b"still works\n"
        await f.close()
        assert a.fileno() == fd
        await g.close()
        assert a.fileno() == -1


async def test_closing_the_last_file_closes_the_descriptor_and_wakes_waiters() -> None:
    a, b = asock.socketpair()
    async with b, anyio.create_task_group() as tg:
        f = a.makefile("rb")
        outcome: list[BaseException] = []

        async def reader() -> None:
            try:
                await a.recv(1)
            except OSError as exc:
                outcome.append(exc)

        tg.start_soon(reader)
        await wait_all_tasks_blocked()
        a.close()  # the file holds the descriptor: the receive keeps waiting
        await wait_all_tasks_blocked()
        assert not outcome
        await f.close()
        with anyio.fail_after(GUARD):
            while not outcome:
                await anyio.sleep(0.001)
        assert isinstance(outcome[0], OSError)
        assert outcome[0].errno == errno.EBADF


async def test_a_dropped_file_lets_go_of_the_socket() -> None:
    a, _b = asock.socketpair()
    async with _b:
        f = a.makefile("rb")
        a.close()
        assert a.fileno() >= 0
        del f
        gc.collect()
        assert a.fileno() == -1


async def test_two_readers_or_two_writers_on_one_file_are_refused() -> None:
    async with pair() as (a, _), anyio.create_task_group() as tg:
        f = a.makefile("rwb", buffering=0)
        tg.start_soon(f.readline)
        await wait_all_tasks_blocked()
        with pytest.raises(RuntimeError, match="already reading"):
            await f.read(1)
        await fill_send_buffer(a)
        tg.start_soon(f.write, b"w" * 100_000)
        await wait_all_tasks_blocked()
        with pytest.raises(RuntimeError, match="already writing"):
            await f.write(b"x")
        tg.cancel_scope.cancel()
        await f.close()


async def test_eof_in_every_read_call() -> None:
    async with pair() as (a, b):
        b.shutdown(stdlib_socket.SHUT_WR)
        f = a.makefile("rb")
        assert await f.read() == b""
        assert await f.read(5) == b""
        assert await f.read1() == b""
        assert await f.readline() == b""
        assert await f.readlines() == []
        assert await f.readinto(bytearray(4)) == 0
        t = a.makefile("r")
        assert await t.read() == ""
        assert await t.read(3) == ""
        assert await t.readline() == ""
        assert await t.readlines() == []
        await f.close()
        await t.close()


async def test_peer_closing_ends_the_partial_line() -> None:
    async with pair() as (a, b):
        f = a.makefile("rb")
        await b.sendall(b"partial")
        a.settimeout(SHORT)
        with pytest.raises(TimeoutError):
            await f.readline()
        b.close()
        assert await f.readline() == b"partial"
        assert await f.readline() == b""
        await f.close()


async def test_read_on_a_detached_socket_raises_ebadf() -> None:
    async with pair() as (a, _):
        f = a.makefile("rb")
        os.close(a.detach())
        with pytest.raises(OSError) as error:
            await f.read(1)
        assert error.value.errno == errno.EBADF
        await f.close()
