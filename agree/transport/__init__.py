"""How a node reaches its peers: Raft messages one way, forwarded client calls both ways.

:class:`Transport` is the seam; :class:`MemoryNetwork` joins nodes inside one process (tests,
benchmarks); the aiohttp transport joins real processes.
"""

from agree.transport.base import Transport, TransportHandler
from agree.transport.memory import MemoryNetwork, MemoryTransport

__all__ = ["MemoryNetwork", "MemoryTransport", "Transport", "TransportHandler"]
