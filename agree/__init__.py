"""agree: turn a plain Python class into a consistent, replicated object."""

from agree.errors import (
    AgreeError,
    AgreeTimeoutError,
    AuthenticationError,
    ClusterError,
    ConfigurationError,
    CorruptionError,
    IncompatibleVersionError,
    MembershipChangeError,
    MigrationRequiredError,
    NotLeaderError,
    OutcomeUnknownError,
    ProposalRejectedError,
    ProtocolError,
    RemoteError,
    SchemaMismatchError,
    StorageError,
    UnavailableError,
    UnknownMethodError,
    UnknownObjectError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "AgreeError",
    "AgreeTimeoutError",
    "AuthenticationError",
    "ClusterError",
    "ConfigurationError",
    "CorruptionError",
    "IncompatibleVersionError",
    "MembershipChangeError",
    "MigrationRequiredError",
    "NotLeaderError",
    "OutcomeUnknownError",
    "ProposalRejectedError",
    "ProtocolError",
    "RemoteError",
    "SchemaMismatchError",
    "StorageError",
    "UnavailableError",
    "UnknownMethodError",
    "UnknownObjectError",
    "ValidationError",
]
