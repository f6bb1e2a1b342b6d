"""Leader election rules: §5.2, §5.4.1, pre-vote (§9.6), check-quorum (§6.2), leader
stickiness (§4.2.3), learners, and persistence of term and vote (Figure 2)."""

from __future__ import annotations

import random

import pytest
from raft_harness import Cluster, is_msg

from agree.errors import ConfigurationError
from agree.raft import (
    AppendEntries,
    AppendEntriesResponse,
    Config,
    ConfState,
    Heartbeat,
    PersistedState,
    RaftNode,
    RequestVote,
    RequestVoteResponse,
    Role,
    TimeoutNow,
)


def test_election_timeout_is_randomized_in_e_to_2e() -> None:
    """§5.2: a follower campaigns after a timeout drawn from [election_tick, 2*election_tick)."""
    seen = set()
    for seed in range(60):
        node = RaftNode(
            Config(id="a", election_tick=5),
            rng=random.Random(seed),
            bootstrap=ConfState(voters=frozenset({"a", "b", "c"})),
        )
        ticks = 0
        while node.role is Role.FOLLOWER:
            node.tick()
            ticks += 1
        seen.add(ticks)
    assert seen == {5, 6, 7, 8, 9}


def test_config_is_validated() -> None:
    with pytest.raises(ConfigurationError):
        RaftNode(Config(id="a", election_tick=1, heartbeat_tick=1), rng=random.Random(0))


def test_single_voter_elects_itself_and_commits_alone() -> None:
    c = Cluster(["solo"])
    c.elect("solo")
    assert c["solo"].role is Role.LEADER
    i = c.propose("solo", b"x")
    assert c["solo"].commit_index == i and c.peers["solo"].state == [b"x"]


def test_pre_vote_does_not_change_terms() -> None:
    """§9.6: a pre-candidate asks with term+1 but neither it nor the voters change term."""
    c = Cluster(["a", "b", "c"])
    c.campaign("a")
    c.process()
    (req, _) = c.take(is_msg(RequestVote))
    assert req.pre_vote and req.term == 2 and c["a"].term == 1
    c.send(req)
    (resp,) = c.take(is_msg(RequestVoteResponse))
    assert resp.vote_granted and resp.pre_vote and resp.term == 2
    assert c["b"].term == 1 and c["b"].status().vote is None


def test_a_pre_vote_majority_leads_to_a_real_election() -> None:
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    assert c["a"].role is Role.LEADER and c["a"].term == 2
    assert {c[n].leader_id for n in "abc"} == {"a"}


def test_vote_requires_an_up_to_date_log() -> None:
    """§5.4.1: deny a candidate whose log is less up-to-date than ours."""
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    c.propose("a", b"x")
    c.deliver(is_msg(AppendEntries, dst="b"))
    c.drop()
    node = c["b"]
    assert not node._log_up_to_date(node.last_index - 1, node.term)
    assert node._log_up_to_date(node.last_index, node.term)
    assert node._log_up_to_date(1, node.term + 1)
    # C's log lacks the entry: B and A refuse it, so C cannot win.
    c.forget_leader("a", "b")
    c.elect("c")
    assert c["c"].role is not Role.LEADER


def test_one_vote_per_term() -> None:
    c = Cluster(["a", "b", "c"], pre_vote=False)
    b = c["b"]
    b.step(RequestVote(src="a", dst="b", term=5, last_log_index=99, last_log_term=9))
    b.step(RequestVote(src="c", dst="b", term=5, last_log_index=99, last_log_term=9))
    b.step(RequestVote(src="a", dst="b", term=5, last_log_index=99, last_log_term=9))
    rd = b.ready()
    assert [m.vote_granted for m in rd.messages] == [True, False, True]  # type: ignore[attr-defined]
    assert rd.hard_state is not None and (rd.hard_state.term, rd.hard_state.vote) == (5, "a")


def test_vote_grant_travels_with_the_hard_state_that_records_it() -> None:
    """Figure 2: the grant is in the same Ready as the HardState persisting the vote, and the
    Ready contract sends messages only after persisting it."""
    node = RaftNode(
        Config(id="b"), rng=random.Random(1), bootstrap=ConfState(voters=frozenset("abc"))
    )
    node.advance(node.ready())
    node.step(RequestVote(src="a", dst="b", term=3, last_log_index=50, last_log_term=2))
    rd = node.ready()
    assert rd.hard_state is not None and rd.hard_state.vote == "a" and rd.hard_state.term == 3
    assert any(isinstance(m, RequestVoteResponse) and m.vote_granted for m in rd.messages)


def test_restart_from_persisted_state_keeps_term_vote_and_log() -> None:
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    x = c.propose("a", b"x")
    c.stabilize()
    # A commit-only change waits for the next write that must sync: this one.
    c.propose("a", b"y")
    c.stabilize()
    persisted = c.peers["b"].storage.load()
    assert x <= persisted.hard_state.commit <= c["b"].commit_index
    node = RaftNode(Config(id="b"), rng=random.Random(0), persisted=persisted)
    assert (node.term, node.status().vote) == (c["b"].term, c["b"].status().vote)
    assert node.last_index == c["b"].last_index
    assert node.commit_index == persisted.hard_state.commit
    assert node.conf == c["b"].conf
    rd = node.ready()  # committed entries after `applied` (0 by default) are delivered again
    assert [e.index for e in rd.committed_entries] == list(range(1, node.commit_index + 1))
    assert [e.data for e in rd.committed_entries if e.data == b"x"] == [b"x"]
    assert rd.hard_state is None and rd.entries == ()


def test_restart_with_applied_skips_what_the_host_already_has() -> None:
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    c.propose("a", b"x")
    c.stabilize()
    persisted = c.peers["b"].storage.load()
    # The host applied up to the persisted commit index (a state machine that survives
    # restarts; the commit index it persisted may lag what it applied).
    applied = persisted.hard_state.commit
    assert 0 < applied <= c["b"].applied_index
    node = RaftNode(Config(id="b"), rng=random.Random(0), persisted=persisted, applied=applied)
    assert node.applied_index == applied and not node.ready().committed_entries


def test_higher_term_makes_a_leader_follow() -> None:
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    c["a"].step(Heartbeat(src="b", dst="a", term=9, leader_commit=0))
    assert c["a"].role is Role.FOLLOWER and c["a"].term == 9 and c["a"].leader_id == "b"


def test_stale_leader_messages_are_answered_with_our_term() -> None:
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    b = c["b"]
    b.step(AppendEntries(src="x", dst="b", term=1, prev_log_index=0, prev_log_term=0,
                         entries=(), leader_commit=0))
    (resp,) = b.ready().messages
    assert isinstance(resp, AppendEntriesResponse) and resp.term == b.term and not resp.success
    assert b.leader_id == "a"


def test_stickiness_ignores_vote_requests_while_the_leader_is_heard() -> None:
    """§4.2.3: a server that heard from its leader within the minimum election timeout
    ignores RequestVote (pre or real) and keeps its term."""
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    term = c["b"].term
    for pre in (True, False):
        c["b"].step(RequestVote(src="c", dst="b", term=term + 1, last_log_index=99,
                                last_log_term=99, pre_vote=pre))
    assert c["b"].term == term and not c["b"].has_ready()


def test_transfer_vote_requests_bypass_stickiness() -> None:
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    term = c["b"].term
    c["b"].step(RequestVote(src="c", dst="b", term=term + 1, last_log_index=99,
                            last_log_term=99, transfer=True))
    (resp,) = c["b"].ready().messages
    assert resp.vote_granted and c["b"].term == term + 1  # type: ignore[attr-defined]


def test_stickiness_ends_after_an_election_timeout_without_the_leader() -> None:
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    c.crash("a")
    c.forget_leader("b")
    term = c["b"].term
    c["b"].step(RequestVote(src="c", dst="b", term=term + 1, last_log_index=99,
                            last_log_term=99, pre_vote=True))
    (resp,) = [m for m in c["b"].ready().messages if isinstance(m, RequestVoteResponse)]
    assert resp.vote_granted and c["b"].term == term


def test_check_quorum_leader_steps_down_when_cut_off() -> None:
    """§6.2: at each election timeout the leader checks that a quorum was heard from
    since the previous check; once one passes in silence, it steps down."""
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    c.isolate("a")
    e = c.make_config("a").election_tick
    c.tick("a", e)  # the first check still counts the answers from before the cut
    assert c["a"].role is Role.LEADER
    c.tick("a", e - 1)
    assert c["a"].role is Role.LEADER
    c.tick("a")
    assert c["a"].role is Role.FOLLOWER and c["a"].leader_id is None


def test_check_quorum_leader_stays_while_a_quorum_answers() -> None:
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    c.isolate("c")
    c.tick_all(50)
    assert c.leader() == "a"


def test_learners_never_campaign_and_their_votes_do_not_count() -> None:
    c = Cluster(["a", "b"], learners=["l"])
    assert c["l"].role is Role.LEARNER
    c.tick("l", 200)
    assert c["l"].role is Role.LEARNER and not c.net
    c.elect("a")
    c.forget_leader("b", "l")
    # A, B and L vote; only A and B count, so B needs A: cut A off and B cannot win.
    c.isolate("a")
    c.elect("b")
    assert c["b"].role is not Role.LEADER


def test_non_members_never_campaign() -> None:
    node = RaftNode(Config(id="new"), rng=random.Random(0))
    for _ in range(100):
        node.tick()
    assert node.role is Role.FOLLOWER and not node.has_ready()


def test_timeout_now_starts_a_real_election_at_once() -> None:
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    b = c["b"]
    b.step(TimeoutNow(src="a", dst="b", term=b.term, last_log_index=b.last_index,
                      last_log_term=b._log.last_term))
    assert c["b"].role is Role.CANDIDATE
    reqs = [m for m in c["b"].ready().messages if isinstance(m, RequestVote)]
    assert reqs and all(m.transfer and not m.pre_vote for m in reqs)


def test_a_rejected_pre_vote_with_a_higher_term_teaches_the_term() -> None:
    c = Cluster(["a", "b", "c"])
    c["a"].step(RequestVoteResponse(src="b", dst="a", term=7, vote_granted=False,
                                    pre_vote=True))
    assert c["a"].term == 7 and c["a"].role is Role.FOLLOWER


def test_empty_persisted_state_with_bootstrap_writes_the_configuration() -> None:
    node = RaftNode(Config(id="a"), rng=random.Random(0),
                    persisted=PersistedState(),
                    bootstrap=ConfState(voters=frozenset({"a", "b"})))
    rd = node.ready()
    assert rd.hard_state is not None and rd.hard_state.commit == len(rd.entries) == 4
    assert node.conf.voters == {"a", "b"}


def test_learning_a_higher_term_does_not_restart_the_election_timer() -> None:
    """Figure 2 resets the election timer only on AppendEntries from the current leader and
    on granting a vote.  Without pre-vote, c (a shorter log, a clock twice as fast) keeps
    campaigning; b refuses it, and if adopting c's term restarted b's timer, b would never
    campaign and the cluster would never elect a leader again."""
    c = Cluster(["a", "b", "c"], pre_vote=False)
    c.elect("a")
    c.isolate("c")
    c.propose("a", b"x")
    c.stabilize()
    c.crash("a")
    c.heal()
    for _ in range(30 * c.make_config("b").election_tick):
        c.tick("c", 2)
        c.tick("b")
        c.stabilize()
        if c.leader() is not None:
            break
    assert c.leader() == "b"
    assert c["c"].term == c["b"].term and c["c"].leader_id == "b"


def test_a_current_leader_ignores_vote_requests_without_check_quorum() -> None:
    """§4.2.3 stickiness does not depend on check-quorum: a leader that heard from a quorum
    within the minimum election timeout ignores a higher-term RequestVote."""
    c = Cluster(["a", "b", "c"], pre_vote=False, check_quorum=False)
    c.elect("a")
    term = c["a"].term
    c["a"].step(RequestVote(src="c", dst="a", term=term + 5, last_log_index=99,
                            last_log_term=99))
    assert c["a"].role is Role.LEADER and c["a"].term == term


def test_a_leader_that_stopped_hearing_from_a_quorum_hears_vote_requests() -> None:
    c = Cluster(["a", "b", "c"], pre_vote=False, check_quorum=False)
    c.elect("a")
    c.isolate("a")
    c.tick("a", c.make_config("a").election_tick)
    term = c["a"].term
    c["a"].step(RequestVote(src="c", dst="a", term=term + 1, last_log_index=99,
                            last_log_term=99))
    assert c["a"].role is Role.FOLLOWER and c["a"].status().vote == "c"


def test_a_timeout_now_from_an_aborted_transfer_is_ignored() -> None:
    """§3.10: a transfer not done within an election timeout is aborted; a TimeoutNow that
    arrives later (delayed, or duplicated) must not force an election."""
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    c["a"].transfer_leader("b")
    c.process()
    (late,) = c.take(is_msg(TimeoutNow))
    c.tick_all(c.make_config("a").election_tick)
    assert c["a"].role is Role.LEADER and c["a"].status().lead_transferee is None
    term = c["a"].term
    c.send(late)
    assert c["b"].role is Role.FOLLOWER and c["b"].term == term
    c.stabilize()
    assert c.leader() == "a" and c["a"].term == term


def test_a_timeout_now_for_an_earlier_target_is_ignored() -> None:
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    c["a"].transfer_leader("b")
    c.process()
    (late,) = c.take(is_msg(TimeoutNow))
    c["a"].transfer_leader("c")  # changed its mind
    c.process()
    c.deliver(is_msg(AppendEntries, dst="b"))
    c.send(late)
    assert c["b"].role is Role.FOLLOWER
    c.stabilize()
    assert c.leader() == "c"


def _transfer_with_its_timeout_now_held(c: Cluster) -> TimeoutNow:
    c.elect("a")
    c["a"].transfer_leader("b")
    c.process()
    (late,) = c.take(is_msg(TimeoutNow))
    assert isinstance(late, TimeoutNow)
    return late


def test_a_timeout_now_overtaken_by_heartbeats_after_the_abort_is_ignored() -> None:
    """§3.10: the transfer is aborted after an election timeout and the abort's NOOP is
    late, but the heartbeats sent after it arrive before the TimeoutNow: they say the
    leader's log moved past the entry the TimeoutNow names, so the transfer is over."""
    c = Cluster(["a", "b", "c"])
    late = _transfer_with_its_timeout_now_held(c)
    before_abort = c.take(is_msg(Heartbeat, dst="b"))
    c.tick("a", c.make_config("a").election_tick)
    assert c["a"].status().lead_transferee is None
    noop = c.take(is_msg(AppendEntries, dst="b"))
    assert noop and c["a"].last_index == late.last_log_index + 1
    c.deliver(is_msg(Heartbeat, dst="b"))
    c.send(*before_abort)  # reordered: an older heartbeat does not reopen the transfer
    term = c["a"].term
    c.send(late, late)  # and duplicated
    assert c["b"].role is Role.FOLLOWER and c["b"].term == term
    c.send(*noop)
    c.stabilize()
    assert c.leader() == "a" and c["a"].term == term


def test_a_timeout_now_overtaken_by_heartbeats_after_an_explicit_abort_is_ignored() -> None:
    """The same when the leader is told to stop the transfer long before its timeout: any
    end of a transfer appends the NOOP the heartbeats then report."""
    c = Cluster(["a", "b", "c"])
    late = _transfer_with_its_timeout_now_held(c)
    c["a"].transfer_leader("a")
    c.process()
    c.drop(is_msg(AppendEntries, dst="b"))  # the NOOP is lost
    c.tick("a", c.make_config("a").heartbeat_tick)
    c.deliver(is_msg(Heartbeat, dst="b"))
    term = c["a"].term
    c.send(late)
    assert c["b"].role is Role.FOLLOWER and c["b"].term == term
    c.stabilize()
    assert c.leader() == "a" and c["a"].term == term


def test_heartbeats_during_a_transfer_do_not_void_its_timeout_now() -> None:
    """A TimeoutNow that is merely slow, overtaken by heartbeats of the transfer's own
    time, still starts the election the leader asked for."""
    c = Cluster(["a", "b", "c"])
    late = _transfer_with_its_timeout_now_held(c)
    c.tick("a", c.make_config("a").election_tick - 1)
    assert c["a"].status().lead_transferee == "b"
    c.deliver(is_msg(Heartbeat, dst="b"))
    c.send(late)
    assert c["b"].role is Role.CANDIDATE
    c.stabilize()
    assert c.leader() == "b"


def test_what_an_earlier_leader_said_of_its_log_does_not_void_a_timeout_now() -> None:
    """The leader's log position is known per term: a new leader's log may end before the
    old one's did (its uncommitted tail is gone)."""
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    b = c["b"]
    term, last, last_term = b.term, b.last_index, b._log.last_term
    b.step(Heartbeat(src="a", dst="b", term=term, leader_commit=0, last_log_index=last + 5))
    b.step(Heartbeat(src="c", dst="b", term=term + 1, leader_commit=0, last_log_index=last))
    b.step(TimeoutNow(src="c", dst="b", term=term + 1, last_log_index=last,
                      last_log_term=last_term))
    assert b.role is Role.CANDIDATE and b.term == term + 2


def test_pre_vote_grants_count_only_in_their_round() -> None:
    """A pre-candidate's rounds share a term; a grant from an earlier round must not help
    the current one to a quorum."""
    c = Cluster(["s1", "s2", "s3", "s4", "s5"])
    c.campaign("s1")
    c.process()
    first = c.take(is_msg(RequestVote))
    c.send(*[m for m in first if m.dst == "s2"])
    (old_grant,) = c.take(is_msg(RequestVoteResponse))
    assert old_grant.vote_granted
    while not c.net:  # the round gets no quorum; s1 tries again
        c.tick("s1")
    assert c["s1"].role is Role.PRE_CANDIDATE
    second = c.take(is_msg(RequestVote))
    c.send(*[m for m in second if m.dst == "s3"])
    c.send(old_grant)
    c.deliver(is_msg(RequestVoteResponse))
    assert c["s1"].role is Role.PRE_CANDIDATE  # s1 and s3: two of five


def test_pre_vote_grants_from_before_a_restart_do_not_count() -> None:
    """A restart keeps the term, so pre-vote rounds before and after it share one; their
    ids differ all the same."""
    c = Cluster(["s1", "s2", "s3"])
    c.campaign("s1")
    c.process()
    c.send(*c.take(lambda m: isinstance(m, RequestVote) and m.dst == "s2"))
    (old_grant,) = c.take(is_msg(RequestVoteResponse))
    c.drop()
    c.crash("s1")
    c.restart("s1")
    c.campaign("s1")
    c.process()
    c.drop()
    c.send(old_grant)
    assert c["s1"].role is Role.PRE_CANDIDATE  # with s2's old grant it would campaign
