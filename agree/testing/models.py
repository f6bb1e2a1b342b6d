"""Small replicated classes used by agree's own tests, benchmarks and examples."""

from __future__ import annotations

import dataclasses
import datetime
import enum

from agree.objects.replicated import Consistency, Replicated, command, query


class Counter(Replicated):
    def __init__(self) -> None:
        self.value = 0

    @command
    def add(self, n: int = 1) -> int:
        if n < 0:
            raise ValueError("n must be >= 0")
        self.value += n
        return self.value

    @query
    def get(self) -> int:
        return self.value

    @query(consistency=Consistency.ANY)
    def peek(self) -> int:
        return self.value


class KVStore(Replicated):
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    @command
    def set(self, key: str, value: str) -> None:
        self.data[key] = value

    @command
    def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None

    @query
    def get(self, key: str) -> str | None:
        return self.data.get(key)

    @query
    def size(self) -> int:
        return len(self.data)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: float
    tags: frozenset[str] = frozenset()


class Types(Replicated):
    """Exercises faithful round-trips of values through the log and back."""

    def __init__(self) -> None:
        self.last: object = None
        self.stamps: list[datetime.datetime] = []

    @command
    def echo_int(self, n: int) -> int:
        self.last = n
        return n

    @command
    def echo_when(self, when: datetime.datetime) -> datetime.datetime:
        self.last = when
        return when

    @command
    def echo_point(self, p: Point) -> Point:
        self.last = p
        return p

    @command
    def echo_set(self, s: set[int]) -> set[int]:
        self.last = s
        return s

    @command
    def echo_tuple(self, t: tuple[int, str, Color]) -> tuple[int, str, Color]:
        self.last = t
        return t

    @command
    def stamp(self) -> tuple[int, int, datetime.datetime]:
        """Returns the command's own (index, term, leader-stamped time)."""
        ctx = self.context
        self.stamps.append(ctx.timestamp)
        return ctx.index, ctx.term, ctx.timestamp

    @command
    def bad_result(self) -> int:
        return "not an int"  # type: ignore[return-value]

    @query
    def get_last(self) -> object:
        return self.last
