"""Lease reads (dissertation §6.4.1): a leader serves a read from its commit index without
a heartbeat round while a quorum's promise not to elect another leader lasts.  The lease
runs from the start of the latest heartbeat round a quorum answered, shortened by the
clock-drift bound; it ends when a transfer begins; servers keep the promise (§4.2.3)
across term changes and restarts."""

from __future__ import annotations

import pytest
from raft_harness import Cluster, is_msg

from agree.raft import (
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    ReadState,
    RequestVote,
    Role,
    TimeoutNow,
)


def leased(**config: object) -> Cluster:
    """a leads b and c with leases on, has committed in its term and holds a lease."""
    c = Cluster(["a", "b", "c"], lease_read=True, **config)
    # With leases on, a server that starts keeps a follower's promise for an election
    # timeout (it may have heard from a leader just before it stopped): let that pass.
    for node_id in "bc":
        for _ in range(c.make_config(node_id).election_tick):
            c[node_id].tick()
    c.process()
    c.drop()
    c.elect("a")
    assert c["a"].role is Role.LEADER
    c.tick("a")  # a heartbeat round, answered by both
    c.stabilize()
    return c


def served(c: Cluster, node_id: str, context: bytes) -> list[ReadState]:
    return [r for r in c.peers[node_id].read_states if r.context == context]


def test_a_read_within_the_lease_needs_no_round() -> None:
    c = leased()
    c["a"].read_index(b"lease")
    c.process()
    assert not c.net and served(c, "a", b"lease") == [ReadState(b"lease", c["a"].commit_index)]


def test_before_any_round_is_answered_reads_take_a_round() -> None:
    """A new leader's election is no lease: a vote is no promise not to vote again."""
    c = Cluster(["a", "b", "c"], lease_read=True)
    for node_id in "bc":
        c.tick(node_id, c.make_config(node_id).election_tick)
    c.drop()
    c.elect("a")
    c["a"].read_index(b"r")
    c.process()
    assert not served(c, "a", b"r") and c.take(is_msg(Heartbeat))


@pytest.mark.parametrize(("drift", "lease"), [(0.0, 9), (0.5, 6), (1.0, 4)])
def test_the_lease_runs_from_the_start_of_the_answered_round(drift: float, lease: int) -> None:
    """Not from when the answers arrive: a follower heard the round at some point after it
    began.  election_tick 10: a follower may vote 10 of its ticks after hearing, the first
    of which may come at once; its clock may run 1 + drift times as fast."""
    c = leased(lease_clock_drift=drift, check_quorum=False)
    a = c["a"]
    c.tick("a")
    start = a._ticks
    held = c.take(is_msg(Heartbeat))  # this round is answered late
    for _ in range(lease - 2):
        c.tick("a")
        c.drop()  # later rounds are lost
    c.send(*held)
    c.deliver(is_msg(HeartbeatResponse))
    while a._ticks < start + lease - 1:
        c.tick("a")
        c.drop()
    a.read_index(b"last")
    c.process()
    assert served(c, "a", b"last"), "the read at the lease's last tick needs no round"
    c.tick("a")
    c.drop()
    assert a._ticks == start + lease
    a.read_index(b"late")
    c.process()
    assert not served(c, "a", b"late")
    assert any(m.context for m in c.take(is_msg(Heartbeat))), "a round confirms it instead"


def _lockstep_until_new_leader_commits(c: Cluster) -> str:
    """Tick every node once per step (equal clocks) until b or c leads and has committed a
    write; return the new leader."""
    for _ in range(100):
        c.tick_all(1)
        new = next((n for n in "bc" if c[n].role is Role.LEADER), None)
        if new is not None:
            c.propose(new, b"w")
            c.stabilize()
            return new
    raise AssertionError("b and c never elected a leader")


def test_a_cut_off_leader_serves_no_stale_read_even_before_it_steps_down() -> None:
    """Equal clocks, check-quorum on: a cut-off leader steps down up to two election
    timeouts later, while the others may elect a leader after one.  Reads it answers in
    between must not miss what the new leader committed."""
    c = leased()
    while c["a"]._election_elapsed != 0:  # cut off just after a check-quorum period began
        c.tick_all(1)
    c.isolate("a")
    new = _lockstep_until_new_leader_commits(c)
    write = c[new].commit_index
    assert c["a"].role is Role.LEADER, "the overlap this test is about"
    c["a"].read_index(b"stale?")
    c.process()
    assert all(r.index >= write for r in served(c, "a", b"stale?"))
    assert not served(c, "a", b"stale?")


def test_a_transfer_ends_the_lease() -> None:
    """The target's election ignores the followers' promises (§3.10), so the leader may no
    longer rely on them once it sends TimeoutNow, even if the transfer is aborted."""
    c = leased()
    c["a"].transfer_leader("b")
    c.process()
    c.deliver(is_msg(TimeoutNow))
    c.isolate("a")  # a never hears of b's election
    c.stabilize()
    assert c["b"].role is Role.LEADER
    c.propose("b", b"w")
    c.stabilize()
    assert c["a"].role is Role.LEADER
    c["a"].read_index(b"stale?")
    c.process()
    assert not served(c, "a", b"stale?")


def test_a_restarted_follower_keeps_its_promise() -> None:
    """b answered a's round, then restarted at once; c, cut off from a for long, campaigns.
    b must not vote for c while a's lease may last: it may have heard a just before."""
    c = leased()
    c.cut.add(frozenset(("a", "c")))
    c.forget_leader("c")  # c no longer follows a
    c.tick("a")
    c.stabilize()  # a's lease now rests on b's answer
    c.crash("b")
    c.restart("b")
    sent = len(c.sent)
    c.elect("c")
    assert any(isinstance(m, RequestVote) and m.dst == "b" for m in c.sent[sent:])
    assert c["c"].role is not Role.LEADER
    c["a"].read_index(b"r")
    c.process()
    assert served(c, "a", b"r") == [ReadState(b"r", c["a"].commit_index)]


def test_the_promise_survives_learning_a_higher_term() -> None:
    """§4.2.3: within the minimum election timeout of hearing from a leader a server grants
    no vote, even once a stray message taught it a higher term (which forgets the
    leader's id)."""
    c = leased()
    b = c["b"]
    term = b.term
    b.step(AppendEntriesResponse(src="c", dst="b", term=term + 1, success=False))
    assert b.term == term + 1 and b.leader_id is None
    b.step(RequestVote(src="c", dst="b", term=term + 1, last_log_index=99, last_log_term=99))
    assert b.status().vote is None


def _race(follower_period: int, drift: float, offset: int, seed: int) -> tuple[int, int]:
    """Real time is counted in 60ths of the leader's tick; b and c tick every
    ``follower_period`` of them (30: twice as fast), messages arrive at once (the earliest
    a follower can start its promise).  a is cut off at ``offset`` and tries a read at
    every instant.  Returns (the last instant a served a read from its lease, the first
    instant b or c led)."""
    c = Cluster(["a", "b", "c"], seed=seed, lease_read=True, lease_clock_drift=drift,
                check_quorum=False)  # a never steps down: the whole lease is exposed
    for node_id in "bc":
        c.tick(node_id, c.make_config(node_id).election_tick)
    c.drop()
    c.elect("a")
    period = {"a": 60, "b": follower_period, "c": follower_period}
    phase = {"a": 0, "b": offset % follower_period, "c": (7 * offset) % follower_period}
    last_lease_read, new_leader = -1, -1
    for now in range(60 * 60):
        if now == 60 * 20 + offset:
            c.isolate("a")
        for node_id in "abc":
            if now % period[node_id] == phase[node_id]:
                c[node_id].tick()
        c.process()
        c.stabilize()
        a = c.peers["a"]
        before = len(a.read_states)
        a.node.read_index(str(now).encode())
        c.process()
        c.drop(lambda m: m.src == "a")
        if len(a.read_states) > before:
            last_lease_read = now
        if any(c[n].role is Role.LEADER for n in "bc"):
            new_leader = now
            break
    assert new_leader > 0, "b and c never elected a leader"
    return last_lease_read, new_leader


@pytest.mark.parametrize(("follower_period", "drift"), [(60, 0.0), (40, 0.5), (30, 1.0)])
def test_no_lease_read_once_another_leader_can_exist(follower_period: int, drift: float) -> None:
    """The bound of _lease_valid, checked by racing it: followers whose clocks run up to
    1 + drift times as fast as the leader's, every phase between their ticks and the
    leader's, and the cut-off leader reading at every instant."""
    for offset in range(0, 60, 7):
        for seed in range(3):
            last_read, new_leader = _race(follower_period, drift, offset, seed)
            assert last_read < new_leader, (offset, seed, last_read, new_leader)


def test_a_drift_bound_too_small_is_unsafe() -> None:
    """The race above can fail: followers twice as fast, a lease computed for equal clocks."""
    races = [_race(30, 0.0, offset, seed) for offset in range(0, 60, 7) for seed in range(3)]
    assert any(last_read >= new_leader for last_read, new_leader in races)
