"""Subscriptions to applied mutations: callbacks and async iterators, filtered by object and
method, with a bounded history for resuming from an index.

The apply loop only ever appends to bounded structures here; it never waits for a subscriber.
A subscriber that falls more than its queue size behind is cut off: its iterator raises
:class:`SubscriptionOverflowError` carrying the last index it received (resume from the next),
and a callback subscription is cancelled with that error recorded on it.  Mutation records are
kept JSON-shaped until delivered, so an unobserved mutation costs one small tuple.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from agree.errors import AgreeError, SubscriptionOverflowError
from agree.objects.mutation import Mutation
from agree.wire.codec import ErrorInfo

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 10_000
DEFAULT_HISTORY = 1_024


@dataclass(slots=True)
class MutationRecord:
    """A mutation as the host saw it: JSON-shaped, decoded into a Mutation only on delivery.

    Not frozen: one is built per applied command on every replica, and a frozen dataclass's
    ``__init__`` sets each field through ``object.__setattr__`` (about twice the cost).  Nothing
    assigns to a record after it is built."""

    object: str
    method: str
    args: list[Any]
    kwargs: dict[str, Any]
    result: Any
    error: ErrorInfo | None
    index: int
    term: int
    timestamp_ns: int


Decoder = Callable[[MutationRecord], Mutation]


class _Subscriber:
    def __init__(self, object: str | None, method: str | None, maxsize: int) -> None:
        self.object = object
        self.method = method
        self.queue: collections.deque[MutationRecord] = collections.deque()
        self.maxsize = maxsize
        self.last_index = 0  # the last index delivered to the subscriber
        # Resuming from index N on a node that has not applied N yet: what it applies below N
        # is not for this subscriber (it saw those elsewhere).
        self.after = 0
        self.error: AgreeError | None = None
        self.closed = False
        self.event = asyncio.Event()

    def matches(self, rec: MutationRecord) -> bool:
        return (self.object is None or rec.object == self.object) and (
            self.method is None or rec.method == self.method
        )

    def offer(self, rec: MutationRecord) -> bool:
        """Queue ``rec``; False if the subscriber overflowed (and is now closed)."""
        if len(self.queue) >= self.maxsize:
            self.cut_off(f"subscriber fell more than {self.maxsize} mutations behind")
            return False
        self.queue.append(rec)
        self.event.set()
        return True

    def cut_off(self, why: str) -> None:
        self.error = SubscriptionOverflowError(
            f"{why}; the subscriber was cut off: resume from index {self.last_index + 1}",
            last_index=self.last_index,
        )
        self.queue.clear()
        self.close()

    def close(self) -> None:
        self.closed = True
        self.event.set()


class MutationStream:
    """An async iterator of :class:`Mutation` records; ``close()`` (or ``aclose()``) ends it."""

    def __init__(self, hub: SubscriptionHub, sub: _Subscriber) -> None:
        self._hub = hub
        self._sub = sub

    def __aiter__(self) -> MutationStream:
        return self

    async def __anext__(self) -> Mutation:
        sub = self._sub
        while not sub.queue:
            if sub.closed:
                if sub.error is not None:
                    raise sub.error
                raise StopAsyncIteration
            sub.event.clear()
            await sub.event.wait()
        rec = sub.queue.popleft()
        sub.last_index = rec.index
        return self._hub.decode(rec)

    def close(self) -> None:
        self._hub._remove(self._sub)
        self._sub.close()

    async def aclose(self) -> None:
        self.close()


class Subscription:
    """A callback subscription; ``cancel()`` stops it.  ``error`` is set if it was cut off."""

    def __init__(self, hub: SubscriptionHub, sub: _Subscriber, task: asyncio.Task[None]) -> None:
        self._hub = hub
        self._sub = sub
        self._task = task

    @property
    def error(self) -> AgreeError | None:
        return self._sub.error

    @property
    def active(self) -> bool:
        return not self._sub.closed

    def cancel(self) -> None:
        self._hub._remove(self._sub)
        self._sub.close()


class SubscriptionHub:
    """Fan-out of applied mutations.  Must be used from the node's event loop thread."""

    def __init__(self, decode: Decoder, *, history: int = DEFAULT_HISTORY) -> None:
        self.decode = decode
        self._subs: list[_Subscriber] = []
        self._history: collections.deque[MutationRecord] = collections.deque(maxlen=history)
        # Mutations at or below this index were never published here (the state arrived in a
        # snapshot): nobody can be served from before it.
        self._floor = 0
        # Invariant: every mutation at or above this index that was published is still in
        # _history.  Indexes that were never mutations (configuration entries, no-ops) do not
        # count as lost: resuming from before the first mutation is fine.
        self._complete_from = 1

    @property
    def active(self) -> bool:
        """Whether publishing is worth building a record for."""
        return bool(self._subs) or self._history.maxlen != 0

    def publish(self, rec: MutationRecord) -> None:
        history = self._history
        if len(history) == history.maxlen:  # the oldest record (or this one) is dropped
            dropped = history[0] if history else rec
            self._complete_from = dropped.index + 1
        if history.maxlen != 0:
            history.append(rec)
        if self._subs:
            for sub in self._subs:
                if rec.index > sub.after and sub.matches(rec):
                    sub.offer(rec)
            self._subs = [s for s in self._subs if not s.closed]

    def jumped(self, index: int) -> None:
        """The state jumped to ``index`` from a snapshot, without publishing the mutations in
        between.  Live subscribers would silently miss them: they are cut off instead, and
        resuming from an index at or below ``index`` is refused from now on."""
        self._floor = max(self._floor, index)
        self._complete_from = max(self._complete_from, self._floor + 1)
        self._history.clear()
        for sub in self._subs:
            sub.cut_off(
                f"this node's state jumped to a snapshot at index {index}; the mutations up to"
                " it are not available here",
            )
        self._subs.clear()

    def oldest_index(self) -> int | None:
        """The lowest index that can still be resumed from, if any history is kept."""
        return self._history[0].index if self._history else None

    def _register(
        self, object: str | None, method: str | None, from_index: int | None, maxsize: int
    ) -> _Subscriber:
        sub = _Subscriber(object, method, maxsize)
        if from_index is not None:
            sub.last_index = sub.after = from_index - 1
            if from_index <= self._floor:
                raise SubscriptionOverflowError(
                    f"cannot resume from index {from_index}: this node's state starts from a"
                    f" snapshot at index {self._floor}",
                    last_index=from_index - 1,
                )
            if from_index < self._complete_from:
                raise SubscriptionOverflowError(
                    f"cannot resume from index {from_index}: mutations before index"
                    f" {self._complete_from} are no longer kept here",
                    last_index=from_index - 1,
                )
            for rec in self._history:
                if rec.index >= from_index and sub.matches(rec):
                    sub.offer(rec)
        self._subs.append(sub)
        return sub

    def _remove(self, sub: _Subscriber) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def stream(
        self,
        object: str | None = None,
        method: str | None = None,
        *,
        from_index: int | None = None,
        maxsize: int = DEFAULT_QUEUE_SIZE,
    ) -> MutationStream:
        return MutationStream(self, self._register(object, method, from_index, maxsize))

    def subscribe(
        self,
        callback: Callable[[Mutation], Any],
        object: str | None = None,
        method: str | None = None,
        *,
        maxsize: int = DEFAULT_QUEUE_SIZE,
        in_thread: bool = False,
    ) -> Subscription:
        """Call ``callback(mutation)`` for each matching mutation, in order, outside the apply
        loop.  A coroutine function is awaited; with ``in_thread`` a plain function runs in a
        worker thread (so a slow callback cannot stall the event loop)."""
        sub = self._register(object, method, None, maxsize)
        stream = MutationStream(self, sub)
        task = asyncio.get_running_loop().create_task(
            _deliver(stream, callback, in_thread), name="agree-subscription"
        )
        return Subscription(self, sub, task)

    def close(self) -> None:
        for sub in self._subs:
            sub.close()
        self._subs.clear()


async def _deliver(
    stream: MutationStream, callback: Callable[[Mutation], Any], in_thread: bool
) -> None:
    try:
        async for mutation in stream:
            try:
                if inspect.iscoroutinefunction(callback):
                    await callback(mutation)
                elif in_thread:
                    await asyncio.to_thread(callback, mutation)
                else:
                    outcome = callback(mutation)
                    if inspect.isawaitable(outcome):
                        await _await(outcome)
            except Exception:
                log.exception("subscription callback %r raised; it stays subscribed", callback)
    except SubscriptionOverflowError as exc:
        log.warning("subscription %r cut off: %s", callback, exc)


async def _await(awaitable: Awaitable[Any]) -> None:
    await awaitable
