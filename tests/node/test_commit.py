"""The node's group commit (agree.runtime.commit): when a batch goes to the storage thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping

from agree.raft.entries import HardState
from agree.runtime.commit import CommitBatcher, GroupStore
from agree.storage import AsyncStorage, GroupWrite, MemoryStorage


async def test_a_batch_goes_to_the_storage_thread_at_the_next_turn_of_the_loop() -> None:
    storage = AsyncStorage(MemoryStorage())
    batcher = CommitBatcher(storage)
    for group_id in ("a", "b"):
        GroupStore(group_id, await storage.group(group_id), batcher)
    batches: list[set[str]] = []
    written = threading.Event()
    save_groups = storage.storage.save_groups

    def saving(writes: Mapping[str, GroupWrite]) -> None:
        batches.append(set(writes))
        save_groups(writes)
        written.set()

    storage.storage.save_groups = saving  # type: ignore[method-assign]
    write = GroupWrite(hard_state=HardState(term=1))
    first = batcher.submit("a", write)
    second = batcher.submit("b", write)  # in the same turn: the same transaction
    await asyncio.sleep(0)  # one turn of the loop, and the batch is on its way
    assert written.wait(5)
    await asyncio.gather(first, second)
    assert batches == [{"a", "b"}]
    assert (batcher.transactions, batcher.writes) == (1, 2)
    await batcher.close()
    await storage.close()
