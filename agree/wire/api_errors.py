"""Errors as the HTTP API carries them: ``{"error": {"type", "message", ...attributes}}``.

Both ends use this module: the server (:mod:`agree.server`) to answer, the client
(:mod:`agree.client`) to raise.  It imports neither the runtime nor storage.

* ``type`` is stable: a framework error's wire code from :mod:`agree.errors` (``"not_leader"``,
  ``"validation"``, ``"outcome_unknown"``...), ``"application"`` for an exception raised by the
  user's own method, ``"internal"`` for a failure inside the server (its details only logged).
* Beside the message, the error's plain attributes (``leader_id``, ``leader_url``, ``setting``,
  ``last_index``, ``required``...) are there for a person or a script to read, and its exact
  wire form (``class``/``exception``, ``args``, ``attrs`` from
  :func:`agree.wire.codec.encode_error`) lets a client rebuild it as the same class with the same
  fields (:func:`agree.wire.codec.decode_error`: a user's exception keeps its own type).  Nothing is
  unpickled, nothing is imported.
* :func:`http_status` says whose fault it was: 4xx the caller's, 503 the cluster cannot serve
  now (with the leader's URL or a Retry-After), 504 a deadline passed.
"""

from __future__ import annotations

from typing import Any, Final

from agree import errors
from agree.errors import AgreeError, ProtocolError, error_class
from agree.wire.codec import ErrorInfo, decode_error, encode_error

__all__ = [
    "APPLICATION",
    "INTERNAL",
    "application_info",
    "decode",
    "encode",
    "encode_application",
    "http_status",
]

#: The ``type`` of an exception raised by the user's own method.
APPLICATION: Final = "application"
#: The ``type`` of an unexpected failure inside the server.
INTERNAL: Final = "internal"

# Keys of the error object that an attribute of the same name must not overwrite.
_RESERVED: Final = frozenset({"type", "message", "class", "exception", "args", "attrs", "index"})

# Most specific first: the first class the error is an instance of decides the status.
_STATUS: Final[tuple[tuple[type[BaseException], int], ...]] = (
    (errors.UnknownObjectError, 404),
    (errors.UnknownMethodError, 404),
    (errors.ValidationError, 400),
    (errors.ConfigurationError, 400),
    (errors.ProtocolError, 400),
    (errors.PermissionDeniedError, 403),
    (errors.AuthenticationError, 401),
    (errors.SubscriptionOverflowError, 410),
    (errors.MembershipChangeError, 409),
    (errors.ProposalRejectedError, 409),
    (errors.NotLeaderError, 503),
    (errors.ClusterError, 503),
    (errors.SchemaMismatchError, 503),
    (errors.AgreeTimeoutError, 504),
)


def http_status(exc: BaseException) -> int:
    """The HTTP status that answers ``exc`` (500 for anything not listed: the server's fault)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def _plain_attributes(info: ErrorInfo, exc: BaseException | None) -> dict[str, Any]:
    source = vars(exc) if exc is not None else {}
    return {
        name: value
        for name, value in source.items()
        if name not in _RESERVED
        and not name.startswith("_")
        and (value is None or isinstance(value, str | int | float | bool))
    }


def encode(exc: BaseException) -> dict[str, Any]:
    """The ``{"error": {...}}`` body for a framework error (or, as ``internal``, any other)."""
    if not isinstance(exc, AgreeError):
        return {"error": {"type": INTERNAL, "message": "internal server error"}}
    info = encode_error(exc)
    body: dict[str, Any] = {"type": info.code or errors.AgreeError.code, "message": info.message}
    body.update(_plain_attributes(info, exc))
    body.update({"class": info.type, "args": info.args, "attrs": info.attrs})
    return {"error": body}


def encode_application(info: ErrorInfo, index: int = 0) -> dict[str, Any]:
    """The ``{"error": {...}}`` body for the error outcome of a call that ran: what the user's
    method raised (or, with its ``code``, e.g. a ResultValidationError about its result)."""
    body: dict[str, Any] = {
        "type": APPLICATION,
        "message": info.message,
        "exception": info.type,
        "args": info.args,
        "attrs": info.attrs,
        "index": index,
    }
    if info.code is not None:
        body["code"] = info.code
    return {"error": body}


def application_info(error: dict[str, Any]) -> ErrorInfo:
    """The ErrorInfo inside an ``application`` error (ProtocolError if it is malformed)."""
    return ErrorInfo.from_json(
        {
            "type": error.get("exception"),
            "message": error.get("message"),
            "args": error.get("args"),
            "attrs": error.get("attrs") or {},
            "code": error.get("code"),
        }
    )


def decode(body: Any, status: int) -> BaseException:
    """The exception an error response stands for.

    A framework error comes back as its class (by its wire code) with its args and attributes;
    an ``application`` error as the user's own exception type where its module is loaded here;
    anything else (a proxy's HTML page, a code from a newer server) as ProtocolError or the
    class the HTTP status implies.
    """
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("type"), str):
        return ProtocolError(f"the server answered HTTP {status} without an agree error body")
    kind: str = error["type"]
    message = error.get("message")
    message = message if isinstance(message, str) else f"HTTP {status}"
    if kind == APPLICATION:
        return decode_error(application_info(error))
    cls = error_class(kind)
    if cls is not None:
        try:
            info = ErrorInfo.from_json(
                {
                    "type": error.get("class") or f"agree.errors:{cls.__qualname__}",
                    "code": kind,
                    "message": message,
                    "args": error.get("args"),
                    "attrs": error.get("attrs") or {},
                }
            )
        except ProtocolError:
            info = None
        if info is not None:
            rebuilt = decode_error(info)
            if isinstance(rebuilt, cls):
                return rebuilt
    else:
        cls = _by_status(status)
    # Not rebuildable exactly (a hand-written body, another version): the class and message,
    # with whatever plain attributes came along.
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    for name, value in error.items():
        if name not in _RESERVED and isinstance(name, str) and name.isidentifier():
            setattr(exc, name, value)
    return exc


def _by_status(status: int) -> type[AgreeError]:
    if status in (401, 403):
        return errors.AuthenticationError
    if status == 503:
        return errors.UnavailableError
    if status == 504:
        return errors.AgreeTimeoutError
    if 400 <= status < 500:
        return errors.ValidationError
    return errors.AgreeError
