"""One transaction for what every group of a node persists in one loop turn.

Each group's driver awaits ``save`` on its :class:`GroupStore` as if it were alone.  The saves
go to the node's :class:`CommitBatcher`, which hands everything submitted before its flush runs
-- every group whose Ready was handled in the same turn of the event loop, plus whatever
arrived while the previous transaction was being written -- to ONE
:meth:`~agree.storage.base.Storage.save_groups` call on the storage thread.  A group never has
two saves in one batch: its driver waits for each save before it makes the next.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence

from agree.errors import StorageError, UnavailableError
from agree.raft.entries import Entry, HardState, PersistedState, Snapshot
from agree.storage.base import GroupWrite
from agree.storage.threaded import AsyncLogStore, AsyncStorage


class CommitBatcher:
    """Group commit across a node's Raft groups: one transaction per flush."""

    def __init__(self, storage: AsyncStorage, *, commit_delay: float = 0.0) -> None:
        """``commit_delay``: testing only (STORAGE_COMMIT_DELAY), seconds the storage thread
        sleeps before each transaction, as a slow disk would take to commit."""
        self._storage = storage
        self._commit_delay = commit_delay
        self._waiting: dict[str, tuple[GroupWrite, asyncio.Future[None]]] = {}
        # The batch on the storage thread, if any: what arrives meanwhile waits for it.
        self._writing: dict[str, tuple[GroupWrite, asyncio.Future[None]]] | None = None
        self._flush_due = False  # a flush is scheduled for the next turn of the loop
        self._closed = False
        #: Transactions committed, and group writes they carried (for tests and metrics).
        self.transactions = 0
        self.writes = 0

    def submit(self, group_id: str, write: GroupWrite) -> asyncio.Future[None]:
        """Queue one group's write; resolves once it is durable."""
        if self._closed:
            raise UnavailableError("the node's storage is closed")
        if group_id in self._waiting:  # a driver waits for its save: this is a bug upstream
            raise StorageError(f"group {group_id!r} has two writes waiting")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._waiting[group_id] = (write, fut)
        if self._writing is None and not self._flush_due:
            # At the next turn of the loop, so that every group woken in this turn joins (and
            # the frames a leader queued in this turn are written before the storage thread
            # competes with the loop for the interpreter).
            self._flush_due = True
            loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        """Hand everything waiting to the storage thread (unless a batch is there already:
        its end flushes what waits)."""
        self._flush_due = False
        if self._writing is not None or not self._waiting or self._closed:
            return
        batch, self._waiting = self._waiting, {}
        self._writing = batch
        writes = {group_id: write for group_id, (write, _) in batch.items()}
        try:
            done = self._storage.submit(functools.partial(self._commit, writes))
        except Exception as exc:  # the storage is closed
            self._committed(exc)
        else:
            done.add_done_callback(lambda _: self._committed(done.exception()))

    def _commit(self, writes: dict[str, GroupWrite]) -> None:
        """On the storage thread."""
        if self._commit_delay:
            time.sleep(self._commit_delay)  # where a slow fsync would block
        self._storage.storage.save_groups(writes)

    def _committed(self, outcome: BaseException | None) -> None:
        """The batch on the storage thread is durable (or failed with ``outcome``)."""
        batch, self._writing = self._writing, None
        if batch is None:  # closed meanwhile: its writers were told
            return
        if outcome is None:
            self.transactions += 1
            self.writes += len(batch)
        for _, fut in batch.values():
            if not fut.done():
                if outcome is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(outcome)
        self._flush()

    async def close(self) -> None:
        """Stop flushing; writes still waiting fail (their groups have stopped)."""
        self._closed = True
        writing, self._writing = self._writing, None
        for _, fut in (writing or {}).values():
            fut.cancel()
        for _, fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(UnavailableError("the node's storage is closed"))
        self._waiting.clear()


class GroupStore:
    """One group's store as its driver sees it: saves go through the node's batcher, the rest
    straight to the group's view of the storage (on the same storage thread)."""

    def __init__(self, group_id: str, view: AsyncLogStore, batcher: CommitBatcher) -> None:
        self.group_id = group_id
        self._view = view
        self._batcher = batcher

    async def load(self) -> PersistedState:
        return await self._view.load()

    async def save(
        self,
        *,
        hard_state: HardState | None,
        entries: Sequence[Entry],
        snapshot: Snapshot | None = None,
    ) -> None:
        if hard_state is None and not entries and snapshot is None:
            return
        write = GroupWrite(hard_state=hard_state, entries=tuple(entries), snapshot=snapshot)
        await self._batcher.submit(self.group_id, write)

    async def compact(self, snapshot: Snapshot) -> None:
        await self._view.compact(snapshot)

    async def entries(self, lo: int, hi: int) -> list[Entry]:
        return await self._view.entries(lo, hi)

    async def last_index(self) -> int:
        return await self._view.last_index()
