"""Calls against the schema: validation before proposing, and faithful JSON round-trips."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import json
import math
import uuid
import zoneinfo
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple, Optional

import pydantic
import pytest
from typing_extensions import TypedDict

from agree import Replicated, ValidationError, command, query
from agree.errors import UnknownMethodError
from agree.objects.schema import Operation, schema_of


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: float


@dataclasses.dataclass
class Shape:
    name: str
    points: list[Point]
    tags: frozenset[str]
    created: dt.datetime
    blob: bytes


class Item(pydantic.BaseModel):
    id: uuid.UUID
    price: Decimal
    sizes: tuple[int, ...]


class Movie(TypedDict):
    title: str
    year: int
    released: dt.date


UTC = dt.UTC
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))

# (hint, value): every type the schema promises to carry; each comes back equal, same type.
ROUND_TRIP_CASES: list[tuple[Any, Any]] = [
    (int, 3),
    (int, -(2**80)),
    (bool, True),
    (bool, False),
    (float, 1.0),
    (float, 2.5e-300),
    (float, math.inf),
    (float, -math.inf),
    (str, "héllo ☃"),
    (str, ""),
    (bytes, b"\x00\xff\xfe raw"),
    (type(None), None),
    (dt.datetime, dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)),
    (dt.datetime, dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=IST)),
    (dt.datetime, dt.datetime(2024, 1, 2, 3, 4, 5)),
    (dt.date, dt.date(1999, 12, 31)),
    (dt.time, dt.time(13, 14, 15, 16)),
    (dt.timedelta, dt.timedelta(days=-3, seconds=7, microseconds=11)),
    (Decimal, Decimal("1.10")),
    (Decimal, Decimal("-1E+30")),
    (uuid.UUID, uuid.UUID("12345678-1234-5678-1234-567812345678")),
    (Color, Color.BLUE),
    (Level, Level.HIGH),
    (tuple[int, str, float], (1, "a", 2.0)),
    (tuple[int, ...], (1, 2, 3)),
    (tuple[()], ()),
    (set[int], {3, 1, 2}),
    (frozenset[str], frozenset({"a", "b"})),
    (list[float], [1.0, 2.5]),
    (list[list[int]], [[1], [], [2, 3]]),
    (dict[str, int], {"a": 1, "b": 2}),
    (dict[int, str], {1: "one", -2: "minus two"}),
    (dict[uuid.UUID, Color], {uuid.UUID(int=7): Color.RED}),
    (Point, Point(1, 2.0)),
    (
        Shape,
        Shape(
            "tri",
            [Point(0, 0.0), Point(1, 0.5)],
            frozenset({"x"}),
            dt.datetime(2020, 1, 1, tzinfo=UTC),
            b"\x80\x81",
        ),
    ),
    (Item, Item(id=uuid.UUID(int=1), price=Decimal("9.99"), sizes=(38, 39))),
    (Movie, Movie(title="Heat", year=1995, released=dt.date(1995, 12, 15))),
    (Optional[int], None),  # noqa: UP045 - the spelling under test
    (Optional[int], 4),  # noqa: UP045
    (int | str, 1),
    (int | str, "1"),
    (float | None, 3.0),
    (Point | Color, Color.RED),
    (list[tuple[int, Point]], [(1, Point(2, 3.0))]),
    (dict[str, set[int]], {"a": {1, 2}}),
]


def _echo_class(hint: Any) -> type[Replicated]:
    def echo(self: Any, value: Any, *, extra: Any = None) -> Any:
        return value

    echo.__annotations__ = {"value": hint, "extra": hint | None, "return": hint}
    return type("Echo", (Replicated,), {"echo": command(echo)})


def _same(a: Any, b: Any) -> bool:
    """Equal *and* of the same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(
            _same(k1, k2) and _same(a[k1], b[k2]) for k1, k2 in zip(a, b, strict=True)
        )
    if isinstance(a, set | frozenset):
        return a == b and sorted(map(repr, a)) == sorted(map(repr, b))
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return all(
            _same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
        )
    if isinstance(a, pydantic.BaseModel):
        return all(_same(getattr(a, n), getattr(b, n)) for n in type(a).model_fields)
    if isinstance(a, Decimal):
        return str(a) == str(b)  # exponent and sign included; NaN is not equal to itself
    if isinstance(a, dt.datetime):
        return bool(a == b and a.tzinfo == b.tzinfo and a.utcoffset() == b.utcoffset())
    return bool(a == b)


def _through_json(value: Any) -> Any:
    loaded = json.loads(json.dumps(value, allow_nan=False))
    return loaded


def _op(hint: Any) -> Operation:
    return schema_of(_echo_class(hint)).operation("echo")


@pytest.mark.parametrize(("hint", "value"), ROUND_TRIP_CASES, ids=repr)
def test_arguments_round_trip_exactly(hint: Any, value: Any) -> None:
    op = _op(hint)
    bound = op.bind([value], {"extra": value})
    args, kwargs = _through_json(bound.to_json())
    back = op.bind_json(args, kwargs)
    assert _same(back.args[0], value), (back.args[0], value)
    assert _same(back.kwargs["extra"], value)
    assert back == bound
    # And again: what comes back converts to the same values.
    assert op.bind_json(*_through_json(back.to_json())) == bound
    # A replica decodes the committed form, unchecked, to the same values.
    applied = op.load_args(args, kwargs)
    assert applied == bound and _same(applied.args[0], value)
    assert _same(applied.kwargs["extra"], value)


@pytest.mark.parametrize(("hint", "value"), ROUND_TRIP_CASES, ids=repr)
def test_positional_arguments_load_as_they_bind(hint: Any, value: Any) -> None:
    op = _op(hint)
    bound = op.bind([value], {})
    args, kwargs = _through_json(bound.to_json())
    applied = op.load_args(args, kwargs)
    assert applied == bound and _same(applied.args[0], value)
    assert type(applied.args) is tuple and applied.kwargs == {}


def test_load_args_leaves_defaults_to_the_method_and_refuses_too_many() -> None:
    class Pair(Replicated):
        @command
        def put(self, key: str, value: int = 0) -> None: ...

    op = schema_of(Pair).operation("put")
    assert op.load_args(["k", 1], {}).args == ("k", 1)
    assert op.load_args(["k"], {}).args == ("k",)
    assert op.load_args([], {}).args == ()
    with pytest.raises(ValidationError, match="takes 2 positional arguments but 3"):
        op.load_args(["k", 1, 2], {})


@pytest.mark.parametrize(("hint", "value"), ROUND_TRIP_CASES, ids=repr)
def test_results_round_trip_exactly(hint: Any, value: Any) -> None:
    op = _op(hint)
    loaded = op.load_result(_through_json(op.dump_result(value)))
    assert _same(loaded, value), (loaded, value)


def test_nan_round_trips_as_a_float() -> None:
    op = _op(float)
    args, kwargs = _through_json(op.bind([math.nan], {}).to_json())
    assert args == ["NaN"]
    back = op.bind_json(args, kwargs).args[0]
    assert isinstance(back, float) and math.isnan(back)


def test_ints_never_become_floats_and_floats_never_ints() -> None:
    op = _op(int | float)
    for value in (1, 1.0, 10**20, 0.0):
        args, _ = _through_json(op.bind([value], {}).to_json())
        assert _same(op.bind_json(args, {}).args[0], value)


def test_an_int_is_accepted_for_a_float_and_becomes_one() -> None:
    op = _op(float)
    bound = op.bind([2], {})
    assert _same(bound.args[0], 2.0)
    assert bound.to_json() == ([2.0], {})


def test_json_clients_send_iso_strings_arrays_and_objects() -> None:
    op = _op(Shape)
    bound = op.bind_json(
        [
            {
                "name": "sq",
                "points": [{"x": 1, "y": 2}],
                "tags": ["a", "a"],
                "created": "2021-05-06T07:08:09Z",
                "blob": "AAE=",
            }
        ],
        {},
    )
    shape = bound.args[0]
    assert shape == Shape(
        "sq", [Point(1, 2.0)], frozenset({"a"}), dt.datetime(2021, 5, 6, 7, 8, 9, tzinfo=UTC),
        b"\x00\x01",
    )
    assert type(shape.points[0].y) is float


# -- validation errors: raised before anything is proposed ---------------------------------------


class Store(Replicated):
    def __init__(self) -> None:
        self.data: dict[str, int] = {}

    @command
    def put(self, key: str, value: int, *, replace: bool = True) -> int | None:
        old = self.data.get(key)
        self.data[key] = value
        return old

    @query
    def get(self, key: str) -> int | None:
        return self.data.get(key)

    @query
    def broken(self) -> list[int]:
        return self.data  # type: ignore[return-value]


PUT = schema_of(Store).operation("put")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, r"Store\.put\(\) missing required arguments: 'key', 'value'"),
        (("k",), {}, r"Store\.put\(\) missing required argument: 'value'"),
        (("k", 1, True), {}, r"Store\.put\(\) takes 2 positional arguments but 3 were given"),
        (("k", 1), {"colour": 1}, r"unexpected keyword argument 'colour' \(parameters: key, "),
        (("k", 1), {"key": "k"}, r"got multiple values for argument 'key'"),
        (("k", "1"), {}, r"argument 'value': Input should be a valid integer \(got str '1'\)"),
        ((1, 1), {}, r"argument 'key': Input should be a valid string"),
        (("k", 1.5), {}, r"argument 'value'"),
        (("k", True), {}, r"argument 'value': Input should be a valid integer"),
        (("k", 1), {"replace": "yes"}, r"argument 'replace': Input should be a valid boolean"),
    ],
)
def test_bind_refuses_bad_calls_with_a_clear_message(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        PUT.bind(args, kwargs)


class Flags(Replicated):
    @command
    def mark(self, key: str, level: int = 0, *, reason: str) -> None:
        pass

    @command
    def tag(self, key: str, note: str = "", other: str = "") -> None:
        pass


def test_positional_arguments_alone_are_checked_for_missing_ones_and_arity() -> None:
    schema = schema_of(Flags)
    mark, tag = schema.operation("mark"), schema.operation("tag")
    with pytest.raises(ValidationError, match="missing required argument: 'reason'"):
        mark.bind_json(["k", 1], {})
    assert mark.bind_json(["k"], {"reason": "r"}).kwargs == {"reason": "r"}
    with pytest.raises(ValidationError, match="missing required argument: 'key'"):
        tag.bind_json([], {})
    assert tag.bind_json(["k"], {}).args == ("k",)
    assert tag.bind_json(["k", "n", "o"], {}).args == ("k", "n", "o")
    with pytest.raises(ValidationError, match="takes 3 positional arguments but 4 were given"):
        tag.bind_json(["k", "n", "o", "x"], {})


def test_unknown_method_lists_the_available_operations() -> None:
    with pytest.raises(UnknownMethodError, match=r"Store has no operation 'pop'; commands: put; "
                       r"queries: broken, get"):
        schema_of(Store).operation("pop")
    assert issubclass(UnknownMethodError, ValidationError)


def test_strict_python_validation_does_not_coerce_containers_or_strings() -> None:
    cases: list[tuple[Any, Any]] = [
        (tuple[int, ...], [1, 2]),
        (set[int], [1]),
        (dt.datetime, "2020-01-01T00:00:00"),
        (uuid.UUID, "12345678-1234-5678-1234-567812345678"),
        (Color, "red"),
        (Point, {"x": 1, "y": 2.0}),
        (Decimal, "1.5"),
        (bytes, "abc"),
    ]
    for hint, value in cases:
        with pytest.raises(ValidationError):
            _op(hint).bind([value], {})


def test_nested_errors_name_the_path() -> None:
    with pytest.raises(ValidationError, match=r"argument 'value' at points\.0\.x"):
        _op(Shape).bind(
            [Shape("s", [Point("no", 1.0)], frozenset(), dt.datetime.now(UTC), b"")],  # type: ignore[arg-type]
            {},
        )


def test_bind_json_refuses_bad_shapes_and_values() -> None:
    with pytest.raises(ValidationError, match="args must be a JSON array"):
        PUT.bind_json({"key": "k"}, {})
    with pytest.raises(ValidationError, match="kwargs must be a JSON object"):
        PUT.bind_json([], [])
    with pytest.raises(ValidationError, match="takes 2 positional arguments but 3"):
        PUT.bind_json(["k", 1, 2], {})
    with pytest.raises(ValidationError, match="argument 'value'"):
        PUT.bind_json(["k", "one"], {})
    with pytest.raises(ValidationError, match="unexpected keyword argument"):
        PUT.bind_json(["k", 1], {"nope": 1})
    with pytest.raises(ValidationError, match="missing required argument"):
        PUT.bind_json(["k"], {})


def test_bind_json_is_lax_about_json_shapes() -> None:
    # A JSON client may send a number as a string; the log then holds the real int.
    bound = PUT.bind_json(["k", "5"], {})
    assert _same(bound.args[1], 5)
    assert bound.to_json() == (["k", 5], {})


def test_bound_call_invokes_the_method() -> None:
    store = Store()
    assert PUT.bind(("a", 1), {}).invoke(store) is None
    assert PUT.bind_json(["a", 2], {"replace": False}).invoke(store) == 1
    assert store.data == {"a": 2}


def test_to_json_returns_fresh_containers() -> None:
    bound = PUT.bind(("a", 1), {"replace": True})
    args, kwargs = bound.to_json()
    args.append("junk")
    kwargs["junk"] = 1
    assert bound.to_json() == (["a", 1], {"replace": True})


# -- results --------------------------------------------------------------------------------------


def test_a_wrong_shaped_result_is_a_validation_error_not_a_crash() -> None:
    op = schema_of(Store).operation("broken")
    store = Store()
    store.put("a", 1)
    value = op.bind([], {}).invoke(store)
    with pytest.raises(ValidationError, match=r"Store\.broken\(\) result: Input should be a valid"):
        op.dump_result(value)


def test_a_result_is_checked_strictly() -> None:
    op = schema_of(Store).operation("get")
    assert op.dump_result(None) is None
    assert op.dump_result(3) == 3
    with pytest.raises(ValidationError):
        op.dump_result("3")
    with pytest.raises(ValidationError):
        op.dump_result(3.5)


def test_load_result_refuses_a_value_of_the_wrong_shape() -> None:
    with pytest.raises(ValidationError, match=r"Store\.get\(\) result"):
        schema_of(Store).operation("get").load_result({"a": 1})


# -- unannotated (Any) values ---------------------------------------------------------------------


class Loose(Replicated):
    @command
    def put(self, value, *, note=None):  # type: ignore[no-untyped-def]
        return value


LOOSE = schema_of(Loose).operation("put")


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -(2**70), 1.0, 0.5, "s", [1, "a", None, [2.0]], {"k": {"n": [True]}}],
    ids=repr,
)
def test_any_carries_json_native_values_exactly(value: Any) -> None:
    args, kwargs = _through_json(LOOSE.bind([value], {"note": value}).to_json())
    back = LOOSE.bind_json(args, kwargs)
    assert _same(back.args[0], value) and _same(back.kwargs["note"], value)
    assert _same(LOOSE.load_result(_through_json(LOOSE.dump_result(value))), value)


class Pair(NamedTuple):
    left: int
    right: Any


@dataclasses.dataclass(frozen=True)
class Node3D(Point):
    z: int = 0


@dataclasses.dataclass(slots=True)
class Slotted:
    a: Any
    b: dict[Any, Any] = dataclasses.field(default_factory=dict)


PARIS = zoneinfo.ZoneInfo("Europe/Paris")

# Every kind of value an untyped (Any) parameter or result carries: each comes back equal and
# of the same types all the way down.
UNTYPED_VALUES: list[Any] = [
    None, True, False, 0, -(2**70), 1.0, -0.0, 0.5, math.inf, -math.inf, math.nan, "s", "",
    [1, "a", None, [2.0]], {"k": {"n": [True]}},
    (1, 2), (), ((1,), [2]), {3, 1}, set(), frozenset({"a"}), {frozenset({1}), (2, 3)},
    b"\xff\x00", b"", bytearray(b"ab"),
    {1: "a", 2: "b"}, {(1, 2): "pair", None: 0, 1.5: "f"}, {"$t": "not a tag"}, {True: 1},
    dt.date(2020, 1, 2), dt.datetime(2020, 1, 2, 3, 4, 5, 6),
    dt.datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=UTC), dt.datetime(2020, 1, 2, tzinfo=IST),
    dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1),
    dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-3), "BRT")),
    dt.time(13, 14, 15, 16), dt.time(1, 2, tzinfo=UTC), dt.timedelta(days=-3, microseconds=7),
    Decimal("1.10"), Decimal("-1E+30"), Decimal("NaN"),
    uuid.UUID(int=5), Color.RED, Level.HIGH, complex(1, -2.5),
    Point(1, 2.0), Node3D(1, 2.0, 3), Shape("s", [Point(0, 0.0)], frozenset(), dt.datetime(
        2020, 1, 1, tzinfo=UTC), b"\x80"), Slotted((1, 2), {(3,): {4}}), Pair(1, (2, {3})),
    [{"nested": ({1: (Color.BLUE, dt.date(2000, 1, 1))},)}],
]


@pytest.mark.parametrize("value", UNTYPED_VALUES, ids=repr)
def test_any_carries_every_value_exactly(value: Any) -> None:
    args, kwargs = _through_json(LOOSE.bind([value], {"note": value}).to_json())
    back = LOOSE.bind_json(args, kwargs)
    assert _same(back.args[0], value) and _same(back.kwargs["note"], value)
    assert _same(LOOSE.load_result(_through_json(LOOSE.dump_result(value))), value)


@pytest.mark.parametrize(
    "hint",
    [list[Any], tuple[Any, ...], dict[str, Any], Optional[Any], list, tuple, dict, set, object],  # noqa: UP045
    ids=repr,
)
def test_containers_of_any_carry_their_members_exactly(hint: Any) -> None:
    samples = {
        "list": [(1, 2), {3}, b"x"],
        "tuple": ((1, 2), dt.date(2000, 1, 1)),
        "dict": {"a": (1,), "b": {1: 2}},
        "set": {(1, 2), frozenset({3})},
    }
    origin = getattr(hint, "__origin__", hint)
    name = origin.__name__ if isinstance(origin, type) else "list"
    value = samples.get(name, [(1, 2)])
    if hint is dict:
        value = {(1, 2): {3}}
    op = _op(hint)
    args, _ = _through_json(op.bind([value], {}).to_json())
    assert _same(op.bind_json(args, {}).args[0], value)
    assert _same(op.load_result(_through_json(op.dump_result(value))), value)


def test_an_annotated_dict_with_tuple_keys_round_trips() -> None:
    op = _op(dict[tuple[int, int], str])
    value = {(1, 2): "a", (3, 4): "b"}
    args, _ = _through_json(op.bind([value], {}).to_json())
    assert args == [[[[1, 2], "a"], [[3, 4], "b"]]]
    assert _same(op.bind_json(args, {}).args[0], value)
    assert _same(op.load_result(_through_json(op.dump_result(value))), value)
    with pytest.raises(ValidationError, match="twice"):
        op.bind_json([[[[1, 2], "a"], [[1, 2], "b"]]], {})


def test_a_subclass_of_a_declared_type_is_refused_not_truncated() -> None:
    with pytest.raises(ValidationError, match="a Node3D would arrive as a Point"):
        _op(Point).bind([Node3D(1, 2.0, 3)], {})
    with pytest.raises(ValidationError, match="a Node3D would arrive as a Point"):
        _op(list[Point]).bind([[Point(0, 0.0), Node3D(1, 2.0, 3)]], {})

    class Name(str):
        pass

    with pytest.raises(ValidationError, match="a Name would arrive as a str"):
        _op(list[str]).bind([[Name("x")]], {})
    with pytest.raises(ValidationError, match="would arrive as a Point"):
        _op(Point).dump_result(Node3D(1, 2.0, 3))
    # Declaring the subclass carries it.
    op = _op(Point | Node3D)
    args, _ = _through_json(op.bind([Node3D(1, 2.0, 3)], {}).to_json())
    assert _same(op.bind_json(args, {}).args[0], Node3D(1, 2.0, 3))


def test_ints_still_widen_to_floats_inside_containers() -> None:
    for hint, value, expected in [
        (set[float], {1, 2.5}, {1.0, 2.5}),
        (list[float], [1, 2.5], [1.0, 2.5]),
        (dict[str, float], {"a": 1}, {"a": 1.0}),
    ]:
        op = _op(hint)
        back = op.bind_json(*_through_json(op.bind([value], {}).to_json())).args[0]
        assert _same(back, expected)


def test_a_typed_datetime_whose_zone_would_be_lost_is_refused() -> None:
    op = _op(dt.datetime)
    with pytest.raises(ValidationError, match="would arrive as a bare UTC offset"):
        op.bind([dt.datetime(2024, 7, 1, tzinfo=PARIS)], {})
    with pytest.raises(ValidationError, match="would arrive as a bare UTC offset"):
        _op(list[Shape]).bind(
            [[Shape("s", [], frozenset(), dt.datetime(2024, 1, 1, tzinfo=PARIS), b"")]], {}
        )
    with pytest.raises(ValidationError, match="would arrive as a bare UTC offset"):
        op.bind([dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET"))], {})
    # Fixed offsets travel.
    for tz in (UTC, IST, dt.timezone(dt.timedelta(hours=-2))):
        value = dt.datetime(2024, 1, 1, tzinfo=tz)
        assert op.bind_json(*_through_json(op.bind([value], {}).to_json())).args[0] == value


def test_a_model_subclass_is_refused() -> None:
    class Special(Item):
        note: str = ""

    with pytest.raises(ValidationError, match="not one of the declared models"):
        _op(Item).bind([Special(id=uuid.UUID(int=1), price=Decimal(1), sizes=())], {})


def test_a_typed_dict_with_extra_keys_is_refused() -> None:
    with pytest.raises(ValidationError):
        _op(Movie).bind([{"title": "x", "year": 1, "released": dt.date(2000, 1, 1), "x": 1}], {})


@dataclasses.dataclass
class LooseField:
    meta: Any


@dataclasses.dataclass
class BareDict:
    index: dict  # type: ignore[type-arg]


@dataclasses.dataclass
class TupleKeys:
    grid: dict[tuple[int, int], str]


@pytest.mark.parametrize(
    ("hint", "message"),
    [
        (LooseField, r"field LooseField\.meta is typed Any"),
        (list[BareDict], r"field BareDict\.index is typed dict"),
        (TupleKeys, r"field TupleKeys\.grid"),
        (Sequence[int], r"Sequence\[int\] does not say which type arrives"),
        (Mapping[str, int], "does not say which type arrives"),
    ],
    ids=repr,
)
def test_hints_that_cannot_be_carried_exactly_are_refused_at_class_creation(
    hint: Any, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        _echo_class(hint)


def test_an_untyped_value_of_an_unknown_class_is_refused_at_bind_time() -> None:
    @dataclasses.dataclass
    class Local:
        x: int

    with pytest.raises(ValidationError, match="not reachable"):
        LOOSE.bind([Local(1)], {})
    with pytest.raises(ValidationError, match="OrderedDict cannot be converted"):
        LOOSE.bind([collections.OrderedDict(a=1)], {})


@pytest.mark.parametrize(
    "wire",
    [
        {"$t": "nope", "v": 1},
        {"$t": "tuple", "v": "x"},
        {"$t": "float", "v": "1.5"},
        {"$t": "enum", "type": "os:system", "v": "x"},
        {"$t": "enum", "type": "not.imported.module:Color", "v": "RED"},
        {"$t": "dataclass", "type": "builtins:dict", "v": {}},
        {"$t": "dict", "v": [[1, 2], [1, 3]]},
        {"$t": "bytes", "v": "***"},
    ],
    ids=repr,
)
def test_a_malformed_or_unknown_tagged_value_is_a_validation_error(wire: Any) -> None:
    with pytest.raises(ValidationError):
        LOOSE.bind_json([wire], {})


def test_any_refuses_a_value_without_a_json_form_at_bind_time() -> None:
    with pytest.raises(
        ValidationError, match=r"Loose\.put\(\): argument 'value': a value of type object cannot"
    ):
        LOOSE.bind([object()], {})
    with pytest.raises(ValidationError, match="result"):
        LOOSE.dump_result(object())


def test_query_results_of_unannotated_queries_are_json_native() -> None:
    class Q(Replicated):
        @query
        def items(self):  # type: ignore[no-untyped-def]
            return {"a": [1, 2.0, None]}

    op = schema_of(Q).operation("items")
    assert _same(op.load_result(_through_json(op.dump_result({"a": [1, 2.0, None]}))),
                 {"a": [1, 2.0, None]})
