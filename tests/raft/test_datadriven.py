"""Scenario transcripts in ``testdata/*.txt``, run against the in-memory harness.

Commands (``node`` is a node id; message filters are ``type=`` ``from=`` ``to=``):

- ``cluster a b c [learners=(l)] [seed=0] [pre_vote=false] [check_quorum=false]
  [lease_read=true] [lease_clock_drift=0.0] [election_tick=10] [snapshot_chunk_bytes=8]
  [rounds=true]`` (``rounds``: print vote round ids, which start at random)
- ``tick node [n=1] [quiet=true]``, ``tick-all [n=1]`` (every node once per step, the
  network settling in between), ``tick-until node role`` (lockstep until it has ``role``),
  ``clocks node=rate... [n=100] [until=leader]`` (per-node clock rates; prints every
  change of role or term)
- ``campaign node``, ``elect node``, ``forget-leader node...``
- ``deliver [filters]``, ``drop [filters]``, ``stabilize [quiet=true]``,
  ``hold name [filters]`` (take messages out of the network), ``release name``
- ``isolate node``, ``cut a b``, ``heal``, ``crash node``, ``restart node``
- ``propose node data...``, ``transfer node target``, ``read node context``,
  ``compact node [spaced=true]``, ``remove leader node``
- ``status [node...]``, ``state node``, ``read-states node``, ``snapshot node``

A command prints the messages it sent or delivered (``src->dst Type field=value``, fields
at their default left out) unless ``quiet=true``.  Rewrite the expected outputs with
``AGREE_REWRITE_TESTDATA=1``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import datadriven
import pytest
from datadriven import Case, run_file
from raft_harness import Cluster

from agree.raft import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    Message,
    Role,
)

TESTDATA = Path(__file__).parent / "testdata"
CONFIG_KEYS = {
    "pre_vote": bool, "check_quorum": bool, "lease_read": bool, "lease_clock_drift": float,
    "election_tick": int, "heartbeat_tick": int, "snapshot_chunk_bytes": int,
    "max_msg_bytes": int,
}


def _entry(e: Entry) -> str:
    """index/term, and the type unless NORMAL."""
    kind = "" if e.type is EntryType.NORMAL else f":{e.type.name}"
    return f"{e.index}/{e.term}{kind}"


def _value(v: object) -> str:
    if isinstance(v, bytes):
        if len(v) > 12:
            return f"<{len(v)} bytes {hashlib.sha256(v).hexdigest()[:8]}>"
        return repr(v)[1:]
    if isinstance(v, tuple) and all(isinstance(e, Entry) for e in v):
        return "[" + " ".join(_entry(e) for e in v) + "]"
    if isinstance(v, ConfState):
        return "(" + ",".join(sorted(v.voters)) + ")"
    return str(v)


def fmt(m: Message, *, rounds: bool = False) -> str:
    """One line; vote round ids (random per server start) only if ``rounds``."""
    parts = [f"{m.src}->{m.dst} {type(m).__name__} term={m.term}"]
    for f in dataclasses.fields(m):
        if f.name in ("src", "dst", "term") or (f.name == "round_id" and not rounds):
            continue
        v = getattr(m, f.name)
        if f.default is not dataclasses.MISSING and v == f.default:
            continue
        parts.append(f"{f.name}={_value(v)}")
    return " ".join(parts)


def _filter(case: Case) -> Callable[[Message], bool]:
    kind, src, dst = case.kwargs.get("type"), case.kwargs.get("from"), case.kwargs.get("to")

    def pred(m: Message) -> bool:
        return ((kind is None or type(m).__name__ == kind) and (src is None or m.src == src)
                and (dst is None or m.dst == dst))

    return pred


class Env:
    def __init__(self) -> None:
        self.c: Cluster | None = None
        self.held: dict[str, list[Message]] = {}
        self.rounds = False

    @property
    def cluster(self) -> Cluster:
        assert self.c is not None, "no cluster yet"
        return self.c

    def _line(self, m: Message) -> str:
        c = self.cluster
        lost = not c.linked(m.src, m.dst) or m.dst in c.down or m.src in c.down
        return fmt(m, rounds=self.rounds) + (" (lost)" if lost else "")

    def _sent_by(self, action: Callable[[], object], case: Case) -> str:
        c = self.cluster
        before = len(c.sent)
        action()
        if case.flag("quiet", False):
            return ""
        return "\n".join(self._line(m) for m in c.sent[before:])

    def _delivered(self, msgs: list[Message], case: Case) -> str:
        """Deliver ``msgs`` one by one, printing each and what it caused."""
        c = self.cluster
        lines = []
        for m in msgs:
            lines.append(self._line(m))
            before = len(c.sent)
            c.send(m)
            lines += ["  " + self._line(r) for r in c.sent[before:]]
        return "" if case.flag("quiet", False) else "\n".join(lines)

    def _clocks(self, case: Case) -> str:
        """Steps in which each node named ticks as often as its rate says (the others not
        at all), the network settling after each; prints every change of role or term.
        ``until=leader``: stop once a leader of a higher term than any before exists."""
        c = self.cluster
        rates = {n: int(r) for n, r in case.kwargs.items() if n in c.peers}
        seen = {n: (c[n].role, c[n].term) for n in c.peers}
        start_term = max(c[n].term for n in c.peers if n not in c.down)
        lines = []
        for step in range(1, case.int("n", 100) + 1):
            for node_id, rate in rates.items():
                if node_id not in c.down:
                    for _ in range(rate):
                        c[node_id].tick()
            c.process()
            c.stabilize()
            for node_id in sorted(c.peers):
                now = (c[node_id].role, c[node_id].term)
                if node_id not in c.down and now != seen[node_id]:
                    seen[node_id] = now
                    lines.append(f"step {step}: {node_id} {now[0].value} term={now[1]}")
            leader = c.leader()
            if case.get("until", "") == "leader" and leader and c[leader].term > start_term:
                break
        return "\n".join(lines)

    def status(self, node_id: str) -> str:
        c = self.cluster
        if node_id in c.down:
            return f"{node_id}: down"
        s = c[node_id].status()
        return (f"{node_id}: {s.role.value} term={s.term} vote={s.vote or '-'} "
                f"commit={s.commit} last={s.last_index} lead={s.leader_id or '-'}")

    def handle(self, case: Case) -> str:
        cmd, args = case.command, case.args
        if cmd == "cluster":
            config: dict[str, object] = {}
            for key, kind in CONFIG_KEYS.items():
                if key in case.kwargs:
                    raw = case.kwargs[key]
                    config[key] = raw == "true" if kind is bool else kind(raw)
            learners = case.get("learners", "()").strip("()").split(",")
            self.c = Cluster(args, learners=[n for n in learners if n],
                             seed=case.int("seed", 0), **config)
            self.held = {}
            self.rounds = case.flag("rounds", False)
            return ""
        c = self.cluster
        if cmd == "tick":
            return self._sent_by(lambda: c.tick(args[0], case.int("n", 1)), case)
        if cmd == "tick-all":
            c.tick_all(case.int("n", 1))
            return ""
        if cmd == "clocks":
            return self._clocks(case)
        if cmd == "tick-until":
            node, role = args[0], Role(args[1])
            for steps in range(1, 1001):
                c.tick_all(1)
                if c[node].role is role:
                    return f"{steps} ticks"
            raise AssertionError(f"{case.where}: {node} never became {role.value}")
        if cmd == "campaign":
            return self._sent_by(lambda: (c.campaign(args[0]), c.process()), case)
        if cmd == "elect":
            c.elect(args[0])
            return "\n".join(self.status(n) for n in sorted(c.peers))
        if cmd == "forget-leader":
            c.forget_leader(*args)
            return ""
        if cmd == "deliver":
            return self._delivered(c.take(_filter(case)), case)
        if cmd == "drop":
            dropped = c.take(_filter(case))
            return "" if case.flag("quiet", False) else "\n".join(self._line(m) for m in dropped)
        if cmd == "stabilize":
            lines = []
            for _ in range(2000):
                msgs = c.take()
                if not msgs:
                    break
                lines.append(self._delivered(msgs, case))
            return "\n".join(line for line in lines if line)
        if cmd == "hold":
            self.held.setdefault(args[0], []).extend(c.take(_filter(case)))
            return "\n".join(self._line(m) for m in self.held[args[0]])
        if cmd == "release":
            return self._delivered(self.held.pop(args[0]), case)
        if cmd == "isolate":
            c.isolate(args[0])
            return ""
        if cmd == "cut":
            c.cut.add(frozenset(args[:2]))
            return ""
        if cmd == "heal":
            c.heal()
            return ""
        if cmd == "crash":
            c.crash(args[0])
            return ""
        if cmd == "restart":
            c.restart(args[0])
            return ""
        if cmd == "propose":
            return self._sent_by(lambda: [c.propose(args[0], d.encode()) for d in args[1:]],
                                 case)
        if cmd == "transfer":
            return self._sent_by(lambda: (c[args[0]].transfer_leader(args[1]), c.process()),
                                 case)
        if cmd == "read":
            return self._sent_by(lambda: (c[args[0]].read_index(args[1].encode()),
                                          c.process()), case)
        if cmd == "remove":
            change = ConfChange(ConfChangeType.REMOVE, args[1])
            return self._sent_by(lambda: (c[args[0]].propose_conf_change(change),
                                          c.process()), case)
        if cmd == "compact":
            peer = c.peers[args[0]]
            data = json.dumps([d.hex() for d in peer.state],
                              indent=1 if case.flag("spaced", False) else None).encode()
            snap = peer.node.compact(peer.node.applied_index, data)
            peer.storage.compact(snap)
            return f"index={snap.meta.index} term={snap.meta.term} data={_value(snap.data)}"
        if cmd == "status":
            return "\n".join(self.status(n) for n in (args or sorted(c.peers)))
        if cmd == "state":
            return " ".join(d.decode() for d in c.peers[args[0]].state) or "(empty)"
        if cmd == "read-states":
            rs = c.peers[args[0]].read_states
            return "\n".join(f"{r.context.decode()} index={r.index}" for r in rs) or "(none)"
        if cmd == "snapshot":
            snap = c.peers[args[0]].storage.snapshot()
            if snap is None:
                return "(none)"
            return f"index={snap.meta.index} term={snap.meta.term} data={_value(snap.data)}"
        raise ValueError(f"{case.where}: unknown command {cmd!r}")


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("*.txt")), ids=lambda p: p.stem)
def test_transcript(path: Path) -> None:
    run_file(path, Env().handle)


def test_the_format_checks_and_rewrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.txt"
    path.write_text("# echo\necho a b=1\n----\nwrong\n\necho c\n----\n")

    def echo(case: Case) -> str:
        return " ".join([*case.args, *(f"{k}:{v}" for k, v in case.kwargs.items())])

    monkeypatch.setattr(datadriven, "REWRITE", False)
    with pytest.raises(AssertionError, match=re.escape("t.txt:2: echo a b=1")):
        run_file(path, echo)
    monkeypatch.setattr(datadriven, "REWRITE", True)
    run_file(path, echo)
    assert path.read_text() == "# echo\necho a b=1\n----\na b:1\n\necho c\n----\nc\n"
    monkeypatch.setattr(datadriven, "REWRITE", False)
    run_file(path, echo)
