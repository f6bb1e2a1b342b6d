"""The fault schedule: one fault at a time, drawn from the seed, held, then healed.

Network faults act on the link proxies (partitions of Jepsen's shapes, one-way cuts, loss,
delay with jitter, slow links, connection resets); process faults on the node processes
(SIGKILL and restart, SIGSTOP/SIGCONT for longer than an election timeout -- and a leader's,
with calls queued at it and its answers checked directly (:mod:`.resume`) --, membership churn:
remove a node or the leader and add it back empty; replace one by a node with a brand-new id;
transfer leadership).  Clock skew and slow
disks are chosen per node before the start (:func:`node_options`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Callable

import aiohttp

from agree.client import AsyncClient
from agree.errors import AgreeError
from agree.testing.chaos import proxy as shapes
from agree.testing.chaos.cluster import ChaosCluster, NodeOptions
from agree.testing.chaos.resume import resumed_leader_round
from agree.testing.chaos.workloads import Workload

log = logging.getLogger("agree.chaos")

NETWORK_FAULTS = (
    "partition-isolate",
    "partition-halves",
    "partition-ring",
    "partition-bridge",
    "one-way",
    "loss",
    "delay",
    "slow-link",
    "reset",
)
PROCESS_FAULTS = (
    "kill",
    "kill-leader",
    "kill-majority",
    "pause",
    "pause-leader",
    "resume-check",
    "membership",
    "replace",
    "transfer",
)
ALL_FAULTS = NETWORK_FAULTS + PROCESS_FAULTS


def node_options(
    ids: list[str], rng: random.Random, base_tick: float
) -> tuple[dict[str, NodeOptions], Counter[str]]:
    """Per-node tick intervals and commit delays: one node's clock up to twice as fast, one
    node's disk slow (both drawn from the seed)."""
    options = {n: NodeOptions(tick_interval=base_tick) for n in ids}
    counts: Counter[str] = Counter()
    fast = rng.choice(ids)
    options[fast].tick_interval = round(base_tick / rng.uniform(1.3, 2.0), 4)
    counts["fast-clock"] += 1
    slow = rng.choice(ids)
    options[slow].commit_delay = round(rng.uniform(0.005, 0.03), 4)
    counts["slow-disk"] += 1
    return options, counts


class Nemesis:
    def __init__(
        self,
        cluster: ChaosCluster,
        rng: random.Random,
        *,
        kinds: tuple[str, ...] = ALL_FAULTS,
        note: Callable[[str], None] = lambda text: None,
        workload: Workload | None = None,
    ) -> None:
        """``workload``: whose history the resumed-leader rounds (``resume-check``) add to."""
        self.cluster = cluster
        self.workload = workload
        self.anomalies: list[str] = []  # found by the faults' own checks
        self.rng = rng
        self.kinds = tuple(k for k in kinds if self._possible(k))
        self.counts: Counter[str] = Counter()
        self.note = note
        self._stop = asyncio.Event()
        self.removed: set[str] = set()  # removed (or brand new) and not (yet) added
        self.retired: list[str] = []  # removed for good, their processes stopped

    def _possible(self, kind: str) -> bool:
        n = len(self.cluster.ids)
        if kind == "partition-ring":
            return n >= 5  # with 3 nodes every pair shares a majority: nothing would be cut
        if kind == "resume-check":
            return self.workload is not None and n >= 3
        return not (kind in ("membership", "replace") and n < 3)

    def stop(self) -> None:
        self._stop.set()

    async def _hold(self, low: float, high: float) -> None:
        et = self.cluster.election_timeout
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.rng.uniform(low, high) * et)

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            while not self._stop.is_set():
                await self._hold(2, 6)  # quiet time between faults
                if self._stop.is_set():
                    break
                kind = self.rng.choice(self.kinds)
                try:
                    await self._inject(kind, session)
                except Exception as exc:  # a fault that could not be injected is reported
                    self.note(f"fault {kind} failed to inject: {exc!r}")
                finally:
                    await self.heal()

    async def _inject(self, kind: str, session: aiohttp.ClientSession) -> None:
        c, rng, net = self.cluster, self.rng, self.cluster.network
        ids = c.ids
        leader = await c.leader(session)
        self.counts[kind] += 1
        if kind.startswith("partition-"):
            shape = kind.removeprefix("partition-")
            if shape == "isolate":
                groups = shapes.isolate(
                    ids, leader if leader and rng.random() < 0.5 else rng.choice(ids)
                )
            elif shape == "halves":
                groups = shapes.halves(ids, rng)
            elif shape == "ring":
                groups = shapes.ring(ids, rng)
            else:
                groups = shapes.bridge(ids, rng)
            net.partition(groups)
            self.note(f"partition {shape} {groups}")
            await self._hold(2, 8)
        elif kind == "one-way":
            a, b = rng.sample(ids, 2)
            if leader is not None and rng.random() < 0.5:
                a, b = leader, rng.choice([n for n in ids if n != leader])
            net.cut(a, b)
            self.note(f"one-way {a} -/-> {b}")
            await self._hold(2, 8)
        elif kind in ("loss", "delay", "slow-link"):
            pairs = [(a, b) for a in ids for b in ids if a != b]
            links = rng.sample(pairs, k=max(1, len(pairs) // 2))
            for link in links:
                for faults in (net.link(*link).up, net.link(*link).down):
                    if kind == "loss":
                        faults.loss = rng.uniform(0.1, 0.5)
                    elif kind == "delay":
                        faults.delay = rng.uniform(0.01, 0.15)
                        faults.jitter = faults.delay / 2
                    else:
                        faults.bandwidth = rng.choice([5_000, 20_000, 100_000])
            self.note(f"{kind} on {len(links)} links")
            await self._hold(3, 10)
        elif kind == "reset":
            node = rng.choice(ids)
            resets = net.reset_all(node)
            self.note(f"reset {resets} connections of {node}")
        elif kind in ("kill", "kill-leader"):
            node = leader if kind == "kill-leader" and leader else rng.choice(ids)
            c.kill(node)
            self.note(f"SIGKILL {node}")
            await self._hold(1, 5)
            c.start_node(node)
        elif kind in ("kill-majority", "kill-all"):
            # The leader and enough others to lose the quorum (or every node), at once, as a
            # power cut would; restarted in random order.
            rest = [n for n in ids if n != leader]
            rng.shuffle(rest)
            victims = ([leader] if leader else []) + rest
            if kind == "kill-majority":
                victims = victims[: len(ids) // 2 + 1]
            for node in victims:
                c.kill(node)
            self.note(f"SIGKILL {victims}")
            await self._hold(1, 3)
            rng.shuffle(victims)
            for node in victims:
                c.start_node(node)
                await asyncio.sleep(rng.uniform(0, c.election_timeout))
        elif kind in ("pause", "pause-leader"):
            node = leader if kind == "pause-leader" and leader else rng.choice(ids)
            c.pause(node)
            self.note(f"SIGSTOP {node}")
            await self._hold(1.5, 6)  # longer than an election timeout
            c.resume(node)
        elif kind == "resume-check":
            assert self.workload is not None
            isolate = rng.random() < 0.5
            result = await resumed_leader_round(
                c,
                self.workload.history,
                isolate=isolate,
                values=self.workload.values,
                processes=self.workload.process_ids,
                calls=10,
            )
            self.note(
                f"SIGSTOP {result.old_leader}{' cut off' if isolate else ''}, "
                f"{result.new_leader} elected, SIGCONT with 10 calls queued: "
                f"{Counter(op.type for op, _ in result.at_old_leader)}"
            )
            self.anomalies += result.anomalies
        elif kind == "transfer":
            target = rng.choice(ids)
            self.note(f"transfer leadership to {target}")
            client = AsyncClient(list(c.urls.values()), timeout=5)
            try:
                with contextlib.suppress(AgreeError):
                    await client.transfer_leader(target)
            finally:
                await client.close()
        elif kind == "membership":
            await self._churn(leader)
        elif kind == "replace":
            await self._replace(leader)

    async def _churn(self, leader: str | None) -> None:
        """Remove a node (the leader half the time), then add it back with an empty database."""
        c, rng = self.cluster, self.rng
        node = leader if leader and rng.random() < 0.5 else rng.choice(c.ids)
        if not await self._remove(node, leader):
            return
        self.removed.add(node)
        c.kill(node)
        c.database.wipe(node)
        await self._hold(1, 3)
        c.start_node(node)
        await self._add_back(node)

    async def _replace(self, leader: str | None) -> None:
        """A node with a brand-new id joins (started empty, added), then an old one leaves --
        the leader half the time -- and its process is stopped for good: over a run the
        membership moves to ids the cluster never had at its start."""
        c, rng = self.cluster, self.rng
        new = await c.new_node()
        self.note(f"start {new}, a new id, empty")
        c.ids.append(new)  # the harness's view first, so a heal restarts it if it is killed
        c.start_node(new)
        self.removed.add(new)  # until it is a member
        await self._add_back(new)
        if new in self.removed:
            return  # not added: the final heal tries again, and reports it if it cannot
        await self._hold(1, 3)
        old = leader if leader and rng.random() < 0.5 else rng.choice(c.ids[:-1])
        if old == new or not await self._remove(old, leader):
            return
        c.ids.remove(old)
        c.kill(old)
        self.retired.append(old)

    async def _remove(self, node: str, leader: str | None) -> bool:
        """Remove ``node`` from the membership (asking the others); whether it is out."""
        c = self.cluster
        others = [c.urls[n] for n in c.ids if n != node]
        self.note(f"remove {node}" + (" (the leader)" if node == leader else ""))
        client = AsyncClient(others, timeout=10)
        try:
            await client.remove_member(node)
        except AgreeError as exc:
            try:
                members = await client.members()
            except AgreeError:
                members = {node: {}}
            if node in members:
                self.note(f"remove {node} did not happen ({exc!r}); leaving it")
                return False
        finally:
            await client.close()
        return True

    async def _add_back(self, node: str) -> None:
        c = self.cluster
        others = [c.urls[n] for n in c.ids if n != node]
        self.note(f"add {node}")
        for _ in range(10):
            # A fresh client each time: one that chased a leader through a dead address
            # would keep trying it.
            adder = AsyncClient(others, timeout=5)  # no connect(): it would chase leader_url
            try:
                if node not in await adder.members():
                    await adder.add_member(node, c.peer_url(node))
                self.removed.discard(node)
                return
            except AgreeError as exc:
                self.note(f"add {node}: {exc!r}; retrying")
            finally:
                await adder.close()
            await asyncio.sleep(c.election_timeout)

    async def heal(self, *, final: bool = False) -> None:
        """Every link healed, every paused node resumed, every dead node restarted; ``final``:
        every removed node added back too."""
        c = self.cluster
        c.network.heal()
        for node in list(c.paused):
            c.resume(node)
        for node in c.ids:
            if not c.running(node):
                c.start_node(node)
        if final:
            for node in sorted(self.removed):
                await self._add_back(node)
