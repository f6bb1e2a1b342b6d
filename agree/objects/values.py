"""The self-describing JSON form of values that carry no type hint.

A parameter or result typed ``Any`` (or not annotated), and the arguments and
attributes of an exception, have no schema to say what type a JSON array or
string stands for.  This module gives such values a JSON form that says it
itself, so that they round-trip exactly: the same value, of the same type, all
the way down.

JSON-native values stand for themselves: ``None``, ``bool``, ``int``, ``str``,
a finite ``float``, a ``list``, and a ``dict`` whose keys are all ``str`` (and
none is ``"$t"``).  Everything else is an object tagged by ``"$t"``::

    {"$t": "tuple", "v": [...]}          also "set", "frozenset"
    {"$t": "dict", "v": [[k, v], ...]}   non-str keys, or a "$t" key
    {"$t": "float", "v": "nan"}          "inf", "-inf"
    {"$t": "bytes", "v": "<base64>"}     also "bytearray"
    {"$t": "date", "v": "2024-01-31"}    also "datetime", "time" (with "tz", "fold")
    {"$t": "timedelta", "v": [days, seconds, microseconds]}
    {"$t": "decimal", "v": "1.10"}       {"$t": "uuid", "v": "..."}
    {"$t": "complex", "v": [re, im]}
    {"$t": "enum", "type": "module:Qualname", "v": "MEMBER"}
    {"$t": "dataclass", "type": "module:Qualname", "v": {"field": ...}}
    {"$t": "namedtuple", "type": "module:Qualname", "v": [...]}

A value of any other type (a subclass of ``str``, an ``OrderedDict``, an
arbitrary object, a pydantic model) is refused by :func:`encode` with a
message naming where it sits, rather than carried in a form that arrives as
something else.  A ``datetime``'s tzinfo travels as a fixed offset (a
``datetime.timezone``, with its name), an IANA zone (a ``zoneinfo.ZoneInfo``,
by key) or pydantic's offset type; any other tzinfo is refused.

Trust: :func:`decode` never imports a module.  An enum, dataclass or named
tuple is rebuilt only when its class is reachable by name in a module this
process has already imported (:func:`resolve_type`); the nodes of a cluster run
the same code, so a class the sender could name is there on every replica.  A
dataclass or named tuple is rebuilt from its recorded fields without calling
its ``__init__``/``__post_init__`` (as pickle does), so decoding runs none of
its code; nothing is ever unpickled.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import enum
import math
import sys
import uuid
import zoneinfo
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import pydantic_core

__all__ = ["TAG", "decode", "encode", "resolve_type", "type_name_of"]

#: The key that marks a tagged value.
TAG: Final = "$t"


# -- type names -----------------------------------------------------------------------------------


def resolve_type(type_name: str) -> type | None:
    """The class called ``"module:qualname"``, if this process already has it; else None.

    Only modules already in ``sys.modules`` are looked in: importing a module a peer names
    would run its top-level code.  A name with ``<locals>`` (or anything that is not a dotted
    identifier) resolves to nothing.
    """
    module_name, sep, qualname = type_name.partition(":")
    if not sep or not all(p.isidentifier() for p in module_name.split(".")):
        return None
    parts = qualname.split(".")
    if not all(p.isidentifier() for p in parts):
        return None
    module = sys.modules.get(module_name)
    if module is None:
        return None
    target: Any = module
    for part in parts:
        target = getattr(target, part, None)
        if target is None:
            return None
    return target if isinstance(target, type) else None


def type_name_of(cls: type) -> str:
    """``"module:qualname"`` of ``cls``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _named_type(cls: type, where: str) -> str:
    """The name of ``cls`` if the receiving side can resolve it; TypeError otherwise."""
    name = type_name_of(cls)
    if resolve_type(name) is not cls:
        raise TypeError(
            f"{where}: a {cls.__qualname__} cannot be carried untyped: its class is not "
            f"reachable as {name!r} (define it at the top level of a module the nodes import)"
        )
    return name


# -- encoding -------------------------------------------------------------------------------------


def encode(value: Any, where: str = "value") -> Any:
    """The self-describing JSON form of ``value``; TypeError naming ``where`` if it has none."""
    try:
        return _encode(value, where)
    except RecursionError:
        raise TypeError(f"{where}: the value is nested too deeply or refers to itself") from None


def _tagged(tag: str, v: Any) -> dict[str, Any]:
    return {TAG: tag, "v": v}


def _encode_float(value: float) -> Any:
    if math.isfinite(value):
        return value
    return _tagged("float", "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))


def _encode_tz(tz: dt.tzinfo | None, where: str) -> Any:
    if tz is None:
        return None
    kind = type(tz)
    if kind is dt.timezone:
        offset = tz.utcoffset(None)
        assert offset is not None
        name = tz.tzname(None)
        # A timezone made without a name reports a name derived from its offset.
        plain = dt.timezone(offset).tzname(None)
        return ["offset", offset.days * 86_400 + offset.seconds, offset.microseconds,
                None if name == plain else name]
    if kind is zoneinfo.ZoneInfo:
        assert isinstance(tz, zoneinfo.ZoneInfo)
        if isinstance(tz.key, str):
            return ["zone", tz.key]
    if kind is pydantic_core.TzInfo:
        offset = tz.utcoffset(None)
        assert offset is not None
        return ["pydantic", int(offset.total_seconds())]
    raise TypeError(
        f"{where}: a tzinfo of type {kind.__qualname__} cannot be carried exactly; use "
        "datetime.timezone or zoneinfo.ZoneInfo"
    )


def _encode_clock(tag: str, value: dt.datetime | dt.time, where: str) -> dict[str, Any]:
    out = _tagged(tag, value.replace(tzinfo=None, fold=0).isoformat())
    if value.tzinfo is not None:
        out["tz"] = _encode_tz(value.tzinfo, where)
    if value.fold:
        out["fold"] = 1
    return out


def _encode_dict(value: dict[Any, Any], where: str) -> Any:
    if all(type(k) is str for k in value) and TAG not in value:
        return {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}
    return _tagged(
        "dict",
        [
            [_encode(k, f"{where} key {k!r}"), _encode(v, f"{where}[{k!r}]")]
            for k, v in value.items()
        ],
    )


def _encode(value: Any, where: str) -> Any:
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str:
        return value
    if kind is float:
        return _encode_float(value)
    if kind is list:
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if kind is dict:
        return _encode_dict(value, where)
    simple = _SIMPLE.get(kind)
    if simple is not None:
        tag, convert = simple
        return _tagged(tag, convert(value, where))
    if kind is dt.datetime or kind is dt.time:
        return _encode_clock(kind.__name__, value, where)
    if isinstance(value, enum.Enum):
        if value.name is None or kind.__members__.get(value.name) is not value:
            raise TypeError(f"{where}: {value!r} is not a named member, so it cannot be carried")
        return {TAG: "enum", "type": _named_type(kind, where), "v": value.name}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        state = _dataclass_state(value, where)
        return {TAG: "dataclass", "type": _named_type(kind, where), "v": state}
    if isinstance(value, tuple) and isinstance(getattr(kind, "_fields", None), tuple):
        return {
            TAG: "namedtuple",
            "type": _named_type(kind, where),
            "v": [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)],
        }
    raise TypeError(
        f"{where}: a value of type {kind.__qualname__} cannot be converted to agree's "
        "self-describing form, so it cannot be carried untyped; annotate the parameter or "
        "result with its type, or pass a supported type (JSON values, tuple, set, frozenset, "
        "dict, bytes, date/time types, Decimal, UUID, enum members, dataclasses)"
    )


def _dataclass_state(value: Any, where: str) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for f in dataclasses.fields(value):
        try:
            item = getattr(value, f.name)
        except AttributeError:  # an init=False field never set
            continue
        state[f.name] = _encode(item, f"{where}.{f.name}")
    # Attributes set on the instance beyond its fields are state too.
    for name, item in getattr(value, "__dict__", {}).items():
        if name not in state:
            state[name] = _encode(item, f"{where}.{name}")
    return state


def _items(value: Any, where: str) -> list[Any]:
    return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _b64(value: bytes | bytearray, where: str) -> str:
    return base64.b64encode(value).decode("ascii")


def _complex(value: complex, where: str) -> list[Any]:
    return [_encode_float(value.real), _encode_float(value.imag)]


def _timedelta(value: dt.timedelta, where: str) -> list[int]:
    return [value.days, value.seconds, value.microseconds]


def _text(value: Any, where: str) -> str:
    return str(value)


def _iso(value: dt.date, where: str) -> str:
    return value.isoformat()


_SIMPLE: Final[dict[type, tuple[str, Callable[[Any, str], Any]]]] = {
    tuple: ("tuple", _items),
    set: ("set", _items),
    frozenset: ("frozenset", _items),
    bytes: ("bytes", _b64),
    bytearray: ("bytearray", _b64),
    dt.date: ("date", _iso),
    dt.timedelta: ("timedelta", _timedelta),
    Decimal: ("decimal", _text),
    uuid.UUID: ("uuid", _text),
    complex: ("complex", _complex),
}


# -- decoding -------------------------------------------------------------------------------------


def decode(data: Any) -> Any:
    """The value whose form :func:`encode` produced; ValueError if ``data`` is not such a form."""
    try:
        return _decode(data)
    except ValueError:
        raise
    except RecursionError:
        raise ValueError("the value is nested too deeply") from None
    except (TypeError, KeyError, AttributeError, IndexError, OverflowError, binascii.Error,
            InvalidOperation) as exc:
        raise ValueError(f"malformed tagged value: {type(exc).__name__}: {exc}") from None


def _decode(data: Any) -> Any:
    kind = type(data)
    if data is None or kind is bool or kind is int or kind is str:
        return data
    if kind is float:
        if not math.isfinite(data):  # encode() tags these
            raise ValueError(f"a bare {data!r} is not a JSON number")
        return data
    if kind is list:
        return [_decode(v) for v in data]
    if kind is not dict:
        raise ValueError(f"a {kind.__qualname__} is not a JSON value")
    if TAG not in data:
        return {k: _decode(v) for k, v in data.items()}
    tag = data[TAG]
    decoder = _DECODERS.get(tag) if type(tag) is str else None
    if decoder is None:
        raise ValueError(f"unknown value tag {tag!r}")
    return decoder(data)


def _list(data: dict[str, Any]) -> list[Any]:
    v = data["v"]
    if type(v) is not list:
        raise ValueError(f"tag {data[TAG]!r} needs a list, got {v!r}")
    return [_decode(x) for x in v]


def _string(data: dict[str, Any]) -> str:
    v = data["v"]
    if type(v) is not str:
        raise ValueError(f"tag {data[TAG]!r} needs a string, got {v!r}")
    return v


def _float(data: dict[str, Any]) -> float:
    v = _string(data)
    if v not in ("nan", "inf", "-inf"):
        raise ValueError(f"a tagged float is nan, inf or -inf, got {v!r}")
    return float(v)


def _dict(data: dict[str, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for pair in _list(data):
        if type(pair) is not list or len(pair) != 2:
            raise ValueError(f"a tagged dict holds [key, value] pairs, got {pair!r}")
        key, value = pair
        if key in out:
            raise ValueError(f"a tagged dict repeats the key {key!r}")
        out[key] = value
    return out


def _bytes(data: dict[str, Any]) -> bytes:
    return base64.b64decode(_string(data).encode("ascii"), validate=True)


def _decode_tz(raw: Any) -> dt.tzinfo | None:
    if raw is None:
        return None
    if type(raw) is not list or not raw or type(raw[0]) is not str:
        raise ValueError(f"malformed tzinfo {raw!r}")
    match raw:
        case ["offset", int(seconds), int(micro), (str() | None) as name]:
            offset = dt.timedelta(seconds=seconds, microseconds=micro)
            return dt.timezone(offset) if name is None else dt.timezone(offset, name)
        case ["zone", str(key)]:
            return zoneinfo.ZoneInfo(key)
        case ["pydantic", int(seconds)]:
            return pydantic_core.TzInfo(seconds)
    raise ValueError(f"malformed tzinfo {raw!r}")


def _fold(data: dict[str, Any]) -> int:
    fold = data.get("fold", 0)
    if fold not in (0, 1) or type(fold) is not int:
        raise ValueError(f"fold must be 0 or 1, got {fold!r}")
    return int(fold)


def _datetime(data: dict[str, Any]) -> dt.datetime:
    naive = dt.datetime.fromisoformat(_string(data))
    return naive.replace(tzinfo=_decode_tz(data.get("tz")), fold=_fold(data))


def _time(data: dict[str, Any]) -> dt.time:
    naive = dt.time.fromisoformat(_string(data))
    return naive.replace(tzinfo=_decode_tz(data.get("tz")), fold=_fold(data))


def _timedelta_of(data: dict[str, Any]) -> dt.timedelta:
    match data["v"]:
        case [int(days), int(seconds), int(micro)]:
            return dt.timedelta(days=days, seconds=seconds, microseconds=micro)
    raise ValueError(f"a tagged timedelta is [days, seconds, microseconds], got {data['v']!r}")


def _complex_of(data: dict[str, Any]) -> complex:
    match _list(data):
        case [float() | int() as re, float() | int() as im] if type(re) is not bool:
            return complex(re, im)
    raise ValueError(f"a tagged complex is [real, imag], got {data['v']!r}")


def _class(data: dict[str, Any], check: Callable[[type], bool], what: str) -> type:
    name = data["type"]
    if type(name) is not str:
        raise ValueError(f"a tagged {what} needs a string type, got {name!r}")
    cls = resolve_type(name)
    if cls is None or not check(cls):
        raise ValueError(
            f"{name!r} is not {what} this process knows (only classes in modules already "
            "imported here are used; none is imported on a peer's word)"
        )
    return cls


def _is_enum(cls: type) -> bool:
    return issubclass(cls, enum.Enum)


def _is_namedtuple(cls: type) -> bool:
    return issubclass(cls, tuple) and isinstance(getattr(cls, "_fields", None), tuple)


def _enum(data: dict[str, Any]) -> enum.Enum:
    cls = _class(data, _is_enum, "an enum")
    try:
        member: enum.Enum = cls.__members__[_string(data)]  # type: ignore[attr-defined]
    except KeyError:
        raise ValueError(f"{cls.__qualname__} has no member {data['v']!r}") from None
    return member


def _dataclass(data: dict[str, Any]) -> Any:
    cls = _class(data, dataclasses.is_dataclass, "a dataclass")
    state = data["v"]
    if type(state) is not dict or not all(type(k) is str and k.isidentifier() for k in state):
        raise ValueError(f"a tagged dataclass holds its fields by name, got {state!r}")
    # Rebuilt as pickle does, without running __init__/__post_init__: decoding runs no user code.
    obj: Any = object.__new__(cls)
    for name, raw in state.items():
        object.__setattr__(obj, name, _decode(raw))
    return obj


def _namedtuple(data: dict[str, Any]) -> tuple[Any, ...]:
    cls = _class(data, _is_namedtuple, "a named tuple")
    items = _list(data)
    if len(items) != len(cls._fields):  # type: ignore[attr-defined]
        raise ValueError(f"{cls.__qualname__} has {len(cls._fields)} fields, got {items!r}")  # type: ignore[attr-defined]
    rebuilt: tuple[Any, ...] = tuple.__new__(cls, items)
    return rebuilt


_DECODERS: Final[dict[str, Callable[[dict[str, Any]], Any]]] = {
    "tuple": lambda d: tuple(_list(d)),
    "set": lambda d: set(_list(d)),
    "frozenset": lambda d: frozenset(_list(d)),
    "dict": _dict,
    "float": _float,
    "bytes": _bytes,
    "bytearray": lambda d: bytearray(_bytes(d)),
    "date": lambda d: dt.date.fromisoformat(_string(d)),
    "datetime": _datetime,
    "time": _time,
    "timedelta": _timedelta_of,
    "decimal": lambda d: Decimal(_string(d)),
    "uuid": lambda d: uuid.UUID(_string(d)),
    "complex": _complex_of,
    "enum": _enum,
    "dataclass": _dataclass,
    "namedtuple": _namedtuple,
}
