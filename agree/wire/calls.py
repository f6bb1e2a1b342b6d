"""The JSON-level shape of a client call and its outcome, as it crosses a seam: from a proxy to
its node, forwarded between nodes, and (later) over HTTP.  Arguments and results are JSON-shaped
values checked against the operation schema; nothing here is ever unpickled."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from agree.errors import ValidationError
from agree.objects.replicated import Consistency
from agree.wire.codec import ErrorInfo


class CallKind(enum.Enum):
    COMMAND = "command"
    QUERY = "query"


@dataclass(slots=True)
class Call:
    """One call of a replicated object's operation.

    Commands carry ``(client_id, seq)`` so that a retried command applies at most once (Raft
    dissertation §6.3); ``ack`` is the highest sequence number whose outcome the client has
    already received, which lets replicas forget the results they keep for retries.

    Not frozen: every call makes one, and a frozen dataclass's ``__init__`` sets each of its
    nine fields through ``object.__setattr__`` (several times the cost).  Nothing assigns to a
    call after it is made.
    """

    object: str
    method: str
    kind: CallKind
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    consistency: Consistency | None = None  # queries only; None: the method's default
    client_id: str = ""
    seq: int = 0
    ack: int = 0


@dataclass(slots=True)
class Outcome:
    """The JSON-shaped result of a call, or the error it raised (a user's error keeps its type).

    Not frozen: every replica makes one per applied command, and a frozen dataclass's
    ``__init__`` sets each field through ``object.__setattr__`` (several times the cost).
    Nothing assigns to an outcome after it is made.  The session table keeps outcomes, so
    snapshots hold them: they pickle as a frozen one did, their field values in order."""

    result: Any = None
    error: ErrorInfo | None = None
    index: int = 0  # the log index a command applied at, or the index a read was served at

    def __getstate__(self) -> list[Any]:
        return [self.result, self.error, self.index]

    def __setstate__(self, state: list[Any]) -> None:
        self.result, self.error, self.index = state


def check_timeout(timeout: object) -> float | None:
    """``timeout`` as seconds, or None for the default; ValidationError unless it is a finite
    number greater than 0 (NaN would never expire, and a bool is a mistake)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise ValidationError(
            f"timeout must be a number of seconds greater than 0, or None for the default;"
            f" got {type(timeout).__name__} {timeout!r}"
        )
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValidationError(
            f"timeout must be a finite number of seconds greater than 0, or None for the"
            f" default; got {timeout!r}"
        )
    return float(timeout)
