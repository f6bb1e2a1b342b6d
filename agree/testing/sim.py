"""A deterministic simulator for the Raft core, and its command line.

Owns: running N :class:`~agree.raft.RaftNode` cores as simulated hosts on a
:class:`~agree.testing.simnet.SimNet` under faults -- crashes and restarts
from durable state, partitions of every shape, message loss, duplication and
reordering, membership changes, leadership transfers, compaction -- with a
register workload from simulated clients; checking Raft's safety properties
after every step (:mod:`agree.testing.invariants`); and checking the clients'
history for linearizability at the end (:mod:`agree.testing.linearizability`).

One seed fixes everything: the same seed, configuration and code give the
same run, so any failure replays with ``--seed X --trace``.

A *step* is one unit of simulated time: faults and client requests for the
step are decided, every live node ticks once, the messages due are delivered,
and every node's Readys are carried out (persist -> send -> apply -> reads ->
advance, as the Ready docstring orders).

    python -m agree.testing.sim --seeds 300 --nodes 5 --steps 1000
    python -m agree.testing.sim --seed 17 --nodes 5 --steps 1000 --trace
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, TextIO

from agree.errors import ClusterError, NotLeaderError
from agree.raft import (
    ConfChange,
    ConfChangeType,
    Config,
    ConfState,
    Entry,
    EntryType,
    Message,
    Role,
    Snapshot,
)
from agree.raft.node import RaftNode
from agree.testing.invariants import Invariants, Violation
from agree.testing.linearizability import (
    LINEARIZABLE,
    NOT_LINEARIZABLE,
    Operation,
    Read,
    RegisterModel,
    Write,
    check,
)
from agree.testing.simnet import NetConfig, SimNet
from agree.testing.simstore import DurableStore, StoreError

# --- configuration ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything a run depends on besides the seed.  Probabilities are per step.

    The timings make a 1000-step run see many elections, partitions and recoveries:
    heartbeats every 2 steps, election timeouts of 12-23 steps, message delays of
    1-3 steps, a fault every ~15 steps on average.
    """

    nodes: int = 5
    steps: int = 1000
    keys: int = 3
    clients: int = 4
    election_tick: int = 12
    heartbeat_tick: int = 2
    max_msg_bytes: int = 256  # small, so AppendEntries batching is exercised
    max_inflight_msgs: int = 4
    snapshot_chunk_bytes: int = 48  # small, so InstallSnapshot is sent in chunks
    net: NetConfig = field(
        default_factory=lambda: NetConfig(
            min_delay=1, max_delay=3, drop=0.02, duplicate=0.02, reorder=0.05
        )
    )
    p_request: float = 0.4  # an idle client issues an operation
    op_timeout: int = 40  # steps before a client gives up (the outcome stays unknown)
    p_partition: float = 0.02
    p_heal: float = 0.06
    p_crash: float = 0.012
    p_crash_leader: float = 0.006
    restart_after: tuple[int, int] = (3, 40)
    crash_loses_sent: float = 0.5  # a crash takes the node's in-flight messages with it
    p_torn_ready: float = 0.004  # a crash between persisting a Ready and sending its messages
    max_down: int | None = None  # crashed at once; None: a minority, (nodes - 1) // 2
    p_membership: float = 0.012
    p_transfer: float = 0.01
    p_compact: float = 0.03
    compact_min: int = 10  # applied entries beyond the snapshot before compacting
    churn: float = 1.0  # multiplies every fault probability
    pre_vote: bool | None = None  # None: chosen per seed
    check_quorum: bool | None = None  # None: chosen per seed
    check_history: bool = True

    def overrides(self, profile: str = "default") -> list[str]:
        """CLI flags that reproduce this configuration's knobs on top of ``profile``."""
        out = [] if profile == "default" else [f"--profile {profile}"]
        default = PROFILES[profile]
        for name, flag in _FLAGS.items():
            value = getattr(self, name)
            if value != getattr(default, name):
                if isinstance(value, bool):
                    out.append(f"--{flag}" if value else f"--no-{flag}")
                else:
                    out.append(f"--{flag} {value}")
        return out


_FLAGS = {"keys": "keys", "clients": "clients", "churn": "churn", "pre_vote": "pre-vote"}
_FLAGS["check_quorum"] = "check-quorum"

# Named starting points for a run's configuration (``--profile``).
PROFILES: dict[str, SimConfig] = {
    "default": SimConfig(),
    # Leaders crash often, right after they start replicating, taking their unsent
    # messages with them, and AppendEntries carry one entry each: the shape of the
    # paper's Figure 8, where committing an old-term entry by counting replicas is unsafe.
    "figure8": SimConfig(
        nodes=3,
        steps=3000,
        max_msg_bytes=1,
        max_inflight_msgs=1,
        restart_after=(1, 10),
        crash_loses_sent=1.0,
        churn=2.0,
        p_crash_leader=0.1,
    ),
}


# --- results --------------------------------------------------------------------------------


@dataclass(slots=True)
class SimStats:
    elections: int = 0  # times a node became leader
    crashes: int = 0
    restarts: int = 0
    partitions: int = 0
    heals: int = 0
    conf_changes: int = 0  # committed
    transfers: int = 0  # requested
    compactions: int = 0
    snapshots_installed: int = 0
    committed: int = 0
    ops_ok: int = 0
    ops_failed: int = 0  # refused or lost: known not to have taken effect
    ops_unknown: int = 0

    def add(self, other: SimStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def render(self) -> str:
        return " ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


@dataclass(frozen=True, slots=True)
class SimResult:
    seed: int
    steps: int  # steps actually run
    violation: str | None
    stats: SimStats
    history_verdict: str  # of the linearizability check ("" if skipped)


# --- the simulated world ----------------------------------------------------------------------

_PENDING, _OK, _FAILED, _UNKNOWN = "pending", "ok", "failed", "unknown"


@dataclass(slots=True)
class ClientOp:
    id: int
    client: int
    key: str
    write: bool
    node: str
    invoke: float
    deadline: int
    value: int | None = None  # written value, or the value read
    complete: float | None = None
    status: str = _PENDING
    index: int = 0  # a write's proposal index ...
    term: int = 0  # ... and the term it was proposed in


@dataclass(slots=True)
class Client:
    id: int
    op: ClientOp | None = None
    hint: str | None = None  # the leader it last heard of
    idle_until: int = 0  # backs off after a refusal


class SimNode:
    """A simulated host: durable store (kept across crashes) and volatile state."""

    def __init__(self, node_id: str, bootstrap: ConfState | None) -> None:
        self.id = node_id
        self.bootstrap = bootstrap
        self.store = DurableStore()
        self.core: RaftNode | None = None
        self.kv: dict[str, int] = {}
        self.applied = 0
        self.proposals: dict[int, ClientOp] = {}  # proposal index -> op
        self.reads: dict[bytes, ClientOp] = {}  # read context -> op, before its ReadState
        self.waiting_reads: list[tuple[int, ClientOp]] = []  # (read index, op)
        self.restart_at: int | None = None
        self.gone = False  # removed from the cluster and shut down for good
        self.role = Role.FOLLOWER
        self.role_term = 0
        self.crash_after_persist = False


def _encode_write(key: str, op_id: int) -> bytes:
    return f"{key}={op_id}".encode()


def _decode_write(data: bytes) -> tuple[str, int]:
    key, _, value = data.decode().partition("=")
    return key, int(value)


def _encode_kv(kv: dict[str, int]) -> bytes:
    return json.dumps(kv, sort_keys=True, separators=(",", ":")).encode()


def _by_dst(msg: Message) -> str:
    return msg.dst


def _digest(kv: dict[str, int]) -> int:
    return hash(frozenset(kv.items()))


class Simulation:
    """One seeded run.  ``run()`` returns its :class:`SimResult`."""

    def __init__(
        self,
        seed: int,
        config: SimConfig,
        *,
        trace: Callable[[str], None] | None = None,
        trace_messages: bool = False,
    ) -> None:
        self.seed = seed
        self.cfg = config
        self.rng = random.Random(seed)
        self._trace = trace
        self._trace_messages = trace is not None and trace_messages
        self.pre_vote = self.rng.random() < 0.7 if config.pre_vote is None else config.pre_vote
        self.check_quorum = (
            self.rng.random() < 0.7 if config.check_quorum is None else config.check_quorum
        )
        self.net: SimNet[Message] = SimNet(random.Random(self.rng.getrandbits(64)), config.net)
        self.inv = Invariants()
        self.stats = SimStats()
        self.now = 0
        self._seq = 0
        self._next_id = config.nodes + 1
        ids = [f"n{i}" for i in range(1, config.nodes + 1)]
        self.initial = ConfState(voters=frozenset(ids))
        self.nodes: dict[str, SimNode] = {i: SimNode(i, self.initial) for i in ids}
        self.stores = {i: n.store for i, n in self.nodes.items()}
        self.clients = [Client(c) for c in range(config.clients)]
        self.ops: list[ClientOp] = []
        self._op_ids = 0
        self._applied_ops: dict[int, int] = {}  # op id -> index it was committed at
        self._lost: set[int] = set()  # writes known never to apply
        self._digests: dict[int, int] = {}  # applied index -> state machine digest
        self._removals: dict[str, int] = {}  # node -> step to shut it down
        self._applied_max = 0  # the highest index any node applied
        if trace is not None:
            trace(
                f"seed {seed}: nodes={config.nodes} steps={config.steps} "
                f"pre_vote={self.pre_vote} check_quorum={self.check_quorum}"
            )
        for node in self.nodes.values():
            self._start(node)

    # -- helpers ------------------------------------------------------------------------------

    def _log(self, node: str, text: str) -> None:
        if self._trace is not None:
            self._trace(f"{self.now:5d} {node:>4} {text}")

    def _time(self) -> float:
        # Distinct, ordered event times: the step plus the event's rank within it.
        self._seq += 1
        return self.now + self._seq / 10_000

    def _live(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.core is not None]

    def _leader(self) -> SimNode | None:
        best: SimNode | None = None
        best_term = 0
        for n in self._live():
            assert n.core is not None
            if n.core.role is Role.LEADER and (best is None or n.core.term > best_term):
                best, best_term = n, n.core.term
        return best

    def _chance(self, p: float) -> bool:
        return self.rng.random() < p * self.cfg.churn

    # -- node lifecycle -----------------------------------------------------------------------

    def _start(self, node: SimNode) -> None:
        cfg = self.cfg
        config = Config(
            id=node.id,
            election_tick=cfg.election_tick,
            heartbeat_tick=cfg.heartbeat_tick,
            max_msg_bytes=cfg.max_msg_bytes,
            max_inflight_msgs=cfg.max_inflight_msgs,
            snapshot_chunk_bytes=cfg.snapshot_chunk_bytes,
            pre_vote=self.pre_vote,
            check_quorum=self.check_quorum,
        )
        store = node.store
        core = RaftNode(
            config,
            rng=random.Random(self.rng.getrandbits(64)),
            persisted=store.load(),
            bootstrap=node.bootstrap,
        )
        node.core = core
        snap = store.snapshot
        node.kv = json.loads(snap.data) if snap is not None else {}
        node.applied = store.snap_index
        node.role, node.role_term = core.role, core.term
        status = core.status()
        self.inv.restarted(node.id, store, status.term, status.vote)

    def _crash(self, node: SimNode, why: str) -> None:
        node.core = None
        node.kv = {}
        node.applied = 0
        for op in [*node.proposals.values(), *node.reads.values()]:
            self._unknown(op)
        for _, op in node.waiting_reads:
            self._unknown(op)
        node.proposals.clear()
        node.reads.clear()
        node.waiting_reads.clear()
        self._log(node.id, why)

    # -- client operations ------------------------------------------------------------------

    def _finish(self, op: ClientOp, status: str) -> None:
        if op.status != _PENDING:
            return
        op.status = status
        if status == _OK:
            op.complete = self._time()
            self.stats.ops_ok += 1
        elif status == _FAILED:
            self.stats.ops_failed += 1
            self.clients[op.client].idle_until = self.now + self.rng.randint(1, 4)
        else:
            self.stats.ops_unknown += 1
        self.clients[op.client].op = None

    def _unknown(self, op: ClientOp) -> None:
        self._finish(op, _UNKNOWN)

    def _issue(self, client: Client, *, redirect: bool = True) -> None:
        """Start an operation; a refusal naming the leader is retried there once."""
        live = [n for n in self._live() if not n.gone]
        if not live:
            return
        cfg = self.cfg
        write = self.rng.random() < 0.5
        key = f"k{self.rng.randrange(cfg.keys)}"
        hinted = self.nodes.get(client.hint) if client.hint else None
        if write and hinted is not None and hinted.core is not None:
            node = hinted
        else:
            node = self.rng.choice(live)
        core = node.core
        assert core is not None
        self._op_ids += 1
        op = ClientOp(
            self._op_ids, client.id, key, write, node.id, self._time(), self.now + cfg.op_timeout
        )
        self.ops.append(op)
        client.op = op
        try:
            if write:
                op.value = op.id
                op.term = core.term
                op.index = core.propose(_encode_write(key, op.id))
                node.proposals[op.index] = op
                self._log(node.id, f"client {client.id} write {key}={op.id} at {op.index}")
            else:
                core.read_index(str(op.id).encode())
                node.reads[str(op.id).encode()] = op
                self._log(node.id, f"client {client.id} read {key} (op {op.id})")
        except NotLeaderError as exc:
            client.hint = exc.leader_id
            self._finish(op, _FAILED)
            self._log(node.id, f"client {client.id} op {op.id} refused: not leader "
                               f"(leader {exc.leader_id})")
            if redirect and exc.leader_id is not None:
                self._issue(client, redirect=False)
        except ClusterError as exc:
            self._finish(op, _FAILED)
            self._log(node.id, f"client {client.id} op {op.id} refused: {type(exc).__name__}")

    def _clients(self) -> None:
        for client in self.clients:
            op = client.op
            if op is not None and self.now >= op.deadline:
                self._log(op.node, f"client {client.id} op {op.id} timed out")
                node = self.nodes[op.node]
                node.reads.pop(str(op.id).encode(), None)
                if op.write:
                    node.proposals.pop(op.index, None)
                node.waiting_reads = [(i, o) for i, o in node.waiting_reads if o is not op]
                self._unknown(op)
            if (
                client.op is None
                and client.idle_until <= self.now
                and self.rng.random() < self.cfg.p_request
            ):
                self._issue(client)

    def history(self) -> list[Operation[Any, Any]]:
        out: list[Operation[Any, Any]] = []
        for op in self.ops:
            if op.status == _FAILED:
                continue
            done = op.complete if op.status == _OK else None
            inp = Write(op.value) if op.write else Read()
            out.append(Operation(op.client, op.key, inp, None if op.write else op.value,
                                 op.invoke, done))
        return out

    # -- faults -------------------------------------------------------------------------------

    def _faults(self) -> None:
        cfg = self.cfg
        rng = self.rng
        for node in self.nodes.values():
            if node.restart_at is not None and node.restart_at <= self.now and not node.gone:
                node.restart_at = None
                self._start(node)
                self.stats.restarts += 1
                self._log(node.id, f"restarts (term {node.store.hard.term})")
        for node_id, when in list(self._removals.items()):
            if when <= self.now:
                del self._removals[node_id]
                node = self.nodes[node_id]
                if node.core is not None:
                    self._crash(node, "shut down (removed from the cluster)")
                node.gone = True
                node.restart_at = None
        members = [n for n in self.nodes.values() if not n.gone]
        if self.net.partitioned:
            if rng.random() < cfg.p_heal:
                self.net.heal()
                self.stats.heals += 1
                self._log("net", "heals")
        elif self._chance(cfg.p_partition):
            self._partition([n.id for n in members])
        down = sum(1 for n in members if n.core is None)
        max_down = (cfg.nodes - 1) // 2 if cfg.max_down is None else cfg.max_down
        if down < max_down:
            target: SimNode | None = None
            if self._chance(cfg.p_crash):
                live = [n for n in members if n.core is not None]
                target = rng.choice(live) if live else None
            elif self._chance(cfg.p_crash_leader):
                target = self._leader()
            elif self._chance(cfg.p_torn_ready):
                live = [n for n in members if n.core is not None]
                if live:
                    rng.choice(live).crash_after_persist = True
            if target is not None:
                self._crash(target, "crashes")
                if rng.random() < cfg.crash_loses_sent:
                    self.net.discard_from(target.id)
                target.restart_at = self.now + rng.randint(*cfg.restart_after)
                self.stats.crashes += 1
        leader = self._leader()
        if leader is not None:
            if self._chance(cfg.p_membership):
                self._membership(leader)
            if self._chance(cfg.p_transfer):
                self._transfer(leader)
        if self._chance(cfg.p_compact):
            candidates = [
                n
                for n in members
                if n.core is not None and n.applied - n.store.snap_index >= cfg.compact_min
            ]
            if candidates:
                self._compact(rng.choice(candidates))

    def _partition(self, ids: list[str]) -> None:
        rng = self.rng
        ids = sorted(ids)
        rng.shuffle(ids)
        shape = rng.choice(("split", "isolate", "one-way", "bridge"))
        leader = self._leader()
        if shape == "isolate" and leader is not None:
            self.net.isolate(leader.id, ids)
            desc = f"isolates leader {leader.id}"
        elif shape == "one-way" and len(ids) >= 2:
            victim = leader.id if leader is not None and rng.random() < 0.5 else ids[0]
            others = [i for i in ids if i != victim]
            if rng.random() < 0.5:
                self.net.cut_one_way([victim], others)
                desc = f"cuts {victim} -> others"
            else:
                self.net.cut_one_way(others, [victim])
                desc = f"cuts others -> {victim}"
        elif shape == "bridge" and len(ids) >= 3:
            mid = ids[0]
            rest = ids[1:]
            k = rng.randint(1, len(rest) - 1) if len(rest) > 1 else 1
            left, right = [mid, *rest[:k]], [mid, *rest[k:]]
            self.net.bridge(left, right, mid)
            desc = f"bridge {sorted(left)} | {sorted(right)} via {mid}"
        else:
            k = rng.randint(1, max(1, len(ids) - 1))
            self.net.partition(ids[:k], ids[k:])
            desc = f"partitions {sorted(ids[:k])} | {sorted(ids[k:])}"
        self.stats.partitions += 1
        self._log("net", desc)

    def _membership(self, leader: SimNode) -> None:
        core = leader.core
        assert core is not None
        status = core.status()
        conf = status.conf
        change: ConfChange
        new_node: SimNode | None = None
        if conf.learners:
            learner = sorted(conf.learners)[0]
            match = status.progress.get(learner, (0, 0))[0]
            if match < status.commit - 3:
                return
            change = ConfChange(ConfChangeType.PROMOTE, learner)
        elif len(conf.voters) >= self.cfg.nodes:
            change = ConfChange(ConfChangeType.REMOVE, self.rng.choice(sorted(conf.voters)))
        else:
            node_id = f"n{self._next_id}"
            new_node = SimNode(node_id, None)
            change = ConfChange(ConfChangeType.ADD_LEARNER, node_id)
        try:
            index = core.propose_conf_change(change)
        except ClusterError as exc:
            self._log(leader.id, f"conf change {change.type.value} {change.node_id} refused: "
                                 f"{type(exc).__name__}")
            return
        if new_node is not None:
            self._next_id += 1
            self.nodes[new_node.id] = new_node
            self.stores[new_node.id] = new_node.store
            self._start(new_node)
        self._log(leader.id, f"proposes {change.type.value} {change.node_id} at {index}")

    def _transfer(self, leader: SimNode) -> None:
        core = leader.core
        assert core is not None
        targets = sorted(v for v in core.conf.voters if v != leader.id)
        if not targets:
            return
        target = self.rng.choice(targets)
        try:
            core.transfer_leader(target)
        except ClusterError as exc:
            self._log(leader.id, f"transfer to {target} refused: {type(exc).__name__}")
            return
        self.stats.transfers += 1
        self._log(leader.id, f"transfers leadership to {target}")

    def _compact(self, node: SimNode) -> None:
        core = node.core
        assert core is not None
        if core.applied_index != node.applied:
            raise Violation(
                "applied index disagrees",
                node.id,
                f"core {core.applied_index}, host {node.applied}",
            )
        snap = core.compact(node.applied, _encode_kv(node.kv))
        if snap.meta.index != node.applied:
            raise Violation("compaction", node.id, f"asked {node.applied}, got {snap.meta}")
        expect = node.store.term_at(node.applied)
        if expect is not None and snap.meta.term != expect:
            raise Violation(
                "compaction", node.id, f"snapshot term {snap.meta.term}, stored term {expect}"
            )
        try:
            node.store.compact(snap)
        except StoreError as exc:
            raise Violation("compaction", node.id, str(exc)) from exc
        self.stats.compactions += 1
        self._log(node.id, f"compacts to {snap.meta.index}")

    # -- the Ready loop ---------------------------------------------------------------------

    def _process(self, node: SimNode) -> None:
        core = node.core
        assert core is not None
        store = node.store
        for _ in range(64):
            if not core.has_ready():
                return
            rd = core.ready()
            # 1. persist
            before = store.hard
            try:
                if rd.snapshot is not None:
                    store.save_snapshot(rd.snapshot)
                if rd.hard_state is not None:
                    store.hard = rd.hard_state
                store.append(rd.entries)
            except StoreError as exc:
                raise Violation("storage contract", node.id, str(exc)) from exc
            self.inv.persisted(node.id, store, before, rd.snapshot, rd.entries)
            if store.hard.commit > before.commit:
                self._log(node.id, f"commit {before.commit} -> {store.hard.commit}")
            if node.crash_after_persist:
                node.crash_after_persist = False
                self._crash(node, "crashes after persisting a Ready, before sending it")
                node.restart_at = self.now + self.rng.randint(*self.cfg.restart_after)
                self.stats.crashes += 1
                return
            # 2. send
            # Sorted by destination (stable, so each peer's stream keeps its order): the
            # core may build a Ready's messages by iterating a set, whose order varies
            # with the process's hash seed, and the network's random draws must not.
            for msg in sorted(rd.messages, key=_by_dst):
                if msg.src != node.id:
                    raise Violation("message source", node.id, f"sends as {msg.src}")
                self.inv.sent(msg, store, self.stores)
                self.net.send(msg, self.now)
                if self._trace_messages:
                    self._log(node.id, f"-> {msg}")
            # 3. apply
            if rd.snapshot is not None:
                self._restore(node, rd.snapshot)
            for entry in rd.committed_entries:
                self._apply(node, entry)
            # 4. reads
            for rs in rd.read_states:
                op = node.reads.pop(rs.context, None)
                if op is not None:
                    node.waiting_reads.append((rs.index, op))
            self._serve_reads(node)
            if rd.soft_state is not None:
                self._log(node.id, f"{rd.soft_state.role.value} (leader {rd.soft_state.leader_id}, "
                                   f"term {core.term})")
            core.advance(rd)
        raise Violation("ready loop", node.id, "still has a Ready after 64 rounds")

    def _restore(self, node: SimNode, snap: Snapshot) -> None:
        self.inv.restored(node.id, snap, node.applied)
        node.kv = json.loads(snap.data)
        node.applied = snap.meta.index
        known = self._digests.get(snap.meta.index)
        if known is not None and known != _digest(node.kv):
            raise Violation(
                "snapshot content", node.id, f"state at {snap.meta.index} differs from applied"
            )
        self.stats.snapshots_installed += 1
        self._log(node.id, f"installs snapshot at {snap.meta.index} term {snap.meta.term}")

    def _apply(self, node: SimNode, entry: Entry) -> None:
        new = entry.index > self._applied_max
        self._applied_max = max(self._applied_max, entry.index)
        self.inv.applied(node.id, node.applied, entry)
        node.applied = entry.index
        if entry.type == EntryType.NORMAL and entry.data:
            key, op_id = _decode_write(entry.data)
            node.kv[key] = op_id
            at = self._applied_ops.setdefault(op_id, entry.index)
            if at != entry.index:
                raise Violation(
                    "write applied twice", node.id, f"op {op_id} at {at} and {entry.index}"
                )
            if op_id in self._lost:
                raise Violation("lost proposal applied", node.id, f"op {op_id} at {entry.index}")
        elif entry.type == EntryType.CONF_CHANGE and new:
            change = ConfChange.decode(entry.data)
            self.stats.conf_changes += 1
            self._log(node.id, f"committed {change.type.value} {change.node_id} at {entry.index}")
            if change.type is ConfChangeType.REMOVE:
                self._removals[change.node_id] = self.now + 3 * self.cfg.election_tick
        if entry.index not in self._digests:
            self._digests[entry.index] = _digest(node.kv)
        op = node.proposals.pop(entry.index, None)
        if op is not None:
            if entry.term == op.term:
                if entry.data != _encode_write(op.key, op.id):
                    raise Violation(
                        "proposal replaced",
                        node.id,
                        f"op {op.id} proposed at {entry.index} term {op.term}, "
                        f"another entry applied there in that term",
                    )
                self._finish(op, _OK)
                self._log(node.id, f"client {op.client} write {op.key}={op.id} ok")
            else:
                # The core's contract: a different term at the index means the proposal
                # was overwritten and will never apply.
                if op.id in self._applied_ops:
                    raise Violation(
                        "lost proposal applied", node.id, f"op {op.id} reported lost but applied"
                    )
                self._lost.add(op.id)
                self._finish(op, _FAILED)
                self._log(node.id, f"client {op.client} write {op.key}={op.id} lost")

    def _serve_reads(self, node: SimNode) -> None:
        if not node.waiting_reads:
            return
        keep = []
        for index, op in node.waiting_reads:
            if node.applied >= index:
                op.value = node.kv.get(op.key)
                self._finish(op, _OK)
                self._log(node.id, f"client {op.client} read {op.key} -> {op.value} "
                                   f"(read index {index})")
            else:
                keep.append((index, op))
        node.waiting_reads = keep

    # -- the main loop ------------------------------------------------------------------------

    def step(self) -> None:
        self.now += 1
        self._seq = 0
        self._faults()
        self._clients()
        live = self._live()
        for node in live:
            assert node.core is not None
            node.core.tick()
        for msg in self.net.deliver(self.now):
            dst = self.nodes.get(msg.dst)
            if dst is not None and dst.core is not None:
                if self._trace_messages:
                    self._log(dst.id, f"<- {type(msg).__name__} from {msg.src}")
                dst.core.step(msg)
        for node in self._live():
            self._process(node)
        for node in self._live():
            core = node.core
            assert core is not None
            role, term = core.role, core.term
            if role is Role.LEADER:
                new = node.role is not Role.LEADER or node.role_term != term
                self.inv.leader(node.id, term, node.store, new=new)
                if new:
                    self.stats.elections += 1
            node.role, node.role_term = role, term

    def run(self) -> SimResult:
        violation: str | None = None
        verdict = ""
        try:
            while self.now < self.cfg.steps:
                self.step()
        except Violation as exc:
            violation = f"step {self.now}: {exc}"
            self._log("!!", f"VIOLATION {exc}")
        if violation is None and self.cfg.check_history:
            for op in self.ops:
                if op.status == _PENDING:
                    self._unknown(op)
            result = check(RegisterModel(), self.history())
            verdict = result.verdict
            if result.verdict == NOT_LINEARIZABLE:
                violation = "history not linearizable:\n" + result.explanation
                self._log("!!", violation)
            elif result.verdict != LINEARIZABLE:
                self._log("!!", f"history check inconclusive: {result.explanation}")
        self.stats.committed = self.inv.commit_index
        return SimResult(self.seed, self.now, violation, self.stats, verdict)


def run_seed(
    seed: int,
    config: SimConfig,
    trace: Callable[[str], None] | None = None,
    *,
    trace_messages: bool = False,
) -> SimResult:
    """Run one seed; any unexpected exception from the core is reported as a violation."""
    sim: Simulation | None = None
    try:
        sim = Simulation(seed, config, trace=trace, trace_messages=trace_messages)
        return sim.run()
    except Violation as exc:
        return SimResult(seed, sim.now if sim else 0, f"at start: {exc}", SimStats(), "")
    except Exception as exc:  # a crash in the core is a finding, not a simulator failure
        import traceback

        step = sim.now if sim is not None else 0
        detail = "".join(traceback.format_exception(exc)).rstrip()
        return SimResult(seed, step, f"step {step}: exception\n{detail}", SimStats(), "")


def _run_one(args: tuple[int, SimConfig]) -> SimResult:
    return run_seed(*args)


def run_many(
    seeds: Sequence[int], config: SimConfig, *, workers: int = 2
) -> Iterator[SimResult]:
    """Results in seed order; ``workers`` > 1 runs seeds in forked worker processes."""
    jobs = [(s, config) for s in seeds]
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_run_one, jobs)
        return
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        yield from pool.imap(_run_one, jobs, chunksize=4)


# --- command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m agree.testing.sim",
        description="Run the deterministic Raft simulator over a range of seeds.",
    )
    p.add_argument("--seeds", type=int, default=100, help="run seeds 0..N-1")
    p.add_argument("--seed", type=int, default=None, help="run only this seed")
    p.add_argument("--nodes", type=int, default=None, help="default 5")
    p.add_argument("--steps", type=int, default=None, help="default 1000")
    p.add_argument("--trace", action="store_true", help="print a readable trace of the run")
    p.add_argument(
        "--trace-messages", action="store_true", help="with --trace: every message sent/received"
    )
    p.add_argument("--profile", choices=sorted(PROFILES), default="default")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--keys", type=int, default=None)
    p.add_argument("--clients", type=int, default=None)
    p.add_argument("--churn", type=float, default=None, help="multiply fault probabilities")
    p.add_argument("--pre-vote", dest="pre_vote", action=argparse.BooleanOptionalAction)
    p.add_argument("--check-quorum", dest="check_quorum", action=argparse.BooleanOptionalAction)
    return p


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    base = PROFILES[args.profile]
    given = {
        "nodes": args.nodes,
        "steps": args.steps,
        "keys": args.keys,
        "clients": args.clients,
        "churn": args.churn,
        "pre_vote": args.pre_vote,
        "check_quorum": args.check_quorum,
    }
    config = replace(base, **{k: v for k, v in given.items() if v is not None})
    seeds = [args.seed] if args.seed is not None else list(range(args.seeds))

    def echo(line: str) -> None:
        print(line, file=out)

    started = time.perf_counter()
    violations = 0
    totals = SimStats()
    if args.trace:
        results: Iterator[SimResult] = iter(
            [run_seed(s, config, echo, trace_messages=args.trace_messages) for s in seeds]
        )
    else:
        results = run_many(seeds, config, workers=args.workers)
    for res in results:
        totals.add(res.stats)
        if res.violation is not None:
            violations += 1
            replay = " ".join(
                [
                    "python -m agree.testing.sim",
                    f"--seed {res.seed} --nodes {config.nodes} --steps {config.steps}",
                    *config.overrides(args.profile),
                    "--trace",
                ]
            )
            echo(f"seed {res.seed}: VIOLATION {res.violation}")
            echo(f"  replay: {replay}")
    elapsed = time.perf_counter() - started
    echo(f"totals: {totals.render()}")
    echo(f"{len(seeds)} seeds in {elapsed:.1f} s ({len(seeds) / elapsed:.1f} seeds/s)")
    echo(
        f"sim: seeds={len(seeds)} nodes={config.nodes} steps={config.steps} "
        f"violations={violations}"
    )
    return 1 if violations else 0


def _reexec_with_fixed_hash_seed() -> None:
    # str hashes (and so set iteration order) vary per process unless PYTHONHASHSEED is
    # fixed; a replay must iterate sets in the same order as the failing run did.
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable, "-m", "agree.testing.sim", *sys.argv[1:]], env)


if __name__ == "__main__":
    _reexec_with_fixed_hash_seed()
    sys.exit(main())
