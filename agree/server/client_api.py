"""The client HTTP API of a node (see the HTTP section of the API reference).

Every call is checked before anything is proposed or read: the token and its permission, the
body's shape, then the arguments against the operation schema (by the node).  Commands carry the
caller's ``(client_id, seq, ack)`` so that a retry applies at most once; a command without them
gets an id from this node (it is then at most once per request, not across a client's retries).
Bodies are JSON only; nothing from a client is ever unpickled.

=====================================  ==========  ==========================================
``POST /v1/objects/{object}/{method}``  read/write  ``{"args", "kwargs", "consistency",
                                                    "client_id", "seq", "ack", "timeout"}``, all
                                                    optional -> ``{"result", "index"}``; 422
                                                    ``application`` when the method raised
``GET /v1/schema``                      read        ``{"objects": {name: published schema}}``
``GET /v1/status``                      read        this node's role, leader, term, indexes
                                                    (of "default"; every group in ``groups``)
``GET /v1/members``                     read        ``{"members": {id: {"url", "role"}},
                                                    "groups": {group: {"members", ...}}}``
``POST /v1/members``                    admin       ``{"id", "url", "learner", "group"}``: add
                                                    (and promote) in every group, or the one
``DELETE /v1/members/{id}``             admin       remove from every group (``?group=G``: one)
``POST /v1/leader``                     admin       ``{"id", "group"}``: transfer a group's
                                                    leadership, wait for it
``POST /v1/snapshot``                   admin       snapshot this node now -> ``{"index"}``
``GET /v1/backup``                      admin       the leader's state at a linearizable point,
                                                    as a backup file (agree.wire.backup)
``GET /v1/watch/{object}``              read        server-sent events; ``?from_index=N``,
                                                    ``?method=M``, or ``Last-Event-ID``
``GET /livez``, ``/readyz``, ``/metrics``  open     health and Prometheus metrics
=====================================  ==========  ==========================================

Errors: ``{"error": {"type", "message", ...attributes}}`` (:mod:`agree.wire.api_errors`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from agree.backup import take_backup
from agree.conf.settings import validate_node_id, validate_node_url
from agree.errors import (
    AgreeError,
    AgreeTimeoutError,
    ConfigurationError,
    SubscriptionOverflowError,
    ValidationError,
)
from agree.objects.replicated import Consistency
from agree.runtime.node import Node
from agree.runtime.status import members_json
from agree.server.auth import ADMIN, READ, WRITE, Permission
from agree.server.metrics import CONTENT_TYPE
from agree.server.state import (
    CALLS,
    INFLIGHT,
    METRICS,
    NODE,
    READY_APPLY_LAG,
    TOKENS,
    read_json_object,
)
from agree.wire import api_errors
from agree.wire.calls import Call, CallKind

routes = web.RouteTableDef()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What an endpoint needs and answers: the source of docs/http-api.md (``docs/generate.py``).

    ``permission`` is enforced by :func:`endpoint` before the handler runs; None means the
    handler checks it itself (``needs`` then says what it checks) or the endpoint is open.
    """

    summary: str
    permission: Permission | None
    needs: str = ""
    body: str = ""
    returns: str = ""
    errors: tuple[str, ...] = ()


#: Every route's handler -> its Endpoint.
ENDPOINTS: Final[dict[Handler, Endpoint]] = {}


def endpoint(
    summary: str,
    permission: Permission | None,
    *,
    needs: str = "",
    body: str = "",
    returns: str = "",
    errors: tuple[str, ...] = (),
) -> Callable[[Handler], Handler]:
    """Describe a handler (under ``@routes.<method>``) and enforce its ``permission``."""
    spec = Endpoint(summary, permission, needs, body, returns, errors)

    def decorate(handler: Handler) -> Handler:
        if permission is None:
            wrapped = handler
        else:

            @functools.wraps(handler)
            async def wrapped(request: web.Request) -> web.StreamResponse:
                _require(request, permission)
                return await handler(request)

        ENDPOINTS[wrapped] = spec
        return wrapped

    return decorate

#: The longest ``timeout`` a caller may ask for, in seconds.
MAX_TIMEOUT: Final = 600.0

_CALL_FIELDS: Final = frozenset(
    {"args", "kwargs", "consistency", "client_id", "seq", "ack", "timeout"}
)


def _require(request: web.Request, permission: Permission) -> None:
    request.app[TOKENS].require(request.headers.get("Authorization"), permission)


def _int_field(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"{name!r} must be a whole number >= 0, got {value!r}")
    return value


def _timeout(request: web.Request, body: dict[str, Any]) -> float:
    value = body.get("timeout")
    if value is None:
        return request.app[NODE].settings.REQUEST_TIMEOUT
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ValidationError(f"'timeout' must be a number of seconds > 0, got {value!r}")
    return min(float(value), MAX_TIMEOUT)


def _call_from_body(name: str, method: str, kind: CallKind, body: dict[str, Any]) -> Call:
    if not _CALL_FIELDS.issuperset(body):
        unknown = sorted(set(body) - _CALL_FIELDS)
        raise ValidationError(
            f"unknown field(s) {', '.join(map(repr, unknown))} in the call; the fields are "
            + ", ".join(sorted(_CALL_FIELDS))
        )
    args = body.get("args", [])
    kwargs = body.get("kwargs", {})
    if not isinstance(args, list):
        raise ValidationError(f"'args' must be a JSON array, got {type(args).__name__}")
    if not isinstance(kwargs, dict):
        raise ValidationError(f"'kwargs' must be a JSON object, got {type(kwargs).__name__}")
    raw_consistency = body.get("consistency")
    consistency = None
    if raw_consistency is not None:
        if kind is CallKind.COMMAND:
            raise ValidationError(f"{name}.{method} is a command; 'consistency' is for queries")
        try:
            consistency = Consistency(raw_consistency)
        except ValueError:
            choices = ", ".join(c.value for c in Consistency)
            raise ValidationError(
                f"unknown consistency {raw_consistency!r}; use one of {choices}"
            ) from None
    client_id = body.get("client_id", "")
    if not isinstance(client_id, str) or len(client_id) > 128:
        raise ValidationError("'client_id' must be a string of at most 128 characters")
    seq = _int_field(body, "seq", 0)
    ack = _int_field(body, "ack", 0)
    if kind is CallKind.COMMAND and bool(client_id) != bool(seq):
        raise ValidationError("'client_id' and 'seq' go together: give both (seq >= 1) or neither")
    if seq and ack >= seq:
        raise ValidationError("'ack' must be lower than 'seq'")
    return Call(
        object=name,
        method=method,
        kind=kind,
        args=args,
        kwargs=kwargs,
        consistency=consistency,
        client_id=client_id,
        seq=seq,
        ack=ack,
    )


@routes.post("/v1/objects/{object}/{method}")
@endpoint(
    "Call a method of a replicated object: a command is replicated and applied once (with "
    "client_id/seq, also across retries); a query reads at the asked consistency. Any node "
    "answers: a follower forwards to the leader.",
    None,
    needs="read for a query, write for a command",
    body='{"args": [...], "kwargs": {...}, "consistency": '
    + " | ".join(f'"{level.value}"' for level in Consistency)
    + ', "client_id": str, "seq": int, "ack": int, "timeout": seconds} -- all optional; '
    "consistency is for queries only; client_id and seq (>= 1) go together, ack < seq",
    returns='200 {"result": <JSON>, "index": <log index>}; 422 {"error": {"type": '
    '"application", ...}} when the method itself raised (the call was carried out)',
    errors=(
        "validation",
        "unknown_object",
        "unknown_method",
        "not_leader",
        "unavailable",
        "outcome_unknown",
        "timeout",
    ),
)
async def call(request: web.Request) -> web.Response:
    app = request.app
    node = app[NODE]
    tokens = app[TOKENS]
    rank = tokens.rank_of(request.headers.get("Authorization"))  # 401 before anything else
    match = request.match_info
    name, method = match["object"], match["method"]
    op = node.schema(name).operation(method)
    kind = CallKind.COMMAND if op.kind == "command" else CallKind.QUERY
    tokens.check(rank, WRITE if kind is CallKind.COMMAND else READ)
    body = await read_json_object(request)
    the_call = _call_from_body(name, method, kind, body)
    timeout = _timeout(request, body)
    metrics = app[METRICS]
    own_seq = None
    if kind is CallKind.COMMAND and not the_call.client_id:
        client_id, own_seq, ack = app[CALLS].next_call_ids()
        the_call = Call(
            object=name,
            method=method,
            kind=kind,
            args=the_call.args,
            kwargs=the_call.kwargs,
            client_id=client_id,
            seq=own_seq,
            ack=ack,
        )
    started = time.perf_counter()
    pending = metrics.proposals_pending if kind is CallKind.COMMAND else None
    with app[INFLIGHT].track():
        if pending is not None:
            pending.inc()
        try:
            outcome = await node.call(the_call, timeout)
        except AgreeError as exc:
            # A call refused by the schema was never a proposal.
            if kind is CallKind.COMMAND and not isinstance(exc, ValidationError):
                metrics.proposals_failed.inc()
            raise
        finally:
            if pending is not None:
                pending.dec()
            if own_seq is not None:
                app[CALLS].call_done(own_seq)
            metrics.observe_call(kind.value, time.perf_counter() - started)
    if outcome.error is not None:
        # The user's method raised: the call was carried out, and this is its outcome.
        return web.json_response(
            api_errors.encode_application(outcome.error, outcome.index), status=422
        )
    return web.json_response({"result": outcome.result, "index": outcome.index})


@routes.get("/v1/schema")
@endpoint(
    "The published schema of every object this node hosts.",
    READ,
    returns='200 {"objects": {name: {"operations": ..., ...}}}',
)
async def schema(request: web.Request) -> web.Response:
    schemas = request.app[NODE].local_schemas()
    return web.json_response({"objects": {name: s.json_schema() for name, s in schemas.items()}})


def _status_json(request: web.Request) -> dict[str, Any]:
    node = request.app[NODE]
    status = node.status()
    body = status.to_json()
    body["url"] = status.members.get(status.id) or node.settings.node_url()
    body["leader_url"] = status.members.get(status.leader_id) if status.leader_id else None
    body["latency"] = request.app[METRICS].recent_latency.summary()
    body["groups"] = {group_id: g.group_json() for group_id, g in node.statuses().items()}
    return body


@routes.get("/v1/status")
@endpoint(
    "This node's view: its role, the leader, term, commit and applied indexes, members. The "
    'top-level fields are of the "default" group; "groups" has every Raft group this '
    "node hosts.",
    READ,
    returns='200 {"id", "role", "leader_id", "leader_url", "term", "commit_index", '
    '"applied_index", "voters", "learners", "members", "url", "latency": {"command" | '
    '"query": {"count", "p50", "p99"}} (seconds, the calls this node answered in the last '
    '5 s), "groups": {group: {"role", "leader_id", "leader_url", "term", "commit_index", '
    '"applied_index", "last_index", "voters", "learners"}}, ...}',
)
async def status(request: web.Request) -> web.Response:
    return web.json_response(_status_json(request))


@routes.get("/v1/members")
@endpoint(
    'The cluster\'s members as this node knows them: of the "default" group at the top '
    'level, and of every Raft group in "groups".',
    READ,
    returns='200 {"members": {id: {"url", "role": "voter" | "learner"}}, "leader_id", '
    '"groups": {group: {"members", "leader_id"}}}',
)
async def members(request: web.Request) -> web.Response:
    node = request.app[NODE]
    members = members_json(node.members())
    return web.json_response(
        {"members": members, "leader_id": node.leader_id, "groups": _groups_members(node)}
    )


def _groups_members(node: Node) -> dict[str, dict[str, Any]]:
    return {
        group_id: {"members": members_json(status.member_list()), "leader_id": status.leader_id}
        for group_id, status in node.statuses().items()
    }


def _group(node: Node, body: dict[str, Any]) -> str | None:
    """The group a change names (None: every group), one this node hosts."""
    group = body.get("group")
    if group is None:
        return None
    if not isinstance(group, str) or not node.hosts_group(group):
        raise ValidationError(f"no Raft group {group!r} (groups: {sorted(node.groups)})")
    return group


def _changed(node: Node, changes: dict[str, str]) -> web.Response:
    """The answer to a membership change: the members after it, and what it did per group."""
    groups = _groups_members(node)
    for group_id, change in changes.items():
        groups[group_id]["change"] = change
    return web.json_response({"members": members_json(node.members()), "groups": groups})


def _checked(what: str, check: Any, value: Any, **kwargs: Any) -> str:
    try:
        result: str = check(value, setting=what, **kwargs)
    except ConfigurationError as exc:
        raise ValidationError(str(exc)) from None
    return result


@routes.post("/v1/members")
@endpoint(
    "Add a node: as a learner, then (unless learner is true) promoted to voter once it has "
    "caught up. Every Raft group (or the one named) is changed in turn, each by its leader "
    "(any node forwards); one change at a time per group (single-server changes, Raft "
    "dissertation §4.1). An error names the group it failed in; retrying is safe.",
    ADMIN,
    body='{"id": node id, "url": "http(s)://host:port", "learner": false, "group": optional '
    'group, "timeout": seconds}',
    returns='200 {"members": {...}, "groups": {group: {"members", "leader_id", "change": '
    '"added" | "promoted" | "unchanged"}}}',
    errors=("validation", "not_leader", "membership_change", "outcome_unknown", "timeout"),
)
async def add_member(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    node_id = _checked("id", validate_node_id, body.get("id"))
    url = _checked("url", validate_node_url, body.get("url"))
    learner = body.get("learner", False)
    if not isinstance(learner, bool):
        raise ValidationError("'learner' must be true or false")
    node = request.app[NODE]
    with request.app[INFLIGHT].track():
        changes = await node.add_member(
            node_id, url, learner=learner, timeout=_timeout(request, body), group=_group(node, body)
        )
    return _changed(node, changes)


@routes.delete("/v1/members/{id}")
@endpoint(
    "Remove a member (a voter or a learner) from every Raft group (or the one named by the "
    "query parameter group), each by its leader (any node forwards); a group it is not a "
    "member of is left unchanged. An error names the group it failed in; retrying is safe.",
    ADMIN,
    returns='200 {"members": {...}, "groups": {group: {"members", "leader_id", "change": '
    '"removed" | "unchanged"}}}',
    errors=("validation", "not_leader", "membership_change", "outcome_unknown"),
)
async def remove_member(request: web.Request) -> web.Response:
    node_id = _checked("id", validate_node_id, request.match_info["id"])
    node = request.app[NODE]
    group = _group(node, dict(request.query))
    with request.app[INFLIGHT].track():
        changes = await node.remove_member(node_id, timeout=_timeout(request, {}), group=group)
    return _changed(node, changes)


@routes.post("/v1/leader")
@endpoint(
    'Hand leadership of a Raft group ("default" unless named) to a voter and wait until it '
    "leads (Raft dissertation §3.10). Any node forwards it to the group's leader.",
    ADMIN,
    body='{"id": node id, "group": optional group, "timeout": seconds}',
    returns='200 {"leader_id", "group"}',
    errors=("validation", "not_leader", "timeout"),
)
async def transfer_leader(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    node_id = _checked("id", validate_node_id, body.get("id"))
    node = request.app[NODE]
    group = _group(node, body)
    status = node.status(group)
    if node_id not in status.voters:
        raise ValidationError(f"{node_id!r} is not a voting member; leadership can go to a voter")
    with request.app[INFLIGHT].track():
        await node.transfer_leader(node_id, timeout=_timeout(request, body), group=group)
    # The group's leader saw node_id lead before it answered.  This node's own view may lag
    # by a write: the new leader sends as leader while its Ready is still being persisted
    # (§10.2.1), and its status follows once that Ready is done.
    return web.json_response({"leader_id": node_id, "group": status.group})


@routes.post("/v1/snapshot")
@endpoint(
    "Snapshot this node's state now and compact its log (Raft §7).",
    ADMIN,
    returns='200 {"index": the snapshot\'s last log index}',
    errors=("unavailable",),
)
async def snapshot(request: web.Request) -> web.Response:
    node = request.app[NODE]
    with request.app[INFLIGHT].track():
        index = await node.snapshot()
    return web.json_response({"index": index})


@routes.get("/v1/backup")
@endpoint(
    "A backup of the whole replicated state, taken by the leader at a linearizable point "
    "(every command acknowledged before the request is in it); with several Raft groups, "
    "every group, each at a linearizable point of its own. Nothing is written or "
    "compacted. Restore it with `agree-manage restore FILE` (docs/operations.md).",
    ADMIN,
    returns="200 application/octet-stream: the backup file (a header line with the format "
    "version, index, term, membership, every object's schema and the body's SHA-256, and "
    "the same for every other group, then the states)",
    errors=("not_leader", "unavailable", "timeout"),
)
async def backup(request: web.Request) -> web.Response:
    node = request.app[NODE]
    with request.app[INFLIGHT].track():
        try:
            data = await take_backup(node, node.settings.REQUEST_TIMEOUT)
        except TimeoutError:
            raise AgreeTimeoutError("the leader could not confirm a read index in time") from None
    return web.Response(body=data, content_type="application/octet-stream")


@routes.get("/v1/watch/{object}")
@endpoint(
    "Server-sent events: one `mutation` event per applied command of the object, its `id` "
    "the log index. Query: method=M filters by method; from_index=N (or the Last-Event-ID "
    "header, from the next index) resumes.",
    READ,
    returns="200 text/event-stream; `event: error` with subscription_overflow when the "
    "watcher fell too far behind (resume from the index it gives)",
    errors=("validation", "unknown_object", "unknown_method", "subscription_overflow"),
)
async def watch(request: web.Request) -> web.StreamResponse:
    """Server-sent events, one ``mutation`` event per applied command, ``id`` = its log index.

    Resume with ``?from_index=N`` or the standard ``Last-Event-ID`` header (from the next index);
    a start that this node no longer holds is refused with 410 and SubscriptionOverflowError.
    """
    node = request.app[NODE]
    name = request.match_info["object"]
    schema = node.schema(name)
    method = request.query.get("method")
    if method is not None:
        schema.operation(method)
    from_index: int | None = None
    raw = request.query.get("from_index")
    last_id = request.headers.get("Last-Event-ID")
    try:
        if raw is not None:
            from_index = int(raw)
        elif last_id is not None:
            from_index = int(last_id) + 1
    except ValueError:
        raise ValidationError("from_index (or Last-Event-ID) must be a whole number") from None
    if from_index is not None and from_index < 1:
        raise ValidationError("from_index must be >= 1")
    stream = node.mutations(name, method, from_index=from_index)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    try:
        await response.prepare(request)
        await response.write(b": watching\n\n")
        async for mutation in stream:
            op = schema.operations.get(mutation.method)
            try:
                data = mutation.to_json(op)
            except AgreeError:
                data = mutation.to_json()
            event = f"id: {mutation.index}\nevent: mutation\ndata: {json.dumps(data)}\n\n"
            await response.write(event.encode())
    except SubscriptionOverflowError as exc:
        # Too far behind: say where to resume from, then end the stream.
        body = json.dumps(api_errors.encode(exc))
        with contextlib.suppress(ConnectionError):
            await response.write(f"event: error\ndata: {body}\n\n".encode())
    except ConnectionError:
        pass  # the watcher went away
    finally:
        stream.close()
    return response


@routes.get("/livez")
@endpoint(
    "Liveness: 503 once the node has failed (storage error, unrestorable state) and must be "
    "restarted.",
    None,
    returns='200 {"live": true}; 503 {"live": false, "reason"}',
)
async def livez(request: web.Request) -> web.Response:
    failure = request.app[NODE].failure
    if failure is not None:
        return web.json_response({"live": False, "reason": str(failure)}, status=503)
    return web.json_response({"live": True})


@routes.get("/readyz")
@endpoint(
    "Readiness: a leader is known and the applied index is within READY_APPLY_LAG "
    "entries of the commit index.",
    None,
    returns='200 {"ready": true, "reasons": [], "leader_id", "commit_index", "applied_index"}; '
    "503 with the reasons",
)
async def readyz(request: web.Request) -> web.Response:
    node = request.app[NODE]
    reasons = []
    if node.failure is not None:
        reasons.append(f"the node failed: {node.failure}")
        status = None
    else:
        status = node.status()
        if status.leader_id is None:
            reasons.append("no leader is known")
        lag = status.commit_index - status.applied_index
        if lag > READY_APPLY_LAG:
            reasons.append(f"applied index trails the commit index by {lag} entries")
    body: dict[str, Any] = {"ready": not reasons, "reasons": reasons}
    if status is not None:
        body.update(
            leader_id=status.leader_id,
            commit_index=status.commit_index,
            applied_index=status.applied_index,
        )
    return web.json_response(body, status=200 if not reasons else 503)


@routes.get("/metrics")
@endpoint(
    "Prometheus metrics of this node (text exposition format).",
    None,
    returns="200 text/plain; version=0.0.4",
)
async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


__all__ = ["ENDPOINTS", "Endpoint", "endpoint", "routes"]
