"""``AsyncClient``: calls a cluster over its HTTP API from asyncio.

One aiohttp ``ClientSession`` (one connection pool) per client.  Requests go to the node
believed to lead (learned from ``/v1/status`` and from "not leader" answers); a node that cannot
be reached is skipped for the next listed one.  Every request has a deadline (the client's
finite default, or ``options(timeout=...)``) and is retried inside it: a command carries this
client's ``(client_id, seq)``, so a retry after a lost answer applies at most once, and a command
whose fate could not be learned in time raises OutcomeUnknownError, never a silent loss.

The client's session (client id, next seq, and the acknowledged low-water mark sent as ``ack``
so that replicas may forget old results) lives here, with the client, as in the Raft
dissertation §6.3.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl as ssl_module
import urllib.parse
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Final

import aiohttp

from agree.client._schema import schema_from_json
from agree.errors import (
    AgreeTimeoutError,
    NotLeaderError,
    OutcomeUnknownError,
    ProtocolError,
    UnavailableError,
    UnknownObjectError,
    ValidationError,
)
from agree.objects.replicated import Consistency
from agree.objects.schema import ObjectSchema, schema_of
from agree.runtime.proxy import AsyncProxy, CallSession
from agree.wire import api_errors
from agree.wire.calls import Call, CallKind, Outcome

#: Seconds a call may take unless the client or ``options(timeout=...)`` says otherwise.
DEFAULT_TIMEOUT: Final = 10.0

# Fraction of an attempt's time given to the server, so that it answers (even with a timeout)
# before the client gives up on the connection.
_SERVER_SHARE: Final = 0.9
# One attempt gets at most this fraction of the call's timeout (and at least a second): a node
# that cannot serve (no leader in sight, removed from the cluster, partitioned away) must not
# use up the whole deadline before the next listed node is tried.
_ATTEMPT_SHARE: Final = 1 / 3
_MIN_ATTEMPT: Final = 1.0
_BACKOFF_MIN: Final = 0.02
_BACKOFF_MAX: Final = 0.5


def _base_url(url: str) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValidationError(f"{url!r} is not a node URL; use e.g. 'http://127.0.0.1:8001'")
    return url.rstrip("/")


class AsyncClient:
    """``async with AsyncClient(["http://127.0.0.1:8001", ...]) as client:``"""

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        listed = [urls] if isinstance(urls, str) else list(urls)
        if not listed:
            raise ValidationError("a client needs at least one node URL")
        if not timeout > 0:
            raise ValidationError("the timeout must be a number of seconds > 0")
        self._urls = [_base_url(u) for u in listed]
        self._target = self._urls[0]
        self._token = token
        self._timeout = float(timeout)
        self._ssl = ssl
        self._session: aiohttp.ClientSession | None = None
        self._schemas: dict[str, dict[str, Any]] | None = None
        self._closed = False
        # The client session of §6.3: commands are numbered; `ack` is the highest seq below
        # which every outcome has been received.
        self._calls = CallSession()

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<{type(self).__name__} {', '.join(self._urls)} (asking {self._target}){state}>"

    # -- lifecycle ------------------------------------------------------------------------------
    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Find the leader and load the schemas (``async with`` does this)."""
        status = await self.status()
        leader_url = status.get("leader_url")
        if isinstance(leader_url, str) and leader_url:
            self._target = leader_url.rstrip("/")
        await self.schemas(refresh=True)

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise UnavailableError("this client is closed")
        if self._session is None:
            headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
            self._session = aiohttp.ClientSession(
                headers=headers, connector=aiohttp.TCPConnector(ssl=self._ssl or True)
            )
        return self._session

    # -- the session of (client id, seq) -------------------------------------------------------
    @property
    def client_id(self) -> str:
        return self._calls.client_id

    def admit(self) -> None:
        """A proxy's call starts at once (the server bounds its own intake)."""
        return None

    def next_call_ids(self) -> tuple[str, int, int]:
        return self._calls.next_call_ids()

    def call_done(self, seq: int) -> None:
        self._calls.call_done(seq)

    # -- proxies --------------------------------------------------------------------------------
    async def schemas(self, *, refresh: bool = False) -> dict[str, dict[str, Any]]:
        """The published schema of every object: name -> ``ObjectSchema.json_schema()``."""
        if self._schemas is None or refresh:
            body = await self._request("GET", "/v1/schema", retry_in_doubt=True)
            objects = body.get("objects")
            if not isinstance(objects, dict):
                raise ProtocolError("the server's /v1/schema answer has no 'objects'")
            self._schemas = objects
        return self._schemas

    def proxy(
        self,
        name: str,
        cls: type | None = None,
        *,
        consistency: Consistency | str | None = None,
        timeout: float | None = None,
    ) -> AsyncProxy:
        """A handle on the object ``name``: ``await proxy.method(...)``.

        With ``cls`` (the user's Replicated class) arguments and results keep their Python
        types, and the class's schema is checked against the server's; without it the schema
        comes from the server (``async with`` or :meth:`connect` loads it).
        """
        published = None if self._schemas is None else self._schemas.get(name)
        if self._schemas is not None and published is None:
            known = ", ".join(sorted(self._schemas)) or "none"
            raise UnknownObjectError(f"no replicated object named {name!r} (hosted: {known})")
        schema: ObjectSchema
        if cls is not None:
            schema = schema_of(cls)
            if published is not None:
                schema.check_compatible(published)
        elif published is not None:
            schema = schema_from_json(name, published)
        else:
            raise UnavailableError(
                f"the schema of {name!r} is not loaded yet: use 'async with AsyncClient(...)' "
                "or 'await client.connect()' first, or pass the class: proxy(name, cls)"
            )
        proxy = AsyncProxy(self, name, schema)
        if consistency is not None or timeout is not None:
            proxy = proxy.options(consistency=consistency, timeout=timeout)
        return proxy

    async def call(self, call: Call, timeout: float | None) -> Outcome:
        """Run one call (the proxy's backend): retried inside its deadline."""
        body: dict[str, Any] = {"args": call.args, "kwargs": call.kwargs}
        if call.kind is CallKind.COMMAND:
            body.update(client_id=call.client_id, seq=call.seq, ack=call.ack)
        elif call.consistency is not None:
            body["consistency"] = Consistency(call.consistency).value
        path = f"/v1/objects/{call.object}/{call.method}"
        data = await self._request(
            "POST",
            path,
            body,
            timeout=timeout,
            retry_in_doubt=True,  # a command carries (client_id, seq); a query changes nothing
            is_command=call.kind is CallKind.COMMAND,
            application_errors=True,
        )
        error = data.get("error")
        index = data.get("index", 0)
        index = index if isinstance(index, int) else 0
        if isinstance(error, dict):
            return Outcome(error=api_errors.application_info(error), index=index)
        return Outcome(result=data.get("result"), index=index)

    # -- cluster operations ---------------------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        """The answering node's status (id, role, leader, term, indexes, members)."""
        return await self._request("GET", "/v1/status", retry_in_doubt=True)

    async def members(self) -> dict[str, dict[str, str]]:
        """Member id -> ``{"url", "role"}`` (role ``voter`` or ``learner``)."""
        body = await self.members_by_group()
        members = body.get("members")
        if not isinstance(members, dict):
            raise ProtocolError("the server's /v1/members answer has no 'members'")
        return members

    async def members_by_group(self) -> dict[str, Any]:
        """The whole ``GET /v1/members`` answer: the "default" group's ``members`` and
        ``leader_id``, and ``groups`` (each Raft group's members and leader)."""
        return await self._request("GET", "/v1/members", retry_in_doubt=True)

    async def add_member(
        self,
        node_id: str,
        url: str,
        *,
        learner: bool = False,
        timeout: float | None = None,
        group: str | None = None,
    ) -> dict[str, dict[str, str]]:
        """Add a node (as a learner, then promoted once caught up unless ``learner``) to every
        Raft group, or to ``group``; returns the members of the "default" group after it."""
        answer = await self.change_members(
            "POST", "/v1/members", {"id": node_id, "url": url, "learner": learner}, timeout, group
        )
        members: dict[str, dict[str, str]] = answer.get("members", {})
        return members

    async def remove_member(
        self, node_id: str, *, timeout: float | None = None, group: str | None = None
    ) -> dict[str, dict[str, str]]:
        """Remove a node from every Raft group, or from ``group``."""
        answer = await self.change_members("DELETE", f"/v1/members/{node_id}", None, timeout, group)
        members: dict[str, dict[str, str]] = answer.get("members", {})
        return members

    async def change_members(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        timeout: float | None,
        group: str | None,
    ) -> dict[str, Any]:
        """A membership change's whole answer: ``members`` and, by group, ``groups`` with
        what the change did in each (``change``)."""
        if group is not None:
            if body is None:
                path = f"{path}?{urllib.parse.urlencode({'group': group})}"
            else:
                body = {**body, "group": group}
        return await self._request(method, path, body, timeout=timeout)

    async def transfer_leader(
        self, node_id: str, *, timeout: float | None = None, group: str | None = None
    ) -> None:
        """Hand leadership (of ``group``, "default" unless named) to ``node_id`` and wait
        until it leads."""
        body: dict[str, Any] = {"id": node_id}
        if group is not None:
            body["group"] = group
        await self._request("POST", "/v1/leader", body, timeout=timeout)

    async def snapshot(self, *, timeout: float | None = None) -> int:
        """Make the answering node snapshot and compact its log; returns the snapshot's index."""
        answer = await self._request("POST", "/v1/snapshot", {}, timeout=timeout, to_leader=False)
        index = answer.get("index")
        if not isinstance(index, int):
            raise ProtocolError("the server's /v1/snapshot answer has no 'index'")
        return index

    async def backup(self, *, timeout: float | None = None) -> bytes:
        """A backup file of the cluster's state, taken by the leader at a linearizable point
        (``GET /v1/backup``); restore it with ``agree-manage restore``."""
        answer = await self._request(
            "GET", "/v1/backup", timeout=timeout, retry_in_doubt=True, binary=True
        )
        body: bytes = answer["body"]
        return body

    # -- transport ------------------------------------------------------------------------------
    def _next_target(self) -> None:
        """Move to the next listed URL after the current one (which did not answer)."""
        try:
            position = self._urls.index(self._target)
        except ValueError:
            position = -1
        self._target = self._urls[(position + 1) % len(self._urls)]

    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        retry_in_doubt: bool = False,
        is_command: bool = False,
        application_errors: bool = False,
        to_leader: bool = True,
        binary: bool = False,
    ) -> dict[str, Any]:
        """Send one request, following the leader and retrying inside the deadline.

        ``retry_in_doubt``: the request may be resent after it may have reached a node (true for
        reads and for commands, which carry their (client_id, seq)); other requests are resent
        only when it is certain that no node received them.  ``binary``: a success's body is
        bytes, answered as ``{"body": bytes}`` (errors are JSON as always).
        """
        loop = asyncio.get_running_loop()
        total = self._timeout if timeout is None else timeout
        deadline = loop.time() + total
        in_doubt = False
        last: BaseException | None = None
        backoff = _BACKOFF_MIN
        session = self._http()
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                what = f"{method} {path}"
                if in_doubt and is_command:
                    raise OutcomeUnknownError(
                        f"{what}: no answer within {total}s; the command may or may not have"
                        " been applied (retrying it with the same client id and seq is safe)"
                    ) from last
                if isinstance(last, AgreeTimeoutError):
                    raise last
                why = "" if last is None else f" (last: {last})"
                raise AgreeTimeoutError(f"{what}: no answer within {total}s{why}") from last
            target = self._target
            attempt = min(remaining, max(total * _ATTEMPT_SHARE, _MIN_ATTEMPT))
            payload = None
            if body is not None:
                payload = dict(body)
                if method == "POST":
                    payload["timeout"] = max(attempt * _SERVER_SHARE, 0.001)
            try:
                async with session.request(
                    method,
                    target + path,
                    json=payload,
                    timeout=aiohttp.ClientTimeout(total=attempt),
                ) as response:
                    status = response.status
                    if binary and status < 400:
                        return {"body": await response.read()}
                    raw = await response.read()
                    try:
                        data = json.loads(raw)  # bytes: no charset lookup, no str copy
                    except ValueError:
                        raise ProtocolError(
                            f"{target} answered {method} {path} with HTTP {status} and a body"
                            " that is not JSON"
                        ) from None
            except aiohttp.ClientConnectorError as exc:
                # Nothing was sent: any request may go elsewhere.
                last = UnavailableError(f"cannot connect to {target}: {exc}")
                self._next_target()
                await asyncio.sleep(min(backoff, max(deadline - loop.time(), 0)))
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                # Sent, and no answer: the request may have been carried out.
                if not retry_in_doubt:
                    raise UnavailableError(
                        f"{target} did not answer {method} {path} ({exc!r}); it may or may not"
                        " have been carried out: check before retrying"
                    ) from exc
                in_doubt = True
                last = UnavailableError(f"{target} did not answer: {exc!r}")
                self._next_target()
                continue
            if status < 400 or (application_errors and status == 422):
                if not isinstance(data, dict):
                    raise ProtocolError(f"{target} answered with a non-object JSON body")
                return data
            error = api_errors.decode(data, status)
            if isinstance(error, NotLeaderError):
                last = error
                if error.leader_url and to_leader and error.leader_url.rstrip("/") != target:
                    self._target = error.leader_url.rstrip("/")
                    continue
            elif isinstance(error, OutcomeUnknownError):
                if not retry_in_doubt:
                    raise error
                in_doubt, last = True, error
            elif isinstance(error, UnavailableError | AgreeTimeoutError):
                last = error
            else:
                raise error
            # This node could not serve (no leader known, a leader change, a removed node): try
            # the next one after a short pause with jitter.
            self._next_target()
            pause = backoff * (0.5 + random.random())
            await asyncio.sleep(min(pause, max(deadline - loop.time(), 0)))
            backoff = min(backoff * 2, _BACKOFF_MAX)
