"""The shared core of asock and asock_sync.

``operations`` holds every I/O operation once: the try/wait/retry loop, the
deadline arithmetic and partial-progress accounting. ``socket_base`` holds the
socket state and the methods that never wait. The fronts (``asock.socket`` and
``asock_sync.socket``) only decide how a wait for readiness is carried out.
"""
