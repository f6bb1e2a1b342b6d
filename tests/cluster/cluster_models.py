"""Replicated classes that the node processes of tests/cluster host (imported by module name
``cluster_models`` in the nodes and in the tests, so that user exceptions keep their type)."""

from __future__ import annotations

from agree import Replicated, command, query


class Overdrawn(Exception):
    """Raised by Ledger.take when the balance would go below zero."""


class Ledger(Replicated):
    """A list of tagged entries: the tests check each acknowledged tag is present exactly once."""

    def __init__(self) -> None:
        self.tags: list[str] = []
        self.balance = 0

    @command
    def append(self, tag: str) -> int:
        self.tags.append(tag)
        return len(self.tags)

    @command
    def deposit(self, amount: int) -> int:
        self.balance += amount
        return self.balance

    @command
    def take(self, amount: int) -> int:
        if amount > self.balance:
            raise Overdrawn(f"balance {self.balance} < {amount}")
        self.balance -= amount
        return self.balance

    @query
    def all_tags(self) -> list[str]:
        return list(self.tags)

    @query
    def count(self) -> int:
        return len(self.tags)

    @query
    def get_balance(self) -> int:
        return self.balance
