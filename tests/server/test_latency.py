"""The live latency percentiles of /v1/status (what the dashboard's latency chart draws): the
calls a node answered in its last few seconds, by kind, nearest-rank p50 and p99."""

from __future__ import annotations

import random
from pathlib import Path

from agree.server.app import create_app
from agree.server.latency import PER_SECOND, WINDOW, RecentLatency, percentile
from agree.testing.cluster import MemoryCluster
from agree.testing.models import Counter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_percentiles_of_the_recent_window() -> None:
    clock = Clock()
    recent = RecentLatency(clock=clock)
    assert recent.summary() == {}
    for ms in range(1, 101):  # 1..100 ms
        recent.record("command", ms / 1000)
    recent.record("query", 0.5)
    assert recent.summary() == {
        "command": {"count": 100, "p50": 0.050, "p99": 0.099},
        "query": {"count": 1, "p50": 0.5, "p99": 0.5},
    }
    clock.now += WINDOW - 1  # still inside the window
    recent.record("command", 1.0)
    assert recent.summary()["command"]["count"] == 101
    clock.now += 1  # the first second has left the window
    assert recent.summary()["command"] == {"count": 1, "p50": 1.0, "p99": 1.0}
    clock.now += WINDOW
    assert recent.summary()["command"] == {"count": 0, "p50": None, "p99": None}


def test_a_busy_second_keeps_a_bounded_uniform_sample() -> None:
    recent = RecentLatency(clock=Clock(), rng=random.Random(7))
    for i in range(10 * PER_SECOND):
        recent.record("command", 0.001 if i % 2 else 0.003)
    summary = recent.summary()["command"]
    assert summary["count"] == 10 * PER_SECOND
    assert len(recent._seconds["command"][100].values) == PER_SECOND
    assert summary["p50"] in (0.001, 0.003) and summary["p99"] == 0.003


def test_nearest_rank() -> None:
    assert percentile([1.0], 0.99) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0


async def test_status_reports_the_calls_this_node_answered(tmp_path: Path) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    async with MemoryCluster(tmp_path, {"counter": Counter}, size=1) as cluster:
        leader = await cluster.wait_leader()
        app = create_app(leader, start_node=False)
        async with TestClient(TestServer(app)) as client:
            for _ in range(3):
                async with client.post("/v1/objects/counter/add", json={"args": [1]}) as response:
                    assert response.status == 200
            async with client.post("/v1/objects/counter/get", json={}) as response:
                assert response.status == 200
            async with client.get("/v1/status") as response:
                latency = (await response.json())["latency"]
    assert latency["command"]["count"] == 3 and latency["query"]["count"] == 1
    assert 0 < latency["command"]["p50"] <= latency["command"]["p99"]
