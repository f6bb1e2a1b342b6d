"""``backup`` from a running three-node cluster and ``restore`` into the databases of a new
three-node cluster, through ``call_command``: the new cluster serves the backed-up state and
goes on from it."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from processes import ProcessCluster

import agree
from agree.management import call_command
from agree.wire.backup import decode_backup


def test_backup_of_a_cluster_restored_into_a_new_cluster(
    process_cluster: Callable[..., ProcessCluster],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = process_cluster(3)
    source.start_all()
    urls = list(source.urls.values())
    with agree.Client(urls) as client:
        ledger = client.proxy("ledger")
        for i in range(20):
            ledger.append(f"t{i}")
        ledger.deposit(7)
    path = tmp_path / "cluster.backup"
    out = StringIO()
    # Asked through a follower first: the backup is taken by the leader.
    follower = next(i for i in source.ids if i != source.leader())
    others = [word for url in urls for word in ("--url", url)]
    call_command(
        "backup", str(path), "--url", source.urls[follower], *others, stdout=out, stderr=StringIO()
    )
    header = decode_backup(path.read_bytes()).header
    assert out.getvalue().startswith(f"Backup at index {header.index} (term {header.term}, from ")
    assert sorted(header.members) == ["n1", "n2", "n3"]
    source.close()  # the old cluster is gone

    target = process_cluster(3)
    monkeypatch.syspath_prepend(str(target.dir))
    for node_id in target.ids:
        out = StringIO()
        call_command(
            "restore", str(path), "--settings", target.module, "--node", node_id, stdout=out,
            stderr=StringIO(),
        )  # fmt: skip
        assert f"into node {node_id}'s database" in out.getvalue()
    target.start_all()
    with agree.Client(list(target.urls.values())) as client:
        ledger = client.proxy("ledger")
        assert ledger.all_tags() == [f"t{i}" for i in range(20)]
        assert ledger.deposit(1) == 8
        status = client.status()
        assert sorted(status["voters"]) == ["n1", "n2", "n3"]
        assert status["commit_index"] > header.index
        assert client.members()["n2"]["url"] == target.urls["n2"]  # the new cluster's addresses
