"""Small pieces: membership arithmetic, the ReadIndex queue, transfer preconditions and
determinism (same seed, same run)."""

from __future__ import annotations

import pytest
from raft_harness import Cluster
from raft_random import run

from agree.errors import MembershipChangeError, NotLeaderError, ProposalRejectedError
from agree.raft import (
    ConfChange,
    ConfChangeType,
    ConfState,
    EntryType,
    InstallSnapshot,
    RequestVote,
)
from agree.raft.membership import apply_change, bootstrap_entries, check_change
from agree.raft.readonly import ReadOnly
from agree.raft.snapshot import SnapshotAssembler, snapshot_checksum

ADD, PROMOTE, REMOVE = ConfChangeType.ADD_LEARNER, ConfChangeType.PROMOTE, ConfChangeType.REMOVE
CONF = ConfState(voters=frozenset({"a", "b"}), learners=frozenset({"l"}))


def test_apply_change() -> None:
    assert apply_change(CONF, ConfChange(ADD, "x")).learners == {"l", "x"}
    promoted = apply_change(CONF, ConfChange(PROMOTE, "l"))
    assert promoted.voters == {"a", "b", "l"} and promoted.learners == frozenset()
    assert apply_change(CONF, ConfChange(REMOVE, "a")).voters == {"b"}
    assert apply_change(CONF, ConfChange(REMOVE, "l")).learners == frozenset()
    assert apply_change(CONF, ConfChange(ADD, "a")) == CONF  # lenient on followers


def test_check_change() -> None:
    check_change(CONF, ConfChange(ADD, "x"))
    check_change(CONF, ConfChange(PROMOTE, "l"))
    check_change(CONF, ConfChange(REMOVE, "l"))
    for bad in (ConfChange(ADD, "l"), ConfChange(PROMOTE, "a"), ConfChange(REMOVE, "x"),
                ConfChange(ADD, "")):
        with pytest.raises(MembershipChangeError):
            check_change(CONF, bad)
    with pytest.raises(MembershipChangeError, match="last voter"):
        check_change(ConfState(voters=frozenset({"a"})), ConfChange(REMOVE, "a"))


def test_bootstrap_entries_replay_to_the_configuration() -> None:
    entries = bootstrap_entries(CONF)
    assert [e.index for e in entries] == [1, 2, 3, 4, 5]
    assert all(e.term == 1 and e.type is EntryType.CONF_CHANGE for e in entries)
    conf = ConfState()
    for e in entries:
        conf = apply_change(conf, ConfChange.decode(e.data))
    assert conf == CONF


def test_readonly_rounds() -> None:
    ro = ReadOnly()
    ro.defer(b"d", "a")
    assert not ro.start_round()  # deferred reads wait for the first commit in the term
    ro.undefer(7)
    assert ro.start_round()
    ctx = ro.round_context
    ro.add(b"later", "b", 8)
    assert not ro.start_round()  # one round outstanding at a time
    assert ro.ack(ctx, "a", 2) == []
    assert ro.ack(b"999", "b", 2) == []  # an answer to another round
    (confirmed,) = ro.ack(ctx, "b", 2)
    assert (confirmed.context, confirmed.origin, confirmed.index) == (b"d", "a", 7)
    assert ro.start_round() and ro.round_context != ctx
    ro.reset()
    assert ro.round_context == b"" and not ro.start_round()


def test_transfer_preconditions() -> None:
    c = Cluster(["a", "b", "c"], learners=["l"])
    c.elect("a")
    with pytest.raises(NotLeaderError):
        c["b"].transfer_leader("c")
    with pytest.raises(ProposalRejectedError, match="not a voter"):
        c["a"].transfer_leader("l")
    c["a"].transfer_leader("a")  # already leader: nothing to do
    assert c["a"].status().lead_transferee is None


def test_transfer_to_an_up_to_date_target_sends_timeout_now_at_once() -> None:
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    c["a"].transfer_leader("b")
    (msg,) = c["a"].ready().messages
    assert type(msg).__name__ == "TimeoutNow" and msg.dst == "b"


def test_same_seed_same_run() -> None:
    """Determinism: a run is a function of its seed (the basis for replaying failures)."""
    first, second = run(3, 300), run(3, 300)
    assert first.sent == second.sent


def _chunk(offset: int, data: bytes, done: bool = False, index: int = 9, *,
           whole: bytes = b"abcdefghi", src: str = "a", term: int = 2) -> InstallSnapshot:
    return InstallSnapshot(src=src, dst="b", term=term, last_included_index=index,
                           last_included_term=2, conf=CONF, checksum=snapshot_checksum(whole),
                           offset=offset, data=data, done=done)


def test_snapshot_assembler_accepts_chunks_in_order_only() -> None:
    asm = SnapshotAssembler()
    assert asm.offer(_chunk(3, b"def")) == (0, None)  # not started: wants offset 0
    assert asm.offer(_chunk(0, b"abc")) == (3, None)
    assert asm.offer(_chunk(0, b"abc")) == (3, None)  # duplicate
    assert asm.offer(_chunk(6, b"ghi", done=True)) == (3, None)  # gap
    assert asm.offer(_chunk(3, b"def")) == (6, None)
    assert asm.offer(_chunk(6, b"ghi", done=True)) == (9, b"abcdefghi")
    assert asm.offer(_chunk(3, b"def")) == (0, None)  # finished: starts over


def test_snapshot_assembler_says_what_it_is_receiving() -> None:
    asm = SnapshotAssembler()
    assert asm.receiving is None
    asm.offer(_chunk(0, b"abc"))
    assert asm.receiving == (9, 3)
    asm.offer(_chunk(3, b"def"))
    assert asm.receiving == (9, 6)
    asm.offer(_chunk(6, b"ghi", done=True))
    assert asm.receiving is None  # installed: nothing under way


def test_snapshot_assembler_switches_to_a_newer_snapshot() -> None:
    asm = SnapshotAssembler()
    asm.offer(_chunk(0, b"old"))
    assert asm.offer(_chunk(0, b"new", index=12, whole=b"new!")) == (3, None)
    assert asm.offer(_chunk(3, b"!", done=True, index=12, whole=b"new!")) == (4, b"new!")


def test_transfers_do_not_postpone_the_check_quorum() -> None:
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    c.isolate("a")
    e = c.make_config("a").election_tick
    for k in range(2 * e):
        if c["a"].role.value == "leader":
            c["a"].transfer_leader("bc"[k % 2])
        c.tick("a")
    assert c["a"].role.value == "follower"


def test_must_sync_only_for_entries_snapshots_and_term_or_vote() -> None:
    """etcd's MustSync: a Ready that only moves the commit index, or only sends, owes no fsync;
    one with entries, a snapshot, or a new term or vote does (Figure 2's persistent state)."""
    c = Cluster(["a", "b", "c"], pre_vote=False)
    b = c["b"]
    b.step(RequestVote(src="c", dst="b", term=b.term + 1, last_log_index=99, last_log_term=9))
    rd = b.ready()
    assert rd.hard_state is not None and rd.hard_state.vote == "c" and rd.must_sync
    b.advance(rd)
    c = Cluster(["a", "b", "c"], pre_vote=False)
    a = c["a"]
    c.elect("a")
    a.propose(b"x")
    rd = a.ready()
    assert rd.entries and rd.must_sync
    a.advance(rd)
    c.send(*rd.messages)
    (ack,) = c.take(lambda m: m.src == "b" and m.dst == "a")
    c.drop()
    a.step(ack)
    rd = a.ready()  # the leader learns the entry is committed: only its commit index moves
    assert rd.hard_state is not None and rd.hard_state.commit == a.commit_index
    assert not rd.entries and rd.snapshot is None and not rd.must_sync
    a.advance(rd)
    a.tick()
    while not a.has_ready():
        a.tick()
    rd = a.ready()
    assert rd.messages and rd.hard_state is None and not rd.must_sync
