"""The backup file format (agree.wire.backup): a magic line with the format version, a JSON
header, the body; decoding checks the version, the header, the body's length and SHA-256."""

from __future__ import annotations

import pytest

from agree.errors import CorruptionError, IncompatibleVersionError
from agree.wire.backup import GroupState, decode_backup, encode_backup


def _file(body: bytes = b"\x00state\nwith newlines\n") -> bytes:
    return encode_backup(
        index=42,
        term=3,
        node="n2",
        created="2026-11-29T20:00:00+00:00",
        members={"n1": {"url": "http://a:1", "role": "voter"}},
        objects={"kv": {"class": "KVStore", "format": 1, "operations": {}}},
        body=body,
    )


def test_round_trip() -> None:
    backup = decode_backup(_file())
    assert backup.body == b"\x00state\nwith newlines\n"
    header = backup.header
    assert (header.index, header.term, header.node) == (42, 3, "n2")
    assert header.members["n1"]["url"] == "http://a:1" and "kv" in header.objects
    assert header.body_bytes == len(backup.body)


def test_another_format_version_is_named() -> None:
    data = _file().replace(b"AGREE-BACKUP 1\n", b"AGREE-BACKUP 3\n", 1)
    with pytest.raises(IncompatibleVersionError, match="backup format '3'; this agree reads"):
        decode_backup(data, source="old.backup")


def test_damage_anywhere_is_refused() -> None:
    data = _file()
    first_line_end = data.index(b"\n") + 1
    with pytest.raises(CorruptionError, match="damaged header"):
        decode_backup(
            data[:first_line_end] + b"{not json\n" + data[data.index(b"\n", first_line_end) + 1 :]
        )
    with pytest.raises(CorruptionError, match="header line is incomplete"):
        decode_backup(data[: first_line_end + 10])
    with pytest.raises(CorruptionError, match="checksum mismatch"):
        decode_backup(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(CorruptionError, match="body has 22 bytes where the header says 23"):
        decode_backup(_file(b"x" * 23)[:-1])


def _groups_file() -> bytes:
    schema = {"class": "Counter", "format": 1, "operations": {}}
    return encode_backup(
        index=42,
        term=3,
        node="n2",
        created="2026-11-29T20:00:00+00:00",
        members={"n1": {"url": "http://a:1", "role": "voter"}},
        objects={"kv": {"class": "KVStore", "format": 1, "operations": {}}},
        body=b"default\n",
        groups={
            "b": GroupState(9, 2, {"counter": schema}, b"group b\n"),
            "a": GroupState(7, 4, {}, b""),
        },
    )


def test_every_group_round_trips_with_its_own_position_and_checksum() -> None:
    data = _groups_file()
    assert data.startswith(b"AGREE-BACKUP 2\n")
    backup = decode_backup(data)
    assert backup.body == b"default\n" and backup.header.group == "default"
    states = backup.states()
    assert list(states) == ["default", "a", "b"]
    assert (states["b"].index, states["b"].term, states["b"].body) == (9, 2, b"group b\n")
    assert (states["a"].index, states["a"].body) == (7, b"")
    assert "counter" in states["b"].objects
    # A single group's file stays in format 1, readable by earlier versions.
    assert _file().startswith(b"AGREE-BACKUP 1\n")
    assert b'"groups"' not in _file()


def test_damage_in_one_group_is_named() -> None:
    data = _groups_file()
    with pytest.raises(CorruptionError, match=r"mismatch \(SHA-256 of the body of group 'b'"):
        decode_backup(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(CorruptionError, match="body has 15 bytes where the header says 16"):
        decode_backup(data[:-1])
