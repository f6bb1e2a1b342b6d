"""Client bearer tokens and their permissions (the TOKENS setting).

Permissions are ordered: ``read`` < ``write`` < ``admin``; a token holds one and every permission
below it.  A presented token is compared with every configured one in constant time
(:func:`hmac.compare_digest` over SHA-256 digests, so lengths leak nothing either), and no token
is ever logged or echoed.  With no tokens configured the client API is open.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Final, Literal

from agree.errors import AuthenticationError, PermissionDeniedError

Permission = Literal["read", "write", "admin"]

READ: Final = "read"
WRITE: Final = "write"
ADMIN: Final = "admin"

_RANK: Final[Mapping[str, int]] = {READ: 1, WRITE: 2, ADMIN: 3}


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class TokenChecker:
    """Answers "may the bearer of this Authorization header do that?"."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        # Only digests are kept: the checker never holds (or could print) a token.
        self._tokens = [(_digest(token), _RANK[perm]) for token, perm in tokens.items()]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def rank_of(self, authorization: str | None) -> int:
        """The permission rank the header grants; AuthenticationError if none is valid."""
        if not self._tokens:
            return _RANK[ADMIN]
        if not authorization:
            raise AuthenticationError(
                "this node requires a token: send 'Authorization: Bearer <token>'"
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
        given = _digest(token.strip())
        rank = 0
        for digest, token_rank in self._tokens:  # no early exit: every token is compared
            if hmac.compare_digest(given, digest):
                rank = token_rank
        if rank == 0:
            raise AuthenticationError("the token is not valid for this cluster")
        return rank

    def require(self, authorization: str | None, permission: Permission) -> None:
        """Raise AuthenticationError (401) or PermissionDeniedError (403) unless allowed."""
        self.check(self.rank_of(authorization), permission)

    @staticmethod
    def check(rank: int, permission: Permission) -> None:
        """Raise PermissionDeniedError (403) unless ``rank`` (from :meth:`rank_of`) allows."""
        if rank < _RANK[permission]:
            raise PermissionDeniedError(
                f"the token lacks the {permission!r} permission this request needs",
                required=permission,
            )
