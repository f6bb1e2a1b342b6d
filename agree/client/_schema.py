"""Operation schemas rebuilt from the server's published JSON (``GET /v1/schema``).

Without the user's class a client still knows every operation: its kind, its parameters (names,
order, keyword-only, required), and a query's default consistency, so a misspelt method or a
wrong argument count fails on the client before any request.  Types are checked by the server
(the client has no Python type hints to check them with); values travel in their JSON form and
results come back as JSON values.  With the class, the client uses the class's own schema (typed
results) after checking that it matches the server's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agree.errors import ProtocolError
from agree.objects.replicated import Consistency
from agree.objects.schema import MISSING, ObjectSchema, Operation, Param, TypeCodec

_ANY = TypeCodec.of(Any)


def schema_from_json(name: str, document: Mapping[str, Any]) -> ObjectSchema:
    """An ObjectSchema with untyped (``Any``) parameters, from one object's published schema."""
    try:
        qualname = str(document.get("class") or name)
        operations = []
        for op_name, entry in document["operations"].items():
            params = tuple(
                Param(
                    p["name"],
                    p["kind"],
                    Any,
                    MISSING if p["required"] else p.get("default"),
                    _ANY,
                )
                for p in entry["params"]
            )
            consistency = entry.get("consistency")
            operations.append(
                Operation(
                    name=op_name,
                    kind=entry["kind"],
                    attr=op_name,
                    params=params,
                    returns=Any,
                    consistency=None if consistency is None else Consistency(consistency),
                    result_codec=_ANY,
                    qualname=f"{qualname}.{op_name}",
                    doc=entry.get("doc"),
                )
            )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"the server's schema of {name!r} is malformed: {exc!r}") from None
    return ObjectSchema.from_operations(qualname, operations)
