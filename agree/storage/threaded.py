"""Asyncio access to a :class:`~agree.storage.base.LogStore` without blocking the event loop.

The node runtime awaits storage calls; :class:`AsyncLogStore` runs every one of them, in call
order, on ONE dedicated worker thread.  One thread means the synchronous store never sees two
calls at once (SQLite connections and transactions stay on one thread) and calls complete in
the order they were made, which is the order the Ready loop persisted them in.

:class:`AsyncStorage` does the same for a whole :class:`~agree.storage.base.Storage`: its
groups' stores and :meth:`AsyncStorage.save_groups` share its one thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from agree.errors import StorageError
from agree.raft.entries import Entry, HardState, PersistedState, Snapshot
from agree.storage.base import GroupWrite, LogStore, Storage

T = TypeVar("T")


class AsyncLogStore:
    """Awaitable twin of a LogStore: ``await store.save(...)`` etc."""

    def __init__(
        self,
        store: LogStore,
        *,
        thread_name: str = "agree-storage",
        executor: concurrent.futures.ThreadPoolExecutor | None = None,
        commit_delay: float = 0.0,
    ) -> None:
        """``executor``: a one-thread executor to share (an :class:`AsyncStorage`'s); the
        store then leaves it running when it closes.  ``commit_delay``: testing only
        (STORAGE_COMMIT_DELAY), seconds the worker sleeps before each save, as a slow disk
        would take to commit."""
        self._store = store
        self._commit_delay = commit_delay
        self._owns_executor = executor is None
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=thread_name
        )
        self._closed = False

    @property
    def store(self) -> LogStore:
        """The wrapped synchronous store (call it only from the worker thread, or after close)."""
        return self._store

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise StorageError("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn)

    async def load(self) -> PersistedState:
        return await self._run(self._store.load)

    async def save(
        self,
        *,
        hard_state: HardState | None,
        entries: Sequence[Entry],
        snapshot: Snapshot | None = None,
    ) -> None:
        save = functools.partial(
            self._store.save, hard_state=hard_state, entries=entries, snapshot=snapshot
        )
        delay = self._commit_delay
        if delay:

            def slow_save() -> None:
                time.sleep(delay)  # in the storage thread, where a slow fsync would block
                save()

            await self._run(slow_save)
        else:
            await self._run(save)

    async def compact(self, snapshot: Snapshot) -> None:
        await self._run(functools.partial(self._store.compact, snapshot))

    async def entries(self, lo: int, hi: int) -> list[Entry]:
        return await self._run(functools.partial(self._store.entries, lo, hi))

    async def last_index(self) -> int:
        return await self._run(self._store.last_index)

    async def snapshot(self) -> Snapshot | None:
        return await self._run(self._store.snapshot)

    async def get_meta(self, key: str) -> str | None:
        return await self._run(functools.partial(self._store.get_meta, key))

    async def set_meta(self, key: str, value: str) -> None:
        await self._run(functools.partial(self._store.set_meta, key, value))

    async def close(self) -> None:
        """Close the store on its thread (after every call already queued), then the thread."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._store.close)
        finally:
            self._closed = True
            if self._owns_executor:
                self._executor.shutdown(wait=True)


class AsyncStorage:
    """Awaitable twin of a Storage: every call, its groups' included, on one worker thread."""

    def __init__(
        self, storage: Storage, *, thread_name: str = "agree-storage", owns_storage: bool = True
    ) -> None:
        """``owns_storage=False``: closing this leaves ``storage`` open (its owner closes it)."""
        self._storage = storage
        self._owns_storage = owns_storage
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=thread_name
        )
        self._groups: dict[str, AsyncLogStore] = {}
        self._closed = False

    @property
    def storage(self) -> Storage:
        """The wrapped synchronous storage (call it only from the worker thread, or after
        close)."""
        return self._storage

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise StorageError("the storage is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn)

    def submit(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``fn`` on the storage thread, in order with every other call; its result, for
        a caller that would rather add a callback than await it."""
        if self._closed:
            raise StorageError("the storage is closed")
        return asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def group(self, group_id: str) -> AsyncLogStore:
        """One group's store, on this storage's thread."""
        found = self._groups.get(group_id)
        if found is None:
            store = await self._run(functools.partial(self._storage.group, group_id))
            found = self._groups.setdefault(group_id, AsyncLogStore(store, executor=self._executor))
        return found

    async def group_ids(self) -> list[str]:
        return await self._run(self._storage.group_ids)

    async def save_groups(self, writes: Mapping[str, GroupWrite]) -> None:
        """What several groups produced in one loop turn, in one transaction."""
        await self._run(functools.partial(self._storage.save_groups, writes))

    async def close(self) -> None:
        """Close the storage on its thread (after every call already queued), then the
        thread."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        try:
            if self._owns_storage:
                await loop.run_in_executor(self._executor, self._storage.close)
            else:  # after every call already queued
                await loop.run_in_executor(self._executor, lambda: None)
        finally:
            self._closed = True
            for store in self._groups.values():
                store._closed = True
            self._executor.shutdown(wait=True)
