"""A fault-injecting TCP proxy per directed peer link, in userspace asyncio.

This machine's kernel has no netem, so faults are injected where etcd's robustness suite injects
them: in a proxy that every peer connection passes through.  Every node ``b`` has an
:class:`Ingress` in front of its real port; the others' NODES entry for ``b`` (and, for a node
added later, the address in the replicated membership) is that ingress, so nodes reach each
other through nothing else.  The ingress reads the dialler's id from the peer handshake and
charges the connection to the link ``(a, b)`` (:class:`LinkProxy`), whose faults it then
applies.

The peer transport is one WebSocket per dialling node, so bytes from ``a`` to ``b`` travel
*up* the connections of link ``(a, b)`` (``a`` dialled them: Raft messages, forwarded calls)
and *down* the connections of link ``(b, a)`` (answers to ``b``'s forwarded calls).  A
directed fault "from a to b" therefore sets ``(a, b).up`` and ``(b, a).down``
(:class:`Network`).

What loss means on a stream.  TCP hides packet loss as delay: a byte stream never loses a
middle byte, it stalls or breaks.  What a message protocol above it sees is *lost messages*
(a peer's queue overflows, a connection dies with frames in flight) or a broken connection.
So the proxy parses the WebSocket framing (RFC 6455 §5.2) and drops *whole messages*: the
stream stays well-formed and the receiver sees exactly a message that never arrived -- what
Raft is built to tolerate and what the transport itself does when its queues are full.
Cutting bytes mid-frame would only test the codec's error path, which connection resets
(:meth:`LinkProxy.reset`) cover honestly.  The HTTP upgrade before the frames is one unit; a
connection that is not a WebSocket is passed through in chunks.

Per direction (:class:`Faults`): ``blackhole`` (drop everything, keep the connection open, as a
dead route does), ``loss`` (probability of dropping a message), ``delay`` and ``jitter``
(seconds added per message; order is kept, as TCP keeps it) and ``bandwidth`` (bytes per
second).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

_HEADER_END = b"\r\n\r\n"
_QUEUE_UNITS = 256  # per direction: beyond it the reader waits (TCP backpressure)


@dataclass
class Faults:
    """The faults of one direction of one link; the harness mutates them at any time."""

    blackhole: bool = False
    loss: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    bandwidth: float | None = None  # bytes per second

    def clear(self) -> None:
        self.blackhole, self.loss, self.delay, self.jitter, self.bandwidth = (
            False,
            0.0,
            0.0,
            0.0,
            None,
        )

    @property
    def active(self) -> bool:
        return self.blackhole or self.loss > 0 or self.delay > 0 or self.bandwidth is not None


@dataclass
class Counters:
    units: int = 0  # messages (or header blocks, or raw chunks) forwarded
    dropped: int = 0
    bytes: int = 0
    connections: int = 0
    resets: int = 0


class FrameSplitter:
    """Cuts a byte stream into units: the HTTP header block, then whole WebSocket messages
    (a fragmented message with its continuation frames is one unit; a control frame is one
    unit of its own).  ``raw`` streams (not an upgrade) are cut into whatever arrives."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.in_header = True
        self.raw = False
        self._message = bytearray()  # frames of a fragmented message so far

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        out: list[bytes] = []
        while True:
            if self.in_header:
                end = self.buffer.find(_HEADER_END)
                if end < 0:
                    return out
                header = bytes(self.buffer[: end + len(_HEADER_END)])
                del self.buffer[: end + len(_HEADER_END)]
                self.in_header = False
                lowered = header.lower()
                upgraded = b"upgrade: websocket" in lowered or lowered.startswith(b"http/1.1 101")
                self.raw = not upgraded
                out.append(header)
                continue
            if self.raw:
                if self.buffer:
                    out.append(bytes(self.buffer))
                    self.buffer.clear()
                return out
            frame = self._frame()
            if frame is None:
                return out
            opcode, fin, raw = frame
            if opcode >= 8:  # control frames may come between a message's fragments
                out.append(raw)
            else:
                self._message += raw
                if fin:
                    out.append(bytes(self._message))
                    self._message.clear()

    def _frame(self) -> tuple[int, bool, bytes] | None:
        buf = self.buffer
        if len(buf) < 2:
            return None
        fin = bool(buf[0] & 0x80)
        opcode = buf[0] & 0x0F
        masked = bool(buf[1] & 0x80)
        length = buf[1] & 0x7F
        pos = 2
        if length == 126:
            if len(buf) < 4:
                return None
            (length,) = struct.unpack_from("!H", buf, 2)
            pos = 4
        elif length == 127:
            if len(buf) < 10:
                return None
            (length,) = struct.unpack_from("!Q", buf, 2)
            pos = 10
        if masked:
            pos += 4
        total = pos + length
        if len(buf) < total:
            return None
        raw = bytes(buf[:total])
        del buf[:total]
        return opcode, fin, raw


class LinkProxy:
    """One directed link ``src -> dst``: its faults both ways, its counters, and the
    connections ``src`` dialled to ``dst`` (through ``dst``'s :class:`Ingress`)."""

    def __init__(self, src: str, dst: str, *, rng: random.Random) -> None:
        self.src, self.dst = src, dst
        self.rng = rng
        self.up = Faults()  # bytes from the dialler (src) to dst
        self.down = Faults()  # bytes from dst back to src
        self.counters = Counters()
        self._conns: set[_Connection] = set()

    def reset(self) -> int:
        """Abort every open connection with a TCP RST both ways; how many there were."""
        conns = list(self._conns)
        for conn in conns:
            conn.abort()
        self.counters.resets += len(conns)
        return len(conns)

    def heal(self) -> None:
        self.up.clear()
        self.down.clear()


class Ingress:
    """Listens on a loopback port in front of node ``dst`` and forwards every connection to
    its real port.  Every node reaches ``dst`` at this one address -- so a node added later,
    whose address the others learn from the replicated membership, is behind it as well --
    and each connection is charged to its link ``(src, dst)``, ``src`` read from the peer
    handshake's first message (:mod:`agree.wire.handshake`'s hello).  Until then (the HTTP
    upgrade) no fault applies; from the hello on, the link's do."""

    def __init__(
        self,
        dst: str,
        target_port: int,
        network: Network,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.dst = dst
        self.host, self.target_port = host, target_port
        self.port = port
        self.network = network
        self._server: asyncio.Server | None = None
        self._conns: set[_Connection] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            _abort(writer)  # the node is down: refuse, as its closed port would
            return
        conn = _Connection(self, (reader, writer), (up_reader, up_writer))
        self._conns.add(conn)
        try:
            await conn.run()
        finally:
            self._conns.discard(conn)
            if conn.link is not None:
                conn.link._conns.discard(conn)


def _abort(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # linger 0: close() sends RST, not FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def hello_source(unit: bytes) -> str | None:
    """The dialling node's id in a WebSocket text frame carrying the peer hello (a client's
    frame is masked, RFC 6455 §5.3); None for anything else."""
    if len(unit) < 2 or unit[0] & 0x0F != 0x1:
        return None
    masked = bool(unit[1] & 0x80)
    length = unit[1] & 0x7F
    pos = 2 + {126: 2, 127: 8}.get(length, 0)
    mask = unit[pos : pos + 4] if masked else b"\0\0\0\0"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(unit[pos + (4 if masked else 0) :]))
    try:
        src = json.loads(payload).get("from")
    except (ValueError, AttributeError):
        return None
    return src if isinstance(src, str) else None


class _Connection:
    def __init__(
        self,
        ingress: Ingress,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.ingress = ingress
        self.client, self.server = client, server
        self.link: LinkProxy | None = None  # known from the hello on

    def abort(self) -> None:
        _abort(self.client[1])
        _abort(self.server[1])

    def _faults(self, up: bool) -> Faults | None:
        if self.link is None:
            return None
        return self.link.up if up else self.link.down

    def _identify(self, unit: bytes) -> None:
        src = hello_source(unit)
        if src is None:
            return
        self.link = self.ingress.network.link(src, self.ingress.dst)
        self.link.counters.connections += 1
        self.link._conns.add(self)

    async def run(self) -> None:
        up = asyncio.ensure_future(self._pipe(self.client[0], self.server[1], up=True))
        down = asyncio.ensure_future(self._pipe(self.server[0], self.client[1], up=False))
        try:
            # Both directions end with an EOF each (a clean close); an error in one (a reset,
            # an abort) breaks the connection both ways.
            _, pending = await asyncio.wait([up, down], return_when=asyncio.FIRST_EXCEPTION)
            if pending:
                self.abort()
        finally:
            for task in (up, down):
                task.cancel()
            for task in (up, down):
                with contextlib.suppress(BaseException):
                    await task
            for _, writer in (self.client, self.server):
                writer.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(_QUEUE_UNITS)
        sender = asyncio.ensure_future(self._send(queue, writer, up=up))
        # A side that can no longer be written (it closed, it reset) breaks the connection both
        # ways, as it would without a proxy; otherwise this reader would wait on a full queue
        # forever and the other side's writes would block for good.
        sender.add_done_callback(self._sender_done)
        splitter = FrameSplitter()
        loop = asyncio.get_running_loop()
        last_due = 0.0
        units = 0
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for unit in splitter.feed(data):
                    units += 1
                    if up and units == 2 and self.link is None:
                        self._identify(unit)  # the first message after the upgrade
                    faults = self._faults(up)
                    if faults is not None and self.link is not None:
                        rng = self.link.rng
                        if faults.blackhole or (faults.loss > 0 and rng.random() < faults.loss):
                            self.link.counters.dropped += 1
                            continue
                        delay = faults.delay
                        if faults.jitter:
                            delay += rng.uniform(-faults.jitter, faults.jitter)
                    else:
                        delay = 0.0
                    # Never before an earlier unit: a stream keeps its order.
                    last_due = max(loop.time() + max(delay, 0.0), last_due)
                    await queue.put((last_due, unit))
            await queue.put(None)
            await sender  # deliver what is queued, then half-close like the other side did
            if writer.can_write_eof():
                writer.write_eof()
        finally:
            sender.cancel()

    def _sender_done(self, sender: asyncio.Future[None]) -> None:
        if not sender.cancelled() and sender.exception() is not None:
            self.abort()

    async def _send(
        self,
        queue: asyncio.Queue[tuple[float, bytes] | None],
        writer: asyncio.StreamWriter,
        *,
        up: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await queue.get()
            if item is None:
                return
            due, unit = item
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(unit)
            await writer.drain()
            if self.link is not None:
                self.link.counters.units += 1
                self.link.counters.bytes += len(unit)
            faults = self._faults(up)
            if faults is not None and faults.bandwidth:
                await asyncio.sleep(len(unit) / faults.bandwidth)


@dataclass
class Network:
    """Every node's ingress and every directed link of a cluster, and the faults in terms of
    nodes.  Links are made as they are first used (a node added later gets its own)."""

    rng: random.Random = field(default_factory=random.Random)
    proxies: dict[tuple[str, str], LinkProxy] = field(default_factory=dict)
    ingress: dict[str, Ingress] = field(default_factory=dict)

    def link(self, src: str, dst: str) -> LinkProxy:
        proxy = self.proxies.get((src, dst))
        if proxy is None:
            proxy = LinkProxy(src, dst, rng=random.Random(self.rng.random()))
            self.proxies[(src, dst)] = proxy
        return proxy

    async def add(self, node: str, port: int) -> Ingress:
        """Start ``node``'s ingress in front of its real ``port``."""
        ingress = Ingress(node, port, self)
        await ingress.start()
        self.ingress[node] = ingress
        return ingress

    def links_from(self, a: str, b: str) -> tuple[Faults, Faults]:
        """The two fault settings that bytes from ``a`` to ``b`` pass (see the module doc)."""
        return self.link(a, b).up, self.link(b, a).down

    def cut(self, a: str, b: str) -> None:
        """Nothing from ``a`` reaches ``b`` (one way)."""
        for faults in self.links_from(a, b):
            faults.blackhole = True

    def partition(self, groups: Iterable[Iterable[str]]) -> list[tuple[str, str]]:
        """Cut every link between nodes that share no group (Jepsen's grudge); the directed
        links cut."""
        sets = [set(g) for g in groups]
        nodes = sorted(set().union(*sets))
        cut = []
        for a in nodes:
            for b in nodes:
                if a != b and not any(a in s and b in s for s in sets):
                    self.cut(a, b)
                    cut.append((a, b))
        return cut

    def reset_all(self, node: str | None = None) -> int:
        return sum(
            p.reset() for (a, b), p in self.proxies.items() if node is None or node in (a, b)
        )

    def heal(self) -> None:
        for proxy in self.proxies.values():
            proxy.heal()

    async def close(self) -> None:
        for ingress in self.ingress.values():
            await ingress.close()

    def counters(self) -> Counters:
        total = Counters()
        for p in self.proxies.values():
            c = p.counters
            total.units += c.units
            total.dropped += c.dropped
            total.bytes += c.bytes
            total.connections += c.connections
            total.resets += c.resets
        return total


# --- partition shapes (Jepsen's nemesis grudges) ---------------------------------------------


def isolate(nodes: list[str], node: str) -> list[list[str]]:
    """One node alone; the rest together."""
    return [[node], [n for n in nodes if n != node]]


def halves(nodes: list[str], rng: random.Random) -> list[list[str]]:
    """A random majority and the minority."""
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    cut = len(nodes) // 2
    return [shuffled[:cut], shuffled[cut:]]


def ring(nodes: list[str], rng: random.Random) -> list[list[str]]:
    """Overlapping majorities: on a random ring, each node sees its neighbours up to a majority,
    so every node is in some majority but no two majorities need agree (Jepsen's
    majorities-ring)."""
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    n = len(shuffled)
    size = n // 2 + 1
    return [[shuffled[(i + k) % n] for k in range(size)] for i in range(n)]


def bridge(nodes: list[str], rng: random.Random) -> list[list[str]]:
    """Two halves that cannot see each other, and one node that sees both."""
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    middle = shuffled[0]
    rest = shuffled[1:]
    cut = len(rest) // 2
    return [[middle, *rest[:cut]], [middle, *rest[cut:]]]
