"""The link proxy's fault modes, against a WebSocket echo server on loopback (no node needed)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from agree.testing.chaos.proxy import (
    FrameSplitter,
    LinkProxy,
    Network,
    bridge,
    halves,
    hello_source,
    isolate,
    ring,
)


async def _echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


class Echo:
    """A WebSocket echo server "b" behind its ingress, reached by a dialler "a"."""

    def __init__(self, network: Network, runner: web.AppRunner) -> None:
        self.network = network
        self.proxy: LinkProxy = network.link("a", "b")
        self.runner = runner

    async def connect(self, session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        """A connection that introduced itself as node "a" (as a peer's hello does), and whose
        first echo came back: from then on the link's faults apply to it."""
        ws = await session.ws_connect(self.network.ingress["b"].url + "/ws")
        await ws.send_str(json.dumps({"hello": 1, "from": "a", "to": "b"}))
        await ws.send_bytes(b"hi")
        assert await _receive(ws, 5) == b"hi"
        return ws


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    app = web.Application()
    app.router.add_get("/ws", _echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    network = Network(random.Random(7))
    await network.add("b", port)
    try:
        yield Echo(network, runner)
    finally:
        await network.close()
        await runner.cleanup()


async def _receive(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> bytes | None:
    try:
        msg = await ws.receive(timeout=timeout)
    except TimeoutError:
        return None
    return msg.data if msg.type == aiohttp.WSMsgType.BINARY else None


async def test_a_healthy_link_forwards_every_message_in_order(echo: Echo) -> None:
    async with aiohttp.ClientSession() as session, await echo.connect(session) as ws:
        for i in range(50):
            await ws.send_bytes(b"m%d" % i + b"x" * (i * 300))  # lengths in 7 and 16 bits
        got = [await _receive(ws, 5) for _ in range(50)]
    assert got == [b"m%d" % i + b"x" * (i * 300) for i in range(50)]
    assert echo.proxy.counters.dropped == 0


async def test_blackhole_drops_messages_and_keeps_the_connection(echo: Echo) -> None:
    async with aiohttp.ClientSession() as session, await echo.connect(session) as ws:
        echo.proxy.up.blackhole = True
        await ws.send_bytes(b"lost")
        assert await _receive(ws, 0.5) is None
        echo.proxy.heal()
        await ws.send_bytes(b"after")  # the stream is still well-formed
        assert await _receive(ws, 5) == b"after"
    assert echo.proxy.counters.dropped >= 1


async def test_one_way_loss_drops_only_that_direction(echo: Echo) -> None:
    async with aiohttp.ClientSession() as session, await echo.connect(session) as ws:
        echo.proxy.down.blackhole = True  # answers lost, requests arrive
        await ws.send_bytes(b"one")
        assert await _receive(ws, 0.5) is None
        echo.proxy.down.blackhole = False
        echo.proxy.up.blackhole = False
        await ws.send_bytes(b"two")
        assert await _receive(ws, 5) == b"two"
    # The request reached the echo (its answer was the unit dropped going down).
    assert echo.proxy.counters.dropped == 1


async def test_probabilistic_loss_drops_whole_messages(echo: Echo) -> None:
    async with aiohttp.ClientSession() as session, await echo.connect(session) as ws:
        echo.proxy.up.loss = 0.5  # after the upgrade: a lost upgrade would stall the dial
        for i in range(200):
            await ws.send_bytes(b"%d" % i)
        got = []
        while (data := await _receive(ws, 0.5)) is not None:
            got.append(int(data))
        dropped = echo.proxy.counters.dropped
        echo.proxy.up.loss = 0.0  # let the close handshake through
    # Some lost, some through, every one that arrived intact and in order.
    assert 20 < len(got) < 180
    assert got == sorted(got)
    assert dropped == 200 - len(got)


async def test_delay_with_jitter_keeps_order_and_delays(echo: Echo) -> None:
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session, await echo.connect(session) as ws:
        echo.proxy.up.delay = 0.2
        echo.proxy.up.jitter = 0.1
        start = loop.time()
        for i in range(20):
            await ws.send_bytes(b"%d" % i)
        got = [await _receive(ws, 5) for _ in range(20)]
        first_delay = loop.time() - start
    assert got == [b"%d" % i for i in range(20)]
    assert first_delay >= 0.1  # at least delay - jitter


async def test_bandwidth_cap_slows_a_large_message(echo: Echo) -> None:
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session, await echo.connect(session) as ws:
        echo.proxy.up.bandwidth = 100_000  # bytes per second
        start = loop.time()
        await ws.send_bytes(b"x" * 70_000)  # a 64-bit length frame
        await ws.send_bytes(b"y")
        assert await _receive(ws, 10) == b"x" * 70_000
        assert await _receive(ws, 10) == b"y"
        assert loop.time() - start >= 0.6  # the 'y' waited behind 70 kB at 100 kB/s


async def test_reset_breaks_the_connection_and_a_new_one_works(echo: Echo) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await echo.connect(session)
        assert echo.proxy.reset() == 1
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        async with await echo.connect(session) as again:
            await again.send_bytes(b"fresh")
            assert await _receive(again, 5) == b"fresh"
    assert echo.proxy.counters.resets == 1


def test_splitter_keeps_a_fragmented_message_whole_and_control_frames_apart() -> None:
    splitter = FrameSplitter()
    header = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"
    first = bytes([0x02, 0x03]) + b"abc"  # binary, FIN=0
    ping = bytes([0x89, 0x00])  # ping between the fragments
    last = bytes([0x80, 0x02]) + b"de"  # continuation, FIN=1
    units: list[bytes] = []
    data = header + first + ping + last
    for i in range(0, len(data), 3):  # arriving in small pieces
        units += splitter.feed(data[i : i + 3])
    assert units == [header, ping, first + last]


def test_splitter_passes_a_plain_http_exchange_through() -> None:
    splitter = FrameSplitter()
    units = splitter.feed(b"POST /v1/x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
    assert units == [b"POST /v1/x HTTP/1.1\r\nContent-Length: 2\r\n\r\n", b"{}"]


def test_partition_shapes() -> None:
    rng = random.Random(3)
    five = ["n1", "n2", "n3", "n4", "n5"]
    assert isolate(five, "n2") == [["n2"], ["n1", "n3", "n4", "n5"]]
    small, big = halves(five, rng)
    assert len(small) == 2 and len(big) == 3 and set(small) | set(big) == set(five)
    rings = ring(five, rng)
    assert len(rings) == 5 and all(len(g) == 3 for g in rings)
    # Every node is in a majority, and no majority holds everyone.
    assert all(any(n in g for g in rings) for n in five)
    left, right = bridge(five, rng)
    assert len(set(left) & set(right)) == 1


def test_network_partition_cuts_exactly_the_links_between_groups() -> None:
    net = Network(random.Random(0))
    cut = net.partition([["n1"], ["n2", "n3"]])
    assert sorted(cut) == [("n1", "n2"), ("n1", "n3"), ("n2", "n1"), ("n3", "n1")]
    assert net.proxies[("n1", "n2")].up.blackhole and net.proxies[("n2", "n1")].down.blackhole
    assert not net.link("n2", "n3").up.blackhole
    net.heal()
    assert not any(p.up.active or p.down.active for p in net.proxies.values())


async def test_the_ingress_charges_each_dialler_to_its_own_link(echo: Echo) -> None:
    async with aiohttp.ClientSession() as session:
        ws_a = await echo.connect(session)
        ws_c = await session.ws_connect(echo.network.ingress["b"].url + "/ws")
        await ws_c.send_str(json.dumps({"hello": 1, "from": "c", "to": "b"}))
        await ws_c.send_bytes(b"c")
        assert await _receive(ws_c, 5) == b"c"
        echo.network.cut("c", "b")  # only c's link
        await ws_c.send_bytes(b"lost")
        await ws_a.send_bytes(b"through")
        assert await _receive(ws_a, 5) == b"through"
        assert await _receive(ws_c, 0.5) is None
        await ws_a.close()
        await ws_c.close()
    assert echo.network.link("c", "b").counters.dropped >= 1
    assert echo.proxy.counters.dropped == 0
    assert echo.network.link("c", "b").counters.connections == 1


def test_hello_source_reads_a_masked_client_frame() -> None:
    payload = json.dumps({"hello": 1, "from": "n7", "to": "n1"}).encode()
    mask = bytes([1, 2, 3, 4])
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    frame = bytes([0x81, 0x80 | len(payload)]) + mask + masked
    assert hello_source(frame) == "n7"
    assert hello_source(bytes([0x82, 0x02]) + b"{}") is None  # binary, not a hello


async def test_a_side_that_can_no_longer_be_written_breaks_the_connection_both_ways() -> None:
    async def gone_after_a_while(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read(100)
        writer.write_eof()  # its half of the stream ends cleanly...
        await asyncio.sleep(0.2)
        writer.transport.abort()  # ...then it is gone: whatever is written to it fails

    server = await asyncio.start_server(gone_after_a_while, "127.0.0.1", 0)
    network = Network(random.Random(1))
    ingress = await network.add("b", server.sockets[0].getsockname()[1])
    _, writer = await asyncio.open_connection("127.0.0.1", ingress.port)

    async def flood() -> None:
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        while True:
            writer.write(b"x" * 65536)
            await writer.drain()

    try:
        # As without a proxy, the writer is told (a reset), rather than blocked for good.
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(flood(), 20)
    finally:
        writer.transport.abort()
        await network.close()
        server.close()
