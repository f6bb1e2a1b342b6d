"""A resumed old leader (SIGSTOP longer than an election timeout, then SIGCONT with calls
queued at its port) neither acknowledges a write nor serves a linearizable read before it has
re-confirmed its leadership -- and the check catches a build that serves reads locally."""

from __future__ import annotations

import asyncio
import itertools
import random
from pathlib import Path

from agree.testing.chaos.cluster import ChaosCluster, Database
from agree.testing.chaos.history import History, check_registers
from agree.testing.chaos.resume import Round, resumed_leader_round
from agree.unsafe import ALLOW_PHRASE


async def _rounds(directory: Path, env: dict[str, str]) -> tuple[list[Round], list[str], History]:
    cluster = ChaosCluster(
        directory, 3, database=Database("sqlite", directory), rng=random.Random(5), env=env
    )
    history = History()
    values, processes = itertools.count(1), itertools.count()
    rounds = []
    try:
        await cluster.start()
        for isolate in (True, False):
            rounds.append(
                await resumed_leader_round(
                    cluster, history, isolate=isolate, values=values, processes=processes
                )
            )
    finally:
        await cluster.close()
    anomalies, _ = await asyncio.to_thread(check_registers, history, time_limit=60)
    return rounds, anomalies, history


def _explain(rounds: list[Round], anomalies: list[str], history: History) -> str:
    return "\n".join([*anomalies, *(a for r in rounds for a in r.anomalies), history.text()])


async def test_a_resumed_leader_answers_nothing_stale(tmp_path: Path) -> None:
    rounds, anomalies, history = await _rounds(tmp_path, {})
    assert anomalies == [] and all(r.anomalies == [] for r in rounds), _explain(
        rounds, anomalies, history
    )
    for r in rounds:
        # The calls did reach the old leader after its pause, while the new leader led.
        assert r.new_leader != r.old_leader and len(r.at_old_leader) == 20
        assert all(op.node == r.old_leader and op.complete for op, _ in r.at_old_leader)
    # And it stays useful: once it knows the new leader, what it was sent is carried out there
    # (not held until the request times out).
    for op, _ in rounds[1].at_old_leader:
        assert op.type == "ok", _explain(rounds, anomalies, history)


async def test_serving_reads_without_readindex_is_caught_at_the_resume(tmp_path: Path) -> None:
    env = {"AGREE_UNSAFE_LOCAL_READS": "1", "AGREE_TESTING_ALLOW_UNSAFE": ALLOW_PHRASE}
    rounds, anomalies, history = await _rounds(tmp_path, env)
    isolated = rounds[0]
    assert any("linearizable read with the value before" in a for a in isolated.anomalies), (
        _explain(rounds, anomalies, history)
    )
    assert any("not linearizable" in a for a in anomalies), _explain(rounds, anomalies, history)
