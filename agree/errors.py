"""The one error tree of agree.

Every error agree raises derives from :class:`AgreeError`; a user's own
exception raised inside a command or query keeps its own type and is never
wrapped in this tree.  This module imports only the standard library so that
the sans-I/O Raft core (:mod:`agree.raft`) can raise these errors too.

::

    AgreeError
    ├── ConfigurationError          a bad setting; names the setting and the fix
    ├── CommandError                an agree-manage command failed; its message is for the user
    ├── ValidationError             a call does not match the operation schema; nothing written
    │   ├── UnknownObjectError
    │   └── UnknownMethodError
    ├── SchemaMismatchError         a node's schema is incompatible with the cluster's
    ├── ContextUnavailableError     self.context read outside a command (also a RuntimeError)
    ├── ClusterError                Raft-level refusals
    │   ├── NotLeaderError          carries the leader's id and address when known
    │   ├── UnavailableError        no quorum, node stopping, no leader known
    │   ├── ProposalRejectedError   refused while a transfer or membership change runs
    │   └── MembershipChangeError   an invalid or concurrent membership change
    ├── AgreeTimeoutError           (also a builtin TimeoutError)
    │   └── OutcomeUnknownError     a command may or may not have been applied
    ├── StorageError
    │   ├── CorruptionError         a checksum or structure check failed
    │   ├── IncompatibleVersionError a blob written by another codec/Python/cloudpickle
    │   └── MigrationRequiredError  the database is not at the head revision
    ├── SubscriptionOverflowError   a subscriber fell too far behind and was cut off
    ├── ProtocolError               a malformed message from a peer or client
    ├── AuthenticationError         an unauthenticated peer or client
    └── RemoteError                 a remote user exception whose type is not importable here
"""

from __future__ import annotations


class AgreeError(Exception):
    """Root of every error agree raises."""


class ConfigurationError(AgreeError):
    """A setting is missing or invalid.  ``setting`` names it."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class CommandError(AgreeError):
    """An ``agree-manage`` command could not do its job; the message tells the user why.

    ``returncode`` is the process exit status ``agree-manage`` ends with.
    """

    def __init__(self, message: str, *, returncode: int = 1) -> None:
        super().__init__(message)
        self.returncode = returncode


class ValidationError(AgreeError):
    """A call does not match the operation schema.  Nothing was written."""


class UnknownObjectError(ValidationError):
    """No replicated object is hosted under that name."""


class UnknownMethodError(ValidationError):
    """The object has no ``@command`` or ``@query`` of that name."""


class SchemaMismatchError(AgreeError):
    """The local operation schema is incompatible with the cluster's."""


class ContextUnavailableError(AgreeError, RuntimeError):
    """``Replicated.context`` was read outside the application of a command."""


class ClusterError(AgreeError):
    """The cluster refused or could not carry out an operation."""


class NotLeaderError(ClusterError):
    """This node is not the leader.  ``leader_id``/``leader_url`` name the leader if known."""

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


class ProposalRejectedError(ClusterError):
    """A proposal was refused, e.g. while leadership is being transferred."""


class MembershipChangeError(ClusterError):
    """A membership change is invalid or another one is still in flight."""


class AgreeTimeoutError(AgreeError, TimeoutError):
    """An operation did not finish in time."""


class OutcomeUnknownError(AgreeTimeoutError):
    """A command was proposed but its outcome is unknown: it may or may not apply."""


class StorageError(AgreeError):
    """The log or snapshot store failed."""


class CorruptionError(StorageError):
    """Stored data failed its checksum or structure check."""


class IncompatibleVersionError(StorageError):
    """A blob was written by an incompatible codec, Python or cloudpickle version."""


class MigrationRequiredError(StorageError):
    """The database schema is not at the head revision."""


class SubscriptionOverflowError(AgreeError):
    """A subscriber fell behind by more than its queue holds and was cut off.

    ``last_index`` is the index of the last mutation it received: resume from ``last_index + 1``.
    """

    def __init__(self, message: str, *, last_index: int) -> None:
        super().__init__(message)
        self.last_index = last_index


class ProtocolError(AgreeError):
    """A peer or client sent a malformed or unexpected message."""


class AuthenticationError(AgreeError):
    """A peer or client could not be authenticated."""


class RemoteError(AgreeError):
    """A remote exception whose type cannot be reconstructed locally."""

    def __init__(self, message: str, *, type_name: str) -> None:
        super().__init__(message)
        self.type_name = type_name
