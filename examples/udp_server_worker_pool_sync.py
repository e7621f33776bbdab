"""A UDP request/response server whose requests are shared by a pool of threads (asock_sync).

``udp_server_worker_pool.py`` on the sync front: several worker threads
block in ``recvfrom`` on the *same* UDP socket and each datagram goes to one
of them. Each request takes a millisecond of work (a sleep standing in for,
say, a database query), so no worker can keep up alone and every worker
serves its share. When the clients are done, ``close()`` from the main
thread wakes every blocked worker with ``OSError(EBADF)``. (With the stdlib
on Linux, the workers would sleep on in ``recvfrom`` after the socket was
closed.)

Run: python examples/udp_server_worker_pool_sync.py
"""

from __future__ import annotations

import errno
import threading
import time
from collections import Counter

import asock_sync as socket

WORKERS = 4
CLIENTS = 8
REQUESTS_PER_CLIENT = 25
WORK_SECONDS = 0.001


def worker(number: int, server: socket.socket, served: Counter[int]) -> None:
    while True:
        try:
            request, client = server.recvfrom(2048)
            served[number] += 1
            time.sleep(WORK_SECONDS)  # the request's work
            server.sendto(request.upper(), client)
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise
            # The server socket was closed: the pool is shutting down. A call
            # under way when close() came raises EBADF too, even the sendto
            # of a last reply that has gone out.
            return


def client(number: int, address: tuple[str, int], answered: list[int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)  # a lost datagram would raise TimeoutError, not hang
        sock.connect(address)
        for i in range(REQUESTS_PER_CLIENT):
            request = f"request {i} from client {number}".encode()
            sock.send(request)
            reply = sock.recv(2048)
            assert reply == request.upper(), (reply, request)
            answered.append(number)


def main() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    served: Counter[int] = Counter()
    answered: list[int] = []
    workers = [
        threading.Thread(target=worker, args=(n, server, served)) for n in range(WORKERS)
    ]
    clients = [
        threading.Thread(target=client, args=(n, server.getsockname(), answered))
        for n in range(CLIENTS)
    ]
    for thread in workers + clients:
        thread.start()
    for thread in clients:
        thread.join()
    server.close()  # every worker still blocked in recvfrom wakes with EBADF
    for thread in workers:
        thread.join()
    print(f"{len(answered)} requests from {CLIENTS} clients answered correctly")
    print(f"{WORKERS} workers stopped")
    for number in range(WORKERS):
        print(f"worker {number} served {served[number]} requests")


if __name__ == "__main__":
    main()
