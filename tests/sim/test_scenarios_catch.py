"""Each scenario catches its defect: put the defect back into the core and watch the
scenario fail (as the strict xfails on the unfixed core did)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agree.raft import Role
from agree.raft.messages import InstallSnapshot, Message, RequestVoteResponse, TimeoutNow
from agree.raft.node import RaftNode
from agree.raft.snapshot import SnapshotAssembler
from agree.testing.scenarios import DEFECT, run_scenario


def _offer_keyed_on_index_and_term(
    self: SnapshotAssembler, m: InstallSnapshot
) -> tuple[int, bytes | None]:
    # Item 1's defect: a transfer is known by (index, term) alone, a chunk at offset 0
    # continues a buffer already under way, and nothing checks the whole.
    key = (m.last_included_index, m.last_included_term)
    if self._key != key:  # type: ignore[comparison-overlap]
        if m.offset != 0:
            return 0, None
        self._key = key  # type: ignore[assignment]
        self._buf = bytearray()
    buf = self._buf
    if m.offset == len(buf):
        buf += m.data
        if m.done:
            data = bytes(buf)
            self.reset()
            return len(data), data
    return len(buf), None


def test_a_snapshot_glued_from_two_leaders_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SnapshotAssembler, "offer", _offer_keyed_on_index_and_term)
    res = run_scenario("snapshot-two-leaders")
    assert res.outcome == DEFECT and "snapshot data corrupted" in res.detail, res


# (stale-lease-read-partition needs a leader that outlives its quorum contact as the old
# check-quorum allowed; the current one steps down before another leader is elected.)
@pytest.mark.parametrize("name", ["stale-lease-read-transfer", "stale-lease-read-slow-leader"])
def test_a_lease_that_never_ends_is_caught(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RaftNode, "_lease_valid", lambda self: True)
    res = run_scenario(name)
    assert res.outcome == DEFECT and "stale read" in res.detail, res


def test_a_timer_reset_by_a_higher_term_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = RaftNode._become_follower

    def resetting(self: RaftNode, term: int, leader: str | None) -> None:
        original(self, term, leader)
        self._election_elapsed = 0  # item 3's defect: learning a term restarts the timer

    monkeypatch.setattr(RaftNode, "_become_follower", resetting)
    res = run_scenario("livelock-prevote-off")
    assert res.outcome == DEFECT and "stuck" in res.detail, res


def test_a_leader_without_stickiness_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = RaftNode._leader_is_current

    def only_with_check_quorum(self: RaftNode) -> bool:
        if self.role is Role.LEADER and not self._cfg.check_quorum:
            return False  # item 4's defect
        return original(self)

    monkeypatch.setattr(RaftNode, "_leader_is_current", only_with_check_quorum)
    res = run_scenario("removed-node-deposes-leader")
    assert res.outcome == DEFECT and "removed node disrupts" in res.detail, res


def test_a_timeout_now_without_identity_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RaftNode, "_transfer_is_current", lambda self, m: True)
    res = run_scenario("stale-timeout-now")
    assert res.outcome == DEFECT and "stale TimeoutNow" in res.detail, res


def test_a_timeout_now_known_by_the_target_log_alone_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def position_only(self: RaftNode, m: TimeoutNow) -> bool:
        log = self._log  # item 5's race: what the heartbeats say of the leader's log unused
        return log.last_index == m.last_log_index and log.last_term == m.last_log_term

    monkeypatch.setattr(RaftNode, "_transfer_is_current", position_only)
    res = run_scenario("timeout-now-overtakes-abort")
    assert res.outcome == DEFECT and "stale TimeoutNow" in res.detail, res


def test_pre_vote_grants_without_rounds_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = RaftNode.step

    def any_round(self: RaftNode, msg: Message) -> None:
        if isinstance(msg, RequestVoteResponse):
            msg = replace(msg, round_id=self._round_id)  # item 5's defect: rounds ignored
        original(self, msg)

    monkeypatch.setattr(RaftNode, "step", any_round)
    res = run_scenario("stale-pre-vote-grants")
    assert res.outcome == DEFECT and "stale pre-vote grants" in res.detail, res
