"""ReadIndex (dissertation §6.4): confirmed by a quorum's heartbeat answers, batched,
deferred until the leader commits in its term, forwarded from followers."""

from __future__ import annotations

import pytest
from raft_harness import Cluster, is_msg

from agree.errors import NotLeaderError
from agree.raft import (
    AppendEntries,
    Heartbeat,
    HeartbeatResponse,
    ReadIndexRequest,
    ReadIndexResponse,
    ReadState,
)


def running(**config: object) -> Cluster:
    c = Cluster(["a", "b", "c"], **config)
    c.elect("a")
    c.propose("a", b"x")
    c.stabilize()
    return c


def test_leader_read_needs_a_quorum_of_heartbeat_answers() -> None:
    c = running()
    c["a"].read_index(b"r1")
    c.process()
    hbs = c.take(is_msg(Heartbeat))
    assert {m.dst for m in hbs} == {"b", "c"} and all(m.context for m in hbs)
    assert c.peers["a"].read_states == []
    c.send(hbs[0])  # one answer + the leader itself: a majority of three
    c.deliver(is_msg(HeartbeatResponse))
    assert c.peers["a"].read_states == [ReadState(b"r1", c["a"].commit_index)]


def test_reads_are_batched_into_one_round() -> None:
    """One heartbeat round confirms every read queued before it; reads arriving while a
    round is out wait for the next one, which starts when it completes."""
    c = running()
    c["a"].read_index(b"r1")
    c.process()
    first_round = c.take(is_msg(Heartbeat))
    for k in range(2, 6):
        c["a"].read_index(f"r{k}".encode())
    c.process()
    assert not c.net  # no new round while one is outstanding
    c.send(*first_round)
    c.deliver()  # answers: r1 confirmed; r2..r5 get one round together
    assert [r.context for r in c.peers["a"].read_states] == [b"r1"]
    second_round = c.take(is_msg(Heartbeat))
    assert len(second_round) == 2 and second_round[0].context != first_round[0].context
    c.send(*second_round)
    c.deliver()
    assert [r.context for r in c.peers["a"].read_states] == [b"r1", b"r2", b"r3", b"r4", b"r5"]


def test_lost_heartbeats_are_retried_with_the_round_context() -> None:
    c = running()
    c["a"].read_index(b"r")
    c.process()
    c.drop()
    c.tick("a", 2)
    c.stabilize()
    assert [r.context for r in c.peers["a"].read_states] == [b"r"]


def test_a_new_leader_defers_reads_until_it_commits_in_its_term() -> None:
    c = running()
    c.forget_leader("b", "c")
    c.campaign("b")
    c.process()
    while c["b"].role.value != "leader":
        assert c.deliver(lambda m: not isinstance(m, AppendEntries))
    c["b"].read_index(b"early")
    c.process()
    c.stabilize(drop=is_msg(AppendEntries))
    assert c.peers["b"].read_states == []  # heartbeats answered, but nothing committed yet
    c.tick("b")
    c.stabilize()
    (rs,) = c.peers["b"].read_states
    assert rs.context == b"early" and rs.index == c["b"].commit_index


def test_follower_forwards_to_the_leader() -> None:
    c = running()
    c["b"].read_index(b"via-b")
    c.process()
    (req,) = c.take(is_msg(ReadIndexRequest))
    assert req.dst == "a"
    c.send(req)
    c.stabilize()
    assert c.peers["b"].read_states == [ReadState(b"via-b", c["a"].commit_index)]
    assert any(isinstance(m, ReadIndexResponse) for m in c.sent)


def test_follower_without_a_leader_refuses() -> None:
    c = Cluster(["a", "b", "c"])
    with pytest.raises(NotLeaderError) as exc:
        c["b"].read_index(b"r")
    assert exc.value.leader_id is None


def test_reads_are_dropped_when_leadership_is_lost() -> None:
    c = running()
    c["a"].read_index(b"r")
    c.process()
    c.drop()
    c["a"].step(Heartbeat(src="b", dst="a", term=c["a"].term + 1, leader_commit=0))
    c.process()
    c.stabilize()
    c.tick_all(5)
    assert c.peers["a"].read_states == []


def test_single_voter_confirms_at_once() -> None:
    c = Cluster(["solo"])
    c.elect("solo")
    c["solo"].read_index(b"r")
    c.process()
    assert c.peers["solo"].read_states == [ReadState(b"r", c["solo"].commit_index)]
