"""An agree node in asyncio: storage, Raft core, state-machine host and transport, wired.

:class:`Node` is what ``agree-manage runnode`` runs and what ``agree.wrap`` embeds.  It turns a
call into Raft work: a command on the leader is proposed and answered when it applies; a command
elsewhere is forwarded to the leader, retried across leader changes with the same
``(client id, seq)`` so it applies at most once; a query is served at the consistency asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import random
import types
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from agree import unsafe
from agree.calls import Call, CallKind, Outcome, check_timeout
from agree.clock import Clock, SystemClock
from agree.cluster_schema import (
    ANNOUNCE_METHOD,
    ANNOUNCE_OBJECT,
    announcement_args,
    encode_schema_record,
    record_from_args,
)
from agree.codec import CommandRecord, encode_command
from agree.driver import Driver
from agree.errors import (
    AgreeError,
    AgreeTimeoutError,
    ConfigurationError,
    DeadlockError,
    MembershipChangeError,
    NotLeaderError,
    OutcomeUnknownError,
    ProposalLost,
    ProposalRejectedError,
    UnavailableError,
    UnknownMethodError,
    ValidationError,
)
from agree.host import Host
from agree.observer import Observer
from agree.raft.entries import (
    ConfChange,
    ConfChangeType,
    ConfState,
    HardState,
    PersistedState,
)
from agree.raft.membership import bootstrap_entries
from agree.raft.messages import Message
from agree.raft.node import RaftNode
from agree.raft.ready import Role
from agree.replicated import Consistency, Replicated, create_initial
from agree.settings import Settings, load_settings
from agree.storage import open_store
from agree.storage.threaded import AsyncLogStore
from agree.subscriptions import MutationStream, Subscription, SubscriptionHub
from agree.transport.base import Transport
from agree.transport.memory import MemoryNetwork

log = logging.getLogger(__name__)

# As the codec writes commands: compact, UTF-8.
_SIZE_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class NodeStatus:
    id: str
    role: str
    leader_id: str | None
    term: int
    commit_index: int
    applied_index: int
    last_index: int
    voters: tuple[str, ...]
    learners: tuple[str, ...]
    members: dict[str, str]
    #: Leader only: member -> the highest log index known to be replicated on it.
    match_index: dict[str, int] = field(default_factory=dict)
    #: Member -> seconds since this node last received a message from it.
    last_contact: dict[str, float] = field(default_factory=dict)


def bootstrap_state(nodes: Mapping[str, str]) -> PersistedState:
    """The first entries of a brand-new cluster, identical on every founding node.

    The founding configuration is written into the log itself (as etcd does) rather than kept
    beside it, so a node that joins later learns it by replication like any other entry.
    Each founder is added as a learner then promoted; the URLs travel in the entries' context.
    """
    conf = ConfState(voters=frozenset(nodes))
    entries = bootstrap_entries(conf, {node_id: url.encode() for node_id, url in nodes.items()})
    return PersistedState(hard_state=HardState(term=1), entries=tuple(entries))


def _initial_copies(objects: Mapping[str, Replicated]) -> dict[str, Replicated]:
    """Private copies of the objects given to a node: TypeError for anything not Replicated."""
    copies: dict[str, Replicated] = {}
    for name, obj in objects.items():
        if not isinstance(obj, Replicated):
            what = (
                f"the class {obj.__qualname__}"
                if isinstance(obj, type)
                else f"an instance of {type(obj).__qualname__}"
            )
            raise TypeError(
                f"object {name!r} must be an instance of an agree.Replicated subclass, got"
                f" {what}; derive its class from Replicated and pass an instance"
            )
        try:
            copies[name] = copy.deepcopy(obj)
        except Exception as exc:
            raise TypeError(
                f"object {name!r} ({type(obj).__qualname__}) cannot be copied ({exc}); its state"
                " must be plain data, since it is copied at start and snapshotted"
            ) from exc
    return copies


class Node:
    """One member of an agree cluster.  Use ``async with Node(settings) as node:``.

    ``objects`` (added to those named in OBJECTS) are initial states: the node copies them and
    works on its own copies.  Every :meth:`start` rebuilds the state from those copies and
    what storage holds, so stopping and starting again resumes exactly where it stopped.
    """

    def __init__(
        self,
        settings: Settings | types.ModuleType | str | None = None,
        *,
        objects: Mapping[str, Replicated] | None = None,
        transport: Transport | None = None,
        join: bool = False,
        rng: random.Random | None = None,
        clock: Clock | None = None,
        observer: Observer | None = None,
        **values: Any,
    ) -> None:
        if isinstance(settings, Settings):
            self.settings = settings.replace(**values) if values else settings
        else:
            self.settings = load_settings(settings, **values)
        self.id = self.settings.NODE_ID
        # The given objects are the initial state, copied now: every start() builds the state
        # machine afresh from a copy of them plus what storage holds (snapshot + log), so a
        # restart never replays the log onto state that already applied it, and the caller's
        # own objects are never mutated behind its back.
        self._initial_objects = _initial_copies(objects or {})
        self._transport = transport
        self._join = join
        self._rng = rng or random.Random()
        self._clock: Clock = clock or SystemClock()
        self._observer = observer
        self._client_id = uuid.uuid4().hex
        self._seq = 0
        self._outstanding: set[int] = set()
        self._low = 1  # the lowest seq not yet done: every seq below it is answered
        self._last_stamp = 0
        self._driver: Driver | None = None
        self._store: AsyncLogStore | None = None
        self._host: Host | None = None
        self._hub: SubscriptionHub | None = None
        self._started = False
        self._announcer: asyncio.Task[None] | None = None
        # Peer -> monotonic time of its last message, for the operators' view of liveness.
        self._last_heard: dict[str, float] = {}

    def __repr__(self) -> str:
        if not self._started:
            return f"<Node {self.id!r} stopped>"
        s = self.status()
        return (
            f"<Node {s.id!r} {s.role}, term {s.term}, leader {s.leader_id!r}, "
            f"applied {s.applied_index}>"
        )

    # -- lifecycle ------------------------------------------------------------------------------
    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._started:
            return
        settings = self.settings
        objects = self._build_objects()
        unsafe.refuse_unless_allowed()
        store = AsyncLogStore(
            await asyncio.to_thread(
                open_store,
                settings.store_url(),
                auto_migrate=settings.AUTO_MIGRATE,
                owner=self.id,
            ),
            commit_delay=settings.STORAGE_COMMIT_DELAY,
        )
        try:
            persisted = await store.load()
            fresh = (
                persisted.snapshot is None
                and not persisted.entries
                and persisted.hard_state == HardState()
            )
            if fresh and not self._join:
                persisted = bootstrap_state(settings.NODES)
                await store.save(
                    hard_state=persisted.hard_state, entries=persisted.entries, snapshot=None
                )
            host = Host(objects, node_id=self.id, members=dict(settings.NODES))
            # Before the restore, so that the hub knows nothing older can be resumed from.
            hub = SubscriptionHub(host.decode_mutation)
            host.hub = hub
            if persisted.snapshot is not None:
                host.restore(persisted.snapshot.data)
            raft = RaftNode(
                settings.raft_config(),
                rng=self._rng,
                persisted=persisted,
                applied=host.applied_index,
            )
        except BaseException:
            await store.close()
            raise
        transport = self._transport or MemoryNetwork().transport(self.id)
        self._transport = transport
        driver = Driver(
            raft,
            store,
            transport,
            host,
            clock=self._clock,
            observer=self._observer,
            tick_interval=settings.TICK_INTERVAL,
            snapshot_entries=settings.SNAPSHOT_ENTRIES,
            snapshot_bytes=settings.SNAPSHOT_BYTES,
            on_leader=self._announce_schema,
            addresses=settings.NODES,
        )
        self._store, self._host, self._hub, self._driver = store, host, hub, driver
        transport.update_peers(driver.peer_addresses())
        await transport.start(self)
        await driver.start()
        self._started = True
        driver.log.info(
            "started: members %s, applied index %d%s",
            ", ".join(sorted(host.members)),
            host.applied_index,
            " (waiting to be added to a cluster)" if fresh and self._join else "",
            extra={"index": host.applied_index},
        )
        self._announcer = asyncio.create_task(self._announce_until_recorded())

    async def stop(self, *, snapshot: bool = True) -> None:
        """Stop serving.  A clean stop snapshots what was applied since the last snapshot, so
        that a restart running new code replays nothing under it; ``snapshot=False`` leaves
        the storage as a crash would (the next start replays the log)."""
        if not self._started:
            return
        if self.holds_read_lock():  # the stop's snapshot would wait for this very thread
            raise DeadlockError("stop() called from inside read_lock(); stop after the with block")
        self._started = False
        if self._announcer is not None:
            self._announcer.cancel()
            with contextlib.suppress(BaseException):
                await self._announcer
        assert self._driver and self._store and self._hub and self._transport
        await self._transport.close()
        await self._driver.stop(snapshot=snapshot)
        self._hub.close()
        await self._store.close()
        self._driver.log.info("stopped", extra={"index": self._driver.host.applied_index})

    def _build_objects(self) -> dict[str, Replicated]:
        objects: dict[str, Replicated] = {}
        for name, cls in self.settings.resolve_objects().items():
            objects[name] = create_initial(cls)
        objects.update(copy.deepcopy(self._initial_objects))
        if not objects:
            raise ConfigurationError(
                "this node hosts no objects: name them in OBJECTS, e.g."
                " OBJECTS = {'counter': 'myproject.models.Counter'}",
                setting="OBJECTS",
            )
        return objects

    def _announce_schema(self) -> None:
        """As a new leader, record this node's schemas in the log (agree.cluster_schema)."""
        assert self._driver is not None and self._host is not None
        data = encode_schema_record(self.id, self._host.local_schemas())
        fut = self._driver.propose(data)
        # Nobody waits for it: its effect is the recorded schemas, checked on every replica.
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def _announce_until_recorded(self) -> None:
        """Announce this node's schemas through the leader until the log holds them, so that
        what its code adds can be adopted (agree.cluster_schema).  A leader announces on its
        own (_announce_schema); this covers a node that starts as a follower."""
        host = self._host
        assert host is not None
        call = Call(
            ANNOUNCE_OBJECT,
            ANNOUNCE_METHOD,
            CallKind.COMMAND,
            args=announcement_args(self.id, host.local_schemas()),
        )
        wait = self._election_timeout()
        while self._started and not host.announced():
            try:
                leader = self.driver.soft_state.leader_id
            except AgreeError:
                return  # the node failed (e.g. its schema was refused): it says why itself
            if leader is not None and leader != self.id:
                try:
                    assert self._transport is not None
                    outcome = await self._transport.forward(leader, call, 4 * wait)
                    # Applied there: once it is applied here too, the loop ends (a slow apply
                    # here must not announce twice).
                    await asyncio.wait_for(self.driver.wait_applied(outcome.index), 4 * wait)
                    if host.announced():
                        return
                except (AgreeError, TimeoutError) as exc:
                    log.debug("node %s: schema announcement not recorded yet: %s", self.id, exc)
            deadline = self._clock.monotonic() + wait
            with contextlib.suppress(AgreeError):
                await self._wait_leader_change(deadline)

    async def _record_announcement(self, call: Call, deadline: float) -> Outcome:
        """As the leader, propose a forwarded announcement and answer once it applied."""
        data = record_from_args(call.args)
        remaining = deadline - self._clock.monotonic()
        try:
            outcome: Outcome = await asyncio.wait_for(
                self._require_leader().propose(data), remaining
            )
        except TimeoutError:
            raise AgreeTimeoutError("the schema announcement was not applied in time") from None
        return outcome

    @property
    def failure(self) -> BaseException | None:
        """Why this node stopped serving, if it did (storage failure, schema mismatch...)."""
        return None if self._driver is None else self._driver.failure

    @property
    def driver(self) -> Driver:
        if self._driver is None:
            raise UnavailableError(f"node {self.id!r} is not started")
        failure = self._driver.failure
        if isinstance(failure, AgreeError):
            raise failure
        if failure is not None:
            raise UnavailableError(f"node {self.id!r} failed: {failure}")
        return self._driver

    @property
    def host(self) -> Host:
        self.driver  # noqa: B018 - raises if not running
        assert self._host is not None
        return self._host

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until a leader is known and this node has applied everything committed before
        now (one linearizable read round succeeds), and the log holds its schemas'
        announcement (so that the operations its code adds are adopted when they can be)."""
        deadline = self._deadline(timeout)
        await self._linearizable_index(deadline)
        loop = asyncio.get_running_loop()
        while not self.host.announced():
            if loop.time() >= deadline:
                raise AgreeTimeoutError(f"node {self.id!r}: its schemas were not announced in time")
            await asyncio.sleep(self.settings.TICK_INTERVAL)

    # -- transport handler ----------------------------------------------------------------------
    def receive(self, message: Message) -> None:
        self._last_heard[message.src] = self._clock.monotonic()
        if self._driver is not None:
            self._driver.receive(message)

    async def handle_call(self, call: Call, timeout: float) -> Outcome:
        """A call forwarded by a peer: served here or refused, never forwarded again (no loops)."""
        # The entry node validated it; the leader validates again when it applies.
        # The peer sent what was left of its caller's checked timeout (it may have run out on
        # the way): a deadline as it is, not a user's value to validate.
        deadline = self._clock.monotonic() + timeout
        if call.object == ANNOUNCE_OBJECT and call.method == ANNOUNCE_METHOD:
            return await self._record_announcement(call, deadline)
        return await self._call(call, deadline, may_forward=False, validated=True)

    # -- calls ----------------------------------------------------------------------------------
    def next_call_ids(self) -> tuple[str, int, int]:
        """(client id, seq, ack) for a new command issued through this node."""
        self._seq += 1
        self._outstanding.add(self._seq)
        return self._client_id, self._seq, self._low - 1

    def call_done(self, seq: int) -> None:
        self._outstanding.discard(seq)
        # Amortised O(1): the low-water mark only moves forward.
        while self._low <= self._seq and self._low not in self._outstanding:
            self._low += 1

    async def call(
        self, call: Call, timeout: float | None = None, *, validated: bool = False
    ) -> Outcome:
        """Run a call anywhere in the cluster; ``timeout`` defaults to REQUEST_TIMEOUT."""
        if self.holds_read_lock():
            raise DeadlockError(
                f"{call.object}.{call.method} called from inside read_lock() would wait for the"
                " state that read holds; make the call after the with block"
            )
        return await self._call(
            call, self._deadline(timeout), may_forward=True, validated=validated
        )

    def _deadline(self, timeout: float | None) -> float:
        seconds = check_timeout(timeout)
        return self._clock.monotonic() + (
            self.settings.REQUEST_TIMEOUT if seconds is None else seconds
        )

    async def _call(
        self, call: Call, deadline: float, *, may_forward: bool, validated: bool = False
    ) -> Outcome:
        host = self.host
        kind = "command" if call.kind is CallKind.COMMAND else "query"
        op = host.operation(call.object, call.method, kind)
        self._check_size(call)
        if not validated:  # before anything is proposed or read
            op.bind_json(call.args, call.kwargs)
        # Only what every member's code has may be proposed (agree.cluster_schema).
        host.check_adopted(call.object, call.method, call.args, call.kwargs)
        if call.kind is CallKind.COMMAND:
            return await self._command(call, deadline, may_forward)
        consistency = call.consistency or op.consistency or Consistency.LINEARIZABLE
        return await self._query(call, Consistency(consistency), deadline, may_forward)

    def _check_size(self, call: Call) -> None:
        """Refuse arguments over MAX_CALL_BYTES, measured as they are encoded (compact UTF-8
        JSON), so that a call in-process meets the same limit as one over HTTP."""
        if not call.args and not call.kwargs:
            return
        limit = self.settings.MAX_CALL_BYTES
        try:
            size = len(_SIZE_ENCODER.encode([call.args, call.kwargs]).encode())
        except (TypeError, ValueError):
            return  # not JSON: refused with its own error when it is bound or encoded
        if size > limit:
            raise ValidationError(
                f"{call.object}.{call.method}: its arguments take {size} bytes encoded, more"
                f" than MAX_CALL_BYTES ({limit}); pass less per call, or raise MAX_CALL_BYTES"
            )

    def _stamp(self) -> int:
        # The leader's clock, made strictly increasing; replicas apply max(previous, stamp).
        self._last_stamp = max(self._clock.wall_ns(), self._last_stamp + 1)
        return self._last_stamp

    async def _command(self, call: Call, deadline: float, may_forward: bool) -> Outcome:
        in_doubt = False  # whether some attempt may have reached the log
        while True:
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                if in_doubt:
                    raise OutcomeUnknownError(
                        f"{call.object}.{call.method} timed out; it may or may not have been"
                        " applied (retrying with the same client id and seq is safe)"
                    )
                raise AgreeTimeoutError(
                    f"{call.object}.{call.method} timed out; it was not applied"
                )
            driver = self.driver
            soft = driver.soft_state
            if soft.role is Role.LEADER:
                record = CommandRecord(
                    object=call.object,
                    method=call.method,
                    args=call.args,
                    kwargs=call.kwargs,
                    client_id=call.client_id,
                    seq=call.seq,
                    ack=call.ack,
                    timestamp_ns=self._stamp(),
                )
                fut = driver.propose(encode_command(record))
                try:
                    outcome: Outcome = await asyncio.wait_for(fut, remaining)
                    return outcome
                except ProposalLost:
                    in_doubt = True
                except (NotLeaderError, ProposalRejectedError):
                    await self._wait_leader_change(deadline)
                except TimeoutError:
                    in_doubt = True
                except UnavailableError as exc:
                    # The node stopped with the command in its log: it may still commit.
                    raise OutcomeUnknownError(
                        f"{call.object}.{call.method}: {exc}; it may or may not have been applied"
                        " (retrying with the same client id and seq is safe)"
                    ) from exc
                continue
            if soft.leader_id is not None and soft.leader_id != self.id:
                if not may_forward:
                    raise self._not_leader()
                try:
                    assert self._transport is not None
                    return await self._transport.forward(soft.leader_id, call, remaining)
                except (NotLeaderError, ProposalRejectedError, UnavailableError, AgreeTimeoutError):
                    # Whatever the peer said, it may have proposed the command before it failed
                    # (e.g. lost its slot to a new leader's snapshot): from here on, a timeout
                    # means "outcome unknown", never "not applied".
                    in_doubt = True
                    await self._wait_leader_change(deadline, at_most=self._election_timeout())
                continue
            await self._wait_leader_change(deadline)

    async def _query(
        self, call: Call, consistency: Consistency, deadline: float, may_forward: bool
    ) -> Outcome:
        if consistency is Consistency.ANY:
            return await self._local_query(call, deadline)
        if consistency is Consistency.LINEARIZABLE:
            await self._linearizable_index(deadline)
            return await self._local_query(call, deadline)
        while True:  # LEADER: the node that believes it leads answers, without a check
            soft = self.driver.soft_state
            if soft.role is Role.LEADER:
                return await self._local_query(call, deadline)
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                raise AgreeTimeoutError(f"{call.object}.{call.method}: no leader answered in time")
            if soft.leader_id is not None and soft.leader_id != self.id:
                if not may_forward:
                    raise self._not_leader()
                try:
                    assert self._transport is not None
                    return await self._transport.forward(soft.leader_id, call, remaining)
                except (NotLeaderError, UnavailableError, AgreeTimeoutError):
                    await self._wait_leader_change(deadline, at_most=self._election_timeout())
                continue
            await self._wait_leader_change(deadline)

    async def _local_query(self, call: Call, deadline: float) -> Outcome:
        if not self._started:  # its state is no longer kept up to date
            raise UnavailableError(f"node {self.id!r} is stopped")
        host = self.host
        lock = host.lock
        if lock.try_acquire():  # the usual case, without a wait
            try:
                return host.query(call.object, call.method, call.args, call.kwargs)
            finally:
                lock.release()
        async with lock.held(deadline):  # never blocks the loop on a read_lock()
            return host.query(call.object, call.method, call.args, call.kwargs)

    async def _linearizable_index(self, deadline: float) -> int:
        """ReadIndex (§6.4): a read index confirmed by the leader and applied here."""
        while True:
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                raise AgreeTimeoutError("no linearizable read could be confirmed in time")
            # A round that is not confirmed within an election timeout (lost request, deposed
            # leader) is abandoned and a new one started.
            fut = self.driver.read_index()
            try:
                return await asyncio.wait_for(fut, min(remaining, 2 * self._election_timeout()))
            except NotLeaderError:
                await self._wait_leader_change(deadline, at_most=self._election_timeout())
            except TimeoutError:
                continue

    def _election_timeout(self) -> float:
        return self.settings.ELECTION_TICKS * self.settings.TICK_INTERVAL

    async def _wait_leader_change(self, deadline: float, at_most: float | None = None) -> None:
        remaining = deadline - self._clock.monotonic()
        if at_most is not None:
            remaining = min(remaining, at_most)
        if remaining <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.driver.leader_change(), remaining)

    # -- proxies and subscriptions --------------------------------------------------------------
    def proxy(self, name: str) -> Any:
        """An :class:`agree.proxy.AsyncProxy` for the object hosted under ``name``."""
        from agree.proxy import AsyncProxy, NodeBackend

        schema = self.host.schema(name)
        return AsyncProxy(NodeBackend(self), name, schema)

    def mutations(
        self, object: str | None = None, method: str | None = None, *, from_index: int | None = None
    ) -> MutationStream:
        """An async iterator of the mutations applied here, optionally from a past index."""
        self._check_filter(object, method)
        assert self._hub is not None
        return self._hub.stream(object, method, from_index=from_index)

    def subscribe(
        self, callback: Any, object: str | None = None, method: str | None = None
    ) -> Subscription:
        self._check_filter(object, method)
        assert self._hub is not None
        return self._hub.subscribe(callback, object, method, in_thread=True)

    def _check_filter(self, object: str | None, method: str | None) -> None:
        """Refuse a filter that can never match: an unknown object, or a method that is not a
        command of it (of any hosted object, without ``object``).  Only commands mutate."""
        host = self.host
        if object is not None:
            host.object(object)  # UnknownObjectError if it is not hosted here
        if method is None:
            return
        names = sorted(host.objects) if object is None else [object]
        schemas = {name: host.schema(name) for name in names}
        if any(method in schema.commands for schema in schemas.values()):
            return
        if any(method in schema.queries for schema in schemas.values()):
            of = "" if object is None else f" of {object!r}"
            raise UnknownMethodError(
                f"{method!r} is a query{of}, not a command: only commands are published as"
                " mutations"
            )
        commands = sorted({c for schema in schemas.values() for c in schema.commands})
        who = "no hosted object has" if object is None else f"{object!r} has no"
        raise UnknownMethodError(
            f"{who} command {method!r} to subscribe to; commands: {', '.join(commands) or 'none'}"
        )

    @contextlib.contextmanager
    def read_lock(self, name: str) -> Iterator[Any]:
        """Direct access to the local object, with applying and queries held off meanwhile
        (the event loop goes on).  Keep it short; a call on this node from inside it, in the
        same thread, would wait for itself (a wrapped handle refuses it with DeadlockError)."""
        host = self.host
        with host.lock.reading():
            yield host.object(name)

    def holds_read_lock(self) -> bool:
        """Whether the current thread is inside :meth:`read_lock` of this node: a call from
        there would wait for the state this thread holds."""
        host = self._host
        return host is not None and host.lock.read_by_this_thread()

    # -- status and membership ------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self.driver.soft_state.role is Role.LEADER

    @property
    def leader_id(self) -> str | None:
        return self.driver.soft_state.leader_id

    def status(self) -> NodeStatus:
        raft = self.driver.raft
        conf = raft.conf
        now = self._clock.monotonic()
        return NodeStatus(
            id=self.id,
            role=self.driver.soft_state.role.value,
            leader_id=self.driver.soft_state.leader_id,
            term=raft.term,
            commit_index=raft.commit_index,
            applied_index=self.host.applied_index,
            last_index=raft.last_index,
            voters=tuple(sorted(conf.voters)),
            learners=tuple(sorted(conf.learners)),
            members=dict(self.host.members),
            match_index={peer: match for peer, (match, _) in raft.status().progress.items()},
            last_contact={
                peer: round(now - heard, 3)
                for peer, heard in self._last_heard.items()
                if peer in self.host.members
            },
        )

    def _not_leader(self) -> NotLeaderError:
        leader = self.driver.soft_state.leader_id
        url = self.host.members.get(leader) if leader is not None else None
        return NotLeaderError(leader_id=leader, leader_url=url)

    def _require_leader(self) -> Driver:
        driver = self.driver
        if driver.soft_state.role is not Role.LEADER:
            raise self._not_leader()
        return driver

    async def _conf_change(self, change: ConfChange, deadline: float) -> None:
        remaining = deadline - self._clock.monotonic()
        fut = self._require_leader().propose_conf_change(change)
        try:
            await asyncio.wait_for(fut, remaining)
        except TimeoutError:
            raise OutcomeUnknownError(
                f"membership change {change.type.value} of {change.node_id!r} timed out"
            ) from None
        except ProposalLost:
            raise OutcomeUnknownError(
                f"membership change {change.type.value} of {change.node_id!r} was interrupted"
                " by a leader change; check the members and retry"
            ) from None

    async def add_member(
        self, node_id: str, url: str, *, learner: bool = False, timeout: float | None = None
    ) -> None:
        """Add ``node_id`` as a learner; unless ``learner``, promote it once it caught up."""
        deadline = self._deadline(timeout)
        status = self.status()
        if node_id not in status.learners:
            if node_id in status.voters:
                raise MembershipChangeError(f"{node_id!r} is already a voting member")
            await self._conf_change(
                ConfChange(ConfChangeType.ADD_LEARNER, node_id, url.encode()), deadline
            )
        if learner:
            return
        while True:  # wait until the learner holds everything committed so far
            progress = self._require_leader().raft.status().progress.get(node_id)
            if progress is not None and progress[0] >= self.driver.raft.commit_index:
                break
            if self._clock.monotonic() >= deadline:
                raise AgreeTimeoutError(
                    f"learner {node_id!r} did not catch up in time; it stays a learner"
                )
            await self._clock.sleep(self.settings.TICK_INTERVAL)
        await self._conf_change(ConfChange(ConfChangeType.PROMOTE, node_id), deadline)

    async def remove_member(self, node_id: str, *, timeout: float | None = None) -> None:
        await self._conf_change(ConfChange(ConfChangeType.REMOVE, node_id), self._deadline(timeout))

    async def transfer_leader(self, node_id: str, *, timeout: float | None = None) -> None:
        """Hand leadership to ``node_id`` and wait until it leads (§3.10)."""
        deadline = self._deadline(timeout)
        if self.leader_id == node_id:
            return
        await self._require_leader().transfer_leader(node_id)
        while self.leader_id != node_id:
            if self._clock.monotonic() >= deadline:
                raise AgreeTimeoutError(f"leadership did not move to {node_id!r} in time")
            await self._wait_leader_change(deadline)

    def members(self) -> dict[str, dict[str, str]]:
        status = self.status()
        out: dict[str, dict[str, str]] = {}
        for node_id in status.voters:
            out[node_id] = {"url": status.members.get(node_id, ""), "role": "voter"}
        for node_id in status.learners:
            out[node_id] = {"url": status.members.get(node_id, ""), "role": "learner"}
        return out

    async def snapshot(self) -> int:
        """Take a snapshot now and compact the log; returns its index."""
        return await self.driver.request_snapshot()
