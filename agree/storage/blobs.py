"""Integrity and provenance of stored blobs: codec versions, checksums, writer versions.

Storage never interprets entry payloads or snapshot bytes, but it vouches for them: every row
carries a checksum that is verified on load (a mismatch raises :class:`CorruptionError` naming
the table and index), and every blob carries the codec version that wrote it.  Snapshots are
usually cloudpickle output, which its authors support only between identical Python versions,
so a snapshot also records the Python and cloudpickle versions of its writer and is refused,
with both versions named, by a process that could not read it faithfully.
"""

from __future__ import annotations

import hashlib
import struct
import sys
import zlib

import cloudpickle

from agree.errors import CorruptionError, IncompatibleVersionError

# Version 1: entry payloads and snapshot bytes are stored verbatim.
CODEC_VERSION = 1
SUPPORTED_CODECS = frozenset({1})

PYTHON_VERSION = "{}.{}.{}".format(*sys.version_info[:3])
CLOUDPICKLE_VERSION: str = str(cloudpickle.__version__)

_ENTRY_HEADER = struct.Struct(">qqhh")  # index, term, type, codec
_HARD_STATE_HEADER = struct.Struct(">qq")  # term, commit
_CHUNK_HEADER = struct.Struct(">q")  # seq
_SNAPSHOT_HEADER = struct.Struct(">qqqqh")  # index, term, size, chunk_count, codec


def entry_checksum(index: int, term: int, entry_type: int, codec: int, data: bytes) -> int:
    return zlib.crc32(data, zlib.crc32(_ENTRY_HEADER.pack(index, term, entry_type, codec)))


def hard_state_checksum(term: int, vote: str | None, commit: int) -> int:
    # A None vote and an empty-string vote must not collide: prefix a presence byte.
    vote_bytes = b"\x00" if vote is None else b"\x01" + vote.encode()
    return zlib.crc32(vote_bytes, zlib.crc32(_HARD_STATE_HEADER.pack(term, commit)))


def chunk_checksum(seq: int, data: bytes | memoryview) -> int:
    return zlib.crc32(data, zlib.crc32(_CHUNK_HEADER.pack(seq)))


def snapshot_hasher(
    *,
    index: int,
    term: int,
    conf: bytes,
    size: int,
    chunk_count: int,
    codec: int,
    python_version: str,
    cloudpickle_version: str,
) -> hashlib.blake2b:
    """A blake2b seeded with the snapshot header; feed it the bytes, then ``hexdigest()``."""
    h = hashlib.blake2b(digest_size=32)
    h.update(_SNAPSHOT_HEADER.pack(index, term, size, chunk_count, codec))
    for text in (python_version, cloudpickle_version):
        raw = text.encode()
        h.update(len(raw).to_bytes(2, "big") + raw)
    h.update(conf)
    return h


def check_codec(codec: int, *, what: str) -> None:
    """Refuse a blob written with a codec this process does not know."""
    if codec not in SUPPORTED_CODECS:
        raise IncompatibleVersionError(
            f"{what} was written with storage codec version {codec}; this process supports "
            f"codec version(s) {', '.join(map(str, sorted(SUPPORTED_CODECS)))} "
            f"(newest {CODEC_VERSION}); upgrade agree to read it"
        )


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def check_snapshot_writer(python_version: str, cloudpickle_version: str, *, what: str) -> None:
    """Refuse a snapshot written by another Python major.minor or another cloudpickle major.

    Same major.minor Python and same cloudpickle major is accepted: patch releases do not change
    the pickle formats cloudpickle relies on.
    """
    if _major_minor(python_version) != _major_minor(PYTHON_VERSION):
        raise IncompatibleVersionError(
            f"{what} was written by Python {python_version}; this process runs Python "
            f"{PYTHON_VERSION}, and snapshots are only readable by the same Python major.minor"
        )
    if _major(cloudpickle_version) != _major(CLOUDPICKLE_VERSION):
        raise IncompatibleVersionError(
            f"{what} was written with cloudpickle {cloudpickle_version}; this process has "
            f"cloudpickle {CLOUDPICKLE_VERSION}, and snapshots are only readable by the same "
            f"cloudpickle major version"
        )


def corruption(table: str, key: str, detail: str) -> CorruptionError:
    return CorruptionError(f"{table} {key}: {detail}")
