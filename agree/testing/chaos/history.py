"""Histories in Jepsen's form and their checks.

A history is a list of events: each operation's ``invoke``, then ``ok`` (it happened, with this
result), ``fail`` (it certainly did not happen) or ``info`` (unknown: it may have happened, at
any time after its invocation).  A process whose operation ended ``info`` may still have it in
flight, so it continues under a new process id (and a new client id: the client's exactly-once
session is its own).

Checks (each returns anomalies, human-readable):

* registers: linearizability per key with :func:`agree.testing.linearizability.check_key`, in a
  child process with a time limit; a key whose search is cut short is an anomaly ("unknown",
  to investigate), and a non-linearizable key prints the minimal failing prefix;
* append log: every acknowledged id present, none twice, none that failed, none never sent;
* bank: every read and the final state sum to the initial total, no account negative;
* watch streams: log indexes strictly increasing across reconnects, and the ids seen are
  exactly the final log's, in its order, without a gap.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue as queue_module
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from agree.testing.linearizability import (
    LINEARIZABLE,
    NOT_LINEARIZABLE,
    Cas,
    Operation,
    Read,
    RegisterModel,
    Write,
    check_key,
    explain,
)


@dataclass
class Op:
    """One operation: its invocation and (once known) its completion."""

    process: int
    f: str  # read / write / cas / append / transfer / balances
    key: Hashable
    value: Any
    invoke: float
    type: str = "invoke"  # then ok / fail / info
    result: Any = None
    complete: float | None = None
    node: str = ""

    def line(self) -> str:
        return (
            f"{{:process {self.process} :type :{self.type} :f :{self.f} :key {self.key!r} "
            f":value {self.value!r} :result {self.result!r} :node {self.node} "
            f":invoke {self.invoke:.4f} :complete "
            + ("nil" if self.complete is None else f"{self.complete:.4f}")
            + "}"
        )


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)

    def invoke(self, process: int, f: str, key: Hashable, value: Any, now: float, node: str) -> Op:
        op = Op(process, f, key, value, now, node=node)
        self.ops.append(op)
        return op

    def count(self, f: str | None = None, type: str | None = None) -> int:
        return sum(
            1 for o in self.ops if (f is None or o.f == f) and (type is None or o.type == type)
        )

    def text(self) -> str:
        return "\n".join(op.line() for op in sorted(self.ops, key=lambda o: o.invoke)) + "\n"


# --- registers: linearizability ----------------------------------------------------------------


def register_operations(history: History) -> dict[Hashable, list[Operation[Any, Any]]]:
    by_key: dict[Hashable, list[Operation[Any, Any]]] = {}
    for op in history.ops:
        if op.f not in ("read", "write", "cas") or op.type == "fail":
            continue  # a failed operation certainly did not happen: it constrains nothing
        known = op.type == "ok"
        if op.f == "read":
            input: Any = Read()
        elif op.f == "write":
            input = Write(op.value)
        else:
            input = Cas(op.value[0], op.value[1])
        by_key.setdefault(op.key, []).append(
            Operation(
                client=op.process,
                key=op.key,
                input=input,
                output=op.result if known else None,
                invoke=op.invoke,
                complete=op.complete if known else None,
            )
        )
    return by_key


def _check_in_child(ops: list[Operation[Any, Any]], key: Hashable, out: Any) -> None:
    model = RegisterModel(None)
    result = check_key(model, ops, key=key)
    text = explain(model, result) if result.verdict == NOT_LINEARIZABLE else ""
    out.put((result.verdict, result.ops, text))


def check_registers(history: History, *, time_limit: float) -> tuple[list[str], int]:
    """Anomalies, and how many operations were checked."""
    anomalies: list[str] = []
    checked = 0
    context = multiprocessing.get_context("spawn")
    for key, ops in sorted(register_operations(history).items(), key=lambda kv: str(kv[0])):
        out = context.Queue()
        child = context.Process(target=_check_in_child, args=(ops, key, out), daemon=True)
        child.start()
        try:
            verdict, count, text = out.get(timeout=time_limit)
        except queue_module.Empty:
            verdict, count, text = "unknown", len(ops), ""
        finally:
            if child.is_alive():
                child.kill()  # by its own pid
            child.join(5)
        checked += count
        if verdict == LINEARIZABLE:
            continue
        if verdict == NOT_LINEARIZABLE:
            anomalies.append(f"registers: key {key!r} is not linearizable\n{text}")
        else:
            anomalies.append(
                f"registers: key {key!r}: no verdict within {time_limit}s ({len(ops)} operations);"
                " unknown counts as a failure to investigate"
            )
    return anomalies, checked


# --- append log ----------------------------------------------------------------------------------


def check_append(history: History, final: list[str]) -> list[str]:
    anomalies = []
    sent = {op.value: op for op in history.ops if op.f == "append"}
    counts = Counter(final)
    twice = sorted(i for i, c in counts.items() if c > 1)
    if twice:
        anomalies.append(f"append: applied more than once: {twice[:20]}")
    lost = sorted(v for v, op in sent.items() if op.type == "ok" and v not in counts)
    if lost:
        anomalies.append(f"append: acknowledged and lost: {lost[:20]} ({len(lost)} in all)")
    failed = sorted(v for v, op in sent.items() if op.type == "fail" and v in counts)
    if failed:
        anomalies.append(f"append: reported failed but applied: {failed[:20]}")
    phantom = sorted(v for v in counts if v not in sent)
    if phantom:
        anomalies.append(f"append: never sent but present: {phantom[:20]}")
    return anomalies


# --- bank ----------------------------------------------------------------------------------------


def check_bank(history: History, final: dict[str, int], total: int) -> list[str]:
    anomalies = []
    snapshots: list[tuple[Op | None, Any]] = [
        (op, op.result)
        for op in history.ops
        if op.type == "ok" and op.f in ("balances", "transfer")
    ]
    snapshots.append((None, final))
    for op, balances in snapshots:
        if not isinstance(balances, dict):
            continue
        if sum(balances.values()) != total or any(v < 0 for v in balances.values()):
            where = "final state" if op is None else op.line()
            anomalies.append(f"bank: balances {balances} (total {total}) in {where}")
            break
    return anomalies


# --- watch streams -------------------------------------------------------------------------------


@dataclass
class Stream:
    """What one subscriber saw: (log index, appended id) in arrival order."""

    name: str
    seen: list[tuple[int, str]] = field(default_factory=list)
    reconnects: int = 0
    overflowed: bool = False  # a node no longer held where to resume: refused with 410


def check_streams(streams: list[Stream], final: list[str]) -> list[str]:
    anomalies = []
    for s in streams:
        indexes = [i for i, _ in s.seen]
        if any(b <= a for a, b in itertools.pairwise(indexes)):
            bad = next(k for k in range(1, len(indexes)) if indexes[k] <= indexes[k - 1])
            anomalies.append(
                f"watch {s.name}: index {indexes[bad]} after {indexes[bad - 1]} "
                f"(position {bad}, {s.reconnects} reconnects): a duplicate or out of order"
            )
            continue
        if s.overflowed:
            continue  # refused explicitly, not a silent gap: counted, not checkable further
        ids = [item for _, item in s.seen]
        if ids != final[: len(ids)]:
            k = next((k for k, (a, b) in enumerate(zip(ids, final, strict=False)) if a != b), None)
            at = k if k is not None else min(len(ids), len(final))
            anomalies.append(
                f"watch {s.name}: stream differs from the log at position {at}: saw "
                f"{ids[at : at + 3]}, log has {final[at : at + 3]} ({s.reconnects} reconnects)"
            )
        elif len(ids) < len(final):
            anomalies.append(
                f"watch {s.name}: saw {len(ids)} of {len(final)} appends by the end "
                f"({s.reconnects} reconnects)"
            )
    return anomalies
