"""agree: turn a plain Python class into a consistent, replicated object."""

from agree.embedded import wrap
from agree.errors import (
    AgreeError,
    AgreeTimeoutError,
    AuthenticationError,
    ClusterError,
    ConfigurationError,
    ContextUnavailableError,
    CorruptionError,
    DeadlockError,
    IncompatibleVersionError,
    MembershipChangeError,
    MethodNotFoundError,
    MigrationRequiredError,
    NotLeaderError,
    OutcomeUnknownError,
    ProposalRejectedError,
    ProtocolError,
    RemoteError,
    ResultValidationError,
    SchemaMismatchError,
    StorageError,
    SubscriptionOverflowError,
    UnavailableError,
    UnknownMethodError,
    UnknownObjectError,
    ValidationError,
)
from agree.mutation import Mutation
from agree.node import Node
from agree.replicated import CommandContext, Consistency, Replicated, command, query
from agree.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "AgreeError",
    "AgreeTimeoutError",
    "AuthenticationError",
    "ClusterError",
    "CommandContext",
    "ConfigurationError",
    "Consistency",
    "ContextUnavailableError",
    "CorruptionError",
    "DeadlockError",
    "IncompatibleVersionError",
    "MembershipChangeError",
    "MethodNotFoundError",
    "MigrationRequiredError",
    "Mutation",
    "Node",
    "NotLeaderError",
    "OutcomeUnknownError",
    "ProposalRejectedError",
    "ProtocolError",
    "RemoteError",
    "Replicated",
    "ResultValidationError",
    "SchemaMismatchError",
    "Settings",
    "StorageError",
    "SubscriptionOverflowError",
    "UnavailableError",
    "UnknownMethodError",
    "UnknownObjectError",
    "ValidationError",
    "command",
    "query",
    "wrap",
]
