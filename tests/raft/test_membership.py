"""Single-server membership changes (dissertation §4.1-§4.2): add a learner, let it catch
up, promote it; remove members including the leader; one change at a time."""

from __future__ import annotations

import pytest
from raft_harness import Cluster, is_msg

from agree.errors import MembershipChangeError, NotLeaderError, ProposalRejectedError
from agree.raft import AppendEntries, ConfChange, ConfChangeType, EntryType, Role

ADD, PROMOTE, REMOVE = ConfChangeType.ADD_LEARNER, ConfChangeType.PROMOTE, ConfChangeType.REMOVE


def change(c: Cluster, leader: str, kind: ConfChangeType, node: str) -> int:
    index = c[leader].propose_conf_change(ConfChange(kind, node, b"addr"))
    c.process()
    c.stabilize()
    return index


def running() -> Cluster:
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    for k in range(5):
        c.propose("a", f"e{k}".encode())
    c.stabilize()
    return c


def test_add_learner_catch_up_then_promote() -> None:
    c = running()
    c.add_node("d")
    assert c["d"].conf.members() == frozenset()
    index = change(c, "a", ADD, "d")
    assert c["d"].role is Role.LEARNER and c["d"].conf.learners == {"d"}
    assert c.peers["d"].state == [f"e{k}".encode() for k in range(5)]  # caught up from 1
    assert c["a"].status().progress["d"][0] == c["a"].last_index
    cc = next(e for e in c.peers["d"].applied if e.index == index)
    assert cc.type is EntryType.CONF_CHANGE and ConfChange.decode(cc.data).context == b"addr"
    change(c, "a", PROMOTE, "d")
    assert all(c[n].conf.voters == {"a", "b", "c", "d"} for n in "abcd")
    assert c["d"].role is Role.FOLLOWER
    # d now counts: with b and c cut off, a and d are not a majority of four.
    c.partition(["a", "d"], ["b", "c"])
    i = c.propose("a", b"x")
    c.stabilize()
    assert c["a"].commit_index < i


def test_a_configuration_takes_effect_when_appended_and_reverts_if_truncated() -> None:
    """§4.1: servers use the latest configuration in their log, committed or not."""
    c = running()
    c.isolate("a")
    c["a"].propose_conf_change(ConfChange(REMOVE, "c"))
    c.process()
    assert c["a"].conf.voters == {"a", "b"}
    c.forget_leader("b", "c")
    c.elect_until("b")
    c.propose("b", b"wins")
    c.stabilize()
    c.heal()
    c.tick_all(3)
    assert c["a"].role is Role.FOLLOWER and c["a"].conf.voters == {"a", "b", "c"}


def test_at_most_one_change_in_flight() -> None:
    c = running()
    c["a"].propose_conf_change(ConfChange(ADD, "d"))
    with pytest.raises(MembershipChangeError, match="not yet committed"):
        c["a"].propose_conf_change(ConfChange(ADD, "e"))
    c.process()
    c.stabilize()
    change(c, "a", ADD, "e")


@pytest.mark.parametrize(
    ("kind", "node", "why"),
    [
        (ADD, "b", "already a member"),
        (PROMOTE, "b", "not a learner"),
        (PROMOTE, "zz", "not a learner"),
        (REMOVE, "zz", "not a member"),
    ],
)
def test_invalid_changes_are_refused(kind: ConfChangeType, node: str, why: str) -> None:
    c = running()
    with pytest.raises(MembershipChangeError, match=why):
        c["a"].propose_conf_change(ConfChange(kind, node))
    assert not c["a"].has_ready()


def test_the_last_voter_cannot_be_removed() -> None:
    c = Cluster(["solo"])
    c.elect("solo")
    with pytest.raises(MembershipChangeError, match="last voter"):
        c["solo"].propose_conf_change(ConfChange(REMOVE, "solo"))


def test_changes_only_on_the_leader_and_not_during_a_transfer() -> None:
    c = running()
    with pytest.raises(NotLeaderError):
        c["b"].propose_conf_change(ConfChange(ADD, "d"))
    c.isolate("c")
    c["a"].transfer_leader("c")
    with pytest.raises(ProposalRejectedError):
        c["a"].propose_conf_change(ConfChange(ADD, "d"))


def test_removing_a_follower_stops_replication_to_it() -> None:
    c = running()
    change(c, "a", REMOVE, "c")
    assert c["a"].conf.voters == {"a", "b"} and "c" not in c["a"].status().progress
    c.propose("a", b"after")
    c.stabilize()
    assert c.peers["c"].state[-1:] != [b"after"]
    # c never got the entry (§4.2.3): it times out and pre-votes, to no effect.
    term = c["a"].term
    c.tick_all(100)
    assert c.leader() == "a" and c["c"].term == term == c["a"].term


@pytest.mark.parametrize("check_quorum", [False, True])
def test_a_removed_server_cannot_depose_the_leader_without_pre_vote(check_quorum: bool) -> None:
    """§4.2.3: without pre-vote, c campaigns with ever higher terms; b and the leader have
    heard from a leader (the leader from a quorum) within the minimum election timeout, so
    they ignore it, whether or not check-quorum is on."""
    c = Cluster(["a", "b", "c"], pre_vote=False, check_quorum=check_quorum)
    c.elect("a")
    c.isolate("c")
    change(c, "a", REMOVE, "c")  # c never learns it was removed
    c.heal()
    term = c["a"].term
    c.tick_all(100)
    assert c["c"].term > term + 3  # it kept campaigning
    assert c.leader() == "a" and c["a"].term == c["b"].term == term


def test_removed_leader_steps_down_once_the_removal_commits() -> None:
    """§4.2.2: the leader manages the change without counting itself, then steps down."""
    c = running()
    term = c["a"].term
    c.isolate("c")
    index = c["a"].propose_conf_change(ConfChange(REMOVE, "a"))
    c.process()
    assert c["a"].role is Role.LEADER and c["a"].conf.voters == {"b", "c"}
    # a and b hold the entry, but a no longer counts: b alone is not a majority of {b, c}.
    c.stabilize()
    assert c["a"].role is Role.LEADER and c["a"].commit_index < index
    c.heal()
    c.tick("a")
    c.stabilize()
    assert c["a"].role is Role.FOLLOWER and c["a"].commit_index >= index
    c.tick_all(40)
    leader = c.leader()
    assert leader in ("b", "c") and c[leader].term > term
    c.propose(leader, b"without a")
    c.stabilize()
    assert c.peers["b"].state[-1] == b"without a"
    assert c["a"].role is Role.FOLLOWER


def test_a_server_removed_by_an_uncommitted_change_may_still_campaign() -> None:
    """§4.2.2: until C_new commits, the removed server may be needed to elect a leader
    that commits it; it campaigns without counting its own vote."""
    c = Cluster(["a", "b"])
    c.elect("a")
    c["a"].propose_conf_change(ConfChange(REMOVE, "a"))
    c.process()
    c.drop(is_msg(AppendEntries))
    c.isolate("b")
    c.tick("a", 2 * c.make_config("a").election_tick)  # check-quorum: a steps down
    assert c["a"].role is Role.FOLLOWER
    c.heal()
    c.forget_leader("b")
    c.elect("a")  # b votes for a (a's log is longer); a leads, commits {b}, steps down
    assert any(m.src == "a" and isinstance(m, AppendEntries) and m.term == c["a"].term
               for m in c.sent)
    assert c["a"].role is Role.FOLLOWER and c["b"].conf.voters == {"b"}
    assert c["b"].commit_index == c["a"].last_index
    c.tick_all(40)
    assert c.leader() == "b"


def test_a_joining_node_learns_the_configuration_from_a_snapshot() -> None:
    c = running()
    c.compact("a")
    c.add_node("d")
    change(c, "a", ADD, "d")
    c.tick("a")
    c.stabilize()
    assert c.peers["d"].restored and c["d"].conf.learners == {"d"}
    assert c.peers["d"].state == [f"e{k}".encode() for k in range(5)]
