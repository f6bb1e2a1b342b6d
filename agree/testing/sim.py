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

A *step* is one unit of true time: faults and client requests for the step
are decided, every live node's clock advances (a node ticks 0 or 1 times,
by its own drifting rate, :mod:`agree.testing.simclock`), the messages due
are delivered, and every node's Readys are carried out (persist -> send ->
apply -> reads -> advance, as the Ready docstring orders) -- unless the node
crashes in the middle of one.  Nodes may write different snapshot bytes for
the same state (:mod:`agree.testing.simstate`), and leaders may serve reads
from a lease when the core's ``lease_read`` is on.

After ``steps`` the faults heal (crashed nodes restart, partitions end) and the
cluster must make progress within ``settle`` steps: commit something new and
bring every member up to date.  A seed that does not is reported as stuck.

Scripted scenarios (:mod:`agree.testing.scenarios`) drive the same world
step by step to reproduce named defects on purpose.

    python -m agree.testing.sim --seeds 300 --nodes 5 --steps 1000
    python -m agree.testing.sim --seeds 300 --profile skew
    python -m agree.testing.sim --seed 17 --nodes 5 --steps 1000 --trace
    python -m agree.testing.sim --scenario all
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field, fields, replace
from typing import Any, TextIO

from agree.errors import ClusterError, NotLeaderError, StorageError
from agree.raft import (
    ConfChange,
    ConfChangeType,
    Config,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    Role,
    Snapshot,
)
from agree.raft.membership import apply_change
from agree.raft.node import RaftNode
from agree.raft.ready import ReadState, SoftState
from agree.runtime.readyloop import ReadyLoop
from agree.storage.memory import MemoryStore
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
from agree.testing.simclock import Clock, ClockConfig
from agree.testing.simnet import NetConfig, SimNet
from agree.testing.simstate import CorruptSnapshot, decode_state, encode_state

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
    # A crash inside Ready handling: after persisting, before sending; after sending some
    # of the messages; after applying some of the committed entries, before advance.
    p_ready_crash: float = 0.009
    max_down: int | None = None  # crashed at once; None: a minority, (nodes - 1) // 2
    p_membership: float = 0.012
    p_transfer: float = 0.01
    p_compact: float = 0.03
    compact_min: int = 10  # applied entries beyond the snapshot before compacting
    churn: float = 1.0  # multiplies every fault probability
    pre_vote: bool | None = None  # None: chosen per seed
    check_quorum: bool | None = None  # None: chosen per seed
    # Fastest/slowest clock rate ratio, <= 2 in the mix.  None: chosen per seed, 1 (one
    # shared clock) on half the seeds, uniform in [1, 2] on the others.
    clock_skew: float | None = None
    clock_drift: float = 0.02  # per node and step: the probability its rate moves
    # Each node serialises its snapshots with its own salt and key order, and compacts
    # at multiples of compact_min, so nodes hold the same (index, term) in different
    # bytes.  None: chosen per seed (half).
    divergent_snapshots: bool | None = None
    # The core's lease_read option (§6.4.1).  None: chosen per seed, on a third of the
    # seeds that use check-quorum.
    lease_read: bool | None = None
    settle: int = 300  # steps to make progress in once the faults heal; 0: not checked
    clock_rates: tuple[float, ...] = ()  # scripted: n1, n2, ...'s fixed rates (no drift)
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
_FLAGS["clock_skew"] = "clock-skew"
_FLAGS["clock_drift"] = "clock-drift"
_FLAGS["divergent_snapshots"] = "divergent-snapshots"
_FLAGS["lease_read"] = "lease-read"
_FLAGS["p_ready_crash"] = "ready-crash"
_FLAGS["settle"] = "settle"

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
    # Every seed's clocks differ by up to 2x and drift; leases on a third of the seeds
    # (those that use check-quorum), so a lease must allow for the drift.
    "skew": SimConfig(clock_skew=2.0, clock_drift=0.05),
    # Every node writes its own bytes for the same state; compaction is frequent and
    # aligned, chunks are small, leaders change often: snapshot transfers are interrupted
    # and resumed by another leader holding the same (index, term) in other bytes.
    "divergent-snapshots": SimConfig(
        divergent_snapshots=True,
        snapshot_chunk_bytes=16,
        compact_min=5,
        p_compact=0.1,
        p_crash=0.02,
        p_transfer=0.03,
        p_crash_leader=0.01,
    ),
    # Every seed serves reads from the leader's lease, with clocks skewed as in the mix.
    "lease": SimConfig(lease_read=True, check_quorum=True, keys=1),
}

PROFILE_HELP = {
    "default": "the mix: skew, divergent snapshots and leases each on a share of the seeds",
    "figure8": "3 nodes, leaders crash right after replicating (the paper's Figure 8)",
    "skew": "clock rates differ by up to 2x between nodes and drift, on every seed",
    "divergent-snapshots": "same state, different snapshot bytes per node, on every seed",
    "lease": "leader lease reads (lease_read, with check-quorum) on every seed",
}


# --- results --------------------------------------------------------------------------------


@dataclass(slots=True)
class SimStats:
    elections: int = 0  # times a node became leader
    crashes: int = 0
    ready_crashes: int = 0  # of the crashes, those inside Ready handling
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
    floor: int = 0  # a read: the latest index of a write to its key acknowledged before it


@dataclass(slots=True)
class Client:
    id: int
    op: ClientOp | None = None
    hint: str | None = None  # the leader it last heard of
    idle_until: int = 0  # backs off after a refusal


# Where a node crashes inside its handling of a Ready (armed by a fault, fired by the
# first Ready that has something to cut short).
CRASH_AFTER_PERSIST = "after persisting a Ready, before sending it"
CRASH_MID_SEND = "after sending only some of a Ready's messages"
CRASH_MID_APPLY = "after applying only some of a Ready's committed entries, before advance"
_READY_CRASHES = (CRASH_AFTER_PERSIST, CRASH_MID_SEND, CRASH_MID_APPLY)


class SimNode:
    """A simulated host: durable store and clock (kept across crashes) and volatile state."""

    def __init__(
        self,
        node_id: str,
        bootstrap: ConfState | None,
        clock: Clock,
        salt: random.Random | None,
    ) -> None:
        self.id = node_id
        self.bootstrap = bootstrap
        self.clock = clock
        self.salt = salt  # draws this node's snapshot salt and key order; None: canonical
        self.checkpoint: tuple[int, dict[str, int]] | None = None  # aligned compaction
        self.store = MemoryStore()
        self.core: RaftNode | None = None
        self.ready: ReadyLoop | None = None  # carries out the core's Readys while it is up
        self.kv: dict[str, int] = {}
        self.applied = 0
        self.proposals: dict[int, ClientOp] = {}  # proposal index -> op
        self.reads: dict[bytes, ClientOp] = {}  # read context -> op, before its ReadState
        self.waiting_reads: list[tuple[int, ClientOp]] = []  # (read index, op)
        self.restart_at: int | None = None
        self.gone = False  # removed from the cluster and shut down for good
        self.role = Role.FOLLOWER
        self.role_term = 0
        self.ready_crash: str | None = None  # armed: crash there in a coming Ready


def _encode_write(key: str, op_id: int) -> bytes:
    return f"{key}={op_id}".encode()


def _decode_write(data: bytes) -> tuple[str, int]:
    key, _, value = data.decode().partition("=")
    return key, int(value)


def _by_dst(msg: Message) -> str:
    return msg.dst


def _digest(kv: dict[str, int]) -> int:
    return hash(frozenset(kv.items()))


class _CrashedInReady(Exception):
    """A Ready duty reached the node's armed crash point: the Ready stops there."""


class _SimReadyHost:
    """How a simulated node carries out the Ready duties (:mod:`agree.runtime.readyloop`): in
    memory, checking the invariants at each step, and crashing where a fault armed it to."""

    __slots__ = ("node", "sim")

    def __init__(self, sim: Simulation, node: SimNode) -> None:
        self.sim = sim
        self.node = node

    async def persist(
        self, hard_state: HardState | None, entries: tuple[Entry, ...], snapshot: Snapshot | None
    ) -> None:
        sim, node = self.sim, self.node
        store = node.store
        before = store.hard_state()
        try:
            store.save(hard_state=hard_state, entries=entries, snapshot=snapshot)
        except StorageError as exc:
            raise Violation("storage contract", node.id, str(exc)) from exc
        sim.inv.persisted(node.id, store, before, snapshot, entries)
        commit = store.hard_state().commit
        if commit > before.commit:
            sim._log(node.id, f"commit {before.commit} -> {commit}")

    def send(self, messages: tuple[Message, ...]) -> None:
        sim, node = self.sim, self.node
        crash = node.ready_crash
        if crash == CRASH_AFTER_PERSIST:
            sim._crash_in_ready(node)
            raise _CrashedInReady
        # Sorted by destination (stable, so each peer's stream keeps its order): the
        # core may build a Ready's messages by iterating a set, whose order varies
        # with the process's hash seed, and the network's random draws must not.
        ordered = sorted(messages, key=_by_dst)
        cut = len(ordered)
        if crash == CRASH_MID_SEND and len(ordered) >= 2:
            cut = sim.rng.randint(1, len(ordered) - 1)
        store = node.store
        for msg in ordered[:cut]:
            if msg.src != node.id:
                raise Violation("message source", node.id, f"sends as {msg.src}")
            sim.inv.sent(msg, store, sim.stores)
            sim.net.send(msg, sim.now)
            if sim._trace_messages:
                sim._log(node.id, f"-> {msg}")
        if cut < len(ordered):
            sim._crash_in_ready(node, f"({cut} of {len(ordered)} sent)")
            raise _CrashedInReady

    def applying(self) -> AbstractAsyncContextManager[None]:
        return _NOTHING_HELD

    def restore(self, snapshot: Snapshot) -> None:
        self.sim._restore(self.node, snapshot)

    def apply(self, entries: tuple[Entry, ...]) -> None:
        sim, node = self.sim, self.node
        cut = len(entries)
        if node.ready_crash == CRASH_MID_APPLY and entries:
            cut = sim.rng.randint(0, len(entries) - 1)
        for entry in entries[:cut]:
            sim._apply(node, entry)
        if cut < len(entries):
            sim._crash_in_ready(node, f"({cut} of {len(entries)} applied)")
            raise _CrashedInReady

    def read_states(self, states: tuple[ReadState, ...]) -> None:
        node = self.node
        for rs in states:
            op = node.reads.pop(rs.context, None)
            if op is not None:
                node.waiting_reads.append((rs.index, op))
        self.sim._serve_reads(node)

    def soft_state(self, soft: SoftState) -> None:
        node = self.node
        assert node.core is not None
        self.sim._log(node.id, f"{soft.role.value} (leader {soft.leader_id}, "
                               f"term {node.core.term})")


_NOTHING_HELD: AbstractAsyncContextManager[None] = nullcontext()


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
        # Drawn whether or not the configuration fixes them, so that fixing one (in a
        # replay) leaves every later draw of the seed as it was.
        skew = 1.0 if self.rng.random() < 0.5 else self.rng.uniform(1.0, 2.0)
        divergent = self.rng.random() < 0.5
        lease = self.rng.random() < 0.35 and self.check_quorum
        self.clock_skew = skew if config.clock_skew is None else config.clock_skew
        self.divergent = divergent if config.divergent_snapshots is None else (
            config.divergent_snapshots
        )
        self.lease_read = lease if config.lease_read is None else config.lease_read
        rates = config.clock_rates
        skew_needed = 1.0 / min(rates) if rates else 1.0
        self.clocks = ClockConfig(
            skew=max(self.clock_skew, skew_needed), drift=0.0 if rates else config.clock_drift
        )
        self.settling = False  # faults have healed; the cluster must make progress
        self.net: SimNet[Message] = SimNet(random.Random(self.rng.getrandbits(64)), config.net)
        self.inv = Invariants()
        self.stats = SimStats()
        self.now = 0
        self._seq = 0
        self._next_id = config.nodes + 1
        ids = [f"n{i}" for i in range(1, config.nodes + 1)]
        self.initial = ConfState(voters=frozenset(ids))
        self.nodes: dict[str, SimNode] = {}
        for k, i in enumerate(ids):
            self.nodes[i] = self._new_node(i, self.initial, rates[k] if k < len(rates) else None)
        self.stores = {i: n.store for i, n in self.nodes.items()}
        self.clients = [Client(c) for c in range(config.clients)]
        self.ops: list[ClientOp] = []
        self._op_ids = 0
        self._applied_ops: dict[int, int] = {}  # op id -> index it was committed at
        self._lost: set[int] = set()  # writes known never to apply
        self._digests: dict[int, int] = {}  # applied index -> state machine digest
        self._removals: dict[str, int] = {}  # node -> step to shut it down
        self._applied_max = 0  # the highest index any node applied
        self._acked: dict[str, int] = {}  # key -> latest index of an acknowledged write
        self._conf = self.initial  # the latest committed configuration
        if trace is not None:
            trace(
                f"seed {seed}: nodes={config.nodes} steps={config.steps} "
                f"pre_vote={self.pre_vote} check_quorum={self.check_quorum} "
                f"lease_read={self.lease_read} divergent_snapshots={self.divergent} "
                f"clock_skew={self.clock_skew:.2f}"
            )
            shown = " ".join(f"{n.id}={n.clock.rate:.2f}" for n in self.nodes.values())
            trace(f"clock rates (ticks per step): {shown}")
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

    def _new_node(
        self, node_id: str, bootstrap: ConfState | None, rate: float | None = None
    ) -> SimNode:
        clock = Clock(random.Random(self.rng.getrandbits(64)), self.clocks, rate)
        salt = random.Random(self.rng.getrandbits(64)) if self.divergent else None
        return SimNode(node_id, bootstrap, clock, salt)

    def _decode(self, node: SimNode, snap: Snapshot, where: str) -> dict[str, int]:
        try:
            return decode_state(snap.data)
        except CorruptSnapshot as exc:
            raise Violation(
                "snapshot data corrupted",
                node.id,
                f"{where} snapshot at {snap.meta.index} term {snap.meta.term}: {exc}",
            ) from None

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
            lease_read=self.lease_read,
            # A lease is safe only within a bound on how much faster one clock runs than
            # another (§6.4.1); the operator declares it, here the simulated hardware's.
            lease_clock_drift=self.clocks.skew - 1.0,
        )
        store = node.store
        core = RaftNode(
            config,
            rng=random.Random(self.rng.getrandbits(64)),
            persisted=store.load(),
            bootstrap=node.bootstrap,
        )
        node.core = core
        node.ready = ReadyLoop(core, _SimReadyHost(self, node))
        snap = store.snapshot()
        node.kv = self._decode(node, snap, "restarts from its") if snap is not None else {}
        node.applied = store.snapshot_index()
        node.checkpoint = None
        node.role, node.role_term = core.role, core.term
        status = core.status()
        self.inv.restarted(node.id, store, status.term, status.vote)

    def _crash(self, node: SimNode, why: str) -> None:
        node.core = None
        node.ready = None
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
            if op.write:
                acked = self._acked.get(op.key, 0)
                self._acked[op.key] = max(acked, op.index)
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
        self.submit(client, node, key, write, redirect=redirect)

    def submit(
        self, client: Client, node: SimNode, key: str, write: bool, *, redirect: bool = False
    ) -> ClientOp:
        """``client`` starts an operation at ``node`` (which must be up)."""
        cfg = self.cfg
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
                op.floor = self._acked.get(key, 0)
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
        return op

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
                self._log(node.id, f"restarts (term {node.store.hard_state().term})")
        for node_id, when in list(self._removals.items()):
            if when <= self.now:
                del self._removals[node_id]
                node = self.nodes[node_id]
                if node.core is not None:
                    self._crash(node, "shut down (removed from the cluster)")
                node.gone = True
                node.restart_at = None
        if self.settling:
            return
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
            elif self._chance(cfg.p_ready_crash):
                live = [n for n in members if n.core is not None and n.ready_crash is None]
                if live:
                    rng.choice(live).ready_crash = rng.choice(_READY_CRASHES)
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
                if n.core is not None and self._compaction_point(n) is not None
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
            new_node = self._new_node(node_id, None)
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

    def _compaction_point(self, node: SimNode) -> tuple[int, dict[str, int]] | None:
        """Where ``node`` may compact, and its state there.  With divergent snapshots, only
        at multiples of ``compact_min`` (the last one it applied), so that different nodes
        compact at the same index: the same (index, term) in different bytes."""
        if self.divergent:
            point = node.checkpoint
            if point is not None and point[0] > node.store.snapshot_index():
                return point
            return None
        if node.applied - node.store.snapshot_index() >= self.cfg.compact_min:
            return node.applied, node.kv
        return None

    def _compact(self, node: SimNode) -> None:
        core = node.core
        assert core is not None
        if core.applied_index != node.applied:
            raise Violation(
                "applied index disagrees",
                node.id,
                f"core {core.applied_index}, host {node.applied}",
            )
        point = self._compaction_point(node)
        assert point is not None
        index, kv = point
        snap = core.compact(index, encode_state(kv, node.salt))
        if snap.meta.index != index:
            raise Violation("compaction", node.id, f"asked {index}, got {snap.meta}")
        expect = node.store.term_at(index)
        if expect is not None and snap.meta.term != expect:
            raise Violation(
                "compaction", node.id, f"snapshot term {snap.meta.term}, stored term {expect}"
            )
        # A host compacts what it applied, so what it stored: anything else is the core's bug.
        if index < node.store.snapshot_index():
            raise Violation("compaction", node.id, f"to {index}, behind the stored snapshot")
        if index > node.store.last_index():
            raise Violation(
                "compaction", node.id, f"to {index}, beyond the stored log "
                f"({node.store.last_index()})"
            )
        node.store.compact(snap)
        self.stats.compactions += 1
        self._log(node.id, f"compacts to {snap.meta.index}")

    # -- the Ready loop ---------------------------------------------------------------------

    def _process(self, node: SimNode) -> None:
        core, loop = node.core, node.ready
        assert core is not None and loop is not None
        for _ in range(64):
            if not core.has_ready():
                return
            try:
                loop.handle_sync(core.ready())
            except _CrashedInReady:
                return
        raise Violation("ready loop", node.id, "still has a Ready after 64 rounds")

    def _crash_in_ready(self, node: SimNode, detail: str = "") -> None:
        why = node.ready_crash
        node.ready_crash = None
        self._crash(node, f"crashes {why} {detail}".rstrip())
        node.restart_at = self.now + self.rng.randint(*self.cfg.restart_after)
        self.stats.crashes += 1
        self.stats.ready_crashes += 1

    def _restore(self, node: SimNode, snap: Snapshot) -> None:
        self.inv.restored(node.id, snap, node.applied)
        node.kv = self._decode(node, snap, "installs a")
        node.applied = snap.meta.index
        node.checkpoint = None
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
            self._conf = apply_change(self._conf, change)
            self.stats.conf_changes += 1
            self._log(node.id, f"committed {change.type.value} {change.node_id} at {entry.index}")
            if change.type is ConfChangeType.REMOVE:
                self._removals[change.node_id] = self.now + 3 * self.cfg.election_tick
        if entry.index not in self._digests:
            self._digests[entry.index] = _digest(node.kv)
        if self.divergent and entry.index % self.cfg.compact_min == 0:
            node.checkpoint = (entry.index, dict(node.kv))
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
                # §6.4: a read reflects every write acknowledged before it began.  (The
                # history check finds this too; this names the read at once.)
                seen = 0 if op.value is None else self._applied_ops.get(op.value, 0)
                if seen < op.floor:
                    raise Violation(
                        "stale read",
                        node.id,
                        f"client {op.client} read {op.key} -> {op.value} (written at {seen}, "
                        f"read index {index}), but a write at {op.floor} was acknowledged "
                        f"before the read began",
                    )
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
        for node in self.nodes.values():
            # A clock runs whether or not its node is up; a crashed node just misses ticks.
            ticks = node.clock.advance()
            if node.core is not None:
                for _ in range(ticks):
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

    def heal(self) -> None:
        """End every fault: partitions heal, crashed nodes restart now, no crash stays
        armed, and no new fault comes (messages may still be lost or delayed at random)."""
        self.settling = True
        if self.net.partitioned:
            self.net.heal()
            self.stats.heals += 1
        for node in self.nodes.values():
            node.ready_crash = None
            if node.core is None and not node.gone:
                node.restart_at = None
                self._start(node)
                self.stats.restarts += 1
        self._log("net", "faults heal: every node up, no partition")

    def _members(self) -> list[SimNode]:
        conf = self._conf
        return [
            n for n in self.nodes.values()
            if not n.gone and (n.id in conf.voters or n.id in conf.learners)
        ]

    def settle(self) -> None:
        """Liveness: with the faults healed, within ``settle`` steps the cluster commits a
        new entry and every member of the committed configuration applies everything that
        was committed when the faults healed.  Raises a ``stuck`` Violation otherwise."""
        self.heal()
        start, healed_at = self.inv.commit_index, self.now
        limit = self.now + self.cfg.settle
        while self.now < limit:
            self.step()
            if self.inv.commit_index > start and all(
                n.core is not None and n.applied >= start for n in self._members()
            ):
                self._log("net", f"progress {self.now - healed_at} steps after healing")
                return
        leader = self._leader()
        lagging = sorted(
            f"{n.id}@{n.applied}" for n in self._members() if n.core is None or n.applied < start
        )
        raise Violation(
            "stuck",
            leader.id if leader is not None else "-",
            f"no progress in {self.cfg.settle} steps after the faults healed at step "
            f"{healed_at}: commit {start} -> {self.inv.commit_index}, "
            f"leader {leader.id if leader is not None else None}, "
            f"behind: {', '.join(lagging) or 'none'}",
        )

    def check_history(self) -> tuple[str, str | None]:
        """Check the clients' history (pending operations count as unknown): the verdict,
        and the violation if it is not linearizable."""
        for op in self.ops:
            if op.status == _PENDING:
                self._unknown(op)
        result = check(RegisterModel(), self.history())
        if result.verdict == NOT_LINEARIZABLE:
            violation = "history not linearizable:\n" + result.explanation
            self._log("!!", violation)
            return result.verdict, violation
        if result.verdict != LINEARIZABLE:
            self._log("!!", f"history check inconclusive: {result.explanation}")
        return result.verdict, None

    def run(self) -> SimResult:
        violation: str | None = None
        verdict = ""
        try:
            while self.now < self.cfg.steps:
                self.step()
            if self.cfg.settle:
                self.settle()
        except Violation as exc:
            violation = f"step {self.now}: {exc}"
            self._log("!!", f"VIOLATION {exc}")
        if violation is None and self.cfg.check_history:
            verdict, violation = self.check_history()
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
    from agree.testing.scenarios import SCENARIOS

    profiles = "\n".join(f"  {name:<20} {PROFILE_HELP[name]}" for name in sorted(PROFILES))
    scenarios = "\n".join(f"  {name:<28} {s.summary}" for name, s in SCENARIOS.items())
    p = argparse.ArgumentParser(
        prog="python -m agree.testing.sim",
        description="Run the deterministic Raft simulator over a range of seeds.  A failing\n"
        "seed is printed with a replay command that reruns it alone with a trace.",
        epilog=f"profiles (--profile):\n{profiles}\n\n"
        "Flags override the profile.  After --steps, faults heal and the cluster must make\n"
        "progress within --settle steps, or the seed is reported stuck.\n\n"
        f"scripted scenarios (--scenario NAME, or --scenario all):\n{scenarios}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seeds", type=int, default=100, help="run seeds 0..N-1")
    p.add_argument("--seed", type=int, default=None, help="run only this seed")
    p.add_argument("--nodes", type=int, default=None, help="default 5")
    p.add_argument("--steps", type=int, default=None, help="default 1000")
    p.add_argument("--trace", action="store_true", help="print a readable trace of the run")
    p.add_argument(
        "--trace-messages", action="store_true", help="with --trace: every message sent/received"
    )
    p.add_argument(
        "--profile", choices=sorted(PROFILES), default="default", help="see below"
    )
    p.add_argument(
        "--scenario", choices=["all", *SCENARIOS], default=None, metavar="NAME",
        help="run a scripted scenario instead of seeds (see below)",
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--keys", type=int, default=None)
    p.add_argument("--clients", type=int, default=None)
    p.add_argument("--churn", type=float, default=None, help="multiply fault probabilities")
    p.add_argument("--pre-vote", dest="pre_vote", action=argparse.BooleanOptionalAction)
    p.add_argument("--check-quorum", dest="check_quorum", action=argparse.BooleanOptionalAction)
    p.add_argument(
        "--clock-skew", dest="clock_skew", type=float, default=None,
        help="largest ratio between two nodes' clock rates (1: one shared clock; the mix "
        "draws it per seed, up to 2)",
    )
    p.add_argument(
        "--clock-drift", dest="clock_drift", type=float, default=None,
        help="probability per node and step that its clock rate moves (within the skew)",
    )
    p.add_argument(
        "--divergent-snapshots", dest="divergent_snapshots",
        action=argparse.BooleanOptionalAction,
        help="each node writes its own snapshot bytes for the same state (default: per seed)",
    )
    p.add_argument(
        "--lease-read", dest="lease_read", action=argparse.BooleanOptionalAction,
        help="the core's lease_read option (default: per seed, with check-quorum)",
    )
    p.add_argument(
        "--ready-crash", dest="p_ready_crash", type=float, default=None,
        help="probability per step of arming a crash inside Ready handling (after persist; "
        "after sending some messages; after applying some entries)",
    )
    p.add_argument(
        "--settle", type=int, default=None,
        help="steps the healed cluster has to make progress (0: no liveness check)",
    )
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
        "clock_skew": args.clock_skew,
        "clock_drift": args.clock_drift,
        "divergent_snapshots": args.divergent_snapshots,
        "lease_read": args.lease_read,
        "p_ready_crash": args.p_ready_crash,
        "settle": args.settle,
    }
    config = replace(base, **{k: v for k, v in given.items() if v is not None})
    seeds = [args.seed] if args.seed is not None else list(range(args.seeds))

    def echo(line: str) -> None:
        print(line, file=out)

    if args.scenario is not None:
        from agree.testing.scenarios import run_scenarios

        names = None if args.scenario == "all" else [args.scenario]
        return run_scenarios(names, echo, trace=args.trace)

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
