"""The dashboard in a real headless Chromium: open it on a three-node cluster, see three nodes,
a leader and a mutation arrive in the feed, the latency chart draw its p50 and p99 lines; SIGKILL
a node and see the page mark it."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cdp import Browser, chromium_path
from processes import ProcessCluster, http

pytest.importorskip("agree.transport.aiohttp", reason="needs the network peer transport")

CHROMIUM = chromium_path()
if CHROMIUM is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI must install chromium (.ci/run does: apt-get install -y chromium)")
    pytest.skip("no chromium here (apt-get install -y chromium)", allow_module_level=True)

ROWS = "document.querySelectorAll('#members tbody tr[data-node]')"


def role_of(node_id: str) -> str:
    return f"(document.querySelector('#members tr[data-node={node_id}]') || {{}}).dataset?.role"


async def test_dashboard_shows_the_cluster_and_a_killed_node(
    process_cluster: Callable[..., ProcessCluster], tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    cluster = process_cluster(3)
    cluster.start_all()
    leader = cluster.leader()
    page_node = next(i for i in cluster.ids if i != leader)
    victim = next(i for i in cluster.ids if i not in (leader, page_node))

    status, body = http("GET", cluster.urls[page_node] + "/")
    assert status == 200 and "<title>agree cluster</title>" in body
    # Self-contained: no script, style sheet or image is loaded from anywhere.
    assert "src=" not in body and "<link" not in body and "@import" not in body

    # Made before the page opens: the feed starts a little in the past, so it shows it.
    code, answer = http(
        "POST", cluster.urls[leader] + "/v1/objects/ledger/append", {"args": ["before-open"]}
    )
    assert code == 200, answer

    async with Browser(CHROMIUM) as browser:
        page = await browser.open(cluster.urls[page_node] + "/")
        await page.wait_for(f"{ROWS}.length === 3")
        await page.wait_for(f"document.getElementById('leader').textContent === {leader!r}")
        assert await page.evaluate(role_of(leader)) == "leader"
        await page.wait_for(f"{role_of(victim)} === 'follower'")
        assert await page.evaluate("document.getElementById('self').textContent") == page_node
        assert await page.evaluate("!!document.querySelector('[data-object=ledger]')")

        # A mutation anywhere in the cluster appears in the live feed without a reload.
        code, answer = http(
            "POST", cluster.urls[leader] + "/v1/objects/ledger/append", {"args": ["seen-live"]}
        )
        assert code == 200, answer
        feed = "document.getElementById('feed').textContent"
        await page.wait_for(f"{feed}.includes('ledger.append(\"seen-live\")')")
        assert await page.evaluate(f"{feed}.includes('ledger.append(\"before-open\")')")

        # The latency chart: commands answered by the page's node show as p50/p99 points.
        for i in range(5):
            code, answer = http(
                "POST", cluster.urls[page_node] + "/v1/objects/ledger/append", {"args": [f"l{i}"]}
            )
            assert code == 200, answer
        latency = "document.getElementById('latency')"
        # Two samples of each line at least (a line needs two points).
        await page.wait_for(f"Number({latency}.dataset.points) >= 4")
        text = await page.evaluate("document.getElementById('latency-now').textContent")
        assert re.fullmatch(r"p50 \d+\.\d ms  p99 \d+\.\d ms  \(\d+ commands in the last 5 s\)",
                            text)  # fmt: skip
        drawn = f"{latency}.getContext('2d').getImageData(0, 0, {latency}.width, {latency}.height)"
        # Both lines are drawn: the canvas holds pixels of the p50 and of the p99 colour.
        colours = await page.evaluate(
            f"(() => {{ const d = {drawn}.data; const seen = new Set();"
            " for (let i = 0; i < d.length; i += 4) seen.add(d[i] + ',' + d[i+1] + ',' + d[i+2]);"
            " return ['97,175,239', '229,185,78'].filter((c) => seen.has(c)); })()"
        )
        assert colours == ["97,175,239", "229,185,78"]

        cluster.kill(victim)
        await page.wait_for(f"{role_of(victim)} === 'unreachable'")
        assert await page.evaluate(f"{ROWS}.length") == 3
        assert await page.evaluate(role_of(leader)) == "leader"
        await page.screenshot(Path(os.environ.get("AGREE_SCREENSHOT", tmp_path / "dashboard.png")))


async def test_dashboard_with_tokens(process_cluster: Callable[..., ProcessCluster]) -> None:
    """With TOKENS, the page sends ?token= as the Authorization header, also to the other
    nodes (a cross-origin request with a preflight); without it, it reaches nothing."""
    assert CHROMIUM is not None
    token = "read-token-for-the-dashboard-0123"
    cluster = process_cluster(3, TOKENS={token: "read"})
    cluster.start_all()
    async with Browser(CHROMIUM) as browser:
        page = await browser.open(cluster.urls["n1"] + f"/?token={token}")
        await page.wait_for(f"{ROWS}.length === 3")
        await page.wait_for(
            f"[...{ROWS}].every(r => ['leader', 'follower'].includes(r.dataset.role))"
        )
        denied = await browser.open(cluster.urls["n1"] + "/")
        await denied.wait_for("document.getElementById('error').textContent.includes('token')")
        assert await denied.evaluate(f"{ROWS}.length") == 0
