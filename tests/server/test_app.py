"""The node's aiohttp application in process (nodes joined by the in-memory network), for what
needs no separate processes: shutdown with calls in flight."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from aiohttp import web

from agree.server.app import create_app
from agree.server.state import INFLIGHT
from agree.testing.cluster import MemoryCluster
from agree.testing.models import Counter


async def test_shutdown_answers_every_call_in_flight(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, {"counter": Counter}, REQUEST_TIMEOUT=0.5) as cluster:
        leader = await cluster.wait_leader()
        for node in list(cluster.running()):
            if node is not leader:
                await cluster.stop_node(node.id)  # no quorum: commands cannot commit
        app = create_app(leader)  # the app owns the node from here (start() is idempotent)
        runner = web.AppRunner(app, shutdown_timeout=30.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}/v1/objects/counter/add"
        async with aiohttp.ClientSession() as session:

            async def post(seq: int) -> tuple[int, dict[str, object]]:
                body = {"args": [1], "client_id": "c", "seq": seq, "timeout": 60}
                async with session.post(url, json=body) as response:
                    return response.status, await response.json()

            calls = [asyncio.create_task(post(seq)) for seq in range(1, 4)]
            while app[INFLIGHT].count < 3:
                await asyncio.sleep(0.01)
            # Shutdown waits REQUEST_TIMEOUT for them, then stops the node, which fails them:
            # each caller gets an explicit answer long before its own 60 s, none is cut off.
            await asyncio.wait_for(runner.cleanup(), 20)
            answers = await asyncio.wait_for(asyncio.gather(*calls), 5)
        assert app[INFLIGHT].count == 0
        for status, body in answers:
            assert status in (503, 504), body
            assert body["error"]["type"] in ("outcome_unknown", "unavailable")  # type: ignore[index]


def test_unavailable_answers_say_where_to_go_and_when_to_retry() -> None:
    from agree.errors import NotLeaderError, ValidationError
    from agree.server.app import error_response

    response = error_response(NotLeaderError(leader_id="n2", leader_url="http://127.0.0.1:8002"))
    assert response.status == 503
    assert response.headers["Link"] == '<http://127.0.0.1:8002>; rel="leader"'
    assert response.headers["Retry-After"] == "1"
    unknown = error_response(NotLeaderError())
    assert (unknown.status, "Link" in unknown.headers) == (503, False)
    assert "Retry-After" not in error_response(ValidationError("bad")).headers


async def test_each_route_enforces_the_permission_its_endpoint_declares(tmp_path: Path) -> None:
    """The permission docs/http-api.md lists is the one checked: a token one rank lower is
    refused with 403 naming it; an open endpoint needs no token at all."""
    from aiohttp.test_utils import TestClient, TestServer

    from agree.server.client_api import ENDPOINTS, routes

    tokens = {"r" * 16: "read", "w" * 16: "write", "a" * 16: "admin"}
    below = {"write": "r" * 16, "admin": "w" * 16}
    async with MemoryCluster(tmp_path, {"counter": Counter}, TOKENS=tokens) as cluster:
        leader = await cluster.wait_leader()
        app = create_app(leader, start_node=False)
        async with TestClient(TestServer(app)) as client:
            checked = 0
            for route in routes:
                assert isinstance(route, web.RouteDef)
                spec = ENDPOINTS[route.handler]
                path = route.path.format(object="counter", method="add", id="n1")
                if spec.permission is None:
                    if spec.needs:
                        continue  # checked by the handler itself (tests/cluster/test_http_api)
                    async with client.request(route.method, path) as response:
                        assert response.status not in (401, 403), route.path
                    continue
                async with client.request(route.method, path) as response:
                    assert response.status == 401, route.path
                if spec.permission == "read":
                    continue  # no rank below read: any valid token is enough
                headers = {"Authorization": f"Bearer {below[spec.permission]}"}
                async with client.request(route.method, path, headers=headers) as response:
                    body = await response.json()
                    assert response.status == 403, route.path
                    assert body["error"]["required"] == spec.permission, route.path
                checked += 1
            assert checked >= 4
