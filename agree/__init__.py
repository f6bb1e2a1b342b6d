"""agree: turn a plain Python class into a consistent, replicated object.

``import agree`` stays light: the names whose modules load the runtime (SQLAlchemy, Alembic,
aiohttp) are imported on first use (PEP 562), so a client or a tool that never runs a node
never pays for them; the remote clients (``Client``, ``AsyncClient``) load aiohttp's client
only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agree._lazy import lazy_getattr
from agree.conf.settings import Settings
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
    PermissionDeniedError,
    ProposalRejectedError,
    ProtocolError,
    RemoteError,
    ResultValidationError,
    SchemaMismatchError,
    StorageError,
    StorageLockedError,
    SubscriptionOverflowError,
    UnavailableError,
    UnknownMethodError,
    UnknownObjectError,
    ValidationError,
)
from agree.objects.mutation import Mutation
from agree.objects.replicated import CommandContext, Consistency, Replicated, command, query

if TYPE_CHECKING:
    from agree.client import AsyncClient, Client
    from agree.runtime.embedded import wrap
    from agree.runtime.node import Node

__version__ = "0.1.0"

# Name -> the module that defines it, imported when the name is first looked up.
_LAZY: dict[str, str] = {
    "AsyncClient": "agree.client",
    "Client": "agree.client",
    "Node": "agree.runtime.node",
    "wrap": "agree.runtime.embedded",
}


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "AgreeError",
    "AgreeTimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
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
    "PermissionDeniedError",
    "ProposalRejectedError",
    "ProtocolError",
    "RemoteError",
    "Replicated",
    "ResultValidationError",
    "SchemaMismatchError",
    "Settings",
    "StorageError",
    "StorageLockedError",
    "SubscriptionOverflowError",
    "UnavailableError",
    "UnknownMethodError",
    "UnknownObjectError",
    "ValidationError",
    "command",
    "query",
    "wrap",
]
