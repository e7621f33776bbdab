"""A UDP request/response server whose requests are shared by a pool of tasks (asock).

Several worker tasks wait in ``recvfrom`` on the *same* UDP socket; each
datagram goes to exactly one of them, which answers it with ``sendto``.
asock allows any number of tasks to wait on one socket, on every backend.
Each request takes a millisecond of work (a sleep standing in for, say, a
database query), so no worker can keep up alone: while one works, the others
take the next datagrams, and every worker serves its share. When the clients
are done, closing the socket wakes every idle worker with ``OSError(EBADF)``,
which is how the pool is shut down here.

Run: python examples/udp_server_worker_pool.py [asyncio|uvloop|trio]
"""

from __future__ import annotations

import errno
from collections import Counter

import anyio
from _backends import run

import asock

WORKERS = 4
CLIENTS = 8
REQUESTS_PER_CLIENT = 25
WORK_SECONDS = 0.001


async def worker(number: int, server: asock.socket, served: Counter[int]) -> None:
    while True:
        try:
            request, client = await server.recvfrom(2048)
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise
            return  # the server socket was closed: the pool is shutting down
        served[number] += 1
        await anyio.sleep(WORK_SECONDS)  # the request's work
        await server.sendto(request.upper(), client)


async def client(number: int, address: tuple[str, int], answered: list[int]) -> None:
    with asock.socket(asock.AF_INET, asock.SOCK_DGRAM) as sock:
        sock.settimeout(10)  # a lost datagram would raise TimeoutError, not hang
        await sock.connect(address)
        for i in range(REQUESTS_PER_CLIENT):
            request = f"request {i} from client {number}".encode()
            await sock.send(request)
            reply = await sock.recv(2048)
            assert reply == request.upper(), (reply, request)
            answered.append(number)


async def main() -> None:
    server = asock.socket(asock.AF_INET, asock.SOCK_DGRAM)
    await server.bind(("127.0.0.1", 0))
    served: Counter[int] = Counter()
    answered: list[int] = []
    async with anyio.create_task_group() as pool:
        for number in range(WORKERS):
            pool.start_soon(worker, number, server, served)
        async with anyio.create_task_group() as clients:
            for number in range(CLIENTS):
                clients.start_soon(client, number, server.getsockname(), answered)
        server.close()  # every worker still waiting in recvfrom wakes with EBADF
    print(f"{len(answered)} requests from {CLIENTS} clients answered correctly")
    print(f"{WORKERS} workers stopped")
    for number in range(WORKERS):
        print(f"worker {number} served {served[number]} requests")


if __name__ == "__main__":
    run(main)
