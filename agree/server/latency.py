"""Recent call latency at this node's API, as percentiles for ``/v1/status`` and the dashboard.

:class:`RecentLatency` keeps, per kind (command or query), the durations of the calls answered
in each of the last few seconds -- at most :data:`PER_SECOND` of them a second, a uniform
sample beyond that -- and summarises a recent window as ``{"count", "p50", "p99"}`` (seconds).
The Prometheus histogram (``agree_http_request_duration_seconds``) has fixed buckets for
scraping; this is the live view, with no buckets to interpolate.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any, Final

#: Durations kept per kind and second; beyond that a uniform sample (reservoir) of them.
PER_SECOND: Final = 2048
#: The window summarised, in seconds (whole seconds, the current one included).
WINDOW: Final = 5


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted values (at least one)."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


class _Second:
    __slots__ = ("seen", "values")

    def __init__(self) -> None:
        self.seen = 0  # calls answered in this second, sampled or not
        self.values: list[float] = []


class RecentLatency:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        self._seconds: dict[str, dict[int, _Second]] = {}

    def record(self, kind: str, seconds: float) -> None:
        now = int(self._clock())
        per_kind = self._seconds.setdefault(kind, {})
        second = per_kind.get(now)
        if second is None:
            second = per_kind[now] = _Second()
            for old in [s for s in per_kind if s <= now - WINDOW]:
                del per_kind[old]
        second.seen += 1
        if len(second.values) < PER_SECOND:
            second.values.append(seconds)
        else:  # reservoir sampling: every call of the second equally likely to be kept
            slot = self._rng.randrange(second.seen)
            if slot < PER_SECOND:
                second.values[slot] = seconds

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per kind: calls answered in the last WINDOW seconds and their p50 and p99 (seconds;
        None when there were none)."""
        now = int(self._clock())
        out: dict[str, dict[str, Any]] = {}
        for kind, per_kind in sorted(self._seconds.items()):
            recent = [s for t, s in per_kind.items() if t > now - WINDOW]
            values = sorted(v for s in recent for v in s.values)
            count = sum(s.seen for s in recent)
            out[kind] = {
                "count": count,
                "p50": percentile(values, 0.50) if values else None,
                "p99": percentile(values, 0.99) if values else None,
            }
        return out


__all__ = ["PER_SECOND", "WINDOW", "RecentLatency", "percentile"]
