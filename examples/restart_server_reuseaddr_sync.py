"""Restart a server on the same port at once, thanks to SO_REUSEADDR (asock_sync).

When a server closes a connection first, the kernel keeps that connection in
TIME_WAIT for a while, and binding the port again fails with EADDRINUSE. Set
SO_REUSEADDR on the listener (before bind, in every run) and the restarted
server binds at once. This script serves one client, stops, then tries to
restart twice: without the option (refused) and with it (accepted).

Run: python examples/restart_server_reuseaddr_sync.py
"""

from __future__ import annotations

import errno
import threading

import asock_sync as socket

HOST = "127.0.0.1"


def open_listener(port: int, reuse_address: bool) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if reuse_address:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, port))
        listener.listen(1)
    except BaseException:
        listener.close()
        raise
    return listener


def serve_one_client(listener: socket.socket) -> None:
    """Accept a client, greet it and hang up first (which leaves TIME_WAIT here)."""

    def server() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"bye\n")

    thread = threading.Thread(target=server)
    thread.start()
    with socket.create_connection(listener.getsockname(), timeout=10) as client:
        while client.recv(1024):
            pass  # read until the server's close arrives
    thread.join()


def main() -> None:
    with open_listener(0, reuse_address=True) as first:
        port = first.getsockname()[1]
        serve_one_client(first)
    print(f"first server on port {port} served a client and stopped")

    try:
        with open_listener(port, reuse_address=False):
            print("restart without SO_REUSEADDR: bound (no TIME_WAIT left)")
    except OSError as exc:
        assert exc.errno == errno.EADDRINUSE
        print(f"restart without SO_REUSEADDR: {exc.strerror}")

    with open_listener(port, reuse_address=True) as second:
        serve_one_client(second)
    print(f"restart with SO_REUSEADDR: bound port {port} and served a client")


if __name__ == "__main__":
    main()
