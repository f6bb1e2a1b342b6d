"""Snapshots (§7): compaction, chunked InstallSnapshot, install rules, restart from one."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
from raft_harness import Cluster, is_msg

from agree.raft import Config, InstallSnapshot, InstallSnapshotResponse, RaftNode
from agree.raft.snapshot import snapshot_checksum


def lagging(n: int = 8, **config: object) -> Cluster:
    """A leader that compacted past what c has."""
    c = Cluster(["a", "b", "c"], **config)
    c.elect("a")
    c.isolate("c")
    for k in range(n):
        c.propose("a", f"v{k}".encode())
    c.stabilize()
    c.compact("a")
    c.heal()
    return c


def test_compact_forgets_the_prefix_and_returns_the_snapshot() -> None:
    c = lagging()
    a = c["a"]
    snap = c.peers["a"].storage.snapshot()
    assert snap is not None and snap.meta.index == a.applied_index
    assert snap.meta.term == a.term and snap.meta.conf == a.conf
    assert a._log.first_index == snap.meta.index + 1


def test_compact_refuses_unapplied_or_already_compacted_indices() -> None:
    c = lagging()
    a = c["a"]
    with pytest.raises(ValueError, match="applied"):
        a.compact(a.applied_index + 1, b"")
    with pytest.raises(ValueError, match="already starts"):
        a.compact(a.applied_index, b"")


def test_a_lagging_follower_gets_the_snapshot_in_chunks() -> None:
    c = lagging(snapshot_chunk_bytes=10)
    c.tick("a")
    c.stabilize()
    chunks = [m for m in c.sent if isinstance(m, InstallSnapshot)]
    size = len(c.peers["a"].storage.snapshot().data)  # type: ignore[union-attr]
    assert len(chunks) == -(-size // 10) and all(len(m.data) <= 10 for m in chunks)
    assert [m.done for m in chunks][-1] and not any(m.done for m in chunks[:-1])
    assert c.peers["c"].state == c.peers["a"].state
    assert c.peers["c"].storage.snapshot() == c.peers["a"].storage.snapshot()
    c.propose("a", b"after")
    c.stabilize()
    assert c.peers["c"].state[-1] == b"after"


def test_snapshot_older_than_commit_is_acknowledged_not_installed() -> None:
    c = lagging()
    c.tick("a")
    c.stabilize()
    old = next(m for m in c.sent if isinstance(m, InstallSnapshot) and m.done)
    restored = len(c.peers["c"].restored)
    c.send(old)
    (ack,) = c.take(is_msg(InstallSnapshotResponse))
    assert ack.done and ack.match_index == c["c"].commit_index
    assert len(c.peers["c"].restored) == restored


def test_a_snapshot_whose_last_entry_we_hold_keeps_the_log() -> None:
    """§7: if the follower has the snapshot's last entry, it keeps the entries after it."""
    c = Cluster(["a", "b", "c"])
    c.elect("a")
    for k in range(4):
        c.propose("a", f"v{k}".encode())
    c.stabilize(drop=lambda m: m.dst == "c" and type(m).__name__ == "Heartbeat")
    snap = c.compact("a")
    c_node = c["c"]
    last = c_node.last_index
    msg = InstallSnapshot(src="a", dst="c", term=c["a"].term,
                          last_included_index=snap.meta.index, last_included_term=snap.meta.term,
                          conf=snap.meta.conf, checksum=snapshot_checksum(snap.data), offset=0,
                          data=snap.data, done=True)
    # c already committed it: acknowledged, nothing changes.
    c.send(msg)
    assert c_node.last_index == last and not c.peers["c"].restored


def test_restart_from_a_snapshot() -> None:
    c = lagging()
    storage = c.peers["a"].storage
    node = RaftNode(Config(id="a"), rng=random.Random(0), persisted=storage.load())
    assert node.applied_index == storage.snapshot().meta.index  # type: ignore[union-attr]
    assert node.conf == c["a"].conf and node.term == c["a"].term
    assert node.last_index == c["a"].last_index


def test_a_follower_restarted_mid_transfer_starts_over() -> None:
    c = lagging(snapshot_chunk_bytes=8)
    c.tick("a")
    while not any(isinstance(m, InstallSnapshot) and m.offset >= 16 for m in c.net):
        assert c.deliver()
    c.drop()
    c.crash("c")
    c.restart("c")
    c.tick_all(3)
    c.stabilize()
    assert c.peers["c"].state == c.peers["a"].state


def _encode_spaced(state: list[bytes]) -> bytes:
    """The same state as encode_state, other bytes (as another process's pickle may be)."""
    return json.dumps([d.hex() for d in state], indent=1).encode()


def test_a_transfer_cut_short_by_a_new_leader_is_not_resumed_with_its_bytes() -> None:
    """Figure 13: a chunk at offset 0 starts a new file.  Leaders a and b hold snapshots of
    the same (index, term) with different bytes; c got the head of a's when a was deposed.
    It must install b's whole, never a's head glued to b's tail."""
    c = Cluster(["a", "b", "c"], snapshot_chunk_bytes=8)
    c.elect("a")
    c.isolate("c")
    for k in range(8):
        c.propose("a", f"v{k}".encode())
    c.tick("a")  # b learns the commit index
    c.stabilize()
    c.compact("a")
    b = c.peers["b"]
    assert b.node.applied_index == c["a"].applied_index
    snap_b = b.node.compact(b.node.applied_index, _encode_spaced(b.state))
    b.storage.compact(snap_b)
    c.heal()
    c.tick("a")
    while not any(isinstance(m, InstallSnapshot) and m.offset >= 24 for m in c.net):
        assert c.deliver()
    c.drop()
    c.isolate("a")
    c.forget_leader("b", "c")
    c.elect_until("b")
    c.tick_all(3)
    assert c.peers["c"].storage.snapshot() == snap_b
    assert c.peers["c"].state == b.state


def test_a_snapshot_that_fails_its_checksum_is_asked_again_never_installed() -> None:
    c = lagging(snapshot_chunk_bytes=8)
    c.tick("a")
    while not any(isinstance(m, InstallSnapshot) for m in c.net):
        assert c.deliver()
    (first,) = c.take(is_msg(InstallSnapshot))
    assert first.offset == 0
    # Every chunk of this transfer claims a checksum its bytes do not have.
    bad = replace(first, checksum=snapshot_checksum(b"something else"))
    c.send(bad)
    while True:
        (ack,) = c.take(is_msg(InstallSnapshotResponse))
        if ack.next_offset == 0:
            break
        snap = c.peers["a"].storage.snapshot()
        assert snap is not None
        end = ack.next_offset + 8
        c.send(replace(bad, offset=ack.next_offset, data=snap.data[ack.next_offset:end],
                       done=end >= len(snap.data)))
    assert not c.peers["c"].restored and c["c"].snapshot_index == 0
    # The leader starts over from offset 0 and the transfer then succeeds.
    c.send(ack)
    c.tick_all(3)
    assert c.peers["c"].storage.snapshot() == c.peers["a"].storage.snapshot()
