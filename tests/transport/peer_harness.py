"""Shared by the transport tests: a node stand-in that records deliveries, and one node's
aiohttp transport behind its own server on a free loopback port."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web

from agree.raft.entries import ConfState
from agree.raft.messages import Heartbeat, InstallSnapshot, Message
from agree.server.peer import add_peer_routes
from agree.transport.aiohttp import AiohttpTransport
from agree.wire.calls import Call, Outcome

SECRET = "a-cluster-secret-long-enough"


class Recorder:
    """A node stand-in: records what the transport delivers."""

    def __init__(self, groups: tuple[str, ...] = ("default",)) -> None:
        self.groups = set(groups)
        self.by_group: dict[str, list[Message]] = {}
        self.received: list[Message] = []
        self.calls: list[Call] = []
        self.answer: Outcome | Exception = Outcome(result={"ok": [1, 2]}, index=9)

    def hosts_group(self, group_id: str) -> bool:
        return group_id in self.groups

    def receive(self, message: Message, group_id: str = "default") -> None:
        self.received.append(message)
        self.by_group.setdefault(group_id, []).append(message)

    async def handle_call(self, call: Call, timeout: float) -> Outcome:
        self.calls.append(call)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def free_socket(port: int = 0) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class Peer:
    """One node's transport behind its own aiohttp server."""

    def __init__(self, node_id: str, sock: socket.socket, secret: str = SECRET, **kw: object):
        self.id = node_id
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.transport = AiohttpTransport(node_id, secret, **kw)  # type: ignore[arg-type]
        self.recorder = Recorder()
        self.runner: web.AppRunner | None = None

    async def start(self, addresses: dict[str, str]) -> Peer:
        app = web.Application()
        add_peer_routes(app, self.transport)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()
        self.transport.update_peers(addresses)
        await self.transport.start(self.recorder)
        return self

    async def stop(self) -> None:
        await self.transport.close()
        if self.runner is not None:
            await self.runner.cleanup()


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not reached in time: {what}")
        await asyncio.sleep(0.01)


def snapshot_chunk(**fields: Any) -> InstallSnapshot:
    """An InstallSnapshot with ``fields``; any other field without a default gets a zero value
    of its type, so these tests keep building one when the core adds a field."""
    zero = {"int": 0, "bool": False, "bytes": b"", "str": "", "ConfState": ConfState()}
    for f in dataclasses.fields(InstallSnapshot):
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.name not in fields and no_default:
            fields[f.name] = zero[str(f.type)]
    return InstallSnapshot(**fields)


def beat(src: str, dst: str, n: int = 1) -> Heartbeat:
    return Heartbeat(src=src, dst=dst, term=n, leader_commit=n, context=b"ctx")
