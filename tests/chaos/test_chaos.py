"""Bounded chaos runs on real node processes: green on SQLite and PostgreSQL, and the negative
controls -- deliberately broken builds -- caught, proof that the checks can fail.

The full-length runs are ``python -m agree.testing.chaos --seconds S --nodes N --seed K``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agree.testing.chaos.runner import Report, replay_command, run
from agree.unsafe import ALLOW_PHRASE

PARTITIONS = ("partition-isolate", "partition-halves", "partition-bridge", "one-way")


def _explain(report: Report) -> str:
    return "\n".join([*report.anomalies, *report.notes[-30:], f"replay: {replay_command(report)}"])


async def test_a_bounded_run_on_sqlite_finds_no_anomaly(tmp_path: Path) -> None:
    report = await run(seconds=40, nodes=3, seed=11, directory=tmp_path / "run")
    assert report.anomalies == [], _explain(report)
    assert report.ops > 500 and report.outcomes["ok"] > 0
    assert sum(report.faults.values()) >= 5


async def test_membership_moves_to_new_node_ids_under_load(tmp_path: Path) -> None:
    report = await run(
        seconds=30,
        nodes=3,
        seed=5,
        directory=tmp_path / "run",
        kinds=("replace", "transfer", "kill-leader"),
    )
    assert report.anomalies == [], _explain(report)
    assert report.faults["replace"] >= 2, _explain(report)
    # Members the cluster did not start with, and some it did start with gone.
    assert any(int(n[1:]) > 3 for n in report.members), _explain(report)
    assert not {"n1", "n2", "n3"} <= set(report.members), _explain(report)
    assert report.ops > 300


@pytest.mark.postgres
async def test_a_bounded_run_on_postgres_finds_no_anomaly(
    tmp_path: Path, postgres_url: str
) -> None:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    report = await run(
        seconds=30,
        nodes=3,
        seed=12,
        database="postgres",
        directory=tmp_path / "run",
        postgres_url=plain,
    )
    assert report.anomalies == [], _explain(report)
    assert report.ops > 300


async def test_local_reads_without_readindex_are_caught_under_partitions(tmp_path: Path) -> None:
    env = {"AGREE_UNSAFE_LOCAL_READS": "1", "AGREE_TESTING_ALLOW_UNSAFE": ALLOW_PHRASE}
    report = await run(
        seconds=20, nodes=3, seed=2, directory=tmp_path / "run", kinds=PARTITIONS, env=env
    )
    assert any("not linearizable" in a for a in report.anomalies), _explain(report)


async def test_acknowledging_before_durable_is_caught_under_kills(tmp_path: Path) -> None:
    env = {"AGREE_UNSAFE_ACK_BEFORE_DURABLE": "1", "AGREE_TESTING_ALLOW_UNSAFE": ALLOW_PHRASE}
    report = await run(
        seconds=20,
        nodes=3,
        seed=3,
        directory=tmp_path / "run",
        kinds=("kill-all",),  # every copy of what was acknowledged but not stored is lost
        env=env,
        commit_delay=0.1,
    )
    assert any("acknowledged and lost" in a for a in report.anomalies), _explain(report)
