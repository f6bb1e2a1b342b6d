"""A three-node cluster of real processes hosting two Raft groups ("default" and "other"),
driven through ``agree-manage`` as an operator would: every group in ``status`` and ``members``,
a group's leadership moved, a member added to and removed from every group through any node, and
a backup of both groups restored into a new cluster."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from processes import ProcessCluster, free_ports

import agree
from agree.management import call_command
from agree.wire.backup import decode_backup

pytest.importorskip("agree.transport.aiohttp", reason="needs the network peer transport")

SETTINGS = {
    "OBJECTS": {"ledger": "cluster_models.Ledger", "audit": "cluster_models.Ledger"},
    "GROUPS": {"other": ["audit"]},
}


def manage(*args: str) -> str:
    out = StringIO()
    call_command(args[0], *args[1:], stdout=out, stderr=StringIO())
    return out.getvalue()


def test_two_groups_through_the_management_commands(
    process_cluster: Callable[..., ProcessCluster],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = process_cluster(3, **SETTINGS)
    source.start_all()
    leader = source.leader()
    other, third = (i for i in source.ids if i != leader)
    # Asked of a node that leads neither group, which forwards it to the leader of "other".
    assert manage("transfer-leader", other, "--group", "other", "--url", source.urls[third]) == (
        f"{other} is the leader of other.\n"
    )
    urls = list(source.urls.values())
    with agree.Client(urls) as client:
        for i in range(5):
            client.proxy("ledger").append(f"l{i}")
            client.proxy("audit").append(f"a{i}")

    report = json.loads(manage("status", "--json", "--url", source.urls[third]))
    assert report["leader_id"] == leader  # the top level: "default"
    groups = report["groups"]
    assert (groups["default"]["leader_id"], groups["other"]["leader_id"]) == (leader, other)
    for group in groups.values():
        assert sorted(group["members"]) == ["n1", "n2", "n3"]
        assert all(m["applied_index"] <= group["commit_index"] for m in group["members"].values())
    text = manage("status", "--url", source.urls[third])
    assert f"group other: leader {other}" in text

    listed = manage("members", "list", "--url", source.urls[third]).splitlines()
    assert listed[0] == "[default]" and "[other]" in listed

    # A learner needs no process at its address to be added; every group changes, each
    # through its own leader.
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    added = manage("members", "add", "n4", url, "--learner", "--url", source.urls[third])
    assert "[default]: added" in added and "[other]: added" in added
    again = manage("members", "add", "n4", url, "--learner", "--url", source.urls[third])
    assert "[default]: unchanged" in again and "[other]: unchanged" in again
    removed = manage("members", "remove", "n4", "--url", source.urls[third])
    assert "[default]: removed" in removed and "[other]: removed" in removed

    path = tmp_path / "groups.backup"
    manage("backup", str(path), *(w for u in urls for w in ("--url", u)))
    backup = decode_backup(path.read_bytes())
    assert sorted(backup.states()) == ["default", "other"]
    assert sorted(backup.groups["other"].objects) == ["audit"]
    source.close()

    target = process_cluster(3, **SETTINGS)
    monkeypatch.syspath_prepend(str(target.dir))
    for node_id in target.ids:
        restored = manage("restore", str(path), "--settings", target.module, "--node", node_id)
        assert "groups: default at index" in restored
    target.start_all()
    with agree.Client(list(target.urls.values())) as client:
        assert client.proxy("ledger").all_tags() == [f"l{i}" for i in range(5)]
        assert client.proxy("audit").all_tags() == [f"a{i}" for i in range(5)]
        assert set(client.status()["groups"]) == {"default", "other"}
