"""The async front's hot calls behave as coroutines on both twins.

recv, recv_into, recvfrom, send and sendto come from
``asock_core.async_calls.AsyncCalls``: the operation layer's coroutines in
pure Python, compiled awaitables where the extension is built. These tests
hold the compiled awaitable to what a coroutine promises (nothing happens
until it is awaited, throw/close/send, no reuse) and to the operation
layer's rules where it takes its own paths (the direct system call, the
hand-over to ``_retry`` with a timeout, the fallback for unusual
arguments). The suite runs on both twins (``.ci/run``); ``COMPILED`` says
which this run has.
"""

from __future__ import annotations

import asyncio
import collections.abc
import errno
import gc
import socket as stdlib_socket
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

import asock
from asock_core import async_calls

GUARD = 10


def test_which_twin_is_in_use() -> None:
    """The class the front inherits from is the twin COMPILED names."""
    assert issubclass(asock.socket, async_calls.AsyncCalls)
    module = async_calls.AsyncCalls.__module__
    assert (type(async_calls.AsyncCalls).__name__ == "type") and module.startswith("asock_core")
    compiled_method = type(asock.socket.recv).__name__ == "method_descriptor"
    assert compiled_method is async_calls.COMPILED


@pytest.mark.parametrize(
    "make_call",
    [
        lambda a: a.recv(1),
        lambda a: a.recv_into(bytearray(4)),
        lambda a: a.recvfrom(4),
        lambda a: a.send(b"x"),
    ],
    ids=["recv", "recv_into", "recvfrom", "send"],
)
def test_a_call_is_a_coroutine_that_does_nothing_until_awaited(make_call: Any) -> None:
    a, b = asock.socketpair()
    with a, b:
        b._sock.send(b"data")
        call = make_call(a)
        assert isinstance(call, collections.abc.Coroutine)
        assert asyncio.iscoroutine(call)
        call.close()
        # Nothing was received or sent: the bytes are still there, and the
        # peer got nothing.
        assert a._sock.recv(10) == b"data"
        b._sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            b._sock.recv(10)
        del call
        gc.collect()


def test_driving_a_call_by_hand_follows_the_coroutine_protocol() -> None:
    a, b = asock.socketpair()
    with a, b:
        b._sock.send(b"abc")
        call = a.recv(10)
        with pytest.raises(StopIteration) as done:
            call.send(None)
        assert done.value.value == b"abc"
        with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
            call.send(None)
        fresh = a.recv(10)
        with pytest.raises(TypeError, match="non-None value"):
            fresh.send(1)
        fresh.close()
        unstarted = a.recv(10)
        with pytest.raises(KeyError):
            unstarted.throw(KeyError("x"))
        with pytest.raises(RuntimeError, match="cannot reuse"):
            unstarted.send(None)


async def test_create_task_and_start_soon_take_a_call() -> None:
    a, b = asock.socketpair()
    with a, b:
        results: list[bytes] = []

        async def keep(call: collections.abc.Coroutine[Any, Any, bytes]) -> None:
            results.append(await call)

        async with anyio.create_task_group() as tg:
            tg.start_soon(keep, a.recv(5))
            await wait_all_tasks_blocked()
            await b.send(b"hello")
        assert results == [b"hello"]


async def test_asyncio_create_task_runs_a_call(anyio_backend_name: str) -> None:
    if anyio_backend_name == "trio":
        pytest.skip("asyncio.create_task is asyncio's")
    a, b = asock.socketpair()
    with a, b:
        task = asyncio.create_task(a.recv(5))
        await asyncio.sleep(0)
        assert not task.done()
        await b.send(b"later")
        assert await task == b"later"


async def test_cancelling_a_waiting_call_takes_nothing() -> None:
    a, b = asock.socketpair()
    with a, b:
        for make in (lambda: a.recv(3), lambda: a.recv_into(bytearray(3)), lambda: a.recvfrom(3)):
            with anyio.move_on_after(0.01) as scope:
                await make()
            assert scope.cancelled_caught
            await b.send(b"xyz")
            with anyio.fail_after(GUARD):
                assert await a.recv(3) == b"xyz"


async def test_a_call_waits_again_after_a_wake_up_that_finds_nothing() -> None:
    """Two readers, one byte: the one that loses the race waits for the next."""
    a, b = asock.socketpair()
    with a, b:
        got: list[bytes] = []

        async def reader() -> None:
            got.append(await a.recv(1))

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                tg.start_soon(reader)
                await wait_all_tasks_blocked()
                await b.send(b"1")
                while not got:
                    await anyio.sleep(0.001)
                await wait_all_tasks_blocked()
                assert got == [b"1"]  # the other reader went back to waiting
                await b.send(b"2")
        assert sorted(got) == [b"1", b"2"]


async def test_close_wakes_a_waiting_call_with_ebadf() -> None:
    a, b = asock.socketpair()
    with b:
        errors: list[OSError] = []

        async def reader() -> None:
            try:
                await a.recv(1)
            except OSError as exc:
                errors.append(exc)

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                await wait_all_tasks_blocked()
                a.close()
        assert [e.errno for e in errors] == [errno.EBADF]


async def test_timeouts_and_non_blocking_mode_on_the_hot_calls() -> None:
    a, b = asock.socketpair()
    with a, b:
        a.settimeout(0.05)
        for make in (lambda: a.recv(1), lambda: a.recv_into(bytearray(1)), lambda: a.recvfrom(1)):
            with anyio.fail_after(GUARD), pytest.raises(TimeoutError, match="timed out"):
                await make()
        a.settimeout(0.0)
        with pytest.raises(BlockingIOError) as info:
            await a.recv(1)
        assert info.value.errno == errno.EAGAIN
        a.settimeout(None)
        with pytest.raises(BlockingIOError):
            await a.recv(1, stdlib_socket.MSG_DONTWAIT)
        # A timeout that data beats: _retry hands back what arrived.
        a.settimeout(GUARD)
        async with anyio.create_task_group() as tg:
            results: list[bytes] = []

            async def reader() -> None:
                results.append(await a.recv(4))

            tg.start_soon(reader)
            await wait_all_tasks_blocked()
            await b.send(b"late")
        assert results == [b"late"]


async def test_unusual_arguments_get_the_stdlibs_errors() -> None:
    a, b = asock.socketpair()
    raw_a, raw_b = stdlib_socket.socketpair()
    with a, b, raw_a, raw_b:
        cases: list[tuple[Any, Any]] = [
            (lambda s: s.recv(-1), ValueError),
            (lambda s: s.recv("1"), TypeError),
            (lambda s: s.recv(1, "0"), TypeError),
            (lambda s: s.recv(1, 2**40), OverflowError),
            (lambda s: s.recv_into(b"immutable"), TypeError),
            (lambda s: s.recv_into(bytearray(2), 5), ValueError),
            (lambda s: s.recv_into(bytearray(2), -1), ValueError),
            (lambda s: s.send("text"), TypeError),
            (lambda s: s.send(b"x", None), TypeError),
            (lambda s: s.recvfrom(-1), ValueError),
        ]
        for make, expected in cases:
            with pytest.raises(expected) as ours:
                await make(a)
            with pytest.raises(expected) as theirs:
                make(raw_a)
            assert str(ours.value) == str(theirs.value)
        # Sizes the fast path leaves to the stdlib still work.
        assert await a.send(b"") == 0
        await b.send(b"q")
        assert await a.recv(0) == b""
        assert await a.recv(1) == b"q"


async def test_recv_into_honours_nbytes_and_memoryviews() -> None:
    a, b = asock.socketpair()
    with a, b:
        await b.send(b"abcdef")
        buffer = bytearray(10)
        assert await a.recv_into(memoryview(buffer)[2:], 3) == 3
        assert buffer[:6] == b"\x00\x00abc\x00"
        assert await a.recv_into(buffer) == 3
        assert buffer[:3] == b"def"
        assert await b.send(memoryview(b"xyz")[1:]) == 2
        assert await a.recv(5) == b"yz"


async def test_datagram_calls_to_a_numeric_host() -> None:
    with asock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as rx, asock.socket(
        stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM
    ) as tx:
        await rx.bind(("127.0.0.1", 0))
        address = rx.getsockname()
        for i in range(3):  # the first send parses the host, later ones take the fast path
            assert await tx.sendto(b"d%d" % i, address) == 2
            with anyio.fail_after(GUARD):
                data, sender = await rx.recvfrom(10)
            assert data == b"d%d" % i and sender[1] == tx.getsockname()[1]
        tx.close()
        with pytest.raises(OSError) as info:
            await tx.sendto(b"x", address)
        assert info.value.errno == errno.EBADF


async def test_datagrams_on_ipv4_match_the_stdlib_on_every_path() -> None:
    """recvfrom and sendto on an AF_INET socket (direct system calls on the compiled
    twin): the same values as the stdlib's, senders told apart, addresses only the
    stdlib parses ("", a port out of range, a non-int port) handled as it does, a
    non-buffer refused with its error, a stream socket's recvfrom sender None."""
    with asock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as rx, asock.socket(
        stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM
    ) as tx, stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as other:
        await rx.bind(("127.0.0.1", 0))
        await tx.bind(("127.0.0.1", 0))
        other.bind(("127.0.0.1", 0))
        address = rx.getsockname()
        with anyio.fail_after(GUARD):
            for _ in range(2):
                assert await tx.sendto(b"from tx", address) == 7
                other.sendto(b"from other", address)
                for expected, peer in ((b"from tx", tx.getsockname()), (b"from other",
                                                                          other.getsockname())):
                    data, sender = await rx.recvfrom(100)
                    assert (data, sender) == (expected, peer)
                    assert type(sender) is tuple and type(sender[0]) is str
                    assert type(sender[1]) is int
            # Datagrams in a row from one sender: equal addresses (on the compiled
            # twin's direct path, the very same tuple, made once; a call the
            # fairness budget sends through the stdlib's own recvfrom gets a new
            # one, so of three pairs at least one is the same object).
            senders = []
            for _ in range(4):
                await tx.sendto(b"again", address)
                senders.append((await rx.recvfrom(100))[1])
            assert all(sender == tx.getsockname() for sender in senders)
            same = [senders[i] is senders[i + 1] for i in range(3)]
            assert any(same) is async_calls.COMPILED
            # The host "" is the stdlib's INADDR_ANY (reaching this host), whatever the cache.
            assert await tx.sendto(b"any", ("", address[1])) == 3
            assert await rx.recvfrom(100) == (b"any", tx.getsockname())
            # A truncated datagram: the stdlib's bytes, the rest dropped.
            await tx.sendto(b"0123456789", address)
            assert await rx.recvfrom(4) == (b"0123", tx.getsockname())
        plain = stdlib_socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM)
        with plain:
            for bad in (("127.0.0.1", 70000), ("127.0.0.1", -1), ("127.0.0.1", "80"),
                        ("127.0.0.1", 1.5), ("127.0.0.1",), ("127.0.0.1", 80, 0)):
                with pytest.raises(Exception) as expected:
                    plain.sendto(b"x", bad)
                with pytest.raises(type(expected.value)) as info:
                    await tx.sendto(b"x", bad)
                assert str(info.value) == str(expected.value), bad
            with pytest.raises(TypeError) as expected:
                plain.sendto("text", address)  # type: ignore[call-overload]
            with pytest.raises(TypeError) as info:
                await tx.sendto("text", address)  # type: ignore[arg-type]
            assert str(info.value) == str(expected.value)
    with stdlib_socket.create_server(("127.0.0.1", 0)) as listener:
        client = stdlib_socket.create_connection(listener.getsockname())
        a, b = asock.from_stdlib_socket(client), asock.from_stdlib_socket(listener.accept()[0])
    with a, b:
        await a.send(b"stream")
        with anyio.fail_after(GUARD):
            assert await b.recvfrom(100) == (b"stream", None)


async def test_a_waiting_recvfrom_is_woken_and_gets_the_datagram() -> None:
    with asock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as rx, asock.socket(
        stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM
    ) as tx:
        await rx.bind(("127.0.0.1", 0))
        await tx.bind(("127.0.0.1", 0))
        received: list[Any] = []
        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tasks:

                async def receive() -> None:
                    received.append(await rx.recvfrom(100))

                tasks.start_soon(receive)
                await wait_all_tasks_blocked()
                await tx.sendto(b"late", rx.getsockname())
        assert received == [(b"late", tx.getsockname())]


async def test_many_immediate_calls_let_other_tasks_run() -> None:
    """The fairness budget holds on the compiled path too."""
    a, b = asock.socketpair()
    with a, b:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await anyio.sleep(0)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            await anyio.sleep(0)
            before = ticks
            for _ in range(1000):
                await a.send(b"x")
                await b.recv(1)
            assert ticks > before
            tg.cancel_scope.cancel()


async def test_sendall_hands_what_one_send_leaves_to_the_operation_layer() -> None:
    """A sendall larger than the send buffer: bytes_sent counts the first send too."""
    a, b = asock.socketpair()
    with a, b:
        payload = bytes(range(256)) * 8192  # 2 MiB, far more than one send takes
        a.settimeout(0.0)
        with pytest.raises(BlockingIOError) as info:
            await a.sendall(payload)
        first = info.value.bytes_sent  # type: ignore[attr-defined]
        assert 0 < first < len(payload)
        a.settimeout(0.05)
        with anyio.fail_after(GUARD), pytest.raises(TimeoutError) as timed_out:
            await a.sendall(payload[first:])
        second = timed_out.value.bytes_sent  # type: ignore[attr-defined]
        assert second == 0  # the buffer was already full
        a.settimeout(None)
        received = bytearray()

        async def reader() -> None:
            while len(received) < len(payload):
                received.extend(await b.recv(65536))

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                await a.sendall(memoryview(payload)[first:])
        assert bytes(received) == payload


async def test_sendall_errors_carry_bytes_sent() -> None:
    a, b = asock.socketpair()
    with a:
        assert await a.sendall(b"") is None
        b.close()
        with pytest.raises(BrokenPipeError) as info:
            await a.sendall(b"x" * 10)
        assert info.value.bytes_sent == 0  # type: ignore[attr-defined]
        with pytest.raises(TypeError):
            await a.sendall("text")


class _ReentrantSocket(asock.socket):
    """A socket whose wait tries to step the very call that is waiting."""

    __slots__ = ()
    nested: list[str] = []  # noqa: RUF012 - the test's record
    call: Any = None

    def _wait(self, event: int, timeout: float | None) -> Any:
        try:
            type(self).call.send(None)
        except ValueError as exc:
            type(self).nested.append(str(exc))
        return asock.socket._wait(self, event, timeout)


def test_a_call_refuses_to_be_stepped_from_inside_itself() -> None:
    raw, peer = stdlib_socket.socketpair()
    with peer:
        s = _ReentrantSocket._from_stdlib(raw, 5.0)
        with s:
            _ReentrantSocket.call = call = s.recv(10)
            # Outside an event loop the wait itself fails, after the nested
            # send was refused; what matters is that nothing crashed.
            with pytest.raises(RuntimeError):
                call.send(None)
            assert _ReentrantSocket.nested == ["coroutine already executing"]
            _ReentrantSocket.call = None


def test_throw_and_close_follow_the_coroutine_protocol() -> None:
    a, b = asock.socketpair()
    with a, b:
        call = a.recv(1)
        with pytest.raises(TypeError, match="may not have a separate value"):
            call.throw(ValueError("x"), "other")
        call.close()
        call = a.recv(1)
        with pytest.raises(TypeError, match="traceback"):
            call.throw(ValueError, None, "not a traceback")
        call.close()
        with pytest.warns(RuntimeWarning, match="was never awaited"):
            a.recv(1)
            gc.collect()


async def test_generator_exit_closes_a_waiting_call(anyio_backend_name: str) -> None:
    if anyio_backend_name == "trio":
        pytest.skip("stepping a call by hand in a trio task confuses trio's wait bookkeeping")
    a, b = asock.socketpair()
    with a, b:
        call = a.recv(1)
        step = call.send(None)  # now waiting: this is what the task would suspend on
        assert step is not None
        with pytest.raises(GeneratorExit):
            call.throw(GeneratorExit)
        await b.send(b"k")
        with anyio.fail_after(GUARD):
            assert await a.recv(1) == b"k"  # nothing was taken


async def test_settimeout_while_waiting_leaves_the_waiting_call_as_it_was() -> None:
    """The mode is read once per call, as the operation layer reads it."""
    a, b = asock.socketpair()
    with a, b:
        got: list[Any] = []

        async def reader() -> None:
            try:
                got.append(await a.recv(1))
            except OSError as exc:
                got.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            tg.start_soon(reader)
            await wait_all_tasks_blocked()
            a.settimeout(0.0)
            await b.send(b"1")
            with anyio.move_on_after(0.2):
                while not got:
                    await anyio.sleep(0.001)
            await anyio.sleep(0.05)
            assert got == [b"1"]  # the other reader still waits, as it started
            await b.send(b"2")
        assert got == [b"1", b"2"]


async def test_sendall_sends_a_buffer_that_grew_before_it_was_awaited() -> None:
    a, b = asock.socketpair()
    with a, b:
        data = bytearray(b"abc")
        call = a.sendall(data)
        data.extend(b"x" * (1 << 20))
        received = bytearray()

        async def reader() -> None:
            while len(received) < len(data):
                received.extend(await b.recv(65536))

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                await call
        assert received == data


async def test_a_sendall_cancelled_at_its_fairness_checkpoint_says_it_sent_nothing(
    anyio_backend_name: str,
) -> None:
    if anyio_backend_name == "trio":
        pytest.skip("the cancellation is delivered with asyncio's Task.cancel")
    a, b = asock.socketpair()
    with a, b:

        async def pump() -> None:
            while True:
                await a.sendall(b"x")  # completes at once until the budget's checkpoint
                b._sock.recv(10)

        task = asyncio.ensure_future(pump())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        assert info.value.bytes_sent == 0  # type: ignore[attr-defined]


async def test_sendto_raises_the_stdlibs_audit_event_on_every_path() -> None:
    """The stdlib's sendto raises the "socket.sendto" audit event; the compiled twin's
    direct system call does too (audit hooks cannot be removed: this one only records
    while the test runs)."""
    import sys

    events: list[tuple[Any, ...]] = []
    recording = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if recording[0] and event == "socket.sendto":
            events.append(args)

    sys.addaudithook(hook)
    try:
        with asock.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM) as rx, asock.socket(
            stdlib_socket.AF_INET, stdlib_socket.SOCK_DGRAM
        ) as tx:
            await rx.bind(("127.0.0.1", 0))
            address = rx.getsockname()
            for _ in range(3):  # the first parses the host, later ones take the fast path
                await tx.sendto(b"x", address)
        assert len(events) == 3
        assert all(args[1] == address for args in events)
    finally:
        recording[0] = False
