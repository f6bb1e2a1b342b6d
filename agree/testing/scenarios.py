"""Scripted scenarios: named, deterministic runs of the simulator that set up one known
defect's conditions on purpose instead of waiting for a seed to stumble on them.

Owns: the :class:`Script` helpers (drive a quiet :class:`~agree.testing.sim.Simulation`
step by step: wait for a leader, write, read, hold and release messages), and one
scenario per defect of the Raft core found by the audit (issue 7, items 1-5).  Each
scenario ends in one of three outcomes:

- ``ok``: the core behaved; the defect is absent;
- ``DEFECT``: a :class:`~agree.testing.invariants.Violation` (the invariants, the
  linearizability checker, or the scenario's own check) caught it;
- ``ERROR``: the script could not set up its conditions (the scenario needs work).

Scenarios depend on messages, roles and terms only -- never on the core's internals --
so they keep working whatever shape a fix takes.

    python -m agree.testing.sim --scenario all
    python -m agree.testing.sim --scenario snapshot-two-leaders --trace
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from agree.raft import ConfChange, ConfChangeType, Message, Role
from agree.raft.messages import (
    AppendEntries,
    Heartbeat,
    InstallSnapshot,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from agree.raft.node import RaftNode
from agree.testing.invariants import Violation
from agree.testing.sim import Client, ClientOp, SimConfig, SimNode, Simulation
from agree.testing.simnet import NetConfig

OK, DEFECT, ERROR = "ok", "DEFECT", "ERROR"


class ScenarioError(Exception):
    """The script could not set up the conditions it needs."""


# A world with no random faults: messages take exactly one step and are never lost,
# clocks agree unless a scenario says otherwise, clients act only when told to.
QUIET = SimConfig(
    nodes=3,
    steps=0,
    keys=1,
    clients=2,
    net=NetConfig(min_delay=1, max_delay=1),
    p_request=0.0,
    op_timeout=60,
    p_partition=0.0,
    p_heal=0.0,
    p_crash=0.0,
    p_crash_leader=0.0,
    p_ready_crash=0.0,
    p_membership=0.0,
    p_transfer=0.0,
    p_compact=0.0,
    clock_skew=1.0,
    clock_drift=0.0,
    divergent_snapshots=False,
    lease_read=False,
    settle=0,
)


class Script:
    """A :class:`Simulation` driven by hand.  Every step still runs every invariant."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.net = sim.net

    # -- looking ---------------------------------------------------------------------

    def node(self, node_id: str) -> SimNode:
        return self.sim.nodes[node_id]

    def core(self, node_id: str) -> RaftNode:
        core = self.sim.nodes[node_id].core
        if core is None:
            raise ScenarioError(f"{node_id} is down")
        return core

    def ids(self) -> list[str]:
        return sorted(self.sim.nodes)

    def leader(self) -> str | None:
        node = self.sim._leader()
        return node.id if node is not None else None

    def note(self, text: str) -> None:
        self.sim._log("==", text)

    # -- time ------------------------------------------------------------------------

    def steps(self, n: int) -> None:
        for _ in range(n):
            self.sim.step()

    def until(self, done: Callable[[], bool], within: int, what: str) -> int:
        """Step until ``done()``; the steps it took.  ScenarioError after ``within``."""
        for k in range(within + 1):
            if done():
                return k
            self.sim.step()
        raise ScenarioError(f"{what}: not within {within} steps (at step {self.sim.now})")

    def elect(self, within: int = 200) -> str:
        """Wait for a leader that has committed an entry of its term; its id."""

        def ready() -> bool:
            leader = self.leader()
            if leader is None:
                return False
            core = self.core(leader)
            return core.commit_index >= core.last_index

        self.until(ready, within, "a leader")
        leader = self.leader()
        assert leader is not None
        self.note(f"{leader} leads term {self.core(leader).term}")
        return leader

    # -- clients ---------------------------------------------------------------------

    def _client(self) -> Client:
        for client in self.sim.clients:
            if client.op is None:
                return client
        raise ScenarioError("every client is busy")

    def start(self, node_id: str, key: str = "k0", *, write: bool) -> ClientOp:
        return self.sim.submit(self._client(), self.node(node_id), key, write)

    def write(self, node_id: str, key: str = "k0", within: int = 50) -> ClientOp:
        """Write at ``node_id`` and wait until it is acknowledged."""
        op = self.start(node_id, key, write=True)
        self.until(lambda: op.status != "pending", within, f"write at {node_id}")
        if op.status != "ok":
            raise ScenarioError(f"write at {node_id} {op.status}")
        return op

    # -- faults ----------------------------------------------------------------------

    def crash(self, node_id: str) -> None:
        """Crash ``node_id`` for good (until :meth:`restart`), with its in-flight messages."""
        node = self.node(node_id)
        self.sim._crash(node, "crashes (scripted)")
        self.net.discard_from(node_id)
        node.restart_at = None

    def isolate(self, node_id: str) -> None:
        self.net.isolate(node_id, self.ids())
        self.note(f"isolates {node_id}")

    def heal(self) -> None:
        self.net.heal()
        self.note("heals the network")


# --- the scenarios ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    item: int  # the issue item it reproduces
    summary: str
    config: SimConfig
    script: Callable[[Script], None]
    seed: int = 1


def _is(kind: type[Message], src: str | None = None, dst: str | None = None
        ) -> Callable[[Message], bool]:
    def match(m: Message) -> bool:
        return (isinstance(m, kind) and (src is None or m.src == src)
                and (dst is None or m.dst == dst))

    return match


def _other(ids: Iterable[str], *not_these: str) -> str:
    return sorted(set(ids) - set(not_these))[0]


def snapshot_two_leaders(s: Script) -> None:
    """Item 1 (Figure 13): follower F receives the first chunks of snapshot (i, t) from
    leader A; A crashes; B, holding a snapshot at the same (i, t) in other bytes, becomes
    leader and sends it.  F must install B's snapshot whole, never A's head on B's tail."""
    a = s.elect()
    f = _other(s.ids(), a)
    b = _other(s.ids(), a, f)
    s.isolate(f)
    for _ in range(12):
        s.write(a)
    every = s.sim.cfg.compact_min
    s.until(lambda: s.node(b).applied >= s.node(a).applied, 20, f"{b} catching up")
    for x in (a, b):
        s.sim._compact(s.node(x))
    snap_a, snap_b = s.node(a).store.snapshot(), s.node(b).store.snapshot()
    assert snap_a is not None and snap_b is not None
    if snap_a.meta != snap_b.meta or snap_a.data == snap_b.data or snap_a.meta.index % every:
        raise ScenarioError(f"snapshots {snap_a.meta} / {snap_b.meta} do not differ in bytes")
    s.note(f"{a} and {b} hold snapshot {snap_a.meta.index}/{snap_a.meta.term} in "
           f"{len(snap_a.data)} and {len(snap_b.data)} bytes")
    chunk = s.sim.cfg.snapshot_chunk_bytes
    # F gets A's first two chunks and nothing after them.
    def later_chunks(m: Message) -> bool:
        return (isinstance(m, InstallSnapshot) and m.src == a and m.dst == f
                and m.offset >= 2 * chunk)

    held = s.net.hold(later_chunks)
    s.heal()
    s.until(lambda: len(s.net.held) > 0, 40, f"{a} sending the third chunk to {f}")
    s.crash(a)
    s.net.unhold(held)
    s.net.held.clear()
    s.note(f"{f} holds {2 * chunk} bytes of {a}'s snapshot; {a} crashed")
    s.until(lambda: s.leader() == b, 100, f"{b} elected")
    s.until(lambda: s.node(f).applied >= snap_b.meta.index, 60, f"{f} installing a snapshot")


def stale_lease_read_transfer(s: Script) -> None:
    """Item 2 (§6.4.1, §3.10): leader L hands leadership to T, but hears nothing more from
    anyone; T wins at once (a transfer's vote requests bypass the followers' leases) and
    a write completes under T.  A lease read at L must not return the older value."""
    lead = s.elect()
    s.write(lead)
    t = _other(s.ids(), lead)
    s.core(lead).transfer_leader(t)
    s.net.cut_one_way([i for i in s.ids() if i != lead], [lead])
    s.note(f"{lead} transfers to {t}; nothing reaches {lead} any more")
    s.until(lambda: s.leader() == t and s.core(t).commit_index >= s.core(t).last_index, 40,
            f"{t} leading")
    s.write(t)
    if s.core(lead).role is Role.LEADER:
        op = s.start(lead, write=False)
        s.until(lambda: op.status != "pending", 80, f"the read at {lead} finishing")


def stale_lease_read_partition(s: Script) -> None:
    """Item 2 (§6.4.1): leader L is cut off; the others elect a leader and a write
    completes there while L still believes it leads.  A lease read at L then must not
    return the older value (the lease must end before anyone else can be elected)."""
    s.until(lambda: s.leader() is not None, 200, "a leader")
    elected = s.sim.now
    lead = s.elect()
    s.write(lead)
    # Cut it off just after it confirmed a quorum: its lease is then as long as it gets.
    s.until(lambda: s.sim.now >= elected + s.sim.cfg.election_tick + 2, 50, "the moment")
    s.isolate(lead)
    others = [i for i in s.ids() if i != lead]

    def new_leader() -> bool:
        x = s.leader()
        return x is not None and x != lead and s.core(x).commit_index >= s.core(x).last_index

    s.until(new_leader, 200, "a new leader")
    new = s.leader()
    assert new in others
    s.write(new)
    if s.core(lead).role is Role.LEADER:
        op = s.start(lead, write=False)
        s.until(lambda: op.status != "pending", 80, f"the read at {lead} finishing")


def stale_lease_read_slow_leader(s: Script) -> None:
    """Item 2 (§6.4.1, clock drift): as above, with the leader's clock at half the others'
    rate: a lease counted in the leader's ticks must still end, in true time, before a
    follower's election timeout (counted in its faster ticks) can elect another leader."""
    slow = "n1"
    lead = s.elect()
    if lead != slow:
        s.core(lead).transfer_leader(slow)
        s.until(lambda: s.leader() == slow, 60, f"the transfer to {slow}")
        lead = s.elect()
    s.write(lead)
    s.isolate(lead)

    def new_leader() -> bool:
        x = s.leader()
        return x is not None and x != lead and s.core(x).commit_index >= s.core(x).last_index

    s.until(new_leader, 200, "a new leader")
    new = s.leader()
    assert new is not None
    s.write(new)
    if s.core(lead).role is Role.LEADER:
        op = s.start(lead, write=False)
        s.until(lambda: op.status != "pending", 80, f"the read at {lead} finishing")


def livelock_fast_short_log(s: Script) -> None:
    """Item 3 (Figure 2, pre-vote off): S, with a short log and a clock twice as fast, keeps
    timing out first; U, up to date, rejects its votes.  U must still get to campaign
    and win (its election timer is not reset by vote requests it rejects)."""
    fast = "n1"
    lead = s.elect()
    if lead == fast:
        s.core(fast).transfer_leader(_other(s.ids(), fast))
        s.until(lambda: s.leader() not in (None, fast), 40, "the transfer")
        lead = s.elect()
    up = _other(s.ids(), fast, lead)
    s.isolate(fast)
    for _ in range(3):
        s.write(lead)
    s.until(lambda: s.node(up).applied >= s.node(lead).applied, 20, f"{up} catching up")
    s.crash(lead)
    s.heal()
    s.note(f"{lead} down for good; {fast} (fast clock, short log) and {up} (up to date) left")
    budget = 40 * s.sim.cfg.election_tick
    try:
        s.until(lambda: s.leader() == up, budget, f"{up} elected")
    except ScenarioError:
        raise Violation(
            "stuck",
            up,
            f"no leader in {budget} steps: {fast} campaigned up to term "
            f"{s.core(fast).term}, {up} never won",
        ) from None


def removed_node_deposes(s: Script) -> None:
    """Item 4 (§4.2.3, pre-vote and check-quorum off): R is removed while cut off, so it
    never learns it; it keeps campaigning.  The leader must ignore its vote requests while
    it is current, as followers do, and keep leading."""
    lead = s.elect()
    r = _other(s.ids(), lead)
    s.isolate(r)
    s.core(lead).propose_conf_change(ConfChange(ConfChangeType.REMOVE, r))
    s.until(lambda: r not in s.sim._conf.voters, 40, f"removal of {r} committed")
    s.sim._removals.pop(r, None)  # R keeps running: nobody tells it
    s.heal()
    term = s.core(lead).term
    s.note(f"{r} removed; {lead} leads term {term}")
    window = 20 * s.sim.cfg.election_tick
    for _ in range(window):
        s.sim.step()
        if s.leader() != lead or s.core(lead).term != term:
            raise Violation(
                "removed node disrupts",
                lead,
                f"{lead} (term {term}) deposed; {r}, removed, is at term {s.core(r).term}",
            )
    if s.core(r).term == term:
        raise ScenarioError(f"{r} never campaigned")


def stale_timeout_now(s: Script) -> None:
    """Item 5 (§3.10): a TimeoutNow delayed past the abort of its transfer must not force
    an election: the leader aborted the transfer and leads on."""
    lead = s.elect()
    t = _other(s.ids(), lead)
    s.net.hold(_is(TimeoutNow, lead, t))
    s.core(lead).transfer_leader(t)
    s.until(lambda: len(s.net.held) > 0, 5, "the TimeoutNow")
    s.until(lambda: s.core(lead).status().lead_transferee is None,
            4 * s.sim.cfg.election_tick, "the transfer aborting")
    term = s.core(lead).term
    s.write(lead)  # proposals are accepted again: the transfer is over
    s.net.release(s.sim.now)
    s.note(f"transfer aborted; the TimeoutNow reaches {t} now")
    for _ in range(3 * s.sim.cfg.election_tick):
        s.sim.step()
        if s.leader() != lead or s.core(lead).term != term:
            raise Violation(
                "stale TimeoutNow",
                t,
                f"{t} campaigned on a TimeoutNow of an aborted transfer; {lead} (term {term}) "
                f"deposed, {t} at term {s.core(t).term}",
            )


def timeout_now_overtakes_abort(s: Script) -> None:
    """Item 5 (§3.10), the race: the transfer is aborted, and the TimeoutNow sent before the
    abort reaches the target before the abort's NOOP, though after a heartbeat the leader
    sent after the abort.  The leader leads on: a TimeoutNow of a transfer that is over
    must not force an election.  (One that arrives before everything the leader sent after
    the abort is indistinguishable from one of a transfer under way: not scripted here.)"""
    lead = s.elect()
    t = _other(s.ids(), lead)
    timeout_now = s.net.hold(_is(TimeoutNow, lead, t))
    s.core(lead).transfer_leader(t)
    s.until(lambda: len(s.net.held) > 0, 5, "the TimeoutNow")
    s.net.unhold(timeout_now)
    # From here on the leader's entries for t are late (its heartbeats still arrive).
    appends = s.net.hold(_is(AppendEntries, lead, t))
    s.until(lambda: s.core(lead).status().lead_transferee is None,
            4 * s.sim.cfg.election_tick, "the transfer aborting")
    term = s.core(lead).term
    beats: list[Message] = []

    def heartbeat_to_t(m: Message) -> bool:
        if _is(Heartbeat, lead, t)(m):
            beats.append(m)
        return False  # watched, not held

    s.net.hold(heartbeat_to_t)
    s.until(lambda: len(beats) > 0, 2 * s.sim.cfg.heartbeat_tick,
            "a heartbeat sent after the abort")
    s.net.release(s.sim.now, _is(TimeoutNow))  # due with that heartbeat, queued after it
    s.steps(1)
    s.net.unhold(appends)
    s.net.release(s.sim.now)
    s.note(f"transfer aborted; its TimeoutNow reaches {t} after a later heartbeat, before "
           f"the abort's NOOP")
    for _ in range(3 * s.sim.cfg.election_tick):
        s.sim.step()
        if s.leader() != lead or s.core(lead).term != term:
            raise Violation(
                "stale TimeoutNow",
                t,
                f"{t} campaigned on a TimeoutNow of an aborted transfer; {lead} (term {term}) "
                f"deposed, {t} at term {s.core(t).term}",
            )


def stale_pre_vote_grants(s: Script) -> None:
    """Item 5 (§9.6): pre-candidate P's first round is granted, but the grants are delayed;
    meanwhile the cluster moves on and a second round (same term) is refused.  The late
    grants of round one must not make P a candidate."""
    lead = s.elect()
    p = _other(s.ids(), lead, "n3")  # a fast clock: it times out first
    a = "n3"  # a slow clock: it times out last
    if lead == a:
        raise ScenarioError(f"{a}, the slow node, was elected")
    # Round one: p and a stop hearing the leader (a's lease lapses), and a's own
    # campaigns go nowhere; a's grant to p is held back.
    s.net.cut_one_way([lead], [p, a])
    s.net.cut_one_way([a], [p, lead])
    pre_requests: list[Message] = []

    def grant_to_p(m: Message) -> bool:
        if isinstance(m, RequestVote) and m.pre_vote and m.src == p:
            pre_requests.append(m)
        return (isinstance(m, RequestVoteResponse) and m.pre_vote and m.src == a
                and m.dst == p and m.vote_granted)

    s.net.hold(grant_to_p)
    s.until(lambda: len(s.net.held) >= 1, 10 * s.sim.cfg.election_tick, f"{a}'s grant to {p}")
    term = s.core(p).term
    first_round = len(pre_requests)
    s.note(f"{a} granted {p}'s pre-vote for term {term + 1}; the grant is held")
    # Round two: a hears the leader again and gets an entry p does not have.
    s.heal()
    s.net.cut_one_way([lead], [p])
    s.write(lead)
    s.until(lambda: len(pre_requests) > first_round, 4 * s.sim.cfg.election_tick,
            f"{p}'s second round")
    s.steps(3)
    if s.core(p).term != term:
        raise ScenarioError(f"{p} moved to term {s.core(p).term} in its second round")
    s.net.unhold(grant_to_p)
    s.net.release(s.sim.now)
    s.note(f"{p}'s second round was refused; round one's grants arrive now")
    s.steps(5)
    if s.core(p).term != term or s.core(p).role is Role.CANDIDATE:
        raise Violation(
            "stale pre-vote grants",
            p,
            f"became a candidate for term {s.core(p).term} on grants of an earlier "
            f"pre-vote round in term {term}",
        )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "snapshot-two-leaders", 1,
            "chunks of one (index, term) from two leaders, in different bytes",
            replace(QUIET, divergent_snapshots=True, compact_min=5, snapshot_chunk_bytes=16,
                    pre_vote=True, check_quorum=True),
            snapshot_two_leaders,
        ),
        Scenario(
            "stale-lease-read-transfer", 2,
            "a lease read at a leader that transferred its leadership",
            replace(QUIET, lease_read=True, pre_vote=True, check_quorum=True),
            stale_lease_read_transfer,
        ),
        Scenario(
            "stale-lease-read-partition", 2,
            "a lease read at a cut-off leader after a newer leader's write",
            # Five nodes: one of four followers times out early, as any may.
            replace(QUIET, nodes=5, lease_read=True, pre_vote=True, check_quorum=True),
            stale_lease_read_partition,
        ),
        Scenario(
            "stale-lease-read-slow-leader", 2,
            "a lease read at a cut-off leader whose clock runs at half speed",
            replace(QUIET, nodes=5, clock_rates=(0.5, 1.0, 1.0, 1.0, 1.0), lease_read=True,
                    pre_vote=True, check_quorum=True),
            stale_lease_read_slow_leader,
        ),
        Scenario(
            "livelock-prevote-off", 3,
            "pre-vote off, a fast clock on a short log, a slow one on a long log",
            replace(QUIET, clock_rates=(1.0, 0.5, 0.5), pre_vote=False, check_quorum=False),
            livelock_fast_short_log,
        ),
        Scenario(
            "removed-node-deposes-leader", 4,
            "a removed node campaigns; pre-vote and check-quorum off",
            replace(QUIET, nodes=4, pre_vote=False, check_quorum=False),
            removed_node_deposes,
        ),
        Scenario(
            "stale-timeout-now", 5,
            "a TimeoutNow delivered after its transfer was aborted",
            replace(QUIET, pre_vote=True, check_quorum=True),
            stale_timeout_now,
        ),
        Scenario(
            "timeout-now-overtakes-abort", 5,
            "a TimeoutNow sent before the abort, delivered before the abort's NOOP",
            replace(QUIET, pre_vote=True, check_quorum=True),
            timeout_now_overtakes_abort,
        ),
        Scenario(
            "stale-pre-vote-grants", 5,
            "pre-vote grants from an earlier round counted in a later one",
            replace(QUIET, pre_vote=True, check_quorum=False, clock_rates=(1.0, 1.0, 0.5)),
            stale_pre_vote_grants,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    name: str
    outcome: str  # OK, DEFECT or ERROR
    detail: str


def run_scenario(name: str, trace: Callable[[str], None] | None = None) -> ScenarioResult:
    """Run one scenario; its outcome with the violation or setup failure."""
    sc = SCENARIOS[name]
    sim = Simulation(sc.seed, sc.config, trace=trace)
    try:
        sc.script(Script(sim))
        _, violation = sim.check_history()
    except Violation as exc:
        return ScenarioResult(name, DEFECT, f"step {sim.now}: {exc}")
    except ScenarioError as exc:
        return ScenarioResult(name, ERROR, f"step {sim.now}: {exc}")
    if violation is not None:
        return ScenarioResult(name, DEFECT, f"step {sim.now}: {violation}")
    return ScenarioResult(name, OK, f"{sim.now} steps")


def run_scenarios(
    names: Sequence[str] | None, echo: Callable[[str], None], *, trace: bool = False
) -> int:
    """The command line's ``--scenario``: 0 if every scenario passes."""
    failed = 0
    for name in names if names is not None else list(SCENARIOS):
        res = run_scenario(name, echo if trace else None)
        item = SCENARIOS[name].item
        echo(f"scenario {name} (issue item {item}): {res.outcome} {res.detail}")
        if res.outcome != OK:
            failed += 1
            echo(f"  replay: python -m agree.testing.sim --scenario {name} --trace")
    echo(f"scenarios: {len(names) if names is not None else len(SCENARIOS)} failed={failed}")
    return 1 if failed else 0
