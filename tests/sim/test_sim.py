"""The simulator end to end: the CI seed sweep, replay, and proof that it catches broken
Raft rules (§5.4.1 vote restriction, §5.4.2 commit rule) and broken reads."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from agree.raft import Ready
from agree.raft.node import RaftNode
from agree.testing import sim as simmod
from agree.testing.sim import PROFILES, SimConfig, Simulation, main, run_seed

ROOT = Path(__file__).resolve().parents[2]
FINAL = re.compile(r"^sim: seeds=(\d+) nodes=(\d+) steps=(\d+) violations=(\d+)$")


def test_ci_sweep_200_seeds_5_nodes() -> None:
    # Through the real command line, as CI and the README run it.
    proc = subprocess.run(
        [sys.executable, "-m", "agree.testing.sim", "--seeds", "200", "--nodes", "5",
         "--steps", "1000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines = proc.stdout.strip().splitlines()
    assert FINAL.match(lines[-1]), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert lines[-1] == "sim: seeds=200 nodes=5 steps=1000 violations=0", proc.stdout[-5000:]
    assert proc.returncode == 0
    assert any("seeds/s" in line for line in lines)
    # The faults really happened, many times.
    totals = dict(kv.split("=") for kv in lines[-3].removeprefix("totals: ").split())
    for what in ("elections", "crashes", "partitions", "conf_changes", "transfers",
                 "compactions", "snapshots_installed", "ops_ok", "ops_unknown"):
        assert int(totals[what]) >= 200, (what, totals)


def test_a_seed_replays_exactly() -> None:
    def trace(seed: int) -> list[str]:
        lines: list[str] = []
        res = run_seed(seed, replace(SimConfig(), steps=400), trace=lines.append)
        assert res.violation is None, res.violation
        return lines

    first = trace(11)
    assert first == trace(11)
    assert first != trace(12)
    assert len(first) > 100


def test_one_run_sees_elections_partitions_and_recoveries() -> None:
    res = run_seed(3, SimConfig())
    assert res.violation is None, res.violation
    s = res.stats
    assert s.elections >= 5 and s.partitions >= 5 and s.heals >= 5
    assert s.crashes >= 5 and s.restarts >= 5
    assert s.committed >= 50 and s.ops_ok >= 50
    assert res.history_verdict == "linearizable"


def test_cli_reports_failing_seed_and_replay_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RaftNode, "_log_up_to_date", lambda self, index, term: True)
    out = io.StringIO()
    code = main(["--seeds", "12", "--nodes", "5", "--steps", "1000", "--workers", "1"], out=out)
    text = out.getvalue()
    assert code == 1
    m = FINAL.match(text.strip().splitlines()[-1])
    assert m is not None and int(m.group(4)) >= 1
    seed = re.search(r"^seed (\d+): VIOLATION", text, re.M)
    assert seed is not None
    assert (
        f"replay: python -m agree.testing.sim --seed {seed.group(1)} --nodes 5 --steps 1000 "
        "--trace" in text
    )


def _violations(config: SimConfig, seeds: range) -> list[str]:
    out = []
    for seed in seeds:
        res = run_seed(seed, config)
        if res.violation is not None:
            out.append(res.violation)
    return out


def test_broken_commit_rule_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Figure 8: committing an entry of an earlier term by counting replicas.
    cfg = PROFILES["figure8"]
    assert _violations(cfg, range(8)) == []  # the intact core passes this profile
    monkeypatch.setattr(RaftNode, "_commit_term_ok", lambda self, index: True)
    found = _violations(cfg, range(16))
    assert len(found) >= 2, found
    assert all(
        "leader completeness" in v or "committed entry changed" in v or "linearizable" in v
        for v in found
    ), found


def test_broken_vote_restriction_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RaftNode, "_log_up_to_date", lambda self, index, term: True)
    found = _violations(SimConfig(), range(16))
    assert len(found) >= 3, found
    assert all(
        "leader completeness" in v or "committed entry changed" in v or "linearizable" in v
        for v in found
    ), found


def test_stale_reads_are_caught_by_the_history_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # A host that answers a ReadIndex read at once, without waiting until it has applied
    # up to the read index, serves stale values from lagging followers.
    def serve_now(self: Simulation, node: simmod.SimNode) -> None:
        for _, op in node.waiting_reads:
            op.value = node.kv.get(op.key)
            self._finish(op, simmod._OK)
        node.waiting_reads = []

    monkeypatch.setattr(Simulation, "_serve_reads", serve_now)
    cfg = replace(SimConfig(), keys=1)
    # A read must race a lagging follower's apply: a few seeds in a hundred; stop at one.
    found: list[str] = []
    for seed in range(100):
        found = _violations(cfg, range(seed, seed + 1))
        if found:
            break
    assert found, "stale reads went unnoticed"
    assert all("history not linearizable" in v for v in found), found
    assert "key 'k0'" in found[0]


def test_unpersisted_vote_is_caught_when_the_grant_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A core that grants a vote but leaves the vote out of the Ready's hard state.
    original = RaftNode.ready

    def ready_without_vote(self: RaftNode) -> Ready:
        rd = original(self)
        if rd.hard_state is None:
            return rd
        return replace(rd, hard_state=replace(rd.hard_state, vote=None))

    monkeypatch.setattr(RaftNode, "ready", ready_without_vote)
    res = run_seed(0, replace(SimConfig(), check_history=False))
    assert res.violation is not None
    assert "sent before persisted" in res.violation
    assert "RequestVote" in res.violation or "vote for" in res.violation


def test_read_index_without_a_quorum_round_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # A leader that answers ReadIndex from its own commit index without confirming its
    # leadership (§6.4 step 3) serves stale reads once it has been deposed.
    from agree.raft.readonly import PendingRead

    def unconfirmed(self: RaftNode, context: bytes, origin: str) -> None:
        self._release_reads([PendingRead(context, origin, self._commit)])

    monkeypatch.setattr(RaftNode, "_leader_read", unconfirmed)
    found = _violations(replace(SimConfig(), keys=1, check_quorum=False), range(12))
    assert found, "unconfirmed reads went unnoticed"
    assert all("history not linearizable" in v for v in found), found
