"""An echo server and client that work over IPv4 or IPv6, driven by getaddrinfo.

The stdlib documentation's second example with ``import asock_sync as
socket``: neither end names an address family. The server binds the first
address ``getaddrinfo`` offers for passive use, the client connects to the
first one that answers. Both run once for 127.0.0.1 and once for ::1
(skipped where the host has no IPv6). The server runs in a thread.

Run: python examples/echo_tcp_any_family_sync.py
"""

from __future__ import annotations

import threading

import asock_sync as socket


def open_listener(host: str) -> socket.socket | None:
    infos = socket.getaddrinfo(host, 0, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    for family, kind, proto, _, address in infos:
        try:
            s = socket.socket(family, kind, proto)
        except OSError:
            continue
        try:
            s.bind(address)
            s.listen(1)
        except OSError:
            s.close()
            continue
        return s
    return None


def open_connection(host: str, port: int) -> socket.socket | None:
    for family, kind, proto, _, address in socket.getaddrinfo(
        host, port, socket.AF_UNSPEC, socket.SOCK_STREAM
    ):
        try:
            s = socket.socket(family, kind, proto)
        except OSError:
            continue
        try:
            s.connect(address)
        except OSError:
            s.close()
            continue
        return s
    return None


def echo_one_connection(listener: socket.socket) -> None:
    try:
        conn, _ = listener.accept()
    except OSError:  # the listener was closed under us: nobody came
        return
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data)


def round_trip(host: str) -> None:
    listener = open_listener(host)
    if listener is None:
        print(f"{host}: could not open socket")
        return
    with listener:
        port = listener.getsockname()[1]
        server = threading.Thread(target=echo_one_connection, args=(listener,))
        server.start()
        client = open_connection(host, port)
        if client is None:
            print(f"{host}: could not connect")
            listener.close()  # wakes the thread blocked in accept() with EBADF
        else:
            with client:
                client.sendall(b"Hello, world")
                data = client.recv(1024)
                print(f"{client.family.name} {host} port {port}: received {data!r}")
        server.join()


def main() -> None:
    for host in ("127.0.0.1", "::1"):
        round_trip(host)


if __name__ == "__main__":
    main()
