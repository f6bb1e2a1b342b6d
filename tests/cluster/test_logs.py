"""runnode with LOG_FORMAT = "json": every line of a real three-node cluster is one JSON object
with the stable keys, bound to its node, and no line carries a token or the cluster secret."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from typing import Any

from processes import SECRET, ProcessCluster, http

from agree.logs import FIELDS

ADMIN = "admin-token-log-test-000000"
READER = "reader-token-log-test-00000"


def _lines(text: str) -> list[dict[str, Any]]:
    records = []
    for line in text.splitlines():
        if not line.strip():
            continue
        record = json.loads(line)  # every line is JSON, or the test fails here
        assert isinstance(record, dict), line
        records.append(record)
    return records


def _leader(cluster: ProcessCluster) -> str:
    for _ in range(300):
        for node_id, url in cluster.urls.items():
            status, body = http("GET", f"{url}/v1/status", token=ADMIN)
            if status == 200 and body["role"] == "leader":
                return node_id
        time.sleep(0.05)
    raise AssertionError("no leader elected")


def test_json_logs_of_a_three_node_cluster(
    process_cluster: Callable[..., ProcessCluster],
) -> None:
    cluster = process_cluster(
        3, LOG_FORMAT="json", TOKENS={ADMIN: "admin", READER: "read"}, SNAPSHOT_ENTRIES=5
    )
    cluster.start_all()
    leader = _leader(cluster)
    url = cluster.urls[leader]
    for i in range(6):  # past SNAPSHOT_ENTRIES: the leader takes a snapshot
        status, _ = http("POST", f"{url}/v1/objects/ledger/append", {"args": [f"t{i}"]},
                         token=ADMIN)
        assert status == 200
    # Refusals are logged (without what was sent as the token).
    status, _ = http("POST", f"{url}/v1/objects/ledger/append", {"args": ["x"]}, token=READER)
    assert status == 403
    status, _ = http("GET", f"{url}/v1/status", token="not-a-token-but-long-" + SECRET)
    assert status == 401
    status, _ = http("POST", f"{url}/v1/snapshot", token=ADMIN)
    assert status == 200
    for node_id in cluster.ids:  # a clean stop logs too
        cluster.signal(node_id, signal.SIGTERM)
        cluster.procs[node_id].wait(timeout=20)

    by_node = {node_id: _lines(cluster.log(node_id)) for node_id in cluster.ids}
    for node_id, records in by_node.items():
        assert records, node_id
        for record in records:
            assert list(record)[:4 + len(FIELDS)] == ["ts", "level", "logger", "msg", *FIELDS]
            assert record["node"] == node_id, record
            assert record["group"] == "default", record
        text = cluster.log(node_id)
        for secret in (SECRET, ADMIN, READER):
            assert secret not in text, f"{node_id} logged a secret"
        messages = [r["msg"] for r in records]
        assert any(m.startswith("started:") for m in messages), messages
        assert "stopped" in messages, messages

    records = by_node[leader]
    became = [r for r in records if r["msg"] == "became the leader"]
    assert became and isinstance(became[0]["term"], int) and became[0]["term"] >= 1
    snapshots = [r for r in records if r["msg"].startswith("took a snapshot")]
    assert snapshots and all(isinstance(r["index"], int) and r["index"] > 0 for r in snapshots)
    refused = [r for r in records if r["msg"].startswith("refused")]
    assert {r["level"] for r in refused} == {"INFO"}
    forbidden = next(r for r in refused if "append" in r["msg"])
    assert (forbidden["object"], forbidden["method"]) == ("ledger", "append")
    assert any("not valid" in r["msg"] for r in refused), refused
    followers = [n for n in cluster.ids if n != leader]
    for node_id in followers:
        assert any(
            r["msg"] == f"now follower; the leader is {leader}" and r.get("leader") == leader
            for r in by_node[node_id]
        ), node_id
