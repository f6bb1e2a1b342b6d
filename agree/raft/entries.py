"""Log entries, hard state, configurations and snapshots: the values the core
hands to storage and the host.  All frozen; names follow the Raft paper."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field


class EntryType(enum.IntEnum):
    """What a log entry carries."""

    NORMAL = 0  # an opaque command for the host's state machine
    NOOP = 1  # the empty entry a new leader appends at the start of its term (§5.4.2, §8)
    CONF_CHANGE = 2  # a ConfChange encoded with ConfChange.encode()


@dataclass(frozen=True, slots=True, init=False)
class Entry:
    """One log entry.  Invariant: ``index >= 1`` and ``term >= 1``."""

    term: int
    index: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""

    def __init__(
        self, term: int, index: int, type: EntryType = EntryType.NORMAL, data: bytes = b""
    ) -> None:
        # Every node makes one per entry it appends or receives.  The slots are set through
        # their descriptors: a frozen dataclass's own __init__ calls object.__setattr__ by
        # name for each field, at about twice the cost.
        _set_term(self, term)
        _set_index(self, index)
        _set_type(self, type)
        _set_data(self, data)


_set_term = Entry.__dict__["term"].__set__
_set_index = Entry.__dict__["index"].__set__
_set_type = Entry.__dict__["type"].__set__
_set_data = Entry.__dict__["data"].__set__


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be durable before any message that depends on it is sent (Figure 2)."""

    term: int = 0
    vote: str | None = None  # votedFor in currentTerm
    commit: int = 0


@dataclass(frozen=True, slots=True)
class ConfState:
    """A cluster configuration: voting members and non-voting learners (disjoint sets)."""

    voters: frozenset[str] = field(default_factory=frozenset)
    learners: frozenset[str] = field(default_factory=frozenset)

    def members(self) -> frozenset[str]:
        return self.voters | self.learners

    def encode(self) -> bytes:
        return json.dumps(
            {"voters": sorted(self.voters), "learners": sorted(self.learners)},
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, raw: bytes) -> ConfState:
        obj = json.loads(raw)
        return cls(voters=frozenset(obj["voters"]), learners=frozenset(obj["learners"]))


class ConfChangeType(enum.Enum):
    ADD_LEARNER = "add_learner"  # join as a non-voter that catches up
    PROMOTE = "promote"  # learner -> voter
    REMOVE = "remove"  # voter or learner leaves (may be the leader itself)


@dataclass(frozen=True, slots=True)
class ConfChange:
    """A single-server membership change (dissertation §4.1), carried in a CONF_CHANGE entry.

    ``context`` is opaque to the core; the host uses it, e.g. for the new node's address.
    """

    type: ConfChangeType
    node_id: str
    context: bytes = b""

    def encode(self) -> bytes:
        return json.dumps(
            {"type": self.type.value, "node_id": self.node_id, "context": self.context.hex()},
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, raw: bytes) -> ConfChange:
        obj = json.loads(raw)
        return cls(
            type=ConfChangeType(obj["type"]),
            node_id=obj["node_id"],
            context=bytes.fromhex(obj["context"]),
        )


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Where a snapshot sits in the log, and the configuration as of that index (§7)."""

    index: int  # lastIncludedIndex
    term: int  # lastIncludedTerm
    conf: ConfState


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A snapshot: its metadata and the host's opaque state bytes."""

    meta: SnapshotMeta
    data: bytes


@dataclass(frozen=True, slots=True)
class PersistedState:
    """Everything a node reloads from storage at start."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()  # the log after the snapshot, contiguous
