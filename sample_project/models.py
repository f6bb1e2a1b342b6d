"""The sample project's replicated classes.

Each class is plain Python: ``__init__`` builds the initial state, ``@command`` methods change
it (they are replicated through the Raft log and applied on every node, in the same order), and
``@query`` methods read it.  Type hints are the schema: a call whose arguments do not match is
refused before anything is written, and values keep their types on the way back.
"""

from __future__ import annotations

from typing import Any

from agree import Consistency, Replicated, command, query
from agree.batteries import ReplicatedLock


class KVStore(Replicated):
    """A key-value store: ``str`` keys, JSON values."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    @command
    def set(self, key: str, value: Any) -> None:
        self.data[key] = value

    @command
    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was present."""
        if key not in self.data:
            return False
        del self.data[key]
        return True

    @query
    def get(self, key: str) -> Any:
        """The value of ``key``, or None."""
        return self.data.get(key)

    @query
    def keys(self) -> list[str]:
        return list(self.data)

    @query(consistency=Consistency.ANY)
    def size(self) -> int:
        """The number of keys, read from the local copy (may be stale on a follower)."""
        return len(self.data)


class Counter(Replicated):
    """A counter that only goes up."""

    def __init__(self) -> None:
        self.value = 0

    @command
    def add(self, n: int = 1) -> int:
        """Add ``n``; the new value."""
        if n < 0:
            raise ValueError("n must be >= 0")  # re-raised at the caller as ValueError
        self.value += n
        return self.value

    @query
    def get(self) -> int:
        return self.value


class BankError(Exception):
    """Refused by the bank; raised at the caller with its own type and attributes."""


class UnknownAccount(BankError):
    def __init__(self, account: str) -> None:
        super().__init__(account)
        self.account = account

    def __str__(self) -> str:
        return f"no account named {self.account!r}"


class AccountExists(BankError):
    def __init__(self, account: str) -> None:
        super().__init__(account)
        self.account = account

    def __str__(self) -> str:
        return f"account {self.account!r} already exists"


class InsufficientFunds(BankError):
    """``account`` holds ``available`` but ``needed`` was asked for."""

    def __init__(self, account: str, needed: int, available: int) -> None:
        # The arguments, not a message, are the exception's args: agree carries them to the
        # caller, which rebuilds the exception as InsufficientFunds(account, needed, available).
        super().__init__(account, needed, available)
        self.account = account
        self.needed = needed
        self.available = available

    def __str__(self) -> str:
        return (
            f"account {self.account!r} holds {self.available} but {self.needed} was asked for"
        )


class Bank(Replicated):
    """Accounts holding whole amounts (e.g. cents).

    A transfer moves money between two accounts in one command: every replica applies it
    whole or not at all, so the total across accounts changes only by deposits and
    withdrawals, never by transfers, whatever runs concurrently.
    """

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}

    def _account(self, account: str) -> int:
        try:
            return self.balances[account]
        except KeyError:
            raise UnknownAccount(account) from None

    @staticmethod
    def _positive(amount: int) -> None:
        if amount <= 0:
            raise ValueError(f"amount must be > 0, got {amount}")

    @command
    def open_account(self, account: str, initial: int = 0) -> None:
        if account in self.balances:
            raise AccountExists(account)
        if initial < 0:
            raise ValueError(f"initial must be >= 0, got {initial}")
        self.balances[account] = initial

    @command
    def deposit(self, account: str, amount: int) -> int:
        """Add ``amount``; the new balance."""
        self._positive(amount)
        balance = self._account(account) + amount
        self.balances[account] = balance
        return balance

    @command
    def withdraw(self, account: str, amount: int) -> int:
        """Take ``amount`` out; the new balance.  InsufficientFunds if it holds less."""
        self._positive(amount)
        available = self._account(account)
        if available < amount:
            raise InsufficientFunds(account, amount, available)
        self.balances[account] = available - amount
        return available - amount

    @command
    def transfer(self, source: str, target: str, amount: int) -> None:
        """Move ``amount`` from ``source`` to ``target``.  Every check happens before any
        change, so a refused transfer changes nothing."""
        self._positive(amount)
        if source == target:
            raise ValueError("source and target are the same account")
        available = self._account(source)
        self._account(target)
        if available < amount:
            raise InsufficientFunds(source, amount, available)
        self.balances[source] = available - amount
        self.balances[target] += amount

    @query
    def balance(self, account: str) -> int:
        return self._account(account)

    @query
    def accounts(self) -> dict[str, int]:
        return dict(self.balances)

    @query
    def total(self) -> int:
        """The sum of every balance, read in one go (a consistent view)."""
        return sum(self.balances.values())


class Lock(ReplicatedLock):
    """A lock with a time-to-live on the leader-stamped time (see agree.batteries).

    ``acquire(owner, ttl)``, ``refresh(owner, ttl)``, ``release(owner)`` and ``holder()``.
    """
