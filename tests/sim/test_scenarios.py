"""Scripted scenarios, one per defect of the Raft core the audit found (issue 7, items 1-5):
each sets up its defect's conditions on purpose and must end ``ok`` on a correct core."""

from __future__ import annotations

import io

import pytest

from agree.testing.scenarios import DEFECT, ERROR, OK, SCENARIOS, run_scenario
from agree.testing.sim import main


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_passes(name: str) -> None:
    res = run_scenario(name)
    assert res.outcome == OK, res.detail


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_replays_exactly(name: str) -> None:
    def trace() -> tuple[str, list[str]]:
        lines: list[str] = []
        res = run_scenario(name, lines.append)
        return res.outcome + res.detail, lines

    first = trace()
    assert not first[0].startswith(ERROR), first[0]  # it sets up what it needs
    assert first == trace()
    assert len(first[1]) > 10


def test_every_core_item_has_a_scenario() -> None:
    assert sorted({s.item for s in SCENARIOS.values()}) == [1, 2, 3, 4, 5]


def test_cli_runs_one_scenario_and_prints_its_replay_line() -> None:
    out = io.StringIO()
    code = main(["--scenario", "stale-timeout-now"], out=out)
    text = out.getvalue()
    res = run_scenario("stale-timeout-now")
    assert f"scenario stale-timeout-now (issue item 5): {res.outcome}" in text
    if res.outcome == DEFECT:
        assert code == 1
        assert "replay: python -m agree.testing.sim --scenario stale-timeout-now --trace" in text
    else:
        assert code == 0
    assert text.strip().splitlines()[-1].startswith("scenarios: 1 failed=")
