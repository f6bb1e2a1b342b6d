"""Simulated clocks: rates within the skew, drift within bounds, replay by seed."""

from __future__ import annotations

import random

import pytest

from agree.testing.simclock import Clock, ClockConfig


def test_one_shared_clock_ticks_every_node_once_per_step() -> None:
    clock = Clock(random.Random(1), ClockConfig())
    assert [clock.advance() for _ in range(100)] == [1] * 100


def test_rates_differ_by_at_most_the_skew_and_ticks_follow_the_rate() -> None:
    cfg = ClockConfig(skew=2.0)
    rng = random.Random(7)
    clocks = [Clock(random.Random(rng.getrandbits(64)), cfg) for _ in range(50)]
    rates = [c.rate for c in clocks]
    assert all(0.5 <= r <= 1.0 for r in rates)
    assert max(rates) / min(rates) > 1.6  # the range is really used
    for c in clocks:
        ticks = sum(c.advance() for _ in range(1000))
        assert abs(ticks - 1000 * c.rate) <= 1
        assert all(c.advance() in (0, 1) for _ in range(10))


def test_a_rate_drifts_within_the_bounds() -> None:
    clock = Clock(random.Random(3), ClockConfig(skew=2.0, drift=0.2))
    seen = set()
    for _ in range(2000):
        clock.advance()
        assert 0.5 <= clock.rate <= 1.0
        seen.add(round(clock.rate, 2))
    assert len(seen) > 20


def test_clocks_replay_by_seed() -> None:
    def ticks(seed: int) -> list[int]:
        c = Clock(random.Random(seed), ClockConfig(skew=1.8, drift=0.1))
        return [c.advance() for _ in range(300)]

    assert ticks(5) == ticks(5)
    assert ticks(5) != ticks(6)


def test_a_fixed_rate_outside_the_skew_is_refused() -> None:
    with pytest.raises(ValueError):
        Clock(random.Random(1), ClockConfig(skew=2.0), rate=0.4)
    with pytest.raises(ValueError):
        ClockConfig(skew=0.5)
