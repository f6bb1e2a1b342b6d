"""The backup file format (agree.wire.backup): a magic line with the format version, a JSON
header, the body; decoding checks the version, the header, the body's length and SHA-256."""

from __future__ import annotations

import pytest

from agree.errors import CorruptionError, IncompatibleVersionError
from agree.wire.backup import decode_backup, encode_backup


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
    data = _file().replace(b"AGREE-BACKUP 1\n", b"AGREE-BACKUP 2\n", 1)
    with pytest.raises(IncompatibleVersionError, match="backup format '2'; this agree reads"):
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
