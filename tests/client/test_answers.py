"""The client against a stub HTTP server: answers it cannot use are protocol errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import agree


def _raw(body: bytes) -> Callable[[], web.Response]:
    return lambda: web.Response(body=body, content_type="application/json")


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (_raw(b"<html>busy</html>"), "not JSON"),
        (_raw(b""), "not JSON"),
        (_raw(b"\xff\xfe{"), "not JSON"),
        (lambda: web.json_response([1, 2]), "non-object"),
    ],
    ids=["html", "empty", "not-utf8", "list"],
)
async def test_an_answer_that_is_not_a_json_object_is_a_protocol_error(
    answer: Callable[[], web.Response], match: str
) -> None:
    async def status(request: web.Request) -> web.Response:
        return answer()

    app = web.Application()
    app.router.add_get("/v1/status", status)
    async with TestServer(app) as server:
        client = agree.AsyncClient(str(server.make_url("")).rstrip("/"))
        try:
            with pytest.raises(agree.ProtocolError, match=match):
                await client.status()
        finally:
            await client.close()
