"""Randomized runs of a whole in-memory cluster (see raft_harness) with message loss,
duplication and reordering, partitions, crashes, compaction, transfers and membership
changes, checked against Raft's safety properties (Figure 3): election safety, state
machine safety, and ReadIndex never returning an index older than a finished write.
Each run is a function of its seed."""

from __future__ import annotations

import contextlib
import random

from raft_harness import Cluster

from agree.errors import ClusterError
from agree.raft import ConfChange, ConfChangeType, Role

NODES = ["n1", "n2", "n3", "n4", "n5"]


def run(seed: int, steps: int, *, membership: bool = False) -> Cluster:
    rng = random.Random(seed)
    c = Cluster(
        NODES[:3] if membership else NODES,
        seed=seed,
        election_tick=10,
        heartbeat_tick=2,
        max_msg_bytes=64,
        max_inflight_msgs=4,
        snapshot_chunk_bytes=64,
    )
    leaders: dict[int, str] = {}
    reads: dict[bytes, int] = {}  # context -> the highest commit anywhere when it was asked
    proposal = 0
    for step in range(steps):
        r = rng.random()
        up = [i for i in c.peers if i not in c.down]
        if r < 0.35:
            for i in up:
                c.peers[i].node.tick()
        elif r < 0.65:
            # deliver a random subset, possibly reordered, some duplicated, some lost
            msgs = c.take()
            rng.shuffle(msgs)
            keep = []
            for m in msgs:
                x = rng.random()
                if x < 0.05:
                    continue
                keep.append(m)
                if x > 0.97:
                    keep.append(m)
            late = [m for m in keep if rng.random() < 0.1]
            c.net.extend(late)
            c.send(*[m for m in keep if m not in late])
        elif r < 0.80:
            leader = c.leader()
            if leader is not None:
                proposal += 1
                with contextlib.suppress(ClusterError):
                    c.propose(leader, f"{seed}-{proposal}".encode())
        elif r < 0.84:
            target = rng.choice(list(c.peers))
            ctx = f"r{step}".encode()
            try:
                c[target].read_index(ctx)
                reads[ctx] = max(p.node.commit_index for p in c.peers.values())
            except ClusterError:
                pass
        elif r < 0.87:
            c.partition(*_split(rng, list(c.peers)))
        elif r < 0.90:
            c.heal()
        elif r < 0.92 and len(c.down) < 2:
            c.crash(rng.choice(up))
        elif r < 0.95 and c.down:
            c.restart(rng.choice(sorted(c.down)))
        elif r < 0.97:
            i = rng.choice(up)
            node = c[i]
            snap = c.peers[i].storage.snapshot()
            offset = snap.meta.index if snap else 0
            if node.applied_index > offset:
                c.compact(i)
        elif membership:
            _change_membership(c, rng)
        else:
            leader = c.leader()
            if leader is not None:
                with contextlib.suppress(ClusterError):
                    c[leader].transfer_leader(rng.choice(sorted(c[leader].conf.voters)))
        c.process()
        for i, p in c.peers.items():
            if p.node.role is Role.LEADER and i not in c.down:
                assert leaders.setdefault(p.node.term, i) == i, f"two leaders in {p.node.term}"
        for p in c.peers.values():
            for rs in p.read_states:
                assert rs.index >= reads[rs.context], (seed, rs)
            p.read_states.clear()
    check_applied(c, seed)
    settle(c, seed)
    check_applied(c, seed)
    return c


def settle(c: Cluster, seed: int) -> None:
    """Liveness once the faults stop: heal, restart everyone, and every member of the
    final configuration catches up with one leader."""
    c.heal()
    for i in sorted(c.down):
        c.restart(i)
    c.stabilize()
    for _ in range(300):
        c.tick_all()
        leader = c.leader()
        if leader is None:
            continue
        members = c[leader].conf.members()
        last = c[leader].last_index
        if c[leader].status().lead_transferee is None and all(
            c[m].last_index == c[m].commit_index == c[m].applied_index == last for m in members
        ):
            break
    else:
        raise AssertionError(f"seed {seed}: no stable leader with caught-up members")
    leader = c.leader()
    assert leader is not None
    c.propose(leader, b"final")
    c.tick_all(5)  # heartbeats resume probes whose answers were lost
    for m in c[leader].conf.members():
        assert c.peers[m].state[-1:] == [b"final"], (seed, m)


def _split(rng: random.Random, ids: list[str]) -> list[list[str]]:
    rng.shuffle(ids)
    k = rng.randint(1, len(ids) - 1)
    return [ids[:k], ids[k:]]


def _change_membership(c: Cluster, rng: random.Random) -> None:
    leader = c.leader()
    if leader is None:
        return
    node = c[leader]
    conf = node.conf
    spare = [n for n in NODES if n not in conf.members()]
    choice = rng.random()
    try:
        if conf.learners and choice < 0.5:
            change = ConfChange(ConfChangeType.PROMOTE, rng.choice(sorted(conf.learners)))
        elif spare and choice < 0.8:
            new = rng.choice(spare)
            change = ConfChange(ConfChangeType.ADD_LEARNER, new)
            if new not in c.peers:
                c.add_node(new)
        else:
            change = ConfChange(ConfChangeType.REMOVE, rng.choice(sorted(conf.members())))
        node.propose_conf_change(change)
    except ClusterError:
        pass


def check_applied(c: Cluster, seed: int) -> None:
    """State machine safety: every server applies the same entry at each index."""
    by_index: dict[int, tuple[int, bytes]] = {}
    for i, p in c.peers.items():
        for e in p.applied:
            seen = by_index.setdefault(e.index, (e.term, e.data))
            assert seen == (e.term, e.data), (seed, i, e)
