"""agree-manage's cluster commands (status, call, members, snapshot, transfer-leader) against a
real node process."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO

import pytest
from processes import SECRET, ProcessCluster, free_ports

import agree
from agree.management import CommandError, call_command

ADMIN = "admin-token-00000000000"
READ = "read-token-000000000000"


def test_cluster_commands_from_a_shared_settings_module(
    process_cluster: Callable[..., ProcessCluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The settings module every node shares names no NODE_ID; any member will do for a client.
    cluster = process_cluster(1)
    cluster.start_all()
    (dead,) = free_ports(1)
    module = f"shared_settings_{dead}"
    (cluster.dir / f"{module}.py").write_text(
        f"NODES = {{'n1': {cluster.urls['n1']!r}, 'n2': 'http://127.0.0.1:{dead}'}}\n"
        f"CLUSTER_SECRET = {SECRET!r}\n"
    )
    monkeypatch.syspath_prepend(str(cluster.dir))
    out = StringIO()
    call_command("status", "--settings", module, "--json", stdout=out)
    assert json.loads(out.getvalue())["leader_id"] == "n1"


def test_cluster_commands(process_cluster: Callable[..., ProcessCluster]) -> None:
    cluster = process_cluster(1, TOKENS={ADMIN: "admin", READ: "read"})
    cluster.start_all()
    url = cluster.urls["n1"]

    def run(*args: str, token: str = ADMIN) -> str:
        out = StringIO()
        call_command(args[0], *args[1:], "--url", url, "--token", token, stdout=out)
        return out.getvalue()

    status = json.loads(run("status", "--json"))
    assert status["leader_id"] == "n1"
    assert status["members"]["n1"]["role"] == "leader"
    assert "leader: n1" in run("status")
    assert json.loads(run("call", "ledger.append", '"from-cli"')) == 1
    assert json.loads(run("call", "ledger.append", "plain-text")) == 2
    assert json.loads(run("call", "ledger.all_tags", "--consistency", "any")) == [
        "from-cli",
        "plain-text",
    ]
    assert run("members", "list").split() == ["n1", "voter", url]
    schema = run("schema")
    assert "ledger (Ledger)" in schema and "  append(tag: str) -> int  [command]" in schema
    assert "append" in json.loads(run("schema", "--json"))["ledger"]["operations"]
    assert run("snapshot").startswith("Snapshot at index ")
    assert run("transfer-leader", "n1") == "n1 is the leader.\n"
    with pytest.raises(CommandError, match=r"^Overdrawn: balance 0 < 5$"):
        run("call", "ledger.take", "5")
    with pytest.raises(agree.UnknownMethodError):
        run("call", "ledger.apend", '"x"')
    with pytest.raises(agree.PermissionDeniedError):
        run("snapshot", token=READ)
    with pytest.raises(CommandError, match="needs the new node's ID and URL"):
        run("members", "add", "n2")
