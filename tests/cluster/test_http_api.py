"""The client HTTP API of a real node process: every bad request gets its clear error, and
nothing is written."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

from processes import ProcessCluster, http

READ = "read-token-000000000000"
WRITE = "write-token-00000000000"
ADMIN = "admin-token-00000000000"
TOKENS = {READ: "read", WRITE: "write", ADMIN: "admin"}


class _Plant:
    """Unpickling this creates a file: the proof that nobody unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def test_bad_requests_get_their_error_and_write_nothing(
    process_cluster: Callable[..., ProcessCluster], tmp_path: Path
) -> None:
    cluster = process_cluster(1, TOKENS=TOKENS, MAX_BODY_BYTES=4096)
    cluster.start_all()
    base = cluster.urls["n1"]
    call = base + "/v1/objects/ledger/append"

    status, body = http("POST", call, {"args": ["first"]}, token=WRITE)
    assert (status, body["result"]) == (200, 1)
    _, before = http("GET", base + "/v1/status", token=READ)

    def error(status: int, kind: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        got, body = http(*args, **kwargs)
        assert (got, body["error"]["type"]) == (status, kind), body
        assert body["error"]["message"]
        return dict(body["error"])

    # Unknown object and method, wrong argument types and counts, malformed bodies.
    error(404, "unknown_object", "POST", base + "/v1/objects/nope/append", {}, token=WRITE)
    err = error(404, "unknown_method", "POST", base + "/v1/objects/ledger/apend", token=WRITE)
    assert "append" in err["message"]  # the available operations are listed
    error(400, "validation", "POST", call, {"args": [42]}, token=WRITE)
    error(400, "validation", "POST", call, {"args": []}, token=WRITE)
    error(400, "validation", "POST", call, {"args": ["a", "b"]}, token=WRITE)
    error(400, "validation", "POST", call, {"args": "a"}, token=WRITE)
    error(400, "validation", "POST", call, {"args": ["a"], "bogus": 1}, token=WRITE)
    error(400, "validation", "POST", call, {"args": ["a"], "seq": 3}, token=WRITE)
    error(400, "protocol", "POST", call, raw=b'{"args": [', token=WRITE)
    error(400, "protocol", "POST", call, raw=b"[1, 2]", token=WRITE)
    error(400, "protocol", "POST", call, raw=b'{"args": [NaN]}', token=WRITE)
    err = error(413, "protocol", "POST", call, {"args": ["x" * 5000]}, token=WRITE)
    assert err["limit"] == 4096
    error(404, "protocol", "GET", base + "/v1/nothing-here", token=READ)
    # No byte of a pickle is ever unpickled, authenticated or not.
    planted = tmp_path / "planted"
    payload = pickle.dumps(_Plant(str(planted)))
    for token in (None, WRITE, ADMIN):
        for path in ("/v1/objects/ledger/append", "/v1/members", "/v1/leader"):
            got, _ = http("POST", base + path, raw=payload, token=token)
            assert got in (400, 401, 403)
    assert not planted.exists()

    # Tokens: missing, wrong, and lacking the permission.
    error(401, "authentication", "POST", call, {"args": ["a"]})
    wrong = "not-a-valid-token-at-all"
    error(401, "authentication", "POST", call, {"args": ["a"]}, token=wrong)
    error(401, "authentication", "GET", base + "/v1/status")
    err = error(403, "permission_denied", "POST", call, {"args": ["a"]}, token=READ)
    assert err["required"] == "write"
    for token in (READ, WRITE):
        error(403, "permission_denied", "POST", base + "/v1/leader", {"id": "n1"}, token=token)
        error(
            403,
            "permission_denied",
            "POST",
            base + "/v1/members",
            {"id": "n9", "url": "http://127.0.0.1:1"},
            token=token,
        )
        error(403, "permission_denied", "DELETE", base + "/v1/members/n1", token=token)
        error(403, "permission_denied", "POST", base + "/v1/snapshot", token=token)
    # A read token reads; a bad admin request is refused before it reaches the cluster.
    status, body = http("POST", base + "/v1/objects/ledger/count", {}, token=READ)
    assert (status, body["result"]) == (200, 1)
    error(400, "validation", "POST", base + "/v1/members", {"id": "bad id!"}, token=ADMIN)
    error(400, "validation", "POST", base + "/v1/leader", {"id": "n7"}, token=ADMIN)

    # Nothing was written by any of it: no new log entry, the state is as it was.
    _, after = http("GET", base + "/v1/status", token=READ)
    assert after["commit_index"] == before["commit_index"]
    status, body = http("POST", base + "/v1/objects/ledger/all_tags", {}, token=READ)
    assert body["result"] == ["first"]
    # The tokens never reach the node's log.
    log = cluster.log("n1")
    assert all(token not in log for token in TOKENS)


def test_calls_errors_health_and_metrics_over_http(
    process_cluster: Callable[..., ProcessCluster],
) -> None:
    cluster = process_cluster(1)
    cluster.start_all()
    base = cluster.urls["n1"]
    status, body = http("POST", base + "/v1/objects/ledger/deposit", {"args": [5]})
    assert (status, body["result"]) == (200, 5)
    # A user's exception: the call was carried out; the error names the user's type.
    status, body = http("POST", base + "/v1/objects/ledger/take", {"kwargs": {"amount": 9}})
    assert status == 422
    assert body["error"]["type"] == "application"
    assert body["error"]["exception"] == "cluster_models:Overdrawn"
    assert body["error"]["message"] == "balance 5 < 9"
    # The same (client_id, seq) applies once, however often it is sent.
    once = {"args": [1], "client_id": "curl-1", "seq": 1}
    assert http("POST", base + "/v1/objects/ledger/deposit", once)[1]["result"] == 6
    assert http("POST", base + "/v1/objects/ledger/deposit", once)[1]["result"] == 6
    status, body = http("POST", base + "/v1/objects/ledger/get_balance", {"consistency": "any"})
    assert (status, body["result"]) == (200, 6)
    status, body = http(
        "POST", base + "/v1/objects/ledger/get_balance", {"consistency": "sometimes"}
    )
    assert (status, body["error"]["type"]) == (400, "validation")

    status, schema = http("GET", base + "/v1/schema")
    assert status == 200
    assert set(schema["objects"]["ledger"]["operations"]) >= {"append", "take", "count"}
    status, members = http("GET", base + "/v1/members")
    assert members["members"] == {"n1": {"url": base, "role": "voter"}}
    assert http("GET", base + "/livez")[0] == 200
    status, ready = http("GET", base + "/readyz")
    assert (status, ready["ready"], ready["leader_id"]) == (200, True, "n1")
    status, snap = http("POST", base + "/v1/snapshot")
    assert status == 200 and snap["index"] >= 1

    status, text = http("GET", base + "/metrics")
    assert status == 200
    metrics = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert metrics["agree_server_has_leader"] == "1.0"
    assert float(metrics["agree_server_leader_changes_seen_total"]) >= 1
    assert float(metrics["agree_server_proposals_applied_total"]) >= 4
    # The runtime's own latencies (the node's Observer): writes, applies and the snapshot above.
    assert float(metrics["agree_disk_write_duration_seconds_count"]) >= 1
    assert float(metrics["agree_disk_entries_persisted_total"]) >= 4
    assert float(metrics["agree_server_apply_duration_seconds_count"]) >= 1
    assert float(metrics["agree_server_entries_applied_total"]) >= 4
    assert float(metrics["agree_snapshot_save_duration_seconds_count"]) >= 1
    assert metrics["agree_server_proposals_pending"] == "0.0"
