"""A linearizability checker for histories of client operations.

Owns: the history record (:class:`Operation`), the sequential-model protocol
(:class:`Model`), a register model (:class:`RegisterModel`), and the search
(:func:`check`).

The search is Wing & Gong's: walk the history's events in time order and try to
linearize each pending operation before the first response that has not been
linearized yet; backtrack when that response is reached.  Lowe's memoization
prunes it: a (set of linearized operations, model state) pair already explored
is never explored again, which makes the common histories polynomial.

Keys are independent (a register per key), so the history is partitioned by
key and each part is checked alone -- the search is exponential in the
concurrency of one part, not of the whole history.

An *indeterminate* operation (no response: the client timed out, its node
crashed) may or may not have taken effect, at any time after its invocation: it
has no response event, so the search may linearize it anywhere after its
invocation or never.  The model gives its effect with an unknown output
(:meth:`Model.step_unknown`).

Time is any totally ordered number.  Events at equal times are treated as
concurrent (invocations sort before responses), which can only hide a
violation, never invent one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

S = TypeVar("S", bound=Hashable)
InT = TypeVar("InT")
OutT = TypeVar("OutT")
InC = TypeVar("InC", contravariant=True)
OutC = TypeVar("OutC", contravariant=True)

# Whether one check ended with a verdict.
LINEARIZABLE = "linearizable"
NOT_LINEARIZABLE = "not linearizable"
UNKNOWN = "unknown"  # the state budget ran out before a verdict


@dataclass(frozen=True, slots=True)
class Operation(Generic[InT, OutT]):
    """One client operation.

    Invariant: ``complete is None or complete >= invoke``.  ``complete is None`` marks an
    indeterminate operation, whose ``output`` is then meaningless.
    """

    client: Hashable  # who issued it; only for explanations
    key: Hashable  # operations on different keys never constrain each other
    input: InT
    output: OutT | None
    invoke: float
    complete: float | None

    @property
    def indeterminate(self) -> bool:
        return self.complete is None


class Model(Protocol[S, InC, OutC]):
    """A sequential specification of one key's object.  States must be hashable (memoization)."""

    def init(self) -> S:
        """The state before any operation."""
        ...

    def step(self, state: S, input: InC, output: OutC) -> tuple[bool, S]:
        """Apply ``input`` in ``state``: (whether ``output`` is a legal answer, the next state)."""
        ...

    def step_unknown(self, state: S, input: InC) -> S:
        """The state after ``input`` whose answer was never seen.  Must equal the state
        ``step`` gives for the answer the operation would have had in ``state``."""
        ...

    def read_only(self, input: InC) -> bool:
        """True if ``input`` never changes the state (an indeterminate one is then dropped)."""
        ...

    def describe(self, input: InC, output: OutC | None, known: bool) -> str:
        """A short human-readable rendering of an operation."""
        ...

    def prune(self, ops: list[Operation[Any, Any]]) -> list[Operation[Any, Any]]:
        """One key's history without operations that cannot change the verdict (an
        optimization; returning ``ops`` unchanged is always correct)."""
        ...


# --- the register model -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Read:
    pass


@dataclass(frozen=True, slots=True)
class Write:
    value: Hashable


@dataclass(frozen=True, slots=True)
class Cas:
    """Compare-and-set: if the value is ``expected``, make it ``new``; the output says if it did."""

    expected: Hashable
    new: Hashable


RegisterInput = Read | Write | Cas


class RegisterModel:
    """A read/write/compare-and-set register.  Reads output the value (``initial`` before any
    write); writes output None; a CAS outputs whether it swapped."""

    def __init__(self, initial: Hashable = None) -> None:
        self.initial = initial

    def init(self) -> Hashable:
        return self.initial

    def step(self, state: Hashable, input: RegisterInput, output: Any) -> tuple[bool, Hashable]:
        if isinstance(input, Read):
            return output == state, state
        if isinstance(input, Write):
            return True, input.value
        swapped = state == input.expected
        return bool(output) == swapped, (input.new if swapped else state)

    def step_unknown(self, state: Hashable, input: RegisterInput) -> Hashable:
        if isinstance(input, Write):
            return input.value
        if isinstance(input, Cas) and state == input.expected:
            return input.new
        return state

    def read_only(self, input: RegisterInput) -> bool:
        return isinstance(input, Read)

    def describe(self, input: RegisterInput, output: Any, known: bool) -> str:
        if isinstance(input, Read):
            return f"read -> {output!r}" if known else "read -> ?"
        if isinstance(input, Write):
            return f"write {input.value!r}" + ("" if known else " (outcome unknown)")
        out = repr(output) if known else "?"
        return f"cas {input.expected!r} -> {input.new!r} : {out}"

    def prune(self, ops: list[Operation[Any, Any]]) -> list[Operation[Any, Any]]:
        """Drop indeterminate writes of a value no read returned, when the key has no CAS.

        Each such write can be assumed not to have happened: in any linearization that
        includes it, the interval from it to the next write holds no read (none returned its
        value) and no CAS, so removing it changes no output.  Without this, every such write
        doubles the search space of a non-linearizable history.
        """
        if any(isinstance(op.input, Cas) for op in ops):
            return ops
        seen = {op.output for op in ops if isinstance(op.input, Read) and op.complete is not None}
        return [
            op
            for op in ops
            if not (
                op.complete is None and isinstance(op.input, Write) and op.input.value not in seen
            )
        ]


# --- results --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyResult:
    """The verdict for one key.  On failure ``prefix`` is the shortest time-prefix of this
    key's history that is already not linearizable (pending operations in it count as
    indeterminate), ``culprit`` the operation whose response ends that prefix, and
    ``partial`` the longest linearization the search found for the prefix."""

    key: Hashable
    verdict: str
    ops: int
    states: int  # distinct (linearized set, state) pairs explored
    prefix: tuple[Operation[Any, Any], ...] = ()
    culprit: Operation[Any, Any] | None = None
    partial: tuple[tuple[Operation[Any, Any], Hashable], ...] = ()  # (op, state after it)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict for a whole history: every key's, and an explanation of the first bad key."""

    verdict: str
    keys: tuple[KeyResult, ...] = field(default_factory=tuple)
    explanation: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == LINEARIZABLE


# --- the search -----------------------------------------------------------------------


class _Node:
    """An event in the doubly linked event list: an invocation (``match`` is its response
    node, or None if indeterminate) or a response (``match`` is None, ``is_call`` False)."""

    __slots__ = ("is_call", "match", "next", "op", "prev")

    def __init__(self, op: int, is_call: bool) -> None:
        self.op = op
        self.is_call = is_call
        self.match: _Node | None = None
        self.prev: _Node | None = None
        self.next: _Node | None = None


def _lift(node: _Node) -> None:
    # Remove an invocation and its response from the list; _unlift undoes it (LIFO order).
    assert node.prev is not None
    node.prev.next = node.next
    if node.next is not None:
        node.next.prev = node.prev
    ret = node.match
    if ret is not None:
        assert ret.prev is not None
        ret.prev.next = ret.next
        if ret.next is not None:
            ret.next.prev = ret.prev


def _unlift(node: _Node) -> None:
    ret = node.match
    if ret is not None:
        assert ret.prev is not None
        ret.prev.next = ret
        if ret.next is not None:
            ret.next.prev = ret
    assert node.prev is not None
    node.prev.next = node
    if node.next is not None:
        node.next.prev = node


@dataclass(slots=True)
class _Search:
    verdict: str
    states: int
    partial: list[tuple[int, Hashable]]


def _search(
    model: Model[Any, Any, Any], ops: Sequence[Operation[Any, Any]], budget: int
) -> _Search:
    events: list[tuple[float, int, int]] = []  # (time, 0 call / 1 return, op)
    for i, op in enumerate(ops):
        events.append((op.invoke, 0, i))
        if op.complete is not None:
            events.append((op.complete, 1, i))
    events.sort()
    head = _Node(-1, True)
    calls: dict[int, _Node] = {}
    prev = head
    for _, kind, i in events:
        node = _Node(i, kind == 0)
        if kind == 0:
            calls[i] = node
        else:
            calls[i].match = node
        node.prev = prev
        prev.next = node
        prev = node

    remaining = sum(1 for op in ops if op.complete is not None)
    state: Hashable = model.init()
    linearized = 0
    cache: set[tuple[int, Hashable]] = set()
    stack: list[tuple[_Node, Hashable]] = []
    best: list[tuple[int, Hashable]] = []
    entry = head.next
    while remaining > 0:
        if entry is None:  # unreachable: a pending determinate op's response lies ahead
            raise AssertionError("event list exhausted with operations left")
        if entry.is_call:
            op = ops[entry.op]
            if op.complete is not None:
                legal, nxt = model.step(state, op.input, op.output)
            else:
                legal, nxt = True, model.step_unknown(state, op.input)
            if legal:
                new_set = linearized | (1 << entry.op)
                memo = (new_set, nxt)
                if memo not in cache:
                    if len(cache) >= budget:
                        return _Search(UNKNOWN, len(cache), [])
                    cache.add(memo)
                    stack.append((entry, state))
                    state, linearized = nxt, new_set
                    _lift(entry)
                    if op.complete is not None:
                        remaining -= 1
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # The earliest unlinearized response: nothing left to try at this depth.
            if len(stack) >= len(best):
                best = _partial(stack, state, ops)
            if not stack:
                return _Search(NOT_LINEARIZABLE, len(cache), best)
            node, state = stack.pop()
            linearized &= ~(1 << node.op)
            _unlift(node)
            if ops[node.op].complete is not None:
                remaining += 1
            entry = node.next
    return _Search(LINEARIZABLE, len(cache), [])


def _partial(
    stack: list[tuple[_Node, Hashable]], state: Hashable, ops: Sequence[Operation[Any, Any]]
) -> list[tuple[int, Hashable]]:
    # stack[k] holds (the k-th linearized op, the state before it); pair each op with the
    # state after it.
    out: list[tuple[int, Hashable]] = []
    for k, (node, _) in enumerate(stack):
        after = stack[k + 1][1] if k + 1 < len(stack) else state
        out.append((node.op, after))
    return out


def _truncate(ops: Sequence[Operation[InT, OutT]], cutoff: float) -> list[Operation[InT, OutT]]:
    """The history as seen at time ``cutoff``: later invocations dropped, responses after
    it unknown (the operation becomes indeterminate)."""
    out: list[Operation[InT, OutT]] = []
    for op in ops:
        if op.invoke > cutoff:
            continue
        if op.complete is not None and op.complete > cutoff:
            op = replace(op, complete=None, output=None)
        out.append(op)
    return out


def _prepare(
    model: Model[Any, InT, OutT], ops: Iterable[Operation[InT, OutT]]
) -> list[Operation[InT, OutT]]:
    # An indeterminate read-only operation constrains nothing.
    kept = [op for op in ops if not (op.complete is None and model.read_only(op.input))]
    return model.prune(kept)


def check_key(
    model: Model[Any, InT, OutT],
    ops: Iterable[Operation[InT, OutT]],
    *,
    key: Hashable = None,
    budget: int = 2_000_000,
) -> KeyResult:
    """Check one key's operations.  ``budget`` caps the memo size (verdict UNKNOWN beyond)."""
    history = _prepare(model, ops)
    for op in history:
        if op.complete is not None and op.complete < op.invoke:
            raise ValueError(f"operation completes before it is invoked: {op}")
    result = _search(model, history, budget)
    if result.verdict != NOT_LINEARIZABLE:
        return KeyResult(key, result.verdict, len(history), result.states)
    # Linearizability of time-prefixes is monotone (a linearization of a longer prefix,
    # cut after the last operation completed in the shorter one, linearizes the shorter
    # one), so binary-search the first response time at which the history goes bad.
    cutoffs = sorted({op.complete for op in history if op.complete is not None})
    lo, hi = 0, len(cutoffs) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        attempt = _search(model, _prepare(model, _truncate(history, cutoffs[mid])), budget)
        if attempt.verdict == NOT_LINEARIZABLE:
            hi = mid
        else:
            lo = mid + 1
    prefix = _prepare(model, _truncate(history, cutoffs[lo]))
    found = _search(model, prefix, budget)
    culprit = next((op for op in prefix if op.complete == cutoffs[lo]), None)
    return KeyResult(
        key,
        NOT_LINEARIZABLE,
        len(history),
        result.states,
        prefix=tuple(sorted(prefix, key=lambda op: op.invoke)),
        culprit=culprit,
        partial=tuple((prefix[i], s) for i, s in found.partial),
    )


def check(
    model: Model[Any, InT, OutT],
    history: Iterable[Operation[InT, OutT]],
    *,
    budget: int = 2_000_000,
    keys: Callable[[Operation[InT, OutT]], Hashable] | None = None,
) -> CheckResult:
    """Check a whole history, one key at a time (``keys`` overrides ``op.key``).

    The verdict is NOT_LINEARIZABLE if any key is, else UNKNOWN if any key ran out of
    budget, else LINEARIZABLE.
    """
    by_key: dict[Hashable, list[Operation[InT, OutT]]] = {}
    for op in history:
        by_key.setdefault(op.key if keys is None else keys(op), []).append(op)
    results = [check_key(model, ops, key=k, budget=budget) for k, ops in by_key.items()]
    bad = [r for r in results if r.verdict == NOT_LINEARIZABLE]
    if bad:
        return CheckResult(NOT_LINEARIZABLE, tuple(results), explain(model, bad[0]))
    if any(r.verdict == UNKNOWN for r in results):
        return CheckResult(UNKNOWN, tuple(results), "state budget exhausted before a verdict")
    return CheckResult(LINEARIZABLE, tuple(results))


def _fmt_time(t: float | None) -> str:
    if t is None:
        return "never"
    return str(int(t)) if float(t).is_integer() else f"{t:g}"


def explain(model: Model[Any, Any, Any], result: KeyResult, *, limit: int = 40) -> str:
    """A readable account of why ``result``'s key is not linearizable."""

    def line(op: Operation[Any, Any]) -> str:
        what = model.describe(op.input, op.output, op.complete is not None)
        return (
            f"  [{_fmt_time(op.invoke)} .. {_fmt_time(op.complete)}] client {op.client}: {what}"
        )

    lines = [f"key {result.key!r}: not linearizable ({result.ops} operations on this key)"]
    if result.culprit is not None:
        lines.append(
            "the shortest non-linearizable prefix ends when this operation returns:\n"
            + line(result.culprit)
        )
    shown = result.prefix[-limit:]
    hidden = len(result.prefix) - len(shown)
    lines.append(
        f"that prefix ({len(result.prefix)} operations"
        + (f", first {hidden} not shown" if hidden else "")
        + "; '..never' = no response seen by then):"
    )
    lines.extend(line(op) for op in shown)
    lines.append(f"longest linearization found ({len(result.partial)} operations):")
    for op, state in result.partial[-limit:]:
        lines.append(line(op) + f"   => state {state!r}")
    return "\n".join(lines)

