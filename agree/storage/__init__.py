"""Storage: one node's Raft log, hard state and snapshots.

- :class:`LogStore` — the protocol the node runtime codes against (:mod:`agree.storage.base`);
- :class:`MemoryStore` — the in-memory twin; :class:`SqlStore` — SQLite / PostgreSQL;
- :class:`AsyncLogStore` — runs any store on one worker thread for asyncio callers;
- :func:`open_store` — a store from a URL (``memory://``, ``sqlite:///path``,
  ``postgresql://...``), refusing a database whose schema is not at the head revision.
"""

from __future__ import annotations

from agree.storage.base import LogStore
from agree.storage.memory import MemoryStore
from agree.storage.sql import SqlStore
from agree.storage.threaded import AsyncLogStore

MEMORY_URL = "memory://"


def open_store(url: str, *, auto_migrate: bool = False) -> LogStore:
    """Open the store at ``url``; one database per node.

    A SQL database must be at agree's head schema revision, else
    :class:`~agree.errors.MigrationRequiredError` names the command to run;
    ``auto_migrate=True`` upgrades it first instead (the embedded single-node mode does).
    """
    if url == MEMORY_URL or url.startswith(MEMORY_URL):
        return MemoryStore()
    return SqlStore(url, auto_migrate=auto_migrate)


__all__ = ["MEMORY_URL", "AsyncLogStore", "LogStore", "MemoryStore", "SqlStore", "open_store"]
