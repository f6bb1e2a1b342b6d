"""The transport seam between a node and its peers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from agree.raft.messages import Message
from agree.wire.calls import Call, Outcome
from agree.wire.peer import DEFAULT_GROUP


class TransportHandler(Protocol):
    """What a transport delivers into: the node.  Both run on the node's event loop."""

    def hosts_group(self, group_id: str) -> bool:
        """Whether this node hosts Raft group ``group_id`` (a batch for another is dropped)."""

    def receive(self, message: Message, group_id: str = DEFAULT_GROUP) -> None:
        """A Raft message of group ``group_id`` from an authenticated peer."""

    async def handle_call(self, call: Call, timeout: float) -> Outcome:
        """A client call forwarded by a peer (which found it is not the leader)."""


class Transport(Protocol):
    async def start(self, handler: TransportHandler) -> None:
        """Begin delivering inbound traffic to ``handler``."""

    async def close(self) -> None: ...

    def send(self, messages: Sequence[Message], group_id: str = DEFAULT_GROUP) -> None:
        """Fire and forget: Raft tolerates loss, so a failed send is dropped, never raised.
        Every group's batches to one peer share that peer's one connection."""

    async def forward(self, peer: str, call: Call, timeout: float) -> Outcome:
        """Run ``call`` on ``peer``; raises UnavailableError if the peer cannot be reached."""

    def update_peers(self, addresses: Mapping[str, str]) -> None:
        """The cluster's current address book (node id -> URL)."""
