"""The operation schema of a replicated class: validation, JSON conversion, publication.

This module owns what agree knows about a class's ``@command``/``@query``
methods once the class exists: each operation's name, kind, parameters, type
hints, return type and default consistency (:class:`Operation`), the class's set
of operations (:class:`ObjectSchema`), its published JSON form and fingerprint,
and the compatibility check between two nodes.

One pydantic ``TypeAdapter`` per type hint does all three jobs — validating a
call before anything is proposed, converting values to and from JSON, and
describing the type as JSON Schema — so what is checked, what is carried and
what is published cannot drift apart.

Conversion rules
----------------
* Python callers (:meth:`Operation.bind`) are validated *strictly*: ``"1"`` is
  not an ``int``, a ``list`` is not a ``tuple``; the one widening allowed is an
  ``int`` for a ``float`` (it becomes a ``float``).  Nothing is coerced silently.
* JSON callers and the log (:meth:`Operation.bind_json`) are validated in
  pydantic's lax *JSON* mode: ISO strings become datetimes, arrays become
  tuples or sets, objects become dataclasses, base64 strings become bytes.
* Every annotated value round-trips exactly: ``bind → to_json → json.dumps →
  json.loads → bind_json`` yields equal values of the same types (an ``int``
  stays an ``int``, a ``float`` a ``float``, ``inf``/``nan`` travel as the
  strings ``"Infinity"``/``"NaN"``, bytes as URL-safe base64).
* An unannotated parameter or return is ``Any`` (as is ``object``), and so is
  every member of a bare ``list``/``tuple``/``set``/``dict``: such values travel
  in the self-describing form of :mod:`agree.objects.values` and round-trip exactly (a
  tuple stays a tuple, a set a set, bytes bytes, an int key an int; dates,
  decimals, UUIDs, enum members and module-level dataclasses included).  A value
  that form cannot carry (an arbitrary object, a str subclass) is a
  ValidationError before anything is proposed.
* An aware ``datetime``/``time`` under a datetime hint arrives with a fixed-offset
  tzinfo equal to its own (pydantic's ``TzInfo``); one whose tzinfo JSON's ISO
  form would not carry (a ``ZoneInfo``, a named ``timezone``) is refused.  Typed
  ``Any`` it keeps its zone.
* A ``dict`` whose key type a JSON object cannot hold (anything but str, int,
  UUID, an enum of str values or an int enum), e.g. ``dict[tuple[int, int], str]``,
  travels as an array of ``[key, value]`` pairs.
* Nothing changes type silently.  A value strict validation would pass as its
  base (an instance of a subclass of a declared dataclass or model, a str
  subclass) is refused, and so is a key a TypedDict does not declare.  Hints
  that cannot be carried exactly are refused when the class is created: an
  abstract collection (``Sequence[int]``: which type arrives?) and a field of a
  dataclass, model, TypedDict or named tuple typed ``Any``, with a bare
  container, or as a dict with non-string keys (pydantic, not agree, converts
  fields, and would carry them in their JSON form).
* A union whose members share a JSON form (``datetime | str``) comes back as
  the member pydantic's smart mode picks for that JSON value — the exact JSON
  type first; keep unions of such types out of operation signatures.
* A pydantic model's own ``model_config`` governs its fields; to carry
  arbitrary (non-UTF-8) bytes inside a model, give it
  ``ser_json_bytes="base64", val_json_bytes="base64"``.  Dataclasses and
  TypedDicts follow agree's settings.

Compatibility
-------------
Two schemas are *compatible* when they are equal once documentation (titles,
descriptions, docstrings, the class name) is set aside: the same operation
names, each with the same kind, default consistency, parameters (names, order,
kinds, types, required-ness, defaults) and return type.  A type is compared
twice: by its JSON Schema (which sees inside dataclasses and models) and by its
canonical Python spelling (:func:`type_name`, which tells ``list[int]`` from
``tuple[int, ...]`` where JSON Schema cannot).  Compatible schemas have equal
fingerprints; :meth:`ObjectSchema.check_compatible` checks it, e.g. between a
published schema and the class a client expects.

Upgrades
--------
Code changes while the log persists, so a cluster compares each node's code with
the schema it *recorded* (agree.replica.cluster_schema) by a one-sided rule instead:
:func:`extension_problems`.  The new schema is a *compatible extension* of the
recorded one when every committed entry the log may hold is applied by it as the
recorded code would apply it:

* kept as it is: every recorded operation (name, kind ``command``/``query``,
  default consistency, return type) and every recorded parameter (name, kind,
  type, required-ness, default), positional ones in their places;
* added: new operations; new parameters after the recorded positional ones (or
  keyword-only), each with a default, which must mean the old behaviour, since
  the log's older entries are applied with it; new hosted objects.

Anything else is incompatible: removing or renaming an operation or parameter
(the log may hold calls of it), changing a type (even widening one: an ``int``
that becomes ``int | str``, or a return type, which retried calls and clients
decode), a default, a kind (command into query) or a parameter's place, or a
new required parameter.  Queries are held to the same rule as commands so that
a proxy built from one node's schema works against every node.  Equality, or a
one-sided extension that the whole cluster adopts at once, never "the remote
lacks nothing" per node: a command one replica accepts and another does not
know makes the replicas diverge -- go-agree's defect.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import enum
import hashlib
import inspect
import json
import types
import typing
import uuid
from collections import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

import pydantic
import pydantic_core
import typing_extensions
from pydantic import ConfigDict, TypeAdapter

from agree.errors import SchemaMismatchError, UnknownMethodError, ValidationError
from agree.objects import values
from agree.objects.replicated import (
    Consistency,
    OperationMark,
    Replicated,
    check_operation_name,
    operation_mark,
)

__all__ = [
    "MISSING",
    "SCHEMA_FORMAT",
    "BoundCall",
    "ObjectSchema",
    "Operation",
    "Param",
    "TypeCodec",
    "build_schema",
    "canonical_json",
    "extension_problems",
    "schema_fingerprint",
    "schema_of",
    "type_name",
]

#: Version of the layout of :meth:`ObjectSchema.json_schema`; part of the fingerprint.
SCHEMA_FORMAT: Final = 1

# bytes as base64 (UTF-8 would refuse arbitrary bytes) and inf/nan as strings
# (JSON has no literal for them, and null would lose them).  Dataclass instances
# are revalidated so that a wrong field type deep inside one is caught with its path.  A key
# a TypedDict or dataclass does not declare is refused rather than dropped.
_CONFIG: Final = ConfigDict(
    extra="forbid",
    ser_json_bytes="base64",
    val_json_bytes="base64",
    ser_json_inf_nan="strings",
    revalidate_instances="always",
)


# Built once: json.dumps with options constructs a new encoder on every call.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


#: The default of a required parameter.
MISSING: Final = _Missing.MISSING

ParamKind = Literal["positional_or_keyword", "keyword_only"]
OperationKind = Literal["command", "query"]


def canonical_json(value: Any) -> str:
    """Key-sorted, whitespace-free, ASCII JSON: the same bytes for the same value everywhere."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def _describe_errors(exc: pydantic.ValidationError, what: str, limit: int = 3) -> str:
    parts: list[str] = []
    for err in exc.errors(include_url=False)[:limit]:
        # loc[0] is the index in the one-element tuple the adapter wraps the value in.
        path = ".".join(str(p) for p in err["loc"][1:])
        where = f"{what} at {path}" if path else what
        shown = repr(err.get("input"))
        if len(shown) > 60:
            shown = shown[:57] + "..."
        parts.append(f"{where}: {err['msg']} (got {type(err.get('input')).__name__} {shown})")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"... and {more} more error(s)")
    return "; ".join(parts)


# -- carrying values exactly ----------------------------------------------------------------------


def _validate_untyped(value: Any, info: pydantic_core.core_schema.ValidationInfo) -> Any:
    # From Python the value is checked when it is converted; from JSON it is decoded.
    return values.decode(value) if info.mode == "json" else value


def _encode_untyped(value: Any) -> Any:
    return values.encode(value)


#: What ``Any`` is carried as: the self-describing form of :mod:`agree.objects.values`.  Its
#: published schema says so, so that a node that carries untyped values differently has another
#: fingerprint.
_UNTYPED: Final = Annotated[
    Any,
    pydantic.PlainValidator(_validate_untyped),
    pydantic.PlainSerializer(_encode_untyped, when_used="always"),
    pydantic.WithJsonSchema({"x-agree": "self-describing value"}),
]

# Abstract collection hints do not say which type arrives (pydantic makes a tuple given for a
# Sequence into a list on the way back).
_ABSTRACT: Final = frozenset(
    {
        abc.Iterable,
        abc.Collection,
        abc.Container,
        abc.Sequence,
        abc.MutableSequence,
        abc.Set,
        abc.MutableSet,
        abc.Mapping,
        abc.MutableMapping,
        abc.Iterator,
    }
)


def _pairs_to_dict(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice")
        out[key] = value
    return out


def _dict_to_pairs(value: dict[Any, Any]) -> list[tuple[Any, Any]]:
    return list(value.items())


@dataclass(frozen=True)
class _Pairs:
    """Carries a ``dict[K, V]`` whose keys a JSON object cannot hold as ``[[key, value], ...]``."""

    key: Any
    value: Any

    def __get_pydantic_core_schema__(
        self, source: Any, handler: pydantic.GetCoreSchemaHandler
    ) -> pydantic_core.CoreSchema:
        cs = pydantic_core.core_schema
        pairs = handler.generate_schema(list[tuple[self.key, self.value]])  # type: ignore[name-defined]
        return cs.json_or_python_schema(
            json_schema=cs.chain_schema(
                [pairs, cs.no_info_plain_validator_function(_pairs_to_dict)]
            ),
            python_schema=handler(source),
            serialization=cs.plain_serializer_function_ser_schema(
                _dict_to_pairs, return_schema=pairs
            ),
        )


def _object_key(hint: Any) -> bool:
    """Whether a JSON object's (string) keys carry keys of this type exactly."""
    if hint is str or hint is int or hint is uuid.UUID:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _object_key(args[0])
    if origin is typing.Literal:
        return all(type(a) is str for a in args)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return issubclass(hint, int) or all(type(m.value) is str for m in hint)
    return False


def _carried(hint: Any, models: set[type], seen: set[type]) -> Any:
    """The hint pydantic is given for ``hint``: the same object when pydantic carries it exactly.

    ``Any``/``object`` become the self-describing form, bare containers their ``[Any]`` form,
    dicts with keys a JSON object cannot hold are carried as pairs, and an abstract collection
    is refused.  Dataclasses, models, TypedDicts and named tuples are looked into: a field that
    pydantic would not carry exactly is refused (their fields cannot be rewritten).  Models
    met are added to ``models``.
    """
    if hint is Any or hint is object:
        return _UNTYPED
    if hint is dict:
        hint = dict[Any, Any]
    elif hint is tuple:
        return types.GenericAlias(tuple, (_UNTYPED, ...))
    elif hint in (list, set, frozenset, collections.deque):
        return types.GenericAlias(hint, (_UNTYPED,))
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _ABSTRACT or origin in _ABSTRACT:
        raise TypeError(
            f"{type_name(hint)} does not say which type arrives (a tuple would come back as a "
            "list); declare a concrete type such as list[...], tuple[..., ...], set[...], "
            "frozenset[...] or dict[...]"
        )
    if origin is typing.Annotated:
        inner = _carried(args[0], models, seen)
        return hint if inner is args[0] else Annotated[(inner, *hint.__metadata__)]
    if origin is typing.Literal:
        return hint
    if origin is dict:
        key, value = (_carried(a, models, seen) for a in args)
        if not _object_key(args[0]):
            return Annotated[dict[key, value], _Pairs(key, value)]  # type: ignore[valid-type]
        return hint if (key is args[0] and value is args[1]) else dict[key, value]  # type: ignore[valid-type]
    if origin is not None and args:
        carried = tuple(a if a is Ellipsis else _carried(a, models, seen) for a in args)
        if all(c is a for c, a in zip(carried, args, strict=True)):
            return hint
        if origin is typing.Union or origin is types.UnionType:
            return typing.Union[carried]  # noqa: UP007
        return origin[carried]
    if isinstance(hint, type):
        _check_fields(hint, models, seen)
    return hint


def _check_fields(cls: type, models: set[type], seen: set[type]) -> None:
    """TypeError unless every field of a dataclass/model/TypedDict/NamedTuple is carried exactly."""
    if cls in seen:
        return
    seen.add(cls)
    if dataclasses.is_dataclass(cls):
        kind = "dataclass"
        names = {f.name for f in dataclasses.fields(cls)}
    elif issubclass(cls, pydantic.BaseModel):
        kind = "pydantic model"
        models.add(cls)
        names = set(cls.model_fields)
    elif typing_extensions.is_typeddict(cls):
        kind, names = "TypedDict", None
    elif issubclass(cls, tuple) and isinstance(getattr(cls, "_fields", None), tuple):
        kind, names = "NamedTuple", None
    else:
        return
    if kind == "pydantic model":
        assert issubclass(cls, pydantic.BaseModel)
        hints = {n: f.annotation for n, f in cls.model_fields.items()}
    else:
        hints = typing.get_type_hints(cls, include_extras=True)
    for name, hint in hints.items():
        if names is not None and name not in names:
            continue  # a ClassVar or other non-field annotation
        if typing.get_origin(hint) in (typing_extensions.NotRequired, typing_extensions.Required):
            hint = typing.get_args(hint)[0]
        if _carried(hint, models, seen) is not hint:
            raise TypeError(
                f"field {cls.__qualname__}.{name} is typed {type_name(hint)}, which a {kind} "
                "cannot carry exactly (an untyped value, a bare container or a dict with keys "
                "that are not str/int/UUID/enum inside it would arrive as its JSON form); "
                "give the field a precise type"
            )


_SCALARS: Final = frozenset({str, int, float, bool, type(None), bytes})


def _check_offset(tz: datetime.tzinfo | None, what: str) -> None:
    """ValidationError for a tzinfo JSON's ISO form would not carry (only its offset travels)."""
    if tz is None or type(tz) is pydantic_core.TzInfo:
        return
    if type(tz) is datetime.timezone:
        offset = tz.utcoffset(None)
        if tz is datetime.UTC or tz.tzname(None) == datetime.timezone(offset).tzname(None):
            return
    raise ValidationError(
        f"{what}: a time zone {tz!r} would arrive as a bare UTC offset (its rules and name "
        "are lost); convert the value to a fixed offset (e.g. .astimezone(timezone.utc)), or "
        "leave the parameter untyped (Any keeps the zone)"
    )


def _check_items(
    given: Iterable[Any], valid: Iterable[Any], models: frozenset[type], what: str
) -> None:
    """:func:`_check_exact` on each pair; a sequence of scalars of the same types is checked
    without a Python-level step per item."""
    kinds = list(map(type, given))
    if kinds == list(map(type, valid)) and _SCALARS.issuperset(kinds):
        return
    for g, v in zip(given, valid, strict=False):
        _check_exact(g, v, models, what)


def _check_exact(given: Any, valid: Any, models: frozenset[type], what: str) -> None:
    """ValidationError where pydantic's strict validation changed a value's type.

    Strict validation lets a subclass through as its base (a subclass of a declared
    dataclass is rebuilt as the base, dropping its own fields; a str subclass becomes a
    str); the value would then arrive as something else.  Only the widening of an int
    to a float is allowed.
    """
    kind = type(given)
    if kind is not type(valid):
        if kind is int and type(valid) is float:
            return
        raise ValidationError(
            f"{what}: a {kind.__name__} would arrive as a {type(valid).__name__}: "
            f"pass exactly the declared type, or declare {kind.__name__}"
        )
    if kind in _SCALARS:
        return
    if kind is datetime.datetime or kind is datetime.time:
        _check_offset(given.tzinfo, what)
    elif kind is list or kind is tuple:
        _check_items(given, valid, models, what)
    elif kind is dict:
        _check_items(given.keys(), valid.keys(), models, what)
        _check_items(given.values(), valid.values(), models, what)
    elif kind is set or kind is frozenset:
        kinds = {type(v) for v in valid}
        if {float if t is int and float in kinds else t for t in map(type, given)} != kinds:
            names = ", ".join(sorted({type(g).__name__ for g in given}))
            raise ValidationError(f"{what}: members of types {names} would change type")
    elif dataclasses.is_dataclass(given):
        for f in dataclasses.fields(given):
            if hasattr(given, f.name) and hasattr(valid, f.name):
                _check_exact(getattr(given, f.name), getattr(valid, f.name), models, what)
    elif isinstance(given, pydantic.BaseModel):
        if kind not in models:
            raise ValidationError(
                f"{what}: a {kind.__qualname__} is not one of the declared models; it would "
                "arrive as its base"
            )
        for name in kind.model_fields:
            _check_exact(getattr(given, name), getattr(valid, name), models, what)


# A value of exactly one of these types is its own JSON form.
_OWN_JSON: Final = (str, int, bool, type(None))


def _is_union(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    return origin is typing.Union or origin is types.UnionType


@dataclass(frozen=True, slots=True)
class TypeCodec:
    """Validation, JSON conversion and JSON Schema for one type hint.

    The hint is wrapped in a one-element tuple so that agree's pydantic settings
    also reach dataclasses and TypedDicts, which refuse a config at top level.
    pydantic sees the *carried* hint (:func:`_carried`): ``Any`` replaced by the
    self-describing form of :mod:`agree.objects.values`, and dicts whose keys a JSON
    object cannot hold carried as pairs.
    """

    annotation: Any
    adapter: TypeAdapter[Any] = field(repr=False, compare=False)
    # str/int/bool/None: a value of exactly that type is its own JSON form, so validating and
    # converting it is the identity and pydantic need not be asked.
    fast: type | None = field(default=None, repr=False, compare=False)
    # ``Any`` (or unannotated): agree.objects.values converts, pydantic is not asked.
    untyped: bool = field(default=False, repr=False, compare=False)
    # The pydantic models the hint names: a subclass instance would be carried as its base.
    models: frozenset[type] = field(default=frozenset(), repr=False, compare=False)
    # The types of ``fast`` or of a union of them (e.g. ``str | None``): a value of exactly
    # one of them is its own JSON form, valid as it is.
    plain: frozenset[type] = field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def of(cls, annotation: Any) -> TypeCodec:
        """Build the codec; TypeError (or whatever pydantic raises) for an unsupported hint."""
        models: set[type] = set()
        carried = _carried(annotation, models, set())
        wrapped = types.GenericAlias(tuple, (carried,))
        adapter: TypeAdapter[Any] = TypeAdapter(wrapped, config=_CONFIG)  # type: ignore[arg-type]
        hint = type(None) if annotation is None else annotation
        fast = hint if hint in _OWN_JSON else None
        members = typing.get_args(hint) if _is_union(hint) else (hint,)
        plain = frozenset(members) if all(m in _OWN_JSON for m in members) else frozenset()
        codec = cls(annotation, adapter, fast, carried is _UNTYPED, frozenset(models), plain)
        codec.json_schema("validation")
        codec.json_schema("serialization")
        return codec

    def _plain(self, value: Any) -> bool:
        """Whether ``value`` is its own JSON form under this hint (no pydantic needed).  A
        non-ASCII str still goes through pydantic, which refuses lone surrogates."""
        if type(value) not in self.plain:
            return False
        return not isinstance(value, str) or value.isascii()

    def validate_python(self, value: Any, what: str) -> Any:
        """``value`` checked strictly (int widens to float); ValidationError naming ``what``.

        A value pydantic would accept but carry as another type (a subclass of a
        declared dataclass, model or builtin) is refused: it would arrive as its base.
        An untyped value is checked when it is converted (:meth:`dump`).
        """
        if type(value) in self.plain or self.untyped:
            return value
        try:
            valid = self.adapter.validate_python((value,), strict=True)[0]
        except pydantic.ValidationError as exc:
            raise ValidationError(_describe_errors(exc, what)) from None
        _check_exact(value, valid, self.models, what)
        return valid

    def dump(self, value: Any, what: str) -> Any:
        """The JSON-able form of an already valid ``value`` (json.loads of its JSON)."""
        if self._plain(value):
            return value
        if self.untyped:
            try:
                return values.encode(value, what)
            except TypeError as exc:
                raise ValidationError(str(exc)) from None
        try:
            data = self.adapter.dump_json((value,), warnings="error")
        except (pydantic_core.PydanticSerializationError, ValueError, TypeError) as exc:
            raise ValidationError(f"{what}: cannot be converted to JSON: {exc}") from None
        return json.loads(data)[0]

    def load(self, json_value: Any, what: str) -> Any:
        """The Python value of a JSON-shaped ``json_value``, validated in lax JSON mode."""
        if self._plain(json_value):
            return json_value
        if self.untyped:
            try:
                return values.decode(json_value)
            except ValueError as exc:
                raise ValidationError(f"{what}: {exc}") from None
        try:
            data = _ENCODER.encode([json_value])
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"{what}: not a JSON value: {exc}") from None
        try:
            return self.adapter.validate_json(data)[0]
        except pydantic.ValidationError as exc:
            raise ValidationError(_describe_errors(exc, what)) from None

    def json_schema(self, mode: Literal["validation", "serialization"]) -> dict[str, Any]:
        """The JSON Schema of the hint (not of the wrapping tuple)."""
        outer = self.adapter.json_schema(mode=mode)
        inner: dict[str, Any] = dict(outer["prefixItems"][0])
        if "$defs" in outer:
            inner["$defs"] = outer["$defs"]
        return inner


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of an operation (``self`` excluded)."""

    name: str
    kind: ParamKind
    #: The resolved type hint; ``Any`` when unannotated.
    annotation: Any
    #: The default, or MISSING when the parameter is required.
    default: Any
    codec: TypeCodec = field(repr=False, compare=False)

    @property
    def required(self) -> bool:
        return self.default is MISSING


@dataclass(slots=True)
class BoundCall:
    """A call of one operation whose arguments passed the schema.

    ``args`` fill the positional-or-keyword parameters in order; ``kwargs`` hold
    the rest that the caller gave; defaults are left to the method itself.

    Not frozen, as :class:`agree.wire.codec.CommandRecord`: one is built per call and per
    applied command.  Nothing assigns to one after it is built.
    """

    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    operation: Operation = field(repr=False, compare=False)
    # The JSON form when bind() already computed it (it must, to reject values JSON
    # cannot carry before anything is proposed).
    cached_json: tuple[list[Any], dict[str, Any]] | None = field(
        default=None, repr=False, compare=False
    )

    def to_json(self) -> tuple[list[Any], dict[str, Any]]:
        """JSON-able ``(args, kwargs)``; :meth:`Operation.bind_json` makes equal values of them."""
        if self.cached_json is not None:
            return list(self.cached_json[0]), dict(self.cached_json[1])
        return self.operation.dump_args(self.args, self.kwargs)

    def invoke(self, obj: object) -> Any:
        """Call the operation's method on ``obj`` with these arguments."""
        return getattr(obj, self.operation.attr)(*self.args, **self.kwargs)


@dataclass(frozen=True, slots=True)
class Operation:
    """One ``@command`` or ``@query`` of a replicated class."""

    name: str
    kind: OperationKind
    #: The method's attribute name on the class (differs from ``name`` with ``name=``).
    attr: str
    params: tuple[Param, ...]
    #: The resolved return hint; ``Any`` when unannotated.
    returns: Any
    #: The default consistency of a query; None for a command.
    consistency: Consistency | None
    result_codec: TypeCodec = field(repr=False, compare=False)
    #: ``Class.method``, for messages.
    qualname: str = field(default="", compare=False)
    doc: str | None = field(default=None, compare=False)
    _by_name: Mapping[str, Param] = field(init=False, repr=False, compare=False)
    _positional: tuple[Param, ...] = field(init=False, repr=False, compare=False)
    # The fewest positional arguments that fill every required positional parameter, or None
    # if a keyword-only parameter is required: the arity check of a call without keywords.
    _fewest: int | None = field(init=False, repr=False, compare=False)
    # The type of each positional parameter's value that is its own JSON form (None where no
    # type is): the types of a command's arguments that load_args takes as they are.
    _plain_types: tuple[type | None, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {p.name: p for p in self.params})
        positional = tuple(p for p in self.params if p.kind == "positional_or_keyword")
        object.__setattr__(self, "_positional", positional)
        object.__setattr__(self, "_plain_types", tuple(p.codec.fast for p in positional))
        required = [i + 1 for i, p in enumerate(positional) if p.required]
        keyword_required = any(p.required and p.kind == "keyword_only" for p in self.params)
        object.__setattr__(
            self, "_fewest", None if keyword_required else max(required, default=0)
        )

    # -- calls -------------------------------------------------------------------------------------
    def bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> BoundCall:
        """Validate a Python caller's arguments strictly; ValidationError names the parameter.

        Also computes the JSON form, so a value JSON cannot carry is refused here,
        before anything is proposed.
        """
        pos, kw = self._arrange(args, kwargs)
        # A value that is its own JSON form (str, int, bool, None of exactly the declared type)
        # is valid and converted as it is: neither its codec nor a message is needed.
        plain = True
        for p, v in zip(self._positional, pos, strict=False):
            kind = type(v)  # TypeCodec._plain, inline: it runs for every argument
            if kind is not p.codec.fast or (kind is str and not v.isascii()):
                plain = False
                break
        if plain and not kw:
            vargs = tuple(pos)
            return BoundCall(self.name, vargs, {}, self, (list(vargs), {}))
        pairs = zip(self._positional, pos, strict=False)
        vargs = tuple(p.codec.validate_python(v, self._what(p)) for p, v in pairs)
        vkwargs = {
            name: self._by_name[name].codec.validate_python(v, self._what(self._by_name[name]))
            for name, v in kw.items()
        }
        encoded = self.dump_args(vargs, vkwargs)
        return BoundCall(self.name, vargs, vkwargs, self, encoded)

    def bind_json(self, args: Any, kwargs: Any) -> BoundCall:
        """Validate JSON-shaped arguments (HTTP clients, the log) into Python values (lax mode)."""
        if not isinstance(args, list | tuple):
            raise ValidationError(
                f"{self.qualname}(): args must be a JSON array, got {type(args).__name__}"
            )
        if not isinstance(kwargs, Mapping):
            raise ValidationError(
                f"{self.qualname}(): kwargs must be a JSON object, got {type(kwargs).__name__}"
            )
        pos, kw = self._arrange(args, kwargs)
        pairs = zip(self._positional, pos, strict=False)
        # A list, not a generator: cheaper for the few arguments of a call.
        vargs = tuple([self._load(p, v) for p, v in pairs])
        vkwargs = {name: self._load(self._by_name[name], v) for name, v in kw.items()}
        return BoundCall(self.name, vargs, vkwargs, self)

    def _load(self, param: Param, value: Any) -> Any:
        codec = param.codec
        if codec._plain(value):  # before naming the argument for a message
            return value
        return codec.load(value, self._what(param))

    def load_args(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> BoundCall:
        """The Python values of arguments validated where the call entered the cluster (a
        committed command): converted, not checked again.  A value that is its own JSON form
        (str, int, bool, None) is taken as it is; the rest is converted by its codec.  Arity
        and names are left to the call itself, which fails alike on every replica."""
        if not kwargs and tuple(map(type, args)) == self._plain_types:
            # Every positional argument given, each its own Python value: taken as they are.
            return BoundCall(self.name, tuple(args), {}, self)
        positional = self._positional
        if len(args) > len(positional):
            raise ValidationError(self._arity_message(len(args)))
        loaded = []
        for p, v in zip(positional, args, strict=False):
            codec = p.codec
            loaded.append(v if type(v) is codec.fast else codec.load(v, self._what(p)))
        vargs = tuple(loaded)
        vkwargs: dict[str, Any] = {}
        for name, v in kwargs.items():
            param = self._by_name.get(name)
            if param is None:
                raise ValidationError(self._unknown_kwarg_message(name))
            codec = param.codec
            vkwargs[name] = v if type(v) is codec.fast else codec.load(v, self._what(param))
        return BoundCall(self.name, vargs, vkwargs, self)

    def dump_args(
        self, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        """The JSON form of already validated arguments (as held by a BoundCall or Mutation)."""
        if len(args) > len(self._positional):
            raise ValidationError(self._arity_message(len(args)))
        pairs = zip(self._positional, args, strict=False)
        jargs = [p.codec.dump(v, self._what(p)) for p, v in pairs]
        jkwargs: dict[str, Any] = {}
        for name, v in kwargs.items():
            param = self._by_name.get(name)
            if param is None:
                raise ValidationError(self._unknown_kwarg_message(name))
            jkwargs[name] = param.codec.dump(v, self._what(param))
        return jargs, jkwargs

    def _what(self, param: Param) -> str:
        return f"{self.qualname}(): argument {param.name!r}"

    def _arity_message(self, given: int) -> str:
        most = len(self._positional)
        noun = "argument" if most == 1 else "arguments"
        return f"{self.qualname}() takes {most} positional {noun} but {given} were given"

    def _unknown_kwarg_message(self, name: str) -> str:
        known = ", ".join(p.name for p in self.params) or "none"
        return (
            f"{self.qualname}() got an unexpected keyword argument {name!r} (parameters: {known})"
        )

    def _arrange(
        self, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[Sequence[Any], dict[str, Any]]:
        """Check arity, names, duplicates and missing arguments, in Python's own terms."""
        if isinstance(args, str | bytes):
            raise ValidationError(f"{self.qualname}(): args must be a sequence, not a string")
        if len(args) > len(self._positional):
            raise ValidationError(self._arity_message(len(args)))
        fewest = self._fewest
        if not kwargs and fewest is not None and len(args) >= fewest:
            return args, {}  # every required parameter is given, positionally
        given = {p.name for p in self._positional[: len(args)]}
        kw: dict[str, Any] = {}
        for name, value in kwargs.items():
            if not isinstance(name, str):
                raise ValidationError(f"{self.qualname}(): keyword {name!r} is not a string")
            if name not in self._by_name:
                raise ValidationError(self._unknown_kwarg_message(name))
            if name in given:
                raise ValidationError(
                    f"{self.qualname}() got multiple values for argument {name!r}"
                )
            kw[name] = value
        missing = [
            p.name for p in self.params if p.required and p.name not in given and p.name not in kw
        ]
        if missing:
            names = ", ".join(repr(m) for m in missing)
            noun = "argument" if len(missing) == 1 else "arguments"
            raise ValidationError(f"{self.qualname}() missing required {noun}: {names}")
        return args, kw

    # -- results -----------------------------------------------------------------------------------
    def dump_result(self, value: Any) -> Any:
        """The JSON form of a result; ValidationError if it does not match the return type."""
        codec = self.result_codec
        # e.g. None: valid and its own JSON form, no message needed (TypeCodec._plain, inline:
        # every replica runs it for every command)
        kind = type(value)
        if kind is codec.fast and (kind is not str or value.isascii()):
            return value
        what = f"{self.qualname}() result"
        return codec.dump(codec.validate_python(value, what), what)

    def load_result(self, json_value: Any) -> Any:
        """The Python value of a result produced by :meth:`dump_result` (lax JSON mode)."""
        codec = self.result_codec
        if codec._plain(json_value):
            return json_value
        return codec.load(json_value, f"{self.qualname}() result")

    # -- publication -------------------------------------------------------------------------------
    def json_schema(self) -> dict[str, Any]:
        """This operation's entry in :meth:`ObjectSchema.json_schema`."""
        params: list[dict[str, Any]] = []
        for p in self.params:
            entry: dict[str, Any] = {
                "name": p.name,
                "kind": p.kind,
                "required": p.required,
                "type": type_name(p.annotation),
                "schema": p.codec.json_schema("validation"),
            }
            if not p.required:
                entry["default"] = _default_json(p, self.qualname)
            params.append(entry)
        return {
            "kind": self.kind,
            "consistency": None if self.consistency is None else self.consistency.value,
            "params": params,
            "returns": self.result_codec.json_schema("serialization"),
            "returns_type": type_name(self.returns),
            "doc": self.doc,
        }


def _default_json(param: Param, qualname: str) -> Any:
    try:
        return param.codec.dump(param.default, param.name)
    except ValidationError:
        pass
    try:
        # A default outside its own hint (``x: int = None`` is common): publish it as is.
        return json.loads(canonical_json(pydantic_core.to_jsonable_python(
            param.default, bytes_mode="base64", inf_nan_mode="strings"
        )))
    except (pydantic_core.PydanticSerializationError, TypeError, ValueError):
        raise TypeError(
            f"{qualname}: the default of parameter {param.name!r} ({param.default!r}) has no "
            "JSON form, so the schema cannot publish it; use a JSON-able default such as None"
        ) from None


@dataclass(frozen=True, slots=True)
class ObjectSchema:
    """Every operation of one replicated class."""

    #: The class's qualified name (descriptive only: not part of the fingerprint).
    qualname: str
    operations: Mapping[str, Operation]
    _json: str = field(repr=False, compare=False)
    _fingerprint: str = field(repr=False, compare=False)

    @classmethod
    def from_operations(cls, qualname: str, operations: Sequence[Operation]) -> ObjectSchema:
        ops = {op.name: op for op in sorted(operations, key=lambda o: o.name)}
        document = {
            "format": SCHEMA_FORMAT,
            "class": qualname,
            "operations": {name: op.json_schema() for name, op in ops.items()},
        }
        text = canonical_json(document)
        return cls(qualname, types.MappingProxyType(ops), text, schema_fingerprint(document))

    def operation(self, name: str) -> Operation:
        """The operation called ``name``; UnknownMethodError listing the available ones."""
        try:
            return self.operations[name]
        except (KeyError, TypeError):
            raise UnknownMethodError(
                f"{self.qualname} has no operation {name!r}; {self._available()}"
            ) from None

    def _available(self) -> str:
        parts = []
        for kind, label in (("command", "commands"), ("query", "queries")):
            names = [n for n, op in self.operations.items() if op.kind == kind]
            parts.append(f"{label}: {', '.join(names) if names else 'none'}")
        return "; ".join(parts)

    @property
    def commands(self) -> Mapping[str, Operation]:
        return {n: op for n, op in self.operations.items() if op.kind == "command"}

    @property
    def queries(self) -> Mapping[str, Operation]:
        return {n: op for n, op in self.operations.items() if op.kind == "query"}

    def json_schema(self) -> dict[str, Any]:
        """The published schema (``GET /v1/schema``): a fresh, JSON-able dict.

        ``{"format": 1, "class": ..., "operations": {name: {"kind", "consistency",
        "params": [{"name", "kind", "required", "schema", "default"?}], "returns",
        "doc"}}}`` with each ``schema``/``returns`` a JSON Schema.
        """
        result: dict[str, Any] = json.loads(self._json)
        return result

    def fingerprint(self) -> str:
        """sha256 (hex) of the canonical JSON of :meth:`json_schema` minus its documentation.

        Documentation — the class name, docstrings, JSON Schema titles and
        descriptions — is left out so that renaming a class or editing a docstring
        does not split a cluster; everything that shapes a call is in.
        """
        return self._fingerprint

    def check_compatible(self, other_json_schema: Mapping[str, Any]) -> None:
        """Raise SchemaMismatchError, listing every difference, unless ``other`` is compatible.

        Compatible means equal apart from documentation (see the module docstring
        for why equality).
        """
        local = _normalize(self.json_schema())
        try:
            remote = _normalize(other_json_schema)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise SchemaMismatchError(
                f"the remote schema for {self.qualname} is malformed ({exc!r}); "
                "it must be the output of ObjectSchema.json_schema()"
            ) from None
        if local == remote:
            return
        differences = _differences(local, remote)
        if not differences:  # pragma: no cover - _differences covers every normalized key
            differences = ["the schemas differ"]
        other_name = other_json_schema.get("class", "?")
        remote_print = _digest(remote)
        raise SchemaMismatchError(
            f"schema of {self.qualname} (fingerprint {self._fingerprint[:12]}) is incompatible "
            f"with the remote schema of {other_name} (fingerprint {remote_print[:12]}):\n"
            + "\n".join(f"  - {d}" for d in differences)
        )


# -- normalization and differences ----------------------------------------------------------------


def type_name(hint: Any) -> str:
    """A canonical spelling of a type hint, published beside its JSON Schema.

    JSON Schema cannot tell ``list[int]`` from ``tuple[int, ...]`` or
    ``dict[int, str]`` from ``dict[str, str]``, yet replicas given one or the other
    behave differently; this spelling can.  Classes are named by qualified name
    (their module may move), unions are sorted (``Optional[int]`` is
    ``None | int``), and ``Annotated`` metadata is left to the JSON Schema.
    """
    if hint is Any:
        return "Any"
    if hint is None or hint is type(None):
        return "None"
    if hint is Ellipsis:
        return "..."
    if isinstance(hint, typing.TypeVar):
        return f"~{hint.__name__}"
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(sorted({type_name(a) for a in args}))
    if origin is typing.Literal:
        return f"Literal[{', '.join(sorted(repr(a) for a in args))}]"
    if origin is not None:
        base = type_name(origin)
        if not args:
            # tuple[()] has no args at runtime but is not bare ``tuple``.
            empty_tuple = base == "tuple" and isinstance(hint, types.GenericAlias)
            return f"{base}[()]" if empty_tuple else base
        return f"{base}[{', '.join(type_name(a) for a in args)}]"
    if isinstance(hint, type):
        return hint.__qualname__
    return repr(hint)


def schema_fingerprint(document: Mapping[str, Any]) -> str:
    """The fingerprint of a published schema (``ObjectSchema.json_schema()``, e.g. from the wire).

    Equal for two documents exactly when :meth:`ObjectSchema.check_compatible`
    accepts one against the other.  Raises KeyError/TypeError on a malformed document.
    """
    return _digest(_normalize(document))


def _digest(normalized: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(normalized).encode()).hexdigest()

# JSON Schema keywords whose value maps names to subschemas (the names are data, not keywords).
_SCHEMA_MAPS: Final = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
# Keywords whose value is a literal JSON value, never a subschema.
_LITERALS: Final = frozenset({"default", "const", "enum", "required", "examples"})
# Documentation only.
_DOC_KEYWORDS: Final = frozenset({"title", "description", "examples", "$comment"})


def _strip_docs(schema: Any) -> Any:
    """A JSON Schema without its documentation keywords, at every depth."""
    if isinstance(schema, list):
        return [_strip_docs(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DOC_KEYWORDS:
            continue
        if key in _LITERALS:
            out[key] = value
        elif key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: _strip_docs(sub) for name, sub in value.items()}
        else:
            out[key] = _strip_docs(value)
    return out


def _normalize(document: Mapping[str, Any]) -> dict[str, Any]:
    """What compatibility and the fingerprint are about: the call-shaping parts only."""
    operations: dict[str, Any] = {}
    for name, op in document["operations"].items():
        params = []
        for p in op["params"]:
            entry = {
                "name": str(p["name"]),
                "kind": str(p["kind"]),
                "required": bool(p["required"]),
                "type": str(p["type"]),
                "schema": _strip_docs(p["schema"]),
            }
            if not entry["required"]:
                entry["default"] = p.get("default")
            params.append(entry)
        operations[str(name)] = {
            "kind": str(op["kind"]),
            "consistency": op.get("consistency"),
            "params": params,
            "returns": _strip_docs(op["returns"]),
            "returns_type": str(op["returns_type"]),
        }
    return {"format": document["format"], "operations": operations}


def _short(value: Any, limit: int = 160) -> str:
    text = canonical_json(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _differences(local: Mapping[str, Any], remote: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if local["format"] != remote["format"]:
        out.append(f"schema format {local['format']} here, {remote['format']} on the remote")
    lops, rops = local["operations"], remote["operations"]
    for name in sorted(set(lops) | set(rops)):
        if name not in rops:
            out.append(f"{lops[name]['kind']} {name!r} exists here but is missing on the remote")
            continue
        if name not in lops:
            out.append(f"{rops[name]['kind']} {name!r} exists on the remote but is missing here")
            continue
        lo, ro = lops[name], rops[name]
        if lo["kind"] != ro["kind"]:
            out.append(f"{name!r} is a {lo['kind']} here but a {ro['kind']} on the remote")
        out.extend(_consistency_and_return_differences(name, lo, ro, "on the remote"))
        out.extend(_param_differences(name, lo["params"], ro["params"]))
    return out


def _consistency_and_return_differences(
    name: str, lo: Mapping[str, Any], ro: Mapping[str, Any], there: str
) -> list[str]:
    """How an operation's default consistency and return type here differ from ``ro``'s,
    which is described as ``there`` ("on the remote", "recorded")."""
    out: list[str] = []
    if lo["consistency"] != ro["consistency"]:
        out.append(
            f"{name!r}: default consistency {lo['consistency']} here, {ro['consistency']} {there}"
        )
    if lo["returns_type"] != ro["returns_type"]:
        out.append(f"{name!r}: return type {lo['returns_type']} here, {ro['returns_type']} {there}")
    elif lo["returns"] != ro["returns"]:
        out.append(
            f"{name!r}: return type differs: {_short(lo['returns'])} here, "
            f"{_short(ro['returns'])} {there}"
        )
    return out


def _one_param_differences(
    op: str, name: str, lp: Mapping[str, Any], rp: Mapping[str, Any], there: str
) -> list[str]:
    """How parameter ``name`` of ``op`` here differs from ``rp``, which is described as
    ``there`` ("on the remote", "recorded"): type, kind, required or not, default."""
    out: list[str] = []
    if lp["type"] != rp["type"]:
        out.append(f"{op!r}: parameter {name!r} type {lp['type']} here, {rp['type']} {there}")
    elif lp["schema"] != rp["schema"]:
        out.append(
            f"{op!r}: parameter {name!r} type differs: {_short(lp['schema'])} here, "
            f"{_short(rp['schema'])} {there}"
        )
    if lp["kind"] != rp["kind"]:
        out.append(f"{op!r}: parameter {name!r} is {lp['kind']} here, {rp['kind']} {there}")
    if lp["required"] != rp["required"]:
        here = "required" if lp["required"] else "optional"
        other = "required" if rp["required"] else "optional"
        out.append(f"{op!r}: parameter {name!r} is {here} here, {other} {there}")
    elif not lp["required"] and lp.get("default") != rp.get("default"):
        out.append(
            f"{op!r}: parameter {name!r} default {_short(lp.get('default'))} here, "
            f"{_short(rp.get('default'))} {there}"
        )
    return out


def _param_differences(op: str, local: list[Any], remote: list[Any]) -> list[str]:
    out: list[str] = []
    lnames = [p["name"] for p in local]
    rnames = [p["name"] for p in remote]
    lby = {p["name"]: p for p in local}
    rby = {p["name"]: p for p in remote}
    for name in lnames:
        if name not in rby:
            out.append(f"{op!r}: parameter {name!r} exists here but not on the remote")
    for name in rnames:
        if name not in lby:
            out.append(f"{op!r}: parameter {name!r} exists on the remote but not here")
    common_l = [n for n in lnames if n in rby]
    common_r = [n for n in rnames if n in lby]
    if common_l != common_r:
        out.append(f"{op!r}: parameter order {common_l} here, {common_r} on the remote")
    for name in common_l:
        out.extend(_one_param_differences(op, name, lby[name], rby[name], "on the remote"))
    return out


def extension_problems(recorded: Mapping[str, Any], local: Mapping[str, Any]) -> list[str]:
    """Why the published schema ``local`` is not a compatible extension of ``recorded``.

    Empty when it is: every recorded operation is still here with the same kind, default
    consistency, return type and parameters; a recorded positional parameter keeps its place;
    and anything new -- an operation, or a parameter appended after the recorded ones -- is
    optional to the log (a new parameter has a default, which must mean the old behaviour,
    since the log's older entries are applied with it).  See the module docstring, "Upgrades".
    Raises KeyError/TypeError on a malformed document.
    """
    old, new = _normalize(recorded), _normalize(local)
    out: list[str] = []
    if old["format"] != new["format"]:
        out.append(f"schema format {new['format']} here, {old['format']} recorded")
    oops, nops = old["operations"], new["operations"]
    for name in sorted(oops):
        ro = oops[name]
        if name not in nops:
            out.append(
                f"{ro['kind']} {name!r} is recorded by the cluster but missing here (removed or"
                " renamed); the log may still hold calls of it, so it must stay"
            )
            continue
        lo = nops[name]
        if lo["kind"] != ro["kind"]:
            out.append(f"{name!r} is a {lo['kind']} here but the cluster recorded a {ro['kind']}")
        out.extend(_consistency_and_return_differences(name, lo, ro, "recorded"))
        out.extend(_param_extension_problems(name, ro["params"], lo["params"]))
    return out


def _param_extension_problems(op: str, recorded: list[Any], local: list[Any]) -> list[str]:
    out: list[str] = []
    lby = {p["name"]: p for p in local}
    rby = {p["name"]: p for p in recorded}
    for p in recorded:
        name = p["name"]
        if name not in lby:
            out.append(
                f"{op!r}: parameter {name!r} is recorded by the cluster but missing here; the"
                " log may hold calls that pass it"
            )
            continue
        out.extend(_one_param_differences(op, name, lby[name], p, "recorded"))
    rpos = [p["name"] for p in recorded if p["kind"] == "positional_or_keyword"]
    lpos = [p["name"] for p in local if p["kind"] == "positional_or_keyword"]
    if all(n in lby for n in rpos) and lpos[: len(rpos)] != rpos:
        out.append(
            f"{op!r}: positional parameters {lpos} here, {rpos} recorded; the recorded ones must"
            " keep their places (the log passes them by position), new ones come after them"
        )
    for p in local:
        if p["name"] not in rby and p["required"]:
            out.append(
                f"{op!r}: new parameter {p['name']!r} has no default; the log's older calls do"
                " not pass it, so give it a default that means the old behaviour"
            )
    return out


# -- building -------------------------------------------------------------------------------------


def _unwrap_descriptor(value: object) -> object | None:
    if isinstance(value, staticmethod | classmethod):
        inner: object = value.__func__
        return inner
    if isinstance(value, property):
        return value.fget
    return None


def _collect(cls: type) -> dict[str, tuple[type, Callable[..., Any], OperationMark]]:
    """Marked methods by attribute name, base classes first so that subclasses override."""
    found: dict[str, tuple[type, Callable[..., Any], OperationMark]] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        for attr, value in vars(klass).items():
            inner = _unwrap_descriptor(value)
            if inner is not None and operation_mark(inner) is not None:
                raise TypeError(
                    f"{klass.__qualname__}.{attr}: @command/@query must decorate a plain method, "
                    f"not a {type(value).__name__}"
                )
            mark = operation_mark(value)
            if mark is not None:
                if attr == "context":
                    raise TypeError(
                        f"{klass.__qualname__}.context: the attribute 'context' is reserved for "
                        "the command context; name the method differently"
                    )
                assert callable(value)
                found[attr] = (klass, value, mark)
            elif attr in found:
                base, _, base_mark = found[attr]
                raise TypeError(
                    f"{klass.__qualname__}.{attr} overrides the @{base_mark.kind} "
                    f"{base.__qualname__}.{attr} without @{base_mark.kind}; decorate the "
                    "override to keep it an operation, or use another attribute name"
                )
    return found


def _resolve_hints(fn: Callable[..., Any], where: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise TypeError(
            f"{where}: cannot resolve the type hints ({type(exc).__name__}: {exc}); "
            "every name an annotation uses must be defined in the method's module before "
            "the class is created (the schema is built at class creation)"
        ) from None


def _codec(hint: Any, cache: dict[Any, TypeCodec], where: str) -> TypeCodec:
    try:
        cached = cache.get(hint)
    except TypeError:  # an unhashable hint (e.g. Annotated with unhashable metadata)
        cached = None
    if cached is not None:
        return cached
    try:
        codec = TypeCodec.of(hint)
    except Exception as exc:
        raise TypeError(
            f"{where}: unsupported type hint {hint!r}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    with contextlib.suppress(TypeError):  # unhashable hints are simply not shared
        cache[hint] = codec
    return codec


def _operation(
    cls: type,
    attr: str,
    fn: Callable[..., Any],
    mark: OperationMark,
    cache: dict[Any, TypeCodec],
) -> Operation:
    name = mark.name or attr
    qualname = f"{cls.__qualname__}.{name}"
    check_operation_name(name, f"{cls.__qualname__}.{attr}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{qualname}: cannot read the signature: {exc}") from None
    hints = _resolve_hints(fn, qualname)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise TypeError(f"{qualname}: an operation must be a method taking self first")
    params: list[Param] = []
    for p in parameters[1:]:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            raise TypeError(
                f"{qualname}: *{p.name} is not supported; operations take named parameters "
                "so that calls can be checked against the schema"
            )
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            raise TypeError(
                f"{qualname}: **{p.name} is not supported; operations take named parameters "
                "so that calls can be checked against the schema"
            )
        if p.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TypeError(
                f"{qualname}: positional-only parameter {p.name!r} is not supported; "
                "remove the '/' from the signature"
            )
        kind: ParamKind = (
            "keyword_only" if p.kind is inspect.Parameter.KEYWORD_ONLY else "positional_or_keyword"
        )
        hint = hints.get(p.name, Any)
        codec = _codec(hint, cache, f"{qualname}: parameter {p.name!r}")
        default = MISSING if p.default is inspect.Parameter.empty else p.default
        params.append(Param(p.name, kind, hint, default, codec))
    returns = hints.get("return", Any)
    result_codec = _codec(returns, cache, f"{qualname}: return type")
    return Operation(
        name=name,
        kind=mark.kind,
        attr=attr,
        params=tuple(params),
        returns=returns,
        consistency=mark.consistency,
        result_codec=result_codec,
        qualname=qualname,
        doc=inspect.getdoc(fn),
    )


def build_schema(cls: type) -> ObjectSchema:
    """The schema of ``cls`` from its (inherited) marks; TypeError on any bad declaration."""
    cache: dict[Any, TypeCodec] = {}
    operations: dict[str, Operation] = {}
    for attr, (_owner, fn, mark) in _collect(cls).items():
        op = _operation(cls, attr, fn, mark, cache)
        if op.name in operations:
            first = operations[op.name]
            raise TypeError(
                f"{cls.__qualname__}: operation name {op.name!r} is declared twice "
                f"(by the methods {first.attr!r} and {attr!r})"
            )
        operations[op.name] = op
    return ObjectSchema.from_operations(cls.__qualname__, list(operations.values()))


def schema_of(cls_or_instance: object) -> ObjectSchema:
    """The schema of a ``Replicated`` subclass or instance."""
    cls = cls_or_instance if isinstance(cls_or_instance, type) else type(cls_or_instance)
    if not issubclass(cls, Replicated) or cls is Replicated:
        raise TypeError(f"{cls.__qualname__} is not a subclass of agree.Replicated")
    return cls.__agree_schema__
