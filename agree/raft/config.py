"""Tunables of the Raft core.  Time is counted in ticks; the host decides a tick's length."""

from __future__ import annotations

from dataclasses import dataclass

from agree.errors import ConfigurationError


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    id: str
    election_tick: int = 10  # followers campaign after a random timeout in [e, 2e) ticks
    heartbeat_tick: int = 1  # leaders send heartbeats every this many ticks
    max_msg_bytes: int = 1 << 20  # soft cap on entry bytes per AppendEntries
    max_inflight_msgs: int = 256  # pipelined AppendEntries in flight per follower
    # ... and at most this many entry bytes in them (0: no bound).  Only so much waits in
    # front of a follower that persists more slowly than the leader takes commands, so its
    # heartbeats are not held up behind the backlog for longer than an election timeout.
    max_inflight_bytes: int = 4 << 20
    # Soft cap on the entry bytes one Ready hands out to apply (etcd's
    # MaxCommittedSizePerReady; at least one entry): a host carries out one Ready per turn of
    # its loop, so a large backlog of committed entries is applied in bounded chunks, with
    # ticks and peer messages handled in between, rather than in one turn that starves them.
    max_committed_bytes_per_ready: int = 64 << 10
    snapshot_chunk_bytes: int = 1 << 20  # InstallSnapshot chunk size
    pre_vote: bool = True  # dissertation §9.6
    check_quorum: bool = True  # a leader steps down when it stops hearing from a quorum (§6.2)
    # Serve reads from a leader lease (dissertation §6.4.1) instead of a heartbeat round per
    # batch of reads.  Safe only while every server's clock runs at most
    # ``lease_clock_drift`` (a fraction) faster than any other's; see RaftNode._lease_valid.
    lease_read: bool = False
    lease_clock_drift: float = 0.1

    def validate(self) -> None:
        if not self.id:
            raise ConfigurationError("the node id must not be empty", setting="NODE_ID")
        if self.heartbeat_tick < 1:
            raise ConfigurationError("heartbeat_tick must be >= 1", setting="heartbeat_tick")
        if self.election_tick <= self.heartbeat_tick:
            raise ConfigurationError(
                "election_tick must be greater than heartbeat_tick", setting="election_tick"
            )
        if not 0 <= self.lease_clock_drift < float("inf"):
            raise ConfigurationError(
                "lease_clock_drift must be a finite fraction >= 0", setting="lease_clock_drift"
            )
        if self.max_inflight_msgs < 1:
            raise ConfigurationError("max_inflight_msgs must be >= 1", setting="max_inflight_msgs")
        if self.max_inflight_bytes < 0:
            raise ConfigurationError(
                "max_inflight_bytes must be >= 0", setting="max_inflight_bytes"
            )
        if self.max_committed_bytes_per_ready < 1:
            raise ConfigurationError(
                "max_committed_bytes_per_ready must be >= 1",
                setting="max_committed_bytes_per_ready",
            )
        if self.snapshot_chunk_bytes < 1:
            raise ConfigurationError(
                "snapshot_chunk_bytes must be >= 1", setting="snapshot_chunk_bytes"
            )
