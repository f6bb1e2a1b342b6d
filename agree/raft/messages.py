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
    a campaign started by TimeoutNow, which bypasses leader stickiness (§3.10).
    ``round_id`` numbers the candidate's rounds: a pre-vote round keeps the term of the
    one before it, so only the round id tells a late answer from a current one."""

    last_log_index: int
    last_log_term: int
    pre_vote: bool = False
    transfer: bool = False
    round_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestVoteResponse(Message):
    """``round_id`` is the request's: a grant counts only in the round that asked for it."""

    vote_granted: bool
    pre_vote: bool = False
    round_id: int = 0


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
    """Leader liveness and commit propagation; ``context`` confirms ReadIndex rounds (§6.4).
    ``tick`` is the leader's clock when it sent the round; the answer echoes it, so the
    leader knows from when a quorum's answers date (the lease of §6.4.1).
    ``last_log_index`` is the leader's last entry when it sent the round: a follower that
    sees it past the entry a TimeoutNow names knows that transfer is over (§3.10)."""

    leader_commit: int
    context: bytes = b""
    tick: int = 0
    last_log_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatResponse(Message):
    context: bytes = b""
    tick: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallSnapshot(Message):
    """§7, Figure 13: one chunk of a snapshot at ``offset``; ``done`` on the last one.
    ``checksum`` (SHA-256 of the whole snapshot) travels with the metadata of every chunk:
    two leaders may hold snapshots of the same (index, term) whose bytes differ (a host's
    serialization need not be deterministic), so the follower checks what it assembled."""

    last_included_index: int
    last_included_term: int
    conf: ConfState
    checksum: bytes
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
    """Leadership transfer (dissertation §3.10): start an election at once.

    Identified by the leader's term and its log's last entry when it sent this: a leader
    appends nothing while a transfer is under way and appends a NOOP when it aborts one, so
    a target that knows the leader's log has moved past that entry -- its own log has, or a
    heartbeat said so -- knows the transfer is over and ignores a late or duplicated
    TimeoutNow."""

    last_log_index: int
    last_log_term: int


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
