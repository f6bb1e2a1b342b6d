"""The peer handshake's proofs bind everything they should, and its messages are strict."""

from __future__ import annotations

import dataclasses

import pytest

from agree.errors import ProtocolError
from agree.wire.handshake import (
    MAX_HANDSHAKE_BYTES,
    Hello,
    close_reason,
    decode_challenge,
    decode_hello,
    decode_proof,
    decode_welcome,
    encode_challenge,
    encode_hello,
    encode_proof,
    encode_welcome,
    new_nonce,
    proof,
    proofs_match,
)

SECRET = b"cluster-secret"


def test_a_proof_binds_secret_direction_ids_and_both_nonces() -> None:
    n1, n2 = new_nonce(), new_nonce()
    assert n1 != n2 and len(n1) == 32
    base = proof(SECRET, "dialer", "a", "b", n1, n2)
    assert proofs_match(base, proof(SECRET, "dialer", "a", "b", n1, n2))
    for other in [
        proof(b"other-secret", "dialer", "a", "b", n1, n2),
        proof(SECRET, "acceptor", "a", "b", n1, n2),  # not replayable the other way
        proof(SECRET, "dialer", "b", "a", n1, n2),
        proof(SECRET, "dialer", "a", "c", n1, n2),
        proof(SECRET, "dialer", "a", "b", n2, n1),
        proof(SECRET, "dialer", "a", "b", n1, new_nonce()),
        proof(SECRET, "dialer", "ab", "", n1, n2),  # length-prefixed: no ambiguity
    ]:
        assert not proofs_match(base, other)


def test_messages_round_trip() -> None:
    hello = Hello("a", "b", new_nonce())
    assert decode_hello(encode_hello(hello)) == hello
    nonce = new_nonce()
    assert decode_challenge(encode_challenge(nonce)) == nonce
    p = proof(SECRET, "dialer", "a", "b", nonce, nonce)
    assert decode_proof(encode_proof(p)) == p
    assert decode_welcome(encode_welcome(p)) == p


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"hello": 2, "from": "a", "to": "b", "nonce": ""}', "handshake version 2"),
        ('{"hello": 1, "from": "", "to": "b", "nonce": ""}', "'from'"),
        ('{"hello": 1, "from": "a", "to": 3, "nonce": ""}', "'to'"),
        ('{"hello": 1, "from": "a", "to": "b", "nonce": "abcd"}', "32 bytes"),
        ('{"hello": 1, "from": "a", "to": "b", "nonce": "zz"}', "32 bytes"),
        ("[1]", "JSON object"),
        ("\x80\x04 pickle", "not valid JSON"),
        (" " * (MAX_HANDSHAKE_BYTES + 1), "over"),
    ],
)
def test_a_malformed_hello_is_refused(text: str, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode_hello(text)


def test_malformed_replies_are_refused() -> None:
    with pytest.raises(ProtocolError):
        decode_challenge('{"nonce": 5}')
    with pytest.raises(ProtocolError):
        decode_proof('{"proof": "00"}')
    with pytest.raises(ProtocolError, match="welcome"):
        decode_welcome('{"proof": "' + "00" * 32 + '"}')


def test_a_hello_from_another_wire_layout_is_refused_by_name() -> None:
    other = Hello("a", "b", new_nonce(), layout="0123456789abcdef")
    with pytest.raises(ProtocolError, match=r"node 'a' speaks peer wire layout 0123456789abcdef"):
        decode_hello(encode_hello(other))


def test_the_layout_digest_follows_the_message_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    from agree.raft import messages
    from agree.wire import peer

    assert peer._layout_digest() == peer.LAYOUT_DIGEST

    # A message type with one more field (as a newer core might send) has another digest.
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Heartbeat(messages.Message):
        leader_commit: int
        context: bytes = b""
        lease: int = 0

    tags = dict(peer.MESSAGE_TAGS)
    tags[Heartbeat] = tags.pop(messages.Heartbeat)
    monkeypatch.setattr(peer, "MESSAGE_TAGS", tags)
    assert peer._layout_digest() != peer.LAYOUT_DIGEST


def test_a_close_reason_is_cut_between_characters() -> None:
    reason = close_reason("é" * 100)
    assert len(reason) <= 123
    assert reason.decode() == "é" * 61
