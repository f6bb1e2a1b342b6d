"""The state-machine host: applies committed commands to the named replicated objects.

It owns the replicated state above Raft: the objects, the client-session table, the cluster's
address book, and the leader-stamped clock.  Applying is deterministic and total: whatever a
user's method raises or returns, the outcome is recorded (and re-raised at the caller with its
own type), and the replica goes on.

Snapshots carry state, not code (agree.wire.codec's state blob): per hosted object its state as
pickle takes it (``__getstate__()``, by default the instance ``__dict__``) and, for messages, its
class's name.  A restore rebuilds each object as the class this node hosts under that name now,
so a restarted node runs its current code -- a changed method body, a renamed class -- on the
restored state.  Like unpickling, a restore does not call ``__init__``: it calls the class's
``__setstate__(state)`` if it defines one (the place to upgrade the state of an older version,
e.g. give a new attribute its default), else updates the new instance's ``__dict__``.

An object's name is its identity in the replicated state, so a node never hosts fewer objects
than its state holds: a snapshot, or a schema the cluster recorded, naming an object this node
does not host is refused (SchemaMismatchError) rather than let the next snapshot drop that
object's state without a word.  A renamed object is hosted under its old name again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from agree.errors import (
    AgreeError,
    CorruptionError,
    IncompatibleVersionError,
    ProtocolError,
    ResultValidationError,
    SchemaMismatchError,
    UnknownMethodError,
    UnknownObjectError,
    ValidationError,
)
from agree.objects.mutation import Mutation
from agree.objects.replicated import Replicated, applying_at
from agree.objects.schema import BoundCall, ObjectSchema, Operation, schema_of
from agree.raft.entries import ConfChange, ConfChangeType, Entry
from agree.replica.cluster_schema import (
    SCHEMA_RECORD_MAGIC,
    Shape,
    adopt,
    adopted_shape,
    announce,
    check_adopted,
    check_local,
    decode_schema_record,
)
from agree.replica.sessions import DEFAULT_SESSION_TTL_NS, SessionTable, Verdict
from agree.replica.statelock import StateLock
from agree.replica.subscriptions import MutationRecord, SubscriptionHub
from agree.wire.calls import Outcome
from agree.wire.codec import (
    CommandRecord,
    class_path,
    decode_command,
    decode_error,
    dump_state,
    encode_error,
    load_state,
    peek_state_header,
)

log = logging.getLogger(__name__)

# 2: objects as state rebuilt by the current classes (1 pickled them with their classes).
SNAPSHOT_FORMAT = 2


def _error(exc: BaseException) -> Outcome:
    return Outcome(error=encode_error(exc))


def _invoke(obj: Replicated, op: Operation, bound: BoundCall, name: str, index: int) -> Outcome:
    """Run a user's method; whatever it raises or returns becomes the outcome, never a crash."""
    try:
        value = getattr(obj, op.attr)(*bound.args, **bound.kwargs)
    except BaseException as exc:
        # Every BaseException too (KeyboardInterrupt, SystemExit, CancelledError...): the method
        # raised it, so every replica and every replay raises it again, and letting it through
        # would stop the node at each start.  The runtime's own cancellation cannot be among
        # them: a method runs synchronously, and Task.cancel() only lands at an ``await``.
        # (A SIGINT is not delivered here either: asyncio.run turns it into cancelling the
        # main task, and an embedded node's loop runs in a thread that gets no signals.)
        return Outcome(error=encode_error(exc), index=index)
    try:
        return Outcome(op.dump_result(value), None, index)  # result, error, index
    except ValidationError as exc:
        # Not a ValidationError: that tells the caller nothing was written, and a caller that
        # retried this command would apply it a second time.
        applied = op.kind == "command"
        what = f"applied at index {index}" if applied else f"served at index {index}"
        err = ResultValidationError(
            f"{name}.{op.name} ran ({what}) but returned a value that does not match its "
            f"declared return type: {exc}",
            index=index,
            applied=applied,
        )
        return Outcome(error=encode_error(err), index=index)


class Host:
    def __init__(
        self,
        objects: dict[str, Replicated],
        *,
        node_id: str = "",
        members: dict[str, str] | None = None,
        session_ttl_ns: int = DEFAULT_SESSION_TTL_NS,
    ) -> None:
        self.node_id = node_id
        self.objects: dict[str, Replicated] = dict(objects)
        # The schemas the cluster recorded (agree.replica.cluster_schema): replicated state.
        self.cluster_schemas: dict[str, dict[str, Any]] = {}
        # What each node announced its code has, by node id: replicated state too.
        self.node_schemas: dict[str, dict[str, dict[str, Any]]] = {}
        self.sessions: SessionTable[Outcome] = SessionTable(session_ttl_ns)
        # The address book is replicated state: it changes with CONF_CHANGE entries.
        self.members: dict[str, str] = dict(members or {})
        self.applied_index = 0
        self.applied_term = 0
        self.last_ts_ns = 0  # Invariant: never decreases (leader stamps are made monotonic).
        self.hub: SubscriptionHub | None = None
        # (object, method, kind) -> its operation, looked up for every call and every apply: an
        # object's class never changes here (a restore rebuilds the state as the same classes).
        self._operations: dict[tuple[str, str, str], Operation] = {}
        # (object, method) -> its adopted Shape in ``_shapes_of``, the recorded schemas.
        self._shapes_of: dict[str, dict[str, Any]] | None = None
        self._shapes: dict[tuple[str, str], Shape | None] = {}
        # Held while the state changes; read_lock() takes it for direct access from other threads.
        # The event loop takes it only through StateLock.held, never blocking on a reader.
        self.lock = StateLock()

    # -- lookup ----------------------------------------------------------------------------------
    def schema(self, name: str) -> ObjectSchema:
        return schema_of(self.object(name))

    def object(self, name: str) -> Replicated:
        try:
            return self.objects[name]
        except KeyError:
            known = ", ".join(sorted(self.objects)) or "none"
            raise UnknownObjectError(
                f"no replicated object named {name!r} (hosted: {known})"
            ) from None

    def operation(self, name: str, method: str, kind: str) -> Operation:
        try:
            return self._operations[name, method, kind]
        except KeyError:
            pass
        op = self.schema(name).operation(method)
        if op.kind != kind:
            raise UnknownMethodError(
                f"{name}.{method} is a {op.kind}, not a {kind}"
                + ("; call it as a query" if op.kind == "query" else "; call it as a command")
            )
        self._operations[name, method, kind] = op
        return op

    # -- apply -----------------------------------------------------------------------------------
    def apply(self, entry: Entry, record: CommandRecord | None = None) -> Outcome:
        """Apply a NORMAL entry.  Never raises because of what the entry or the user's code did."""
        with self.lock:
            self.applied_index = entry.index
            self.applied_term = entry.term
            if record is None:
                if entry.data[:3] == SCHEMA_RECORD_MAGIC:  # is_schema_record, inline
                    return self._apply_schema_record(entry)
                try:
                    record = decode_command(entry.data)
                except (ProtocolError, CorruptionError, IncompatibleVersionError) as exc:
                    log.error(
                        "entry %d is not a command this node can decode: %s",
                        entry.index,
                        exc,
                        extra={"index": entry.index},
                    )
                    return _error(exc)
            ts_ns = self.last_ts_ns = max(self.last_ts_ns, record.timestamp_ns)
            verdict, stored = self.sessions.check(record.client_id, record.seq)
            if verdict is Verdict.DUPLICATE:
                assert stored is not None
                return stored
            if verdict is Verdict.STALE:
                return _error(
                    ValidationError(
                        f"command seq {record.seq} of client {record.client_id!r} was already"
                        " applied and acknowledged"
                    )
                )
            outcome = self._run_command(entry, record, ts_ns)
            self.sessions.record(record.client_id, record.seq, record.ack, outcome, ts_ns)
            hub = self.hub
            if hub is not None and hub.active:
                # Positional: matching nine keywords costs about twice the rest of the call.
                hub.publish(
                    MutationRecord(
                        record.object,
                        record.method,
                        record.args,
                        record.kwargs,
                        outcome.result,
                        outcome.error,
                        entry.index,
                        entry.term,
                        ts_ns,
                    )
                )
            return outcome

    def _run_command(self, entry: Entry, record: CommandRecord, ts_ns: int) -> Outcome:
        try:
            # The same on every replica (replicated state): a call proposed without the check
            # at its entry node is refused here, alike everywhere, rather than applied only by
            # the replicas whose code has it.
            self._check_adopted(
                record.object, record.method, record.args, record.kwargs, applying=True
            )
            obj = self.objects.get(record.object)
            if obj is None:
                obj = self.object(record.object)  # UnknownObjectError
            op = self._operations.get((record.object, record.method, "command"))
            if op is None:
                op = self.operation(record.object, record.method, "command")
            # Validated where it entered the cluster: decoded here, not checked again.
            bound = op.load_args(record.args, record.kwargs)
        except BaseException as exc:
            # Binding runs user code too (e.g. a dataclass's __post_init__), and the node that
            # validated the call may run other code: whatever it raises is the outcome, as in
            # _invoke, or replaying this entry would stop the node at every start.
            return _error(exc)
        with applying_at(entry.index, entry.term, ts_ns):
            return _invoke(obj, op, bound, record.object, entry.index)

    def _apply_schema_record(self, entry: Entry) -> Outcome:
        try:
            record = decode_schema_record(entry.data)
        except AgreeError as exc:
            log.error("entry %d: %s", entry.index, exc, extra={"index": entry.index})
            return _error(exc)
        self.cluster_schemas, self.node_schemas, conflicts = announce(
            self.cluster_schemas, self.node_schemas, record, self.members
        )
        if conflicts:
            log.warning(
                "schema record of node %s refused: its objects %s do not extend the cluster's",
                record.node_id,
                ", ".join(conflicts),
            )
        self.check_schemas()
        return Outcome(result={"conflicts": conflicts}, index=entry.index)

    def announced(self) -> bool:
        """Whether the replicated state holds this node's current schemas as its announcement."""
        mine = self.node_schemas.get(self.node_id)  # read on the loop, which applies
        local = {name: s.json_schema() for name, s in self.local_schemas().items()}
        return mine == local

    def check_adopted(
        self, name: str, method: str, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        """UnknownMethodError unless the cluster adopted this operation and the parameters the
        call passes (agree.replica.cluster_schema.check_adopted)."""
        self._check_adopted(name, method, args, kwargs, applying=False)

    def _check_adopted(
        self, name: str, method: str, args: list[Any], kwargs: dict[str, Any], *, applying: bool
    ) -> None:
        # Made on every call and every apply: the shapes of the adopted operations are kept
        # for the recorded schemas they were read from (which are replaced, never changed).
        recorded = self.cluster_schemas
        if recorded:
            if recorded is not self._shapes_of:
                self._shapes_of, self._shapes = recorded, {}
            key = (name, method)
            try:
                shape = self._shapes[key]
            except KeyError:
                shape = self._shapes[key] = adopted_shape(recorded, name, method)
            # cluster_schema.passes, inline
            if shape is not None and len(args) <= shape[0] and (
                not kwargs or kwargs.keys() <= shape[1]
            ):
                return
        check_adopted(
            name,
            method,
            args,
            kwargs,
            recorded,
            self.node_schemas,
            self.members,
            applying=applying,
        )

    def local_schemas(self) -> dict[str, ObjectSchema]:
        return {name: schema_of(obj) for name, obj in self.objects.items()}

    def check_schemas(self) -> None:
        """Raise SchemaMismatchError if this node's code disagrees with the recorded schemas,
        or hosts fewer objects than the cluster recorded (their commands would apply as errors
        here, and their state would be missing from this node's snapshots)."""
        recorded = {name: s.get("class") for name, s in self.cluster_schemas.items()}
        self._check_hosts(recorded, "the cluster records")
        check_local(self.node_id, self.local_schemas(), self.cluster_schemas)

    def apply_conf_change(self, entry: Entry) -> ConfChange | None:
        with self.lock:
            self.applied_index = entry.index
            self.applied_term = entry.term
            try:
                change = ConfChange.decode(entry.data)
            except (ValueError, KeyError) as exc:
                log.error("entry %d is not a valid configuration change: %s", entry.index, exc)
                return None
            if change.type is ConfChangeType.REMOVE:
                self.members.pop(change.node_id, None)
                # A removed member no longer holds back what the others all announced.
                self.cluster_schemas = adopt(self.cluster_schemas, self.node_schemas, self.members)
            elif change.context:
                self.members[change.node_id] = change.context.decode()
        if change.type is ConfChangeType.REMOVE:
            self.check_schemas()
        return change

    def apply_noop(self, entry: Entry) -> None:
        with self.lock:
            self.applied_index = entry.index
            self.applied_term = entry.term

    # -- queries ---------------------------------------------------------------------------------
    def query(self, name: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Outcome:
        """Run a query on the local copy; a user's exception comes back as the outcome's error."""
        op = self.operation(name, method, "query")
        try:
            bound = op.bind_json(args, kwargs)
        except AgreeError:
            raise
        except BaseException as exc:  # user code while binding, e.g. a __post_init__
            return _error(exc)
        with self.lock:
            return _invoke(self.objects[name], op, bound, name, self.applied_index)

    # -- subscriptions ---------------------------------------------------------------------------
    def decode_mutation(self, rec: MutationRecord) -> Mutation:
        error: BaseException | None = None
        result: Any = None
        args: tuple[Any, ...] = tuple(rec.args)
        kwargs: dict[str, Any] = dict(rec.kwargs)
        try:
            op = self.operation(rec.object, rec.method, "command")
            bound = op.bind_json(rec.args, rec.kwargs)
            args, kwargs = tuple(bound.args), dict(bound.kwargs)
            if rec.error is None:
                result = op.load_result(rec.result)
        except AgreeError:
            result = rec.result
        if rec.error is not None:
            error = decode_error(rec.error)
        return Mutation(
            object=rec.object,
            method=rec.method,
            args=args,
            kwargs=kwargs,
            result=result,
            error=error,
            index=rec.index,
            term=rec.term,
            timestamp=datetime.fromtimestamp(rec.timestamp_ns / 1e9, UTC),
        )

    # -- snapshots -------------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """The whole replicated state at ``applied_index`` as a versioned state blob: the objects'
        state (not their classes), sessions, address book, recorded schemas and clock."""
        with self.lock:
            # Sorted: the blob does not depend on the order the objects were configured in.
            objects = dict(sorted(self.objects.items()))
            return dump_state(
                {
                    "format": SNAPSHOT_FORMAT,
                    "objects": objects,
                    "sessions": self.sessions,
                    "members": self.members,
                    "cluster_schemas": self.cluster_schemas,
                    "node_schemas": self.node_schemas,
                    "applied_index": self.applied_index,
                    "applied_term": self.applied_term,
                    "last_ts_ns": self.last_ts_ns,
                },
                hosted=objects,
            )

    def restore(self, data: bytes) -> None:
        """Replace the replicated state with a snapshot's, rebuilt by this node's classes."""
        written_by = peek_state_header(data).hosted
        self._check_hosts(written_by, "its snapshot holds the state of")
        classes = {name: type(obj) for name, obj in self.objects.items()}
        state = load_state(data, hosted=classes)
        if not isinstance(state, dict) or state.get("format") != SNAPSHOT_FORMAT:
            raise CorruptionError("snapshot does not hold agree host state of a known format")
        for name, path in sorted(written_by.items()):
            if path != class_path(classes[name]):
                log.info("object %r: state of a %s restored as %s", name, path, classes[name])
        restored: dict[str, Replicated] = state["objects"]
        with self.lock:
            # Objects configured here but absent from the snapshot start from their initial state.
            self.objects = {name: restored.get(name, obj) for name, obj in self.objects.items()}
            self.sessions = state["sessions"]
            self.members = state["members"]
            self.cluster_schemas = state["cluster_schemas"]
            # Absent from a snapshot taken before nodes announced their schemas.
            self.node_schemas = state.get("node_schemas", {})
            self.applied_index = state["applied_index"]
            self.applied_term = state["applied_term"]
            self.last_ts_ns = state["last_ts_ns"]
        if self.hub is not None:
            self.hub.jumped(self.applied_index)
        self.check_schemas()

    def _check_hosts(self, names: Mapping[str, str | None], holder: str) -> None:
        """SchemaMismatchError unless every object in ``names`` (name -> class, if known) is
        hosted here: its state would be silently dropped by this node's next snapshot."""
        missing = sorted(set(names) - set(self.objects))
        if not missing:
            return
        held = ", ".join(
            f"{name!r}" + (f" (class {names[name]})" if names[name] else "") for name in missing
        )
        hosted = ", ".join(repr(name) for name in sorted(self.objects)) or "none"
        raise SchemaMismatchError(
            f"node {self.node_id!r} is refused: {holder} {held}, which this node does not host"
            f" (it hosts {hosted}).  Going on would drop that object's state at the next"
            " snapshot.  An object's name is its identity in the replicated state: host it"
            " under that name again (after a rename, under its old name; its class may be"
            " renamed freely)."
        )
