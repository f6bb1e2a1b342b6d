"""Three Nodes in one process joined by the aiohttp peer transport over loopback sockets."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from agree.errors import AgreeTimeoutError
from agree.node import Node
from agree.replicated import create_initial
from agree.server.peer import add_peer_routes
from agree.settings import Settings
from agree.testing.models import Counter
from agree.transport.aiohttp import AiohttpTransport

SECRET = "a-cluster-secret-long-enough"


class NetNode:
    def __init__(self, node: Node, transport: AiohttpTransport, sock: socket.socket) -> None:
        self.node, self.transport, self.sock = node, transport, sock
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        add_peer_routes(app, self.transport)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()
        await self.node.start()

    async def stop(self) -> None:
        await self.node.stop()
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[dict[str, NetNode]]:
    socks = {f"n{i}": socket.socket() for i in (1, 2, 3)}
    for sock in socks.values():
        sock.bind(("127.0.0.1", 0))
    nodes = {nid: f"http://127.0.0.1:{s.getsockname()[1]}" for nid, s in socks.items()}
    rng = random.Random(7)
    members: dict[str, NetNode] = {}
    for nid, sock in socks.items():
        settings = Settings(
            NODE_ID=nid,
            NODES=nodes,
            DATABASE_URL=f"sqlite:///{tmp_path.as_posix()}/{nid}.db",
            CLUSTER_SECRET=SECRET,
            TICK_INTERVAL=0.01,
            ELECTION_TICKS=10,
            HEARTBEAT_TICKS=2,
            AUTO_MIGRATE=True,
            REQUEST_TIMEOUT=10.0,
        )
        transport = AiohttpTransport(nid, SECRET, rng=random.Random(rng.random()))
        node = Node(
            settings,
            objects={"counter": create_initial(Counter)},
            transport=transport,
            rng=random.Random(rng.random()),
        )
        members[nid] = NetNode(node, transport, sock)
    await asyncio.gather(*(m.start() for m in members.values()))
    try:
        yield members
    finally:
        await asyncio.gather(*(m.stop() for m in members.values()), return_exceptions=True)


async def wait_leader(members: dict[str, NetNode], timeout: float = 10.0) -> Node:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        leaders = [m.node for m in members.values() if m.node._started and m.node.is_leader]
        if leaders:
            return leaders[0]
        await asyncio.sleep(0.01)
    raise AgreeTimeoutError("no leader elected")


async def test_three_nodes_elect_a_leader_and_commit(cluster: dict[str, NetNode]) -> None:
    leader = await wait_leader(cluster)
    proxies = [m.node.proxy("counter") for m in cluster.values()]
    # Through every node: the followers forward over their peer sockets.
    results = await asyncio.gather(*(proxies[i % 3].add(i + 1) for i in range(30)))
    assert max(results) == sum(range(1, 31))
    index = leader.host.applied_index
    await asyncio.wait_for(
        asyncio.gather(*(m.node.driver.wait_applied(index) for m in cluster.values())), 10
    )
    for m in cluster.values():
        with m.node.read_lock("counter") as counter:
            assert counter.value == sum(range(1, 31))
    # A linearizable read on a follower: a ReadIndex round over the sockets.
    follower = next(m.node for m in cluster.values() if m.node is not leader)
    assert await follower.proxy("counter").get() == sum(range(1, 31))


async def test_a_new_leader_is_elected_when_the_leader_stops(cluster: dict[str, NetNode]) -> None:
    leader = await wait_leader(cluster)
    await leader.proxy("counter").add(5)
    old = next(m for m in cluster.values() if m.node is leader)
    await old.stop()
    rest = {nid: m for nid, m in cluster.items() if m is not old}
    new_leader = await wait_leader(rest)
    assert new_leader is not leader
    assert await new_leader.proxy("counter").add(1) == 6
