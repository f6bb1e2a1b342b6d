"""The Raft algorithm: :class:`RaftNode`, a deterministic, synchronous state machine in the
style of etcd-io/raft's RawNode.  Ticks and messages go in; a :class:`Ready` comes out.

Roles are swapped behaviour: ``_step_role`` and ``_tick_role`` point at the current role's
handlers.  The rules common to every role (terms, votes) live in :meth:`RaftNode.step`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from agree.errors import MembershipChangeError, NotLeaderError, ProposalRejectedError
from agree.raft.config import Config
from agree.raft.entries import (
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    HardState,
    PersistedState,
    Snapshot,
    SnapshotMeta,
)
from agree.raft.log import RaftLog
from agree.raft.membership import apply_change, bootstrap_entries, check_change
from agree.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from agree.raft.progress import NEVER, Progress, ProgressState
from agree.raft.readonly import PendingRead, ReadOnly
from agree.raft.ready import ReadState, Ready, Role, SoftState
from agree.raft.snapshot import SnapshotAssembler, snapshot_checksum
from agree.raft.status import Status

# Messages only a leader sends; receiving one with our term means that sender leads.
_LEADER_MESSAGES = (AppendEntries, Heartbeat, InstallSnapshot)


def _quorum(voters: frozenset[str]) -> int:
    return len(voters) // 2 + 1


class RaftNode:
    """One Raft server.  See the module docstring of :mod:`agree.raft` for the contract."""

    def __init__(
        self,
        config: Config,
        *,
        rng: random.Random,
        persisted: PersistedState = PersistedState(),  # noqa: B008 (frozen value)
        bootstrap: ConfState | None = None,
        applied: int | None = None,
    ) -> None:
        config.validate()
        self._cfg = config
        self._id = config.id
        self._rng = rng
        self._max_msg_bytes = config.max_msg_bytes
        self._max_ready_bytes = config.max_committed_bytes_per_ready
        self._chunk = config.snapshot_chunk_bytes

        self._role = Role.FOLLOWER
        self._leader_id: str | None = None
        self._ticks = 0  # this server's clock: ticks since it started
        # Figure 2's election timer: ticks since it was last reset, which happens only when
        # an election starts, on AppendEntries (or heartbeat, snapshot) from the current
        # leader, and on granting a vote -- never on merely learning a higher term, or a
        # server with a faster clock and a shorter log could hold it back forever.
        # A leader counts its check-quorum periods (§6.2) with it.
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = config.election_tick
        # When a leader of our term was last heard from (§4.2.3).  Kept across term changes:
        # a server keeps its promise not to elect another leader for the minimum election
        # timeout, which a lease (§6.4.1) relies on.  With leases on, a server that starts
        # assumes it heard from a leader just before it stopped.
        self._leader_contact = 0 if config.lease_read else NEVER
        # Numbers this server's (pre-)vote rounds; starts at random so that a round after a
        # restart (same term: pre-votes do not change it) does not reuse an earlier id.
        self._round_id = rng.getrandbits(32)
        self._votes: dict[str, bool] = {}  # the answers to round _round_id
        self._prs: dict[str, Progress] = {}  # leader only, every member including itself
        self._lead_transferee: str | None = None
        self._transfer_elapsed = 0  # ticks since the transfer to _lead_transferee began
        # Follower: the furthest the leader of this term said its log reaches (heartbeats
        # carry it); a TimeoutNow naming an earlier position is of a transfer that is over.
        self._leader_last_index = 0
        self._committed_in_term = False  # leader: an entry of its term is committed (§6.4)
        # Leader: a transfer began in this term; a transfer's election ignores followers'
        # promises (§3.10), so the lease is over until the term ends (§6.4.1).
        self._lease_void = False
        # Lease length in ticks from the start of a round a quorum answered: a follower
        # may vote again once election_tick of its own ticks passed after it heard the
        # round; the first of those may come at once, and its clock may run faster by
        # lease_clock_drift.  A read at leader tick N is safe if N - start + 1 (an upper
        # bound of the leader's time since the round) <= (election_tick - 1) / (1 + drift).
        self._lease_ticks = math.floor(
            (config.election_tick - 1) / (1 + config.lease_clock_drift)
        )
        self._snap_sum: tuple[Snapshot, bytes] | None = None  # leader: checksum cache
        self._readonly = ReadOnly()
        self._step_role: Callable[[Message], None] = self._step_follower
        self._tick_role: Callable[[], None] = self._tick_election
        self._msgs: list[Message] = []
        self._append_due = False  # entries or a commit index to send to every follower
        self._read_states: list[ReadState] = []
        self._snap_in = SnapshotAssembler()  # an incoming snapshot, chunk by chunk
        self._pending_snapshot: Snapshot | None = None  # installed, for the next Ready

        snap = persisted.snapshot
        self._log = RaftLog(snap, persisted.entries)
        hs = persisted.hard_state
        self._term = hs.term  # currentTerm (Figure 2), persisted
        self._vote: str | None = hs.vote  # votedFor in currentTerm, persisted
        # What the last Ready carried (or storage holds), to report only changes.
        self._prev_hs = (hs.term, hs.vote, hs.commit)

        # Configuration (§4.1): the one as of the log's offset, then one per CONF_CHANGE
        # entry in the log, in index order.  The last one is in effect.
        self._conf_base = snap.meta.conf if snap is not None else ConfState()
        self._conf_log: list[tuple[int, ConfState]] = []
        self._conf = self._conf_base
        entries = list(persisted.entries)
        has_conf_entry = any(e.type is EntryType.CONF_CHANGE for e in entries)
        if snap is None and not has_conf_entry and bootstrap is not None:
            if self._log.last_index == 0:
                entries = bootstrap_entries(bootstrap)
                for entry in entries:
                    self._log.append(entry)
                self._term = max(self._term, 1)
                hs = HardState(self._term, self._vote, len(entries))
            else:
                self._conf_base = self._conf = bootstrap
        for entry in entries:
            if entry.type is EntryType.CONF_CHANGE and entry.index > self._log.offset:
                self._note_conf_entry(entry)

        # Invariant: offset <= applied <= applying <= commit <= last_index.
        offset = self._log.offset
        self._commit = max(offset, min(hs.commit, self._log.last_index))
        start = offset if applied is None else max(offset, min(applied, self._commit))
        self._applied = start  # the host's state machine reflects entries up to here
        self._applying = start  # entries up to here were handed out in committed_entries

        self._restart_election_timer()
        self._become_follower(self._term, None)
        self._prev_soft: tuple[str | None, Role] = (None, Role.FOLLOWER)

    # ------------------------------------------------------------------ properties

    @property
    def id(self) -> str:
        return self._id

    @property
    def role(self) -> Role:
        return self._role

    @property
    def leader_id(self) -> str | None:
        return self._leader_id

    @property
    def term(self) -> int:
        return self._term

    @property
    def commit_index(self) -> int:
        return self._commit

    @property
    def applied_index(self) -> int:
        return self._applied

    @property
    def snapshot_index(self) -> int:
        """The index of the last snapshot (the log starts after it); 0 if none."""
        return self._log.offset

    @property
    def last_index(self) -> int:
        return self._log.last_index

    @property
    def conf(self) -> ConfState:
        return self._conf

    def status(self) -> Status:
        progress: dict[str, tuple[int, int]] = {}
        if self._role is Role.LEADER:
            progress = {peer: (pr.match, pr.next) for peer, pr in self._prs.items()}
        return Status(
            id=self._id,
            term=self._term,
            vote=self._vote,
            commit=self._commit,
            applied=self._applied,
            last_index=self._log.last_index,
            role=self._role,
            leader_id=self._leader_id,
            conf=self._conf,
            progress=progress,
            lead_transferee=self._lead_transferee,
        )

    # ------------------------------------------------------------------ the two rules
    # Kept small and separate so that a test can replace one with a broken version.

    def _commit_term_ok(self, index: int) -> bool:
        """§5.4.2 / Figure 8: a leader commits by counting replicas only an entry of its own
        term; earlier entries are committed indirectly, with it."""
        return self._log.term_at(index) == self._term

    def _log_up_to_date(self, last_log_index: int, last_log_term: int) -> bool:
        """§5.4.1: grant a vote only to a candidate whose log is at least as up-to-date."""
        my_term = self._log.last_term
        return last_log_term > my_term or (
            last_log_term == my_term and last_log_index >= self._log.last_index
        )

    # ------------------------------------------------------------------ configuration

    def _note_conf_entry(self, entry: Entry) -> None:
        self._conf = apply_change(self._conf, ConfChange.decode(entry.data))
        self._conf_log.append((entry.index, self._conf))

    def _note_conf_entries(self, entries: list[Entry]) -> None:
        """A configuration takes effect as soon as its entry is in the log (§4.1)."""
        changed = False
        for entry in entries:
            if entry.type is EntryType.CONF_CHANGE:
                self._note_conf_entry(entry)
                changed = True
        if changed:
            self._conf_changed()

    def _truncated_from(self, index: int) -> None:
        """Entries from ``index`` on were removed: their configurations revert."""
        conf_log = self._conf_log
        if conf_log and conf_log[-1][0] >= index:
            while conf_log and conf_log[-1][0] >= index:
                conf_log.pop()
            self._conf = conf_log[-1][1] if conf_log else self._conf_base
            self._conf_changed()

    def _new_progress(self, next_index: int) -> Progress:
        cfg = self._cfg
        return Progress(
            next_index,
            cfg.max_inflight_msgs,
            heard=self._ticks,
            max_inflight_bytes=cfg.max_inflight_bytes,
        )

    def _conf_changed(self) -> None:
        conf = self._conf
        if self._role is Role.LEADER:
            last = self._log.last_index
            for member in sorted(conf.voters | conf.learners):  # sorted: deterministic
                if member not in self._prs:
                    self._prs[member] = self._new_progress(last + 1)
            for member in [m for m in self._prs if m not in conf.voters and m not in conf.learners]:
                if member != self._id:
                    del self._prs[member]
            if self._lead_transferee is not None and self._lead_transferee not in conf.voters:
                self._lead_transferee = None
        elif self._role in (Role.PRE_CANDIDATE, Role.CANDIDATE):
            if not self._promotable():
                self._become_follower(self._term, None)
        else:
            self._role = Role.LEARNER if self._id in conf.learners else Role.FOLLOWER

    def _conf_at(self, index: int) -> ConfState:
        conf = self._conf_base
        for i, c in self._conf_log:
            if i > index:
                break
            conf = c
        return conf

    def _pending_conf_index(self) -> int:
        return self._conf_log[-1][0] if self._conf_log else 0

    # ------------------------------------------------------------------ role changes

    def _reset(self, term: int) -> None:
        """Leave the current role.  The election timer is not touched: see _election_elapsed."""
        if term != self._term:
            self._term = term
            self._vote = None
            self._leader_last_index = 0  # another term, another leader's log
        self._leader_id = None
        self._heartbeat_elapsed = 0
        self._votes = {}
        self._lead_transferee = None
        self._readonly.reset()

    def _restart_election_timer(self) -> None:
        self._election_elapsed = 0
        # Randomized in [election_tick, 2 * election_tick) so that split votes are rare (§5.2).
        e = self._cfg.election_tick
        self._randomized_timeout = e + self._rng.randrange(e)

    def _become_follower(self, term: int, leader: str | None) -> None:
        if self._role is Role.LEADER:
            self._prs = {}
            self._restart_election_timer()  # a follower's timer, not the leader's periods
        self._reset(term)
        self._leader_id = leader
        self._role = Role.LEARNER if self._id in self._conf.learners else Role.FOLLOWER
        self._step_role = self._step_follower
        self._tick_role = self._tick_election

    def _become_pre_candidate(self) -> None:
        # Pre-vote (§9.6): no change of term or vote, so a partitioned server that keeps
        # timing out cannot inflate its term and disrupt the cluster when it returns.
        self._reset(self._term)
        self._restart_election_timer()
        self._round_id += 1
        self._role = Role.PRE_CANDIDATE
        self._step_role = self._step_candidate
        self._tick_role = self._tick_election

    def _become_candidate(self) -> None:
        self._reset(self._term + 1)
        self._restart_election_timer()
        self._round_id += 1
        self._vote = self._id
        self._role = Role.CANDIDATE
        self._step_role = self._step_candidate
        self._tick_role = self._tick_election

    def _become_leader(self) -> None:
        self._reset(self._term)
        self._election_elapsed = 0  # the first check-quorum period starts now
        self._leader_id = self._id
        self._role = Role.LEADER
        self._step_role = self._step_leader
        self._tick_role = self._tick_heartbeat
        self._committed_in_term = False
        self._lease_void = False
        log = self._log
        last = log.last_index
        # Sorted: iteration order decides message order, which must not depend on hashing.
        self._prs = {m: self._new_progress(last + 1) for m in sorted(self._conf.members())}
        me = self._prs.setdefault(self._id, self._new_progress(last + 1))
        # The leader counts itself toward a commit with what it has persisted (§10.2.1):
        # everything handed out in a Ready, which the host carried out before this step.
        me.maybe_update(log.stable)
        # A NOOP of the new term lets earlier entries commit with it (§5.4.2, §8).
        self._append(EntryType.NOOP, b"")
        self._broadcast_append()
        if self._maybe_commit():
            self._after_commit()

    def _promotable(self) -> bool:
        """Whether this server may campaign: it is a voter, or it was one until a change
        that is not yet committed removed it -- it may still be needed to commit that
        change (dissertation §4.2.2); it never counts its own vote then."""
        if self._id in self._conf.voters:
            return True
        pending = self._pending_conf_index()
        return pending > self._commit and self._id in self._conf_at(pending - 1).voters

    # ------------------------------------------------------------------ elections

    def _campaign(self, *, transfer: bool = False) -> None:
        if not self._cfg.pre_vote or transfer:
            self._real_campaign(transfer)
            return
        self._become_pre_candidate()
        if self._poll(self._id, True) == 1:  # a single voter wins at once
            self._real_campaign(False)
            return
        self._send_vote_requests(self._term + 1, pre_vote=True, transfer=False)

    def _real_campaign(self, transfer: bool) -> None:
        self._become_candidate()
        if self._poll(self._id, True) == 1:
            self._become_leader()
            return
        self._send_vote_requests(self._term, pre_vote=False, transfer=transfer)

    def _send_vote_requests(self, term: int, *, pre_vote: bool, transfer: bool) -> None:
        last_index, last_term = self._log.last_index, self._log.last_term
        for voter in sorted(self._conf.voters):
            if voter != self._id:
                self._msgs.append(
                    RequestVote(
                        src=self._id,
                        dst=voter,
                        term=term,
                        last_log_index=last_index,
                        last_log_term=last_term,
                        pre_vote=pre_vote,
                        transfer=transfer,
                        round_id=self._round_id,
                    )
                )

    def _poll(self, voter: str, granted: bool) -> int:
        """Record a (pre-)vote; 1: won, -1: lost, 0: undecided.  Only voters count."""
        voters = self._conf.voters
        if voter in voters:
            self._votes.setdefault(voter, granted)
        q = _quorum(voters)
        yes = sum(1 for g in self._votes.values() if g)
        if yes >= q:
            return 1
        if len(self._votes) - yes >= len(voters) - q + 1:
            return -1
        return 0

    def _leader_is_current(self) -> bool:
        """Leader stickiness (§4.2.3): a follower heard from a leader within the minimum
        election timeout; a leader heard from a quorum within it (its election counts).
        Independent of check-quorum: without it, a removed or partitioned server that
        keeps campaigning would depose a healthy leader."""
        e = self._cfg.election_tick
        if self._role is Role.LEADER:
            return self._ticks - self._quorum_tick(lambda pr: pr.heard) < e
        return self._ticks - self._leader_contact < e

    def _quorum_tick(self, tick_of: Callable[[Progress], int]) -> int:
        """Leader: the latest clock reading that a quorum of voters reached, where each
        voter's is ``tick_of`` its progress and the leader's own is now."""
        voters = self._conf.voters
        ticks = sorted(
            (
                self._ticks if v == self._id else tick_of(pr)
                for v, pr in self._prs.items()
                if v in voters
            ),
            reverse=True,
        )
        q = _quorum(voters)
        return ticks[q - 1] if len(ticks) >= q else NEVER

    def _handle_vote_request(self, m: RequestVote) -> None:
        # A transfer's election skips stickiness (§3.10); the leader that sent TimeoutNow
        # gave up its lease when the transfer began.
        sticky = not m.transfer and self._leader_is_current()
        if m.pre_vote:
            # Grant without changing any state: the candidate's would-be term is higher and
            # its log at least as up-to-date (§9.6).
            grant = (
                not sticky
                and m.term > self._term
                and self._log_up_to_date(m.last_log_index, m.last_log_term)
            )
            term = m.term if grant else self._term
        else:
            can_vote = self._vote == m.src or (
                self._vote is None and self._leader_id is None and not sticky
            )
            grant = can_vote and self._log_up_to_date(m.last_log_index, m.last_log_term)
            if grant:
                self._vote = m.src  # persisted through the next Ready, before the reply is sent
                self._election_elapsed = 0  # Figure 2: granting a vote resets the timer
            term = self._term
        self._msgs.append(
            RequestVoteResponse(
                src=self._id, dst=m.src, term=term, vote_granted=grant, pre_vote=m.pre_vote,
                round_id=m.round_id,
            )
        )

    # ------------------------------------------------------------------ ticks

    def tick(self) -> None:
        """One unit of logical time."""
        self._ticks += 1
        self._tick_role()

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if self._election_elapsed >= self._randomized_timeout:
            if self._promotable():
                self._campaign()
            else:
                # Learners and non-members never campaign; forget a silent leader so the
                # host stops forwarding to it.
                self._restart_election_timer()
                if self._leader_id is not None and self._role is not Role.LEADER:
                    self._leader_id = None

    def _tick_heartbeat(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self._cfg.election_tick:
            self._election_elapsed = 0
            if self._cfg.check_quorum and not self._quorum_active():
                # §6.2: a leader that has not heard from a quorum for an election timeout
                # steps down, so that clients find the real leader and reads stay safe.
                self._become_follower(self._term, None)
                return
        if self._lead_transferee is not None:
            self._transfer_elapsed += 1
            if self._transfer_elapsed >= self._cfg.election_tick:
                self._abort_transfer()  # §3.10: abort a transfer that did not finish
        if self._heartbeat_elapsed >= self._cfg.heartbeat_tick:
            self._heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _quorum_active(self) -> bool:
        voters = self._conf.voters
        active = 0
        for peer, pr in self._prs.items():
            if peer == self._id:
                active += peer in voters
                continue
            if pr.recent_active and peer in voters:
                active += 1
            pr.recent_active = False
        return active >= _quorum(voters)

    # ------------------------------------------------------------------ messages in

    def step(self, msg: Message) -> None:
        """Process a message from a peer (already authenticated by the host)."""
        term = msg.term
        if term > self._term:
            if isinstance(msg, RequestVote):
                if not msg.transfer and self._leader_is_current():
                    return  # stickiness: ignore, do not even adopt the term (§4.2.3)
                if msg.pre_vote:
                    self._handle_vote_request(msg)
                    return
                self._become_follower(term, None)
            elif isinstance(msg, RequestVoteResponse) and msg.pre_vote and msg.vote_granted:
                pass  # the granted pre-vote carries the term we would campaign in
            else:
                leader = msg.src if isinstance(msg, _LEADER_MESSAGES) else None
                self._become_follower(term, leader)
        elif term < self._term:
            if isinstance(msg, _LEADER_MESSAGES):
                # A stale leader: tell it our term so that it steps down.  Without this, a
                # server whose term was raised while it could not be reached would wait
                # for the old leader forever (pre-vote and check-quorum rely on it).
                self._msgs.append(
                    AppendEntriesResponse(src=self._id, dst=msg.src, term=self._term,
                                          success=False)
                )
            elif isinstance(msg, RequestVote) and msg.pre_vote:
                self._msgs.append(
                    RequestVoteResponse(src=self._id, dst=msg.src, term=self._term,
                                        vote_granted=False, pre_vote=True,
                                        round_id=msg.round_id)
                )
            return
        if isinstance(msg, RequestVote):
            self._handle_vote_request(msg)
            return
        self._step_role(msg)

    def _step_follower(self, m: Message) -> None:
        t = type(m)
        if t is AppendEntries or t is Heartbeat or t is InstallSnapshot:
            self._leader_id = m.src
            self._election_elapsed = 0  # Figure 2: the current leader resets the timer
            self._leader_contact = self._ticks
            if t is AppendEntries:
                self._handle_append(m)  # type: ignore[arg-type]
            elif t is Heartbeat:
                self._handle_heartbeat(m)  # type: ignore[arg-type]
            else:
                self._handle_snapshot(m)  # type: ignore[arg-type]
        elif t is TimeoutNow:
            assert isinstance(m, TimeoutNow)
            if self._promotable() and self._transfer_is_current(m):
                self._campaign(transfer=True)  # §3.10: skip pre-vote and stickiness
        elif t is ReadIndexResponse:
            assert isinstance(m, ReadIndexResponse)
            if m.success:
                self._read_states.append(ReadState(m.context, m.index))

    def _step_candidate(self, m: Message) -> None:
        t = type(m)
        if t is AppendEntries or t is Heartbeat or t is InstallSnapshot:
            self._become_follower(self._term, m.src)  # someone won this term
            self._step_follower(m)
        elif t is RequestVoteResponse:
            assert isinstance(m, RequestVoteResponse)
            pre = self._role is Role.PRE_CANDIDATE
            if m.pre_vote != pre or m.round_id != self._round_id:
                return  # an answer to an earlier round: votes count in their round only
            if pre and m.vote_granted and m.term != self._term + 1:
                return  # an answer to an older pre-vote round
            result = self._poll(m.src, m.vote_granted)
            if result == 1:
                if pre:
                    self._real_campaign(False)
                else:
                    self._become_leader()
            elif result == -1:
                self._become_follower(self._term, None)

    def _step_leader(self, m: Message) -> None:
        pr = self._prs.get(m.src)
        if pr is not None:
            pr.recent_active = True
            pr.heard = self._ticks
        t = type(m)
        if t is AppendEntriesResponse:
            self._handle_append_response(m)  # type: ignore[arg-type]
        elif t is HeartbeatResponse:
            self._handle_heartbeat_response(m)  # type: ignore[arg-type]
        elif t is InstallSnapshotResponse:
            self._handle_snapshot_response(m)  # type: ignore[arg-type]
        elif t is ReadIndexRequest:
            assert isinstance(m, ReadIndexRequest)
            if m.src in self._prs:
                self._leader_read(m.context, m.src)

    # ------------------------------------------------------------------ follower side

    def _commit_to(self, index: int) -> None:
        if index > self._commit:
            self._commit = index

    def _handle_append(self, m: AppendEntries) -> None:
        log = self._log
        prev, prev_term, entries = m.prev_log_index, m.prev_log_term, m.entries
        commit = self._commit
        if prev < commit:
            # Entries up to our commit index are known to match; skip them.
            skip = commit - prev
            if len(entries) <= skip:
                self._ack(m.src, commit)
                return
            entries = entries[skip:]
            prev = commit
            prev_term = log.term_at(commit)  # type: ignore[assignment]
        if log.term_at(prev) == prev_term:
            last_new = prev + len(entries)
            if entries:
                # Idempotent: only from the first conflicting entry on does the log change
                # (§5.3), so a delayed duplicate never truncates what a later one appended.
                conflict = log.find_conflict(entries)
                if conflict:
                    if conflict <= self._commit:
                        raise AssertionError(
                            f"{self._id}: entry {conflict} conflicts with the committed log"
                        )
                    new = entries[conflict - prev - 1 :]
                    truncating = conflict <= log.last_index
                    log.truncate_and_append(new)
                    if truncating:
                        self._truncated_from(conflict)
                    self._note_conf_entries(list(new))
            self._commit_to(min(m.leader_commit, last_new))
            self._ack(m.src, last_new)
            return
        hint_index, hint_term = log.find_conflict_by_term(min(prev, log.last_index), prev_term)
        self._msgs.append(
            AppendEntriesResponse(
                src=self._id,
                dst=m.src,
                term=self._term,
                success=False,
                reject_index=m.prev_log_index,
                reject_hint_index=hint_index,
                reject_hint_term=hint_term,
            )
        )

    def _ack(self, leader: str, match: int) -> None:
        self._msgs.append(
            AppendEntriesResponse(
                src=self._id, dst=leader, term=self._term, success=True, match_index=match
            )
        )

    def _handle_heartbeat(self, m: Heartbeat) -> None:
        # The leader sends min(its commit, our match), so this never commits past our
        # matching prefix.
        self._commit_to(min(m.leader_commit, self._log.last_index))
        if m.last_log_index > self._leader_last_index:  # max: heartbeats may be reordered
            self._leader_last_index = m.last_log_index
        self._msgs.append(
            HeartbeatResponse(src=self._id, dst=m.src, term=self._term, context=m.context,
                              tick=m.tick)
        )

    def _transfer_is_current(self, m: TimeoutNow) -> bool:
        """A TimeoutNow is for a transfer still under way only if the leader's log still
        ends where it did when the leader sent it: the leader appends nothing during a
        transfer and a NOOP whenever it ends one and leads on (§3.10).  We see the leader's
        log move in our own (the NOOP reached us) or in any heartbeat sent after the NOOP,
        whichever comes first: a late NOOP must not leave the transfer open while the
        heartbeats keep coming.  Within a term the leader is one server whose log only
        grows, so this needs no clock, and reordered or duplicated messages change nothing.

        What no rule here can catch: a TimeoutNow that arrives before everything the leader
        sent after ending its transfer (a link that delays all of it) looks exactly like
        one of a transfer under way.  Its target holds one election nobody needed; safety
        never rests on stickiness, so the cost is that election and nothing more."""
        log = self._log
        return (
            log.last_index == m.last_log_index
            and log.last_term == m.last_log_term
            and self._leader_last_index <= m.last_log_index
        )

    @property
    def snapshot_receiving(self) -> tuple[int, int] | None:
        """A snapshot being received from the leader: (its index, bytes received so far)."""
        return self._snap_in.receiving

    def _handle_snapshot(self, m: InstallSnapshot) -> None:
        """§7, Figure 13: see :mod:`agree.raft.snapshot`."""
        index = m.last_included_index

        def answer(next_offset: int, done: bool = False, match: int = 0) -> None:
            self._msgs.append(
                InstallSnapshotResponse(
                    src=self._id,
                    dst=m.src,
                    term=self._term,
                    last_included_index=index,
                    next_offset=next_offset,
                    done=done,
                    match_index=match,
                )
            )

        if index <= self._commit:
            # Older than what we committed: acknowledge, never install (it would move the
            # state machine backwards).
            self._snap_in.reset()
            answer(0, done=True, match=self._commit)
            return
        next_offset, data = self._snap_in.offer(m)
        if data is None:
            answer(next_offset)
            return
        self._install(m, data)
        answer(next_offset, done=True, match=self._commit)

    def _install(self, m: InstallSnapshot, data: bytes) -> None:
        index, term = m.last_included_index, m.last_included_term
        log = self._log
        if log.term_at(index) == term:
            # We already hold that entry: the log after it is still good (§7); the snapshot
            # only tells us it is committed.
            self._commit_to(index)
            return
        snapshot = Snapshot(SnapshotMeta(index=index, term=term, conf=m.conf), data)
        log.restore(snapshot)
        self._pending_snapshot = snapshot
        self._commit = index
        self._conf_base = self._conf = m.conf
        self._conf_log = []
        self._conf_changed()

    # ------------------------------------------------------------------ leader side

    def _append(self, type_: EntryType, data: bytes) -> int:
        if self._lead_transferee is not None:
            # A TimeoutNow names the leader's last entry; its target tells a current one
            # from one of an ended transfer only because nothing is appended meanwhile.
            raise AssertionError(f"{self._id}: an entry appended during a transfer")
        log = self._log
        index = log.last_index + 1
        entry = Entry(self._term, index, type_, data)  # positional: one per proposal
        log.append(entry)
        # The leader's own match moves only once the entry is durable: see advance().
        if type_ is EntryType.CONF_CHANGE:
            self._note_conf_entries([entry])
        return index

    def _broadcast_append(self) -> None:
        for peer, pr in self._prs.items():
            if peer != self._id:
                self._send_append(peer, pr, True)

    def _send_append(self, to: str, pr: Progress, allow_empty: bool) -> bool:
        if pr.is_paused():
            return False
        log = self._log
        prev = pr.next - 1
        prev_term = log.term_at(prev)
        if prev_term is None:
            if prev < log.offset:
                return self._start_snapshot(to, pr)
            pr.next = log.last_index + 1  # defensive: next beyond the end
            prev = log.last_index
            prev_term = log.last_term
        if pr.next <= log.last_index:
            entries, size = log.sized_batch(pr.next, self._max_msg_bytes)
        else:
            entries, size = [], 0
        if not entries and not allow_empty:
            return False
        self._msgs.append(
            AppendEntries(
                src=self._id,
                dst=to,
                term=self._term,
                prev_log_index=prev,
                prev_log_term=prev_term,
                entries=tuple(entries),
                leader_commit=self._commit,
            )
        )
        if pr.state is ProgressState.REPLICATE:
            if entries:
                last = entries[-1].index
                pr.next = last + 1  # optimistic: pipeline the next batch right away
                pr.inflights.add(last, size)
        else:
            pr.paused = True  # probe: one at a time until the follower answers
        return True

    def _start_snapshot(self, to: str, pr: Progress) -> bool:
        snapshot = self._log.snapshot
        if snapshot is None:
            return False
        cached = self._snap_sum
        if cached is None or cached[0] is not snapshot:  # once per snapshot, not per follower
            cached = self._snap_sum = (snapshot, snapshot_checksum(snapshot.data))
        pr.become_snapshot(snapshot, cached[1])
        self._send_snapshot_chunk(to, pr)
        return True

    def _send_snapshot_chunk(self, to: str, pr: Progress) -> None:
        snapshot, view = pr.snapshot, pr.snap_view
        assert snapshot is not None and view is not None
        offset = pr.snap_offset
        end = offset + self._chunk
        meta = snapshot.meta
        self._msgs.append(
            InstallSnapshot(
                src=self._id,
                dst=to,
                term=self._term,
                last_included_index=meta.index,
                last_included_term=meta.term,
                conf=meta.conf,
                checksum=pr.snap_checksum,
                offset=offset,
                data=bytes(view[offset:end]),  # copies one chunk, never the whole snapshot
                done=end >= len(view),
            )
        )

    def _broadcast_heartbeat(self) -> None:
        context = self._readonly.round_context
        commit, now, last = self._commit, self._ticks, self._log.last_index
        for peer, pr in self._prs.items():
            if peer != self._id:
                self._msgs.append(
                    Heartbeat(
                        src=self._id,
                        dst=peer,
                        term=self._term,
                        leader_commit=min(pr.match, commit),
                        context=context,
                        tick=now,
                        last_log_index=last,
                    )
                )

    def _maybe_commit(self) -> bool:
        voters = self._conf.voters
        prs = self._prs
        matches = sorted((prs[v].match for v in voters if v in prs), reverse=True)
        q = _quorum(voters)
        if len(matches) < q:
            return False
        index = matches[q - 1]
        if index <= self._commit or not self._commit_term_ok(index):
            return False
        self._commit = index
        if not self._committed_in_term and self._log.term_at(index) == self._term:
            self._committed_in_term = True
            self._readonly.undefer(index)
            self._confirm_reads()
        return True

    def _after_commit(self) -> None:
        """Tell followers the new commit index; step down if this commit removed us."""
        self._append_due = True
        if self._id not in self._conf.voters and self._pending_conf_index() <= self._commit:
            # §4.2.2: a leader removed from the configuration steps down once that
            # configuration is committed; until then it led without counting itself.
            # Tell the others the commit first: they must learn that C_new is committed.
            self._flush_appends()
            self._become_follower(self._term, None)

    def _handle_append_response(self, m: AppendEntriesResponse) -> None:
        pr = self._prs.get(m.src)
        if pr is None:
            return
        if not m.success:
            hint = m.reject_hint_index
            if m.reject_hint_term > 0:
                hint, _ = self._log.find_conflict_by_term(hint, m.reject_hint_term)
            if pr.maybe_decr_to(m.reject_index, hint):
                if pr.state is ProgressState.REPLICATE:
                    pr.become_probe()
                self._send_append(m.src, pr, True)
            return
        was_paused = pr.is_paused()
        if not pr.maybe_update(m.match_index):
            return
        if pr.state is ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state is ProgressState.SNAPSHOT:
            if pr.match >= pr.pending_snapshot:
                pr.become_probe()
                pr.become_replicate()
        else:
            pr.inflights.free_le(pr.match)
        if self._maybe_commit():
            self._after_commit()
            if self._role is not Role.LEADER:
                return
        elif was_paused:
            self._send_append(m.src, pr, True)
        while self._send_append(m.src, pr, False):
            pass
        if m.src == self._lead_transferee and pr.match == self._log.last_index:
            self._send_timeout_now(m.src)

    def _handle_heartbeat_response(self, m: HeartbeatResponse) -> None:
        pr = self._prs.get(m.src)
        if pr is None:
            return
        pr.paused = False
        if m.tick > pr.lease_tick:
            pr.lease_tick = m.tick  # it heard from us at or after this round began
        if pr.state is ProgressState.SNAPSHOT:
            self._send_snapshot_chunk(m.src, pr)  # resume after a lost chunk
        else:
            if pr.state is ProgressState.REPLICATE and pr.inflights.full():
                pr.inflights.free_first()  # a lost append must not stall the pipeline
            if pr.match < self._log.last_index:
                self._send_append(m.src, pr, True)
        if m.context and m.src in self._conf.voters:
            confirmed = self._readonly.ack(m.context, m.src, _quorum(self._conf.voters))
            if confirmed:
                self._release_reads(confirmed)
                self._confirm_reads()

    def _handle_snapshot_response(self, m: InstallSnapshotResponse) -> None:
        pr = self._prs.get(m.src)
        if pr is None:
            return
        if m.done:
            if pr.state is ProgressState.SNAPSHOT and (
                m.last_included_index == pr.pending_snapshot or m.match_index >= pr.pending_snapshot
            ):
                pr.become_probe()
            if pr.maybe_update(m.match_index) and pr.state is ProgressState.PROBE:
                pr.become_replicate()
            if self._maybe_commit():
                self._after_commit()
                if self._role is not Role.LEADER:
                    return
            while self._send_append(m.src, pr, False):
                pass
            return
        if pr.state is not ProgressState.SNAPSHOT or m.last_included_index != pr.pending_snapshot:
            return
        if m.next_offset > pr.snap_offset:
            pr.snap_offset = m.next_offset
            self._send_snapshot_chunk(m.src, pr)
        elif m.next_offset < pr.snap_offset:
            # The follower lost its buffer (restart) or this answer is stale; resume from
            # what it says at the next heartbeat, so stale answers cannot cause a storm.
            pr.snap_offset = m.next_offset

    # ------------------------------------------------------------------ reads (§6.4)

    def _leader_read(self, context: bytes, origin: str) -> None:
        if not self._committed_in_term:
            # The leader's commit index may be stale until it commits in its term.
            self._readonly.defer(context, origin)
            return
        if self._cfg.lease_read and self._lease_valid():
            self._release_reads([PendingRead(context, origin, self._commit)])
            return
        self._readonly.add(context, origin, self._commit)
        self._confirm_reads()

    def _lease_valid(self) -> bool:
        """§6.4.1: no other leader can exist while a quorum's promise not to vote lasts.
        Each voter promised it when it heard a heartbeat round (§4.2.3 stickiness holds
        for an election timeout of its clock), so the lease runs from the START of the
        latest round a quorum answered, for _lease_ticks; it ends when a transfer begins,
        whose election ignores those promises."""
        if self._lease_void:
            return False
        return self._ticks - self._quorum_tick(lambda pr: pr.lease_tick) < self._lease_ticks

    def _confirm_reads(self) -> None:
        """Start a heartbeat round for waiting reads, if none is outstanding."""
        ro = self._readonly
        while ro.start_round():
            voters = self._conf.voters
            confirmed: list[PendingRead] = []
            if self._id in voters:
                confirmed = ro.ack(ro.round_context, self._id, _quorum(voters))
            if confirmed:
                self._release_reads(confirmed)  # a single voter needs no round trip
                continue
            self._broadcast_heartbeat()
            return

    def _release_reads(self, reads: list[PendingRead]) -> None:
        for r in reads:
            if r.origin == self._id:
                self._read_states.append(ReadState(r.context, r.index))
            else:
                self._msgs.append(
                    ReadIndexResponse(
                        src=self._id, dst=r.origin, term=self._term, context=r.context,
                        index=r.index,
                    )
                )

    def read_index(self, context: bytes) -> None:
        """Request a linearizable read (§6.4); see :mod:`agree.raft` for the contract."""
        if self._role is Role.LEADER:
            self._leader_read(context, self._id)
            return
        if self._leader_id is None:
            raise NotLeaderError("no leader is known", leader_id=None)
        self._msgs.append(
            ReadIndexRequest(src=self._id, dst=self._leader_id, term=self._term, context=context)
        )

    # ------------------------------------------------------------------ proposals

    def _check_leader(self) -> None:
        if self._role is not Role.LEADER:
            raise NotLeaderError(leader_id=self._leader_id)
        if self._lead_transferee is not None:
            raise ProposalRejectedError(
                f"leadership is being transferred to {self._lead_transferee!r}"
            )

    def propose(self, data: bytes) -> int:
        """Append a NORMAL entry (leader only); returns its index."""
        self._check_leader()
        index = self._append(EntryType.NORMAL, data)
        # Sent once per Ready (see _flush_appends): a burst of proposals becomes one
        # AppendEntries per peer instead of one per proposal.
        self._append_due = True
        if self._maybe_commit():
            self._after_commit()
        return index

    def propose_conf_change(self, change: ConfChange) -> int:
        """Append a single-server membership change (leader only); returns its index."""
        self._check_leader()
        if self._pending_conf_index() > self._commit:
            raise MembershipChangeError("another membership change is not yet committed")
        if not self._committed_in_term:
            # Dissertation §4.1 (the 2015 fix): changes from different leaders could
            # otherwise overlap without a common quorum.
            raise MembershipChangeError(
                "the leader has not yet committed an entry of its term; retry shortly"
            )
        check_change(self._conf, change)
        index = self._append(EntryType.CONF_CHANGE, change.encode())
        if self._role is Role.LEADER:
            self._broadcast_append()
            if self._maybe_commit():
                self._after_commit()
        return index

    def transfer_leader(self, target: str) -> None:
        """Hand leadership to ``target`` (dissertation §3.10)."""
        if self._role is not Role.LEADER:
            raise NotLeaderError(leader_id=self._leader_id)
        if target == self._id:
            self._abort_transfer()
            return
        if target not in self._conf.voters:
            raise ProposalRejectedError(f"{target!r} is not a voter; cannot transfer to it")
        if self._lead_transferee == target:
            return
        self._abort_transfer()
        self._lead_transferee = target
        self._transfer_elapsed = 0  # the transfer is aborted after an election timeout
        self._lease_void = True  # the target's election will ignore followers' promises
        pr = self._prs[target]
        if pr.match == self._log.last_index:
            self._send_timeout_now(target)
        else:
            self._send_append(target, pr, True)

    def _send_timeout_now(self, to: str) -> None:
        log = self._log
        self._msgs.append(
            TimeoutNow(src=self._id, dst=to, term=self._term, last_log_index=log.last_index,
                       last_log_term=log.last_term)
        )

    def _abort_transfer(self) -> None:
        """End a transfer that did not finish.  The NOOP moves the log past the position
        any TimeoutNow already sent names, so the target ignores one that arrives after the
        NOOP, or after a heartbeat that reports it (see _transfer_is_current)."""
        if self._lead_transferee is None:
            return
        self._lead_transferee = None
        self._append(EntryType.NOOP, b"")
        self._append_due = True

    # ------------------------------------------------------------------ snapshots

    def compact(self, index: int, data: bytes) -> Snapshot:
        """Keep a snapshot of the host's state machine at ``index`` (<= applied_index) and
        forget the log up to it; the host stores the returned Snapshot."""
        log = self._log
        if index > self._applied:
            raise ValueError(f"cannot compact at {index}: only {self._applied} is applied")
        if index <= log.offset:
            raise ValueError(f"cannot compact at {index}: the log already starts after "
                             f"{log.offset}")
        term = log.term_at(index)
        assert term is not None
        conf = self._conf_at(index)
        snapshot = Snapshot(SnapshotMeta(index=index, term=term, conf=conf), data)
        log.compact(snapshot)
        self._conf_base = conf
        self._conf_log = [(i, c) for i, c in self._conf_log if i > index]
        return snapshot

    # ------------------------------------------------------------------ Ready

    def _flush_appends(self) -> None:
        if self._append_due:
            self._append_due = False
            if self._role is Role.LEADER:
                self._broadcast_append()

    def has_ready(self) -> bool:
        # Called after every input by most hosts: cheapest checks first, no allocation.
        if self._append_due or self._msgs or self._read_states:
            return True
        if self._pending_snapshot is not None:
            return True
        log = self._log
        if log.stable != log.last_index or self._commit != self._applying:
            return True
        term, vote, commit = self._prev_hs
        if term != self._term or vote != self._vote or commit != self._commit:
            return True
        leader_id, role = self._prev_soft
        return leader_id != self._leader_id or role is not self._role

    def ready(self) -> Ready:
        """The work for the host.  It is handed over now: the next Ready carries only what
        happens after this call, so a host must carry out Readys in the order it got them."""
        self._flush_appends()
        log = self._log
        hs_now = (self._term, self._vote, self._commit)
        hard_state = HardState(*hs_now) if hs_now != self._prev_hs else None
        # Term and vote are what Figure 2 requires durable before answering; commit is not.
        term_or_vote_moved = hs_now[:2] != self._prev_hs[:2]
        # A leader in a term already durable promises nothing with its messages that this
        # Ready persists: they may go out while its entries are written (§10.2.1).
        send_first = self._role is Role.LEADER and not term_or_vote_moved
        self._prev_hs = hs_now
        soft_now = (self._leader_id, self._role)
        soft_state = SoftState(*soft_now) if soft_now != self._prev_soft else None
        self._prev_soft = soft_now
        snapshot = self._pending_snapshot
        self._pending_snapshot = None
        if snapshot is not None:
            self._applying = max(self._applying, snapshot.meta.index)
        entries = log.unstable() if log.stable < log.last_index else ()
        log.stable = log.last_index
        committed: tuple[Entry, ...] = ()
        if self._commit > self._applying:
            committed = tuple(log.batch(self._applying + 1, self._max_ready_bytes, self._commit))
            self._applying = committed[-1].index
        messages = tuple(self._msgs)
        self._msgs = []
        read_states = tuple(self._read_states)
        self._read_states = []
        return Ready(
            hard_state=hard_state,
            entries=entries,
            snapshot=snapshot,
            messages=messages,
            committed_entries=committed,
            read_states=read_states,
            soft_state=soft_state,
            must_sync=bool(entries) or snapshot is not None or term_or_vote_moved,
            send_first=send_first,
        )

    def advance(self, ready: Ready) -> None:
        """The host carried out ``ready``: its entries are durable, its snapshot and committed
        entries applied."""
        if ready.entries and self._role is Role.LEADER:
            # Dissertation §10.2.1: the leader counts itself toward a commit only now that
            # its own write is durable, however early its appends went out.
            me = self._prs.get(self._id)
            if me is not None and me.maybe_update(ready.entries[-1].index) and (
                self._maybe_commit()
            ):
                self._after_commit()
        if ready.snapshot is not None and ready.snapshot.meta.index > self._applied:
            self._applied = ready.snapshot.meta.index
        if ready.committed_entries:
            last = ready.committed_entries[-1].index
            if last > self._applied:
                self._applied = last
