"""``agree-manage status`` against a three-node cluster: every member is asked; a dead one is
reported unreachable and makes the exit status 1."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from io import StringIO

import pytest
from processes import ProcessCluster, http

from agree.management import call_command

pytest.importorskip("agree.transport.aiohttp", reason="needs the network peer transport")


def call_text(*args: str) -> str:
    out = StringIO()
    call_command(args[0], *args[1:], stdout=out)
    return out.getvalue()


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
    # A member the new leader has not heard from yet (it answered no message of its term so
    # far: a slow start on a loaded machine) has no last contact yet; it comes with the first.
    deadline = time.monotonic() + 10
    while any(m["last_contact"] is None for m in report["members"].values()):
        assert time.monotonic() < deadline, report
        time.sleep(0.1)
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

    # The leader's own status says how far each member has replicated; a follower's does not.
    _, leader_status = http("GET", cluster.urls[leader] + "/v1/status")
    assert sorted(leader_status["match_index"]) == ["n1", "n2", "n3"]
    assert sorted(leader_status["last_contact"]) == sorted(set(cluster.ids) - {leader})
    follower = next(i for i in cluster.ids if i != leader)
    assert http("GET", cluster.urls[follower] + "/v1/status")[1]["match_index"] == {}

    # Hand leadership over and back through the commands, as an operator would.
    other = next(i for i in cluster.ids if i != leader)
    assert call_text("transfer-leader", other, "--url", cluster.urls[leader]) == (
        f"{other} is the leader.\n"
    )
    assert status()[1]["leader_id"] == other
    assert call_text("transfer-leader", leader, "--url", cluster.urls[other]) == (
        f"{leader} is the leader.\n"
    )
    members = call_text("members", "list", "--url", cluster.urls[leader]).splitlines()
    assert [line.split()[:2] for line in members] == [[i, "voter"] for i in cluster.ids]

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
