"""A TCP echo server and its client over IPv4, in one process, with asock_sync.

The first example of the stdlib's socket documentation, unchanged except for
the import: ``import asock_sync as socket``. The server runs in a thread so
the script can play both ends.

Run: python examples/echo_tcp_ipv4_sync.py
"""

from __future__ import annotations

import threading

import asock_sync as socket

HOST = "127.0.0.1"  # loopback only; "" would listen on every interface


def echo_one_connection(listener: socket.socket) -> None:
    conn, address = listener.accept()
    with conn:
        print("Connected by", address[0])
        while data := conn.recv(1024):
            conn.sendall(data)


def greet(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.connect((HOST, port))
        s.sendall(b"Hello, world")
        data = s.recv(1024)
    print("Received", repr(data))


def main() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((HOST, 0))  # port 0: the kernel picks a free port
        listener.listen(1)
        server = threading.Thread(target=echo_one_connection, args=(listener,))
        server.start()
        greet(listener.getsockname()[1])
        server.join()


if __name__ == "__main__":
    main()
