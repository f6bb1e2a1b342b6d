"""The self-describing form of untyped values (agree.objects.values): exact round trips of generated
values through JSON text, and what decoding refuses to do."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import random
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from agree.objects import values


class Mood(enum.Enum):
    CALM = 1
    ANGRY = "angry"


class Flags(enum.IntFlag):
    A = 1
    B = 2


class Span(NamedTuple):
    start: int
    end: Any


@dataclasses.dataclass
class Tracked:
    inits = 0
    name: str
    extra: Any = None

    def __post_init__(self) -> None:
        Tracked.inits += 1


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, Decimal):
        return str(a) == str(b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, set | frozenset):
        return a == b and {type(x) for x in a} == {type(x) for x in b}
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return vars(a).keys() == vars(b).keys() and all(
            _same(getattr(a, k), getattr(b, k)) for k in vars(a)
        )
    if isinstance(a, dt.datetime | dt.time):
        return a == b and type(a.tzinfo) is type(b.tzinfo) and a.fold == b.fold
    return bool(a == b)


def _through_json_text(value: Any) -> Any:
    return values.decode(json.loads(json.dumps(values.encode(value), allow_nan=False)))


def _scalar(rng: random.Random) -> Any:
    choices: list[Any] = [
        None, rng.random() < 0.5, rng.randint(-(2**70), 2**70), rng.uniform(-1e9, 1e9),
        rng.choice([math.inf, -math.inf, math.nan, -0.0]), "".join(
            rng.choice("ab☃\u0000$t") for _ in range(rng.randint(0, 4))),
        rng.randbytes(rng.randint(0, 5)),
        dt.date(2000, 1, 1) + dt.timedelta(days=rng.randint(0, 9999)),
        dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(minutes=rng.randint(-600, 600))))
        + dt.timedelta(seconds=rng.randint(0, 10**8)),
        dt.timedelta(microseconds=rng.randint(-(10**12), 10**12)),
        Decimal(rng.randint(-(10**6), 10**6)).scaleb(rng.randint(-5, 5)),
        uuid.UUID(int=rng.getrandbits(128)), rng.choice(list(Mood)), Flags.B,
        complex(rng.random(), -rng.random()),
    ]
    return rng.choice(choices)


def _hashable(rng: random.Random, depth: int) -> Any:
    if depth <= 0 or rng.random() < 0.5:
        value = _scalar(rng)
        return value if not isinstance(value, float) or not math.isnan(value) else 0.5
    members = (_hashable(rng, depth - 1) for _ in range(rng.randint(0, 3)))
    return rng.choice([tuple, frozenset])(members)


def _value(rng: random.Random, depth: int) -> Any:
    if depth <= 0 or rng.random() < 0.3:
        return _scalar(rng)
    n = rng.randint(0, 4)
    kind = rng.randrange(8)
    items = [_value(rng, depth - 1) for _ in range(n)]
    if kind == 0:
        return items
    if kind == 1:
        return tuple(items)
    if kind == 2:
        return {_hashable(rng, 1) for _ in range(n)}
    if kind == 3:
        return {str(i): v for i, v in enumerate(items)}
    if kind == 4:
        return {_hashable(rng, 2): v for v in items}
    if kind == 5:
        return Span(n, items)
    if kind == 6:
        return Tracked("t", items)
    return frozenset(_hashable(rng, 2) for _ in range(n))


@pytest.mark.parametrize("seed", range(200))
def test_generated_values_round_trip_exactly_through_json_text(seed: int) -> None:
    value = _value(random.Random(seed), 4)
    assert _same(_through_json_text(value), value), (seed, value)


def test_decoding_a_dataclass_runs_none_of_its_code() -> None:
    wire = values.encode(Tracked("x", (1,)))
    before = Tracked.inits
    back = values.decode(wire)
    assert type(back) is Tracked and back.extra == (1,) and Tracked.inits == before


def test_decoding_never_imports_a_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "agree_values_side_effects.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nimport enum\nclass E(enum.Enum):\n    A = 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="not an enum this process knows"):
        values.decode({"$t": "enum", "type": "agree_values_side_effects:E", "v": "A"})
    assert not marker.exists() and "agree_values_side_effects" not in sys.modules


@pytest.mark.parametrize(
    "value",
    [object(), Flags.A | Flags.B, dt.datetime(2020, 1, 1, tzinfo=dt.tzinfo()), sys, print],
    ids=repr,
)
def test_values_without_an_exact_form_are_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        values.encode(value)


def test_a_self_referencing_value_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(TypeError, match="refers to itself"):
        values.encode(loop)


@pytest.mark.parametrize(
    "wire",
    [
        float("nan"),
        {"$t": "datetime", "v": "2020-01-01", "tz": ["zone", 3]},
        {"$t": "datetime", "v": "2020-01-01", "fold": 2},
        {"$t": "timedelta", "v": [1, 2]},
        {"$t": "namedtuple", "type": f"{__name__}:Span", "v": [1]},
        {"$t": "dataclass", "type": f"{__name__}:Tracked", "v": {"not an identifier": 1}},
        {"$t": "set", "v": [[1]]},
        {"$t": "complex", "v": [True, 1]},
        ("not", "json"),
    ],
    ids=repr,
)
def test_malformed_forms_are_value_errors(wire: Any) -> None:
    with pytest.raises(ValueError):
        values.decode(wire)
