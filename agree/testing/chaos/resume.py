"""A resumed old leader under the microscope: it must neither acknowledge a write nor serve a
linearizable read before it has re-confirmed its leadership.

One round (:func:`resumed_leader_round`):

1. a value ``before`` is written through the leader ``L`` (acknowledged);
2. ``L`` is stopped (SIGSTOP) for several election timeouts -- and, with ``isolate``, cut off
   from every other node at the proxies, so that when it runs again it hears nobody;
3. the others elect a new leader, which acknowledges a write of ``after`` at log index ``i``;
4. while ``L`` is still stopped, writes and LINEARIZABLE reads are sent to ``L`` itself (plain
   HTTP to its port, no client that would go elsewhere); the kernel queues the connections;
5. ``L`` is resumed (SIGCONT): it answers the queued calls while it still believes it leads,
   in the old term; with ``isolate`` the cut is held for a few election timeouts more, then
   healed.

Checks, directly on the answers ``L`` gave after the resume:

* no read answered ``before`` or at a log index below ``i``: the new leader's acknowledged write
  is in every linearizable read that started after it;
* no write acknowledged while ``L`` was cut off (it cannot have had a quorum), and none at a log
  index not after ``i`` (an entry of the old term that the new leader's log replaced);

and every operation of the round goes into the run's history, which is checked for
linearizability like any other.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from agree.testing.chaos.cluster import ChaosCluster
from agree.testing.chaos.history import History, Op

KEY = "resume"


@dataclass
class Round:
    """What one round saw."""

    old_leader: str
    isolated: bool
    new_leader: str = ""
    after_index: int = 0
    resumed_at: float = 0.0
    healed_at: float = 0.0
    at_old_leader: list[tuple[Op, int | None]] = field(default_factory=list)  # (op, log index)
    anomalies: list[str] = field(default_factory=list)


async def _post(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], timeout: float
) -> tuple[int, Any]:
    async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
        return r.status, await r.json(content_type=None)


async def _leader(cluster: ChaosCluster, among: list[str], deadline: float) -> str:
    """A node of ``among`` that says it leads."""
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            for node in among:
                body = await cluster.status(session, node)
                if body is not None and body.get("role") == "leader":
                    return str(body["id"])
            await asyncio.sleep(0.05)
    raise TimeoutError(f"no leader among {among}")


async def resumed_leader_round(
    cluster: ChaosCluster,
    history: History,
    *,
    isolate: bool,
    values: itertools.count[int],
    processes: itertools.count[int],
    calls: int = 20,
    clock: Callable[[], float] = time.monotonic,
) -> Round:
    et = cluster.election_timeout
    old = await _leader(cluster, cluster.ids, clock() + 30)
    result = Round(old_leader=old, isolated=isolate)
    others = [n for n in cluster.ids if n != old]
    timeout = 6 * et + 2.0  # what each call may take at the node (it answers by then)

    async def call(
        session: aiohttp.ClientSession, node: str, f: str, value: int | None
    ) -> tuple[Op, int | None]:
        op = history.invoke(next(processes), f, KEY, value, clock(), node)
        if f == "read":
            url = f"{cluster.urls[node]}/v1/objects/registers/get"
            body: dict[str, Any] = {"args": [KEY], "consistency": "linearizable"}
        else:
            url = f"{cluster.urls[node]}/v1/objects/registers/write"
            body = {"args": [KEY, value]}
        body["timeout"] = timeout
        index = None
        try:
            status, answer = await _post(session, url, body, timeout + 5)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            status, answer = 0, repr(exc)[:200]
        if status == 200:
            op.type, op.result, index = "ok", answer.get("result"), answer.get("index")
        else:
            # A read that was not answered changed nothing; a write may or may not have happened.
            op.type, op.result = ("fail" if f == "read" else "info"), answer
        op.complete = clock()
        return op, index

    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        before = next(values)
        op, _ = await call(session, old, "write", before)
        if op.type != "ok":
            result.anomalies.append(f"resume: the write before the pause failed: {op.line()}")
            return result
        if isolate:
            cluster.network.partition([[old], others])
        cluster.pause(old)
        try:
            new = await _leader(cluster, others, clock() + 30)
            result.new_leader = new
            after = next(values)
            op, index = await call(session, new, "write", after)
            if op.type != "ok" or index is None:
                result.anomalies.append(f"resume: the new leader's write failed: {op.line()}")
                return result
            result.after_index = index
            # Queued at the stopped old leader: its kernel accepts, nothing answers yet.
            queued = [
                asyncio.ensure_future(
                    call(
                        session, old, "read" if k % 2 else "write", None if k % 2 else next(values)
                    )
                )
                for k in range(calls)
            ]
            await asyncio.sleep(0.3)
        finally:
            cluster.resume(old)
        result.resumed_at = clock()
        if isolate:
            await asyncio.sleep(3 * et)
            cluster.network.heal()
        result.healed_at = clock()
        result.at_old_leader = list(await asyncio.gather(*queued))
        # Afterwards the cluster serves again, through the old leader too.
        for node in (new, old):
            op, _ = await call(session, node, "read", None)
            if op.type != "ok":
                result.anomalies.append(f"resume: no read through {node} after the heal")
    result.anomalies += check_round(result, stale=before)
    return result


def check_round(result: Round, *, stale: int) -> list[str]:
    """The direct checks of the old leader's answers (see the module doc)."""
    anomalies = []
    for op, index in result.at_old_leader:
        if op.type != "ok":
            continue
        if op.f == "read" and (op.result == stale or (index or 0) < result.after_index):
            anomalies.append(
                f"resume: {op.node} served a linearizable read with the value before the new "
                f"leader's write (index {index} < {result.after_index}): {op.line()}"
            )
        if op.f == "write" and (index or 0) <= result.after_index:
            anomalies.append(
                f"resume: {op.node} acknowledged a write at index {index}, not after the new "
                f"leader's write at {result.after_index}: {op.line()}"
            )
        cut_off = result.isolated and op.complete is not None and op.complete < result.healed_at
        if op.f == "write" and cut_off:
            anomalies.append(
                f"resume: {op.node} acknowledged a write while cut off from every other node "
                f"(before {result.healed_at:.3f}): {op.line()}"
            )
    return anomalies
