"""The one error tree of agree.

Every error agree raises derives from :class:`AgreeError`; a user's own
exception raised inside a command or query keeps its own type and is never
wrapped in this tree.  This module imports only the standard library so that
the sans-I/O Raft core (:mod:`agree.raft`) can raise these errors too.

::

    AgreeError
    ├── ConfigurationError          a bad setting; names the setting and the fix
    ├── ValidationError             a call does not match the operation schema; nothing written
    │   ├── UnknownObjectError
    │   └── UnknownMethodError
    │       └── MethodNotFoundError  (also an AttributeError) a handle has no such operation
    ├── ResultValidationError       the method RAN (a command was applied at ``index``) but its
    │                               result does not match its declared type: do not retry
    ├── SchemaMismatchError         a node's schema is incompatible with the cluster's
    ├── ContextUnavailableError     self.context read outside a command (also a RuntimeError)
    ├── DeadlockError               a call would wait for its own thread (also a RuntimeError)
    ├── ClusterError                Raft-level refusals
    │   ├── NotLeaderError          carries the leader's id and address when known
    │   ├── UnavailableError        no quorum, node stopping, no leader known
    │   ├── ProposalRejectedError   refused while a transfer or membership change runs
    │   ├── ProposalLost            a proposal's log slot went to another entry; outcome unknown
    │   └── MembershipChangeError   an invalid or concurrent membership change
    ├── AgreeTimeoutError           (also a builtin TimeoutError)
    │   └── OutcomeUnknownError     a command may or may not have been applied
    ├── StorageError
    │   ├── CorruptionError         a checksum or structure check failed
    │   ├── IncompatibleVersionError a blob written by another codec/Python/cloudpickle
    │   ├── MigrationRequiredError  the database is not at the head revision
    │   └── StorageLockedError      another node process or handle holds the database
    ├── SubscriptionOverflowError   a subscriber fell too far behind and was cut off
    ├── ProtocolError               a malformed message from a peer or client
    ├── AuthenticationError         an unauthenticated peer or client
    │   └── PermissionDeniedError   a client whose token lacks the permission needed
    └── RemoteError                 a remote user exception whose type is not importable here

(``agree.management.CommandError``, raised by ``agree-manage`` commands, is an
AgreeError too; it lives with the commands, as Django's does.)

What a caller may conclude: a :class:`ValidationError` means nothing was
proposed, so the call can be fixed and made again; a
:class:`ResultValidationError` or :class:`OutcomeUnknownError` means the
command may have been (ResultValidationError: was) applied, so making it again
applies it again.

Wire form: each class in the tree has its own stable ``code``, which is how it
is named when it crosses a process boundary (``agree.wire.codec.encode_error``);
its args and attributes travel with it, so an error comes back as the same
class with the same fields.  A code never changes once released, whatever the
class is renamed to or wherever it moves.
"""

from __future__ import annotations

from typing import ClassVar

_BY_CODE: dict[str, type[AgreeError]] = {}


class AgreeError(Exception):
    """Root of every error agree raises."""

    #: The stable wire code of this class; every class in the tree declares its own.
    code: ClassVar[str] = "agree"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        code = cls.__dict__.get("code")
        if code is None:
            return  # e.g. a user's subclass: it travels by its type name
        taken = _BY_CODE.get(code)
        if taken is not None and taken is not cls:
            raise TypeError(
                f"error code {code!r} of {cls.__qualname__} is already {taken.__qualname__}'s"
            )
        _BY_CODE[code] = cls


def error_class(code: str) -> type[AgreeError] | None:
    """The class in the tree whose wire code is ``code`` (among those imported), else None."""
    return _BY_CODE.get(code)


_BY_CODE[AgreeError.code] = AgreeError


class ConfigurationError(AgreeError):
    """A setting is missing or invalid.  ``setting`` names it."""

    code = "configuration"

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class ValidationError(AgreeError):
    """A call does not match the operation schema.  Nothing was written."""

    code = "validation"


class UnknownObjectError(ValidationError):
    """No replicated object is hosted under that name."""

    code = "unknown_object"


class UnknownMethodError(ValidationError):
    """The object has no ``@command`` or ``@query`` of that name."""

    code = "unknown_method"


class ResultValidationError(AgreeError):
    """The method ran, but its return value does not match its declared return type.

    Not a :class:`ValidationError` (which means nothing was written): for a command
    (``applied``) the command *was* committed and applied at log ``index`` on every
    replica, so calling it again applies it again.  For a query ``applied`` is False and
    ``index`` is the index the read was served at.
    """

    code = "result_invalid"

    def __init__(self, message: str, *, index: int, applied: bool) -> None:
        super().__init__(message)
        self.index = index
        self.applied = applied


class MethodNotFoundError(UnknownMethodError, AttributeError):
    """A handle has no operation of that name: raised when the attribute is looked up on a
    proxy, so ``hasattr(handle, name)`` and ``getattr(handle, name, default)`` work, while
    ``except UnknownMethodError`` still catches it."""

    code = "method_not_found"


class SchemaMismatchError(AgreeError):
    """The local operation schema is incompatible with the cluster's."""

    code = "schema_mismatch"


class ContextUnavailableError(AgreeError, RuntimeError):
    """``Replicated.context`` was read outside the application of a command."""

    code = "context_unavailable"


class DeadlockError(AgreeError, RuntimeError):
    """A call would wait for something its own thread holds: a call on a handle from inside
    that handle's ``read_lock()`` (the node cannot apply or read until the block ends), or a
    synchronous call from the node's own event loop.  Raised at once instead of hanging."""

    code = "deadlock"


class ClusterError(AgreeError):
    """The cluster refused or could not carry out an operation."""

    code = "cluster"


class NotLeaderError(ClusterError):
    """This node is not the leader.  ``leader_id``/``leader_url`` name the leader if known."""

    code = "not_leader"

    def __init__(
        self,
        message: str = "this node is not the leader",
        *,
        leader_id: str | None = None,
        leader_url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.leader_id = leader_id
        self.leader_url = leader_url


class UnavailableError(ClusterError):
    """No quorum, no known leader, or the node is stopping."""

    code = "unavailable"


class ProposalRejectedError(ClusterError):
    """A proposal was refused, e.g. while leadership is being transferred."""

    code = "proposal_rejected"


class ProposalLost(ClusterError):
    """A proposal's log slot was taken by another leader's entry, or a snapshot jumped past it.

    The outcome is not known where this is raised; the node retries with the same
    (client id, seq), which the session table makes safe (Raft dissertation §6.3).
    """

    code = "proposal_lost"


class MembershipChangeError(ClusterError):
    """A membership change is invalid or another one is still in flight."""

    code = "membership_change"


class AgreeTimeoutError(AgreeError, TimeoutError):
    """An operation did not finish in time."""

    code = "timeout"


class OutcomeUnknownError(AgreeTimeoutError):
    """A command was proposed but its outcome is unknown: it may or may not apply."""

    code = "outcome_unknown"


class StorageError(AgreeError):
    """The log or snapshot store failed."""

    code = "storage"


class CorruptionError(StorageError):
    """Stored data failed its checksum or structure check."""

    code = "corruption"


class IncompatibleVersionError(StorageError):
    """A blob was written by an incompatible codec, Python or cloudpickle version."""

    code = "incompatible_version"


class MigrationRequiredError(StorageError):
    """The database schema is not at the head revision."""

    code = "migration_required"


class StorageLockedError(StorageError):
    """Another process, or another handle in this process, holds the exclusive claim on the
    database.  Names the holder as far as it recorded itself: its node id, process id, host and
    since when (ISO 8601, UTC); a field it did not record is None."""

    code = "storage_locked"

    def __init__(
        self,
        message: str,
        *,
        node_id: str | None = None,
        pid: int | None = None,
        host: str | None = None,
        since: str | None = None,
    ) -> None:
        super().__init__(message)
        self.node_id = node_id
        self.pid = pid
        self.host = host
        self.since = since


class SubscriptionOverflowError(AgreeError):
    """A subscriber fell behind by more than its queue holds and was cut off.

    ``last_index`` is the index of the last mutation it received: resume from ``last_index + 1``.
    """

    code = "subscription_overflow"

    def __init__(self, message: str, *, last_index: int) -> None:
        super().__init__(message)
        self.last_index = last_index


class ProtocolError(AgreeError):
    """A peer or client sent a malformed or unexpected message."""

    code = "protocol"


class AuthenticationError(AgreeError):
    """A peer or client could not be authenticated."""

    code = "authentication"


class PermissionDeniedError(AuthenticationError):
    """A client's token is valid but lacks ``required`` (``read``, ``write`` or ``admin``)."""

    code = "permission_denied"

    def __init__(self, message: str, *, required: str) -> None:
        super().__init__(message)
        self.required = required


class RemoteError(AgreeError):
    """A remote exception whose type cannot be reconstructed locally.

    ``type_name`` is the original type (``"module:qualname"``); ``remote_args`` and
    ``remote_attrs`` are its args and instance attributes as far as they could be
    decoded here (``remote_args`` is None when they did not travel).
    """

    code = "remote"

    def __init__(
        self,
        message: str,
        *,
        type_name: str,
        remote_args: tuple[object, ...] | None = None,
        remote_attrs: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.remote_args = remote_args
        self.remote_attrs = dict(remote_attrs or {})
