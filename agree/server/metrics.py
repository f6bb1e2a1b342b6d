"""Prometheus metrics of one node (``GET /metrics``), named after etcd's.

Each app has its own registry, so several nodes in one process (tests) do not collide.  Gauges
that the runtime already knows (leader, indexes) are read at scrape time from the node's public
status; counts that need events (leader changes, failed proposals, request latency) are kept by
the server as they happen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agree.server.latency import RecentLatency
from agree.wire.calls import CallKind

if TYPE_CHECKING:
    from agree.runtime.node import Node

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _NodeCollector(Collector):
    def __init__(self, node: Node, transport: object | None) -> None:
        self._node = node
        # The peer transport's count of frames dropped per peer, when it keeps one.
        self._dropped: Callable[[str], int] | None = getattr(transport, "dropped", None)

    def collect(self) -> Iterator[Metric]:
        node = self._node
        if node.failure is not None or not _started(node):
            yield GaugeMetricFamily(
                "agree_server_has_leader", "Whether a leader is known (1) or not (0).", value=0
            )
            return
        status = node.status()
        yield GaugeMetricFamily(
            "agree_server_has_leader",
            "Whether a leader is known (1) or not (0).",
            value=int(status.leader_id is not None),
        )
        yield GaugeMetricFamily(
            "agree_server_is_leader",
            "Whether this node is the leader (1) or not (0).",
            value=int(status.is_leader),
        )
        yield GaugeMetricFamily("agree_server_term", "The current Raft term.", value=status.term)
        # As etcd does, committed and applied proposals are counted by the log indexes.
        yield CounterMetricFamily(
            "agree_server_proposals_committed",
            "Log entries committed (the commit index).",
            value=status.commit_index,
        )
        yield CounterMetricFamily(
            "agree_server_proposals_applied",
            "Log entries applied to the replicated objects (the applied index).",
            value=status.applied_index,
        )
        yield GaugeMetricFamily(
            "agree_server_members", "Voting members of the cluster.", value=len(status.voters)
        )
        if self._dropped is not None:
            failures = CounterMetricFamily(
                "agree_network_peer_sent_failures",
                "Messages to a peer that were dropped (queue full or peer unreachable).",
                labels=["To"],
            )
            for peer in sorted(status.members):
                if peer != status.id:
                    failures.add_metric([peer], self._dropped(peer))
            yield failures


def _started(node: Node) -> bool:
    try:
        node.driver  # noqa: B018 - raises when not running
    except Exception:
        return False
    return True


class RuntimeMetrics:
    """The runtime's :class:`~agree.runtime.observer.Observer` as Prometheus histograms, in the
    style of etcd's (``disk_wal_fsync_duration_seconds``, ``server_apply_duration_seconds``, ...).

    Built before the node (the node takes its observer when it is constructed) and registered
    into the server's registry by :class:`Metrics`.
    """

    def __init__(self) -> None:
        self.storage_write = Histogram(
            "agree_disk_write_duration_seconds",
            "Time of one durable storage transaction (one Ready's hard state and entries).",
            registry=None,
        )
        self.entries_persisted = Counter(
            "agree_disk_entries_persisted", "Log entries written durably.", registry=None
        )
        self.apply = Histogram(
            "agree_server_apply_duration_seconds",
            "Time to apply one Ready's committed entries to the replicated objects.",
            registry=None,
        )
        self.entries_applied = Counter(
            "agree_server_entries_applied", "Committed entries applied.", registry=None
        )
        self.send = Histogram(
            "agree_network_send_duration_seconds",
            "Time to hand one Ready's messages to the peer transport.",
            registry=None,
        )
        self.snapshot = Histogram(
            "agree_snapshot_save_duration_seconds",
            "Time to take a snapshot and compact the log.",
            registry=None,
        )

    def collectors(self) -> tuple[Counter | Histogram, ...]:
        return (
            self.storage_write,
            self.entries_persisted,
            self.apply,
            self.entries_applied,
            self.send,
            self.snapshot,
        )

    # -- Observer ---------------------------------------------------------------------------------
    def persisted(self, *, entries: int, seconds: float) -> None:
        self.storage_write.observe(seconds)
        self.entries_persisted.inc(entries)

    def sent(self, *, messages: int, seconds: float) -> None:
        self.send.observe(seconds)

    def applied(self, *, entries: int, seconds: float) -> None:
        self.apply.observe(seconds)
        self.entries_applied.inc(entries)

    def snapshotted(self, *, index: int, size: int, seconds: float) -> None:
        self.snapshot.observe(seconds)


class Metrics:
    """The registry of one node's server and the event counters the server updates."""

    def __init__(
        self,
        node: Node,
        transport: object | None = None,
        runtime: RuntimeMetrics | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_NodeCollector(node, transport))
        if runtime is not None:
            for collector in runtime.collectors():
                self.registry.register(collector)
        self.leader_changes = Counter(
            "agree_server_leader_changes_seen",
            "Leader changes seen by this node.",
            registry=self.registry,
        )
        self.proposals_pending = Gauge(
            "agree_server_proposals_pending",
            "Commands received by this node's API and not yet answered.",
            registry=self.registry,
        )
        self.proposals_failed = Counter(
            "agree_server_proposals_failed",
            "Commands received by this node's API that failed with a framework error "
            "(not counting exceptions raised by the user's method).",
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "agree_http_request_duration_seconds",
            "Time to answer a client API call, by kind (command or query).",
            ["kind"],
            registry=self.registry,
        )
        # The histogram's child per kind, looked up once rather than per call.
        self._durations = {k.value: self.request_duration.labels(k.value) for k in CallKind}
        # The same durations, for the live percentiles of /v1/status and the dashboard.
        self.recent_latency = RecentLatency()

    def observe_call(self, kind: str, seconds: float) -> None:
        self._durations[kind].observe(seconds)
        self.recent_latency.record(kind, seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
