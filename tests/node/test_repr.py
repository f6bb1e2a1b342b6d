"""What a handle, a node and a client show in a REPL: the object's name and class, the node
(or the URLs) behind it, per-call options; a node's id, role, term, leader and applied index.
And ``snapshot()`` on the synchronous embedded handle."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import agree
from agree.testing.models import Counter


@pytest.mark.wall_clock
def test_embedded_handle_and_node(tmp_path: Path) -> None:
    with agree.wrap(Counter(), path=tmp_path / "data") as c:
        assert repr(c) == "<Wrapped 'default' (Counter) on node 'n1'>"
        fast = c.options(consistency="any", timeout=2.0)
        assert (
            repr(fast) == "<Proxy 'default' (Counter) on node 'n1', consistency=any, timeout=2.0>"
        )
        c.add(3)
        assert re.fullmatch(r"<Node 'n1' leader, term \d+, leader 'n1', applied \d+>", repr(c.node))
        index = c.snapshot()
        assert index == c.node.status().applied_index
        assert c.snapshot() == index  # nothing applied since: the same snapshot
        assert f"applied {index}>" in repr(c.node)
        node = c.node
    assert repr(node) == "<Node 'n1' stopped>"


async def test_async_proxy_of_a_node() -> None:
    async with agree.Node(
        NODE_ID="n1", NODES={"n1": "http://127.0.0.1:1"}, DATABASE_URL="memory://",
        objects={"hits": Counter()},
    ) as node:  # fmt: skip
        await node.wait_ready(10)
        assert repr(node.proxy("hits")) == "<AsyncProxy 'hits' (Counter) on node 'n1'>"


async def test_clients_and_their_proxies() -> None:
    shown = "http://127.0.0.1:1, http://127.0.0.1:2 (asking http://127.0.0.1:1)"
    client = agree.AsyncClient(["http://127.0.0.1:1", "http://127.0.0.1:2/"])  # not connected
    assert repr(client) == f"<AsyncClient {shown}>"
    proxy = client.proxy("hits", Counter, consistency="leader")
    assert repr(proxy) == f"<AsyncProxy 'hits' (Counter) on {client!r}, consistency=leader>"
    await client.close()
    assert repr(client) == f"<AsyncClient {shown} closed>"
    sync = agree.Client(["http://127.0.0.1:1", "http://127.0.0.1:2/"])
    try:
        assert repr(sync) == f"<Client {shown}>"
    finally:
        sync.close()
