"""Free TCP ports on the loopback interface, for local clusters (tests, chaos, benchmarks,
``startproject``)."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """Ports the system had free a moment ago (bound to port 0 together, then released)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
