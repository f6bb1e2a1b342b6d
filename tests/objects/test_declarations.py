"""Declaring replicated classes: what the decorators record and what class creation refuses."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

import agree
from agree import Consistency, Replicated, command, query
from agree.errors import ConfigurationError
from agree.objects.replicated import RESERVED_NAMES, create_initial, operation_mark
from agree.objects.schema import MISSING, schema_of


class Counter(Replicated):
    """The API.md example."""

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

    @command(name="reset")
    def _reset_to(self, value: int = 0, *, note: str | None = None) -> None:
        self.value = value

    def helper(self) -> int:  # not an operation
        return self.value * 2


def test_operations_are_recorded_with_kind_and_consistency() -> None:
    schema = schema_of(Counter)
    assert set(schema.operations) == {"add", "get", "peek", "reset"}
    assert schema.operation("add").kind == "command"
    assert schema.operation("add").consistency is None
    assert schema.operation("get").kind == "query"
    assert schema.operation("get").consistency is Consistency.LINEARIZABLE
    assert schema.operation("peek").consistency is Consistency.ANY
    assert set(schema.commands) == {"add", "reset"}
    assert set(schema.queries) == {"get", "peek"}


def test_schema_is_built_at_class_creation_and_shared_by_instances() -> None:
    assert schema_of(Counter) is Counter.__agree_schema__
    assert schema_of(Counter()) is Counter.__agree_schema__


def test_decorated_methods_stay_plain_callable_methods() -> None:
    c = Counter()
    assert c.add(2) == 2
    assert c.add() == 3
    assert c.get() == 3
    c._reset_to(7)
    assert c.peek() == 7
    # The decorator returns the function itself: no wrapper changes behaviour.
    assert Counter.__dict__["add"].__name__ == "add"
    assert operation_mark(Counter.__dict__["add"]) is not None
    assert operation_mark(Counter.__dict__["helper"]) is None


def test_parameters_kinds_defaults_and_hints() -> None:
    op = schema_of(Counter).operation("reset")
    assert op.attr == "_reset_to"
    assert op.name == "reset"
    assert [(p.name, p.kind) for p in op.params] == [
        ("value", "positional_or_keyword"),
        ("note", "keyword_only"),
    ]
    assert [p.default for p in op.params] == [0, None]
    assert op.params[0].annotation is int
    assert op.params[1].annotation == (str | None)
    assert op.returns is type(None)
    assert not op.params[0].required
    add = schema_of(Counter).operation("add")
    assert add.returns is int
    assert add.qualname == "Counter.add"


def test_unannotated_parameters_and_returns_are_any() -> None:
    class Loose(Replicated):
        @command
        def put(self, key, value=None):  # type: ignore[no-untyped-def]
            return key

    op = schema_of(Loose).operation("put")
    assert [p.annotation for p in op.params] == [Any, Any]
    assert op.params[0].default is MISSING and op.params[0].required
    assert op.returns is Any


def test_string_annotations_resolve_from_the_module() -> None:
    # This module uses `from __future__ import annotations`: every hint above is a string.
    assert isinstance(Counter.__dict__["add"].__annotations__["n"], str)
    assert schema_of(Counter).operation("add").params[0].annotation is int


def test_subclass_inherits_and_overrides_operations() -> None:
    class Doubling(Counter):
        @command
        def add(self, n: int = 1) -> int:
            return super().add(2 * n)

        @query(consistency=Consistency.LEADER)
        def get(self) -> int:
            return self.value

        @command
        def clear(self) -> None:
            self.value = 0

    schema = schema_of(Doubling)
    assert set(schema.operations) == {"add", "get", "peek", "reset", "clear"}
    assert schema.operation("get").consistency is Consistency.LEADER
    d = Doubling()
    assert d.add(3) == 6
    # The base class's schema is untouched by the subclass.
    assert set(schema_of(Counter).operations) == {"add", "get", "peek", "reset"}
    assert schema_of(Counter).operation("get").consistency is Consistency.LINEARIZABLE


def test_an_override_may_change_the_kind() -> None:
    class Readonly(Counter):
        @query
        def add(self, n: int = 1) -> int:
            return self.value + n

    assert schema_of(Readonly).operation("add").kind == "query"


def test_operations_from_a_mixin_are_collected() -> None:
    class Stamp:
        @query
        def stamp(self) -> str:
            return "s"

    class Stamped(Stamp, Replicated):
        pass

    assert set(schema_of(Stamped).operations) == {"stamp"}


def test_a_class_without_operations_has_an_empty_schema() -> None:
    class Empty(Replicated):
        pass

    assert dict(schema_of(Empty).operations) == {}


def test_consistency_values_match_the_api() -> None:
    assert [c.value for c in Consistency] == ["any", "leader", "linearizable"]
    assert Consistency("any") is Consistency.ANY
    assert isinstance(Consistency.ANY, str)


def test_public_names_are_exported() -> None:
    for name in ("Replicated", "command", "query", "Consistency", "CommandContext", "Mutation"):
        assert name in agree.__all__
    assert agree.command is command and agree.query is query


# -- declarations refused at class creation ------------------------------------------------------


def _refused(match: str, build: Callable[[], object]) -> None:
    with pytest.raises(TypeError, match=match):
        build()


def test_decorating_a_non_function_is_refused() -> None:
    _refused("must decorate a function", lambda: command(42))  # type: ignore[call-overload]
    _refused("must decorate a function", lambda: query(type("X", (), {})))
    # @command("name") instead of @command(name="name"):
    _refused(r"@command\(name=\.\.\.\)", lambda: command("incr"))  # type: ignore[call-overload]


def test_decorating_static_class_methods_and_properties_is_refused() -> None:
    def over_staticmethod() -> None:
        class Bad(Replicated):
            @command
            @staticmethod
            def f() -> None: ...

    _refused("plain method", over_staticmethod)

    def under_staticmethod() -> None:
        class Bad(Replicated):
            @staticmethod
            @command
            def f() -> None: ...

    _refused(r"Bad\.f: .*plain method, not a staticmethod", under_staticmethod)

    def under_classmethod() -> None:
        class Bad(Replicated):
            @classmethod
            @query
            def f(cls) -> None: ...

    _refused("not a classmethod", under_classmethod)

    def under_property() -> None:
        class Bad(Replicated):
            @property
            @query
            def f(self) -> int:
                return 1

    _refused("not a property", under_property)


def test_coroutines_and_generators_are_refused() -> None:
    def coroutine() -> None:
        class Bad(Replicated):
            @command
            async def f(self) -> None: ...

    _refused("coroutine function", coroutine)

    def generator() -> None:
        class Bad(Replicated):
            @query
            def f(self):  # type: ignore[no-untyped-def]
                yield 1

    _refused("generator function", generator)


def test_marking_twice_is_refused() -> None:
    def both() -> None:
        class Bad(Replicated):
            @query
            @command
            def f(self) -> None: ...

    _refused("already marked @command", both)


def test_duplicate_operation_names_are_refused() -> None:
    def duplicate() -> None:
        class Bad(Replicated):
            @command
            def a(self) -> None: ...

            @query(name="a")
            def b(self) -> int:
                return 1

    _refused(r"operation name 'a' is declared twice \(by the methods 'a' and 'b'\)", duplicate)


def test_variadic_parameters_are_refused() -> None:
    def star_args() -> None:
        class Bad(Replicated):
            @command
            def f(self, *items: int) -> None: ...

    _refused(r"Bad\.f: \*items is not supported", star_args)

    def star_kwargs() -> None:
        class Bad(Replicated):
            @command
            def f(self, **options: int) -> None: ...

    _refused(r"Bad\.f: \*\*options is not supported", star_kwargs)


def test_positional_only_parameters_are_refused() -> None:
    def positional_only() -> None:
        class Bad(Replicated):
            @command
            def f(self, x: int, /) -> None: ...

    _refused("positional-only parameter 'x'", positional_only)


def test_a_method_without_self_is_refused() -> None:
    def no_self() -> None:
        class Bad(Replicated):
            @command
            def f() -> None: ...  # type: ignore[misc]

    _refused("taking self first", no_self)


class NotSerializable:
    pass


def test_unresolvable_type_hints_are_refused() -> None:
    def unresolvable() -> None:
        class Bad(Replicated):
            @command
            def f(self, x: NoSuchType) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    _refused(r"Bad\.f: cannot resolve the type hints \(NameError", unresolvable)


def test_unsupported_type_hints_are_refused() -> None:
    def arbitrary_class() -> None:
        class Bad(Replicated):
            @command
            def f(self, x: NotSerializable) -> None: ...

    _refused(r"Bad\.f: parameter 'x': unsupported type hint", arbitrary_class)

    def callable_return() -> None:
        class Bad(Replicated):
            @query
            def f(self) -> Callable[[int], int]:
                return abs

    _refused(r"Bad\.f: return type: unsupported type hint", callable_return)


def test_a_default_without_a_json_form_is_refused() -> None:
    sentinel = object()

    def bad_default() -> None:
        class Bad(Replicated):
            @command
            def f(self, x: Any = sentinel) -> None: ...

    _refused("the default of parameter 'x'", bad_default)


@pytest.mark.parametrize("name", sorted(RESERVED_NAMES - {"context"}))
def test_reserved_operation_names_are_refused(name: str) -> None:
    def reserved() -> None:
        @command
        def op(self: Any) -> None: ...

        type("Bad", (Replicated,), {name: op})

    _refused(f"operation name '{name}' is reserved", reserved)


def test_reserved_name_through_name_argument_is_refused_at_decoration() -> None:
    _refused("'subscribe' is reserved", lambda: command(name="subscribe"))


def test_context_attribute_cannot_be_an_operation() -> None:
    def shadow() -> None:
        class Bad(Replicated):
            @query
            def context(self) -> int:  # type: ignore[override]
                return 1

    _refused("reserved", shadow)


def test_private_and_non_identifier_names_are_refused() -> None:
    def private() -> None:
        class Bad(Replicated):
            @command
            def _hidden(self) -> None: ...

    _refused("may not start with an underscore", private)
    _refused("not a Python identifier", lambda: query(name="get-value"))


def test_overriding_an_operation_without_a_decorator_is_refused() -> None:
    def forgot() -> None:
        class Sub(Counter):
            def add(self, n: int = 1) -> int:
                return n

    _refused(r"Sub\.add overrides the @command Counter\.add without @command", forgot)


def test_a_bad_consistency_is_refused() -> None:
    _refused("expected one of", lambda: query(consistency="eventual"))  # type: ignore[call-overload]


def test_the_error_message_names_class_method_and_parameter() -> None:
    with pytest.raises(TypeError) as info:

        class Inventory(Replicated):
            @command
            def restock(self, item: NotSerializable, count: int) -> None: ...

    message = str(info.value)
    assert re.search(r"Inventory\.restock: parameter 'item'", message)


# -- the initial state ----------------------------------------------------------------------------


def test_create_initial_builds_the_initial_state() -> None:
    c = create_initial(Counter)
    assert isinstance(c, Counter) and c.value == 0


def test_create_initial_names_required_constructor_arguments() -> None:
    class NeedsArgs(Replicated):
        def __init__(self, start: int, *, step: int) -> None:
            self.value = start

    # Class creation is fine: the check happens when a node instantiates.
    with pytest.raises(ConfigurationError, match=r"NeedsArgs must be constructible .* start, step"):
        create_initial(NeedsArgs)


def test_create_initial_refuses_non_replicated_classes() -> None:
    with pytest.raises(ConfigurationError, match=r"not a subclass of agree\.Replicated"):
        create_initial(dict)  # type: ignore[type-var]


def test_schema_of_refuses_non_replicated() -> None:
    with pytest.raises(TypeError, match="not a subclass"):
        schema_of(object())
    with pytest.raises(TypeError, match="not a subclass"):
        schema_of(Replicated)
