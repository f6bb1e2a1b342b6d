"""Simulated clocks for the Raft simulator: how many ticks each node's core gets per step.

Owns: a node's clock rate (ticks per step) and its drift.  Real servers' clocks run at
different rates, and a rate wanders with temperature and load; Raft's timing rules
(election timeouts, leader leases, dissertation §6.4.1) must hold anyway, within a
bounded drift.  A step is one unit of true time: the fastest possible clock ticks once
per step, and every rate stays in ``[1 / skew, 1]``, so no two nodes' rates ever differ
by more than ``skew``.

All randomness comes from the injected ``random.Random``, so a seed replays the same
clocks exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClockConfig:
    """``skew``: the largest ratio between two nodes' rates (1.0: every node ticks once per
    step, as on one shared clock).  ``drift``: the probability per step that a node's rate
    moves, by at most ``drift_step`` of the allowed range, staying within it."""

    skew: float = 1.0
    drift: float = 0.0
    drift_step: float = 0.25

    def __post_init__(self) -> None:
        if not 1.0 <= self.skew <= 4.0:
            raise ValueError("clock skew must be within [1, 4]")
        if not 0.0 <= self.drift <= 1.0:
            raise ValueError("clock drift must be a probability")

    @property
    def slowest(self) -> float:
        return 1.0 / self.skew


class Clock:
    """One node's clock.  Its hardware: it keeps its rate across the node's crashes."""

    __slots__ = ("_cfg", "_phase", "_rng", "rate")

    def __init__(
        self, rng: random.Random, config: ClockConfig, rate: float | None = None
    ) -> None:
        self._rng = rng
        self._cfg = config
        lo = config.slowest
        self.rate = rng.uniform(lo, 1.0) if rate is None else rate
        if not lo - 1e-9 <= self.rate <= 1.0 + 1e-9:
            raise ValueError(f"clock rate {self.rate} outside [{lo}, 1]")
        # A random phase, so that nodes of equal rate do not tick in lockstep.
        self._phase = rng.random() if config.skew > 1.0 else 0.0

    def advance(self) -> int:
        """One step of true time passes; returns how many ticks the node sees (0 or 1)."""
        cfg = self._cfg
        if cfg.drift and self._rng.random() < cfg.drift:
            lo = cfg.slowest
            move = self._rng.uniform(-cfg.drift_step, cfg.drift_step) * (1.0 - lo)
            self.rate = min(1.0, max(lo, self.rate + move))
        self._phase += self.rate
        ticks = int(self._phase)
        self._phase -= ticks
        return ticks
