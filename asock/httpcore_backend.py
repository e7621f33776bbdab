"""httpcore and httpx on asock sockets.

:class:`AsockBackend` is an ``httpcore.AsyncNetworkBackend``: give it to
``httpcore.AsyncConnectionPool(network_backend=AsockBackend())`` and every
connection the pool opens is an :mod:`asock.streams` stream (TLS through
``anyio.streams.tls.TLSStream``), on asyncio, uvloop or trio.

httpx's own ``AsyncHTTPTransport`` does not accept a network backend, so
:class:`AsockTransport` is the small httpx transport around such a pool::

    async with httpx.AsyncClient(transport=AsockTransport()) as client:
        response = await client.get("https://example.org/")

Needs the ``httpcore`` and ``httpx`` packages (``pip install asock[httpx]``).
"""

from __future__ import annotations

import select
import socket as _stdlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any

import anyio
import httpcore
import httpx
from anyio import BrokenResourceError, ClosedResourceError, EndOfStream
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.tls import TLSAttribute, TLSStream

from .streams import connect_tcp, connect_unix

#: ``(level, option, value)`` or ``(level, option, None, length)``, as httpcore takes them.
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

_ErrorMap = Mapping[type[BaseException], type[Exception]]


@contextmanager
def _raising(errors: _ErrorMap) -> Iterator[None]:
    """Re-raise the first matching exception type of ``errors``, chained to the original."""
    try:
        yield
    except Exception as exc:
        for caught, raised in errors.items():
            if isinstance(exc, caught):
                raise raised(str(exc) or type(exc).__name__) from exc
        raise


def _readable_now(sock: _stdlib.socket | None) -> bool:
    # An idle pooled connection that is readable has been closed by the
    # server (or sent something unasked): httpcore must not reuse it.
    if sock is None or sock.fileno() < 0:
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([sock], [], [], 0)  # pragma: no cover - no poll()
    return bool(readable)


class AsockNetworkStream(httpcore.AsyncNetworkStream):
    """One httpcore connection: an anyio byte stream over an asock socket.

    ``read`` and ``write`` wait at most ``timeout`` seconds and raise
    ``httpcore.ReadTimeout``/``WriteTimeout``; a broken or closed stream
    raises ``httpcore.ReadError``/``WriteError``.
    """

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Wait for up to ``max_bytes`` bytes; ``b""`` once the server has closed."""
        errors: _ErrorMap = {
            TimeoutError: httpcore.ReadTimeout,
            BrokenResourceError: httpcore.ReadError,
            ClosedResourceError: httpcore.ReadError,
        }
        with _raising(errors), anyio.fail_after(timeout):
            try:
                return await self._stream.receive(max_bytes)
            except EndOfStream:
                return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send all of ``buffer``, waiting at most ``timeout`` seconds."""
        if not buffer:
            return
        errors: _ErrorMap = {
            TimeoutError: httpcore.WriteTimeout,
            BrokenResourceError: httpcore.WriteError,
            ClosedResourceError: httpcore.WriteError,
            # A TLS stream whose session has ended says so on send, too.
            EndOfStream: httpcore.WriteError,
        }
        with _raising(errors), anyio.fail_after(timeout):
            await self._stream.send(buffer)

    async def aclose(self) -> None:
        """Close the connection (and its socket). Harmless twice."""
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsockNetworkStream:
        """Run a TLS handshake over this connection and return the TLS stream.

        Raises ``httpcore.ConnectTimeout`` after ``timeout`` seconds and
        ``httpcore.ConnectError`` if the handshake fails; either way the
        connection is closed.
        """
        errors: _ErrorMap = {
            TimeoutError: httpcore.ConnectTimeout,
            ssl.SSLError: httpcore.ConnectError,
            BrokenResourceError: httpcore.ConnectError,
            ClosedResourceError: httpcore.ConnectError,
            EndOfStream: httpcore.ConnectError,
        }
        try:
            with _raising(errors), anyio.fail_after(timeout):
                tls = await TLSStream.wrap(
                    self._stream, server_side=False, hostname=server_hostname,
                    ssl_context=ssl_context,
                    # HTTP ends on Content-Length or chunking, and servers
                    # commonly skip close_notify (httpcore's own setting).
                    standard_compatible=False,
                )
        except BaseException:
            await anyio.aclose_forcefully(self._stream)
            raise
        return AsockNetworkStream(tls)

    def get_extra_info(self, info: str) -> Any:
        """Answer httpcore's questions: ``ssl_object``, ``client_addr``,
        ``server_addr``, ``socket`` (the stdlib socket) and ``is_readable``;
        None for anything else. Never waits.
        """
        stream = self._stream
        if info == "ssl_object":
            return stream.extra(TLSAttribute.ssl_object, None)
        if info == "client_addr":
            return stream.extra(SocketAttribute.local_address, None)
        if info == "server_addr":
            return stream.extra(SocketAttribute.remote_address, None)
        if info == "socket":
            return stream.extra(SocketAttribute.raw_socket, None)
        if info == "is_readable":
            return _readable_now(stream.extra(SocketAttribute.raw_socket, None))
        return None


_CONNECT_ERRORS: _ErrorMap = {
    TimeoutError: httpcore.ConnectTimeout,
    OSError: httpcore.ConnectError,
}


async def _connected(
    connect: Callable[[], Awaitable[Any]],
    timeout: float | None,
    options: Iterable[SocketOption] | None,
) -> AsockNetworkStream:
    """Open a stream with ``connect`` within ``timeout``, apply ``options``, wrap it."""
    with _raising(_CONNECT_ERRORS):
        with anyio.fail_after(timeout):
            stream = await connect()
        try:
            for option in options or ():
                stream.asock_socket.setsockopt(*option)
        except BaseException:
            await anyio.aclose_forcefully(stream)
            raise
    return AsockNetworkStream(stream)


class AsockBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on asock: connections are :mod:`asock.streams` streams.

    Works on asyncio, uvloop and trio (the running one is detected).
    """

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> AsockNetworkStream:
        """Connect with Happy Eyeballs (:func:`asock.streams.connect_tcp`).

        Raises ``httpcore.ConnectTimeout`` after ``timeout`` seconds and
        ``httpcore.ConnectError`` for any OSError (refused, unresolvable, ...).
        """
        return await _connected(
            partial(connect_tcp, host, port, local_host=local_address), timeout, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> AsockNetworkStream:
        """Connect to the AF_UNIX socket at ``path``; raises as :meth:`connect_tcp`."""
        return await _connected(partial(connect_unix, path), timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the running event loop."""
        await anyio.sleep(seconds)


#: httpcore's exceptions and the httpx ones that say the same thing.
_HTTPX_ERRORS: _ErrorMap = {
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


class _ResponseBody(httpx.AsyncByteStream):
    # httpcore's response body: an async iterator of chunks with aclose().
    def __init__(self, body: Any) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _raising(_HTTPX_ERRORS):
            async for chunk in self._body:
                yield chunk

    async def aclose(self) -> None:
        with _raising(_HTTPX_ERRORS):
            await self._body.aclose()


#: httpx's own default pool limits.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class AsockTransport(httpx.AsyncBaseTransport):
    """An httpx transport whose connections are asock sockets.

    A ``httpcore.AsyncConnectionPool`` with :class:`AsockBackend`; the
    arguments are the pool's (``ssl_context`` None means httpcore's default,
    certifi's CA bundle). httpcore's errors come out as the httpx exceptions
    of the same names (``httpx.ConnectError``, ``httpx.ReadTimeout``, ...).
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        http1: bool = True,
        http2: bool = False,
        uds: str | None = None,
        local_address: str | None = None,
        retries: int = 0,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=http1,
            http2=http2,
            uds=uds,
            local_address=local_address,
            retries=retries,
            socket_options=socket_options,
            network_backend=AsockBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` over a pooled asock connection and return the response.

        Waits for the response head; the body streams as it is read. Raises
        the httpx exception matching httpcore's.
        """
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _raising(_HTTPX_ERRORS):
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseBody(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._pool.aclose()
