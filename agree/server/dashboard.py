"""The live cluster dashboard every node serves at ``/``.

One self-contained page (``dashboard.html``: inline CSS and JavaScript, nothing fetched from
outside the package) that polls this node's ``/v1/members`` and every member's ``/v1/status``,
charts the commit rate and the command latency (p50, p99) from this node's ``/v1/status``, lists
the objects from ``/v1/schema``, and follows each object's ``/v1/watch`` stream for the feed of
recent mutations.  The page itself is
open (it holds no data); with TOKENS, open it as ``/?token=...`` and it sends the token as the
``Authorization`` header of its requests.

Asking the other members from the page is a cross-origin request (another port), so
``/v1/status`` answers with ``Access-Control-Allow-Origin: *`` and its preflight allows the
``Authorization`` header: the status is no more exposed than it already is to any HTTP client,
and a token is still required for it when the cluster has TOKENS.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Final

from aiohttp import web

from agree.server.state import Handler

routes = web.RouteTableDef()

#: Paths other nodes' dashboards read across origins.
CORS_PATHS: Final = frozenset({"/v1/status"})


@cache
def page() -> bytes:
    """The dashboard's HTML, read once from the package."""
    return resources.files("agree.server").joinpath("dashboard.html").read_bytes()


@routes.get("/")
async def dashboard(request: web.Request) -> web.Response:
    return web.Response(
        body=page(),
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


@routes.options("/v1/status")
async def status_preflight(request: web.Request) -> web.Response:
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": "GET",
            "Access-Control-Allow-Headers": "Authorization",
            "Access-Control-Max-Age": "600",
        },
    )


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Let another node's dashboard read this node's status (answers and errors alike)."""
    response = await handler(request)
    if request.path in CORS_PATHS:
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


__all__ = ["CORS_PATHS", "cors_middleware", "dashboard", "page", "routes"]
