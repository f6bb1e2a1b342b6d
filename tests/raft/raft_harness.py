"""A small deterministic in-memory cluster for the Raft core's tests.

Nothing moves unless a test says so: ``tick`` advances one node's clock, ``deliver``
hands every message in flight to its destination (in send order) and lets every node
carry out its Readys, ``stabilize`` repeats that until the network is quiet.  Links can be
cut, nodes crashed (losing everything but what they persisted) and restarted.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field, replace

from agree.raft import (
    AppendEntriesResponse,
    Config,
    ConfState,
    Entry,
    EntryType,
    HardState,
    InstallSnapshotResponse,
    Message,
    RaftNode,
    ReadState,
    Ready,
    RequestVoteResponse,
    Role,
    Snapshot,
    SoftState,
)
from agree.runtime.readyloop import ReadyLoop
from agree.storage.memory import MemoryStore


def check_must_sync(rd: Ready, stored: HardState) -> None:
    """The core's MustSync rule, checked on every Ready of every test: an fsync is owed
    exactly when entries, a snapshot, or a new term or vote are to be written."""
    moved = rd.hard_state is not None and (rd.hard_state.term, rd.hard_state.vote) != (
        stored.term,
        stored.vote,
    )
    assert rd.must_sync == bool(rd.entries or rd.snapshot is not None or moved), rd


@dataclass
class Peer:
    """One server: its core, its storage (what its Readys persisted, nothing more) and a toy
    state machine (the applied commands)."""

    node: RaftNode
    storage: MemoryStore
    applied: list[Entry] = field(default_factory=list)  # every entry applied, in order
    state: list[bytes] = field(default_factory=list)  # data of applied NORMAL entries
    read_states: list[ReadState] = field(default_factory=list)
    restored: list[Snapshot] = field(default_factory=list)

    def log(self) -> list[Entry]:
        """The entries it persisted after its snapshot."""
        return list(self.storage.load().entries)


class PeerHost:
    """How a peer carries out its Readys (agree.runtime.readyloop): in memory; what it sends goes
    into the cluster's network, where a cut link loses it on the spot."""

    def __init__(self, cluster: Cluster, peer: Peer) -> None:
        self.cluster = cluster
        self.peer = peer

    async def persist(
        self, hard_state: HardState | None, entries: tuple[Entry, ...], snapshot: Snapshot | None
    ) -> None:
        self.peer.storage.save(hard_state=hard_state, entries=entries, snapshot=snapshot)

    def send(self, messages: tuple[Message, ...]) -> None:
        c = self.cluster
        c.sent.extend(messages)
        c.net.extend(m for m in messages if c.linked(m.src, m.dst))

    def applying(self) -> AbstractAsyncContextManager[None]:
        return nullcontext()

    def restore(self, snapshot: Snapshot) -> None:
        self.peer.restored.append(snapshot)
        self.peer.state = decode_state(snapshot.data)

    def apply(self, entries: tuple[Entry, ...]) -> None:
        peer = self.peer
        for entry in entries:
            peer.applied.append(entry)
            if entry.type is EntryType.NORMAL:
                peer.state.append(entry.data)

    def read_states(self, states: tuple[ReadState, ...]) -> None:
        self.peer.read_states.extend(states)

    def soft_state(self, soft: SoftState) -> None:
        pass


def encode_state(state: list[bytes]) -> bytes:
    return json.dumps([d.hex() for d in state]).encode()


def decode_state(data: bytes) -> list[bytes]:
    return [bytes.fromhex(h) for h in json.loads(data)]


def _promises(m: Message) -> bool:
    """Whether ``m`` vouches for its sender's durable state (a vote, an acknowledgement)."""
    if isinstance(m, AppendEntriesResponse):
        return m.success
    if isinstance(m, InstallSnapshotResponse):
        return m.match_index > 0
    return isinstance(m, RequestVoteResponse) and m.vote_granted


class Cluster:
    def __init__(
        self,
        voters: Iterable[str],
        *,
        learners: Iterable[str] = (),
        seed: int = 0,
        **config: object,
    ) -> None:
        self.rng = random.Random(seed)
        self.config = config
        self.bootstrap = ConfState(voters=frozenset(voters), learners=frozenset(learners))
        self.peers: dict[str, Peer] = {}
        self.net: list[Message] = []
        self.down: set[str] = set()
        self.cut: set[frozenset[str]] = set()
        self.sent: list[Message] = []  # every message ever sent, for assertions
        self.loops: dict[str, ReadyLoop] = {}
        for node_id in sorted(self.bootstrap.members()):
            self.peers[node_id] = self._start(node_id, MemoryStore(), self.bootstrap)
        self.process()

    # ---- nodes

    def make_config(self, node_id: str) -> Config:
        return Config(id=node_id, **self.config)  # type: ignore[arg-type]

    def _start(self, node_id: str, storage: MemoryStore, bootstrap: ConfState | None) -> Peer:
        node = RaftNode(
            self.make_config(node_id),
            rng=random.Random(self.rng.getrandbits(64)),
            persisted=storage.load(),
            bootstrap=bootstrap,
        )
        peer = Peer(node, storage)
        snapshot = storage.snapshot()
        if snapshot is not None:
            peer.state = decode_state(snapshot.data)
        self.loops[node_id] = ReadyLoop(node, PeerHost(self, peer))
        return peer

    def add_node(self, node_id: str) -> Peer:
        """A brand-new server that joins an existing cluster (no bootstrap)."""
        peer = self._start(node_id, MemoryStore(), None)
        self.peers[node_id] = peer
        return peer

    def __getitem__(self, node_id: str) -> RaftNode:
        return self.peers[node_id].node

    def leader(self) -> str | None:
        leaders = [
            i for i, p in self.peers.items() if i not in self.down and p.node.role is Role.LEADER
        ]
        return max(leaders, key=lambda i: self.peers[i].node.term) if leaders else None

    def crash(self, node_id: str) -> None:
        """Stop a node: it loses everything it did not persist; messages to it are lost."""
        self.down.add(node_id)

    def restart(self, node_id: str) -> Peer:
        """Start a node again from what it persisted (its state machine restarts from the
        snapshot, and committed entries after it are applied again)."""
        self.down.discard(node_id)
        storage = self.peers[node_id].storage
        peer = self._start(node_id, storage, self.bootstrap if node_id in self.bootstrap.members()
                           else None)
        self.peers[node_id] = peer
        self.process()
        return peer

    # ---- the network

    def isolate(self, node_id: str) -> None:
        for other in self.peers:
            if other != node_id:
                self.cut.add(frozenset((node_id, other)))

    def partition(self, *groups: Iterable[str]) -> None:
        sets = [set(g) for g in groups]
        for a in self.peers:
            for b in self.peers:
                if a < b and not any(a in g and b in g for g in sets):
                    self.cut.add(frozenset((a, b)))

    def heal(self) -> None:
        self.cut.clear()

    def linked(self, a: str, b: str) -> bool:
        return frozenset((a, b)) not in self.cut

    def process(self) -> None:
        """Every running node carries out its Readys (persist, send, apply, advance)."""
        for node_id, peer in self.peers.items():
            if node_id in self.down:
                continue
            node, loop = peer.node, self.loops[node_id]
            while node.has_ready():
                rd = node.ready()
                check_must_sync(rd, peer.storage.hard_state())
                if rd.send_first:
                    # Sent before the write (§10.2.1): then they must promise nothing of it.
                    assert not any(_promises(m) for m in rd.messages), rd
                # The core's cap on what one Ready hands out to apply, checked on every Ready.
                cap = self.make_config(node_id).max_committed_bytes_per_ready
                committed = rd.committed_entries
                assert len(committed) <= 1 or sum(len(e.data) for e in committed) <= cap, rd
                loop.handle_sync(rd)

    def take(self, pred: Callable[[Message], bool] = lambda m: True) -> list[Message]:
        """Remove and return the messages in flight that match ``pred``."""
        taken = [m for m in self.net if pred(m)]
        self.net = [m for m in self.net if not pred(m)]
        return taken

    def drop(self, pred: Callable[[Message], bool] = lambda m: True) -> int:
        return len(self.take(pred))

    def send(self, *msgs: Message) -> None:
        """Deliver exactly these messages (links and crashes still apply)."""
        for m in msgs:
            if m.dst in self.peers and m.dst not in self.down and self.linked(m.src, m.dst):
                self.peers[m.dst].node.step(m)
        self.process()

    def deliver(self, pred: Callable[[Message], bool] = lambda m: True) -> int:
        """Deliver every message in flight that matches ``pred``; return how many."""
        msgs = self.take(pred)
        self.send(*msgs)
        return len(msgs)

    def stabilize(
        self, rounds: int = 2000, *, drop: Callable[[Message], bool] | None = None
    ) -> None:
        """Deliver until the network is quiet; messages matching ``drop`` are lost."""
        for _ in range(rounds):
            if drop is not None:
                self.drop(drop)
            if not self.deliver():
                return
        raise AssertionError("the network did not settle")

    # ---- time

    def tick(self, node_id: str, n: int = 1) -> None:
        for _ in range(n):
            self.peers[node_id].node.tick()
        self.process()

    def tick_all(self, n: int = 1, *, settle: bool = True) -> None:
        for _ in range(n):
            for node_id, peer in self.peers.items():
                if node_id not in self.down:
                    peer.node.tick()
            self.process()
            if settle:
                self.stabilize()

    def campaign(self, node_id: str) -> None:
        """Tick ``node_id`` alone until it starts a (pre-)campaign."""
        node = self.peers[node_id].node
        for _ in range(4 * 100):
            if node.role in (Role.PRE_CANDIDATE, Role.CANDIDATE, Role.LEADER):
                return
            node.tick()
        raise AssertionError(f"{node_id} never campaigned")

    def elect(self, node_id: str, *, quietly: bool = False) -> None:
        """Make ``node_id`` time out, campaign and (if it can) win; then settle.  If
        ``quietly``, everything it sends once it leads is lost (it replicates nothing)."""
        self.campaign(node_id)
        self.process()
        lost = None
        if quietly:
            lost = lambda m: m.src == node_id and self[node_id].role is Role.LEADER  # noqa: E731
        self.stabilize(drop=lost)

    def elect_until(self, node_id: str, attempts: int = 5, *, quietly: bool = False) -> None:
        """Campaign again (after a failed election, e.g. one that only taught ``node_id`` a
        higher term) until ``node_id`` leads."""
        for _ in range(attempts):
            self.elect(node_id, quietly=quietly)
            if self[node_id].role is Role.LEADER:
                return
        raise AssertionError(f"{node_id} did not win an election")

    def forget_leader(self, *node_ids: str) -> None:
        """Let the election timeout pass on ``node_ids`` without them campaigning: what
        happens when they stop hearing from their leader (their votes are dropped)."""
        for node_id in node_ids:
            node = self.peers[node_id].node
            for _ in range(self.make_config(node_id).election_tick):
                node.tick()
        self.process()
        self.drop(lambda m: m.src in node_ids and type(m).__name__ == "RequestVote")

    def propose(self, node_id: str, data: bytes) -> int:
        index = self.peers[node_id].node.propose(data)
        self.process()
        return index

    def compact(self, node_id: str) -> Snapshot:
        """Snapshot ``node_id``'s state machine, which reflects its applied index."""
        peer = self.peers[node_id]
        snapshot = peer.node.compact(peer.node.applied_index, encode_state(peer.state))
        peer.storage.compact(snapshot)
        return snapshot

    def log_terms(self, node_id: str) -> list[tuple[int, int]]:
        """(index, term) of every entry ``node_id`` persisted."""
        return [(e.index, e.term) for e in self.peers[node_id].log()]


def is_msg(kind: type[Message], **fields: object) -> Callable[[Message], bool]:
    """A predicate matching messages of ``kind`` whose fields have the given values."""

    def pred(m: Message) -> bool:
        return isinstance(m, kind) and all(getattr(m, k) == v for k, v in fields.items())

    return pred


__all__ = ["Cluster", "Peer", "PeerHost", "decode_state", "encode_state", "is_msg",
           "replace"]
