"""Storage: one node's Raft groups' logs, hard states and snapshots.

- :class:`LogStore` — the protocol the node runtime codes against, one Raft group's store, and
  :class:`Storage` — one database held exclusively by this process, with a store per group
  (:mod:`agree.storage.base`);
- :class:`MemoryStorage` / :class:`MemoryStore` — the in-memory twins; :class:`SqlStorage` /
  :class:`SqlStore` — SQLite / PostgreSQL;
- :class:`AsyncLogStore` / :class:`AsyncStorage` — run any store / storage on one worker
  thread for asyncio callers;
- :func:`open_storage` — a storage from a URL (``memory://``, ``sqlite:///path``,
  ``postgresql://...``), claiming the database and refusing one whose schema is not at the head
  revision; :func:`open_store` — the same, as its ``"default"`` group's store.
"""

from __future__ import annotations

from agree.storage.base import DEFAULT_GROUP, GroupWrite, LogStore, Storage
from agree.storage.memory import MemoryStorage, MemoryStore
from agree.storage.sql import SqlStorage, SqlStore
from agree.storage.threaded import AsyncLogStore, AsyncStorage

MEMORY_URL = "memory://"


def open_storage(url: str, *, auto_migrate: bool = False, owner: str | None = None) -> Storage:
    """Open the storage at ``url``; one database per node, held by one storage at a time.

    A second opener of the same database, in this process or another, gets
    :class:`~agree.errors.StorageLockedError` naming the holder (``owner`` is this node's id,
    recorded for that message).  A SQL database must be at agree's head schema revision, else
    :class:`~agree.errors.MigrationRequiredError` names the command to run; ``auto_migrate=True``
    upgrades it first instead (the embedded single-node mode does).
    """
    if url.startswith(MEMORY_URL):
        return MemoryStorage()
    return SqlStorage(url, auto_migrate=auto_migrate, owner=owner)


def open_store(url: str, *, auto_migrate: bool = False, owner: str | None = None) -> LogStore:
    """Open the storage at ``url`` (see :func:`open_storage`) as the store of its ``"default"``
    group; closing the store closes the storage."""
    if url.startswith(MEMORY_URL):
        return MemoryStore()
    return SqlStore(url, auto_migrate=auto_migrate, owner=owner)


__all__ = [
    "DEFAULT_GROUP",
    "MEMORY_URL",
    "AsyncLogStore",
    "AsyncStorage",
    "GroupWrite",
    "LogStore",
    "MemoryStorage",
    "MemoryStore",
    "SqlStorage",
    "SqlStore",
    "Storage",
    "open_storage",
    "open_store",
]
