"""The inbound side of the peer transport: the WebSocket route other nodes dial.

A connection is authenticated first (:mod:`agree.wire.handshake`: the dialer proves it knows
the cluster secret and claims an id that is a member, then this node proves itself); until
then nothing but the handshake's small JSON texts is read, and no peer frame is decoded.
After it, binary frames carry :class:`~agree.wire.peer.PeerBatch` batches (delivered to the
node), fragments of large batches (snapshot chunks, reassembled here), and forwarded calls
(answered on the same socket, tagged with their request id).  A malformed frame or a batch
from another node than the one authenticated closes that connection with a close code and a
reason, and a log line; the server goes on.  A batch for a Raft group this node does not host
is dropped, and logged once per peer and group: the connection carries the other groups' batches
on (a peer may simply know of a group before this node does).

:func:`add_peer_routes` mounts the route on the node's one aiohttp application::

    transport = AiohttpTransport.from_settings(settings, ssl=client_context)  # outbound TLS
    app = web.Application()
    add_peer_routes(app, transport)  # at PEER_PATH; peers dial {their NODES url}/v1/peer
    node = Node(settings, transport=transport)  # node.start() registers it with the route

The server's own TLS (and mutual TLS: ``verify_mode = CERT_REQUIRED``) is the site's
``ssl_context``; until the node has started, peers are refused with CLOSE_NOT_READY and retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from typing import Final, Protocol

from aiohttp import WSMsgType, web

from agree.errors import ProtocolError
from agree.transport.base import TransportHandler
from agree.wire.calls import Call, Outcome
from agree.wire.handshake import (
    CLOSE_AUTHENTICATION,
    CLOSE_NOT_READY,
    CLOSE_PROTOCOL,
    CLOSE_REPLACED,
    close_reason,
    decode_hello,
    decode_proof,
    encode_challenge,
    encode_welcome,
    new_nonce,
    proof,
    proofs_match,
)
from agree.wire.peer import (
    FrameKind,
    decode_call_request,
    decode_fragment,
    decode_peer_batch,
    encode_call_response,
    frame_kind,
)

log = logging.getLogger(__name__)

#: Where peers dial, on the node's one port.
PEER_PATH: Final = "/v1/peer"


class _Refused(Exception):
    """Closes the connection with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class PeerAcceptor:
    """Accepts the peer connections of one node.

    ``members`` tells the current members' ids (the address book); ``handler`` is set by the
    transport's ``start`` and cleared by its ``close``: while it is None, connections are
    refused with CLOSE_NOT_READY so the dialer retries later.
    """

    def __init__(
        self,
        node_id: str,
        secret: bytes,
        *,
        members: Callable[[], Collection[str]],
        max_frame_bytes: int,
        handshake_timeout: float,
        ping_interval: float | None,
        max_unauthenticated: int = 64,
    ) -> None:
        self.node_id = node_id
        self._secret = secret
        self._members = members
        self._max_frame_bytes = max_frame_bytes
        self._handshake_timeout = handshake_timeout
        self._ping_interval = ping_interval
        self._max_unauthenticated = max_unauthenticated
        self.handler: TransportHandler | None = None
        # The open, authenticated connection of each peer (a reconnecting peer replaces it).
        self._inbound: dict[str, web.WebSocketResponse] = {}
        self._unauthenticated: set[web.WebSocketResponse] = set()
        # (peer, group) pairs whose batches were dropped, to log each only once.
        self._unknown_groups: set[tuple[str, str]] = set()

    async def close(self) -> None:
        """Close every inbound connection (the node is stopping)."""
        self.handler = None
        sockets = [*self._inbound.values(), *self._unauthenticated]
        await asyncio.gather(
            *(ws.close(code=CLOSE_NOT_READY, message=b"node stopping") for ws in sockets),
            return_exceptions=True,
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # Frames up to max_frame_bytes, plus their head; larger ones close the connection.
        ws = web.WebSocketResponse(
            max_msg_size=self._max_frame_bytes + 64, heartbeat=self._ping_interval
        )
        await ws.prepare(request)
        remote = request.remote or "?"
        if len(self._unauthenticated) >= self._max_unauthenticated:
            # Before authentication a connection may still send one large message; bound how
            # many strangers can hold that much memory at once.
            await self._refuse(
                ws, remote, None, _Refused(CLOSE_NOT_READY, "too many connections handshaking")
            )
            return ws
        self._unauthenticated.add(ws)
        try:
            async with asyncio.timeout(self._handshake_timeout):
                peer_id = await self._handshake(ws)
        except _Refused as exc:
            await self._refuse(ws, remote, None, exc)
            return ws
        except TimeoutError:
            await self._refuse(ws, remote, None, _Refused(CLOSE_PROTOCOL, "handshake timed out"))
            return ws
        finally:
            self._unauthenticated.discard(ws)
        old = self._inbound.get(peer_id)
        self._inbound[peer_id] = ws
        if old is not None:
            await old.close(code=CLOSE_REPLACED, message=b"replaced by a newer connection")
        log.info("node %s: peer %s connected from %s", self.node_id, peer_id, remote)
        try:
            await self._serve(ws, peer_id, remote)
        finally:
            if self._inbound.get(peer_id) is ws:
                del self._inbound[peer_id]
        return ws

    async def _refuse(
        self, ws: web.WebSocketResponse, remote: str, peer_id: str | None, exc: _Refused
    ) -> None:
        who = f"peer {peer_id} ({remote})" if peer_id else f"a connection from {remote}"
        log.warning("node %s: closing %s: %s", self.node_id, who, exc.reason)
        await ws.close(code=exc.code, message=close_reason(exc.reason))

    async def _text(self, ws: web.WebSocketResponse, what: str) -> str:
        msg = await ws.receive()
        if msg.type is not WSMsgType.TEXT:
            raise _Refused(CLOSE_PROTOCOL, f"expected the handshake's {what}, got {msg.type.name}")
        text: str = msg.data
        return text

    async def _handshake(self, ws: web.WebSocketResponse) -> str:
        """The authenticated id of the dialer; _Refused otherwise."""
        try:
            hello = decode_hello(await self._text(ws, "hello"))
        except ProtocolError as exc:
            raise _Refused(CLOSE_PROTOCOL, str(exc)) from None
        if hello.dst != self.node_id:
            raise _Refused(
                CLOSE_AUTHENTICATION, f"this is node {self.node_id!r}, not {hello.dst!r}"
            )
        if self.handler is None:
            raise _Refused(CLOSE_NOT_READY, f"node {self.node_id!r} is not started")
        if hello.src == self.node_id or hello.src not in self._members():
            raise _Refused(
                CLOSE_AUTHENTICATION, f"{hello.src!r} is not a member of this node's cluster"
            )
        nonce = new_nonce()
        await ws.send_str(encode_challenge(nonce))
        try:
            got = decode_proof(await self._text(ws, "proof"))
        except ProtocolError as exc:
            raise _Refused(CLOSE_PROTOCOL, str(exc)) from None
        expected = proof(self._secret, "dialer", hello.src, self.node_id, hello.nonce, nonce)
        if not proofs_match(expected, got):
            raise _Refused(
                CLOSE_AUTHENTICATION,
                f"authentication of {hello.src!r} failed: it does not know the cluster secret",
            )
        mine = proof(self._secret, "acceptor", hello.src, self.node_id, hello.nonce, nonce)
        await ws.send_str(encode_welcome(mine))
        return hello.src

    async def _serve(self, ws: web.WebSocketResponse, peer_id: str, remote: str) -> None:
        calls: set[asyncio.Task[None]] = set()
        send_lock = asyncio.Lock()
        assembly = bytearray()
        try:
            while True:
                msg = await ws.receive()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    return
                if msg.type is WSMsgType.ERROR:
                    # e.g. a message over max_msg_size: aiohttp has closed the socket.
                    log.warning(
                        "node %s: connection of peer %s failed: %s",
                        self.node_id,
                        peer_id,
                        ws.exception(),
                    )
                    return
                try:
                    if msg.type is not WSMsgType.BINARY:
                        raise _Refused(
                            CLOSE_PROTOCOL, f"a {msg.type.name} frame after the handshake"
                        )
                    data: bytes = msg.data
                    if frame_kind(data) is FrameKind.FRAGMENT:
                        last, piece = decode_fragment(data)
                        assembly += piece
                        if len(assembly) > self._max_frame_bytes:
                            raise _Refused(
                                CLOSE_PROTOCOL,
                                f"a fragmented frame over {self._max_frame_bytes} bytes",
                            )
                        if not last:
                            continue
                        data = bytes(assembly)
                        assembly.clear()
                        if frame_kind(data) is not FrameKind.BATCH:
                            raise _Refused(CLOSE_PROTOCOL, "a fragmented frame that is not a batch")
                    self._frame(ws, peer_id, data, calls, send_lock)
                except ProtocolError as exc:
                    await self._refuse(ws, remote, peer_id, _Refused(CLOSE_PROTOCOL, str(exc)))
                    return
                except _Refused as exc:
                    await self._refuse(ws, remote, peer_id, exc)
                    return
        finally:
            for task in calls:
                task.cancel()

    def _frame(
        self,
        ws: web.WebSocketResponse,
        peer_id: str,
        data: bytes,
        calls: set[asyncio.Task[None]],
        send_lock: asyncio.Lock,
    ) -> None:
        handler = self.handler
        if handler is None:
            raise _Refused(CLOSE_NOT_READY, f"node {self.node_id!r} is stopping")
        kind = frame_kind(data)
        if kind is FrameKind.BATCH:
            batch = decode_peer_batch(data)
            if batch.src != peer_id:
                raise ProtocolError(f"a batch from {batch.src!r} on the connection of {peer_id!r}")
            for message in batch.messages:
                if message.dst != self.node_id:
                    raise ProtocolError(f"a message for {message.dst!r} sent to {self.node_id!r}")
            group_id = batch.group_id
            if not handler.hosts_group(group_id):
                if (peer_id, group_id) not in self._unknown_groups:
                    self._unknown_groups.add((peer_id, group_id))
                    log.warning(
                        "node %s: dropping batches of peer %s for Raft group %r, which this"
                        " node does not host",
                        self.node_id,
                        peer_id,
                        group_id,
                    )
                return
            for message in batch.messages:
                handler.receive(message, group_id)
        elif kind is FrameKind.CALL:
            request_id, call, timeout = decode_call_request(data)
            task = asyncio.create_task(
                self._answer(ws, handler, request_id, call, timeout, send_lock)
            )
            calls.add(task)
            task.add_done_callback(calls.discard)
        else:
            raise ProtocolError(f"a {kind.name} frame is not expected from a dialing peer")

    async def _answer(
        self,
        ws: web.WebSocketResponse,
        handler: TransportHandler,
        request_id: int,
        call: Call,
        timeout: float,
        send_lock: asyncio.Lock,
    ) -> None:
        result: Outcome | BaseException
        try:
            result = await handler.handle_call(call, timeout)
        except Exception as exc:  # whatever it raised travels back to the caller
            result = exc
        frame = encode_call_response(request_id, result)
        async with send_lock:
            with contextlib.suppress(ConnectionError):
                await ws.send_bytes(frame)


class HasPeerAcceptor(Protocol):
    """A transport with an inbound side (the aiohttp transport)."""

    @property
    def acceptor(self) -> PeerAcceptor: ...


PEER_ACCEPTOR: Final = web.AppKey("agree_peer_acceptor", PeerAcceptor)


async def _peer_route(request: web.Request) -> web.StreamResponse:
    return await request.app[PEER_ACCEPTOR].handle(request)


def add_peer_routes(
    app: web.Application, transport: HasPeerAcceptor, *, path: str = PEER_PATH
) -> None:
    """Mount the peer WebSocket route of ``transport`` on ``app`` at ``path``."""
    app[PEER_ACCEPTOR] = transport.acceptor
    app.router.add_get(path, _peer_route)
