"""Errors as the HTTP API carries them: ``{"error": {"type", "message", ...attributes}}``.

Both ends use this module: the server (:mod:`agree.server`) to answer, the client
(:mod:`agree.client`) to raise.  It imports only :mod:`agree.errors` and :mod:`agree.codec`, so a
client loads no runtime or storage.

* A framework error travels under its class name in :mod:`agree.errors` (the stable ``type``:
  class names are public API), with its attributes (``leader_id``, ``leader_url``, ``setting``,
  ``last_index``, ``required``...) beside the message, and comes back as the same class.
* An exception raised by the user's method travels as ``type: "ApplicationError"`` with the
  exception's ``"module:qualname"`` and JSON args, and is rebuilt by
  :func:`agree.codec.decode_error` (its own type where its module is loaded, else RemoteError).
  Nothing is ever unpickled.
* :func:`http_status` says whose fault it was: 4xx the caller's, 503 the cluster cannot serve now
  (with the leader's URL or a Retry-After), 504 a deadline passed.
"""

from __future__ import annotations

from typing import Any, Final

from agree import errors
from agree.codec import ErrorInfo, decode_error
from agree.errors import AgreeError, ProtocolError

__all__ = [
    "APPLICATION_ERROR",
    "ATTRIBUTES",
    "decode",
    "encode",
    "encode_application",
    "http_status",
]

#: The ``type`` of an exception raised by the user's own method.
APPLICATION_ERROR: Final = "ApplicationError"
#: Also a ``type``: an unexpected failure inside the server (its details are only logged).
INTERNAL_ERROR: Final = "InternalError"

#: Attributes of AgreeError subclasses that travel beside the message (all JSON values).
ATTRIBUTES: Final = (
    "setting",
    "leader_id",
    "leader_url",
    "last_index",
    "required",
    "type_name",
    "limit",
)

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
    (errors.UnavailableError, 503),
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


def encode(exc: BaseException) -> dict[str, Any]:
    """The ``{"error": {...}}`` body for a framework error (or, as InternalError, any other)."""
    if not isinstance(exc, AgreeError):
        # Details of a bug in the server stay in its log, not in a response.
        return {"error": {"type": INTERNAL_ERROR, "message": "internal server error"}}
    body: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    for name in ATTRIBUTES:
        value = getattr(exc, name, None)
        if value is not None and isinstance(value, str | int):
            body[name] = value
    return {"error": body}


def encode_application(info: ErrorInfo, index: int = 0) -> dict[str, Any]:
    """The ``{"error": {...}}`` body for an exception the user's method raised."""
    return {
        "error": {
            "type": APPLICATION_ERROR,
            "message": info.message,
            "exception": info.type,
            "args": info.args,
            "index": index,
        }
    }


def application_info(error: dict[str, Any]) -> ErrorInfo:
    """The ErrorInfo inside an ApplicationError body (ProtocolError if it is malformed)."""
    return ErrorInfo.from_json(
        {"type": error.get("exception"), "message": error.get("message"), "args": error.get("args")}
    )


def decode(body: Any, status: int) -> BaseException:
    """The exception an error response stands for.

    An ``AgreeError`` subclass named by ``type`` comes back as that class with its attributes;
    an ApplicationError as the user's own exception type; anything else (a proxy's HTML page, an
    unknown type from a newer server) as ProtocolError or the nearest known class.
    """
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("type"), str):
        return ProtocolError(f"the server answered HTTP {status} without an agree error body")
    kind: str = error["type"]
    message = error.get("message")
    message = message if isinstance(message, str) else f"HTTP {status}"
    if kind == APPLICATION_ERROR:
        return decode_error(application_info(error))
    cls = getattr(errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, AgreeError)):
        # A type this client does not know: keep the message, pick the class by the status.
        cls = _by_status(status)
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    for name in ATTRIBUTES:
        if name in error:
            setattr(exc, name, error[name])
    # Constructor-set attributes the body did not carry still exist (as None).
    for name in ("leader_id", "leader_url") if isinstance(exc, errors.NotLeaderError) else ():
        if not hasattr(exc, name):
            setattr(exc, name, None)
    if isinstance(exc, errors.ConfigurationError) and not hasattr(exc, "setting"):
        exc.setting = None
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
