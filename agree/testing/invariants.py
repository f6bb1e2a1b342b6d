"""Raft's safety properties, checked incrementally while the simulator runs.

Owns: the global records the checks need -- the committed log as any node
ever saw it, the leader of each term, every (index, term) ever persisted --
and the checks themselves.  Each hook looks only at what just changed, so the
cost per step is proportional to the step's work, not to the log's length.

The properties (Raft paper Figure 3, and "persist before send" from §5.1/Fig. 2):

- Election Safety: at most one leader per term.
- Log Matching: two logs with an entry of the same index and term agree on
  every entry up to it.  Checked as: an (index, term) pair always names the same
  entry *and the same previous term*; by induction that is Log Matching.
- Leader Completeness: a new leader's log holds every entry already committed.
- State Machine Safety: a committed index never changes its entry; every node
  applies a contiguous prefix of the one committed sequence.
- Durability: a node's term never goes back and its vote never changes within
  a term, across restarts; committed index never goes back.
- Persist before send: a message never promises state that is not yet durable
  (a vote grant's (term, vote), an append ack's match index, a message's term).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from agree.raft.entries import Entry, EntryType, HardState, Snapshot
from agree.raft.messages import (
    AppendEntriesResponse,
    InstallSnapshotResponse,
    Message,
    RequestVote,
    RequestVoteResponse,
)
from agree.storage.memory import MemoryStore


class Violation(Exception):
    """A safety property failed.  ``kind`` names the property."""

    def __init__(self, kind: str, node: str, detail: str) -> None:
        super().__init__(f"{kind} at {node}: {detail}")
        self.kind = kind
        self.node = node
        self.detail = detail


@dataclass(frozen=True, slots=True)
class _Slot:
    """What an (index, term) pair names: its entry's content and the term before it."""

    type: EntryType
    data: bytes
    prev_term: int | None  # None: unknown (the previous index is compacted)


def _same(a: Entry, b: Entry) -> bool:
    return a.term == b.term and a.type == b.type and a.data == b.data


class Invariants:
    """Incremental safety checks.  Every hook raises :class:`Violation` on failure."""

    def __init__(self) -> None:
        self.committed: list[Entry] = []  # committed[i - 1] is the entry committed at index i
        self.leaders: dict[int, str] = {}  # term -> its leader
        self._slots: dict[tuple[int, int], _Slot] = {}
        self._checked_commit: dict[str, int] = {}  # node -> commit index already checked

    # -- the committed record ----------------------------------------------------------

    def _commit(self, node: str, entry: Entry) -> None:
        i = entry.index
        n = len(self.committed)
        if i <= n:
            known = self.committed[i - 1]
            if not _same(known, entry):
                raise Violation(
                    "committed entry changed",
                    node,
                    f"index {i} was committed as {_fmt(known)}, now {_fmt(entry)}",
                )
        elif i == n + 1:
            self.committed.append(entry)
        else:
            raise Violation(
                "commit gap", node, f"index {i} committed but only {n} known committed"
            )

    @property
    def commit_index(self) -> int:
        return len(self.committed)

    # -- hooks ----------------------------------------------------------------------------

    def persisted(
        self,
        node: str,
        store: MemoryStore,
        before: HardState,
        snapshot: Snapshot | None,
        entries: tuple[Entry, ...],
    ) -> None:
        """After the persist step of one Ready (``store`` already updated)."""
        hard = store.hard_state()
        if hard.term < before.term:
            raise Violation("term went back", node, f"{before.term} -> {hard.term}")
        if hard.term == before.term and before.vote is not None and hard.vote != before.vote:
            raise Violation(
                "vote changed within a term",
                node,
                f"term {hard.term}: {before.vote} -> {hard.vote}",
            )
        if hard.commit < before.commit:
            raise Violation("commit went back", node, f"{before.commit} -> {hard.commit}")
        if snapshot is not None:
            self._check_snapshot(node, snapshot)
        # A stored entry at or below the node's commit index is committed: rewriting it
        # with anything else loses a committed entry (State Machine Safety).
        limit = min(before.commit, len(self.committed))
        for e in entries:
            if e.index > limit:
                break
            if not _same(e, self.committed[e.index - 1]):
                raise Violation(
                    "committed entry overwritten",
                    node,
                    f"index {e.index} (commit {before.commit}) rewritten as {_fmt(e)}, "
                    f"committed was {_fmt(self.committed[e.index - 1])}",
                )
        slots = self._slots
        for e in entries:
            prev = store.term_at(e.index - 1)
            slot = slots.get((e.index, e.term))
            if slot is None:
                slots[(e.index, e.term)] = _Slot(e.type, e.data, prev)
            elif slot.type != e.type or slot.data != e.data:
                raise Violation(
                    "log matching",
                    node,
                    f"two different entries at index {e.index} term {e.term}",
                )
            elif prev is not None and slot.prev_term is not None and prev != slot.prev_term:
                raise Violation(
                    "log matching",
                    node,
                    f"entry {e.index}/{e.term} follows term {prev} here, "
                    f"term {slot.prev_term} elsewhere",
                )
        self._check_commit(node, store)

    def _check_commit(self, node: str, store: MemoryStore) -> None:
        commit = store.hard_state().commit
        done = self._checked_commit.get(node, 0)
        if commit <= done:
            return
        for i in range(max(done, store.snapshot_index()) + 1, commit + 1):
            e = store.entry(i)
            if e is None:
                raise Violation(
                    "commit beyond the persisted log",
                    node,
                    f"commit {commit} but the stored log ends at {store.last_index()}",
                )
            self._commit(node, e)
        self._checked_commit[node] = commit

    def _check_snapshot(self, node: str, snapshot: Snapshot) -> None:
        meta = snapshot.meta
        if meta.index <= len(self.committed):
            known = self.committed[meta.index - 1]
            if known.term != meta.term:
                raise Violation(
                    "snapshot disagrees with the committed log",
                    node,
                    f"snapshot at {meta.index} term {meta.term}, committed term {known.term}",
                )

    def applied(self, node: str, applied_before: int, entry: Entry) -> None:
        """A node applies ``entry`` to its state machine."""
        if entry.index != applied_before + 1:
            raise Violation(
                "apply out of order",
                node,
                f"applied {entry.index} right after {applied_before}",
            )
        self._commit(node, entry)

    def restored(self, node: str, snapshot: Snapshot, applied_before: int) -> None:
        """A node's state machine restores ``snapshot`` (sent by a leader)."""
        if snapshot.meta.index < applied_before:
            raise Violation(
                "state machine rolled back",
                node,
                f"restores a snapshot at {snapshot.meta.index} after applying {applied_before}",
            )
        self._check_snapshot(node, snapshot)

    def leader(self, node: str, term: int, store: MemoryStore, *, new: bool) -> None:
        """``node`` is leader in ``term`` after a step; ``new`` when it just became one."""
        other = self.leaders.setdefault(term, node)
        if other != node:
            raise Violation("two leaders in one term", node, f"term {term} also led by {other}")
        if not new:
            return
        # Leader Completeness (§5.4): every entry committed so far is in the new leader's log.
        n = len(self.committed)
        if store.last_index() < n:
            raise Violation(
                "leader completeness",
                node,
                f"leader of term {term} has log up to {store.last_index()}, "
                f"but {n} entries are committed",
            )
        for i in range(store.snapshot_index() + 1, n + 1):
            e = store.entry(i)
            assert e is not None
            if not _same(e, self.committed[i - 1]):
                raise Violation(
                    "leader completeness",
                    node,
                    f"leader of term {term} has {_fmt(e)} at {i}, "
                    f"committed was {_fmt(self.committed[i - 1])}",
                )

    def restarted(self, node: str, store: MemoryStore, term: int, vote: str | None) -> None:
        """A node was rebuilt from ``store``: it must resume its persisted term and vote.
        (A node that never persisted anything may bootstrap a fresh cluster state.)"""
        hard = store.hard_state()
        if hard == HardState() and store.last_index() == 0:
            return
        if term != hard.term or vote != hard.vote:
            raise Violation(
                "restart lost the hard state",
                node,
                f"persisted term {hard.term} vote {hard.vote}, "
                f"restarted with term {term} vote {vote}",
            )

    def sent(self, msg: Message, store: MemoryStore, stores: Mapping[str, MemoryStore]) -> None:
        """``msg`` is handed to the network; ``store`` is its sender's durable state."""
        hard = store.hard_state()
        src = msg.src
        pre = isinstance(msg, RequestVote | RequestVoteResponse) and msg.pre_vote
        if not pre and msg.term > hard.term:
            raise Violation(
                "sent before persisted",
                src,
                f"{type(msg).__name__} for term {msg.term}, persisted term {hard.term}",
            )
        if hard.term > msg.term:
            # The node moved to a later term within the same Ready.  It never acts in
            # msg.term again, so what the message promised about that term cannot be
            # contradicted: the durable state supersedes it.
            return
        if isinstance(msg, RequestVote) and not pre:
            if hard.term != msg.term or hard.vote != src:
                raise Violation(
                    "sent before persisted",
                    src,
                    f"RequestVote term {msg.term} with persisted ({hard.term}, {hard.vote})",
                )
        elif isinstance(msg, RequestVoteResponse):
            if msg.vote_granted and not pre and (hard.term != msg.term or hard.vote != msg.dst):
                raise Violation(
                    "sent before persisted",
                    src,
                    f"vote for {msg.dst} in term {msg.term} with persisted "
                    f"({hard.term}, {hard.vote})",
                )
        elif isinstance(msg, AppendEntriesResponse):
            if msg.success:
                self._check_match(msg, msg.match_index, store, stores)
        elif isinstance(msg, InstallSnapshotResponse) and msg.match_index:
            self._check_match(msg, msg.match_index, store, stores)

    def _check_match(
        self, msg: Message, match: int, store: MemoryStore, stores: Mapping[str, MemoryStore]
    ) -> None:
        if match > store.last_index():
            raise Violation(
                "sent before persisted",
                msg.src,
                f"acked match {match} to {msg.dst} but the stored log ends at "
                f"{store.last_index()}",
            )
        mine = store.term_at(match)
        leader = stores.get(msg.dst)
        theirs = leader.term_at(match) if leader is not None else None
        if (
            mine is not None
            and theirs is not None
            and self.leaders.get(msg.term) == msg.dst
            and leader is not None
            and leader.hard_state().term == msg.term
            and mine != theirs
        ):
            raise Violation(
                "sent before persisted",
                msg.src,
                f"acked match {match} (stored term {mine}) to the leader of term {msg.term}, "
                f"whose entry there has term {theirs}",
            )


def _fmt(e: Entry) -> str:
    data = e.data if len(e.data) <= 40 else e.data[:37] + b"..."
    return f"(term {e.term}, {e.type.name}, {data!r})"
