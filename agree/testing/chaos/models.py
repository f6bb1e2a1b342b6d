"""The replicated objects the chaos nodes host (``agree.testing.chaos.models.*`` in OBJECTS).

Each is the smallest object whose every history can be checked exactly: a register per key
(linearizability), an append-only set of unique ids (nothing lost, nothing applied twice), and
bank accounts whose total never changes.
"""

from __future__ import annotations

from agree import Replicated, command, query


class Insufficient(Exception):
    """A transfer larger than the source account's balance (nothing moved)."""


class Registers(Replicated):
    """Independent read/write/compare-and-set registers, one per key."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    @command
    def write(self, key: str, value: int) -> None:
        self.values[key] = value

    @command
    def cas(self, key: str, expected: int | None, new: int) -> bool:
        if self.values.get(key) != expected:
            return False
        self.values[key] = new
        return True

    @query
    def get(self, key: str) -> int | None:
        return self.values.get(key)

    @query
    def dump(self) -> dict[str, int]:
        return dict(self.values)


class AppendLog(Replicated):
    """Ids in the order they were applied; the workload appends each id once."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    @command
    def append(self, item: str) -> int:
        self.ids.append(item)
        return len(self.ids)

    @query
    def all(self) -> list[str]:
        return list(self.ids)


class Bank(Replicated):
    """Accounts that only ever move money between each other: the total is an invariant."""

    def __init__(self) -> None:
        self.accounts: dict[str, int] = {f"a{i}": 100 for i in range(5)}

    @command
    def transfer(self, src: str, dst: str, amount: int) -> dict[str, int]:
        if amount > self.accounts[src]:
            raise Insufficient(f"{src} has {self.accounts[src]} < {amount}")
        self.accounts[src] -= amount
        self.accounts[dst] += amount
        return dict(self.accounts)

    @query
    def balances(self) -> dict[str, int]:
        return dict(self.accounts)
