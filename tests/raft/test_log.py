"""RaftLog: O(1) lookups over a list with an offset; truncation only from a conflict."""

from __future__ import annotations

import pytest

from agree.raft import ConfState, Entry, Snapshot, SnapshotMeta
from agree.raft.log import RaftLog


def ents(*terms: int, start: int = 1) -> list[Entry]:
    return [Entry(term=t, index=start + i, data=b"x") for i, t in enumerate(terms)]


def snap(index: int, term: int) -> Snapshot:
    return Snapshot(SnapshotMeta(index, term, ConfState(frozenset({"a"}))), b"state")


def test_term_at_covers_snapshot_entries_and_beyond() -> None:
    log = RaftLog(snap(3, 2), ents(2, 3, start=4))
    assert (log.first_index, log.last_index, log.last_term) == (4, 5, 3)
    assert [log.term_at(i) for i in range(1, 7)] == [None, None, 2, 2, 3, None]
    assert log.stable == 5  # what storage gave back is stable


def test_a_gap_after_the_snapshot_is_refused() -> None:
    with pytest.raises(ValueError, match="contiguous"):
        RaftLog(snap(3, 2), ents(2, start=5))


def test_find_conflict_ignores_matching_entries() -> None:
    """§5.3: an AppendEntries whose entries we already have changes nothing."""
    log = RaftLog(None, ents(1, 1, 2))
    assert log.find_conflict(ents(1, 2, start=2)) == 0
    assert log.find_conflict(ents(1, 3, start=2)) == 3
    assert log.find_conflict(ents(2, 2, 3, start=3)) == 4  # new entries start at 4


def test_truncate_and_append_rewinds_stable() -> None:
    log = RaftLog(None, ents(1, 1, 2, 2))
    log.truncate_and_append(ents(3, start=3))
    assert [log.term_at(i) for i in range(1, 5)] == [1, 1, 3, None]
    assert log.stable == 2 and log.unstable() == tuple(ents(3, start=3))


def test_truncate_and_append_refuses_gaps_and_compacted_entries() -> None:
    log = RaftLog(snap(2, 1), ents(1, start=3))
    with pytest.raises(ValueError, match="gap"):
        log.truncate_and_append(ents(1, start=5))
    with pytest.raises(ValueError, match="compacted"):
        log.truncate_and_append(ents(1, start=2))


def test_batch_respects_max_bytes_but_sends_at_least_one() -> None:
    log = RaftLog(None, [Entry(1, i, data=b"x" * 10) for i in range(1, 6)])
    assert [e.index for e in log.batch(2, 25)] == [2, 3]
    assert [e.index for e in log.batch(2, 5)] == [2]
    assert [e.index for e in log.batch(4, 1000)] == [4, 5]


def test_find_conflict_by_term_skips_whole_terms() -> None:
    log = RaftLog(None, ents(1, 1, 4, 4, 4, 6, 6))
    assert log.find_conflict_by_term(7, 5) == (5, 4)
    assert log.find_conflict_by_term(7, 3) == (2, 1)
    assert log.find_conflict_by_term(20, 6) == (7, 6)  # clamped to the last index
    assert log.find_conflict_by_term(7, 0) == (0, 0)


def test_compact_keeps_later_entries_and_the_snapshot() -> None:
    log = RaftLog(None, ents(1, 1, 2, 2))
    s = snap(2, 1)
    log.compact(s)
    assert (log.offset, log.first_index, log.last_index) == (2, 3, 4)
    assert log.term_at(2) == 1 and log.term_at(1) is None and log.snapshot is s


def test_restore_replaces_the_whole_log() -> None:
    log = RaftLog(None, ents(1, 1, 2, 2))
    log.restore(snap(9, 5))
    assert (log.offset, log.last_index, log.last_term, log.stable) == (9, 9, 5, 9)
