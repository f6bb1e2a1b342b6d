"""Progress: probe, pipelined replicate with a bounded window, snapshot (etcd's tracker)."""

from __future__ import annotations

from agree.raft import ConfState, Snapshot, SnapshotMeta
from agree.raft.progress import Inflights, Progress, ProgressState


def test_probe_sends_one_at_a_time() -> None:
    pr = Progress(5, max_inflight=4)
    assert pr.state is ProgressState.PROBE and not pr.is_paused()
    pr.paused = True
    assert pr.is_paused()
    assert pr.maybe_update(4)  # an answer unpauses
    assert not pr.is_paused() and (pr.match, pr.next) == (4, 5)


def test_replicate_pauses_when_the_window_is_full() -> None:
    pr = Progress(1, max_inflight=2)
    pr.become_replicate()
    pr.inflights.add(3)
    assert not pr.is_paused()
    pr.inflights.add(6)
    assert pr.is_paused()
    pr.maybe_update(3)
    pr.inflights.free_le(3)
    assert not pr.is_paused() and len(pr.inflights) == 1


def test_maybe_update_ignores_old_acks() -> None:
    pr = Progress(10, max_inflight=4, match=7)
    assert not pr.maybe_update(5)
    assert (pr.match, pr.next) == (7, 10)


def test_maybe_decr_to_uses_the_hint_in_probe() -> None:
    pr = Progress(10, max_inflight=4)
    assert not pr.maybe_decr_to(5, 2)  # stale: we did not send prev=5
    assert pr.maybe_decr_to(9, 3)
    assert pr.next == 4


def test_maybe_decr_to_in_replicate_falls_back_to_match() -> None:
    pr = Progress(1, max_inflight=4, match=6)
    pr.become_replicate()
    pr.next = 12
    assert not pr.maybe_decr_to(5, 0)  # at or below match: stale
    assert pr.maybe_decr_to(9, 0) and pr.next == 7


def test_snapshot_state_then_probe_after_it() -> None:
    s = Snapshot(SnapshotMeta(20, 3, ConfState(frozenset({"a"}))), b"0123456789")
    pr = Progress(5, max_inflight=4, match=2)
    pr.become_snapshot(s, b"sum")
    assert pr.is_paused() and pr.pending_snapshot == 20
    assert pr.snap_view is not None and bytes(pr.snap_view[2:4]) == b"23"
    pr.become_probe()
    assert pr.next == 21 and pr.snapshot is None


def test_inflights_free_first_unblocks() -> None:
    infl = Inflights(1)
    infl.add(4)
    assert infl.full()
    infl.free_first()
    assert not infl.full()


def test_inflights_full_by_bytes_and_freed_by_acknowledgements() -> None:
    infl = Inflights(capacity=100, max_bytes=10)
    infl.add(1, 4)
    infl.add(2, 4)
    assert not infl.full() and infl.bytes == 8
    infl.add(3, 4)
    assert infl.full()
    infl.free_le(2)
    assert not infl.full() and infl.bytes == 4 and len(infl) == 1
    infl.free_first()
    assert infl.bytes == 0 and len(infl) == 0
    infl.add(4, 50)  # one message larger than the bound still goes, alone
    assert infl.full()
    infl.reset()
    assert infl.bytes == 0 and not infl.full()
