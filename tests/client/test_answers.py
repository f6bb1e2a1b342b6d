"""The client against a stub HTTP server: answers it cannot use are protocol errors."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import agree


@pytest.mark.parametrize("body", [b"<html>busy</html>", b"", b"\xff\xfe{"], ids=repr)
async def test_an_answer_that_is_not_json_is_a_protocol_error(body: bytes) -> None:
    async def status(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/status", status)
    async with TestServer(app) as server:
        client = agree.AsyncClient(str(server.make_url("")).rstrip("/"))
        try:
            with pytest.raises(agree.ProtocolError, match="not JSON"):
                await client.status()
        finally:
            await client.close()


async def test_an_answer_that_is_not_an_object_is_a_protocol_error() -> None:
    async def status(request: web.Request) -> web.Response:
        return web.json_response([1, 2])

    app = web.Application()
    app.router.add_get("/v1/status", status)
    async with TestServer(app) as server:
        client = agree.AsyncClient(str(server.make_url("")).rstrip("/"))
        try:
            with pytest.raises(agree.ProtocolError, match="non-object"):
                await client.status()
        finally:
            await client.close()
