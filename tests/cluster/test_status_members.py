"""``agree-manage status`` against a three-node cluster: every member is asked; a dead one is
reported unreachable and makes the exit status 1."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from io import StringIO

import pytest
from processes import ProcessCluster

from agree.management import call_command

pytest.importorskip("agree.transport.aiohttp", reason="needs the network peer transport")


def test_status_lists_every_member_and_a_dead_one(
    process_cluster: Callable[..., ProcessCluster],
) -> None:
    cluster = process_cluster(3)
    cluster.start_all()
    leader = cluster.leader()
    urls = list(cluster.urls.values())

    def status() -> tuple[int | None, dict]:  # type: ignore[type-arg]
        out = StringIO()
        args = [a for url in urls for a in ("--url", url)]
        code = call_command("status", "--json", *args, stdout=out)
        return code, json.loads(out.getvalue())

    code, report = status()
    assert code is None
    assert report["leader_id"] == leader
    assert sorted(report["members"]) == ["n1", "n2", "n3"]
    roles = sorted(m["role"] for m in report["members"].values())
    assert roles == ["follower", "follower", "leader"]
    for member_id, member in report["members"].items():
        assert member["url"] == cluster.urls[member_id]
        assert member["lag"] >= 0
        assert member["last_contact"] is not None

    victim = next(i for i in cluster.ids if i != leader)
    cluster.kill(victim)
    urls = [cluster.urls[i] for i in cluster.ids if i != victim]
    code, report = status()
    assert code == 1
    assert report["members"][victim]["role"] == "unreachable"
    # The leader keeps the time it last heard from the dead member; it only grows.
    first = report["members"][victim]["last_contact"]
    time.sleep(0.3)
    _, report = status()
    assert report["members"][victim]["last_contact"] > first

    out = StringIO()
    call_command("status", "--url", cluster.urls[leader], stdout=out)
    text = out.getvalue()
    assert f"leader: {leader}" in text
    assert f"{victim:<8} unreachable" in text
