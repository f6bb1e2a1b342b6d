"""One chaos run: start the cluster, run the workloads under the nemesis, heal, check.

:func:`run` returns a :class:`Report`; ``python -m agree.testing.chaos`` prints it and ends with
``chaos: seconds=S nodes=N ops=O faults=F anomalies=A``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from agree.testing.chaos.cluster import ChaosCluster, Database
from agree.testing.chaos.history import (
    History,
    check_append,
    check_bank,
    check_registers,
    check_streams,
)
from agree.testing.chaos.nemesis import ALL_FAULTS, Nemesis, node_options
from agree.testing.chaos.workloads import BANK_TOTAL, Workload

log = logging.getLogger("agree.chaos")


@dataclass
class Report:
    seconds: float
    nodes: int
    seed: int
    database: str
    ops: int = 0  # operations in the history
    checked: int = 0  # register operations the linearizability checker examined
    faults: Counter[str] = field(default_factory=Counter)
    anomalies: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    directory: Path | None = None
    notes: list[str] = field(default_factory=list)
    converged_after: float | None = None
    kinds: tuple[str, ...] = ALL_FAULTS
    commit_delay: float | None = None
    members: list[str] = field(default_factory=list)  # at the end, as the harness left them

    def summary(self) -> str:
        return (
            f"chaos: seconds={self.seconds:g} nodes={self.nodes} ops={self.ops} "
            f"faults={sum(self.faults.values())} anomalies={len(self.anomalies)}"
        )


async def _converge(cluster: ChaosCluster, deadline: float) -> tuple[bool, str]:
    """Until every member answers with the same state of every object (read locally)."""
    last = ""
    async with aiohttp.ClientSession() as session:
        while True:
            states: dict[str, tuple[Any, ...]] = {}
            members = None
            for node in cluster.ids:
                body = await cluster.status(session, node)
                if body is not None and body.get("role") == "leader":
                    members = body.get("members")
            targets = sorted(members) if isinstance(members, dict) else cluster.ids
            try:
                for node in targets:
                    states[node] = (
                        await cluster.local_read(session, node, "registers", "dump"),
                        await cluster.local_read(session, node, "log", "all"),
                        await cluster.local_read(session, node, "bank", "balances"),
                    )
                if len({repr(s) for s in states.values()}) == 1 and len(states) == len(targets):
                    return True, ""
                last = "; ".join(
                    f"{n}: {len(s[1])} appends, registers {s[0]}" for n, s in states.items()
                )
            except Exception as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                return False, last
            await asyncio.sleep(0.2)


async def run(
    *,
    seconds: float,
    nodes: int,
    seed: int,
    database: str = "sqlite",
    directory: Path | None = None,
    kinds: tuple[str, ...] = ALL_FAULTS,
    env: dict[str, str] | None = None,
    tick: float = 0.05,
    check_time_limit: float = 60.0,
    keep: bool = False,
    commit_delay: float | None = None,
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/test",
) -> Report:
    """``commit_delay``: every node's STORAGE_COMMIT_DELAY (default: one slow disk chosen by
    the seed)."""
    rng = random.Random(seed)
    report = Report(seconds=seconds, nodes=nodes, seed=seed, database=database)
    workdir = directory or Path(tempfile.mkdtemp(prefix=f"agree-chaos-{seed}-"))
    report.directory = workdir

    def note(text: str) -> None:
        stamp = time.monotonic() - started
        report.notes.append(f"{stamp:7.2f}s {text}")
        log.info("%7.2fs %s", stamp, text)

    options, static = node_options([f"n{i}" for i in range(1, nodes + 1)], rng, tick)
    if commit_delay is not None:
        for opts in options.values():
            opts.commit_delay = commit_delay
    report.faults.update(static)
    report.kinds = kinds
    report.commit_delay = commit_delay
    cluster = ChaosCluster(
        workdir,
        nodes,
        database=Database(database, workdir, postgres_url),
        rng=rng,
        options=options,
        env=env,
    )
    history = History()
    started = time.monotonic()
    try:
        await cluster.start()
        note(
            "cluster ready: "
            + ", ".join(
                f"{n} tick={o.tick_interval} commit_delay={o.commit_delay}"
                for n, o in options.items()
            )
        )
        workload = Workload(cluster, history, rng, clock=time.monotonic)
        nemesis = Nemesis(cluster, rng, kinds=kinds, note=note, workload=workload)
        workload.start()
        chaos = asyncio.ensure_future(nemesis.run())
        await asyncio.sleep(seconds)
        nemesis.stop()
        await chaos
        await nemesis.heal(final=True)
        healed = time.monotonic()
        note("healed")
        await workload.stop_writers()
        report.faults.update(nemesis.counts)
        report.anomalies += nemesis.anomalies
        # All replicas must reach the same state within 10 election timeouts of the heal
        # (plus what restarting processes takes to load, which is not Raft's time).
        if nemesis.removed:
            report.anomalies.append(f"membership: {sorted(nemesis.removed)} could not be re-added")
        members = [n for n in cluster.ids if n not in nemesis.removed]
        await cluster.wait_ready(members, timeout=60)
        budget = 10 * cluster.election_timeout + (time.monotonic() - healed)
        ok, why = await _converge(cluster, healed + budget)
        report.members = list(members)
        if ok:
            report.converged_after = time.monotonic() - healed
        else:
            report.anomalies.append(
                f"convergence: replicas differ {budget:.1f}s after the last heal: {why}"
            )
        async with aiohttp.ClientSession() as session:
            final_node = cluster.ids[0]
            final_log = await cluster.local_read(session, final_node, "log", "all")
            final_bank = await cluster.local_read(session, final_node, "bank", "balances")
        # Subscribers get the same budget to catch up with the final log.
        catch_up = time.monotonic() + 10 * cluster.election_timeout
        while time.monotonic() < catch_up and any(
            len(s.seen) < len(final_log) and not s.overflowed for s in workload.streams
        ):
            await asyncio.sleep(0.1)
        await workload.stop_watchers()
    finally:
        await cluster.close()
    report.ops = len(history.ops)
    report.outcomes = Counter(op.type for op in history.ops)
    (workdir / "history.edn").write_text(history.text())
    (workdir / "faults.txt").write_text("\n".join(report.notes) + "\n")
    anomalies, checked = await asyncio.to_thread(
        check_registers, history, time_limit=check_time_limit
    )
    report.checked = (
        checked + history.count("append") + history.count("transfer") + history.count("balances")
    )
    report.anomalies += anomalies
    report.anomalies += check_append(history, final_log)
    report.anomalies += check_bank(history, final_bank, BANK_TOTAL)
    report.anomalies += check_streams(workload.streams, final_log)
    for s in workload.streams:
        if s.overflowed:
            report.notes.append(f"watch {s.name}: resume refused (410) after {len(s.seen)} events")
    if not report.anomalies and not keep:
        cluster.remove_files()
        report.directory = None
    return report


def replay_command(report: Report, env: dict[str, str] | None = None) -> str:
    prefix = "".join(f"{k}={v} " for k, v in sorted((env or {}).items()))
    extra = " --database postgres" if report.database == "postgres" else ""
    if set(report.kinds) != set(ALL_FAULTS):
        extra += f" --faults {','.join(report.kinds)}"
    if report.commit_delay is not None:
        extra += f" --commit-delay {report.commit_delay:g}"
    return (
        f"{prefix}python -m agree.testing.chaos --seconds {report.seconds:g} "
        f"--nodes {report.nodes} --seed {report.seed}{extra}"
    )


def unsafe_env() -> dict[str, str]:
    """The negative-control switches of this process's environment, passed on to the nodes."""
    names = (
        "AGREE_UNSAFE_LOCAL_READS",
        "AGREE_UNSAFE_ACK_BEFORE_DURABLE",
        "AGREE_TESTING_ALLOW_UNSAFE",
    )
    return {k: os.environ[k] for k in names if k in os.environ}
