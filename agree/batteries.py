"""Ready-made replicated objects: a dict, a counter, a lock with a time-to-live, a FIFO queue.

Each is an ordinary :class:`~agree.Replicated` class built on the public API only
(``@command``, ``@query``, ``self.context``), so it can be hosted, subclassed and called like
any class of the user's own::

    import agree
    from agree.batteries import ReplicatedDict

    with agree.wrap(ReplicatedDict(), path="agree-data") as d:
        d.set("colour", "blue")
        d.get("colour")                 # 'blue'

Every command is deterministic: it depends only on the object's state, its arguments and the
command context, so every replica (and every replay of the log) reaches the same state.  The
lock measures its time-to-live on the leader-stamped time of the entry being applied
(``self.context.timestamp``), never on a local clock, so replicas agree on when a lease ends.

Keys are ``str``; values are ``Any``, which agree carries in a self-describing form
(:mod:`agree.objects.values`), so a tuple stays a tuple, bytes bytes, a datetime a datetime.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agree.objects.replicated import Replicated, command, query

__all__ = ["Lease", "ReplicatedCounter", "ReplicatedDict", "ReplicatedLock", "ReplicatedQueue"]


class ReplicatedDict(Replicated):
    """A replicated ``dict`` from ``str`` keys to values (PySyncObj's ``ReplDict``).

    Iteration order (``keys``, ``items``) is insertion order, the same on every replica because
    every replica applies the same commands in the same order.
    """

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    @command
    def set(self, key: str, value: Any) -> None:
        """Bind ``key`` to ``value``."""
        self.data[key] = value

    @command
    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was present."""
        return self.data.pop(key, _ABSENT) is not _ABSENT

    @command
    def pop(self, key: str, default: Any = None) -> Any:
        """Remove ``key`` and return its value, or ``default`` when it is absent."""
        return self.data.pop(key, default)

    @command
    def setdefault(self, key: str, default: Any = None) -> Any:
        """The value of ``key``; when absent, bind it to ``default`` first (create-if-absent)."""
        return self.data.setdefault(key, default)

    @command
    def compare_and_set(self, key: str, expected: Any, value: Any) -> bool:
        """Bind ``key`` to ``value`` only if it is present and equal to ``expected``; whether it
        did.  Use :meth:`setdefault` to create a key only if it is absent."""
        if key in self.data and self.data[key] == expected:
            self.data[key] = value
            return True
        return False

    @command
    def update(self, items: dict[str, Any]) -> None:
        """Bind every key of ``items``, in one command (atomically)."""
        self.data.update(items)

    @command
    def clear(self) -> int:
        """Remove every key; how many there were."""
        count = len(self.data)
        self.data.clear()
        return count

    @query
    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it is absent."""
        return self.data.get(key, default)

    @query
    def contains(self, key: str) -> bool:
        return key in self.data

    @query
    def keys(self) -> list[str]:
        return list(self.data)

    @query
    def items(self) -> list[tuple[str, Any]]:
        return list(self.data.items())

    @query
    def size(self) -> int:
        """The number of keys (``len``)."""
        return len(self.data)


class ReplicatedCounter(Replicated):
    """A replicated integer (PySyncObj's ``ReplCounter``)."""

    def __init__(self) -> None:
        self.value = 0

    @command
    def add(self, n: int = 1) -> int:
        """Add ``n`` (which may be negative); the new value."""
        self.value += n
        return self.value

    @command
    def sub(self, n: int = 1) -> int:
        """Subtract ``n``; the new value."""
        self.value -= n
        return self.value

    @command
    def set(self, value: int) -> int:
        """Set the value; the previous one."""
        previous, self.value = self.value, value
        return previous

    @command
    def compare_and_set(self, expected: int, value: int) -> bool:
        """Set ``value`` only if the counter holds ``expected``; whether it did."""
        if self.value != expected:
            return False
        self.value = value
        return True

    @query
    def get(self) -> int:
        return self.value


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a :class:`ReplicatedLock`, and until when (leader-stamped UTC time)."""

    owner: str
    expires_at: datetime


def _check_ttl(ttl: float) -> None:
    # Refused whoever holds the lock, so that a bad call fails the same way every time.
    if not (math.isfinite(ttl) and ttl > 0):
        raise ValueError(f"ttl must be a positive, finite number of seconds, got {ttl!r}")


class ReplicatedLock(Replicated):
    """A lock with a time-to-live (PySyncObj's ``ReplLockManager``, for one lock).

    An owner (any string naming the client, e.g. ``f"{host}:{pid}"``) acquires the lock for
    ``ttl`` seconds and must ``refresh`` it before they pass, or lose it.  Time is the
    leader-stamped timestamp of the command being applied (``self.context.timestamp``): a lease
    taken by the command at time *t* is held by every command stamped before *t + ttl* and free
    for every command stamped at or after it, on every replica alike.  A lease therefore ends
    only when a later command observes it ended; :meth:`holder` is such a command.
    """

    def __init__(self) -> None:
        self.lease: Lease | None = None

    def _current(self) -> Lease | None:
        """The lease still running at the time of the command being applied."""
        lease = self.lease
        if lease is not None and self.context.timestamp >= lease.expires_at:
            lease = self.lease = None
        return lease

    def _grant(self, owner: str, ttl: float) -> None:
        self.lease = Lease(owner=owner, expires_at=self.context.timestamp + timedelta(seconds=ttl))

    @command
    def acquire(self, owner: str, ttl: float) -> bool:
        """Take the lock for ``ttl`` seconds if it is free (or its lease ended), or extend it
        if ``owner`` already holds it; whether ``owner`` holds it now."""
        _check_ttl(ttl)
        lease = self._current()
        if lease is not None and lease.owner != owner:
            return False
        self._grant(owner, ttl)
        return True

    @command
    def refresh(self, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s lease to ``ttl`` seconds from now; False if ``owner`` does not
        hold the lock (never took it, released it, or let the lease end)."""
        _check_ttl(ttl)
        lease = self._current()
        if lease is None or lease.owner != owner:
            return False
        self._grant(owner, ttl)
        return True

    @command
    def release(self, owner: str) -> bool:
        """Free the lock if ``owner`` holds it; whether it did (False once the lease ended)."""
        lease = self._current()
        if lease is None or lease.owner != owner:
            return False
        self.lease = None
        return True

    @command
    def holder(self) -> str | None:
        """Who holds the lock at this command's leader-stamped time, or None.

        A command, not a query: a query has no leader-stamped time to judge the lease by.
        """
        lease = self._current()
        return None if lease is None else lease.owner

    @query
    def lease_info(self) -> Lease | None:
        """The lease as the last command left it, possibly ended since: the caller judges
        ``expires_at`` by its own clock, so this is advisory (``holder`` is exact)."""
        return self.lease


class ReplicatedQueue(Replicated):
    """A replicated first-in first-out queue (PySyncObj's ``ReplQueue``); never blocks.

    ``get`` on an empty queue returns None at once; for that answer to be unambiguous,
    None cannot be queued.
    """

    def __init__(self) -> None:
        self.items: collections.deque[Any] = collections.deque()

    @command
    def put(self, item: Any) -> int:
        """Append ``item``; the queue's size after it."""
        if item is None:
            raise ValueError("None cannot be queued: get() returns None for an empty queue")
        self.items.append(item)
        return len(self.items)

    @command
    def get(self) -> Any:
        """Remove and return the oldest item, or None when the queue is empty."""
        return self.items.popleft() if self.items else None

    @query
    def peek(self) -> Any:
        """The oldest item without removing it, or None when the queue is empty."""
        return self.items[0] if self.items else None

    @query
    def size(self) -> int:
        return len(self.items)


class _Absent:
    """A marker no stored value can be."""


_ABSENT = _Absent()
