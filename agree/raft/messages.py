"""Messages exchanged by Raft peers.  Frozen, slotted, keyword-only; field names
follow the Raft paper (Figure 2) with ``src``/``dst`` for routing and ``term``
on every message."""

from __future__ import annotations

from dataclasses import dataclass

from agree.raft.entries import ConfState, Entry


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    src: str
    dst: str
    term: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestVote(Message):
    """§5.2.  ``pre_vote`` marks the pre-vote phase (dissertation §9.6): ``term`` is then the
    term the candidate *would* use and no receiver changes its own state.  ``transfer`` marks
    a campaign started by TimeoutNow, which bypasses leader stickiness (§3.10)."""

    last_log_index: int
    last_log_term: int
    pre_vote: bool = False
    transfer: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestVoteResponse(Message):
    vote_granted: bool
    pre_vote: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendEntries(Message):
    """§5.3.  Carries a batch of entries following (prev_log_index, prev_log_term)."""

    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...]
    leader_commit: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendEntriesResponse(Message):
    """On success ``match_index`` is the last index the follower knows to match the leader.
    On rejection ``reject_hint_index``/``reject_hint_term`` let the leader skip a whole
    conflicting term at once (§5.3, the optimization at the end of that section)."""

    success: bool
    match_index: int = 0
    reject_index: int = 0  # the prev_log_index that was rejected
    reject_hint_index: int = 0
    reject_hint_term: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat(Message):
    """Leader liveness and commit propagation; ``context`` confirms ReadIndex rounds (§6.4)."""

    leader_commit: int
    context: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatResponse(Message):
    context: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallSnapshot(Message):
    """§7, Figure 13: one chunk of a snapshot at ``offset``; ``done`` on the last one."""

    last_included_index: int
    last_included_term: int
    conf: ConfState
    offset: int
    data: bytes
    done: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallSnapshotResponse(Message):
    """Acknowledges a chunk.  ``next_offset`` is the byte the follower expects next; when the
    whole snapshot is installed ``match_index`` is its last included index."""

    last_included_index: int
    next_offset: int
    done: bool = False
    match_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutNow(Message):
    """Leadership transfer (dissertation §3.10): start an election at once."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadIndexRequest(Message):
    """A follower asks the leader for a read index on behalf of its client (§6.4)."""

    context: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadIndexResponse(Message):
    """``index`` is the confirmed read index; ``success`` is False if the leader refused."""

    context: bytes
    index: int
    success: bool = True


AnyMessage = (
    RequestVote
    | RequestVoteResponse
    | AppendEntries
    | AppendEntriesResponse
    | Heartbeat
    | HeartbeatResponse
    | InstallSnapshot
    | InstallSnapshotResponse
    | TimeoutNow
    | ReadIndexRequest
    | ReadIndexResponse
)
