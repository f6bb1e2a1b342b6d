"""Which code changes are compatible extensions of a recorded schema (agree.objects.schema,
"Upgrades")."""

from __future__ import annotations

import pytest

from agree import Replicated, command, query
from agree.objects.replicated import Consistency
from agree.objects.schema import extension_problems, schema_of


class V1(Replicated):
    @command
    def put(self, key: str, value: int = 0, *, note: str = "") -> int:
        return value

    @query
    def size(self) -> int:
        return 0


class AddsOperation(V1):
    @command
    def clear(self) -> None:
        pass


class AddsParameters(Replicated):
    @command
    def put(self, key: str, value: int = 0, ttl: int | None = None, *, note: str = "",
            tag: str = "") -> int:
        return value

    @query
    def size(self) -> int:
        return 0


class Documented(Replicated):
    """Docstrings and the class name are not part of the schema."""

    @command
    def put(self, key: str, value: int = 0, *, note: str = "") -> int:
        """Put it."""
        return value

    @query
    def size(self) -> int:
        return 0


def _v1_with(**changes: object) -> type[Replicated]:
    """V1 with ``put`` or ``size`` replaced (None: removed) in a new class."""
    attrs = {"put": V1.put, "size": V1.size, **changes}
    return type("Changed", (Replicated,), {k: v for k, v in attrs.items() if v is not None})


@command
def _put_required_ttl(self: object, key: str, value: int = 0, *, note: str = "", ttl: int) -> int:
    return value


@command
def _put_inserted(self: object, key: str, ttl: int = 0, value: int = 0, *, note: str = "") -> int:
    return value


@command
def _put_widened(self: object, key: str, value: int | str = 0, *, note: str = "") -> int:
    return 0


@command
def _put_returns_wider(self: object, key: str, value: int = 0, *, note: str = "") -> int | None:
    return value


@command
def _put_new_default(self: object, key: str, value: int = 1, *, note: str = "") -> int:
    return value


@command
def _put_without_note(self: object, key: str, value: int = 0) -> int:
    return value


@query
def _put_as_query(self: object, key: str, value: int = 0, *, note: str = "") -> int:
    return value


@query(consistency=Consistency.ANY)
def _size_any(self: object) -> int:
    return 0


RECORDED = schema_of(V1).json_schema()


@pytest.mark.parametrize("cls", [V1, AddsOperation, AddsParameters, Documented])
def test_compatible_extensions(cls: type[Replicated]) -> None:
    assert extension_problems(RECORDED, schema_of(cls).json_schema()) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"size": None}, "query 'size' is recorded by the cluster but missing here"),
        ({"put": _put_required_ttl}, "'put': new parameter 'ttl' has no default"),
        ({"put": _put_inserted}, "'put': positional parameters ['key', 'ttl', 'value'] here,"
                                 " ['key', 'value'] recorded"),
        ({"put": _put_widened}, "'put': parameter 'value' type int | str here, int recorded"),
        ({"put": _put_returns_wider}, "'put': return type None | int here, int recorded"),
        ({"put": _put_new_default}, "'put': parameter 'value' default 1 here, 0 recorded"),
        ({"put": _put_without_note}, "'put': parameter 'note' is recorded by the cluster but"
                                     " missing here"),
        ({"put": _put_as_query}, "'put' is a query here but the cluster recorded a command"),
        ({"size": _size_any}, "'size': default consistency any here, linearizable recorded"),
    ],
)
def test_incompatible_changes_say_what_differs(changes: dict[str, object], expected: str) -> None:
    cls = _v1_with(**changes)
    problems = extension_problems(RECORDED, schema_of(cls).json_schema())
    assert any(p.startswith(expected) for p in problems), problems


def test_an_extension_is_not_compatible_the_other_way() -> None:
    # Old code against a recorded extension: it lacks what the cluster adopted.
    problems = extension_problems(schema_of(AddsOperation).json_schema(), RECORDED)
    assert problems == [
        "command 'clear' is recorded by the cluster but missing here (removed or renamed);"
        " the log may still hold calls of it, so it must stay"
    ]
