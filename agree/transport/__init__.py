"""How a node reaches its peers: Raft messages one way, forwarded client calls both ways.

:class:`Transport` is the seam; :class:`MemoryNetwork` joins nodes inside one process (tests,
benchmarks), carrying the same bytes as the network; :mod:`agree.transport.aiohttp` joins real
processes (import it by name: it loads aiohttp, which this package does not).
"""

from agree.transport.base import Transport, TransportHandler
from agree.transport.memory import MemoryNetwork, MemoryTransport

__all__ = ["MemoryNetwork", "MemoryTransport", "Transport", "TransportHandler"]
