"""httpx end to end on asock: client transport and server both on asock sockets.

The server is a minimal HTTP/1.1 responder written over asock.streams'
listener (TLS through anyio's TLSListener); the client is httpx.AsyncClient
with asock's transport (httpcore's pool with AsockBackend). Every test runs
on asyncio, uvloop and trio.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpcore
import httpx
import pytest
import trustme
from anyio import EndOfStream, IncompleteRead
from anyio.abc import ByteStream, Listener, SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.tls import TLSListener, TLSStream

import asock.streams
from asock.httpcore_backend import AsockBackend, AsockNetworkStream, AsockTransport

Handler = Callable[[ByteStream], Awaitable[None]]


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, target, _version = request_line.split(" ")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers


async def http_responder(stream: ByteStream) -> None:
    """Answer HTTP/1.1 requests on one connection until the client closes it.

    ``/bytes/N`` answers N bytes of body; ``/silent`` reads the request and
    never answers; anything else answers JSON describing the request and the
    connection's client port (so tests can see connection reuse).
    """
    buffered = BufferedByteReceiveStream(stream)
    client_port = stream.extra(SocketAttribute.remote_port, None)
    async with stream:
        while True:
            try:
                head = await buffered.receive_until(b"\r\n\r\n", 65536)
            except (EndOfStream, IncompleteRead):
                return
            method, target, headers = _parse_head(head)
            body = await buffered.receive_exactly(int(headers.get("content-length", "0")))
            if target == "/silent":
                await anyio.sleep_forever()
            if target.startswith("/bytes/"):
                payload = bytes(i % 251 for i in range(int(target.removeprefix("/bytes/"))))
                kind = "application/octet-stream"
            else:
                described = {
                    "method": method, "target": target, "body": body.decode(),
                    "client_port": client_port, "host": headers.get("host"),
                }
                payload = json.dumps(described).encode()
                kind = "application/json"
            head_out = (
                f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            ).encode()
            await stream.send(head_out + payload)
            if headers.get("connection", "").lower() == "close":
                return


@asynccontextmanager
async def serving(
    listener: Listener[Any], handler: Handler = http_responder
) -> AsyncIterator[None]:
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        yield
        tg.cancel_scope.cancel()


async def test_plain_http_get_post_and_keepalive(no_fd_leak: None) -> None:
    listener = await asock.streams.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    with anyio.fail_after(10):
        async with serving(listener), httpx.AsyncClient(transport=AsockTransport()) as client:
            first = await client.get(f"http://127.0.0.1:{port}/hello?x=1")
            assert first.status_code == 200
            assert first.json()["method"] == "GET"
            assert first.json()["target"] == "/hello?x=1"
            assert first.json()["host"] == f"127.0.0.1:{port}"
            second = await client.post(f"http://127.0.0.1:{port}/echo", content=b"posted body")
            assert second.json()["body"] == "posted body"
            # One pooled connection served both requests.
            assert second.json()["client_port"] == first.json()["client_port"]
            assert first.extensions["network_stream"].get_extra_info("server_addr") == (
                "127.0.0.1", port,
            )


async def test_https_with_trustme(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, no_fd_leak: None
) -> None:
    tcp_listener = await asock.streams.create_tcp_listener(local_host="127.0.0.1")
    port = tcp_listener.extra(SocketAttribute.local_port)
    listener = TLSListener(tcp_listener, server_context, standard_compatible=False)
    transport = AsockTransport(ssl_context=client_context)
    with anyio.fail_after(10):
        async with serving(listener), httpx.AsyncClient(transport=transport) as client:
            response = await client.put(f"https://127.0.0.1:{port}/secure", content=b"secret")
            assert response.status_code == 200
            assert response.json() == {
                "method": "PUT", "target": "/secure", "body": "secret",
                "client_port": response.json()["client_port"], "host": f"127.0.0.1:{port}",
            }
            ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
            assert ssl_object is not None
            assert ssl_object.version() is not None
            again = await client.get(f"https://127.0.0.1:{port}/again")
            assert again.json()["client_port"] == response.json()["client_port"]


async def test_large_streamed_response(no_fd_leak: None) -> None:
    size = 3 * 1024 * 1024 + 17
    listener = await asock.streams.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    with anyio.fail_after(20):
        async with serving(listener), httpx.AsyncClient(transport=AsockTransport()) as client:
            async with client.stream("GET", f"http://127.0.0.1:{port}/bytes/{size}") as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
    assert len(body) == size
    assert body == bytes(i % 251 for i in range(size))


async def test_unix_socket_transport(tmp_path: Path, no_fd_leak: None) -> None:
    path = tmp_path / "http.sock"
    listener = await asock.streams.create_unix_listener(path)
    with anyio.fail_after(10):
        async with serving(listener), httpx.AsyncClient(
            transport=AsockTransport(uds=str(path))
        ) as client:
            response = await client.get("http://unix.local/over-unix")
    assert response.json()["target"] == "/over-unix"
    assert response.json()["host"] == "unix.local"


async def test_connection_refused_is_connect_error(no_fd_leak: None) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        with anyio.fail_after(10):
            async with httpx.AsyncClient(transport=AsockTransport()) as client:
                with pytest.raises(httpx.ConnectError) as info:
                    await client.get(f"http://127.0.0.1:{port}/")
    assert isinstance(info.value.__cause__, httpcore.ConnectError)


async def test_untrusted_certificate_is_connect_error(
    server_context: ssl.SSLContext, no_fd_leak: None
) -> None:
    tcp_listener = await asock.streams.create_tcp_listener(local_host="127.0.0.1")
    port = tcp_listener.extra(SocketAttribute.local_port)
    listener = TLSListener(tcp_listener, server_context, standard_compatible=False)
    untrusting = ssl.create_default_context(cafile=None)
    untrusting.load_verify_locations(cadata=trustme.CA().cert_pem.bytes().decode())

    async def tolerate_failed_handshakes(stream: ByteStream) -> None:
        await stream.aclose()

    with anyio.fail_after(10):
        async with serving(listener, tolerate_failed_handshakes), httpx.AsyncClient(
            transport=AsockTransport(ssl_context=untrusting)
        ) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(f"https://127.0.0.1:{port}/")


async def test_read_timeout(no_fd_leak: None) -> None:
    listener = await asock.streams.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    with anyio.fail_after(10):
        async with serving(listener), httpx.AsyncClient(
            transport=AsockTransport(), timeout=httpx.Timeout(5, read=0.2)
        ) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"http://127.0.0.1:{port}/silent")


async def test_server_closing_idle_connection_is_not_reused(no_fd_leak: None) -> None:
    """A pooled connection the server closed reads as is_readable; httpcore reconnects."""
    listener = await asock.streams.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)

    async def one_request_then_close(stream: ByteStream) -> None:
        buffered = BufferedByteReceiveStream(stream)
        async with stream:
            await buffered.receive_until(b"\r\n\r\n", 65536)
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    with anyio.fail_after(10):
        async with serving(listener, one_request_then_close), httpx.AsyncClient(
            transport=AsockTransport()
        ) as client:
            for _ in range(3):
                response = await client.get(f"http://127.0.0.1:{port}/")
                assert response.text == "ok"
                # Let the server's FIN arrive before the next request.
                await anyio.sleep(0.05)


async def test_backend_directly(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, no_fd_leak: None
) -> None:
    """AsockBackend's streams: extra info, start_tls, EOF as b"" and errors mapped."""
    listener = await asock.streams.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)

    async def tls_echo_once(stream: ByteStream) -> None:
        tls = await TLSStream.wrap(
            stream, server_side=True, ssl_context=server_context, standard_compatible=False
        )
        async with tls:
            await tls.send(await tls.receive())

    async def first_tls_then_nothing(stream: ByteStream) -> None:
        if served:
            await stream.aclose()
            return
        served.append(stream)
        await tls_echo_once(stream)

    served: list[ByteStream] = []

    backend = AsockBackend()
    with anyio.fail_after(10):
        async with serving(listener, first_tls_then_nothing):
            plain = await backend.connect_tcp(
                "127.0.0.1", port, timeout=5,
                socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)],
            )
            assert isinstance(plain, AsockNetworkStream)
            raw = plain.get_extra_info("socket")
            assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert plain.get_extra_info("server_addr") == ("127.0.0.1", port)
            assert plain.get_extra_info("client_addr") == raw.getsockname()
            assert plain.get_extra_info("ssl_object") is None
            assert plain.get_extra_info("is_readable") is False
            assert plain.get_extra_info("no such thing") is None
            secure = await plain.start_tls(client_context, "localhost", timeout=5)
            await secure.write(b"round trip", timeout=5)
            assert await secure.read(100, timeout=5) == b"round trip"
            assert await secure.read(100, timeout=5) == b""  # the server closed
            await secure.aclose()
            with pytest.raises(httpcore.WriteError):
                await secure.write(b"after close")
            await secure.aclose()  # harmless twice
            closed = await backend.connect_tcp("127.0.0.1", port)
            await closed.aclose()
            with pytest.raises(httpcore.ReadError):
                await closed.read(1)
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_unix_socket("/nonexistent/asock.sock")
    await backend.sleep(0)
