"""Values through a running cluster: every kind of value a command, a query, a result and a
subscriber's Mutation carries comes back equal and of the same types; a command whose result
fails its annotation says it was applied."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import math
import uuid
import zoneinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agree import Replicated, command, query
from agree.errors import ResultValidationError, ValidationError
from agree.objects.mutation import Mutation
from agree.testing.cluster import MemoryCluster

WAIT = 5.0


class Suit(enum.Enum):
    HEARTS = "h"
    SPADES = "s"


@dataclasses.dataclass(frozen=True)
class Card:
    suit: Suit
    rank: int


@dataclasses.dataclass(frozen=True)
class Joker(Card):
    colour: str = "red"


class InsufficientFunds(Exception):
    def __init__(self, needed: int, have: int) -> None:
        super().__init__(f"need {needed}, have {have}")
        self.needed = needed
        self.have = have


class Box(Replicated):
    """Keeps whatever it is given, untyped, and a typed grid."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.grid: dict[tuple[int, int], str] = {}
        self.total = 0

    @command
    def put(self, value, *, label=None):  # type: ignore[no-untyped-def]
        self.items.append((value, label))
        return value

    @query
    def last(self):  # type: ignore[no-untyped-def]
        return self.items[-1][0]

    @command
    def mark(self, cells: dict[tuple[int, int], str]) -> dict[tuple[int, int], str]:
        self.grid.update(cells)
        return dict(self.grid)

    @command
    def play(self, card: Card) -> list[Card]:
        return [card]

    @command
    def withdraw(self, amount: int) -> int:
        exc = InsufficientFunds(amount, self.total)
        exc.when = (self.context.index, self.context.timestamp)  # type: ignore[attr-defined]
        raise exc

    @command
    def charge(self, n: int) -> int:
        self.total += n
        return str(self.total)  # type: ignore[return-value]


OBJECTS = {"box": Box}

VALUES: list[Any] = [
    None, True, 7, -(2**80), 1.5, math.inf, math.nan, "text", [1, [2.0]], {"a": {"b": None}},
    (1, "two", (3.0,)), {1, 2}, frozenset({"x"}), b"\x00\xff", bytearray(b"z"),
    {1: "one", (2, 3): {4}}, {"$t": "looks like a tag"},
    dt.date(2024, 2, 29), dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
    dt.datetime(2024, 10, 27, 2, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"), fold=1),
    dt.time(23, 59), dt.timedelta(days=-1, seconds=5), Decimal("1.10"), uuid.UUID(int=42),
    Suit.SPADES, Card(Suit.HEARTS, 12), Joker(Suit.SPADES, 0), [{"deep": ({Suit.HEARTS},)}],
]


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, set | frozenset):
        return a == b and {type(x) for x in a} == {type(x) for x in b}
    if isinstance(a, dt.datetime):
        return a == b and type(a.tzinfo) is type(b.tzinfo) and a.fold == b.fold
    return bool(a == b)


async def test_untyped_values_round_trip_through_commands_queries_and_mutations(
    tmp_path: Path,
) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n for n in cluster.nodes.values() if n is not leader)
        stream = follower.mutations("box", method="put")
        box = follower.proxy("box")  # forwarded to the leader: the real call path
        for value in VALUES:
            result = await box.put(value, label=value)
            assert _same(result, value), (value, result)
            assert _same(await box.last(), value)
        for value in VALUES:
            m: Mutation = await asyncio.wait_for(anext(stream), WAIT)
            assert _same(m.args[0], value) and _same(m.kwargs["label"], value)
            assert _same(m.result, value)
            # And the record a watch stream carries, without the operation at hand.
            back = Mutation.from_json(m.to_json())
            assert _same(back.args[0], value) and _same(back.result, value)
        # Every replica applied the same values, not their JSON forms.
        await cluster.wait_applied(leader.status().last_index)
        for node in cluster.nodes.values():
            with node.read_lock("box") as obj:
                assert all(_same(v, w) for (v, _), w in zip(obj.items, VALUES, strict=True))


async def test_typed_tuple_keys_and_subclasses_through_a_cluster(tmp_path: Path) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        box = leader.proxy("box")
        assert await box.mark({(0, 0): "x", (1, 2): "o"}) == {(0, 0): "x", (1, 2): "o"}
        card = Card(Suit.HEARTS, 1)
        assert await box.play(card) == [card]
        before = leader.status().last_index
        # A Joker is a Card, but would arrive as a plain Card: refused before proposing.
        with pytest.raises(ValidationError, match="a Joker would arrive as a Card"):
            await box.play(Joker(Suit.HEARTS, 0))
        assert leader.status().last_index == before


async def test_a_command_whose_result_fails_its_annotation_says_it_was_applied(
    tmp_path: Path,
) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        box = leader.proxy("box")
        with pytest.raises(ResultValidationError) as caught:
            await box.charge(5)
        err = caught.value
        # Not the "nothing was written" error a caller may retry on.
        assert not isinstance(err, ValidationError)
        assert err.applied and err.index > 0 and f"applied at index {err.index}" in str(err)
        await cluster.wait_applied(err.index)
        for node in cluster.nodes.values():
            with node.read_lock("box") as obj:
                assert obj.total == 5


async def test_a_users_exception_comes_back_whole_to_the_caller_and_the_subscriber(
    tmp_path: Path,
) -> None:
    async with MemoryCluster(tmp_path, OBJECTS) as cluster:
        leader = await cluster.wait_leader()
        follower = next(n for n in cluster.nodes.values() if n is not leader)
        stream = leader.mutations("box", method="withdraw")
        with pytest.raises(InsufficientFunds) as caught:
            await follower.proxy("box").withdraw(10)
        err = caught.value
        assert type(err) is InsufficientFunds and str(err) == "need 10, have 0"
        assert (err.needed, err.have) == (10, 0)
        index, when = err.when  # type: ignore[attr-defined]
        assert type(index) is int and type(when) is dt.datetime and when.tzinfo is not None
        m = await asyncio.wait_for(anext(stream), WAIT)
        assert type(m.error) is InsufficientFunds and vars(m.error) == vars(err)
        back = Mutation.from_json(m.to_json())
        assert type(back.error) is InsufficientFunds and vars(back.error) == vars(err)
