"""Three Nodes in one process joined by the aiohttp peer transport over loopback sockets."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agree.conf.settings import Settings
from agree.errors import AgreeTimeoutError
from agree.objects.replicated import Replicated, create_initial
from agree.runtime.node import Node
from agree.server import peer as server_peer
from agree.server.peer import add_peer_routes
from agree.testing.models import Counter, KVStore
from agree.transport.aiohttp import AiohttpTransport

SECRET = "a-cluster-secret-long-enough"


class NetCluster:
    """Nodes, each behind its own aiohttp app on a fixed loopback port, restartable."""

    def __init__(self, directory: Path, objects: dict[str, type[Replicated]], **settings: Any):
        self.directory = directory
        self.objects = objects
        self.settings = settings
        self.ports: dict[str, int] = {}
        for nid in ("n1", "n2", "n3"):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                self.ports[nid] = sock.getsockname()[1]
        self.urls = {nid: f"http://127.0.0.1:{port}" for nid, port in self.ports.items()}
        self.rng = random.Random(7)
        self.nodes: dict[str, Node] = {}
        self.runners: dict[str, web.AppRunner] = {}

    async def start_node(self, nid: str, **transport_options: Any) -> Node:
        settings = Settings(
            NODE_ID=nid,
            NODES=self.urls,
            DATABASE_URL=f"sqlite:///{self.directory.as_posix()}/{nid}.db",
            CLUSTER_SECRET=SECRET,
            TICK_INTERVAL=0.01,
            ELECTION_TICKS=10,
            HEARTBEAT_TICKS=2,
            AUTO_MIGRATE=True,
            REQUEST_TIMEOUT=10.0,
            **self.settings,
        )
        transport = AiohttpTransport.from_settings(
            settings, rng=random.Random(self.rng.random()), **transport_options
        )
        node = Node(
            settings,
            objects={name: create_initial(cls) for name, cls in self.objects.items()},
            transport=transport,
            rng=random.Random(self.rng.random()),
        )
        app = web.Application()
        add_peer_routes(app, transport)
        runner = web.AppRunner(app)
        await runner.setup()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.ports[nid]))
        await web.SockSite(runner, sock).start()
        self.nodes[nid], self.runners[nid] = node, runner
        await node.start()
        return node

    async def stop_node(self, nid: str) -> None:
        await self.nodes[nid].stop()
        await self.runners[nid].cleanup()

    async def stop(self) -> None:
        await asyncio.gather(*(self.stop_node(nid) for nid in self.nodes), return_exceptions=True)

    def running(self) -> list[Node]:
        return [n for n in self.nodes.values() if n._started]


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[NetCluster]:
    net = NetCluster(tmp_path, {"counter": Counter})
    await asyncio.gather(*(net.start_node(nid) for nid in net.urls))
    try:
        yield net
    finally:
        await net.stop()


async def wait_leader(nodes: list[Node], timeout: float = 10.0) -> Node:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        leaders = [n for n in nodes if n._started and n.is_leader]
        if leaders:
            return leaders[0]
        await asyncio.sleep(0.01)
    raise AgreeTimeoutError("no leader elected")


async def test_three_nodes_elect_a_leader_and_commit(cluster: NetCluster) -> None:
    leader = await wait_leader(cluster.running())
    proxies = [n.proxy("counter") for n in cluster.running()]
    # Through every node: the followers forward over their peer sockets.
    results = await asyncio.gather(*(proxies[i % 3].add(i + 1) for i in range(30)))
    assert max(results) == sum(range(1, 31))
    index = leader.host.applied_index
    await asyncio.wait_for(
        asyncio.gather(*(n.driver.wait_applied(index) for n in cluster.running())), 10
    )
    for n in cluster.running():
        with n.read_lock("counter") as counter:
            assert counter.value == sum(range(1, 31))
    # A linearizable read on a follower: a ReadIndex round over the sockets.
    follower = next(n for n in cluster.running() if n is not leader)
    assert await follower.proxy("counter").get() == sum(range(1, 31))


async def test_a_new_leader_is_elected_when_the_leader_stops(cluster: NetCluster) -> None:
    leader = await wait_leader(cluster.running())
    await leader.proxy("counter").add(5)
    await cluster.stop_node(leader.id)
    new_leader = await wait_leader(cluster.running())
    assert new_leader is not leader
    assert await new_leader.proxy("counter").add(1) == 6


async def test_a_restarted_follower_catches_up_from_a_snapshot_sent_in_fragments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fragments = 0
    real = server_peer.decode_fragment

    def counting(data: bytes) -> tuple[bool, bytes]:
        nonlocal fragments
        fragments += 1
        return real(data)

    monkeypatch.setattr(server_peer, "decode_fragment", counting)
    net = NetCluster(tmp_path, {"kv": KVStore}, SNAPSHOT_ENTRIES=10)
    try:
        # A queue of 16 frames cannot hold the 40 commands' appends the stopped follower
        # misses (one frame per command at least), so it cannot catch up from queued frames.
        options = {"fragment_bytes": 512, "queue_frames": 16}
        await asyncio.gather(*(net.start_node(nid, **options) for nid in net.urls))
        leader = await wait_leader(net.running())
        kv = leader.proxy("kv")
        lagging = next(nid for nid in net.nodes if nid != leader.id)
        lag_last = net.nodes[lagging].status().last_index
        await net.stop_node(lagging)
        for i in range(40):
            # Distinct values: the leader applies the very strings its proxy passed, and pickle
            # would store one string shared by every key only once.
            await kv.set(f"key-{i}", f"{i}".rjust(1000, "v"))
        assert leader._store is not None
        snap = await leader._store.snapshot()
        # The leader's log no longer holds what the follower misses: only a snapshot can help.
        assert snap is not None and snap.meta.index > lag_last + 1
        assert len(snap.data) > 20_000
        node = await net.start_node(lagging, **options)
        index = leader.host.applied_index
        await asyncio.wait_for(node.driver.wait_applied(index), 20)
        with node.read_lock("kv") as store:
            assert store.size() == 40
        assert fragments > 20_000 // 512  # the snapshot crossed in pieces
    finally:
        await net.stop()


async def test_two_groups_share_each_peer_link(tmp_path: Path) -> None:
    net = NetCluster(tmp_path, {"counter": Counter, "kv": KVStore}, GROUPS={"other": ["kv"]})
    await asyncio.gather(*(net.start_node(nid) for nid in net.urls))
    try:
        nodes = net.running()
        for node in nodes:
            await node.wait_ready(10)
        # Through every node, both groups: followers forward to each group's leader.
        for i, node in enumerate(nodes):
            await node.proxy("counter").add(1)
            await node.proxy("kv").set(f"k{i}", node.id)
        for node in nodes:
            await node.wait_ready(10)
            assert await node.proxy("counter").get() == 3
            assert await node.proxy("kv").get("k2") == nodes[2].id
            assert sorted(node.groups) == ["default", "other"]
            # At most one outbound link per peer, whatever the groups it carries.
            transport = node._transport
            assert isinstance(transport, AiohttpTransport)
            assert set(transport._links) <= {n.id for n in nodes if n is not node}
    finally:
        await net.stop()
