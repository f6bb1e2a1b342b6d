"""``Mutation``: the record of one applied command, as subscribers receive it.

A mutation says which object and method, with which arguments, what the command
returned or raised, and where it sits in the log (index, term, leader-stamped
time).  Its JSON form is what the HTTP watch stream carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agree.errors import ProtocolError, ValidationError
from agree.objects import values
from agree.wire.codec import ErrorInfo, decode_error, encode_error

if TYPE_CHECKING:
    from agree.objects.schema import Operation

__all__ = ["Mutation"]


def _jsonable(value: Any, where: str) -> Any:
    """The self-describing form when no operation schema is at hand (see Mutation.to_json)."""
    try:
        return values.encode(value, where)
    except TypeError as exc:
        raise ValidationError(str(exc)) from None


def _unjson(value: Any, where: str) -> Any:
    try:
        return values.decode(value)
    except ValueError as exc:
        raise ProtocolError(f"malformed mutation record: {where}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Mutation:
    """One applied command.  ``error`` is set (and ``result`` None) when the command raised."""

    object: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any
    error: BaseException | None
    index: int
    term: int
    #: Leader-stamped, timezone-aware (UTC).
    timestamp: datetime

    def to_json(self, operation: Operation | None = None) -> dict[str, Any]:
        """A JSON-able dict.

        With the command's ``operation`` the arguments and result are converted by
        its schema; without it they travel in the self-describing form of
        :mod:`agree.objects.values`.  Either way :meth:`from_json` given the same
        ``operation`` (or None) restores them exactly, types included.
        """
        if operation is not None:
            args, kwargs = operation.dump_args(self.args, self.kwargs)
            result = None if self.error is not None else operation.dump_result(self.result)
        else:
            args = [_jsonable(a, f"args[{i}]") for i, a in enumerate(self.args)]
            kwargs = {k: _jsonable(v, f"kwargs[{k!r}]") for k, v in self.kwargs.items()}
            result = _jsonable(self.result, "result")
        return {
            "object": self.object,
            "method": self.method,
            "args": args,
            "kwargs": kwargs,
            "result": result,
            "error": None if self.error is None else encode_error(self.error).to_json(),
            "index": self.index,
            "term": self.term,
            "timestamp": self.timestamp.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], operation: Operation | None = None) -> Mutation:
        """The Mutation in ``data`` (from :meth:`to_json`); ProtocolError on a malformed record.

        A recorded error comes back as its own exception type where possible
        (see :func:`agree.wire.codec.decode_error`).
        """
        if not isinstance(data, Mapping):
            raise ProtocolError(f"a mutation must be a JSON object, got {type(data).__name__}")
        try:
            obj, method = data["object"], data["method"]
            raw_args, raw_kwargs, raw_result = data["args"], data["kwargs"], data.get("result")
            raw_error, index, term = data.get("error"), data["index"], data["term"]
            timestamp = datetime.fromisoformat(data["timestamp"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"malformed mutation record: {exc!r}") from None
        if not (
            isinstance(obj, str)
            and isinstance(method, str)
            and isinstance(raw_args, list)
            and isinstance(raw_kwargs, dict)
            and isinstance(index, int)
            and isinstance(term, int)
            and timestamp.tzinfo is not None
        ):
            raise ProtocolError(f"malformed mutation record: {dict(data)!r}")
        error = None if raw_error is None else decode_error(ErrorInfo.from_json(raw_error))
        if operation is not None:
            bound = operation.bind_json(raw_args, raw_kwargs)
            args, kwargs = bound.args, dict(bound.kwargs)
            result = None if error is not None else operation.load_result(raw_result)
        else:
            args = tuple(_unjson(a, "args") for a in raw_args)
            kwargs = {k: _unjson(v, "kwargs") for k, v in raw_kwargs.items()}
            result = None if error is not None else _unjson(raw_result, "result")
        return cls(obj, method, args, kwargs, result, error, index, term, timestamp)
