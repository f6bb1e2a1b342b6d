"""agree.Client and agree.AsyncClient against a real node process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from cluster_models import Ledger, Overdrawn
from processes import REPO, ProcessCluster, free_ports

import agree
from agree import Consistency


class OtherLedger(agree.Replicated):
    @agree.command
    def append(self, tag: int) -> int:
        return tag


def test_import_loads_no_runtime_or_storage() -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import agree.client"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO)},
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()}
    assert "agree.client" in imported
    for module in (
        "sqlalchemy",
        "alembic",
        "agree.runtime.node",
        "agree.storage",
        "agree.runtime.driver",
    ):
        assert module not in imported, module


def test_sync_client_proxies_errors_and_cluster_calls(
    process_cluster: Callable[..., ProcessCluster],
) -> None:
    cluster = process_cluster(1)
    cluster.start_all()
    (dead,) = free_ports(1)
    urls = [f"http://127.0.0.1:{dead}", cluster.urls["n1"]]  # the first one never answers
    with agree.Client(urls, timeout=5.0) as client:
        ledger = client.proxy("ledger")  # the schema comes from the server
        assert ledger.deposit(10) == 10
        assert ledger.append("a") == 1
        assert ledger.all_tags() == ["a"]
        assert ledger.options(consistency=Consistency.ANY, timeout=2.0).count() == 1
        assert ledger.options(consistency="leader").get_balance() == 10
        with pytest.raises(Overdrawn, match="balance 10 < 11"):  # the user's own type
            ledger.take(11)
        with pytest.raises(agree.ValidationError):
            ledger.append(42)  # checked by the server's schema
        with pytest.raises(agree.ValidationError):
            ledger.append("a", "b")  # checked here
        with pytest.raises(agree.UnknownObjectError):
            client.proxy("nope")
        typed = client.proxy("ledger", Ledger)  # the user's class, checked against the server
        assert typed.count() == 1
        with pytest.raises(agree.ValidationError):
            typed.append(42)  # checked here, strictly
        with pytest.raises(agree.SchemaMismatchError, match="append"):
            client.proxy("ledger", OtherLedger)  # not the class the cluster runs
        status = client.status()
        assert (status["id"], status["role"], status["leader_id"]) == ("n1", "leader", "n1")
        assert client.members() == {"n1": {"url": cluster.urls["n1"], "role": "voter"}}
        assert client.snapshot() >= 1
        with pytest.raises(agree.ValidationError):
            client.transfer_leader("n5")
        cluster.kill("n1")
        # A misspelt method fails on the client: no request (the node is gone anyway).
        with pytest.raises(agree.UnknownMethodError, match="apend"):
            ledger.apend("x")
        with pytest.raises(agree.AgreeTimeoutError):  # the node is gone: a finite wait
            ledger.options(timeout=0.5).count()


async def test_async_client(process_cluster: Callable[..., ProcessCluster]) -> None:
    cluster = process_cluster(1)
    cluster.start_all()
    async with agree.AsyncClient(list(cluster.urls.values())) as client:
        ledger = client.proxy("ledger")
        assert await ledger.append("x") == 1
        assert await ledger.count() == 1
        with pytest.raises(Overdrawn):
            await ledger.take(1)
        assert (await client.members())["n1"]["role"] == "voter"
    with pytest.raises(agree.UnavailableError):
        await client.status()  # closed
