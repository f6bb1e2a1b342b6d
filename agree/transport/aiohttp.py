"""The aiohttp peer transport: one long-lived, authenticated WebSocket to each peer.

Outbound (this module): for each peer, a link that dials ``{url}/v1/peer``, authenticates
(:mod:`agree.wire.handshake`), and writes binary frames from two bounded queues:

* the main queue: one :class:`~agree.wire.peer.PeerBatch` frame per peer per ``send`` (the
  driver sends once per Ready), never one per entry, and the frames of forwarded calls;
* the bulk queue: snapshot chunks (InstallSnapshot), in their own frames, cut into fragments
  of ``fragment_bytes``; a main frame is written between any two fragments, so heartbeats and
  votes are never stuck behind a snapshot.  Writes await the socket's drain (backpressure).

Both queues drop a new frame when full rather than grow (the main one is bounded in frames and
in bytes, the bulk one takes nothing while the peer is not connected): Raft tolerates lost
messages (the leader retries appends and snapshots, heartbeats recur).  A lost connection is
redialled with exponential backoff and jitter.  Forwarded calls go over the same socket with a
request id: it is already authenticated and open, so a forward costs one frame each way
instead of an HTTP request and a handshake; its answer comes back on the same socket.

Inbound (:mod:`agree.server.peer`): ``start(handler)`` registers the node with this
transport's :class:`~agree.server.peer.PeerAcceptor`, which the node's aiohttp application
serves once :func:`~agree.server.peer.add_peer_routes` has mounted it; the transport opens no
listener of its own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import secrets
import ssl as ssl_module
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, Final

import aiohttp

from agree.conf.settings import Settings
from agree.errors import AgreeTimeoutError, AuthenticationError, ProtocolError, UnavailableError
from agree.raft.messages import InstallSnapshot, Message
from agree.server.peer import PEER_PATH, PeerAcceptor
from agree.transport.base import TransportHandler
from agree.wire.calls import Call, Outcome
from agree.wire.handshake import (
    CLOSE_AUTHENTICATION,
    CLOSE_NOT_READY,
    CLOSE_PROTOCOL,
    CLOSE_REPLACED,
    Hello,
    close_reason,
    decode_challenge,
    decode_welcome,
    encode_hello,
    encode_proof,
    new_nonce,
    proof,
    proofs_match,
)
from agree.wire.peer import (
    DEFAULT_GROUP,
    FrameKind,
    PeerBatch,
    decode_call_response,
    encode_call_request,
    encode_fragments,
    encode_peer_batch,
    frame_kind,
)

log = logging.getLogger(__name__)

WSMsgType: Final = aiohttp.WSMsgType
_CLOSED: Final = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


async def _handshake_text(ws: aiohttp.ClientWebSocketResponse, peer_id: str, url: str) -> str:
    msg = await ws.receive()
    if msg.type is WSMsgType.TEXT:
        text: str = msg.data
        return text
    if msg.type in _CLOSED:
        code = ws.close_code
        reason = msg.extra or ""
        if code == CLOSE_AUTHENTICATION:
            raise AuthenticationError(f"node {peer_id!r} at {url} refused this node: {reason}")
        if code == CLOSE_NOT_READY:
            raise UnavailableError(f"node {peer_id!r} at {url} is not ready: {reason}")
        raise ProtocolError(f"node {peer_id!r} at {url} closed the handshake ({code}): {reason}")
    raise ProtocolError(f"node {peer_id!r} at {url} sent a {msg.type.name} during the handshake")


async def dial(
    session: aiohttp.ClientSession,
    url: str,
    *,
    node_id: str,
    peer_id: str,
    secret: str | bytes,
    ssl: ssl_module.SSLContext | None = None,
    timeout: float = 5.0,
    max_frame_bytes: int = 64 << 20,
    ping_interval: float | None = 5.0,
) -> aiohttp.ClientWebSocketResponse:
    """An authenticated WebSocket to ``peer_id`` at ``url`` (the peer route's full URL).

    Raises AuthenticationError if the peer refuses this node (wrong secret, not a member) or
    fails to prove it knows the secret; UnavailableError if it is not started; ProtocolError
    on a malformed handshake; aiohttp.ClientError, OSError or TimeoutError if unreachable.
    """
    key = _secret_bytes(secret)
    async with asyncio.timeout(timeout):
        ws = await session.ws_connect(
            url,
            ssl=ssl if ssl is not None else True,
            heartbeat=ping_interval,
            max_msg_size=max_frame_bytes + 64,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=timeout),
        )
    try:
        async with asyncio.timeout(timeout):
            nonce = new_nonce()
            await ws.send_str(encode_hello(Hello(node_id, peer_id, nonce)))
            their_nonce = decode_challenge(await _handshake_text(ws, peer_id, url))
            await ws.send_str(
                encode_proof(proof(key, "dialer", node_id, peer_id, nonce, their_nonce))
            )
            their_proof = decode_welcome(await _handshake_text(ws, peer_id, url))
            expected = proof(key, "acceptor", node_id, peer_id, nonce, their_nonce)
            if not proofs_match(expected, their_proof):
                raise AuthenticationError(
                    f"node {peer_id!r} at {url} failed to prove it knows the cluster secret"
                )
    except BaseException as exc:
        code = CLOSE_AUTHENTICATION if isinstance(exc, AuthenticationError) else CLOSE_PROTOCOL
        with contextlib.suppress(Exception):
            await ws.close(code=code, message=close_reason(str(exc)))
        raise
    return ws


class _Link:
    """The outbound connection to one peer: its queues, its dialling loop, its pending calls."""

    def __init__(self, transport: AiohttpTransport, peer_id: str, url: str) -> None:
        self.transport = transport
        self.peer_id = peer_id
        self.url = url
        self.main: collections.deque[bytes] = collections.deque()
        self.main_bytes = 0  # the bytes in ``main``
        self.bulk: collections.deque[bytes] = collections.deque()
        self.fragments: collections.deque[bytes] = collections.deque()
        self.wake = asyncio.Event()
        self.connected = asyncio.Event()
        self.pending: dict[int, asyncio.Future[Outcome | BaseException]] = {}
        self.next_request = 0
        self.dropped = 0  # frames refused because a queue was full
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.last_error: BaseException | None = None
        self.task = asyncio.create_task(self._run(), name=f"agree-peer-{peer_id}")

    def enqueue(self, frame: bytes, *, bulk: bool = False) -> bool:
        """Queue ``frame``; False (and the frame dropped) when its queue is full."""
        t = self.transport
        if bulk:
            # A snapshot chunk for a peer that is not connected would only be sent late, after
            # the core has sent it again: drop it now (and bound the queue while connected).
            full = not self.connected.is_set() or len(self.bulk) >= t.bulk_queue_frames
        else:
            # Bounded in frames and in bytes; one frame always fits an empty queue.
            full = len(self.main) >= t.queue_frames or (
                bool(self.main) and self.main_bytes + len(frame) > t.queue_bytes
            )
        if full:
            self.dropped += 1
            log.debug(
                "peer %s: %s queue full, frame dropped", self.peer_id, "bulk" if bulk else "main"
            )
            return False
        if bulk:
            self.bulk.append(frame)
        else:
            self.main.append(frame)
            self.main_bytes += len(frame)
        self.wake.set()
        return True

    def _next_frame(self) -> bytes | None:
        if self.main:
            frame = self.main.popleft()
            self.main_bytes -= len(frame)
            return frame
        if self.fragments:
            return self.fragments.popleft()
        if self.bulk:
            frame = self.bulk.popleft()
            size = self.transport.fragment_bytes
            if len(frame) <= size:
                return frame
            self.fragments.extend(encode_fragments(frame, size))
            return self.fragments.popleft()
        return None

    def _fail_pending(self, reason: str) -> None:
        for fut in self.pending.values():
            if not fut.done():
                fut.set_result(UnavailableError(reason))
        self.pending.clear()
        # Their callers have their answer: a CALL frame still queued must not run later.
        calls = [f for f in self.main if frame_kind(f) is FrameKind.CALL]
        for frame in calls:
            self.main.remove(frame)
            self.main_bytes -= len(frame)

    def reconnect(self) -> None:
        """Drop the current connection (e.g. the peer's address changed); the loop redials."""
        if self.ws is not None:
            self.transport.background(self.ws.close())

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self._fail_pending(f"the connection to node {self.peer_id!r} was closed")

    async def _run(self) -> None:
        t = self.transport
        attempt = 0
        while True:
            try:
                ws = await dial(
                    t.session,
                    self.url.rstrip("/") + t.path,
                    node_id=t.node_id,
                    peer_id=self.peer_id,
                    secret=t.secret,
                    ssl=t.ssl,
                    timeout=t.handshake_timeout,
                    max_frame_bytes=t.max_frame_bytes,
                    ping_interval=t.ping_interval,
                )
            except AuthenticationError as exc:
                self.last_error = exc
                log.error("node %s: %s", t.node_id, exc)
            except ProtocolError as exc:  # e.g. another agree version: never routine
                self.last_error = exc
                log.warning(
                    "node %s: handshake with peer %s failed: %s", t.node_id, self.peer_id, exc
                )
            except (
                UnavailableError,
                aiohttp.ClientError,
                OSError,
                TimeoutError,
            ) as exc:
                if attempt == 0 or type(exc) is not type(self.last_error):
                    log.info(
                        "node %s: cannot reach peer %s at %s: %s",
                        t.node_id,
                        self.peer_id,
                        self.url,
                        exc or type(exc).__name__,
                    )
                self.last_error = exc
            else:
                attempt = 0
                self.last_error = None
                log.info("node %s: connected to peer %s at %s", t.node_id, self.peer_id, self.url)
                await self._pump(ws)
            await asyncio.sleep(t.backoff(attempt))
            attempt += 1

    async def _pump(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Write queued frames until the connection ends."""
        self.ws = ws
        self.fragments.clear()  # the receiver reassembles per connection
        self.connected.set()
        reader = asyncio.create_task(self._read(ws))
        try:
            while not reader.done():
                frame = self._next_frame()
                if frame is None:
                    self.wake.clear()
                    await self.wake.wait()  # the reader sets it too, when it ends
                    continue
                await ws.send_bytes(frame)  # awaits the socket's drain: backpressure
                if self.fragments:
                    # Mid-snapshot: let the loop run, so a Ready's heartbeat can be queued and
                    # written before the next fragment.
                    await asyncio.sleep(0)
        except (aiohttp.ClientError, ConnectionError, OSError) as exc:
            log.info(
                "node %s: connection to peer %s lost: %s", self.transport.node_id, self.peer_id, exc
            )
        finally:
            self.connected.clear()
            self.ws = None
            self.bulk.clear()  # see enqueue: the core sends snapshot chunks again
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            with contextlib.suppress(Exception):
                await ws.close()
            self._fail_pending(
                f"the connection to node {self.peer_id!r} was lost before it answered"
            )

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Answers to forwarded calls; the only frames an accepting peer sends."""
        try:
            while True:
                msg = await ws.receive()
                if msg.type in _CLOSED or msg.type is WSMsgType.ERROR:
                    code = ws.close_code
                    if code not in (None, 1000, 1001):
                        # A peer stopping or replacing the connection is routine; anything
                        # else (a refused frame) is worth a warning.
                        routine = code in (CLOSE_NOT_READY, CLOSE_REPLACED)
                        log.log(
                            logging.INFO if routine else logging.WARNING,
                            "node %s: peer %s closed the connection (%s): %s",
                            self.transport.node_id,
                            self.peer_id,
                            code,
                            msg.extra or "",
                        )
                    return
                try:
                    if msg.type is not WSMsgType.BINARY:
                        raise ProtocolError(f"a {msg.type.name} frame after the handshake")
                    request_id, result = decode_call_response(msg.data)
                except ProtocolError as exc:
                    log.warning(
                        "node %s: closing the connection to peer %s: %s",
                        self.transport.node_id,
                        self.peer_id,
                        exc,
                    )
                    await ws.close(code=CLOSE_PROTOCOL, message=close_reason(str(exc)))
                    return
                fut = self.pending.pop(request_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(result)
        finally:
            self.wake.set()


class AiohttpTransport:
    """The peer transport of one node over aiohttp WebSockets.  See the module docstring.

    ``secret`` is the cluster secret; ``ssl`` an optional client context for ``https`` peers
    (the node's server side takes its own).  Every Raft group's batches to a peer share the
    one link to that peer; the node it delivers into says which groups it hosts.
    """

    def __init__(
        self,
        node_id: str,
        secret: str | bytes,
        *,
        ssl: ssl_module.SSLContext | None = None,
        path: str = PEER_PATH,
        queue_frames: int = 1024,
        queue_bytes: int = 16 << 20,
        bulk_queue_frames: int = 4,
        fragment_bytes: int = 64 << 10,
        max_frame_bytes: int = 64 << 20,
        handshake_timeout: float = 5.0,
        ping_interval: float | None = 5.0,
        backoff_base: float = 0.05,
        backoff_max: float = 2.0,
        connect_wait: float = 1.0,
        max_unauthenticated: int = 64,
        rng: random.Random | None = None,
    ) -> None:
        if not secret:
            raise ValueError("the peer transport needs a cluster secret")
        self.node_id = node_id
        self.secret = _secret_bytes(secret)
        self.ssl = ssl
        self.path = path
        self.queue_frames = queue_frames
        self.queue_bytes = queue_bytes
        self.bulk_queue_frames = bulk_queue_frames
        self.fragment_bytes = fragment_bytes
        self.max_frame_bytes = max_frame_bytes
        self.handshake_timeout = handshake_timeout
        self.ping_interval = ping_interval
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.connect_wait = connect_wait
        self._rng = rng or random.Random()
        self._addresses: dict[str, str] = {}
        self._links: dict[str, _Link] = {}
        self._session: aiohttp.ClientSession | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._acceptor = PeerAcceptor(
            node_id,
            self.secret,
            members=lambda: self._addresses,
            max_frame_bytes=max_frame_bytes,
            handshake_timeout=handshake_timeout,
            ping_interval=ping_interval,
            max_unauthenticated=max_unauthenticated,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, ssl: ssl_module.SSLContext | None = None, **options: Any
    ) -> AiohttpTransport:
        """The transport of the node ``settings`` describe (NODE_ID, CLUSTER_SECRET).

        Without a CLUSTER_SECRET (allowed for a single node only) the secret is a random one
        nobody else knows: such a node has no peers, and no connection can authenticate.
        """
        secret = settings.CLUSTER_SECRET or secrets.token_hex(32)
        return cls(settings.NODE_ID, secret, ssl=ssl, **options)

    def background(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` without waiting for it (a reference is kept until it is done)."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @property
    def acceptor(self) -> PeerAcceptor:
        """The inbound side, for :func:`agree.server.peer.add_peer_routes`."""
        return self._acceptor

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise UnavailableError(f"the transport of node {self.node_id!r} is not started")
        return self._session

    def backoff(self, attempt: int) -> float:
        """Seconds before redial ``attempt``: exponential, capped, with jitter in [1/2, 1]."""
        delay = min(self.backoff_max, self.backoff_base * (2.0 ** min(attempt, 30)))
        return delay * self._rng.uniform(0.5, 1.0)

    def dropped(self, peer: str) -> int:
        """Frames to ``peer`` dropped because a queue was full."""
        link = self._links.get(peer)
        return 0 if link is None else link.dropped

    # -- the Transport protocol -------------------------------------------------------------------
    async def start(self, handler: TransportHandler) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._acceptor.handler = handler

    async def close(self) -> None:
        await self._acceptor.close()
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(*(link.stop() for link in links))
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def send(self, messages: Sequence[Message], group_id: str = DEFAULT_GROUP) -> None:
        if self._session is None or not messages:
            return
        by_dst: dict[str, list[Message]] = {}
        for msg in messages:
            by_dst.setdefault(msg.dst, []).append(msg)
        for dst, msgs in by_dst.items():
            link = self._link(dst)
            if link is None:
                continue
            small = [m for m in msgs if not isinstance(m, InstallSnapshot)]
            try:
                if small:
                    for frame in self._frames(group_id, small):
                        link.enqueue(frame)
                for chunk in msgs:
                    if isinstance(chunk, InstallSnapshot):
                        for frame in self._frames(group_id, [chunk]):
                            link.enqueue(frame, bulk=True)
            except (ValueError, TypeError):
                # A message this format cannot carry is a bug, but never the sender's crash:
                # like a lost message, Raft will retry or time out.
                log.exception("node %s: cannot encode a batch for %s", self.node_id, dst)

    def _frames(self, group_id: str, messages: list[Message]) -> list[bytes]:
        """One frame, or one per message if together they exceed what a peer accepts."""
        frame = encode_peer_batch(PeerBatch(group_id, self.node_id, tuple(messages)))
        if len(frame) <= self.max_frame_bytes:
            return [frame]
        frames = []
        for msg in messages:
            frame = encode_peer_batch(PeerBatch(group_id, self.node_id, (msg,)))
            if len(frame) <= self.max_frame_bytes:
                frames.append(frame)
            else:
                log.error(
                    "node %s: %s to %s is %d bytes, over the peer frame limit of %d; dropped",
                    self.node_id,
                    type(msg).__name__,
                    msg.dst,
                    len(frame),
                    self.max_frame_bytes,
                )
        return frames

    async def forward(self, peer: str, call: Call, timeout: float) -> Outcome:
        if self._session is None:
            raise UnavailableError(f"the transport of node {self.node_id!r} is closed")
        link = self._link(peer)
        if link is None:
            raise UnavailableError(f"node {self.node_id!r} knows no address for node {peer!r}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not link.connected.is_set():
            try:
                await asyncio.wait_for(link.connected.wait(), min(timeout, self.connect_wait))
            except TimeoutError:
                why = f": {link.last_error}" if link.last_error else ""
                raise UnavailableError(f"node {peer!r} at {link.url} is unreachable{why}") from None
        link.next_request += 1
        request_id = link.next_request
        fut: asyncio.Future[Outcome | BaseException] = loop.create_future()
        remaining = max(0.0, deadline - loop.time())
        if not link.enqueue(encode_call_request(request_id, call, remaining)):
            raise UnavailableError(f"the queue to node {peer!r} is full")
        link.pending[request_id] = fut
        try:
            # The peer answers within ``remaining``; a little more for the way back.
            result = await asyncio.wait_for(fut, remaining + min(1.0, remaining / 4 + 0.05))
        except TimeoutError:
            raise AgreeTimeoutError(
                f"node {peer!r} did not answer a forwarded {call.object}.{call.method} in time"
            ) from None
        finally:
            link.pending.pop(request_id, None)
        if isinstance(result, BaseException):
            raise result
        return result

    def update_peers(self, addresses: Mapping[str, str]) -> None:
        self._addresses = dict(addresses)
        for peer_id, link in list(self._links.items()):
            url = self._addresses.get(peer_id)
            if url is None:
                del self._links[peer_id]
                self.background(link.stop())
            elif url != link.url:
                link.url = url
                link.reconnect()

    def _link(self, peer: str) -> _Link | None:
        link = self._links.get(peer)
        if link is None:
            url = self._addresses.get(peer)
            if url is None or peer == self.node_id or self._session is None:
                return None
            link = self._links[peer] = _Link(self, peer, url)
        return link
