"""Declaring replicated objects: ``Replicated``, ``@command``, ``@query`` and the command context.

This module owns what a user writes: the base class, the two decorators that mark
operations, the three consistency levels, and the per-command context
(log index, term, leader-stamped time).  The decorators only *mark* a function —
it stays an ordinary method that can be called locally — and the schema of a
class (:mod:`agree.objects.schema`) is built from those marks when the class is created,
so every declaration error surfaces at import time, never after a commit.

The command context lives in a :class:`contextvars.ContextVar`, not on the
instance: it is therefore never pickled into a snapshot and never leaks from one
object (or one asyncio task) to another.
"""

from __future__ import annotations

import contextvars
import enum
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, TypeVar, overload

from agree.errors import ConfigurationError, ContextUnavailableError

if TYPE_CHECKING:
    from agree.objects.schema import ObjectSchema

__all__ = [
    "RESERVED_NAMES",
    "CommandContext",
    "Consistency",
    "OperationMark",
    "Replicated",
    "applying",
    "check_operation_name",
    "command",
    "create_initial",
    "current_context",
    "operation_mark",
    "query",
]

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R", bound="Replicated")

#: Names an operation may not take: ``Replicated``'s own ``context`` and the
#: attributes of a proxy handle (its generic verbs ``mutate``/``read``, per-call
#: ``options``, ``subscribe``, ``read_lock``, ``close``, and ``name``/``schema``/
#: ``node``), which an operation of the same name would be shadowed by.
RESERVED_NAMES: Final = frozenset(
    {
        "close",
        "context",
        "mutate",
        "name",
        "node",
        "options",
        "read",
        "read_lock",
        "schema",
        "subscribe",
    }
)

_MARK_ATTRIBUTE: Final = "__agree_operation__"


class Consistency(enum.StrEnum):
    """How fresh a query's answer must be (the same three levels as go-agree)."""

    #: Served from the local copy; may be stale.
    ANY = "any"
    #: Served by the node that believes it leads, without confirming it.
    LEADER = "leader"
    #: ReadIndex (Raft paper §8, Ongaro's dissertation §6.4): leadership confirmed
    #: by a quorum and the state applied up to the read index before answering.
    LINEARIZABLE = "linearizable"


@dataclass(frozen=True, slots=True)
class OperationMark:
    """What ``@command``/``@query`` record on a function; read when the class is created."""

    kind: Literal["command", "query"]
    #: The operation's public name, or None to use the function's own name.
    name: str | None
    #: The default consistency of a query; None for commands.
    consistency: Consistency | None


def operation_mark(obj: object) -> OperationMark | None:
    """The mark ``@command``/``@query`` left on ``obj``, if any.

    Reads the function's ``__dict__`` directly so that arbitrary class attributes
    (descriptors, proxies with ``__getattr__``) are never asked for an attribute.
    """
    if not inspect.isfunction(obj):
        return None
    mark = obj.__dict__.get(_MARK_ATTRIBUTE)
    return mark if isinstance(mark, OperationMark) else None


def _mark(fn: object, mark: OperationMark, decorator: str) -> None:
    if isinstance(fn, (staticmethod, classmethod, property)):
        raise TypeError(
            f"@{decorator} must decorate a plain method (def name(self, ...)), "
            f"not a {type(fn).__name__}"
        )
    if not inspect.isfunction(fn):
        raise TypeError(
            f"@{decorator} must decorate a function defined with def, got {fn!r}; "
            f"to rename an operation write @{decorator}(name=...)"
        )
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(
            f"@{decorator} cannot decorate the coroutine function {fn.__qualname__}: "
            "operations run synchronously inside the state machine"
        )
    if inspect.isgeneratorfunction(fn):
        raise TypeError(
            f"@{decorator} cannot decorate the generator function {fn.__qualname__}: "
            "its result would be a generator, which cannot cross the network"
        )
    existing = operation_mark(fn)
    if existing is not None:
        raise TypeError(f"{fn.__qualname__} is already marked @{existing.kind}")
    setattr(fn, _MARK_ATTRIBUTE, mark)


def check_operation_name(name: object, where: str) -> None:
    """Raise TypeError unless ``name`` may name an operation (an identifier, public, unreserved)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"{where}: operation name {name!r} is not a Python identifier")
    if name.startswith("_"):
        raise TypeError(f"{where}: operation name {name!r} may not start with an underscore")
    if name in RESERVED_NAMES:
        raise TypeError(
            f"{where}: operation name {name!r} is reserved "
            f"(reserved: {', '.join(sorted(RESERVED_NAMES))})"
        )


@overload
def command(fn: F, /) -> F: ...
@overload
def command(fn: None = None, /, *, name: str | None = None) -> Callable[[F], F]: ...
def command(fn: Any = None, /, *, name: str | None = None) -> Any:
    """Mark a method as a command: replicated through the log and applied on every node.

    Usable bare (``@command``) or called (``@command(name="incr")``).  The method
    itself is returned unchanged.
    """
    if name is not None:
        check_operation_name(name, "@command(name=...)")
    mark = OperationMark(kind="command", name=name, consistency=None)

    def decorate(func: F) -> F:
        _mark(func, mark, "command")
        return func

    return decorate if fn is None else decorate(fn)


@overload
def query(fn: F, /) -> F: ...
@overload
def query(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    consistency: Consistency = Consistency.LINEARIZABLE,
) -> Callable[[F], F]: ...
def query(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    consistency: Consistency = Consistency.LINEARIZABLE,
) -> Any:
    """Mark a method as a query: a read served at ``consistency`` unless the caller says otherwise.

    Usable bare (``@query``) or called (``@query(consistency=Consistency.ANY)``).
    The method itself is returned unchanged.
    """
    try:
        level = Consistency(consistency)
    except ValueError:
        raise TypeError(
            f"@query(consistency={consistency!r}): expected one of "
            f"{', '.join(repr(c.value) for c in Consistency)}"
        ) from None
    if name is not None:
        check_operation_name(name, "@query(name=...)")
    mark = OperationMark(kind="query", name=name, consistency=level)

    def decorate(func: F) -> F:
        _mark(func, mark, "query")
        return func

    return decorate if fn is None else decorate(fn)


@dataclass(frozen=True, slots=True)
class CommandContext:
    """Where a command sits in the log, visible to the command as ``self.context``.

    ``timestamp`` is stamped by the leader when it accepted the command, so every
    replica (and every replay) sees the same time: commands stay deterministic.
    """

    index: int
    term: int
    #: Timezone-aware, UTC.
    timestamp: datetime

    def __post_init__(self) -> None:
        if self.timestamp.tzinfo is None or self.timestamp.utcoffset() is None:
            raise ValueError("CommandContext.timestamp must be timezone-aware (UTC)")


_CURRENT_CONTEXT: contextvars.ContextVar[CommandContext | applying_at] = contextvars.ContextVar(
    "agree_command_context"
)


class applying:  # used as a function: ``with applying(ctx):``
    """Make ``ctx`` the current command context for the duration of the block.

    The host wraps each command application in this; nesting restores the outer
    context on exit.  (A class rather than a generator: it runs once per applied command.)
    """

    __slots__ = ("_ctx", "_token")

    def __init__(self, ctx: CommandContext) -> None:
        self._ctx = ctx

    def __enter__(self) -> CommandContext:
        self._token = _CURRENT_CONTEXT.set(self._ctx)
        return self._ctx

    def __exit__(self, *exc: object) -> None:
        _CURRENT_CONTEXT.reset(self._token)


class applying_at:  # used as a function: ``with applying_at(index, term, timestamp_ns):``
    """:class:`applying` for the host, which applies every command: the CommandContext (and its
    datetime) is only made if the command reads it, and most never do."""

    __slots__ = ("_context", "_index", "_term", "_timestamp_ns", "_token")

    def __init__(self, index: int, term: int, timestamp_ns: int) -> None:
        self._index = index
        self._term = term
        self._timestamp_ns = timestamp_ns
        self._context: CommandContext | None = None

    def __enter__(self) -> None:
        self._token = _CURRENT_CONTEXT.set(self)

    def __exit__(self, *exc: object) -> None:
        _CURRENT_CONTEXT.reset(self._token)

    def context(self) -> CommandContext:
        if self._context is None:
            timestamp = datetime.fromtimestamp(self._timestamp_ns / 1e9, UTC)
            self._context = CommandContext(index=self._index, term=self._term, timestamp=timestamp)
        return self._context


def current_context() -> CommandContext:
    """The context of the command being applied; ContextUnavailableError outside one."""
    try:
        ctx = _CURRENT_CONTEXT.get()
    except LookupError:
        raise ContextUnavailableError(
            "the command context (log index, term, timestamp) is only available while a "
            "@command is being applied; queries and local calls have none"
        ) from None
    return ctx.context() if isinstance(ctx, applying_at) else ctx


class Replicated:
    """Base class of replicated objects.

    Subclasses declare operations with ``@command`` and ``@query``; the operation
    schema is built when the subclass is created and stored as
    ``__agree_schema__``.  A subclass must be constructible with no arguments —
    that call produces the initial state on every node (see :func:`create_initial`).

    Snapshots keep an object's state, as pickle takes it (``__getstate__()``, by
    default the instance ``__dict__``), never its class: a restarted node rebuilds
    the object as the class it hosts under that name now, without calling
    ``__init__``, and hands it the state through ``__setstate__(state)`` when the
    class defines one (else the ``__dict__`` is updated).  When a new version of a
    class changes the shape of its state, ``__setstate__`` is where older state is
    upgraded, e.g. a new attribute given its default (see :mod:`agree.replica.host`).
    """

    __slots__ = ()

    __agree_schema__: ClassVar[ObjectSchema]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Imported here because agree.objects.schema builds on this module's marks and
        # Consistency; the schema is needed only once a subclass exists.
        from agree.objects.schema import build_schema

        cls.__agree_schema__ = build_schema(cls)

    @property
    def context(self) -> CommandContext:
        """The log index, term and leader timestamp of the command being applied.

        Raises ContextUnavailableError outside a command (in a query, or in a
        plain local call).
        """
        return current_context()


def describe_non_replicated(obj: object) -> str:
    """What ``obj`` is, for the message refusing it where a Replicated instance is needed."""
    if isinstance(obj, type):
        return f"the class {obj.__qualname__}"
    return f"an instance of {type(obj).__qualname__}"


def create_initial(cls: type[R]) -> R:
    """Instantiate ``cls`` with no arguments, the way a node creates the initial state.

    A class whose ``__init__`` requires arguments gets a ConfigurationError that
    names them instead of a bare TypeError from deep inside the host.
    """
    if not (isinstance(cls, type) and issubclass(cls, Replicated)):
        raise ConfigurationError(f"{cls!r} is not a subclass of agree.Replicated")
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        required = [
            p.name
            for p in signature.parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if required:
            raise ConfigurationError(
                f"{cls.__qualname__} must be constructible with no arguments (its initial "
                f"state), but __init__ requires: {', '.join(required)}; give them defaults"
            )
    return cls()
