"""The node driver: the asyncio shell around the sans-I/O Raft core.

It owns the inbox and the Ready loop of one Raft group; the node's one ticker calls
:meth:`Driver.tick` for every group.  Everything that reaches the core --
peer messages, ticks, proposals, reads, membership changes -- is queued in the inbox and stepped
by the loop, so the core is only ever touched between two Readys, and everything that arrived
while the previous Ready was being persisted is batched into the next one: one storage
transaction and one send per turn.  :meth:`Driver._handle_ready` hands each Ready to the loop
shared with the simulator (:mod:`agree.runtime.readyloop`), the one place where the order is fixed:
persist, then send, then apply, then advance.  A snapshot is serialized in a worker thread, so
the loop keeps ticking and sending while a large state is pickled.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import logging
import math
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from agree import logs, unsafe
from agree.errors import AgreeError, NotLeaderError, ProposalLost, UnavailableError
from agree.raft.entries import ConfChange, Entry, EntryType, HardState, Snapshot
from agree.raft.messages import Message
from agree.raft.node import RaftNode
from agree.raft.ready import ReadState, Ready, Role, SoftState
from agree.replica.host import Host
from agree.runtime.clock import Clock, SystemClock
from agree.runtime.observer import NoObserver, Observer
from agree.runtime.readyloop import ReadyLoop
from agree.storage.base import DEFAULT_GROUP
from agree.wire.calls import Outcome
from agree.wire.codec import CommandRecord


class ReadyStore(Protocol):
    """What the Ready loop writes to: one group's durable log."""

    async def save(
        self,
        *,
        hard_state: HardState | None,
        entries: Sequence[Entry],
        snapshot: Snapshot | None = None,
    ) -> None: ...

    async def compact(self, snapshot: Snapshot) -> None: ...


class GroupTransport(Protocol):
    """The peer transport as one group's driver sees it."""

    def send(self, messages: Sequence[Message]) -> None: ...

    def update_peers(self, addresses: Mapping[str, str]) -> None:
        """This group's members' addresses changed."""


# -- the inbox: one record per kind of input, stepped in arrival order -------------------------
@dataclass(frozen=True, slots=True)
class Receive:
    message: Message


@dataclass(frozen=True, slots=True)
class Tick:
    pass


@dataclass(slots=True)
class Propose:
    # Not frozen: one per command, and a frozen dataclass's __init__ costs several times more.
    data: bytes
    future: asyncio.Future[Outcome]
    deadline: float = math.inf
    record: CommandRecord | None = None  # what ``data`` decodes to, if the proposer has it


@dataclass(frozen=True, slots=True)
class ProposeConfChange:
    change: ConfChange
    future: asyncio.Future[Any]


@dataclass(frozen=True, slots=True)
class TransferLeader:
    target: str
    future: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class ReadIndex:
    future: asyncio.Future[int]


@dataclass(frozen=True, slots=True)
class TakeSnapshot:
    future: asyncio.Future[int]


Input = Receive | Tick | Propose | ProposeConfChange | TransferLeader | ReadIndex | TakeSnapshot
_TICK = Tick()


@dataclass(slots=True)
class _Pending:
    term: int
    future: asyncio.Future[Any]
    deadline: float = math.inf  # the proposer gives up then: TimeoutError, at the next tick
    # The proposer's command as decoding the entry gives it: applied from here, not decoded.
    record: CommandRecord | None = None


class Driver:
    def __init__(
        self,
        raft: RaftNode,
        store: ReadyStore,
        transport: GroupTransport,
        host: Host,
        *,
        clock: Clock | None = None,
        observer: Observer | None = None,
        snapshot_entries: int,
        snapshot_bytes: int,
        on_conf_change: Callable[[ConfChange], None] | None = None,
        on_leader: Callable[[], None] | None = None,
        addresses: Mapping[str, str] | None = None,
        group: str = DEFAULT_GROUP,
    ) -> None:
        """``addresses``: how this node reaches members (its NODES setting); they take
        precedence over the addresses replicated in the membership, which are the view of
        whichever node proposed or snapshotted them."""
        self.addresses = dict(addresses or {})
        self.on_leader = on_leader
        self.raft = raft
        self.store = store
        self.transport = transport
        self.host = host
        self.clock: Clock = clock or SystemClock()
        self.observer: Observer = observer or NoObserver()
        # With no observer, the Ready loop does not read the clock for it at all.
        self._observed = observer is not None
        self.snapshot_entries = snapshot_entries
        self.snapshot_bytes = snapshot_bytes
        self.on_conf_change = on_conf_change
        self._inbox: collections.deque[Input] = collections.deque()
        self._wake = asyncio.Event()
        self._pending: dict[int, _Pending] = {}  # log index -> the proposer waiting for it
        self._next_deadline = math.inf  # no pending proposal's deadline is earlier
        self._read_batch: list[asyncio.Future[int]] = []  # reads waiting for a ReadIndex round
        self._reads: dict[bytes, list[asyncio.Future[int]]] = {}  # context -> waiting reads
        # (deadline, seq, read): a heap; a read still unanswered at its deadline fails with
        # TimeoutError at the next tick -- one sweep per tick, no timer per read.
        self._read_deadlines: list[tuple[float, int, asyncio.Future[int]]] = []
        self._read_ctx = itertools.count(1)
        self._applied_waiters: list[tuple[int, int, asyncio.Future[int]]] = []  # heap by index
        self._waiter_seq = itertools.count()
        self._leader_waiters: list[asyncio.Future[None]] = []
        self._soft = SoftState(leader_id=None, role=Role.FOLLOWER)
        self._since_snapshot_entries = 0
        self._since_snapshot_bytes = 0
        self._apply_started = 0.0  # on the clock, when observed
        self._ready_loop = ReadyLoop(raft, _DriverDuties(self))
        self._snapshot_waiters: list[asyncio.Future[int]] = []
        # A snapshot being serialized in a worker thread, and the callers it will answer.
        self._capture: asyncio.Task[tuple[int, bytes]] | None = None
        self._capture_waiters: list[asyncio.Future[int]] = []
        self._capture_started = 0.0  # on the clock, when observed
        # What the Ready loop handed over to apply while a capture was under way (snapshots
        # to restore, entries to apply), in order; applied once the capture is done.
        self._backlog: collections.deque[Snapshot | tuple[Entry, ...]] = collections.deque()
        self._deferring = False  # the current Ready's apply goes to the backlog
        self._tasks: list[asyncio.Task[None]] = []
        self._saving_behind: asyncio.Future[None] | None = None  # unsafe.ACK_BEFORE_DURABLE
        self._stopping = False
        self.failure: BaseException | None = None
        # Every line of this node's runtime carries its id, group and current term.
        self.group = group
        self.log = logs.get_logger(
            __name__, node=raft.id, group=self.group, term=lambda: self.raft.term
        )

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # Lines logged by what the loop runs (the host applying entries, subscriptions) carry
        # the node too, without binding anything in the caller's context.
        bound = logs.bound_context(node=self.raft.id, group=self.group)
        name = f"agree-driver-{self.raft.id}-{self.group}"
        self._tasks = [loop.create_task(self._run(), name=name, context=bound)]

    async def stop(self, *, snapshot: bool = True) -> None:
        """Stop; unless ``snapshot`` is false, first snapshot what was applied since the last
        snapshot, so that the next start -- perhaps running new code -- replays no command
        that already ran.  ``snapshot=False`` leaves the log as a crash would."""
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._capture is not None and not snapshot:
            self._capture.cancel()  # a crash leaves no snapshot behind
            self._capture = None
            self._backlog.clear()
        self._fail_everything(UnavailableError(f"node {self.raft.id!r} stopped"))
        if snapshot and self._tasks and self.failure is None:
            try:
                await self._take_snapshot()
            except Exception as exc:
                # Nothing is lost: the log still holds what the snapshot would have covered.
                self.log.error("no snapshot at stop, the next start replays the log: %s", exc)

    def _fail_everything(self, exc: AgreeError) -> None:
        futures: list[asyncio.Future[Any]] = [p.future for p in self._pending.values()]
        futures += self._read_batch + [f for fs in self._reads.values() for f in fs]
        futures += [w[2] for w in self._applied_waiters] + self._leader_waiters
        futures += self._snapshot_waiters + self._capture_waiters
        for item in self._inbox:
            if not isinstance(item, Receive | Tick):
                futures.append(item.future)
        for fut in futures:
            if not fut.done():
                fut.set_exception(exc)
        self._pending.clear()
        self._read_batch.clear()
        self._reads.clear()
        self._read_deadlines.clear()
        self._applied_waiters.clear()
        self._leader_waiters.clear()
        self._snapshot_waiters.clear()
        self._capture_waiters.clear()
        self._inbox.clear()

    # -- inputs (any coroutine on the loop may call these) -------------------------------------
    def _push(self, item: Input) -> None:
        if self._stopping:
            raise UnavailableError(f"node {self.raft.id!r} is stopping")
        self._inbox.append(item)
        self._wake.set()

    def receive(self, message: Message) -> None:
        if not self._stopping:
            self._push(Receive(message))

    def propose(
        self, data: bytes, deadline: float = math.inf, record: CommandRecord | None = None
    ) -> asyncio.Future[Outcome]:
        """Resolves with the outcome once applied; fails with TimeoutError at the first tick
        after ``deadline`` (the clock's monotonic time) -- one sweep per tick, no timer per
        proposal.  ``record``: the command ``data`` encodes, exactly as decoding it gives it
        back; if the entry commits as proposed here, the host applies it from the record."""
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._push(Propose(data, fut, deadline, record))
        return fut

    def propose_conf_change(self, change: ConfChange) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._push(ProposeConfChange(change, fut))
        return fut

    def transfer_leader(self, target: str) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._push(TransferLeader(target, fut))
        return fut

    def read_index(self, deadline: float = math.inf) -> asyncio.Future[int]:
        """Resolves with a read index once it is confirmed and applied here (§6.4); fails with
        TimeoutError at the first tick after ``deadline`` (the clock's monotonic time) if it
        has not by then."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if unsafe.LOCAL_READS:  # the negative control: no ReadIndex round, a stale read
            fut.set_result(self.host.applied_index)
            return fut
        self._push(ReadIndex(fut))
        if deadline < math.inf:
            heapq.heappush(self._read_deadlines, (deadline, next(self._waiter_seq), fut))
        return fut

    def wait_applied(self, index: int) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self.host.applied_index >= index:
            fut.set_result(self.host.applied_index)
        else:
            heapq.heappush(self._applied_waiters, (index, next(self._waiter_seq), fut))
        return fut

    def request_snapshot(self) -> asyncio.Future[int]:
        """Take a snapshot at the next turn of the loop; resolves with its index."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._push(TakeSnapshot(fut))
        return fut

    def leader_change(self) -> asyncio.Future[None]:
        """Resolves at the next change of leader or role."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._leader_waiters.append(fut)
        return fut

    @property
    def soft_state(self) -> SoftState:
        return self._soft

    def tick(self) -> None:
        """One tick of the node's ticker (ignored once stopping)."""
        if not self._stopping:
            self._push(_TICK)

    # -- the loop ------------------------------------------------------------------------------
    async def _run(self) -> None:
        raft = self.raft
        try:
            while not self._stopping:
                self._wake.clear()
                if self._capture is not None and self._capture.done():
                    await self._finish_snapshot()
                if self._inbox:
                    self._step_inbox()
                if raft.has_ready():
                    await self._handle_ready(raft.ready())
                    if raft.commit_index > raft.applied_index:
                        # The core hands out a large backlog in chunks: let ticks, peer
                        # frames and callers run between two of them.
                        await asyncio.sleep(0)
                elif self._snapshot_waiters and self._capture is None:
                    self._start_snapshot()
                elif not self._inbox:
                    await self._wake.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            # Storage failed or the state machine could not be restored: the node cannot go on
            # safely.  Stop serving and say why; callers get the error instead of hanging.
            self.log.critical("stopped: %s", exc, exc_info=exc)
            self.failure = exc
            self._stopping = True
            err = exc if isinstance(exc, AgreeError) else UnavailableError(f"node failed: {exc}")
            self._fail_everything(err)

    async def _handle_ready(self, rd: Ready) -> None:
        """Persist, send, apply, advance -- in that order (agree.runtime.readyloop), through the
        duties below (:class:`_DriverDuties`)."""
        await self._ready_loop.handle(rd)
        self._release_applied_waiters()
        if self._capture is None and (
            self._since_snapshot_entries >= self.snapshot_entries
            or self._since_snapshot_bytes >= self.snapshot_bytes
        ):
            self._start_snapshot()

    # -- the Ready duties (agree.runtime.readyloop.ReadyHost, through _DriverDuties) ---------------
    async def _persist(
        self, hs: HardState | None, entries: tuple[Entry, ...], snapshot: Snapshot | None
    ) -> None:
        started = self.clock.monotonic() if self._observed else 0.0
        if unsafe.ACK_BEFORE_DURABLE and snapshot is None:
            self._save_behind(hs, entries)  # the negative control: ack, store later
        else:
            if self._saving_behind is not None:
                await self._saving_behind
            await self.store.save(hard_state=hs, entries=entries, snapshot=snapshot)
        if self._observed:
            seconds = self.clock.monotonic() - started
            self.observer.persisted(entries=len(entries), seconds=seconds)

    def _send(self, messages: tuple[Message, ...]) -> None:
        if not messages:
            return
        if self._observed:
            started = self.clock.monotonic()
            self.transport.send(messages)
            seconds = self.clock.monotonic() - started
            self.observer.sent(messages=len(messages), seconds=seconds)
        else:
            self.transport.send(messages)

    def _applying(self) -> AbstractAsyncContextManager[None]:
        if self._capture is not None or self._backlog:
            # The state is being captured: applying waits for it, the Ready loop does not,
            # so heartbeats and persists go on (the core only needs applies to come in order).
            self._deferring = True
            return _NOTHING_HELD
        self._deferring = False
        if self._observed:
            self._apply_started = self.clock.monotonic()
        # Waits (without blocking the loop) while a read_lock() holds the state.
        return self.host.lock.held()

    def _restore(self, snapshot: Snapshot) -> None:
        if self._deferring:
            self._backlog.append(snapshot)
            return
        self.host.restore(snapshot.data)
        # The snapshot's membership may name members this node has not heard of.
        self.transport.update_peers(self.peer_addresses())
        self._snapshot_jumped(snapshot.meta.index)

    def _apply_entries(self, entries: tuple[Entry, ...]) -> None:
        if self._deferring:
            if entries:
                self._backlog.append(entries)
            return
        for entry in entries:
            self._apply(entry)
        if self._observed:
            seconds = self.clock.monotonic() - self._apply_started
            self.observer.applied(entries=len(entries), seconds=seconds)

    def _read_states(self, states: tuple[ReadState, ...]) -> None:
        for rs in states:
            for fut in self._reads.pop(rs.context, ()):
                if not fut.done():
                    self._wait_then_resolve(rs.index, fut)

    def _save_behind(self, hs: HardState | None, entries: Sequence[Entry]) -> None:
        """unsafe.ACK_BEFORE_DURABLE only: store in the background, after the previous save."""
        previous = self._saving_behind

        async def save() -> None:
            if previous is not None:
                await previous
            await self.store.save(hard_state=hs, entries=entries, snapshot=None)

        self._saving_behind = asyncio.ensure_future(save())

    def peer_addresses(self) -> dict[str, str]:
        """The members' addresses as this node reaches them: its own settings first."""
        members = self.host.members
        return {m: self.addresses.get(m, url) for m, url in members.items()}

    def _step_inbox(self) -> None:
        raft = self.raft
        inbox = self._inbox
        while inbox:
            item = inbox.popleft()
            try:
                match item:
                    case Receive(message):
                        raft.step(message)
                    case Tick():
                        raft.tick()
                        now = self.clock.monotonic()
                        if self._next_deadline <= now:
                            self._expire_proposals()
                        if self._read_deadlines and self._read_deadlines[0][0] <= now:
                            self._expire_reads(now)
                    case Propose(data, future, deadline, record):
                        if not future.done():
                            index = raft.propose(data)
                            self._pending[index] = _Pending(raft.term, future, deadline, record)
                            if deadline < self._next_deadline:
                                self._next_deadline = deadline
                    case ProposeConfChange(change, future):
                        if not future.done():
                            index = raft.propose_conf_change(change)
                            self._pending[index] = _Pending(raft.term, future)
                    case TransferLeader(target, future):
                        raft.transfer_leader(target)
                        future.set_result(None)
                    case ReadIndex(future):
                        self._read_batch.append(future)
                    case TakeSnapshot(future):
                        self._snapshot_waiters.append(future)
            except AgreeError as exc:
                match item:
                    case Receive(message):
                        src = message.src
                        extra = {"peer": src}
                        self.log.warning("dropped a message from %s: %s", src, exc, extra=extra)
                    case Tick():
                        raise
                    case _ if not item.future.done():
                        item.future.set_exception(exc)
        if self._read_batch:
            self._start_read_round()

    def _expire_proposals(self) -> None:
        """Fail the proposals whose callers' deadlines passed; they stay pending, so whatever
        becomes of their entries is still accounted for."""
        now = self.clock.monotonic()
        earliest = math.inf
        for pending in self._pending.values():
            if pending.deadline <= now:
                if not pending.future.done():
                    pending.future.set_exception(TimeoutError())
                pending.deadline = math.inf
            elif pending.deadline < earliest:
                earliest = pending.deadline
        self._next_deadline = earliest

    def _expire_reads(self, now: float) -> None:
        """Fail the reads whose callers' deadlines passed (the caller may start a new round)."""
        deadlines = self._read_deadlines
        while deadlines and deadlines[0][0] <= now:
            _, _, fut = heapq.heappop(deadlines)
            if not fut.done():
                fut.set_exception(TimeoutError())

    def _start_read_round(self) -> None:
        """One ReadIndex round for every read queued since the last one (§6.4, batching)."""
        batch = [f for f in self._read_batch if not f.done()]
        self._read_batch = []
        # Forget rounds whose callers all gave up (a forwarded request or its answer was lost).
        for stale in [c for c, fs in self._reads.items() if all(f.done() for f in fs)]:
            del self._reads[stale]
        if not batch:
            return
        ctx = next(self._read_ctx).to_bytes(8, "big")
        try:
            self.raft.read_index(ctx)
        except NotLeaderError as exc:
            for fut in batch:
                fut.set_exception(exc)
            return
        self._reads[ctx] = batch

    def _wait_then_resolve(self, index: int, fut: asyncio.Future[int]) -> None:
        if self.host.applied_index >= index:
            fut.set_result(index)
        else:
            heapq.heappush(self._applied_waiters, (index, next(self._waiter_seq), fut))

    def _release_applied_waiters(self) -> None:
        applied = self.host.applied_index
        waiters = self._applied_waiters
        while waiters and waiters[0][0] <= applied:
            _, _, fut = heapq.heappop(waiters)
            if not fut.done():
                fut.set_result(applied)

    def _apply(self, entry: Entry) -> None:
        result: Any
        if entry.type is EntryType.NORMAL:
            # The entry this node proposed in this term, at this index, is the one it proposed:
            # its own record of the command spares decoding it.
            mine = self._pending.get(entry.index)
            record = mine.record if mine is not None and mine.term == entry.term else None
            result = self.host.apply(entry, record)
            self._since_snapshot_bytes += len(entry.data)
        elif entry.type is EntryType.CONF_CHANGE:
            change = self.host.apply_conf_change(entry)
            result = entry.index
            if change is not None:
                self.log.info(
                    "membership change applied: %s %s",
                    change.type.value,
                    change.node_id,
                    extra={"index": entry.index, "member": change.node_id},
                )
                self.transport.update_peers(self.peer_addresses())
                if self.on_conf_change is not None:
                    self.on_conf_change(change)
        else:
            self.host.apply_noop(entry)
            result = None
        self._since_snapshot_entries += 1
        pending = self._pending.pop(entry.index, None)
        if pending is not None and not pending.future.done():
            if pending.term == entry.term:
                pending.future.set_result(result)
            else:
                pending.future.set_exception(
                    ProposalLost(f"log slot {entry.index} was overwritten")
                )

    def _snapshot_jumped(self, index: int) -> None:
        """A received snapshot replaced the state up to ``index``: proposals at or below it may
        or may not be in it.  Their callers retry; the session table answers them."""
        for idx in [i for i in self._pending if i <= index]:
            pending = self._pending.pop(idx)
            if not pending.future.done():
                pending.future.set_exception(ProposalLost(f"a snapshot replaced slot {idx}"))
        self._since_snapshot_entries = 0
        self._since_snapshot_bytes = 0

    def _soft_state_changed(self, soft: SoftState) -> None:
        previous, self._soft = self._soft, soft
        if soft.role is Role.LEADER and previous.role is not Role.LEADER:
            self.log.info("became the leader")
        elif soft.leader_id != previous.leader_id or soft.role is not previous.role:
            # A new leader is news; a role change during an election is detail.
            self.log.log(
                logging.INFO if soft.leader_id != previous.leader_id else logging.DEBUG,
                "now %s; the leader is %s",
                soft.role.value,
                soft.leader_id or "unknown",
                extra={"leader": soft.leader_id},
            )
        if previous.role is Role.LEADER and soft.role is not Role.LEADER:
            # What it proposed and did not see commit may commit under the next leader or be
            # overwritten, perhaps only when that leader's log happens to reach the slot: hand
            # it back now.  Callers retry with the same client id and seq (exactly once).
            pending, self._pending = self._pending, {}
            for index, p in pending.items():
                if not p.future.done():
                    p.future.set_exception(
                        ProposalLost(f"log slot {index}: leadership lost before it committed")
                    )
            # Reads queued on a deposed leader can never be confirmed by it.
            for ctx in list(self._reads):
                for fut in self._reads.pop(ctx):
                    if not fut.done():
                        fut.set_exception(NotLeaderError(leader_id=soft.leader_id))
        if soft.role is Role.LEADER and previous.role is not Role.LEADER and self.on_leader:
            self.on_leader()
        waiters, self._leader_waiters = self._leader_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- snapshots: serialized off the loop --------------------------------------------------------
    def _start_snapshot(self) -> None:
        """Start serializing the state at the applied index in a worker thread, which holds the
        state lock meanwhile.  The loop goes on ticking, sending heartbeats, persisting and
        serving the other groups; what this group commits meanwhile waits in the backlog and
        is applied, in order, once the capture is done, so no apply lands mid-capture.  The core
        is compacted then too, between two Readys (:meth:`_finish_snapshot`)."""
        waiters, self._snapshot_waiters = self._snapshot_waiters, []
        if self.host.applied_index <= self.raft.snapshot_index:  # nothing applied since
            self._resolve(waiters, self.raft.snapshot_index)
            return
        self._capture_waiters = waiters
        self._since_snapshot_entries = 0
        self._since_snapshot_bytes = 0
        self._capture_started = self.clock.monotonic() if self._observed else 0.0
        capture = asyncio.ensure_future(asyncio.to_thread(self._capture_state))
        capture.add_done_callback(lambda _: self._wake.set())
        self._capture = capture

    def _capture_state(self) -> tuple[int, bytes]:
        """In a worker thread: the applied index and the state there, as one blob."""
        with self.host.lock:  # blocks this thread only; the loop polls for the lock
            return self.host.applied_index, self.host.snapshot()

    async def _finish_snapshot(self) -> None:
        """Compact the core and the store to a finished capture; raises what the capture
        raised (the node stops, as for any failed snapshot)."""
        capture, self._capture = self._capture, None
        assert capture is not None
        waiters, self._capture_waiters = self._capture_waiters, []
        index, data = capture.result()
        if self._backlog:
            await self._apply_backlog()
        if index <= self.raft.snapshot_index:
            # A snapshot from the leader replaced the log meanwhile; it covers this one.
            self._resolve(waiters, self.raft.snapshot_index)
            return
        snapshot = self.raft.compact(index, data)
        # Writing the (possibly large) blob happens on the storage thread.
        await self.store.compact(snapshot)
        self.log.info(
            "took a snapshot at index %d (%d bytes)", index, len(data), extra={"index": index}
        )
        if self._observed:
            seconds = self.clock.monotonic() - self._capture_started
            self.observer.snapshotted(index=index, size=len(data), seconds=seconds)
        self._resolve(waiters, index)

    async def _apply_backlog(self) -> None:
        """Apply, in order, what arrived to apply during the capture: one Ready's share at a
        time (each at most max_committed_bytes_per_ready), letting ticks, peer frames and
        callers run in between -- a capture of a large state can gather a backlog that would
        otherwise stop the loop for longer than an election timeout."""
        started = self.clock.monotonic() if self._observed else 0.0
        count = 0
        backlog = self._backlog
        self._deferring = False  # (a Ready that comes meanwhile defers behind the backlog)
        while backlog:
            item = backlog.popleft()
            async with self.host.lock.held():
                if isinstance(item, Snapshot):
                    self._restore(item)
                else:
                    count += len(item)
                    for entry in item:
                        self._apply(entry)
            self._release_applied_waiters()
            if backlog:
                await asyncio.sleep(0)
        if self._observed:
            seconds = self.clock.monotonic() - started
            self.observer.applied(entries=count, seconds=seconds)

    async def _take_snapshot(self) -> None:
        """Snapshot what is applied now and wait for it (at stop, once the Ready loop has ended):
        a capture under way first, then one of what was applied after it began, if anything."""
        for _ in range(2):
            if self._capture is None:
                self._start_snapshot()
            if self._capture is None:
                return
            await asyncio.wait((self._capture,))
            await self._finish_snapshot()

    @staticmethod
    def _resolve(waiters: list[asyncio.Future[int]], index: int) -> None:
        for fut in waiters:
            if not fut.done():
                fut.set_result(index)


_NOTHING_HELD: AbstractAsyncContextManager[None] = contextlib.nullcontext()


class _DriverDuties:
    """The driver's Ready duties under the names the shared loop calls them by (the driver's
    own public names are for its callers)."""

    __slots__ = ("_d",)

    def __init__(self, driver: Driver) -> None:
        self._d = driver

    def persist(
        self, hard_state: HardState | None, entries: tuple[Entry, ...], snapshot: Snapshot | None
    ) -> Coroutine[Any, Any, None]:
        return self._d._persist(hard_state, entries, snapshot)

    def send(self, messages: tuple[Message, ...]) -> None:
        self._d._send(messages)

    def applying(self) -> AbstractAsyncContextManager[None]:
        return self._d._applying()

    def restore(self, snapshot: Snapshot) -> None:
        self._d._restore(snapshot)

    def apply(self, entries: tuple[Entry, ...]) -> None:
        self._d._apply_entries(entries)

    def read_states(self, states: tuple[ReadState, ...]) -> None:
        self._d._read_states(states)

    def soft_state(self, soft: SoftState) -> None:
        self._d._soft_state_changed(soft)
