"""asock_sync offers the stdlib socket module's whole interface, driven by asock's core."""

from __future__ import annotations

import gc
import inspect
import io
import os
import pickle
import socket as stdlib_socket
import sys
import threading
import types
import warnings
from pathlib import Path

import pytest

import asock_sync
from asock_core import operations
from asock_core.socket_base import SocketBase

STDLIB_SOCKET_TYPE = stdlib_socket.socket


def _imported_helper(value: object) -> bool:
    # The stdlib module imports os, io, errno, IntEnum... for itself; they are
    # not part of its interface.
    if isinstance(value, types.ModuleType):
        return True
    return isinstance(value, type) and value.__module__ not in ("socket", "_socket", "builtins")


def _public_module_names() -> list[str]:
    return sorted(
        name
        for name in dir(stdlib_socket)
        if not name.startswith("_") and not _imported_helper(getattr(stdlib_socket, name))
    )


def test_every_public_stdlib_name_exists() -> None:
    missing = [name for name in _public_module_names() if not hasattr(asock_sync, name)]
    assert not missing
    assert set(stdlib_socket.__all__) <= set(asock_sync.__all__)


def test_constants_and_exceptions_are_the_same_objects() -> None:
    for name in _public_module_names():
        value = getattr(stdlib_socket, name)
        if isinstance(value, (int, str, type)) and name not in ("socket", "SocketType"):
            assert getattr(asock_sync, name) is value, name
    assert asock_sync.timeout is TimeoutError
    assert asock_sync.error is OSError
    assert asock_sync.gaierror is stdlib_socket.gaierror
    assert asock_sync.AF_INET is stdlib_socket.AF_INET


def test_resolver_functions_are_the_stdlib_ones() -> None:
    for name in ("getaddrinfo", "gethostbyname", "getnameinfo", "getfqdn", "getservbyname"):
        assert getattr(asock_sync, name) is getattr(stdlib_socket, name)
    infos = asock_sync.getaddrinfo("127.0.0.1", 80, type=asock_sync.SOCK_STREAM)
    assert infos == stdlib_socket.getaddrinfo("127.0.0.1", 80, type=stdlib_socket.SOCK_STREAM)
    with pytest.raises(asock_sync.gaierror):
        asock_sync.getaddrinfo("no-such-host.invalid", 80)


def _parameters(fn: object) -> list[tuple[str, object, object]]:
    # Annotations differ (asock is typed); names, kinds and defaults must not.
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    ["create_connection", "create_server", "socketpair", "fromfd", "send_fds", "recv_fds"],
)
def test_functions_have_the_stdlib_signatures(name: str) -> None:
    ours, theirs = getattr(asock_sync, name), getattr(stdlib_socket, name)
    assert ours is not theirs
    assert _parameters(ours) == _parameters(theirs)


def test_socket_class_is_its_own_not_the_stdlib_one() -> None:
    assert asock_sync.SocketType is asock_sync.socket
    assert not issubclass(asock_sync.socket, STDLIB_SOCKET_TYPE)
    assert issubclass(asock_sync.socket, SocketBase)
    with asock_sync.socket() as sock:
        assert not isinstance(sock, STDLIB_SOCKET_TYPE)
        assert repr(sock).startswith("<asock_sync.socket fd=")


def test_socket_has_every_stdlib_method() -> None:
    public = [name for name in dir(STDLIB_SOCKET_TYPE) if not name.startswith("_")]
    missing = [name for name in public if not hasattr(asock_sync.socket, name)]
    assert not missing
    for name in ("makefile", "sendfile", "recvmsg_into", "sendmsg", "dup", "detach", "connect_ex"):
        assert callable(getattr(asock_sync.socket, name))


def test_methods_written_in_python_have_the_stdlib_signatures() -> None:
    for name in ("__init__", "makefile", "sendfile", "accept", "dup", "detach", "close"):
        assert _parameters(getattr(asock_sync.socket, name)) == _parameters(
            getattr(STDLIB_SOCKET_TYPE, name)
        ), name


@pytest.mark.skipif(not hasattr(stdlib_socket, "fromshare"), reason="share/fromshare: Windows only")
def test_share_and_fromshare_where_the_platform_has_them() -> None:  # pragma: no cover
    with asock_sync.socket() as sock:
        data = sock.share(os.getpid())
        with asock_sync.fromshare(data) as copy:
            assert isinstance(copy, asock_sync.socket)


def test_constructor_errors_are_the_stdlib_ones() -> None:
    for args in [(12345,), (stdlib_socket.AF_INET, 12345), ("x",)]:
        with pytest.raises(Exception) as theirs:
            stdlib_socket.socket(*args).close()
        with pytest.raises(theirs.type):
            asock_sync.socket(*args).close()
    with pytest.raises(OSError):
        asock_sync.socket(fileno=10**6)


def test_context_manager_closes(no_fd_leak_sync: None) -> None:
    with asock_sync.socket() as sock:
        assert sock.fileno() >= 0
    assert sock.fileno() == -1
    sock.close()  # closing twice is harmless
    with pytest.raises(OSError) as info:
        sock.getsockname()
    assert info.value.errno == 9


def test_cannot_be_pickled() -> None:
    with asock_sync.socket() as sock, pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(sock)


def test_dup_detach_and_fromfd_keep_working_descriptors(no_fd_leak_sync: None) -> None:
    a, b = asock_sync.socketpair()
    with a, b:
        a.settimeout(3.0)
        copy = a.dup()
        with copy:
            assert isinstance(copy, asock_sync.socket)
            assert copy.fileno() != a.fileno()
            assert copy.gettimeout() == 3.0
            copy.sendall(b"via dup")
            assert b.recv(100) == b"via dup"
        fd = a.detach()
        assert a.fileno() == -1
        with asock_sync.fromfd(fd, stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM) as again:
            os.close(fd)  # fromfd duplicated it
            again.sendall(b"via fromfd")
            assert b.recv(100) == b"via fromfd"


def test_makefile_streams_read_and_write(no_fd_leak_sync: None) -> None:
    a, b = asock_sync.socketpair()
    with a, b:
        writer = a.makefile("w", encoding="utf-8", newline="\n")
        reader = b.makefile("rb")
        with writer, reader:
            writer.write("first line\nsecond\n")
            writer.flush()
            assert reader.readline() == b"first line\n"
            assert reader.readline() == b"second\n"
            assert isinstance(reader.raw, asock_sync.SocketIO)
        with pytest.raises(ValueError, match="invalid mode"):
            a.makefile("rw+")
        with pytest.raises(ValueError, match="unbuffered"):
            a.makefile("r", buffering=0)


def test_socket_stays_open_until_its_makefile_closes(no_fd_leak_sync: None) -> None:
    a, b = asock_sync.socketpair()
    with b:
        stream = a.makefile("rwb")
        a.close()
        assert a.fileno() >= 0  # the stream still uses the descriptor
        b.sendall(b"still here\n")
        assert stream.readline() == b"still here\n"
        stream.close()
        assert a.fileno() == -1


def test_recvmsg_into_and_sendmsg_pass_descriptors(no_fd_leak_sync: None) -> None:
    a, b = asock_sync.socketpair()
    read_end, write_end = os.pipe()
    try:
        with a, b:
            fds = stdlib_socket.CMSG_LEN(4)
            rights = [
                (
                    stdlib_socket.SOL_SOCKET,
                    stdlib_socket.SCM_RIGHTS,
                    write_end.to_bytes(4, sys.byteorder),
                )
            ]
            assert a.sendmsg([b"he", b"llo"], rights) == 5
            buffers = [bytearray(2), bytearray(10)]
            nbytes, ancdata, flags, _ = b.recvmsg_into(buffers, fds)
            assert nbytes == 5 and bytes(buffers[0]) + bytes(buffers[1][:3]) == b"hello"
            assert flags == 0
            [(level, kind, data)] = ancdata
            assert (level, kind) == (stdlib_socket.SOL_SOCKET, stdlib_socket.SCM_RIGHTS)
            received = int.from_bytes(data[:4], sys.byteorder)
            os.write(received, b"through the passed fd")
            os.close(received)
            assert os.read(read_end, 100) == b"through the passed fd"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_send_fds_and_recv_fds_accept_sync_front_sockets(no_fd_leak_sync: None) -> None:
    a, b = asock_sync.socketpair()
    read_end, write_end = os.pipe()
    try:
        with a, b:
            asock_sync.send_fds(a, [b"x"], [write_end])
            msg, fds, _, _ = asock_sync.recv_fds(b, 10, 4)
            assert msg == b"x" and len(fds) == 1
            os.write(fds[0], b"ok")
            os.close(fds[0])
            assert os.read(read_end, 2) == b"ok"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_sendfile_sends_a_file_and_moves_its_position(
    tmp_path: Path, no_fd_leak_sync: None
) -> None:
    payload = os.urandom(300_000)
    path = tmp_path / "payload"
    path.write_bytes(payload)
    a, b = asock_sync.socketpair()
    received = bytearray()

    def drain() -> None:
        while chunk := b.recv(65536):
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        with a:
            with path.open("rb") as file:  # os.sendfile path
                assert a.sendfile(file, 10) == len(payload) - 10
                assert file.tell() == len(payload)
            with io.BytesIO(payload) as memory:  # no descriptor: read-and-send path
                assert a.sendfile(memory, 1000, 5000) == 5000
                assert memory.tell() == 6000
            r, w = os.pipe()
            os.write(w, payload[:100])
            os.close(w)
            with open(r, "rb") as pipe:  # fstat size 0: nothing to send, as the stdlib says
                assert a.sendfile(pipe) == 0
        reader.join(10)
    finally:
        b.close()
    assert bytes(received) == payload[10:] + payload[1000:6000]


def test_sendfile_refuses_non_blocking_mode_and_text_files(tmp_path: Path) -> None:
    path = tmp_path / "text"
    path.write_text("text")
    a, b = asock_sync.socketpair()
    with a, b, path.open(encoding="utf-8") as text:
        a.setblocking(False)
        with pytest.raises(ValueError, match="non-blocking"):
            a.sendfile(io.BytesIO(b"data"))
        a.setblocking(True)
        with pytest.raises(ValueError, match="binary mode"):
            a.sendfile(text)  # type: ignore[arg-type]


def test_unclosed_socket_warns_about_itself_and_frees_its_descriptors(
    no_fd_leak_sync: None,
) -> None:
    a, b = asock_sync.socketpair()
    a.settimeout(0.01)
    with b, pytest.raises(TimeoutError):  # the wait creates the wake-up eventfd
        a.recv(1)
    text = repr(a)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del a
        gc.collect()
    messages = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert messages == [f"unclosed {text}"]


def test_io_runs_the_shared_operations_without_any_event_loop() -> None:
    a, b = asock_sync.socketpair()
    seen: set[str] = set()

    def profile(frame: types.FrameType, event: str, arg: object) -> None:
        if event == "call":
            seen.add(frame.f_code.co_filename)

    with a, b:
        a.sendall(b"ping")
        sys.setprofile(profile)
        try:
            data = b.recv(4)
            b.settimeout(0.05)
            with pytest.raises(TimeoutError):
                b.recv(1)
        finally:
            sys.setprofile(None)
    assert data == b"ping"
    assert operations.__file__ in seen
    loops = [
        f for f in seen if any(part in f for part in ("asyncio", "trio", "anyio", "selectors"))
    ]
    assert not loops, loops
