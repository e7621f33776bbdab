"""Stdlib clients run unchanged with asock_sync standing in for the socket module.

Each client module's ``socket`` attribute is replaced by ``asock_sync``; the
servers are real local servers (http.server, socketserver, pyftpdlib) using
the stdlib's own sockets. Each test checks that the connection really was an
asock_sync socket.
"""

from __future__ import annotations

import contextlib
import ftplib
import http.client
import http.server
import io
import logging
import smtplib
import socketserver
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

import asock_sync

GUARD = 10.0


@contextlib.contextmanager
def _serving(server: socketserver.BaseServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(GUARD)


# -- HTTP ----------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"you asked for {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[::-1])

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


@pytest.fixture
def http_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    with _serving(server):
        yield port


@pytest.fixture
def closed_port() -> Iterator[int]:
    with asock_sync.socket() as holder:
        holder.bind(("127.0.0.1", 0))  # bound, never listening: refused
        yield holder.getsockname()[1]


def test_http_client(http_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http.client, "socket", asock_sync)
    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=GUARD)
    try:
        conn.request("GET", "/first")
        assert isinstance(conn.sock, asock_sync.socket)
        assert conn.sock.gettimeout() == GUARD
        first_socket = conn.sock
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == b"you asked for /first"
        conn.request("POST", "/echo", body=b"stressed")  # same keep-alive connection
        assert conn.sock is first_socket
        response = conn.getresponse()
        assert (response.status, response.read()) == (201, b"desserts")
    finally:
        conn.close()
    assert first_socket.fileno() == -1


def test_http_client_refused(closed_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http.client, "socket", asock_sync)
    conn = http.client.HTTPConnection("127.0.0.1", closed_port, timeout=GUARD)
    with pytest.raises(ConnectionRefusedError):
        conn.request("GET", "/")
    conn.close()


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    # Proxy settings from the environment must not send loopback traffic away.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def test_urllib_request(http_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http.client, "socket", asock_sync)
    monkeypatch.setattr(urllib.request, "socket", asock_sync)
    url = f"http://127.0.0.1:{http_port}/via-urllib"
    with _no_proxy_opener().open(url, timeout=GUARD) as response:
        stream = response.fp
        assert isinstance(stream, io.BufferedReader)
        used = stream.raw._sock  # type: ignore[attr-defined]
        assert isinstance(used, asock_sync.socket)
        assert used.gettimeout() == GUARD
        assert response.read() == b"you asked for /via-urllib"
    request = urllib.request.Request(url, data=b"olleh", method="POST")
    with _no_proxy_opener().open(request, timeout=GUARD) as response:
        assert isinstance(response.fp.raw._sock, asock_sync.socket)
        assert (response.status, response.read()) == (201, b"hello")


def test_urllib_request_refused(closed_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http.client, "socket", asock_sync)
    monkeypatch.setattr(urllib.request, "socket", asock_sync)
    with pytest.raises(urllib.error.URLError) as info:
        _no_proxy_opener().open(f"http://127.0.0.1:{closed_port}/", timeout=GUARD)
    assert isinstance(info.value.reason, ConnectionRefusedError)


# -- SMTP ----------------------------------------------------------------------


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib.sendmail; refuses recipients at 'refused.test'."""

    received: list[bytes]

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self._reply("220 tiny.test ESMTP")
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self._reply("250-tiny.test")
                self._reply("250 8BITMIME")
            elif verb == "RCPT" and "refused.test" in command:
                self._reply("550 no such user")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self._reply("250 ok")
            elif verb == "DATA":
                self._reply("354 go ahead")
                message = b""
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    message += data
                self.received.append(message)
                self._reply("250 queued")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("502 not implemented")


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[bytes]]]:
    received: list[bytes] = []
    handler = type("Handler", (_SMTPHandler,), {"received": received})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    port = server.server_address[1]
    with _serving(server):
        yield port, received


def test_smtplib(smtp_server: tuple[int, list[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    port, received = smtp_server
    monkeypatch.setattr(smtplib, "socket", asock_sync)
    message = EmailMessage()
    message["From"] = "me@example.test"
    message["To"] = "you@example.test"
    message["Subject"] = "over asock_sync"
    message.set_content("Hello through a facade socket.\n.leading dot survives\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=GUARD) as smtp:
        assert isinstance(smtp.sock, asock_sync.socket)
        used = smtp.sock
        smtp.send_message(message)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("me@example.test", ["nobody@refused.test"], "x")
    assert used.fileno() == -1
    [raw] = received
    assert b"Subject: over asock_sync" in raw
    assert b"\r\n..leading dot survives" in raw  # dot-stuffed on the wire


# -- FTP -----------------------------------------------------------------------


@pytest.fixture
def ftp_port(tmp_path: Path) -> Iterator[int]:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    (tmp_path / "hello.txt").write_bytes(b"hello from the ftp server\n")
    authorizer = DummyAuthorizer()
    authorizer.add_user("user", "secret", str(tmp_path), perm="elradfmw")
    # No 3 s pause after a failed login (a brute-force brake, pointless here).
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "auth_failed_timeout": 0})
    server = FTPServer(("127.0.0.1", 0), handler)
    stop = threading.Event()

    def serve() -> None:
        try:
            while not stop.is_set():
                server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        finally:
            server.close_all()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield server.address[1]
    finally:
        stop.set()
        thread.join(GUARD)


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_ftplib(
    ftp_port: int, tmp_path: Path, passive: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ftplib, "socket", asock_sync)
    with ftplib.FTP(timeout=GUARD) as ftp:
        ftp.connect("127.0.0.1", ftp_port)
        assert isinstance(ftp.sock, asock_sync.socket)
        ftp.login("user", "secret")
        ftp.set_pasv(passive)
        # The data connection is made through the module too.
        ftp.voidcmd("TYPE I")
        with ftp.transfercmd("RETR hello.txt") as data, data.makefile("rb") as stream:
            assert isinstance(data, asock_sync.socket)
            assert stream.read() == b"hello from the ftp server\n"
        ftp.voidresp()
        ftp.storbinary("STOR upload.bin", io.BytesIO(b"\x00\x01binary\xff" * 1000))
        assert (tmp_path / "upload.bin").read_bytes() == b"\x00\x01binary\xff" * 1000
        assert sorted(ftp.nlst()) == ["hello.txt", "upload.bin"]
        chunks: list[bytes] = []
        ftp.retrbinary("RETR upload.bin", chunks.append)
        assert b"".join(chunks) == b"\x00\x01binary\xff" * 1000
        with pytest.raises(ftplib.error_perm):
            ftp.retrbinary("RETR missing.txt", chunks.append)


def test_ftplib_wrong_password(ftp_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ftplib, "socket", asock_sync)
    with ftplib.FTP(timeout=GUARD) as ftp:
        ftp.connect("127.0.0.1", ftp_port)
        with pytest.raises(ftplib.error_perm):
            ftp.login("user", "wrong")


# -- socketserver (the server side, too) ----------------------------------------


class _UpperHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(self.rfile.readline().upper())


def test_socketserver_serves_on_asock_sync_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socketserver, "socket", asock_sync)
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _UpperHandler)
    server.daemon_threads = True
    assert isinstance(server.socket, asock_sync.socket)
    with _serving(server):
        with asock_sync.create_connection(server.server_address, timeout=GUARD) as client:
            client.sendall(b"served by asock_sync\n")
            with client.makefile("rb") as stream:
                assert stream.readline() == b"SERVED BY ASOCK_SYNC\n"
    assert server.socket.fileno() == -1
