"""Scenario transcripts from the Raft paper and dissertation, step by step against the
in-memory harness.  Indices are relative to ``base``, the last index once the first
leader's NOOP is replicated (the log starts with the bootstrap configuration)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from raft_harness import Cluster, is_msg

from agree.errors import MembershipChangeError, ProposalRejectedError
from agree.raft import (
    AppendEntries,
    AppendEntriesResponse,
    ConfChange,
    ConfChangeType,
    EntryType,
    HardState,
    InstallSnapshot,
    InstallSnapshotResponse,
    RaftNode,
    RequestVote,
    Role,
)

FIVE = ["s1", "s2", "s3", "s4", "s5"]


def _figure8(c: Cluster) -> tuple[int, int]:
    """Figure 8 (a)-(c), with S2 also taking S1's term-4 NOOP.
    Returns (i, S1's commit index after (c))."""
    # (a) S1 leads term 2 and replicates the entry at index i to S2 only.
    c.elect("s1")
    assert c["s1"].term == 2
    i = c.propose("s1", b"abc")
    c.deliver(is_msg(AppendEntries, dst="s2"))
    c.drop()
    # (b) S1 crashes; S5 is elected in term 3 by S3, S4 and itself (S2's log is more
    # up-to-date, so S2 refuses) and appends its NOOP at index i, replicated nowhere.
    c.crash("s1")
    c.forget_leader("s2", "s3", "s4")
    c.elect_until("s5", quietly=True)
    assert c["s5"].term == 3
    assert c.log_terms("s5")[-1] == (i, 3)
    # (c) S5 crashes; S1 restarts, is elected in term 4 and brings S3 up to date with
    # the term-2 entry (alone: max_msg_bytes lets one "abc" entry per message).
    c.crash("s5")
    c.restart("s1")
    c.elect_until("s1", quietly=True)
    assert c["s1"].term == 4
    c.tick("s1")  # a heartbeat; S3's answer makes S1 probe S3 and find where logs agree
    while (i, 2) not in c.log_terms("s3"):
        c.drop(lambda m: m.dst not in ("s1", "s3"))
        assert c.deliver()
    c.deliver(is_msg(AppendEntriesResponse, src="s3", match_index=i))
    # S2 already holds i; it takes S1's NOOP as well, so S1 knows i is on S1, S2 and S3.
    c.tick("s1")
    c.stabilize(drop=lambda m: m.dst in ("s3", "s4"))
    assert c["s1"].status().progress["s2"][0] == i + 1
    assert (i, 2) in c.log_terms("s3") and (i, 2) in c.log_terms("s2")
    return i, c["s1"].commit_index


def test_figure8_a_leader_does_not_commit_an_old_term_entry_by_counting() -> None:
    """§5.4.2, Figure 8: the term-2 entry at i is stored on a majority (S1, S2, S3), yet
    S1 (term 4) must not commit it; in (d) S5 is elected and overwrites it."""
    c = Cluster(FIVE, max_msg_bytes=1)
    i, commit = _figure8(c)
    assert commit < i
    # (d) S1 crashes; S5 restarts and wins term 5 with S2, S3, S4 (its last term 3 beats
    # their last term 2); it overwrites index i everywhere.
    c.drop()
    c.crash("s1")
    c.restart("s5")
    c.forget_leader("s2", "s3", "s4")
    c.elect_until("s5")
    c.stabilize()
    for s in ("s2", "s3", "s4", "s5"):
        applied = {e.index: e for e in c.peers[s].applied}
        assert applied[i].term == 3 and applied[i].type is EntryType.NOOP
        assert b"abc" not in c.peers[s].state


def test_figure8_the_simulated_bug_commits_the_old_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same transcript with the current-term check removed: S1 commits index i, which
    (d) then overwrites -- the bug Figure 8 describes.  Shows the test above can fail."""
    monkeypatch.setattr(RaftNode, "_commit_term_ok", lambda self, index: True)
    c = Cluster(FIVE, max_msg_bytes=1)
    i, commit = _figure8(c)
    assert commit >= i


def test_partitioned_follower_rejoins_without_disrupting_the_leader() -> None:
    """Dissertation §9.6: a follower cut off for many election timeouts only pre-votes,
    so its term stays put; when it rejoins, the leader keeps its term and leadership."""
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    term = c["a"].term
    c.isolate("c")
    c.tick_all(100)
    assert c["c"].term == term  # pre-vote never succeeded, so the term never grew
    assert c["c"].role is Role.PRE_CANDIDATE
    c.propose("a", b"while c was away")
    c.stabilize()
    c.heal()
    c.tick_all(30)
    assert c.leader() == "a" and c["a"].term == term
    assert c.peers["c"].state == [b"while c was away"]


def test_partitioned_follower_without_pre_vote_does_disrupt() -> None:
    """The contrast for §9.6: without pre-vote the rejoining server's inflated term
    deposes the leader (check-quorum off too, so only the term matters)."""
    c = Cluster(["a", "b", "c"], pre_vote=False, check_quorum=False)
    c.elect("a")
    term = c["a"].term
    c.isolate("c")
    c.tick_all(100)
    assert c["c"].term > term + 3
    c.heal()
    c.tick_all(30)
    assert c["a"].term > term


@pytest.mark.parametrize("pre_vote", [True, False])
def test_removed_server_that_keeps_running_deposes_nobody(pre_vote: bool) -> None:
    """Dissertation §4.2.3: S4 is removed while cut off, so it never learns it; it keeps
    timing out and asking for votes.  Pre-vote and leader stickiness (servers that hear
    from the leader ignore it) keep the leader in office."""
    c = Cluster(["s1", "s2", "s3", "s4"], pre_vote=pre_vote)
    c.elect("s1")
    term = c["s1"].term
    c.isolate("s4")
    c["s1"].propose_conf_change(ConfChange(ConfChangeType.REMOVE, "s4"))
    c.process()
    c.stabilize()
    assert c["s1"].conf.voters == {"s1", "s2", "s3"}
    assert "s4" in c["s4"].conf.voters  # it does not know
    c.heal()
    c.tick_all(200)
    assert c.leader() == "s1" and c["s1"].term == term
    assert any(isinstance(m, RequestVote) and m.src == "s4" for m in c.sent)
    c.propose("s1", b"still serving")
    c.stabilize()
    assert c.peers["s2"].state[-1] == b"still serving"


def test_new_leader_changes_membership_only_after_committing_in_its_term() -> None:
    """Dissertation §4.1 and Ongaro's 2015 correction: a leader that has not committed an
    entry of its term may lack a committed change made by a previous leader; two leaders
    could then each apply one single-server change to different configurations whose
    majorities do not overlap.  The guard: refuse until the term's NOOP is committed."""
    c = Cluster(["s1", "s2", "s3", "s4"])
    c.elect("s1")
    c.add_node("s5")
    c["s1"].propose_conf_change(ConfChange(ConfChangeType.ADD_LEARNER, "s5"))
    c.process()
    # At most one change in flight.
    with pytest.raises(MembershipChangeError, match="not yet committed"):
        c["s1"].propose_conf_change(ConfChange(ConfChangeType.REMOVE, "s4"))
    c.stabilize()
    assert c["s4"].conf.learners == {"s5"}
    # S2 takes over in a new term; its NOOP is not yet committed.
    c.forget_leader("s2", "s3", "s4")
    c.campaign("s2")
    c.process()
    c.deliver()  # pre-votes
    c.deliver()  # pre-vote grants -> real votes
    c.deliver()  # votes
    c.deliver(lambda m: not isinstance(m, AppendEntries))
    assert c["s2"].role is Role.LEADER
    with pytest.raises(MembershipChangeError, match="not yet committed an entry of its term"):
        c["s2"].propose_conf_change(ConfChange(ConfChangeType.REMOVE, "s1"))
    c.stabilize()
    c["s2"].propose_conf_change(ConfChange(ConfChangeType.REMOVE, "s1"))
    c.process()
    c.stabilize()
    assert c["s3"].conf.voters == {"s2", "s3", "s4"}


def test_isolated_old_leader_never_confirms_a_read() -> None:
    """Dissertation §6.4: S1 still believes it leads after a partition; a new leader
    commits a write; S1 must not answer a linearizable read (it would miss the write)."""
    c = Cluster(FIVE, check_quorum=False)  # so S1 keeps believing it leads
    c.elect("s1")
    c.isolate("s1")
    c.forget_leader("s2", "s3", "s4", "s5")
    c.elect_until("s2")
    c.propose("s2", b"x=2")
    c.stabilize()
    assert c["s1"].role is Role.LEADER
    c["s1"].read_index(b"stale?")
    c.process()
    c.tick_all(50)
    assert c.peers["s1"].read_states == []
    c.heal()
    c.tick_all(5)
    assert c["s1"].role is Role.FOLLOWER and c["s1"].leader_id == "s2"
    assert c.peers["s1"].read_states == []  # dropped, never confirmed
    # The real leader confirms a read at an index that includes the write.
    c["s2"].read_index(b"fresh")
    c.process()
    c.stabilize()
    (rs,) = c.peers["s2"].read_states
    write = next(e.index for e in c.peers["s2"].applied if e.data == b"x=2")
    assert rs.context == b"fresh" and rs.index >= write


def test_leadership_transfer_under_load() -> None:
    """Dissertation §3.10: the leader brings the lagging target up to date, then sends
    TimeoutNow; proposals are refused meanwhile; the target wins the next term at once
    (its vote requests bypass stickiness) and nothing committed is lost."""
    c = Cluster(["a", "b", "c"], max_msg_bytes=8)
    c.elect("a")
    c.isolate("c")
    for k in range(20):
        c.propose("a", f"w{k}".encode())
        c.stabilize()
    term = c["a"].term
    c.heal()
    c["a"].transfer_leader("c")
    assert c["a"].status().lead_transferee == "c"
    with pytest.raises(ProposalRejectedError):
        c["a"].propose(b"refused")
    c.process()
    c.stabilize()
    assert c.leader() == "c" and c["c"].term == term + 1
    assert any(type(m).__name__ == "TimeoutNow" and m.dst == "c" for m in c.sent)
    c.propose("c", b"after")
    c.stabilize()
    expected = [f"w{k}".encode() for k in range(20)] + [b"after"]
    assert all(c.peers[n].state == expected for n in "abc")


def test_leadership_transfer_aborts_after_an_election_timeout() -> None:
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    c.isolate("c")
    c["a"].transfer_leader("c")
    c.tick_all(c.make_config("a").election_tick)
    assert c["a"].role is Role.LEADER and c["a"].status().lead_transferee is None
    c.propose("a", b"accepted again")


def test_snapshot_install_survives_chunk_loss_and_duplication() -> None:
    """§7, Figure 13: S3 is behind the leader's compacted prefix; the snapshot goes in
    8-byte chunks.  A lost chunk is resent after a heartbeat; duplicated and reordered
    chunks are answered with the next offset wanted, so the transfer resumes."""
    c = Cluster(["s1", "s2", "s3"], snapshot_chunk_bytes=8)
    c.elect("s1")
    c.isolate("s3")
    for k in range(10):
        c.propose("s1", f"v{k}".encode())
    c.stabilize()
    snap = c.compact("s1")
    assert len(snap.data) > 5 * 8
    c.heal()
    c.tick("s1")  # heartbeat; S3 answers; S1 probes, S3 rejects: it needs a snapshot
    while not any(isinstance(m, InstallSnapshot) for m in c.net):
        assert c.deliver()
    chunks = c.take(is_msg(InstallSnapshot, dst="s3"))
    assert [m.offset for m in chunks] == [0]
    c.send(chunks[0], chunks[0])  # duplicated: answered twice with next_offset 8
    answers = c.take(is_msg(InstallSnapshotResponse))
    assert [m.next_offset for m in answers] == [8, 8]
    c.send(*answers)
    (second,) = c.take(is_msg(InstallSnapshot, dst="s3"))  # the duplicate answer sent none
    assert second.offset == 8
    # Lost: nothing moves until the next heartbeat, whose answer resumes at offset 8.
    c.tick("s1")
    c.deliver(lambda m: not isinstance(m, InstallSnapshot))
    c.deliver(lambda m: not isinstance(m, InstallSnapshot))
    (resent,) = c.take(is_msg(InstallSnapshot, dst="s3"))
    assert resent.offset == 8
    c.send(resent)
    c.deliver(is_msg(InstallSnapshotResponse))
    (third,) = c.take(is_msg(InstallSnapshot, dst="s3"))
    assert third.offset == 16
    # Reordered: a later chunk arriving before the one S3 expects is refused with the
    # offset S3 still wants, and the leader, already past it, sends nothing new.
    early = replace(third, offset=24, data=b"later...")
    c.send(early)
    (refusal,) = c.take(is_msg(InstallSnapshotResponse))
    assert refusal.next_offset == 16 and not refusal.done
    c.send(refusal)
    assert not c.net
    c.send(third)
    c.stabilize()
    assert c.peers["s3"].restored[-1].meta.index == snap.meta.index
    assert c.peers["s3"].state == c.peers["s1"].state == [f"v{k}".encode() for k in range(10)]
    assert c["s3"].commit_index == c["s1"].commit_index


def test_restart_keeps_term_and_vote() -> None:
    """Figure 2: currentTerm and votedFor are persisted before the vote is sent; a
    restarted server cannot vote twice in a term."""
    c = Cluster(["a", "b", "c"], pre_vote=False)
    c.campaign("a")
    c.process()
    c.deliver(is_msg(RequestVote, dst="b"))
    c.drop()
    assert c.peers["b"].storage.hard_state().vote == "a"
    term = c["a"].term
    c.crash("b")
    c.restart("b")
    assert (c["b"].term, c["b"].status().vote) == (term, "a")
    # C campaigns in the same term (as if it had timed out too): B refuses.
    c.crash("c")
    c.peers["c"].storage.save(hard_state=HardState(term - 1), entries=())
    c.restart("c")
    c.campaign("c")
    c.process()
    assert c["c"].term == term
    c.deliver(is_msg(RequestVote, dst="b"))
    (answer,) = c.take(lambda m: m.src == "b")
    assert answer.vote_granted is False  # type: ignore[attr-defined]
