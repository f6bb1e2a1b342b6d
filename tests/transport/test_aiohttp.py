"""The aiohttp peer transport: real servers on free loopback ports, in one process."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from peer_harness import SECRET, Peer, beat, eventually, free_socket, snapshot_chunk

from agree.conf.settings import Settings
from agree.errors import AuthenticationError, NotLeaderError, UnavailableError
from agree.raft.entries import ConfState, Entry
from agree.raft.messages import AppendEntries
from agree.server import peer as server_peer
from agree.server.peer import PEER_PATH, add_peer_routes
from agree.transport.aiohttp import AiohttpTransport, dial
from agree.wire.calls import Call, CallKind, Outcome
from agree.wire.handshake import (
    CLOSE_AUTHENTICATION,
    CLOSE_NOT_READY,
    CLOSE_PROTOCOL,
    CLOSE_REPLACED,
    Hello,
    decode_challenge,
    decode_hello,
    encode_challenge,
    encode_hello,
    encode_welcome,
    new_nonce,
)
from agree.wire.peer import (
    FrameKind,
    PeerBatch,
    encode_call_request,
    encode_peer_batch,
    frame_kind,
)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Peer, Peer]]:
    sa, sb = free_socket(), free_socket()
    a, b = Peer("a", sa), Peer("b", sb)
    book = {"a": a.url, "b": b.url}
    await a.start(book)
    await b.start(book)
    yield a, b
    await a.stop()
    await b.stop()


async def raw_session_dial(
    session: aiohttp.ClientSession, peer: Peer, *, node_id: str = "a", secret: str = SECRET
) -> aiohttp.ClientWebSocketResponse:
    return await dial(
        session, peer.url + PEER_PATH, node_id=node_id, peer_id=peer.id, secret=secret
    )


async def test_frames_flow_both_ways(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    append = AppendEntries(
        src="a",
        dst="b",
        term=2,
        prev_log_index=1,
        prev_log_term=1,
        entries=tuple(Entry(2, 2 + i, data=b"x" * 64) for i in range(64)),
        leader_commit=1,
    )
    a.transport.send([append, beat("a", "b")])
    b.transport.send([beat("b", "a", 5)])
    await eventually(lambda: len(b.recorder.received) == 2, "a's batch reaches b")
    await eventually(lambda: len(a.recorder.received) == 1, "b's batch reaches a")
    assert b.recorder.received == [append, beat("a", "b")]
    assert a.recorder.received == [beat("b", "a", 5)]


async def test_forwarded_calls_answer_and_raise_over_the_socket(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    call = Call("counter", "add", CallKind.COMMAND, args=[3], client_id="c1", seq=4, ack=3)
    assert await a.transport.forward("b", call, 5.0) == Outcome(result={"ok": [1, 2]}, index=9)
    assert b.recorder.calls == [call]
    b.recorder.answer = NotLeaderError("b is not the leader")
    with pytest.raises(NotLeaderError, match="b is not the leader"):
        await a.transport.forward("b", call, 5.0)


async def test_forward_to_an_unreachable_peer_is_unavailable() -> None:
    sa, dead = free_socket(), free_socket()
    a = Peer("a", sa, connect_wait=0.2)
    await a.start({"a": a.url, "b": f"http://127.0.0.1:{dead.getsockname()[1]}"})
    try:
        with pytest.raises(UnavailableError, match="unreachable"):
            await a.transport.forward("b", Call("o", "m", CallKind.COMMAND), 2.0)
    finally:
        await a.stop()
        dead.close()


async def test_wrong_secret_is_refused_before_any_frame_is_decoded(
    pair: tuple[Peer, Peer], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _, b = pair
    decoded: list[bytes] = []
    real = server_peer.decode_peer_batch

    def spy(data: bytes) -> PeerBatch:
        decoded.append(data)
        return real(data)

    monkeypatch.setattr(server_peer, "decode_peer_batch", spy)
    caplog.set_level(logging.WARNING)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(AuthenticationError, match="does not know the cluster secret"):
            await raw_session_dial(session, b, secret="not-the-cluster-secret")
    assert "does not know the cluster secret" in caplog.text
    # A whole transport with the wrong secret: its frames never reach b.
    sm = free_socket()
    mallory = Peer("a", sm, secret="not-the-cluster-secret")
    await mallory.start({"a": mallory.url, "b": b.url})
    try:
        mallory.transport.send([beat("a", "b")])
        link = mallory.transport._links["b"]
        await eventually(
            lambda: isinstance(link.last_error, AuthenticationError), "the dialer learns why"
        )
    finally:
        await mallory.stop()
    assert decoded == [] and b.recorder.received == []


async def test_an_acceptor_without_the_secret_is_refused_by_the_dialer() -> None:
    """A server that accepts any proof but cannot prove itself: the dialer refuses it."""

    async def impostor(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        decode_hello((await ws.receive()).data)
        await ws.send_str(encode_challenge(new_nonce()))
        await ws.receive()  # the dialer's proof, unchecked
        await ws.send_str(encode_welcome(b"\x00" * 32))
        msg = await ws.receive()
        impostor.close_code = msg.data  # type: ignore[attr-defined]
        return ws

    app = web.Application()
    app.router.add_get(PEER_PATH, impostor)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = free_socket()
    await web.SockSite(runner, sock).start()
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(AuthenticationError, match="failed to prove"):
                await dial(
                    session,
                    f"http://127.0.0.1:{sock.getsockname()[1]}{PEER_PATH}",
                    node_id="a",
                    peer_id="b",
                    secret=SECRET,
                )
        await eventually(lambda: hasattr(impostor, "close_code"), "the impostor sees the close")
        assert impostor.close_code == CLOSE_AUTHENTICATION  # type: ignore[attr-defined]
    finally:
        await runner.cleanup()


async def test_unknown_or_wrong_peer_ids_are_refused(pair: tuple[Peer, Peer]) -> None:
    _, b = pair
    async with aiohttp.ClientSession() as session:
        with pytest.raises(AuthenticationError, match="'mallory' is not a member"):
            await raw_session_dial(session, b, node_id="mallory")
        with pytest.raises(AuthenticationError, match="'b' is not a member"):
            await raw_session_dial(session, b, node_id="b")  # claims to be b itself
        with pytest.raises(AuthenticationError, match="this is node 'b', not 'c'"):
            await dial(session, b.url + PEER_PATH, node_id="a", peer_id="c", secret=SECRET)
    assert b.recorder.received == []


async def expect_close(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    msg = await asyncio.wait_for(ws.receive(), 5.0)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
    return ws.close_code, msg.extra or ""


@pytest.mark.parametrize(
    "frame",
    [
        b"garbage that is no frame",
        encode_peer_batch(PeerBatch("default", "a", (beat("a", "b"),)))[:-3],  # truncated
        encode_peer_batch(PeerBatch("default", "a", (beat("a", "b"),))) + b"\x00",
        encode_peer_batch(PeerBatch("default", "c", (beat("c", "b"),))),  # spoofed src
        encode_peer_batch(PeerBatch("default", "a", (beat("a", "c"),))),  # not for b
    ],
    ids=["garbage", "truncated", "trailing", "spoofed-src", "wrong-dst"],
)
async def test_a_bad_frame_after_auth_closes_that_connection_only(
    pair: tuple[Peer, Peer], frame: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    _, b = pair
    caplog.set_level(logging.WARNING)
    async with aiohttp.ClientSession() as session:
        ws = await raw_session_dial(session, b)
        await ws.send_bytes(frame)
        code, reason = await expect_close(ws)
        assert code == CLOSE_PROTOCOL
        assert reason
        assert "closing peer a" in caplog.text
        # The server goes on: a new connection works.
        ws = await raw_session_dial(session, b)
        await ws.send_bytes(encode_peer_batch(PeerBatch("default", "a", (beat("a", "b"),))))
        await eventually(lambda: b.recorder.received == [beat("a", "b")], "a good frame")
        await ws.close()


async def test_a_text_frame_after_auth_is_refused(pair: tuple[Peer, Peer]) -> None:
    _, b = pair
    async with aiohttp.ClientSession() as session:
        ws = await raw_session_dial(session, b)
        await ws.send_str("{}")
        code, reason = await expect_close(ws)
    assert code == CLOSE_PROTOCOL and "TEXT" in reason


async def test_a_batch_for_an_unknown_group_is_dropped_alone(
    pair: tuple[Peer, Peer], caplog: pytest.LogCaptureFixture
) -> None:
    _, b = pair
    caplog.set_level(logging.WARNING)
    async with aiohttp.ClientSession() as session:
        ws = await raw_session_dial(session, b)
        await ws.send_bytes(encode_peer_batch(PeerBatch("other", "a", (beat("a", "b", 1),))))
        await ws.send_bytes(encode_peer_batch(PeerBatch("other", "a", (beat("a", "b", 2),))))
        # The same connection goes on carrying the groups b hosts.
        await ws.send_bytes(encode_peer_batch(PeerBatch("default", "a", (beat("a", "b", 3),))))
        await eventually(lambda: b.recorder.received == [beat("a", "b", 3)], "the good batch")
        assert not ws.closed
        await ws.close()
    assert caplog.text.count("for Raft group 'other', which this node does not host") == 1
    assert b.recorder.by_group == {"default": [beat("a", "b", 3)]}


async def test_every_group_shares_the_one_link_to_a_peer(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    b.recorder.groups.add("other")
    a.transport.send([beat("a", "b", 1)])
    a.transport.send([beat("a", "b", 2)], "other")
    await eventually(lambda: len(b.recorder.received) == 2, "both groups' batches reach b")
    assert b.recorder.by_group == {"default": [beat("a", "b", 1)], "other": [beat("a", "b", 2)]}
    assert list(a.transport._links) == ["b"]


async def test_a_peer_restart_reconnects() -> None:
    sa, sb = free_socket(), free_socket()
    port = sb.getsockname()[1]
    a, b = Peer("a", sa, backoff_max=0.2), Peer("b", sb)
    book = {"a": a.url, "b": b.url}
    await a.start(book)
    await b.start(book)
    try:
        a.transport.send([beat("a", "b", 1)])
        await eventually(lambda: bool(b.recorder.received), "first frame")
        await b.stop()
        b2 = Peer("b", free_socket(port))
        await b2.start(book)
        b = b2

        def resend_and_check() -> bool:
            a.transport.send([beat("a", "b", 2)])
            return beat("a", "b", 2) in b2.recorder.received

        await eventually(resend_and_check, "a frame reaches the restarted b")
    finally:
        await a.stop()
        await b.stop()


async def test_a_full_queue_drops_rather_than_grows() -> None:
    sa, dead = free_socket(), free_socket()  # nothing listens on dead: a never connects
    a = Peer("a", sa, queue_frames=4, bulk_queue_frames=1)
    await a.start({"a": a.url, "b": f"http://127.0.0.1:{dead.getsockname()[1]}"})
    try:
        for n in range(10):
            a.transport.send([beat("a", "b", n)])
        snap = snapshot_chunk(
            src="a",
            dst="b",
            term=1,
            last_included_index=5,
            last_included_term=1,
            conf=ConfState(voters=frozenset({"a", "b"})),
            offset=0,
            data=b"s",
            done=True,
        )
        a.transport.send([snap, snap])
        link = a.transport._links["b"]
        # Snapshot chunks are not kept for a peer that is not connected: the core resends.
        assert len(link.main) == 4 and len(link.bulk) == 0
        assert a.transport.dropped("b") == 6 + 2
    finally:
        await a.stop()
        dead.close()


async def test_the_queue_is_bounded_in_bytes_too() -> None:
    sa, dead = free_socket(), free_socket()
    a = Peer("a", sa, queue_bytes=2500)
    await a.start({"a": a.url, "b": f"http://127.0.0.1:{dead.getsockname()[1]}"})

    def append(index: int, size: int) -> AppendEntries:
        return AppendEntries(
            src="a",
            dst="b",
            term=1,
            prev_log_index=index - 1,
            prev_log_term=1,
            entries=(Entry(1, index, data=b"x" * size),),
            leader_commit=0,
        )

    try:
        a.transport.send([append(1, 5000)])  # over the bound, but an empty queue takes one
        link = a.transport._links["b"]
        assert len(link.main) == 1
        a.transport.send([append(2, 100)])
        assert len(link.main) == 1 and a.transport.dropped("b") == 1
        link.main.clear()
        link.main_bytes = 0
        for i in range(5):
            a.transport.send([append(3 + i, 1000)])
        assert len(link.main) == 2 and a.transport.dropped("b") == 1 + 3
        assert link.main_bytes == sum(len(f) for f in link.main) <= 2500
    finally:
        await a.stop()
        dead.close()


async def test_heartbeats_pass_a_snapshot_being_sent() -> None:
    sa, sb = free_socket(), free_socket()
    a, b = Peer("a", sa, fragment_bytes=1024), Peer("b", sb)
    book = {"a": a.url, "b": b.url}
    await a.start(book)
    await b.start(book)
    try:
        a.transport.send([beat("a", "b", 1)])
        await eventually(lambda: len(b.recorder.received) == 1, "connected")
        snap = snapshot_chunk(
            src="a",
            dst="b",
            term=1,
            last_included_index=5,
            last_included_term=1,
            conf=ConfState(voters=frozenset({"a", "b"})),
            offset=0,
            data=os.urandom(512 << 10),
            done=True,
        )
        a.transport.send([snap])
        link = a.transport._links["b"]
        # Polled every loop iteration: the writer yields after each fragment.
        for _ in range(100_000):
            if link.fragments:
                break
            await asyncio.sleep(0)
        assert link.fragments, "the snapshot is being sent"
        a.transport.send([beat("a", "b", 2)])
        await eventually(lambda: len(b.recorder.received) == 3, "both arrive")
        assert b.recorder.received[1:] == [beat("a", "b", 2), snap]
    finally:
        await a.stop()
        await b.stop()


class _CreatesFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


async def test_pickles_never_run_before_or_after_authentication(
    pair: tuple[Peer, Peer], tmp_path: Path
) -> None:
    _, b = pair
    target = tmp_path / "pwned"
    payloads = [pickle.dumps(_CreatesFile(target), protocol=p) for p in (0, 2, 5)]
    async with aiohttp.ClientSession() as session:
        # Unauthenticated: as the first message, binary and text, and as a plain POST body.
        for payload in payloads:
            for as_text in (False, True):
                ws = await session.ws_connect(b.url + PEER_PATH)
                if as_text:
                    await ws.send_str(payload.decode("latin-1"))
                else:
                    await ws.send_bytes(payload)
                code, _ = await expect_close(ws)
                assert code == CLOSE_PROTOCOL
            async with session.post(b.url + PEER_PATH, data=payload) as response:
                assert response.status >= 400
        # Mid-handshake, in place of the proof.
        for payload in payloads:
            ws = await session.ws_connect(b.url + PEER_PATH)
            await ws.send_str(encode_hello(Hello("a", "b", new_nonce())))
            decode_challenge((await ws.receive()).data)
            await ws.send_bytes(payload)
            code, _ = await expect_close(ws)
            assert code == CLOSE_PROTOCOL
        # Authenticated: as a frame.
        for payload in payloads:
            ws = await raw_session_dial(session, b)
            await ws.send_bytes(payload)
            code, _ = await expect_close(ws)
            assert code == CLOSE_PROTOCOL
    assert not target.exists()
    assert b.recorder.received == []


def test_backoff_grows_exponentially_to_a_cap_with_jitter() -> None:
    transport = AiohttpTransport("a", SECRET, backoff_base=0.1, backoff_max=2.0)
    for attempt, ceiling in [(0, 0.1), (1, 0.2), (2, 0.4), (4, 1.6), (5, 2.0), (60, 2.0)]:
        delays = {transport.backoff(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (attempt, delays)
        assert len(delays) > 1  # jittered: peers that lost each other do not redial in step


async def test_a_forward_in_flight_when_the_connection_drops_is_unavailable(
    pair: tuple[Peer, Peer],
) -> None:
    a, b = pair
    started = asyncio.Event()

    async def hang(call: Call, timeout: float) -> Outcome:
        started.set()
        await asyncio.sleep(60)
        raise AssertionError("not reached")

    b.recorder.handle_call = hang  # type: ignore[method-assign]
    forward = asyncio.create_task(a.transport.forward("b", Call("o", "m", CallKind.COMMAND), 30))
    await asyncio.wait_for(started.wait(), 5)
    await b.transport.close()
    with pytest.raises(UnavailableError, match="lost before it answered"):
        await asyncio.wait_for(forward, 5)


async def test_a_batch_over_the_frame_limit_is_split_per_message() -> None:
    sa, sb = free_socket(), free_socket()
    a, b = Peer("a", sa, max_frame_bytes=4096), Peer("b", sb, max_frame_bytes=4096)
    book = {"a": a.url, "b": b.url}
    await a.start(book)
    await b.start(book)
    try:
        appends = [
            AppendEntries(
                src="a",
                dst="b",
                term=1,
                prev_log_index=i,
                prev_log_term=1,
                entries=(Entry(1, i + 1, data=b"x" * 1500),),
                leader_commit=0,
            )
            for i in range(4)
        ]
        too_big = AppendEntries(
            src="a",
            dst="b",
            term=1,
            prev_log_index=9,
            prev_log_term=1,
            entries=(Entry(1, 10, data=b"x" * 5000),),
            leader_commit=0,
        )
        a.transport.send([*appends, too_big, beat("a", "b")])
        await eventually(lambda: len(b.recorder.received) == 5, "the split batch arrives")
        assert b.recorder.received == [*appends, beat("a", "b")]
        # The connection survived: nothing over the receiver's limit was sent.
        assert a.transport._links["b"].ws is not None
    finally:
        await a.stop()
        await b.stop()


def make_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_mutual_tls(tmp_path: Path) -> None:
    """Peers over https with self-signed certificates; each side requires the other's."""
    cert, key = make_certificate(tmp_path, "cluster")
    stranger_cert, stranger_key = make_certificate(tmp_path, "stranger")

    def server_context() -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(cert))
        ctx.load_cert_chain(cert, key)
        ctx.verify_mode = ssl.CERT_REQUIRED  # mutual: a peer must show a cluster certificate
        return ctx

    def client_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
        ctx.load_cert_chain(cert_file, key_file)
        return ctx

    peers = []
    for node_id, client in (
        ("a", client_context(cert, key)),
        ("b", client_context(cert, key)),
        ("c", client_context(stranger_cert, stranger_key)),  # knows the secret, wrong cert
    ):
        peers.append(Peer(node_id, free_socket(), ssl=client))
    a, b, c = peers
    book = {p.id: f"https://127.0.0.1:{p.port}" for p in peers}
    runners = []
    try:
        for p in peers:
            app = web.Application()
            add_peer_routes(app, p.transport)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.SockSite(runner, p.sock, ssl_context=server_context()).start()
            runners.append(runner)
            p.transport.update_peers(book)
            await p.transport.start(p.recorder)
        a.transport.send([beat("a", "b")])
        b.transport.send([beat("b", "a")])
        await eventually(lambda: b.recorder.received == [beat("a", "b")], "a -> b over TLS")
        await eventually(lambda: a.recorder.received == [beat("b", "a")], "b -> a over TLS")
        c.transport.send([beat("c", "b")])
        link = c.transport._links["b"]
        await eventually(lambda: link.last_error is not None, "c's handshake fails")
        assert not isinstance(link.last_error, AuthenticationError)  # refused by TLS first
        assert b.recorder.received == [beat("a", "b")]
    finally:
        for p in peers:
            await p.transport.close()
        for runner in runners:
            await runner.cleanup()


async def test_from_settings_takes_the_node_id_and_the_cluster_secret() -> None:
    settings = Settings(
        NODE_ID="n2",
        NODES={"n1": "http://127.0.0.1:1", "n2": "http://127.0.0.1:2"},
        CLUSTER_SECRET=SECRET,
    )
    transport = AiohttpTransport.from_settings(settings, queue_frames=7)
    assert (transport.node_id, transport.secret, transport.queue_frames) == (
        "n2",
        SECRET.encode(),
        7,
    )
    single = Settings(NODE_ID="n1", NODES={"n1": "http://127.0.0.1:1"}, CLUSTER_SECRET=None)
    one, two = AiohttpTransport.from_settings(single), AiohttpTransport.from_settings(single)
    assert len(one.secret) >= 32 and one.secret != two.secret  # nobody can guess it


async def test_a_peer_with_another_wire_layout_is_refused_by_name(
    pair: tuple[Peer, Peer],
) -> None:
    _, b = pair
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(b.url + PEER_PATH)
        await ws.send_str(encode_hello(Hello("a", "b", new_nonce(), layout="0" * 16)))
        code, reason = await expect_close(ws)
    assert code == CLOSE_PROTOCOL
    assert "speaks peer wire layout 0000000000000000" in reason


async def test_a_reconnecting_peer_replaces_its_older_connection(pair: tuple[Peer, Peer]) -> None:
    _, b = pair
    async with aiohttp.ClientSession() as session:
        first = await raw_session_dial(session, b)
        second = await raw_session_dial(session, b)
        code, _ = await expect_close(first)
        assert code == CLOSE_REPLACED
        await second.send_bytes(encode_peer_batch(PeerBatch("default", "a", (beat("a", "b"),))))
        await eventually(lambda: b.recorder.received == [beat("a", "b")], "the newer one works")
        await second.close()


async def test_a_silent_connection_is_closed_after_the_handshake_timeout() -> None:
    b = Peer("b", free_socket(), handshake_timeout=0.2)
    await b.start({"a": "http://127.0.0.1:1", "b": b.url})
    try:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(b.url + PEER_PATH)
            code, reason = await expect_close(ws)
        assert (code, reason) == (CLOSE_PROTOCOL, "handshake timed out")
    finally:
        await b.stop()


async def test_strangers_handshaking_at_once_are_bounded() -> None:
    b = Peer("b", free_socket(), max_unauthenticated=2)
    await b.start({"a": "http://127.0.0.1:1", "b": b.url})
    try:
        async with aiohttp.ClientSession() as session:
            idle = [await session.ws_connect(b.url + PEER_PATH) for _ in range(2)]
            await eventually(lambda: len(b.transport.acceptor._unauthenticated) == 2, "2 idle")
            third = await session.ws_connect(b.url + PEER_PATH)
            code, reason = await expect_close(third)
            assert (code, reason) == (CLOSE_NOT_READY, "too many connections handshaking")
            for ws in idle:
                await ws.close()
    finally:
        await b.stop()


async def test_calls_failed_with_a_lost_connection_are_not_sent_later() -> None:
    sa, dead = free_socket(), free_socket()
    a = Peer("a", sa)
    await a.start({"a": a.url, "b": f"http://127.0.0.1:{dead.getsockname()[1]}"})
    try:
        a.transport.send([beat("a", "b")])
        link = a.transport._links["b"]
        fut: asyncio.Future[Outcome | BaseException] = asyncio.get_running_loop().create_future()
        link.pending[1] = fut
        link.enqueue(encode_call_request(1, Call("o", "m", CallKind.COMMAND), 1.0))
        a.transport.send([beat("a", "b", 2)])
        link._fail_pending("connection lost")
        assert isinstance(fut.result(), UnavailableError)
        kinds = [frame_kind(f) for f in link.main]
        assert kinds == [FrameKind.BATCH, FrameKind.BATCH]
        assert link.main_bytes == sum(len(f) for f in link.main)
    finally:
        await a.stop()
        dead.close()


async def test_a_changed_address_is_dialled_and_a_removed_peer_is_dropped() -> None:
    a, b = Peer("a", free_socket(), backoff_max=0.2), Peer("b", free_socket())
    await a.start({"a": a.url, "b": b.url})
    await b.start({"a": a.url, "b": b.url})
    moved = Peer("b", free_socket())
    try:
        a.transport.send([beat("a", "b", 1)])
        await eventually(lambda: b.recorder.received == [beat("a", "b", 1)], "first address")
        await moved.start({"a": a.url, "b": moved.url})
        a.transport.update_peers({"a": a.url, "b": moved.url})

        def resend() -> bool:
            a.transport.send([beat("a", "b", 2)])
            return beat("a", "b", 2) in moved.recorder.received

        await eventually(resend, "the new address")
        # (A frame sent while the old connection was closing may still reach the old b.)
        before = len(b.recorder.received)
        a.transport.send([beat("a", "b", 4)])
        await eventually(lambda: beat("a", "b", 4) in moved.recorder.received, "again")
        assert len(b.recorder.received) == before
        a.transport.update_peers({"a": a.url})
        await eventually(lambda: "b" not in a.transport._links, "b's link is gone")
        a.transport.send([beat("a", "b", 3)])  # no address: dropped, not raised
        with pytest.raises(UnavailableError, match="no address"):
            await a.transport.forward("b", Call("o", "m", CallKind.COMMAND), 1.0)
    finally:
        await a.stop()
        await b.stop()
        await moved.stop()
