"""Versioned byte formats: command log entries, snapshot state blobs, and recorded errors.

Every byte format starts with a three-byte magic and a one-byte codec version,
so that a reader recognises garbage (CorruptionError) and a format from a newer
agree (IncompatibleVersionError naming both versions) instead of misreading it.

* **Commands** (the payload of a Raft log entry) are JSON: a command carries only
  values its operation schema has already turned into JSON, and the log never
  holds a pickle.  ``b"AGC" + version + JSON array``.
* **State blobs** (snapshots) are pickles, which only nodes that trust each
  other exchange.  They carry state, not code: a class or function that its
  module exposes under its qualified name -- ``__main__`` included -- is stored
  by that name and bound to the reader's code when loaded; only what has no
  name (a lambda, a closure, a class made inside a function) is carried by
  value, through cloudpickle.  A *hosted* object (:func:`dump_state`'s
  ``hosted``) is stored without even its class's name: the reader names the
  class to rebuild it as, so a renamed class still restores.  cloudpickle is
  supported only between identical Python versions, so the header records the
  codec, Python and cloudpickle versions that wrote the blob, and a reader
  refuses another Python major.minor or another cloudpickle major by name.  A
  CRC-32 over the payload turns a damaged blob into CorruptionError before
  anything is unpickled.
  ``b"AGS" + version + u32 header length + JSON header + payload``.
* **Errors** travel as :class:`ErrorInfo` (type name, the stable wire code of a
  class in agree's tree, message, args and instance attributes in the
  self-describing form of :mod:`agree.objects.values`) and are rebuilt as the same
  class with the same args and attributes where that class is known here;
  nothing is ever imported or unpickled, and no ``__init__`` runs.
"""

from __future__ import annotations

import binascii
import copyreg
import functools
import io
import json
import math
import pickle
import platform
import struct
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any, Final

import cloudpickle

from agree.errors import (
    AgreeError,
    CorruptionError,
    IncompatibleVersionError,
    ProtocolError,
    RemoteError,
    StorageError,
    ValidationError,
    error_class,
)
from agree.objects import values

__all__ = [
    "COMMAND_CODEC_VERSION",
    "COMMAND_MAGIC",
    "STATE_CODEC_VERSION",
    "STATE_MAGIC",
    "CommandRecord",
    "ErrorInfo",
    "StateHeader",
    "class_path",
    "decode_command",
    "decode_error",
    "dump_state",
    "encode_arguments",
    "encode_command",
    "encode_error",
    "load_state",
    "peek_state_header",
]

COMMAND_MAGIC: Final = b"AGC"
COMMAND_CODEC_VERSION: Final = 1
STATE_MAGIC: Final = b"AGS"
# 2: names instead of by-value classes, hosted objects rebuilt as the reader's classes.
STATE_CODEC_VERSION: Final = 2

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


@dataclass(slots=True)
class CommandRecord:
    """One command as it sits in the log.

    ``args``/``kwargs`` are the JSON form produced by ``BoundCall.to_json``.
    ``(client_id, seq)`` make retries exactly-once (Raft dissertation §6.3);
    ``ack`` is the highest seq whose outcome the client has received, so replicas
    may forget it.  ``timestamp_ns`` is stamped by the leader (UTC nanoseconds)
    so that every replica sees the same time.

    Not frozen: the leader builds one per command and every replica decodes one per applied
    entry, and a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__`` (about five times the cost).  Nothing assigns to a record after it
    is built.
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
# Set by JSONDecoder.__init__ (the C scanner when there is one); its stub does not name it.
_SCAN: Final[Callable[[str, int], tuple[Any, int]]] = _DECODER.scan_once  # type: ignore[attr-defined]


_COMMAND_PREFIX: Final = COMMAND_MAGIC + bytes((COMMAND_CODEC_VERSION,))


@functools.lru_cache(maxsize=1024)
def _command_head(obj: str, method: str) -> str:
    """``["object","method"`` as :func:`encode_command` writes it: the same for every call of
    one operation."""
    return _ENCODER.encode([obj, method])[:-1]


def encode_arguments(args: list[Any], kwargs: dict[str, Any]) -> str | None:
    """``[args, kwargs]`` as the compact JSON :func:`encode_command` writes them, or None if they
    are not JSON.  Measured for the size limit, then passed on so they are encoded once."""
    try:
        return _ENCODER.encode([args, kwargs])
    except (TypeError, ValueError):
        return None


def encode_command(rec: CommandRecord, arguments: str | None = None) -> bytes:
    """``b"AGC" + version + compact JSON array``; ValidationError if an argument is not JSON.

    ``arguments``: ``encode_arguments(rec.args, rec.kwargs)``, if the caller has it already."""
    try:
        if arguments is None:
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
        else:  # the same text: compact JSON of a list is its items' JSON, comma-separated
            head = _command_head(rec.object, rec.method)
            seq, ts, ack = rec.seq, rec.timestamp_ns, rec.ack
            if type(seq) is int and type(ts) is int and type(ack) is int:  # JSON is their repr
                tail = f"{encode_basestring(rec.client_id)},{seq},{ts},{ack}]"
            else:
                tail = _ENCODER.encode([rec.client_id, seq, ts, ack])[1:]
            body = f"{head},{arguments[1:-1]},{tail}"
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"command {rec.object}.{rec.method} cannot be encoded: {exc}; its arguments must be "
            "the JSON form from BoundCall.to_json()"
        ) from None
    return _COMMAND_PREFIX + body.encode("utf-8")


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
    # Every replica decodes every entry: bytes with this codec's prefix skip the checks that
    # only name what is wrong with the rest.
    if type(data) is bytes and data[:_PREFIX_LEN] == _COMMAND_PREFIX:
        raw = data
    else:
        raw = _check_prefix(data, COMMAND_MAGIC, COMMAND_CODEC_VERSION, "command entry")
    try:
        text = raw[_PREFIX_LEN:].decode("utf-8")
        # What encode_command writes is one compact array, scanned without the decoder's
        # whitespace passes; anything else goes through them, with the same result or error.
        try:
            fields, end = _SCAN(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):
            fields = _DECODER.decode(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptionError(f"command entry is not valid JSON: {exc}") from None
    if not isinstance(fields, list) or len(fields) != len(_COMMAND_FIELDS):
        raise CorruptionError(
            f"command entry must be a JSON array of {len(_COMMAND_FIELDS)} fields, "
            f"got {_show(raw[_PREFIX_LEN:], 40)}"
        )
    obj, method, args, kwargs, client_id, seq, timestamp_ns, ack = fields
    # Exact types, as json.loads makes them (bool is an int to isinstance: here it is damage).
    if not (
        type(obj) is str
        and type(method) is str
        and type(args) is list
        and type(kwargs) is dict
        and type(client_id) is str
        and type(seq) is int
        and type(timestamp_ns) is int
        and type(ack) is int
    ):
        for (name, kind), value in zip(_COMMAND_FIELDS, fields, strict=True):
            if type(value) is not kind:
                raise CorruptionError(
                    f"command entry field {name!r} must be {kind.__name__}, got {value!r}"
                )
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
    #: Hosted object name -> ``"module.qualname"`` of the class whose instance it was when
    #: written.  For messages only: a reader rebuilds the object as the class it hosts now.
    hosted: dict[str, str] = field(default_factory=dict)


def _python_version() -> str:
    return platform.python_version()


def _cloudpickle_version() -> str:
    return str(cloudpickle.__version__)


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def class_path(cls: type) -> str:
    """``"module.qualname"`` of ``cls``, as messages about stored state name it."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _by_name(obj: type | types.FunctionType) -> bool:
    """True if ``obj``'s module exposes it under its qualified name, so that a reader can find
    its own definition by that name (``__main__`` included: the reader's script)."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    if module is None:
        return False
    target: object = module
    try:
        for part in obj.__qualname__.split("."):  # "<locals>" or "<lambda>": no such attribute
            target = getattr(target, part)
    except Exception:
        return False
    return target is obj


def _new_hosted(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Stands in a state blob for "a new instance of the class hosted as ``name``".

    Only :func:`load_state`, which is given the classes, resolves it; a plain unpickler lands
    here instead.
    """
    raise StorageError(
        f"this state blob holds the hosted object {name!r}; only load_state(..., hosted=...)"
        " can rebuild it"
    )


# What object.__reduce_ex__(2+) names as the constructor of an instance (absent from the stubs).
_NEWOBJ: Final = copyreg.__dict__["__newobj__"]
_NEWOBJ_EX: Final = copyreg.__dict__["__newobj_ex__"]


def _hosted_reduce(obj: object, name: str) -> Any:
    """``obj``'s pickle reduction with its class replaced by "the class hosted as ``name``".

    For an instance reduced the default way (``copyreg.__newobj__``/``__newobj_ex__``: the class,
    then its state from ``__getstate__``) only the class reference changes; the state is
    pickled as usual.  A class with a ``__reduce__`` of its own rebuilds itself its own way,
    by the names it chose.
    """
    rv = obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    if not (isinstance(rv, tuple) and len(rv) >= 2 and rv[1] and rv[1][0] is type(obj)):
        return NotImplemented
    if rv[0] is _NEWOBJ:
        args, kwargs = tuple(rv[1][1:]), {}
    elif rv[0] is _NEWOBJ_EX:
        args, kwargs = tuple(rv[1][1]), dict(rv[1][2])
    else:
        return NotImplemented
    return (_new_hosted, (name, args, kwargs), *rv[2:])


class _StatePickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle, except that what has a name is stored by name.

    cloudpickle carries the classes and functions of ``__main__`` by value, so a restarted
    script would run the methods of the program that wrote the snapshot.  Here a class or a
    function is stored by reference whenever its module exposes it under its qualified name,
    ``__main__`` included; cloudpickle's by-value form is kept for what cannot be named
    (lambdas, closures, classes defined inside a function).  Hosted objects are stored as state
    under their name (:func:`_hosted_reduce`), never with their class.
    """

    def __init__(self, file: io.BytesIO, hosted: Mapping[str, object]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._hosted = {id(obj): name for name, obj in hosted.items()}

    def reducer_override(self, obj: Any) -> Any:
        if self._hosted:
            name = self._hosted.get(id(obj))
            if name is not None:
                return _hosted_reduce(obj, name)
        if isinstance(obj, type) or type(obj) is types.FunctionType:
            if _by_name(obj):
                return NotImplemented  # pickle's own save_global: module and qualified name
            return super().reducer_override(obj)  # by value
        return NotImplemented


class _StateUnpickler(pickle.Unpickler):
    """Resolves names against this process's code, and hosted objects to the given classes."""

    def __init__(self, file: io.BytesIO, hosted: Mapping[str, type]) -> None:
        super().__init__(file)
        self._hosted = hosted

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name == _new_hosted.__name__:
            return self._new_hosted
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError) as exc:
            raise StorageError(
                f"the stored state refers to {module}.{name}, which this code does not define"
                f" ({type(exc).__name__}: {exc}).  Classes and functions in a snapshot's values"
                " are stored by name: keep that name importable (an alias is enough after a"
                " rename)"
            ) from exc

    def _new_hosted(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        cls = self._hosted.get(name)
        if cls is None:
            raise StorageError(f"the state blob holds object {name!r}, but no class was given")
        # What copyreg.__newobj__ does; pickle then hands the instance its state (BUILD).
        return cls.__new__(cls, *args, **kwargs)


def dump_state(obj: object, *, hosted: Mapping[str, object] | None = None) -> bytes:
    """``obj`` as a versioned state blob.

    Values are pickled as pickle does (``__reduce_ex__``: ``__getstate__`` is honoured), with
    classes and functions by name whenever they have one (see :class:`_StatePickler`).
    ``hosted`` names objects inside ``obj`` whose class is not stored at all: :func:`load_state`
    rebuilds each as the class it is given for that name, as unpickling would -- without
    calling ``__init__``, then ``__setstate__(state)`` if the class defines it, else the
    instance ``__dict__`` (and slots) updated from the state.
    """
    hosted = hosted or {}
    buffer = io.BytesIO()
    try:
        _StatePickler(buffer, hosted).dump(obj)
    except Exception as exc:
        raise StorageError(f"cannot snapshot {type(obj).__qualname__}: {exc}") from exc
    payload = buffer.getvalue()
    header = json.dumps(
        {
            "codec": STATE_CODEC_VERSION,
            "python": _python_version(),
            "cloudpickle": _cloudpickle_version(),
            "length": len(payload),
            "crc32": binascii.crc32(payload),
            "hosted": {name: class_path(type(o)) for name, o in hosted.items()},
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
            hosted=fields["hosted"],
        )
    except (KeyError, TypeError) as exc:
        raise CorruptionError(f"state blob header lacks a field: {exc}") from None
    if (
        header.codec_version != STATE_CODEC_VERSION
        or not isinstance(header.python_version, str)
        or not isinstance(header.cloudpickle_version, str)
        or not isinstance(header.payload_length, int)
        or not isinstance(header.crc32, int)
        or not isinstance(header.hosted, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in header.hosted.items())
    ):
        raise CorruptionError(f"state blob header is malformed: {fields!r}")
    return header


def load_state(data: bytes, *, hosted: Mapping[str, type] | None = None) -> object:
    """The object in a blob from :func:`dump_state`.

    ``hosted`` gives, per hosted object name, the class to rebuild that object as (this
    process's code, whatever class wrote it).  Refuses, naming both versions, a blob written by
    another Python major.minor or another cloudpickle major (IncompatibleVersionError);
    CorruptionError when the header or the payload's checksum is wrong; StorageError when the
    state refers to a name this code does not define.
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
        state: object = _StateUnpickler(io.BytesIO(payload), hosted or {}).load()
    except (pickle.UnpicklingError, EOFError) as exc:
        raise CorruptionError(f"state blob payload cannot be unpickled: {exc}") from exc
    except StorageError:
        raise
    except Exception as exc:
        # Typically a user's __setstate__ that does not accept the stored state.
        raise StorageError(
            f"state blob cannot be restored by this code: {type(exc).__name__}: {exc}"
        ) from exc
    return state


# -- errors ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An exception in the form a JSON message carries: the error wire form.

    ``type`` is ``"module:qualname"``; ``code`` is the stable wire code of a class in
    agree's error tree (None for anything else); ``args`` and ``attrs`` (the
    instance's ``__dict__``) are in the self-describing form of :mod:`agree.objects.values`,
    and ``args`` is None when the args or an attribute had no such form (the
    exception then comes back as a RemoteError).
    """

    type: str
    message: str
    args: list[Any] | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    code: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "args": self.args,
            "attrs": self.attrs,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ErrorInfo:
        """The ErrorInfo in ``data``; ProtocolError if it does not have that shape."""
        if not isinstance(data, Mapping):
            raise ProtocolError(f"an error must be a JSON object, got {type(data).__name__}")
        kind, message, args = data.get("type"), data.get("message"), data.get("args")
        attrs, code = data.get("attrs", {}), data.get("code")
        if not isinstance(kind, str) or not isinstance(message, str):
            raise ProtocolError(f"an error needs string 'type' and 'message', got {dict(data)!r}")
        if args is not None and not (isinstance(args, list) and _json_native(args)):
            raise ProtocolError(f"an error's 'args' must be a JSON array or null, got {args!r}")
        if not (isinstance(attrs, dict) and _json_native(attrs)):
            raise ProtocolError(f"an error's 'attrs' must be a JSON object, got {attrs!r}")
        if code is not None and not isinstance(code, str):
            raise ProtocolError(f"an error's 'code' must be a string or null, got {code!r}")
        return cls(kind, message, args, dict(attrs), code)


def _json_native(value: Any) -> bool:
    """True if ``value`` is made of JSON values only (finite floats, str keys)."""
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
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
    """The wire form of ``exc``: type, wire code, message, args and attributes.

    A RemoteError passes on the original type it stands for.
    """
    if isinstance(exc, RemoteError):
        message = _message(exc)
        prefix = _remote_prefix(exc.type_name)
        if message.startswith(prefix):
            message = message[len(prefix) :]
        args = None if exc.remote_args is None else _encode_all(list(exc.remote_args))
        return ErrorInfo(exc.type_name, message, args, _encode_attrs(exc.remote_attrs)[0])
    cls = type(exc)
    code = cls.__dict__.get("code") if isinstance(exc, AgreeError) else None
    args = _encode_all(list(exc.args))
    attrs, complete = _encode_attrs(getattr(exc, "__dict__", {}))
    return ErrorInfo(
        values.type_name_of(cls),
        _message(exc),
        args if complete else None,
        attrs,
        code if isinstance(code, str) else None,
    )


def _encode_all(items: list[Any]) -> list[Any] | None:
    try:
        encoded: list[Any] = values.encode(items)
    except TypeError:
        return None
    return encoded


def _encode_attrs(attrs: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The attributes that have a self-describing form, and whether all of them do."""
    out: dict[str, Any] = {}
    complete = True
    for name, value in attrs.items():
        try:
            out[name] = values.encode(value)
        except TypeError:
            complete = False
    return out, complete


def _rebuild(cls: type[BaseException], args: list[Any], attrs: dict[str, Any]) -> BaseException:
    """An instance of ``cls`` with these args and attributes, without calling its ``__init__``.

    A user's exception may take other parameters than its args (``InsufficientFunds(needed,
    have)`` passing a message up), so it is rebuilt as pickle would rebuild an object: made
    by its nearest builtin base's ``__new__``, then given its args and ``__dict__``.  A builtin
    exception is simply constructed (its constructor sets fields such as ``OSError.errno``).
    """
    if cls.__module__ == "builtins":
        exc = cls(*args)
    else:
        base = next(b for b in cls.__mro__ if b.__module__ == "builtins")
        exc = base.__new__(cls, *args)
        exc.args = tuple(args)
    if attrs:
        exc.__dict__.update(attrs)
    return exc


def decode_error(info: ErrorInfo) -> BaseException:
    """The exception ``info`` describes, as its own class with its args and attributes.

    The class is the one in agree's tree with ``info.code``, or else the one named by
    ``info.type`` when its module is already imported in this process (a user's
    exception lives in the module of their replicated class, which the node hosting it
    and a client proxy built from the class have imported) and it derives from
    Exception.  Otherwise, or when the args did not travel or the rebuilt exception does
    not print the same message, a RemoteError carrying the type's name, the message and
    whatever args and attributes could be decoded.  Nothing is imported, nothing is
    unpickled, and no ``__init__`` runs.
    """
    cls: type | None = error_class(info.code) if info.code is not None else None
    if cls is None:
        cls = values.resolve_type(info.type)
    args: list[Any] | None = None
    attrs: dict[str, Any] = {}
    try:
        if info.args is not None:
            args = values.decode(info.args)
        attrs = {k: values.decode(v) for k, v in info.attrs.items()}
    except ValueError:
        args, attrs = None, {}
    if cls is not None and issubclass(cls, Exception) and args is not None:
        try:
            rebuilt = _rebuild(cls, args, attrs)
            same = str(rebuilt) == info.message
        except Exception:
            same = False
        if same:
            return rebuilt
    return RemoteError(
        _remote_prefix(info.type) + info.message,
        type_name=info.type,
        remote_args=None if args is None else tuple(args),
        remote_attrs=attrs,
    )
