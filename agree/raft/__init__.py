"""The Raft algorithm as a deterministic state machine (sans-I/O).

Inputs: ``tick()``, ``step(message)``, ``propose(data)``, ``read_index(ctx)``,
membership changes and leadership transfer.  Output: a :class:`Ready` that the host
carries out (persist, send, apply) before calling ``advance()``.  No clocks, sockets,
threads or global randomness: time is a tick count and randomness an injected
``random.Random``.  Imports only the standard library.

A brand-new cluster's configuration (``bootstrap``) is written as the first log entries:
for each voter an ADD_LEARNER and a PROMOTE CONF_CHANGE entry, for each learner an
ADD_LEARNER, all in term 1 and committed.  Every founding member writes the same prefix,
so a server that joins later learns the configuration by replaying the log like any other.

``ready()`` hands its contents over at once; carry out Readys in the order received.
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
