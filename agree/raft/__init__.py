"""The Raft algorithm as a deterministic state machine (sans-I/O).

Inputs: ``tick()``, ``step(message)``, ``propose(data)``, ``read_index(ctx)``,
membership changes and leadership transfer.  Output: a :class:`Ready` that the host
carries out (persist, send, apply) before calling ``advance()``.  No clocks, sockets,
threads or global randomness: time is a tick count and randomness an injected
``random.Random``.  Imports only the standard library.
"""

from agree.raft.config import Config
from agree.raft.entries import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    PersistedState,
    Snapshot,
    SnapshotMeta,
)
from agree.raft.messages import (
    AnyMessage,
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from agree.raft.node import RaftNode
from agree.raft.ready import ReadState, Ready, Role, SoftState
from agree.raft.status import Status

__all__ = [
    "AnyMessage",
    "AppendEntries",
    "AppendEntriesResponse",
    "ConfChange",
    "ConfChangeType",
    "ConfState",
    "Config",
    "Entry",
    "EntryType",
    "HardState",
    "Heartbeat",
    "HeartbeatResponse",
    "InstallSnapshot",
    "InstallSnapshotResponse",
    "Message",
    "PersistedState",
    "RaftNode",
    "ReadIndexRequest",
    "ReadIndexResponse",
    "ReadState",
    "Ready",
    "RequestVote",
    "RequestVoteResponse",
    "Role",
    "Snapshot",
    "SnapshotMeta",
    "SoftState",
    "Status",
    "TimeoutNow",
]
