"""The one aiohttp application of a node: client API, operations endpoints, and (mounted by the
caller) the peer routes, all on one port.

State lives under typed keys (``web.AppKey``); the node's lifetime and the background watchers
are ``cleanup_ctx`` entries.  Shutdown, in aiohttp's order: the listening sockets close first
(nothing new is accepted), then :func:`_drain` lets in-flight calls finish for a grace period and
stops the node, which fails whatever is still waiting with an explicit error (never a hang); the
node's stop flushes and closes storage and closes the peer transport; then connections close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from agree.errors import (
    AgreeError,
    AuthenticationError,
    PermissionDeniedError,
    ProtocolError,
)
from agree.runtime.node import Node
from agree.runtime.proxy import CallSession
from agree.server import client_api, dashboard
from agree.server.auth import TokenChecker
from agree.server.metrics import Metrics, RuntimeMetrics
from agree.server.state import (
    CALLS,
    GRACE,
    INFLIGHT,
    METRICS,
    NODE,
    OWNS_NODE,
    TOKENS,
    Handler,
    InFlight,
)
from agree.wire import api_errors

log = logging.getLogger(__name__)


def error_response(exc: BaseException) -> web.Response:
    status = api_errors.http_status(exc)
    headers = {}
    if status == 503:
        # Where to go next: the leader when known, else try again shortly.
        leader_url = getattr(exc, "leader_url", None)
        if leader_url:
            headers["Link"] = f'<{leader_url}>; rel="leader"'
        headers["Retry-After"] = "1"
    return web.json_response(api_errors.encode(exc), status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as ``{"error": {"type", "message", ...}}`` with a status that says
    whose fault it was."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app._client_max_size
        exc = ProtocolError(f"the request body is larger than MAX_BODY_BYTES ({limit} bytes)")
        body = api_errors.encode(exc)
        body["error"]["limit"] = limit
        return web.json_response(body, status=413)
    except web.HTTPException as http:
        if http.status < 400:
            raise
        message = "no such endpoint" if http.status == 404 else http.reason
        body = api_errors.encode(ProtocolError(f"{request.method} {request.path}: {message}"))
        return web.json_response(body, status=http.status)
    except AgreeError as exc:
        if isinstance(exc, AuthenticationError | PermissionDeniedError):
            # Who was refused and why, never the token they sent.
            log.info(
                "refused %s %s: %s",
                request.method,
                request.path,
                exc,
                extra={"remote": request.remote, **_call_fields(request)},
            )
        return error_response(exc)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("internal error answering %s %s", request.method, request.path)
        return web.json_response(api_errors.encode(Exception()), status=500)


def _call_fields(request: web.Request) -> dict[str, str]:
    """The object and method a request addresses, as log fields."""
    info = request.match_info
    return {k: info[k] for k in ("object", "method") if k in info}


async def _node_lifetime(app: web.Application) -> AsyncIterator[None]:
    node = app[NODE]
    await node.start()
    yield
    await node.stop()


async def _watch_leader(app: web.Application) -> AsyncIterator[None]:
    """Counts leader changes for /metrics (the runtime reports changes, not a count)."""
    node, metrics = app[NODE], app[METRICS]

    async def watch() -> None:
        leader = None
        while True:
            try:
                await node.driver.leader_change()
            except AgreeError:
                return  # the node stopped
            current = node.leader_id
            if current is not None and current != leader:
                metrics.leader_changes.inc()
            leader = current

    task = asyncio.get_running_loop().create_task(watch(), name="agree-leader-watch")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _drain(app: web.Application) -> None:
    """on_shutdown: let in-flight calls finish, then stop the node so the rest fail explicitly."""
    inflight, node = app[INFLIGHT], app[NODE]
    if inflight.count:
        log.info("waiting up to %.1fs for %d in-flight call(s)", app[GRACE], inflight.count)
        await inflight.wait_idle(app[GRACE])
    # Stopping the node fails every waiting proposal and read (each caller gets an error
    # response: "outcome unknown" for a command that may still commit), closes the peers and
    # flushes and closes storage.
    if not app[OWNS_NODE]:
        return
    await node.stop()
    if not await inflight.wait_idle(5.0):
        log.warning("%d call(s) still unanswered after the node stopped", inflight.count)


def create_app(
    node: Node,
    *,
    start_node: bool = True,
    transport: object | None = None,
    runtime_metrics: RuntimeMetrics | None = None,
) -> web.Application:
    """The node's application.  With ``start_node`` the app starts and stops the node itself.

    The peer transport's routes are added by the caller (``add_peer_routes``) before the app
    starts; ``transport`` (the node's peer transport) lets /metrics report its counters, and
    ``runtime_metrics`` (the observer the node was built with) its storage, apply, send and
    snapshot latencies.
    """
    settings = node.settings
    # The CORS middleware is outermost so that error answers carry its header too.
    app = web.Application(
        client_max_size=settings.MAX_BODY_BYTES,
        middlewares=[dashboard.cors_middleware, error_middleware],
    )
    app[NODE] = node
    app[TOKENS] = TokenChecker(settings.TOKENS)
    app[METRICS] = Metrics(node, transport, runtime_metrics)
    app[INFLIGHT] = InFlight()
    app[CALLS] = CallSession()
    app[GRACE] = settings.REQUEST_TIMEOUT
    app[OWNS_NODE] = start_node
    app.add_routes(client_api.routes)
    app.add_routes(dashboard.routes)
    if start_node:
        app.cleanup_ctx.append(_node_lifetime)
    app.cleanup_ctx.append(_watch_leader)
    app.on_shutdown.append(_drain)
    return app

