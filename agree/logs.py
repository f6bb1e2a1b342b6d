"""Structured logs on the standard :mod:`logging` module: binding fields to lines, and the two
output formats (``LOG_FORMAT = "console"`` or ``"json"``).

Every record of the ``agree`` loggers can carry the fields in :data:`FIELDS` (node, group, term,
index, object, method) plus any ``extra=``.  They are bound, never repeated at call sites:

- :func:`get_logger` returns a :class:`BoundLogger` (a :class:`logging.LoggerAdapter`) holding
  fields; a field may be a zero-argument callable read when the line is logged, so that a
  node's logger always reports the current term.  ``logger.bind(index=7)`` adds fields.
- :func:`bind` binds fields in a :mod:`contextvars` context for a block (or, through
  :func:`bound_context`, for every task created in that context), so that lines logged by code
  that knows nothing of the node (the host applying an entry, a subscription) carry it too.

Later sources win: the handler's defaults (the node :func:`configure` was given) < the context
< the adapter's fields < the call's ``extra``.

:func:`configure` is the only function that installs a handler, and only on the ``agree``
logger, never on the root logger: ``runnode`` calls it; a program embedding a node calls it only
if it wants agree's own output (otherwise the records go wherever the program's logging sends
them).  The handler's filter masks the cluster secret and every client token wherever they
appear in a line, as a second line of defence: no call site logs them.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from agree.conf.settings import Settings

__all__ = [
    "FIELDS",
    "BoundLogger",
    "bind",
    "bound_context",
    "configure",
    "get_logger",
]

LogFormat = Literal["console", "json"]

#: The bound fields every JSON line carries (null when not known), in this order.
FIELDS: Final = ("node", "group", "term", "index", "object", "method")

#: The record attribute that holds a line's bound fields and extras.
_ATTR: Final = "agree_fields"

_REDACTED: Final = "[redacted]"

# The record attributes logging itself sets; anything else on a record came from ``extra=``.
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", _ATTR}
)

_context: contextvars.ContextVar[Mapping[str, object]] = contextvars.ContextVar(
    "agree_log_fields", default=types.MappingProxyType({})
)


def _resolve(fields: Mapping[str, object]) -> dict[str, object]:
    """The fields with every callable replaced by what it returns now."""
    out: dict[str, object] = {}
    for key, value in fields.items():
        if callable(value):
            try:
                value = value()
            except Exception:  # a field must never stop a line from being logged
                value = None
        out[key] = value
    return out


@contextlib.contextmanager
def bind(**fields: object) -> Iterator[None]:
    """Bind ``fields`` to every agree line logged in this block (and in tasks it creates)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def bound_context(**fields: object) -> contextvars.Context:
    """A copy of the current context with ``fields`` bound: pass it as ``create_task(...,
    context=...)`` so that every line the task logs carries them, without changing the
    caller's own context."""
    ctx = contextvars.copy_context()
    ctx.run(_context.set, {**_context.get(), **fields})
    return ctx


class BoundLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger with bound fields; see the module docstring for the order sources win in."""

    def __init__(self, logger: logging.Logger, fields: Mapping[str, object]) -> None:
        super().__init__(logger, dict(fields))
        self.fields: Mapping[str, object] = dict(fields)

    def bind(self, **fields: object) -> BoundLogger:
        """A logger with ``fields`` added to (or replacing) this one's."""
        return BoundLogger(self.logger, {**self.fields, **fields})

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = kwargs.get("extra") or {}
        merged = {**_context.get(), **self.fields, **extra}
        kwargs["extra"] = {_ATTR: _resolve(merged)}
        return msg, kwargs


def get_logger(name: str, **fields: object) -> BoundLogger:
    """The logger ``name`` (under ``agree``) with ``fields`` bound."""
    return BoundLogger(logging.getLogger(name), fields)


def fields_of(record: logging.LogRecord) -> dict[str, object]:
    """The bound fields and extras of ``record``: bound by an adapter, else by the context the
    line was logged in (a plain :func:`logging.getLogger` call), plus any ``extra=``."""
    fields = getattr(record, _ATTR, None)
    if not isinstance(fields, dict):
        fields = _resolve(_context.get())
    extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
    return {**fields, **extras}


class _Redact(logging.Filter):
    """Masks the secrets in a record's message and fields (the record is rewritten in place,
    so that every formatter sees the masked text)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so that a secret containing another is masked whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def _mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, _REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self._mask(message), None
        if record.exc_text:
            record.exc_text = self._mask(record.exc_text)
        fields = getattr(record, _ATTR, None)
        if isinstance(fields, dict):
            setattr(
                record,
                _ATTR,
                {k: self._mask(v) if isinstance(v, str) else v for k, v in fields.items()},
            )
        return True


class _Formatter(logging.Formatter):
    def __init__(self, defaults: Mapping[str, object]) -> None:
        super().__init__()
        self.defaults = dict(defaults)

    def fields(self, record: logging.LogRecord) -> dict[str, object]:
        fields = {**self.defaults, **fields_of(record)}
        return {k: v for k, v in fields.items() if v is not None}

    def exception_text(self, record: logging.LogRecord) -> str | None:
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        return record.exc_text or None


class JsonFormatter(_Formatter):
    """One JSON object per line: ts, level, logger, msg, then :data:`FIELDS` (null when not
    bound), then extras, then ``exc`` when an exception was logged."""

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields(record)
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in FIELDS:
            line[key] = fields.pop(key, None)
        for key, value in fields.items():
            line.setdefault(key, value)
        exc = self.exception_text(record)
        if exc:
            line["exc"] = exc
        return json.dumps(line, default=str, ensure_ascii=False)


class ConsoleFormatter(_Formatter):
    """``time LEVEL logger [node=n1 term=3 ...] message`` for a human at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields(record)
        ordered = [k for k in FIELDS if k in fields] + [k for k in fields if k not in FIELDS]
        bound = " ".join(f"{k}={fields[k]}" for k in ordered)
        ts = datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")
        line = f"{ts},{int(record.msecs):03d} {record.levelname} {record.name}"
        if bound:
            line += f" [{bound}]"
        line += f": {record.getMessage()}"
        exc = self.exception_text(record)
        return f"{line}\n{exc}" if exc else line


_FORMATTERS: Final[Mapping[str, Callable[[Mapping[str, object]], _Formatter]]] = {
    "console": ConsoleFormatter,
    "json": JsonFormatter,
}


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure` installs (recognised, so that configuring again replaces
    it instead of doubling every line)."""


def configure(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Send the ``agree`` loggers' records to ``stream`` (stderr by default) in
    ``settings.LOG_FORMAT`` at ``settings.LOG_LEVEL``, every line bound with the node's id and
    group; the cluster secret and the tokens are masked.  Leaves the root logger alone.
    Returns the handler installed (replacing one a previous call installed)."""
    from agree.storage.base import DEFAULT_GROUP

    logger = logging.getLogger("agree")
    for old in [h for h in logger.handlers if isinstance(h, _Handler)]:
        logger.removeHandler(old)
        old.close()
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(
        _FORMATTERS[settings.LOG_FORMAT]({"node": settings.NODE_ID, "group": DEFAULT_GROUP})
    )
    secrets = [*settings.TOKENS]
    if settings.CLUSTER_SECRET:
        secrets.append(settings.CLUSTER_SECRET)
    handler.addFilter(_Redact(secrets))
    logger.addHandler(handler)
    logger.setLevel(settings.LOG_LEVEL)
    logger.propagate = False
    return handler
