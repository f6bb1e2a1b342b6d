"""Carrying out a Ready: the host's half of the Raft core's contract, written once.

Owns: the order of a Ready's duties (:class:`agree.raft.ready.Ready` lists them) -- persist,
send, restore and apply, answer reads, advance -- and the one rule that needs memory from one
Ready to the next: a hard state that only moves the commit index does not cost an fsync of its
own; it is written with the next Ready that must sync (:attr:`ReadyLoop.deferred`).

How each duty is done is the host's (:class:`ReadyHost`): the node driver persists through its
storage thread, sends through the transport and applies to the replicated objects; the simulator
and the core's test harness do it all in memory.  Those drive the same coroutine synchronously
with :func:`run_sync`, since nothing in their duties waits.  A duty that raises stops the Ready
where it is and the core is not advanced, as a crash at that point would leave it: the simulator
crashes a node after persisting, after some sends or after some applies that way.
"""

from __future__ import annotations

from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

from agree.raft.entries import Entry, HardState, Snapshot
from agree.raft.messages import Message
from agree.raft.node import RaftNode
from agree.raft.ready import ReadState, Ready, SoftState

T = TypeVar("T")


class ReadyHost(Protocol):
    """What a host does with a Ready, one method per duty, called in this order."""

    async def persist(
        self, hard_state: HardState | None, entries: tuple[Entry, ...], snapshot: Snapshot | None
    ) -> None:
        """1. Write ``snapshot`` (it replaces the log), then ``entries`` and ``hard_state``,
        atomically and durably.  Called only for a Ready that must sync."""

    def send(self, messages: tuple[Message, ...]) -> None:
        """2. Hand the Ready's messages (perhaps none) to the network."""

    def applying(self) -> AbstractAsyncContextManager[None]:
        """Held around 3.: the state machine's lock."""

    def restore(self, snapshot: Snapshot) -> None:
        """3a. Replace the state machine by a snapshot received from the leader."""

    def apply(self, entries: tuple[Entry, ...]) -> None:
        """3b. Apply committed entries (perhaps none, after a restore), in order."""

    def read_states(self, states: tuple[ReadState, ...]) -> None:
        """4. Confirmed reads (perhaps none): serve each once the applied index reaches it."""

    def soft_state(self, soft: SoftState) -> None:
        """After advance: the leader or this node's role changed."""


class ReadyLoop:
    """One core's Readys carried out by one host.  Made afresh when the host (re)starts: what it
    holds is volatile, as a crash would lose it."""

    __slots__ = ("core", "deferred", "host")

    def __init__(self, core: RaftNode, host: ReadyHost) -> None:
        self.core = core
        self.host = host
        # A commit-only hard state not written yet; the next Ready that must sync writes it
        # (or a newer one).  The commit index is volatile state (Figure 2): a restart that
        # loses it relearns it from the leader.
        self.deferred: HardState | None = None

    async def handle(self, rd: Ready) -> None:
        """Persist, send, apply, answer reads, advance -- in that order; but a leader's
        messages go out first when the core says they promise nothing of the write
        (``Ready.send_first``, dissertation §10.2.1)."""
        host = self.host
        if rd.send_first:
            host.send(rd.messages)  # replicate while the leader's own write runs
        if rd.must_sync:
            hard_state = rd.hard_state if rd.hard_state is not None else self.deferred
            await host.persist(hard_state, rd.entries, rd.snapshot)
            self.deferred = None
        elif rd.hard_state is not None:
            self.deferred = rd.hard_state
        if not rd.send_first:
            # Only now: the messages may promise what was just persisted.
            host.send(rd.messages)
        if rd.snapshot is not None or rd.committed_entries:
            async with host.applying():
                if rd.snapshot is not None:
                    host.restore(rd.snapshot)
                host.apply(rd.committed_entries)
        host.read_states(rd.read_states)
        self.core.advance(rd)
        if rd.soft_state is not None:
            host.soft_state(rd.soft_state)

    def handle_sync(self, rd: Ready) -> None:
        """:meth:`handle` for a host none of whose duties waits."""
        run_sync(self.handle(rd))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end, without an event loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coro.close()
    raise RuntimeError("a coroutine run synchronously waited: only a running loop can resume it")
