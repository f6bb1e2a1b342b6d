"""What the core asks of its host after each input: the Ready record."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from agree.raft.entries import Entry, HardState, Snapshot
from agree.raft.messages import Message


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"
    LEARNER = "learner"  # a non-voting member: follows, never campaigns


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state the host may want to show; not persisted."""

    leader_id: str | None
    role: Role


@dataclass(frozen=True, slots=True)
class ReadState:
    """A confirmed linearizable read: serve ``context``'s read once applied >= ``index``."""

    context: bytes
    index: int


@dataclass(frozen=True, slots=True)
class Ready:
    """Work for the host, to be carried out in this order, then ``advance(ready)``:

    1. persist ``snapshot`` (if any; it replaces the whole stored log), then ``hard_state``
       (if not None) and ``entries`` (which replace any stored entries from
       ``entries[0].index`` on) atomically, durably;
    2. send ``messages`` -- only now, because they may promise what step 1 persisted; but
       when ``send_first`` is true they promise nothing of it (a leader's appends and
       heartbeats in a term already durable), and may be sent before or while step 1 runs
       (dissertation §10.2.1: the leader writes its log in parallel with replicating it,
       and counts itself toward a commit only at ``advance``, once its write is durable);
    3. restore the state machine from ``snapshot`` (if any), then apply
       ``committed_entries`` in order (a chunk of at most ``max_committed_bytes_per_ready``
       of data, or one entry; the next Readys carry the rest);
    4. answer ``read_states`` once the applied index reaches their index;
    5. call ``advance(ready)``.

    ``must_sync`` (etcd's ``MustSync``) says whether step 1 must be durable before step 2:
    true when there are entries or a snapshot to persist, or the term or vote changed (Figure
    2's persistent state).  A ``hard_state`` that only moves the commit index does not need an
    fsync of its own: the commit index is volatile, relearned from the leader after a restart,
    so a host may write it with the next Ready that must sync.
    """

    hard_state: HardState | None
    entries: tuple[Entry, ...]
    snapshot: Snapshot | None
    messages: tuple[Message, ...]
    committed_entries: tuple[Entry, ...]
    read_states: tuple[ReadState, ...]
    soft_state: SoftState | None  # None when unchanged since the last Ready
    must_sync: bool
    send_first: bool = False
