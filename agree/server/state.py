"""What the handlers of a node's application share: its typed state keys (``web.AppKey``), the
handler type, the in-flight call counter that shutdown waits on, and reading a JSON body.

:mod:`agree.server.app` builds the application from these; the client API and the dashboard
read them, so neither imports the module that mounts them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from agree.errors import ProtocolError
from agree.runtime.node import Node
from agree.runtime.proxy import CallSession
from agree.server.auth import TokenChecker
from agree.server.metrics import Metrics

#: How far the applied index may trail the commit index for /readyz to say ready.
READY_APPLY_LAG: Final = 1_000


class InFlight:
    """Counts client calls being answered, so that shutdown can wait for them.

    ``with inflight.track():`` around each; a class rather than a generator, as it is on the
    path of every call."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def track(self) -> InFlight:
        return self

    def __enter__(self) -> None:
        self.count += 1
        if self.count == 1:
            self._idle.clear()

    def __exit__(self, *exc: object) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


NODE: Final = web.AppKey("agree_node", Node)
TOKENS: Final = web.AppKey("agree_tokens", TokenChecker)
METRICS: Final = web.AppKey("agree_metrics", Metrics)
INFLIGHT: Final = web.AppKey("agree_inflight", InFlight)
#: The session of the commands this API issues for callers that bring no client id.
CALLS: Final = web.AppKey("agree_calls", CallSession)
#: Seconds shutdown waits for in-flight calls before failing them.
GRACE: Final = web.AppKey("agree_grace", float)
#: Whether the app started the node, and so stops it.
OWNS_NODE: Final = web.AppKey("agree_owns_node", bool)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body; ProtocolError when it is not one (413 when too big)."""
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"the request body must be a JSON object, not {type(body).__name__}")
    return body
