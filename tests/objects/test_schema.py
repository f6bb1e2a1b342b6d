"""The published schema, its fingerprint, and the compatibility check between nodes."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import textwrap
import types
from typing import Annotated, Any, List, Literal, Optional, Union  # noqa: UP035

import pydantic
import pytest

from agree import Replicated, SchemaMismatchError
from agree.errors import ValidationError
from agree.objects.schema import (
    ObjectSchema,
    TypeCodec,
    canonical_json,
    schema_fingerprint,
    schema_of,
    type_name,
)

SOURCE = textwrap.dedent(
    '''
    import dataclasses, datetime, enum, uuid
    from decimal import Decimal
    from agree import Consistency, Replicated, command, query

    class Unit(enum.Enum):
        PIECE = "piece"
        BOX = "box"

    @dataclasses.dataclass
    class Line:
        """An order line."""
        sku: str
        count: int
        unit: Unit = Unit.PIECE

    class Inventory(Replicated):
        """Stock per SKU."""

        def __init__(self) -> None:
            self.stock: dict[str, int] = {}

        @command
        def restock(self, sku: str, count: int, *, when: datetime.datetime | None = None) -> int:
            """Add stock."""
            self.stock[sku] = self.stock.get(sku, 0) + count
            return self.stock[sku]

        @command
        def order(self, lines: list[Line], ref: uuid.UUID, price: Decimal = Decimal("0")) -> bool:
            return True

        @query(consistency=Consistency.ANY)
        def level(self, sku: str) -> int:
            return self.stock.get(sku, 0)

        @query
        def skus(self) -> frozenset[str]:
            return frozenset(self.stock)
    '''
)


def build(source: str, name: str = "Inventory") -> type[Replicated]:
    module = types.ModuleType(f"schema_test_{abs(hash(source))}")
    sys.modules[module.__name__] = module
    try:
        exec(compile(source, module.__name__, "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    cls: type[Replicated] = module.__dict__[name]
    return cls


def fingerprint_in_subprocess(source: str, hash_seed: str) -> str:
    program = source + (
        "\nfrom agree.objects.schema import schema_of\nprint(schema_of(Inventory).fingerprint())\n"
    )
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    out = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_json_schema_describes_every_operation() -> None:
    doc = schema_of(build(SOURCE)).json_schema()
    assert doc["format"] == 1
    assert doc["class"] == "Inventory"
    assert sorted(doc["operations"]) == ["level", "order", "restock", "skus"]
    restock = doc["operations"]["restock"]
    assert restock["kind"] == "command"
    assert restock["consistency"] is None
    assert restock["doc"] == "Add stock."
    assert restock["returns"] == {"type": "integer"}
    assert restock["returns_type"] == "int"
    assert restock["params"] == [
        {"name": "sku", "kind": "positional_or_keyword", "required": True, "type": "str",
         "schema": {"type": "string"}},
        {"name": "count", "kind": "positional_or_keyword", "required": True, "type": "int",
         "schema": {"type": "integer"}},
        {"name": "when", "kind": "keyword_only", "required": False, "default": None,
         "type": "None | datetime",
         "schema": {"anyOf": [{"format": "date-time", "type": "string"}, {"type": "null"}]}},
    ]
    level = doc["operations"]["level"]
    assert (level["kind"], level["consistency"]) == ("query", "any")
    assert doc["operations"]["skus"]["consistency"] == "linearizable"
    order = doc["operations"]["order"]
    assert order["params"][2]["default"] == "0"
    assert order["params"][0]["schema"]["$defs"]["Line"]["properties"]["unit"]["default"] == "piece"
    # JSON-able as published.
    assert json.loads(json.dumps(doc)) == doc


def test_json_schema_returns_a_fresh_copy() -> None:
    schema = schema_of(build(SOURCE))
    doc = schema.json_schema()
    doc["operations"].clear()
    assert schema.json_schema()["operations"]


def test_fingerprint_is_a_sha256_hex_digest() -> None:
    fp = schema_of(build(SOURCE)).fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0


def test_fingerprint_is_the_same_in_another_process_with_another_hash_seed() -> None:
    here = schema_of(build(SOURCE)).fingerprint()
    assert fingerprint_in_subprocess(SOURCE, "1") == here
    assert fingerprint_in_subprocess(SOURCE, "4242") == here


def test_fingerprint_ignores_declaration_order_and_documentation() -> None:
    # Move `skus` before `restock` and change every docstring and the class name.
    skus = SOURCE[SOURCE.index("    @query\n    def skus") :]
    head = SOURCE[: SOURCE.index("    @query\n    def skus")]
    marker = "    @command\n    def restock"
    reordered = head.replace(marker, skus + "\n" + marker)
    reordered = reordered.replace('"""Add stock."""', '"""Adds some stock."""')
    reordered = reordered.replace('"""An order line."""', '"""A line of an order."""')
    reordered = reordered.replace("class Inventory(", "class Stock(")
    original = schema_of(build(SOURCE))
    other = schema_of(build(reordered, "Stock"))
    assert list(other.operations) == list(original.operations)  # sorted by name
    assert other.json_schema() != original.json_schema()
    assert other.fingerprint() == original.fingerprint()
    assert schema_fingerprint(other.json_schema()) == original.fingerprint()
    original.check_compatible(other.json_schema())


def test_a_changed_parameter_type_changes_the_fingerprint_and_is_explained() -> None:
    changed = SOURCE.replace("count: int, *", "count: float, *")
    local, remote = schema_of(build(SOURCE)), schema_of(build(changed))
    assert local.fingerprint() != remote.fingerprint()
    assert schema_fingerprint(remote.json_schema()) == remote.fingerprint()
    with pytest.raises(SchemaMismatchError) as info:
        local.check_compatible(remote.json_schema())
    message = str(info.value)
    assert "schema of Inventory" in message
    assert local.fingerprint()[:12] in message and remote.fingerprint()[:12] in message
    assert "'restock': parameter 'count' type int here, float on the remote" in message


def test_equivalent_spellings_of_a_type_are_compatible() -> None:
    spelled = SOURCE.replace(
        "when: datetime.datetime | None = None", "when: Optional[datetime.datetime] = None"
    ).replace("import dataclasses,", "from typing import Optional\nimport dataclasses,")
    assert spelled != SOURCE
    assert schema_of(build(spelled)).fingerprint() == schema_of(build(SOURCE)).fingerprint()


def test_a_changed_nested_dataclass_field_is_a_mismatch() -> None:
    changed = SOURCE.replace("    count: int\n    unit", "    count: str\n    unit")
    # Same Python spelling (list[Line]); the JSON Schema of Line tells them apart.
    with pytest.raises(SchemaMismatchError, match="'order': parameter 'lines' type differs: "):
        schema_of(build(SOURCE)).check_compatible(schema_of(build(changed)).json_schema())


def _mismatch(changed_source: str) -> str:
    local = schema_of(build(SOURCE))
    remote = schema_of(build(changed_source))
    assert local.fingerprint() != remote.fingerprint()
    with pytest.raises(SchemaMismatchError) as info:
        local.check_compatible(remote.json_schema())
    return str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "explanation"),
    [
        ("    @query\n    def skus", "    def skus",
         "query 'skus' exists here but is missing on the remote"),
        (
            "        return frozenset(self.stock)",
            "        return frozenset(self.stock)\n"
            "\n    @command\n    def clear(self) -> None:\n        self.stock.clear()",
            "command 'clear' exists on the remote but is missing here",
        ),
        ("count: int, *, when", "count: int, extra: int = 0, *, when",
         "'restock': parameter 'extra' exists on the remote but not here"),
        ("count: int, *, when", "*, when", "'restock': parameter 'count' exists here but not on"),
        ("def restock(self, sku: str, count: int,", "def restock(self, count: int, sku: str,",
         "'restock': parameter order ['sku', 'count', 'when'] here, ['count', 'sku', 'when']"),
        ("count: int, *, when", "*, count: int, when",
         "'restock': parameter 'count' is positional_or_keyword here, keyword_only on the remote"),
        ("count: int, *, when", "count: int = 1, *, when",
         "'restock': parameter 'count' is required here, optional on the remote"),
        ('price: Decimal = Decimal("0")', 'price: Decimal = Decimal("1")',
         "'order': parameter 'price' default \"0\" here, \"1\" on the remote"),
        ("    @query\n    def skus", "    @command\n    def skus",
         "'skus' is a query here but a command on the remote"),
        ("-> frozenset[str]", "-> list[str]",
         "'skus': return type frozenset[str] here, list[str] on the remote"),
        ("-> frozenset[str]", "-> set[str]",
         "'skus': return type frozenset[str] here, set[str] on the remote"),
        ("lines: list[Line]", "lines: tuple[Line, ...]",
         "'order': parameter 'lines' type list[Line] here, tuple[Line, ...] on the remote"),
        ("-> int:\n        return self.stock.get", "-> int | None:\n        return self.stock.get",
         "'level': return type int here, None | int on the remote"),
        ("@query(consistency=Consistency.ANY)", "@query(consistency=Consistency.LEADER)",
         "'level': default consistency any here, leader on the remote"),
    ],
    ids=[
        "operation missing", "operation added", "param added", "param removed", "param order",
        "param kind", "param required", "param default", "kind changed", "return changed",
        "set vs frozenset", "list vs tuple (same JSON Schema)", "return made optional",
        "consistency changed",
    ],
)
def test_every_kind_of_difference_is_explained(old: str, new: str, explanation: str) -> None:
    assert old in SOURCE
    assert explanation in _mismatch(SOURCE.replace(old, new))


def test_all_differences_are_listed_together() -> None:
    changed = SOURCE.replace("-> frozenset[str]", "-> list[str]").replace(
        "count: int, *", "count: str, *"
    )
    message = _mismatch(changed)
    assert "'skus': return type frozenset[str] here, list[str]" in message
    assert "'restock': parameter 'count' type int here, str" in message


def test_a_schema_from_the_wire_is_compatible_with_itself() -> None:
    schema = schema_of(build(SOURCE))
    wire = json.loads(json.dumps(schema.json_schema()))
    # Key order on the wire does not matter.
    shuffled = dict(reversed(list(wire.items())))
    shuffled["operations"] = dict(reversed(list(wire["operations"].items())))
    schema.check_compatible(shuffled)


def test_a_newer_schema_format_is_a_mismatch() -> None:
    schema = schema_of(build(SOURCE))
    doc = schema.json_schema()
    doc["format"] = 2
    with pytest.raises(SchemaMismatchError, match="schema format 1 here, 2 on the remote"):
        schema.check_compatible(doc)


@pytest.mark.parametrize(
    "doc",
    [{}, {"format": 1}, {"format": 1, "operations": {"x": {"kind": "command"}}}, {"operations": 3}],
    ids=repr,
)
def test_a_malformed_remote_schema_is_a_mismatch(doc: dict[str, Any]) -> None:
    with pytest.raises(SchemaMismatchError, match="remote schema for Inventory is malformed"):
        schema_of(build(SOURCE)).check_compatible(doc)


def test_canonical_json_is_independent_of_key_order() -> None:
    assert canonical_json({"b": 1, "a": [{"d": 2, "c": 3}]}) == '{"a":[{"c":3,"d":2}],"b":1}'
    assert canonical_json({"a": [{"c": 3, "d": 2}], "b": 1}) == '{"a":[{"c":3,"d":2}],"b":1}'


def test_property_names_called_title_or_description_are_kept() -> None:
    # Documentation keywords are dropped for the fingerprint, but a field that happens
    # to be called "title" is data: renaming it must change the fingerprint.
    base = SOURCE.replace("    sku: str\n    count: int\n", "    title: str\n    count: int\n")
    renamed = base.replace("    title: str\n", "    heading: str\n")
    assert schema_of(build(base)).fingerprint() != schema_of(build(renamed)).fingerprint()
    assert isinstance(schema_of(build(base)), ObjectSchema)


@pytest.mark.parametrize(
    ("hint", "spelling"),
    [
        (int, "int"),
        (Any, "Any"),
        (None, "None"),
        (Optional[int], "None | int"),  # noqa: UP045 - the spelling under test
        (int | None, "None | int"),
        (Union[str, int], "int | str"),  # noqa: UP007
        (List[int], "list[int]"),  # noqa: UP006
        (tuple[int, ...], "tuple[int, ...]"),
        (tuple[()], "tuple[()]"),
        (dict[int, str], "dict[int, str]"),
        (Annotated[int, "meta"], "int"),
        (Literal["b", "a"], "Literal['a', 'b']"),
        (datetime.datetime, "datetime"),
    ],
    ids=repr,
)
def test_type_names_are_canonical(hint: Any, spelling: str) -> None:
    assert type_name(hint) == spelling


@pytest.mark.parametrize(
    ("hint", "value"),
    [
        (str | None, "abc"),
        (str | None, None),
        (Optional[int], 2**70),  # noqa: UP045
        (int | str, "5"),
        (int | str, 5),
        (bool | None, True),
    ],
    ids=repr,
)
def test_a_union_of_plain_json_types_passes_its_values_as_pydantic_would(
    hint: Any, value: Any
) -> None:
    codec = TypeCodec.of(hint)
    assert type(value) in codec.plain  # taken as it is, without pydantic
    via_pydantic = codec.adapter.validate_json(json.dumps([value]))[0]
    assert codec.load(value, "v") == via_pydantic and type(via_pydantic) is type(value)
    assert codec.dump(value, "v") == value
    assert codec.validate_python(value, "v") == value


@pytest.mark.parametrize(
    ("hint", "value"),
    [(str | None, 5), (int | None, True), (int | None, 1.5), (int | str, None)],
    ids=repr,
)
def test_a_union_of_plain_json_types_still_refuses_other_values(hint: Any, value: Any) -> None:
    with pytest.raises(ValidationError):
        TypeCodec.of(hint).validate_python(value, "v")


def test_a_union_with_a_constrained_member_goes_through_pydantic() -> None:
    codec = TypeCodec.of(Annotated[str, pydantic.StringConstraints(max_length=2)] | None)
    assert not codec.plain
    with pytest.raises(ValidationError):
        codec.load("abc", "v")
