"""Overload, bounded: 2,000 commands in flight for 10 s over real node processes, then the
load stops -- every node converges, stays live and kept its memory bounded.

The full criterion is ``python -m agree.testing.chaos --overload 20000 --seconds 60``.
"""

from __future__ import annotations

from pathlib import Path

from agree.testing.chaos.overload import MIB, run_overload


async def test_two_thousand_in_flight_then_converged_live_and_bounded(tmp_path: Path) -> None:
    report = await run_overload(in_flight=2000, seconds=10, directory=tmp_path / "run")
    assert report.anomalies == [], "\n".join([*report.anomalies, *report.lines()])
    assert report.outcomes["ok"] > 2000  # the load was real: every caller was answered
    assert report.converged_after is not None
    assert set(report.rss_peak) == set(report.rss_start) == {"n1", "n2", "n3"}
    assert all(report.rss_peak[n] >= report.rss_start[n] > 10 * MIB for n in report.rss_start)
