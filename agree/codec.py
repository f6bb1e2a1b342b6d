"""Versioned byte formats: command log entries, snapshot state blobs, and recorded errors.

Every byte format starts with a three-byte magic and a one-byte codec version,
so that a reader recognises garbage (CorruptionError) and a format from a newer
agree (IncompatibleVersionError naming both versions) instead of misreading it.

* **Commands** (the payload of a Raft log entry) are JSON: a command carries only
  values its operation schema has already turned into JSON, and the log never
  holds a pickle.  ``b"AGC" + version + JSON array``.
* **State blobs** (snapshots) are cloudpickle, which only nodes that trust each
  other exchange.  cloudpickle is supported only between identical Python
  versions, so the header records the codec, Python and cloudpickle versions
  that wrote the blob, and a reader refuses another Python major.minor or
  another cloudpickle major by name.  A CRC-32 over the payload turns a
  damaged blob into CorruptionError before anything is unpickled.
  ``b"AGS" + version + u32 header length + JSON header + payload``.
* **Errors** a user's command or query raised travel as :class:`ErrorInfo`
  (type name, message, JSON-able args) and are rebuilt as the same type where
  that type's module is loaded here; nothing is ever imported or unpickled.
"""

from __future__ import annotations

import binascii
import json
import pickle
import platform
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import cloudpickle

from agree.errors import (
    CorruptionError,
    IncompatibleVersionError,
    ProtocolError,
    RemoteError,
    StorageError,
    ValidationError,
)

__all__ = [
    "COMMAND_CODEC_VERSION",
    "COMMAND_MAGIC",
    "STATE_CODEC_VERSION",
    "STATE_MAGIC",
    "CommandRecord",
    "ErrorInfo",
    "StateHeader",
    "decode_command",
    "decode_error",
    "dump_state",
    "encode_command",
    "encode_error",
    "load_state",
    "peek_state_header",
]

COMMAND_MAGIC: Final = b"AGC"
COMMAND_CODEC_VERSION: Final = 1
STATE_MAGIC: Final = b"AGS"
STATE_CODEC_VERSION: Final = 1

_PREFIX_LEN: Final = 4  # magic (3) + version (1)
_HEADER_LEN: Final = struct.Struct(">I")
# A header is a few hundred bytes; a bigger length means the blob is damaged.
_MAX_HEADER: Final = 64 * 1024


def _show(data: bytes, limit: int = 16) -> str:
    head = bytes(data[:limit])
    return repr(head) + ("..." if len(data) > limit else "")


def _check_prefix(data: object, magic: bytes, version: int, what: str) -> bytes:
    """The data as bytes after its magic and version are checked."""
    if type(data) is bytes:
        raw = data
    elif isinstance(data, bytearray | memoryview):
        raw = bytes(data)
    else:
        raise CorruptionError(f"{what} must be bytes, got {type(data).__name__}")
    if len(raw) < _PREFIX_LEN or raw[:3] != magic:
        raise CorruptionError(
            f"not an agree {what}: expected it to start with {magic!r}, got {_show(raw)}"
        )
    found = raw[3]
    if found != version:
        newer = "a newer" if found > version else "an older"
        raise IncompatibleVersionError(
            f"{what} written with codec version {found} ({newer} agree); this node reads "
            f"codec version {version}"
        )
    return raw


# -- commands -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """One command as it sits in the log.

    ``args``/``kwargs`` are the JSON form produced by ``BoundCall.to_json``.
    ``(client_id, seq)`` make retries exactly-once (Raft dissertation §6.3);
    ``ack`` is the highest seq whose outcome the client has received, so replicas
    may forget it.  ``timestamp_ns`` is stamped by the leader (UTC nanoseconds)
    so that every replica sees the same time.
    """

    object: str
    method: str
    args: list[Any]
    kwargs: dict[str, Any]
    client_id: str
    seq: int
    timestamp_ns: int
    ack: int = 0


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Built once: json.dumps/loads with options construct a new encoder/decoder on every call.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


def encode_command(rec: CommandRecord) -> bytes:
    """``b"AGC" + version + compact JSON array``; ValidationError if an argument is not JSON."""
    try:
        body = _ENCODER.encode(
            [
                rec.object,
                rec.method,
                rec.args,
                rec.kwargs,
                rec.client_id,
                rec.seq,
                rec.timestamp_ns,
                rec.ack,
            ]
        )
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"command {rec.object}.{rec.method} cannot be encoded: {exc}; its arguments must be "
            "the JSON form from BoundCall.to_json()"
        ) from None
    return COMMAND_MAGIC + bytes((COMMAND_CODEC_VERSION,)) + body.encode("utf-8")


_COMMAND_FIELDS: Final = (
    ("object", str),
    ("method", str),
    ("args", list),
    ("kwargs", dict),
    ("client_id", str),
    ("seq", int),
    ("timestamp_ns", int),
    ("ack", int),
)


def decode_command(data: bytes) -> CommandRecord:
    """The command in a log entry; CorruptionError on garbage, IncompatibleVersionError if newer."""
    raw = _check_prefix(data, COMMAND_MAGIC, COMMAND_CODEC_VERSION, "command entry")
    try:
        fields = _DECODER.decode(raw[_PREFIX_LEN:].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptionError(f"command entry is not valid JSON: {exc}") from None
    if not isinstance(fields, list) or len(fields) != len(_COMMAND_FIELDS):
        raise CorruptionError(
            f"command entry must be a JSON array of {len(_COMMAND_FIELDS)} fields, "
            f"got {_show(raw[_PREFIX_LEN:], 40)}"
        )
    for (name, kind), value in zip(_COMMAND_FIELDS, fields, strict=True):
        # bool is an int to isinstance; a bool where a number belongs is damage.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CorruptionError(
                f"command entry field {name!r} must be {kind.__name__}, got {value!r}"
            )
    obj, method, args, kwargs, client_id, seq, timestamp_ns, ack = fields
    if seq < 0 or timestamp_ns < 0 or ack < 0:
        raise CorruptionError("command entry has a negative seq, ack or timestamp")
    return CommandRecord(obj, method, args, kwargs, client_id, seq, timestamp_ns, ack)


# -- state blobs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateHeader:
    """What a state blob says about the code that wrote it."""

    codec_version: int
    #: ``"major.minor.micro"`` of the writing Python.
    python_version: str
    cloudpickle_version: str
    payload_length: int
    crc32: int
    #: Where the payload starts in the blob.
    payload_offset: int


def _python_version() -> str:
    return platform.python_version()


def _cloudpickle_version() -> str:
    return str(cloudpickle.__version__)


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def dump_state(obj: object) -> bytes:
    """``obj`` as a versioned cloudpickle blob (honours ``__getstate__``/``__setstate__``)."""
    try:
        payload: bytes = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise StorageError(f"cannot snapshot {type(obj).__qualname__}: {exc}") from exc
    header = json.dumps(
        {
            "codec": STATE_CODEC_VERSION,
            "python": _python_version(),
            "cloudpickle": _cloudpickle_version(),
            "length": len(payload),
            "crc32": binascii.crc32(payload),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode("ascii")
    return (
        STATE_MAGIC
        + bytes((STATE_CODEC_VERSION,))
        + _HEADER_LEN.pack(len(header))
        + header
        + payload
    )


def peek_state_header(data: bytes) -> StateHeader:
    """The header of a state blob, without unpickling anything.

    CorruptionError on a bad magic or header, IncompatibleVersionError when the
    blob uses another codec version.
    """
    raw = _check_prefix(data, STATE_MAGIC, STATE_CODEC_VERSION, "state blob")
    start = _PREFIX_LEN + _HEADER_LEN.size
    if len(raw) < start:
        raise CorruptionError("state blob is truncated inside its header")
    (size,) = _HEADER_LEN.unpack_from(raw, _PREFIX_LEN)
    if size > _MAX_HEADER or len(raw) < start + size:
        raise CorruptionError(f"state blob header length {size} does not fit the blob")
    try:
        fields = json.loads(raw[start : start + size].decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptionError(f"state blob header is not valid JSON: {exc}") from None
    try:
        header = StateHeader(
            codec_version=fields["codec"],
            python_version=fields["python"],
            cloudpickle_version=fields["cloudpickle"],
            payload_length=fields["length"],
            crc32=fields["crc32"],
            payload_offset=start + size,
        )
    except (KeyError, TypeError) as exc:
        raise CorruptionError(f"state blob header lacks a field: {exc}") from None
    if (
        header.codec_version != STATE_CODEC_VERSION
        or not isinstance(header.python_version, str)
        or not isinstance(header.cloudpickle_version, str)
        or not isinstance(header.payload_length, int)
        or not isinstance(header.crc32, int)
    ):
        raise CorruptionError(f"state blob header is malformed: {fields!r}")
    return header


def load_state(data: bytes) -> object:
    """The object in a blob from :func:`dump_state`.

    Refuses, naming both versions, a blob written by another Python major.minor
    or another cloudpickle major (IncompatibleVersionError); CorruptionError when
    the header or the payload's checksum is wrong.
    """
    header = peek_state_header(data)
    here_py, here_cp = _python_version(), _cloudpickle_version()
    if _major_minor(header.python_version) != _major_minor(here_py):
        raise IncompatibleVersionError(
            f"state blob was written by Python {header.python_version}; this node runs Python "
            f"{here_py}, and snapshots can be read only by the same Python major.minor"
        )
    if _major(header.cloudpickle_version) != _major(here_cp):
        raise IncompatibleVersionError(
            f"state blob was written with cloudpickle {header.cloudpickle_version}; this node "
            f"has cloudpickle {here_cp}, and snapshots can be read only by the same major version"
        )
    payload = bytes(data)[header.payload_offset :]
    if len(payload) != header.payload_length:
        raise CorruptionError(
            f"state blob payload is {len(payload)} bytes, its header says {header.payload_length}"
        )
    if binascii.crc32(payload) != header.crc32:
        raise CorruptionError("state blob payload fails its CRC-32 check")
    try:
        state: object = pickle.loads(payload)
    except (pickle.UnpicklingError, EOFError) as exc:
        raise CorruptionError(f"state blob payload cannot be unpickled: {exc}") from exc
    except Exception as exc:
        # Typically a class the snapshot refers to is no longer importable here.
        raise StorageError(
            f"state blob cannot be restored by this code: {type(exc).__name__}: {exc}"
        ) from exc
    return state


# -- errors ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An exception raised by a user's command or query, in a form JSON can carry.

    ``type`` is ``"module:qualname"``; ``args`` is the exception's args when they
    are JSON-native (so the exception can be rebuilt), else None.
    """

    type: str
    message: str
    args: list[Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "args": self.args}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ErrorInfo:
        """The ErrorInfo in ``data``; ProtocolError if it does not have that shape."""
        if not isinstance(data, Mapping):
            raise ProtocolError(f"an error must be a JSON object, got {type(data).__name__}")
        kind, message, args = data.get("type"), data.get("message"), data.get("args")
        if not isinstance(kind, str) or not isinstance(message, str):
            raise ProtocolError(f"an error needs string 'type' and 'message', got {dict(data)!r}")
        if args is not None and not (isinstance(args, list) and _json_native(args)):
            raise ProtocolError(f"an error's 'args' must be a JSON array or null, got {args!r}")
        return cls(kind, message, args)


def _json_native(value: Any) -> bool:
    """True if JSON carries ``value`` exactly (types included)."""
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, list):
        return all(_json_native(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_native(v) for k, v in value.items())
    return False


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__qualname__} with an unprintable message>"


def _remote_prefix(type_name: str) -> str:
    return f"{type_name}: "


def encode_error(exc: BaseException) -> ErrorInfo:
    """The ErrorInfo of ``exc``.  A RemoteError passes on the original type it stands for."""
    if isinstance(exc, RemoteError):
        message = _message(exc)
        prefix = _remote_prefix(exc.type_name)
        if message.startswith(prefix):
            message = message[len(prefix) :]
        return ErrorInfo(exc.type_name, message, None)
    cls = type(exc)
    args = list(exc.args)
    return ErrorInfo(
        f"{cls.__module__}:{cls.__qualname__}",
        _message(exc),
        args if _json_native(args) else None,
    )


def _resolve_type(type_name: str) -> type | None:
    module_name, sep, qualname = type_name.partition(":")
    if not sep or not all(p.isidentifier() for p in module_name.split(".")):
        return None
    parts = qualname.split(".")
    if not all(p.isidentifier() for p in parts):  # e.g. "<locals>": not reachable by name
        return None
    # Only modules this process has already imported: importing a module named by a
    # peer would run its top-level code (some modules do things when imported).
    module = sys.modules.get(module_name)
    if module is None:
        return None
    target: Any = module
    for part in parts:
        target = getattr(target, part, None)
        if target is None:
            return None
    return target if isinstance(target, type) else None


def decode_error(info: ErrorInfo) -> BaseException:
    """The exception ``info`` describes, as its own type when possible.

    The type is rebuilt when its module is already imported in this process (a
    user's exception lives in the module of their replicated class, which the
    node hosting it and a client proxy built from the class have imported), it
    derives from Exception, and ``type(*args)`` (or ``type(message)`` when args
    were not JSON) gives back the same message; otherwise a RemoteError carrying
    the type's name.  Nothing is imported and nothing is unpickled.
    """
    cls = _resolve_type(info.type)
    if cls is not None and issubclass(cls, Exception):
        attempts = [[info.message]] if info.args is None else [info.args, [info.message]]
        for args in attempts:
            try:
                rebuilt = cls(*args)
            except Exception:
                continue
            if _message(rebuilt) == info.message:
                return rebuilt
    return RemoteError(_remote_prefix(info.type) + info.message, type_name=info.type)
