"""A node process's lifecycle: clean shutdown on SIGTERM/SIGINT, restart from its database,
and the watch stream across it."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable

import aiohttp
from processes import ProcessCluster, http


async def _events(response: aiohttp.ClientResponse, count: int) -> list[dict[str, object]]:
    """The next ``count`` SSE events of the watch stream, as {"id", "event", "data"}."""
    events: list[dict[str, object]] = []
    current: dict[str, object] = {}
    while len(events) < count:
        line = (await response.content.readline()).decode().rstrip("\n")
        if not line:
            if "data" in current:
                events.append(current)
            current = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(": ")
        current[field] = json.loads(value) if field == "data" else value
    return events


async def test_watch_streams_mutations_and_sigterm_ends_everything_cleanly(
    process_cluster: Callable[..., ProcessCluster],
) -> None:
    cluster = process_cluster(1)
    cluster.start_all()
    base = cluster.urls["n1"]
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + "/v1/watch/ledger?from_index=1") as watch,
    ):
        assert watch.status == 200
        assert watch.headers["Content-Type"].startswith("text/event-stream")
        for tag in ("a", "b"):
            async with session.post(
                base + "/v1/objects/ledger/append", json={"args": [tag]}
            ) as response:
                assert response.status == 200
        events = await asyncio.wait_for(_events(watch, 2), 10)
        assert [e["data"]["args"] for e in events] == [["a"], ["b"]]  # type: ignore[index]
        assert [e["event"] for e in events] == ["mutation", "mutation"]
        first = int(str(events[0]["id"]))
        # SIGTERM: the open stream ends, the process exits by itself with status 0.
        cluster.signal("n1", signal.SIGTERM)
        rest = await asyncio.wait_for(watch.content.read(), 15)
        assert rest == b""
    code = await asyncio.to_thread(cluster.procs["n1"].wait, 15)
    assert code == 0, cluster.log("n1")
    assert "node n1 stopped" in cluster.log("n1")

    # Restarted, it has everything.  A clean stop snapshots, so the mutations before it are not
    # kept as such any more: resuming from there is refused with the reason.
    cluster.start("n1")
    cluster.wait_ready(["n1"])
    assert http("POST", base + "/v1/objects/ledger/all_tags", {})[1]["result"] == ["a", "b"]
    status, body = http("GET", base + f"/v1/watch/ledger?from_index={first}")
    assert status == 410
    assert body["error"]["type"] == "subscription_overflow"
    assert body["error"]["last_index"] == first - 1
    status, body = http("GET", base + "/v1/watch/ledger?from_index=x")
    assert (status, body["error"]["type"]) == (400, "validation")
