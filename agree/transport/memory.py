"""An in-process network joining several nodes on one event loop, for tests and benchmarks.

It carries bytes, exactly what the aiohttp transport carries: each ``send`` encodes one
:class:`~agree.wire.peer.PeerBatch` frame per destination and delivery decodes it, and a
forwarded call and its outcome (or the error it raised) cross as CALL and OUTCOME frames; so
every in-memory test exercises the real wire formats.  Frames are delivered on the next loop
iteration, as a real network would deliver them later.  Tests can cut links to model partitions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from agree.errors import UnavailableError
from agree.raft.messages import Message
from agree.transport.base import TransportHandler
from agree.wire.calls import Call, Outcome
from agree.wire.peer import (
    DEFAULT_GROUP,
    PeerBatch,
    decode_call_request,
    decode_call_response,
    decode_peer_batch,
    encode_call_request,
    encode_call_response,
    encode_peer_batch,
)


class MemoryNetwork:
    def __init__(self) -> None:
        self._handlers: dict[str, TransportHandler] = {}
        self._cut: set[tuple[str, str]] = set()  # (src, dst) links that drop everything

    def transport(self, node_id: str) -> MemoryTransport:
        return MemoryTransport(self, node_id)

    # -- faults -----------------------------------------------------------------------------
    def cut(self, a: str, b: str, *, both_ways: bool = True) -> None:
        self._cut.add((a, b))
        if both_ways:
            self._cut.add((b, a))

    def isolate(self, node_id: str) -> None:
        for other in self._handlers:
            if other != node_id:
                self.cut(node_id, other)

    def partition(self, *groups: Sequence[str]) -> None:
        """Only nodes in the same group can talk."""
        for i, group in enumerate(groups):
            for other in groups[i + 1 :]:
                for a in group:
                    for b in other:
                        self.cut(a, b)

    def heal(self) -> None:
        self._cut.clear()

    def reachable(self, src: str, dst: str) -> bool:
        return (src, dst) not in self._cut and dst in self._handlers

    # -- plumbing ----------------------------------------------------------------------------
    def _attach(self, node_id: str, handler: TransportHandler) -> None:
        self._handlers[node_id] = handler

    def _detach(self, node_id: str) -> None:
        self._handlers.pop(node_id, None)

    def _deliver(self, dst: str, frame: bytes) -> None:
        batch = decode_peer_batch(frame)
        if self.reachable(batch.src, dst):
            handler = self._handlers[dst]
            if not handler.hosts_group(batch.group_id):
                return  # as the aiohttp acceptor does: that group's batch only is dropped
            for msg in batch.messages:
                handler.receive(msg, batch.group_id)


class MemoryTransport:
    def __init__(self, network: MemoryNetwork, node_id: str) -> None:
        self._network = network
        self._id = node_id
        self._open = False  # between start and close: a closed node sends nothing

    async def start(self, handler: TransportHandler) -> None:
        self._network._attach(self._id, handler)
        self._open = True

    async def close(self) -> None:
        self._open = False
        self._network._detach(self._id)

    def send(self, messages: Sequence[Message], group_id: str = DEFAULT_GROUP) -> None:
        if not messages or not self._open:
            return
        by_dst: dict[str, list[Message]] = {}
        for msg in messages:
            by_dst.setdefault(msg.dst, []).append(msg)
        loop = asyncio.get_running_loop()
        for dst, msgs in by_dst.items():
            frame = encode_peer_batch(PeerBatch(group_id, self._id, tuple(msgs)))
            loop.call_soon(self._network._deliver, dst, frame)

    async def forward(self, peer: str, call: Call, timeout: float) -> Outcome:
        network = self._network
        if not self._open:
            raise UnavailableError(f"the transport of node {self._id!r} is closed")
        if not network.reachable(self._id, peer) or not network.reachable(peer, self._id):
            raise UnavailableError(f"node {peer!r} is unreachable from {self._id!r}")
        request_id, call, timeout = decode_call_request(encode_call_request(1, call, timeout))
        result: Outcome | BaseException
        try:
            result = await network._handlers[peer].handle_call(call, timeout)
        except Exception as exc:
            result = exc
        _, answer = decode_call_response(encode_call_response(request_id, result))
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def update_peers(self, addresses: Mapping[str, str]) -> None:
        """Addresses mean nothing in one process: nodes are found by id."""
