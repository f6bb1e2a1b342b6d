"""The incremental invariant checks, one property at a time, and what they read of a store."""

from __future__ import annotations

import pytest

from agree.errors import StorageError
from agree.raft import (
    AppendEntriesResponse,
    ConfState,
    Entry,
    HardState,
    Heartbeat,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
    SnapshotMeta,
)
from agree.storage.memory import MemoryStore
from agree.testing.invariants import Invariants, Violation

CONF = ConfState(voters=frozenset({"a", "b", "c"}))


def E(index: int, term: int, data: bytes = b"") -> Entry:
    return Entry(term, index, data=data)


def persist(
    inv: Invariants,
    node: str,
    store: MemoryStore,
    *,
    hard: HardState | None = None,
    entries: tuple[Entry, ...] = (),
    snapshot: Snapshot | None = None,
) -> None:
    before = store.hard_state()
    store.save(hard_state=hard, entries=entries, snapshot=snapshot)
    inv.persisted(node, store, before, snapshot, entries)


# --- durability of term and vote -------------------------------------------------------------


def test_term_may_not_go_back() -> None:
    inv, s = Invariants(), MemoryStore()
    persist(inv, "a", s, hard=HardState(3, "a"))
    with pytest.raises(Violation, match="term went back"):
        persist(inv, "a", s, hard=HardState(2, None))


def test_vote_may_not_change_within_a_term() -> None:
    inv, s = Invariants(), MemoryStore()
    persist(inv, "a", s, hard=HardState(3, None))
    persist(inv, "a", s, hard=HardState(3, "b"))  # first vote in the term: fine
    with pytest.raises(Violation, match="vote changed"):
        persist(inv, "a", s, hard=HardState(3, "c"))
    persist(inv, "a", s, hard=HardState(4, "c"))  # a new term: fine


def test_restart_must_resume_persisted_hard_state() -> None:
    inv, s = Invariants(), MemoryStore()
    inv.restarted("a", s, 1, None)  # nothing persisted yet: a bootstrap may set term 1
    s.save(hard_state=HardState(5, "b"), entries=())
    inv.restarted("a", s, 5, "b")
    with pytest.raises(Violation, match="restart lost"):
        inv.restarted("a", s, 5, None)


# --- log matching and committed entries ------------------------------------------------------


def test_same_index_and_term_must_be_the_same_entry() -> None:
    inv, a, b = Invariants(), MemoryStore(), MemoryStore()
    persist(inv, "a", a, entries=(E(1, 1, b"x"),))
    persist(inv, "b", b, entries=(E(1, 1, b"x"),))
    with pytest.raises(Violation, match="log matching"):
        persist(inv, "c", MemoryStore(), entries=(E(1, 1, b"y"),))


def test_same_index_and_term_must_follow_the_same_term() -> None:
    inv, a, b = Invariants(), MemoryStore(), MemoryStore()
    persist(inv, "a", a, entries=(E(1, 1), E(2, 3)))
    with pytest.raises(Violation, match="log matching"):
        persist(inv, "b", b, entries=(E(1, 2), E(2, 3)))


def test_committed_entry_may_not_change() -> None:
    inv, a, b = Invariants(), MemoryStore(), MemoryStore()
    persist(inv, "a", a, hard=HardState(1, "a", 1), entries=(E(1, 1, b"x"),))
    assert inv.commit_index == 1
    with pytest.raises(Violation, match="committed entry changed"):
        persist(inv, "b", b, hard=HardState(2, "b", 1), entries=(E(1, 2, b"y"),))


def test_commit_beyond_the_stored_log() -> None:
    inv = Invariants()
    with pytest.raises(Violation, match="commit beyond"):
        persist(inv, "a", MemoryStore(), hard=HardState(1, None, 2), entries=(E(1, 1),))


def test_applied_sequence_is_contiguous_and_matches() -> None:
    inv = Invariants()
    inv.applied("a", 0, E(1, 1, b"x"))
    inv.applied("b", 0, E(1, 1, b"x"))
    with pytest.raises(Violation, match="out of order"):
        inv.applied("a", 1, E(3, 1))
    with pytest.raises(Violation, match="committed entry changed"):
        inv.applied("c", 0, E(1, 1, b"z"))


def test_leader_completeness_and_one_leader_per_term() -> None:
    inv, a, b = Invariants(), MemoryStore(), MemoryStore()
    persist(inv, "a", a, hard=HardState(1, "a", 2), entries=(E(1, 1), E(2, 1, b"x")))
    inv.leader("a", 1, a, new=True)
    with pytest.raises(Violation, match="two leaders"):
        inv.leader("b", 1, b, new=True)
    persist(inv, "b", b, hard=HardState(2, "b"), entries=(E(1, 1),))
    with pytest.raises(Violation, match="leader completeness"):
        inv.leader("b", 2, b, new=True)


def test_snapshot_must_agree_with_committed_log() -> None:
    inv, a = Invariants(), MemoryStore()
    persist(inv, "a", a, hard=HardState(1, "a", 2), entries=(E(1, 1), E(2, 1)))
    good = Snapshot(SnapshotMeta(2, 1, CONF), b"")
    persist(inv, "b", MemoryStore(), snapshot=good, hard=HardState(1, None, 2))
    bad = Snapshot(SnapshotMeta(2, 2, CONF), b"")
    with pytest.raises(Violation, match="snapshot disagrees"):
        persist(inv, "c", MemoryStore(), snapshot=bad)


# --- persist before send ---------------------------------------------------------------------


def test_vote_grant_needs_persisted_vote() -> None:
    inv, s = Invariants(), MemoryStore()
    s.save(hard_state=HardState(4, None), entries=())
    grant = RequestVoteResponse(src="a", dst="b", term=4, vote_granted=True)
    with pytest.raises(Violation, match="sent before persisted"):
        inv.sent(grant, s, {})
    s.save(hard_state=HardState(4, "b"), entries=())
    inv.sent(grant, s, {})
    # Already in a later term: the grant for term 4 can never be contradicted.
    s.save(hard_state=HardState(5, None), entries=())
    inv.sent(grant, s, {})


def test_message_term_needs_persisted_term() -> None:
    inv, s = Invariants(), MemoryStore()
    s.save(hard_state=HardState(2, None), entries=())
    with pytest.raises(Violation, match="sent before persisted"):
        inv.sent(Heartbeat(src="a", dst="b", term=3, leader_commit=0), s, {})
    pre = RequestVote(src="a", dst="b", term=3, last_log_index=0, last_log_term=0, pre_vote=True)
    inv.sent(pre, s, {})  # a pre-vote asks for a term it does not hold yet
    with pytest.raises(Violation, match="sent before persisted"):
        inv.sent(replace_pre(pre), s, {})


def replace_pre(m: RequestVote) -> RequestVote:
    return RequestVote(
        src=m.src, dst=m.dst, term=m.term, last_log_index=m.last_log_index,
        last_log_term=m.last_log_term,
    )


def test_append_ack_needs_persisted_entries_with_the_leaders_term() -> None:
    inv, follower, leader = Invariants(), MemoryStore(), MemoryStore()
    follower.save(hard_state=HardState(2, "l"), entries=())
    leader.save(hard_state=HardState(2, "l"), entries=())
    leader.save(hard_state=None, entries=(E(1, 1), E(2, 2)))
    inv.leader("l", 2, leader, new=False)
    ack = AppendEntriesResponse(src="f", dst="l", term=2, success=True, match_index=2)
    with pytest.raises(Violation, match="stored log ends at 0"):
        inv.sent(ack, follower, {"l": leader})
    follower.save(hard_state=None, entries=(E(1, 1), E(2, 1)))
    with pytest.raises(Violation, match="whose entry there has term 2"):
        inv.sent(ack, follower, {"l": leader})
    follower.save(hard_state=None, entries=(E(2, 2),))
    inv.sent(ack, follower, {"l": leader})


# --- the store -------------------------------------------------------------------------------


def test_store_append_truncates_and_refuses_gaps() -> None:
    s = MemoryStore()
    s.save(hard_state=None, entries=(E(1, 1), E(2, 1), E(3, 1)))
    s.save(hard_state=None, entries=(E(2, 2),))
    assert [s.term_at(i) for i in range(4)] == [0, 1, 2, None] and s.last_index() == 2
    with pytest.raises(StorageError, match="gap"):
        s.save(hard_state=None, entries=(E(4, 2),))
    with pytest.raises(StorageError, match="not contiguous"):
        s.save(hard_state=None, entries=(E(3, 2), E(5, 2)))
    assert s.last_index() == 2  # a refused save changes nothing


def test_store_compaction_and_snapshot_install() -> None:
    s = MemoryStore()
    s.save(hard_state=None, entries=tuple(E(i, 1) for i in range(1, 6)))
    s.compact(Snapshot(SnapshotMeta(3, 1, CONF), b"x"))
    assert s.snapshot_index() == 3 and [s.entry(i) for i in (4, 5)] == [E(4, 1), E(5, 1)]
    assert s.term_at(3) == 1 and s.entry(3) is None and s.term_at(2) is None
    with pytest.raises(StorageError, match="inside the snapshot"):
        s.save(hard_state=None, entries=(E(3, 2),))
    s.save(hard_state=None, entries=(), snapshot=Snapshot(SnapshotMeta(10, 3, CONF), b"y"))
    assert s.last_index() == 10 and s.entry(5) is None and s.term_at(10) == 3
    loaded = s.load()
    assert loaded.snapshot is not None and loaded.snapshot.meta.index == 10


def test_rewriting_a_committed_entry_in_a_log_is_caught() -> None:
    inv, a, b = Invariants(), MemoryStore(), MemoryStore()
    persist(inv, "a", a, hard=HardState(1, "a", 2), entries=(E(1, 1), E(2, 1, b"x")))
    persist(inv, "b", b, hard=HardState(1, "a", 2), entries=(E(1, 1), E(2, 1, b"x")))
    with pytest.raises(Violation, match="committed entry overwritten"):
        persist(inv, "b", b, hard=HardState(2, None, 2), entries=(E(2, 2, b"y"),))


def test_restoring_an_older_snapshot_is_caught() -> None:
    inv = Invariants()
    inv.restored("a", Snapshot(SnapshotMeta(5, 1, CONF), b""), applied_before=5)
    with pytest.raises(Violation, match="rolled back"):
        inv.restored("a", Snapshot(SnapshotMeta(4, 1, CONF), b""), applied_before=5)
