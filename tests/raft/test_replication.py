"""Log replication (§5.3): batching, pipelining with a bounded window, fast backtracking,
idempotent AppendEntries, the commit rule (§5.4.2) and what a Ready hands the host."""

from __future__ import annotations

from raft_harness import Cluster, is_msg

from agree.raft import (
    AppendEntries,
    AppendEntriesResponse,
    EntryType,
    Heartbeat,
    HeartbeatResponse,
    Ready,
    Role,
)
from agree.raft.progress import ProgressState


def leader_with_entries(n: int = 0, **config: object) -> Cluster:
    c = Cluster(["a", "b", "c"], **config)
    c.elect("a")
    for k in range(n):
        c.propose("a", f"e{k}".encode())
    c.stabilize()
    return c


def test_a_new_leader_appends_a_noop_of_its_term() -> None:
    """§5.4.2 / §8: the NOOP lets the leader commit (and learn) what is committed."""
    c = leader_with_entries()
    last = c.peers["b"].applied[-1]
    assert last.type is EntryType.NOOP and last.term == c["a"].term
    assert c["b"].commit_index == c["a"].commit_index == last.index


def test_propose_on_a_follower_names_the_leader() -> None:
    c = leader_with_entries()
    try:
        c["b"].propose(b"x")
    except Exception as exc:  # NotLeaderError
        assert type(exc).__name__ == "NotLeaderError" and exc.leader_id == "a"  # type: ignore[attr-defined]
    else:
        raise AssertionError("a follower accepted a proposal")


def test_batches_respect_max_msg_bytes() -> None:
    c = leader_with_entries(max_msg_bytes=10)
    c.isolate("b")
    for _k in range(6):
        c.propose("a", b"12345")  # 5 bytes each: two per message
    c.stabilize()
    c.heal()
    c.tick("a")
    c.stabilize()
    sizes = [len(m.entries) for m in c.sent if isinstance(m, AppendEntries) and m.dst == "b"
             and m.entries]
    assert max(sizes) == 2 and c.peers["b"].state == [b"12345"] * 6


def test_pipeline_is_bounded_by_max_inflight_msgs() -> None:
    c = leader_with_entries(max_inflight_msgs=3, max_msg_bytes=1)
    assert c["a"]._prs["b"].state is ProgressState.REPLICATE
    for _k in range(10):
        c.propose("a", b"xy")
    to_b = [m for m in c.net if isinstance(m, AppendEntries) and m.dst == "b"]
    assert len(to_b) == 3  # the window is full; the rest waits for acks
    c.stabilize()
    assert c.peers["b"].state == [b"xy"] * 10


def test_pipeline_is_bounded_by_max_inflight_bytes() -> None:
    """A follower that persists more slowly than the leader takes commands gets at most
    max_inflight_bytes of entries ahead of its acknowledgements, not max_inflight_msgs full
    messages: its heartbeats would wait behind the backlog for longer than an election
    timeout (seen with 10 KB commands, 10,000 in flight: three elections in one run)."""
    c = leader_with_entries(max_inflight_msgs=256, max_inflight_bytes=25, max_msg_bytes=10)
    assert c["a"]._prs["b"].state is ProgressState.REPLICATE
    for _k in range(20):
        c.propose("a", b"12345")  # 5 bytes each: two per message of at most 10
    to_b = [m for m in c.net if isinstance(m, AppendEntries) and m.dst == "b"]
    sent = sum(len(e.data) for m in to_b for e in m.entries)
    assert 25 <= sent < 25 + 10  # the message that reached the bound was the last
    assert c["a"]._prs["b"].inflights.bytes == sent
    c.stabilize()
    assert c.peers["b"].state == [b"12345"] * 20
    assert c["a"]._prs["b"].inflights.bytes == 0


def test_a_lost_append_is_recovered_by_heartbeats() -> None:
    c = leader_with_entries()
    c.propose("a", b"lost")
    c.stabilize(drop=is_msg(AppendEntries, dst="b"))
    assert c.peers["b"].state == [] and c.peers["c"].state == [b"lost"]
    c.tick("a")
    c.stabilize()
    assert c.peers["b"].state == [b"lost"]


def test_fast_backtracking_skips_a_conflicting_term_in_one_round_trip() -> None:
    """End of §5.3: a follower holding 30 entries of a stale term is repaired after one
    rejection (its hint names the term), not one rejection per entry."""
    c = leader_with_entries()
    for _k in range(30):
        c.propose("a", b"t2")  # only A ever has these
    c.drop()
    c.crash("a")
    c.forget_leader("b", "c")
    c.elect_until("b")
    for _k in range(40):
        c.propose("b", b"t3")
    c.stabilize()
    c.crash("b")
    c.restart("a")
    c.forget_leader("c")
    c.elect_until("c")  # with A's vote; C's first probe to A is after index 48
    rejects = [m for m in c.sent if isinstance(m, AppendEntriesResponse) and m.src == "a"
               and not m.success]
    assert len(rejects) == 1
    assert c.peers["a"].state == [b"t3"] * 40


def test_duplicate_old_append_does_not_truncate() -> None:
    """§5.3: an AppendEntries whose entries all match never removes later entries."""
    c = leader_with_entries()
    c.propose("a", b"1")
    first = c.take(is_msg(AppendEntries, dst="b"))
    c.send(*first)
    c.propose("a", b"2")
    c.deliver(is_msg(AppendEntries, dst="b"))
    last = c["b"].last_index
    c.drop()
    c.send(*first)  # delayed duplicate of the first batch
    assert c["b"].last_index == last
    (ack,) = c.take(is_msg(AppendEntriesResponse, src="b"))
    assert ack.success and ack.match_index == last - 1


def test_conflicting_uncommitted_entries_are_truncated() -> None:
    c = leader_with_entries()
    c.isolate("a")
    c.propose("a", b"doomed")  # only A has it
    c.forget_leader("b", "c")
    c.elect_until("b")
    c.propose("b", b"kept")
    c.stabilize()
    c.heal()
    c.tick_all(3)
    assert c["a"].role is Role.FOLLOWER
    assert c.peers["a"].state == [b"kept"]
    assert all(e.data != b"doomed" for e in c.peers["a"].log())


def test_commit_needs_a_majority() -> None:
    c = leader_with_entries()
    c.isolate("b")
    c.isolate("c")
    i = c.propose("a", b"x")
    c.stabilize()
    assert c["a"].commit_index < i
    c.heal()
    c.tick("a")
    c.stabilize()
    assert c["a"].commit_index >= i


def test_commit_term_ok_only_for_the_current_term() -> None:
    c = leader_with_entries(2)
    a = c["a"]
    assert a._commit_term_ok(a.last_index)
    assert not a._commit_term_ok(1)  # a bootstrap entry of term 1


def test_heartbeat_commit_never_exceeds_the_followers_match() -> None:
    c = leader_with_entries()
    c.isolate("c")
    c.propose("a", b"x")
    c.stabilize()
    c.heal()
    c.tick("a")
    (hb,) = c.take(is_msg(Heartbeat, dst="c"))
    assert hb.leader_commit < c["a"].commit_index


def test_committed_entries_come_with_or_after_their_persisting() -> None:
    """Ready contract: an entry appears in committed_entries only in the Ready that
    persists it or a later one."""
    c = Cluster(["solo"])
    c.campaign("solo")
    node = c["solo"]
    persisted: set[int] = {e.index for e in c.peers["solo"].log()}
    node.propose(b"x")
    while node.has_ready():
        rd = node.ready()
        persisted |= {e.index for e in rd.entries}
        assert all(e.index in persisted for e in rd.committed_entries)
        node.advance(rd)
    assert node.applied_index == node.commit_index == node.last_index


def test_ready_reports_only_changes() -> None:
    c = leader_with_entries()
    assert not c["b"].has_ready()
    c.tick("a")
    c.deliver(is_msg(Heartbeat, dst="b"))
    rd_msgs = [m for m in c.net if m.src == "b"]
    assert [type(m) for m in rd_msgs] == [HeartbeatResponse]
    assert not c["b"].has_ready()


def test_status_reports_progress_on_the_leader_only() -> None:
    c = leader_with_entries(1)
    st = c["a"].status()
    assert st.role is Role.LEADER and st.progress["b"][0] == c["a"].last_index
    assert c["b"].status().progress == {}


def test_a_ready_hands_out_committed_entries_in_bounded_chunks() -> None:
    """A follower that missed many entries applies them in chunks of at most
    max_committed_bytes_per_ready (one entry at least), in order, none twice."""
    c = leader_with_entries(max_committed_bytes_per_ready=50)
    c.isolate("b")
    for k in range(40):
        c.propose("a", b"%09d" % k)  # 9 bytes each: five per chunk
    c.propose("a", b"x" * 80)  # bigger than the cap alone: a chunk of its own
    c.stabilize()
    c.heal()
    applied = len(c.peers["b"].applied)
    chunks: list[list[bytes]] = []
    original = c.peers["b"].node.ready

    def ready() -> Ready:
        rd = original()
        if rd.committed_entries:
            chunks.append([e.data for e in rd.committed_entries])
        return rd

    c.peers["b"].node.ready = ready  # type: ignore[method-assign]
    c.tick("a")
    c.stabilize()
    assert c.peers["b"].state == c.peers["a"].state
    assert len(c.peers["b"].applied) == applied + 41
    assert all(len(chunk) == 1 or sum(map(len, chunk)) <= 50 for chunk in chunks)
    assert [b"x" * 80] in chunks and len(chunks) >= 9


def test_the_leader_replicates_while_it_writes_and_counts_itself_once_durable() -> None:
    """Dissertation §10.2.1: a leader's appends may leave before its own write; it counts
    toward the commit only once advance() reports the write done."""
    c = leader_with_entries()
    c.isolate("c")
    a = c["a"]
    index = a.propose(b"x")
    rd = a.ready()  # handed out, not yet written
    assert rd.send_first and rd.must_sync and rd.entries[-1].index == index
    appends = [m for m in rd.messages if isinstance(m, AppendEntries) and m.dst == "b"]
    assert appends and appends[-1].entries[-1].index == index
    c.send(*appends)  # b writes and acknowledges them
    assert c.deliver(is_msg(AppendEntriesResponse, dst="a", match_index=index)) == 1
    # b alone is no quorum of three: the leader's own write is not durable yet.
    assert a.commit_index < index
    c.peers["a"].storage.save(hard_state=rd.hard_state, entries=rd.entries)
    a.advance(rd)
    assert a.commit_index == index
    c.process()
    assert c.peers["a"].state[-1] == b"x"


def test_a_single_voter_commits_only_what_it_has_written() -> None:
    c = Cluster(["solo"])
    c.campaign("solo")
    c.process()
    node = c["solo"]
    index = node.propose(b"x")
    assert node.commit_index < index
    rd = node.ready()
    assert rd.send_first and rd.entries[-1].index == index and not rd.committed_entries
    node.advance(rd)
    assert node.commit_index == index
    assert [e.index for e in node.ready().committed_entries] == [index]


def test_messages_that_promise_a_write_wait_for_it() -> None:
    """A follower's acknowledgement and a candidate's vote never go out before the write."""
    c = leader_with_entries(pre_vote=False)
    c.propose("a", b"y")  # the harness checks every Ready: no promise is sent first
    c.isolate("a")
    c.campaign("b")
    rd = c["b"].ready()
    assert rd.must_sync and not rd.send_first  # b's new term and vote must be durable first
