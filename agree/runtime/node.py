"""An agree node in asyncio: its Raft groups, their storage, ticker and transport, wired.

:class:`Node` is what ``agree-manage runnode`` runs and what ``agree.wrap`` embeds.  It hosts
one or more Raft groups (:mod:`agree.runtime.group`; the GROUPS setting, "default" otherwise),
each with its own objects, log and leader, sharing one storage engine (one transaction per
loop turn), one ticker and one peer connection per remote node.  A call goes to the group
hosting the object it names; :mod:`agree.runtime.router` runs it there (proposed, forwarded
to the leader, retried, read at the consistency asked) and :mod:`agree.runtime.membership`
changes members.  :mod:`agree.runtime.compose` is where settings are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import types
from collections.abc import Coroutine, Iterator, Mapping
from typing import Any, Final

from agree import unsafe
from agree.conf.settings import Settings, load_settings
from agree.errors import (
    AgreeError,
    AgreeTimeoutError,
    DeadlockError,
    UnavailableError,
    UnknownMethodError,
    UnknownObjectError,
    ValidationError,
)
from agree.objects.replicated import Consistency, Replicated
from agree.objects.schema import ObjectSchema
from agree.raft.messages import Message
from agree.raft.ready import Role
from agree.replica.cluster_schema import (
    ANNOUNCE_METHOD,
    ANNOUNCE_OBJECT,
    announcement_args,
    encode_schema_record,
    record_from_args,
)
from agree.replica.host import Host
from agree.replica.subscriptions import MutationStream, Subscription
from agree.runtime.clock import Clock, SystemClock
from agree.runtime.commit import CommitBatcher
from agree.runtime.compose import assign_groups, copy_objects, initial_objects, node_config
from agree.runtime.driver import Driver
from agree.runtime.group import Group, bootstrap_state, open_group
from agree.runtime.intake import Intake
from agree.runtime.membership import (
    ADD_MEMBER,
    MEMBERSHIP_METHODS,
    MEMBERSHIP_OBJECT,
    REMOVE_MEMBER,
    TRANSFER_LEADER,
    Membership,
)
from agree.runtime.observer import Observer
from agree.runtime.proxy import AsyncProxy, CallSession
from agree.runtime.router import Router
from agree.runtime.status import Member, NodeStatus
from agree.runtime.ticker import Ticker
from agree.storage import open_storage
from agree.storage.base import DEFAULT_GROUP, Storage
from agree.storage.threaded import AsyncLogStore, AsyncStorage
from agree.transport.base import Transport
from agree.transport.memory import MemoryNetwork
from agree.wire.calls import Call, CallKind, Outcome, check_timeout
from agree.wire.codec import encode_arguments

log = logging.getLogger(__name__)

# As the codec writes commands: compact, UTF-8.
_NO_ARGUMENTS: Final = "[[],{}]"  # encode_arguments([], {})

__all__ = ["Node", "NodeStatus", "bootstrap_state"]


class NodeBackend:
    """Calls go straight into a node running on the same event loop, under ``session`` (the
    caller's; a new one by default)."""

    def __init__(self, node: Node, session: CallSession | None = None) -> None:
        self.node = node
        self.session = session or CallSession()

    def admit(self) -> asyncio.Future[None] | None:
        return self.node.admit()

    def call(self, call: Call, timeout: float | None) -> Coroutine[Any, Any, Outcome]:
        # The proxy bound the call against the same schema: no need to validate it twice;
        # and it passed the intake before it did.
        # The node's coroutine itself, not one more awaiting it: every call passes here.
        return self.node.call(call, timeout, validated=True, admitted=True)

    def next_call_ids(self) -> tuple[str, int, int]:
        return self.session.next_call_ids()

    def call_done(self, seq: int) -> None:
        self.session.call_done(seq)

    def __repr__(self) -> str:
        return f"node {self.node.id!r}"


class Node:
    """One member of an agree cluster.  Use ``async with Node(settings) as node:``.

    ``objects`` (added to those named in OBJECTS) are initial states: the node copies them and
    works on its own copies.  Every :meth:`start` rebuilds the state from those copies and
    what storage holds, so stopping and starting again resumes exactly where it stopped.
    ``storage`` replaces the database DATABASE_URL names; the node uses it from each start to
    the next stop, and leaves it open (its owner closes it), so a restart finds its state.
    """

    def __init__(
        self,
        settings: Settings | types.ModuleType | str | None = None,
        *,
        objects: Mapping[str, Replicated] | None = None,
        transport: Transport | None = None,
        storage: Storage | None = None,
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
        self.config = node_config(self.settings)
        self.id = self.config.node_id
        # The given objects are the initial state, copied now: every start() builds the state
        # machine afresh from a copy of them plus what storage holds (snapshot + log), so a
        # restart never replays the log onto state that already applied it, and the caller's
        # own objects are never mutated behind its back.
        self._initial_objects = copy_objects(objects or {})
        self._transport = transport
        self._given_storage = storage
        self._join = join
        self._rng = rng or random.Random()
        self._clock: Clock = clock or SystemClock()
        self._observer = observer
        self._groups: dict[str, Group] = {}
        self._group_of: dict[str, Group] = {}  # object name -> its group
        self._storage: AsyncStorage | None = None
        self._batcher: CommitBatcher | None = None
        self._ticker: Ticker | None = None
        self._started = False
        self._announcers: list[asyncio.Task[None]] = []
        # Peer -> monotonic time of its last message, for the operators' view of liveness.
        self._last_heard: dict[str, float] = {}
        self._router = Router(
            self.id, self._require_transport, self._clock, self._election_timeout()
        )
        self._membership = Membership(self._router, self._clock, self.config.tick_interval)
        # Bounds the calls started per turn of the loop (agree.runtime.intake).
        self._intake = Intake()

    def __repr__(self) -> str:
        if not self._started:
            return f"<Node {self.id!r} stopped>"
        s = self.status()
        return (
            f"<Node {s.id!r} {s.role.value}, term {s.term}, leader {s.leader_id!r}, "
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
        config = self.config
        placed = assign_groups(initial_objects(config, self._initial_objects), config.groups)
        unsafe.refuse_unless_allowed()
        if self._given_storage is not None:
            storage = AsyncStorage(self._given_storage, owns_storage=False)
        else:
            opened = await asyncio.to_thread(
                open_storage, config.store_url, auto_migrate=config.auto_migrate, owner=self.id
            )
            storage = AsyncStorage(opened)
        batcher = CommitBatcher(storage, commit_delay=config.commit_delay)
        transport = self._transport or MemoryNetwork().transport(self.id)
        self._transport = transport
        groups: dict[str, Group] = {}
        fresh = False
        try:
            for group_id, objects in placed.items():
                # The default group draws on the node's generator, so that a single-group
                # node runs exactly as before; any other on one seeded from it.
                rng = self._rng if group_id == DEFAULT_GROUP else random.Random(self._rng.random())
                group, new = await open_group(
                    group_id,
                    objects,
                    node_id=self.id,
                    founders=config.founders,
                    join=self._join,
                    storage=storage,
                    batcher=batcher,
                    transport=transport,
                    on_addresses=self._addresses_changed,
                    options=config.group,
                    rng=rng,
                    clock=self._clock,
                    observer=self._observer,
                    on_leader=functools.partial(self._announce_schema, group_id),
                )
                groups[group_id] = group
                fresh = fresh or new
        except BaseException:
            await batcher.close()
            await storage.close()
            raise
        self._storage, self._batcher, self._groups = storage, batcher, groups
        self._group_of = {name: g for g in groups.values() for name in g.host.objects}
        self._addresses_changed()
        await transport.start(self)
        for group in groups.values():
            await group.start()
        self._ticker = Ticker(
            self._clock, config.tick_interval, lambda: [g.tick for g in self._groups.values()]
        )
        self._ticker.start(f"agree-ticker-{self.id}")
        self._started = True
        for group in groups.values():
            group.driver.log.info(
                "started: members %s, objects %s, applied index %d%s",
                ", ".join(sorted(group.host.members)),
                ", ".join(group.objects),
                group.host.applied_index,
                " (waiting to be added to a cluster)" if fresh and self._join else "",
                extra={"index": group.host.applied_index},
            )
        self._announcers = [
            asyncio.create_task(self._announce_until_recorded(g)) for g in groups.values()
        ]

    async def stop(self, *, snapshot: bool = True) -> None:
        """Stop serving.  A clean stop snapshots what was applied since the last snapshot, so
        that a restart running new code replays nothing under it; ``snapshot=False`` leaves
        the storage as a crash would (the next start replays the log)."""
        if not self._started:
            return
        if self.holds_read_lock():  # the stop's snapshot would wait for this very thread
            raise DeadlockError("stop() called from inside read_lock(); stop after the with block")
        self._started = False
        for task in self._announcers:
            task.cancel()
        for task in self._announcers:
            with contextlib.suppress(BaseException):
                await task
        assert self._ticker and self._batcher and self._storage and self._transport
        await self._ticker.stop()
        await self._transport.close()
        for group in self._groups.values():
            await group.stop(snapshot=snapshot)
        await self._batcher.close()
        await self._storage.close()
        for group in self._groups.values():
            group.driver.log.info("stopped", extra={"index": group.host.applied_index})

    # -- groups -----------------------------------------------------------------------------------
    @property
    def groups(self) -> dict[str, Group]:
        """The Raft groups this node hosts, by id."""
        return dict(self._groups)

    def group(self, group_id: str = DEFAULT_GROUP) -> Group:
        if not self._groups:
            raise UnavailableError(f"node {self.id!r} is not started")
        try:
            return self._groups[group_id]
        except KeyError:
            hosted = ", ".join(sorted(self._groups))
            raise UnknownObjectError(
                f"node {self.id!r} hosts no Raft group {group_id!r} (groups: {hosted})"
            ) from None

    def group_of(self, name: str) -> Group:
        """The group hosting object ``name``; UnknownObjectError if none does."""
        found = self._group_of.get(name)
        if found is not None:
            return found
        if not self._groups:
            raise UnavailableError(f"node {self.id!r} is not started")
        known = ", ".join(sorted(self._group_of)) or "none"
        raise UnknownObjectError(f"no replicated object named {name!r} (hosted: {known})")

    @property
    def _primary(self) -> Group:
        """The group the single-group views (status, members, driver) show: "default" if it
        is hosted, else the first by id."""
        if not self._groups:
            raise UnavailableError(f"node {self.id!r} is not started")
        return self._groups.get(DEFAULT_GROUP) or next(iter(self._groups.values()))

    def hosts_group(self, group_id: str) -> bool:
        return group_id in self._groups

    def _addresses_changed(self) -> None:
        """The one address book: every group's members, as this node reaches them."""
        book: dict[str, str] = {}
        for group in self._groups.values():
            book.update(group.peer_addresses())
        if self._transport is not None:
            self._transport.update_peers(book)

    def _require_transport(self) -> Transport:
        if self._transport is None:
            raise UnavailableError(f"node {self.id!r} is not started")
        return self._transport

    # -- schema announcements -----------------------------------------------------------------
    def _announce_schema(self, group_id: str) -> None:
        """As a group's new leader, record this node's schemas in its log
        (agree.replica.cluster_schema)."""
        group = self._groups[group_id]
        data = encode_schema_record(self.id, group.host.local_schemas())
        fut = group.driver.propose(data)
        # Nobody waits for it: its effect is the recorded schemas, checked on every replica.
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def _announce_until_recorded(self, group: Group) -> None:
        """Announce this node's schemas through the group's leader until its log holds them, so
        that what its code adds can be adopted (agree.replica.cluster_schema).  A leader announces
        on its own (_announce_schema); this covers a node that starts as a follower."""
        host = group.host
        call = Call(
            ANNOUNCE_OBJECT,
            ANNOUNCE_METHOD,
            CallKind.COMMAND,
            args=announcement_args(self.id, host.local_schemas()),
            kwargs={"group": group.id},
        )
        wait = self._election_timeout()
        while self._started and not host.announced():
            try:
                leader = group.driver.soft_state.leader_id
            except AgreeError:
                return  # the node failed (e.g. its schema was refused): it says why itself
            if leader is not None and leader != self.id:
                try:
                    outcome = await self._require_transport().forward(leader, call, 4 * wait)
                    # Applied there: once it is applied here too, the loop ends (a slow apply
                    # here must not announce twice).
                    await asyncio.wait_for(group.driver.wait_applied(outcome.index), 4 * wait)
                    if host.announced():
                        return
                except (AgreeError, TimeoutError) as exc:
                    log.debug("node %s: schema announcement not recorded yet: %s", self.id, exc)
            deadline = self._clock.monotonic() + wait
            with contextlib.suppress(AgreeError):
                await self._router.wait_leader_change(group, deadline)

    # -- the primary group's runtime (a single-group node's only one) ---------------------------
    @property
    def failure(self) -> BaseException | None:
        """Why this node stopped serving, if it did (storage failure, schema mismatch...)."""
        for group in self._groups.values():
            if group.failure is not None:
                return group.failure
        return None

    @property
    def driver(self) -> Driver:
        return self._primary.driver

    @property
    def host(self) -> Host:
        group = self._primary
        group.driver  # noqa: B018 - raises if not running
        return group.host

    @property
    def _store(self) -> AsyncLogStore | None:
        """The primary group's store, read directly."""
        return self._primary.view if self._groups else None

    def schema(self, name: str) -> ObjectSchema:
        group = self.group_of(name)
        group.driver  # noqa: B018 - raises if the group is not serving
        return group.host.schema(name)

    def local_schemas(self) -> dict[str, ObjectSchema]:
        """The schemas of every object this node hosts, by name."""
        out: dict[str, ObjectSchema] = {}
        for group in self._groups.values():
            out.update(group.host.local_schemas())
        return dict(sorted(out.items()))

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until every group knows a leader and this node has applied everything
        committed before now (one linearizable read round succeeds), and each group's log
        holds its schemas' announcement (so that the operations its code adds are adopted
        when they can be)."""
        deadline = self._deadline(timeout)
        for group in self._groups.values():
            await self._router.linearizable_index(group, deadline)
            while not group.host.announced():
                if self._clock.monotonic() >= deadline:
                    raise AgreeTimeoutError(
                        f"node {self.id!r}: its schemas were not announced in time"
                    )
                await self._clock.sleep(self.config.tick_interval)

    # -- transport handler ----------------------------------------------------------------------
    def receive(self, message: Message, group_id: str = DEFAULT_GROUP) -> None:
        self._last_heard[message.src] = self._clock.monotonic()
        group = self._groups.get(group_id)
        if group is not None:
            group.receive(message)

    async def handle_call(self, call: Call, timeout: float) -> Outcome:
        """A call forwarded by a peer: served here or refused, never forwarded again (no loops)."""
        # The entry node validated it; replicas decode it when they apply it, unchecked.
        # The peer sent what was left of its caller's checked timeout (it may have run out on
        # the way): a deadline as it is, not a user's value to validate.
        deadline = self._clock.monotonic() + timeout
        if call.object == ANNOUNCE_OBJECT and call.method == ANNOUNCE_METHOD:
            group = self.group(str(call.kwargs.get("group", DEFAULT_GROUP)))
            data = record_from_args(call.args)
            return await self._router.propose_here(group, data, deadline, "the schema announcement")
        if call.object == MEMBERSHIP_OBJECT and call.method in MEMBERSHIP_METHODS:
            group = self.group(str(call.kwargs.get("group", DEFAULT_GROUP)))
            return Outcome(result=await self._membership.run_here(group, call, deadline))
        return await self._call(call, deadline, may_forward=False, validated=True)

    # -- calls ----------------------------------------------------------------------------------
    def admit(self) -> asyncio.Future[None] | None:
        """None if a new call may start its work in this turn of the loop, else a future done
        when its turn comes (agree.runtime.intake)."""
        return self._intake.admit()

    async def call(
        self,
        call: Call,
        timeout: float | None = None,
        *,
        validated: bool = False,
        admitted: bool = False,
    ) -> Outcome:
        """Run a call anywhere in the cluster; ``timeout`` defaults to REQUEST_TIMEOUT.
        ``admitted``: the caller passed :meth:`admit` already."""
        if self.holds_read_lock():
            raise DeadlockError(
                f"{call.object}.{call.method} called from inside read_lock() would wait for the"
                " state that read holds; make the call after the with block"
            )
        return await self._call(
            call, self._deadline(timeout), may_forward=True, validated=validated, admitted=admitted
        )

    def _deadline(self, timeout: float | None) -> float:
        seconds = check_timeout(timeout)
        return self._clock.monotonic() + (
            self.config.request_timeout if seconds is None else seconds
        )

    async def _call(
        self,
        call: Call,
        deadline: float,
        *,
        may_forward: bool,
        validated: bool = False,
        admitted: bool = False,
    ) -> Outcome:
        if not admitted:
            turn = self._intake.admit()
            if turn is not None:  # a crowd arrived at once: this one starts in a later turn
                await turn
        group = self.group_of(call.object)
        host = group.host
        group.driver  # noqa: B018 - raises if the group is not serving
        kind = "command" if call.kind is CallKind.COMMAND else "query"
        op = host.operation(call.object, call.method, kind)
        arguments = self._check_size(call)
        if not validated:  # before anything is proposed or read
            op.bind_json(call.args, call.kwargs)
        # Only what every member's code has may be proposed (agree.replica.cluster_schema).
        host.check_adopted(call.object, call.method, call.args, call.kwargs)
        if call.kind is CallKind.COMMAND:
            # Validated calls come bound by a proxy, or decoded from a peer's frame: in the
            # JSON form their entry decodes to.
            return await self._router.command(
                group,
                call,
                deadline,
                may_forward=may_forward,
                arguments=arguments,
                as_decoded=validated,
            )
        consistency = Consistency(call.consistency or op.consistency or Consistency.LINEARIZABLE)
        return await self._router.query(
            group,
            call,
            consistency,
            deadline,
            may_forward=may_forward,
            running=lambda: self._started,
        )

    def _check_size(self, call: Call) -> str | None:
        """Refuse arguments over MAX_CALL_BYTES, measured as they are encoded (compact UTF-8
        JSON), so that a call in-process meets the same limit as one over HTTP.  Returns that
        encoding (:func:`agree.codec.encode_arguments`) for the command to reuse."""
        if not call.args and not call.kwargs:
            return _NO_ARGUMENTS
        arguments = encode_arguments(call.args, call.kwargs)
        if arguments is None:
            return None  # not JSON: refused with its own error when it is bound or encoded
        limit = self.config.max_call_bytes
        size = len(arguments) if arguments.isascii() else len(arguments.encode())
        if size > limit:
            raise ValidationError(
                f"{call.object}.{call.method}: its arguments take {size} bytes encoded, more"
                f" than MAX_CALL_BYTES ({limit}); pass less per call, or raise MAX_CALL_BYTES"
            )
        return arguments

    def _election_timeout(self) -> float:
        return self.config.election_timeout

    # -- proxies and subscriptions --------------------------------------------------------------
    def proxy(self, name: str) -> Any:
        """An :class:`agree.runtime.proxy.AsyncProxy` for the object hosted under ``name``."""

        return AsyncProxy(NodeBackend(self), name, self.schema(name))

    def mutations(
        self, object: str | None = None, method: str | None = None, *, from_index: int | None = None
    ) -> MutationStream:
        """An async iterator of the mutations applied here, optionally from a past index (an
        index in the log of ``object``'s group; without ``object``, the primary group's)."""
        group = self._check_filter(object, method)
        return group.hub.stream(object, method, from_index=from_index)

    def subscribe(
        self, callback: Any, object: str | None = None, method: str | None = None
    ) -> Subscription:
        group = self._check_filter(object, method)
        return group.hub.subscribe(callback, object, method, in_thread=True)

    def _check_filter(self, object: str | None, method: str | None) -> Group:
        """The group whose mutations a filter reads.  Refuse a filter that can never match: an
        unknown object, or a method that is not a command of it (of any object of the group,
        without ``object``).  Only commands mutate."""
        group = self._primary if object is None else self.group_of(object)
        host = group.host
        group.driver  # noqa: B018 - raises if not running
        if method is None:
            return group
        names = sorted(host.objects) if object is None else [object]
        schemas = {name: host.schema(name) for name in names}
        if any(method in schema.commands for schema in schemas.values()):
            return group
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
        group = self.group_of(name)
        group.driver  # noqa: B018 - raises if not running
        with group.host.lock.reading():
            yield group.host.object(name)

    def holds_read_lock(self) -> bool:
        """Whether the current thread is inside :meth:`read_lock` of this node: a call from
        there would wait for the state this thread holds."""
        for group in self._groups.values():  # noqa: SIM110 - no generator for any() per call
            if group.host.lock.read_by_this_thread():
                return True
        return False

    # -- status and membership ------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        """Whether this node leads its primary group."""
        return self.driver.soft_state.role is Role.LEADER

    @property
    def leader_id(self) -> str | None:
        """The leader of the primary group."""
        return self.driver.soft_state.leader_id

    def status(self, group_id: str | None = None) -> NodeStatus:
        """This node's view of a group (the primary group by default)."""
        group = self._primary if group_id is None else self.group(group_id)
        driver = group.driver
        raft = driver.raft
        conf = raft.conf
        now = self._clock.monotonic()
        members = group.host.members
        return NodeStatus(
            id=self.id,
            role=driver.soft_state.role,
            leader_id=driver.soft_state.leader_id,
            term=raft.term,
            commit_index=raft.commit_index,
            applied_index=group.host.applied_index,
            last_index=raft.last_index,
            voters=tuple(sorted(conf.voters)),
            learners=tuple(sorted(conf.learners)),
            members=dict(members),
            match_index={peer: match for peer, (match, _) in raft.status().progress.items()},
            last_contact={
                peer: round(now - heard, 3)
                for peer, heard in self._last_heard.items()
                if peer in members
            },
            group=group.id,
        )

    def statuses(self) -> dict[str, NodeStatus]:
        """This node's view of every group it hosts, by group id."""
        return {group_id: self.status(group_id) for group_id in self._groups}

    def members(self, group_id: str | None = None) -> dict[str, Member]:
        """The members of a group (the primary group by default): voters, then learners."""
        return self.status(group_id).member_list()

    def _groups_to_change(self, group_id: str | None) -> list[Group]:
        """Membership is changed in every group, unless one is named."""
        return list(self._groups.values()) if group_id is None else [self.group(group_id)]

    async def add_member(
        self,
        node_id: str,
        url: str,
        *,
        learner: bool = False,
        timeout: float | None = None,
        group: str | None = None,
    ) -> dict[str, str]:
        """Add ``node_id`` to every group (or the one named), each through its leader: as a
        learner, then, unless ``learner``, promoted once it caught up.  Returns what changed,
        by group ("added", "promoted", "unchanged"); a failure names its group, and a retry is
        safe."""
        kwargs = {"node_id": node_id, "url": url, "learner": learner}
        return await self._membership.every_group(
            self._groups_to_change(group), ADD_MEMBER, kwargs, self._deadline(timeout)
        )

    async def remove_member(
        self, node_id: str, *, timeout: float | None = None, group: str | None = None
    ) -> dict[str, str]:
        """Remove ``node_id`` from every group (or the one named), each through its leader.
        Returns what changed, by group ("removed", "unchanged"); a retry is safe."""
        return await self._membership.every_group(
            self._groups_to_change(group),
            REMOVE_MEMBER,
            {"node_id": node_id},
            self._deadline(timeout),
        )

    async def transfer_leader(
        self, node_id: str, *, timeout: float | None = None, group: str | None = None
    ) -> None:
        """Hand leadership of a group (the primary group by default) to ``node_id`` and wait
        until it leads (§3.10); asked of the group's leader, wherever it is."""
        target = self._primary if group is None else self.group(group)
        await self._membership.every_group(
            [target], TRANSFER_LEADER, {"node_id": node_id}, self._deadline(timeout)
        )

    async def snapshot(self, group: str | None = None) -> int:
        """Take a snapshot of a group (the primary group by default) now and compact its log;
        returns its index."""
        target = self._primary if group is None else self.group(group)
        return await target.driver.request_snapshot()
