"""An asock echo server and clients on loopback, on every available backend."""

from __future__ import annotations

import time

import anyio

import asock


async def _echo_session(conn: asock.socket) -> None:
    with conn:
        while data := await conn.recv(65536):
            await conn.sendall(data)


async def _demo(clients: int, log: list[str]) -> None:
    server = await asock.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    log.append(f"  echo server listening on 127.0.0.1:{port}")

    async def serve(tg: anyio.abc.TaskGroup) -> None:
        while True:
            conn, _ = await server.accept()
            tg.start_soon(_echo_session, conn)

    async def client(n: int) -> None:
        sock = await asock.create_connection(("127.0.0.1", port))
        async with sock:
            message = f"hello from client {n}".encode()
            await sock.sendall(message)
            reply = b""
            while len(reply) < len(message):
                reply += await sock.recv(65536)
            log.append(f"  client {n}: sent {message!r}, echoed {reply!r}")

    with server:
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve, tg)
            async with anyio.create_task_group() as clients_tg:
                for n in range(clients):
                    clients_tg.start_soon(client, n)
            tg.cancel_scope.cancel()


def run_demo(clients: int) -> int:
    """Run the echo demo on asyncio, uvloop and trio; print what happened."""
    backends: list[tuple[str, str, dict[str, object]]] = [("asyncio", "asyncio", {})]
    try:
        import uvloop  # noqa: F401

        backends.append(("uvloop", "asyncio", {"use_uvloop": True}))
    except ImportError:
        print("uvloop is not installed: skipping it")
    try:
        import trio  # noqa: F401

        backends.append(("trio", "trio", {}))
    except ImportError:
        print("trio is not installed: skipping it")
    for label, backend, options in backends:
        log: list[str] = []
        start = time.perf_counter()
        anyio.run(_demo, clients, log, backend=backend, backend_options=options)
        elapsed = (time.perf_counter() - start) * 1000
        print(f"{label}: {clients} clients echoed in {elapsed:.1f} ms")
        print("\n".join(log))
    return 0
