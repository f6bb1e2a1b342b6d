"""Snapshot bytes of the simulated state machine: different per node, same state, and a
snapshot glued from two nodes' bytes detected."""

from __future__ import annotations

import random

import pytest

from agree.testing.simstate import CorruptSnapshot, decode_state, encode_state

KV = {f"k{i}": i * 7 for i in range(6)}


def test_canonical_bytes_are_deterministic() -> None:
    assert encode_state(KV) == encode_state(dict(reversed(KV.items())))
    assert decode_state(encode_state(KV)) == KV


def test_two_nodes_write_different_bytes_for_the_same_state() -> None:
    a = encode_state(KV, random.Random(1))
    b = encode_state(KV, random.Random(2))
    assert a != b
    assert decode_state(a) == decode_state(b) == KV
    # The same node writes other bytes at its next snapshot, too.
    salt = random.Random(3)
    assert encode_state(KV, salt) != encode_state(KV, salt)


@pytest.mark.parametrize("cut", [1, 9, 16, 32, 48])
def test_a_head_from_one_node_and_a_tail_from_another_is_corrupt(cut: int) -> None:
    a = encode_state(KV, random.Random(1))
    b = encode_state(KV, random.Random(2))
    with pytest.raises(CorruptSnapshot):
        decode_state(a[:cut] + b[cut:])


def test_truncated_or_foreign_bytes_are_corrupt() -> None:
    data = encode_state(KV)
    for bad in (data[:-1], b"", b"{}", data.replace(b"kv", b"xx")):
        with pytest.raises(CorruptSnapshot):
            decode_state(bad)
