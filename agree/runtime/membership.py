"""Changing a group's members: add (as a learner, promoted once caught up), remove, and hand
leadership over (§3.10).  Every change goes through the group's leader and its log: run here
when this node leads the group, else forwarded to its leader as a membership call.

A node hosting several groups changes every group's membership, one group after the other;
each change is idempotent (adding a voter again, removing a non-member, handing leadership
to the leader change nothing), so a change that failed in one group is retried as a whole."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Final

from agree.errors import (
    AgreeError,
    AgreeTimeoutError,
    MembershipChangeError,
    OutcomeUnknownError,
    ProposalLost,
)
from agree.raft.entries import ConfChange, ConfChangeType
from agree.runtime.clock import Clock
from agree.runtime.group import Group
from agree.runtime.router import Router
from agree.wire.calls import Call, CallKind, Outcome

#: The pseudo-object of a membership call forwarded to a group's leader.
MEMBERSHIP_OBJECT: Final = ""
ADD_MEMBER: Final = "add-member"
REMOVE_MEMBER: Final = "remove-member"
TRANSFER_LEADER: Final = "transfer-leader"
MEMBERSHIP_METHODS: Final = frozenset({ADD_MEMBER, REMOVE_MEMBER, TRANSFER_LEADER})

#: What a change did in one group.
ADDED: Final = "added"
PROMOTED: Final = "promoted"
REMOVED: Final = "removed"
TRANSFERRED: Final = "transferred"
UNCHANGED: Final = "unchanged"


def in_group(exc: AgreeError, group_id: str, done: dict[str, str]) -> AgreeError:
    """``exc`` (same class, same fields), its message naming the group it failed in and the
    groups already changed."""
    changed = ", ".join(f"{g}: {what}" for g, what in done.items()) or "none"
    message = f"group {group_id!r}: {exc} (groups done: {changed}; retrying the change is safe)"
    try:
        named = type(exc)(message)
    except TypeError:  # a class that is not built from a message alone
        return exc
    named.__dict__.update(exc.__dict__)
    return named


class Membership:
    def __init__(self, router: Router, clock: Clock, poll_interval: float) -> None:
        """``poll_interval``: how often a learner's progress is checked (a tick)."""
        self._router = router
        self._clock = clock
        self._poll = poll_interval

    # -- every group, each through its leader ----------------------------------------------------
    async def every_group(
        self, groups: Iterable[Group], method: str, kwargs: dict[str, Any], deadline: float
    ) -> dict[str, str]:
        """Make one change in each group in turn, through its leader; what it did, by group.
        The first failure stops the change and names its group."""
        done: dict[str, str] = {}
        for group in groups:
            try:
                done[group.id] = await self.at_leader(group, method, kwargs, deadline)
            except AgreeError as exc:
                raise in_group(exc, group.id, done) from exc
        return done

    async def at_leader(
        self, group: Group, method: str, kwargs: dict[str, Any], deadline: float
    ) -> str:
        """Run a change here while this node leads ``group``, else at its leader."""
        call = Call(
            MEMBERSHIP_OBJECT, method, CallKind.COMMAND, kwargs={"group": group.id, **kwargs}
        )

        async def here(remaining: float) -> Outcome:
            return Outcome(result=await self.run_here(group, call, deadline))

        outcome = await self._router.at_leader(group, call, deadline, here)
        return str(outcome.result)

    async def run_here(self, group: Group, call: Call, deadline: float) -> str:
        """A membership call, as the group's leader (NotLeaderError otherwise)."""
        kw = call.kwargs
        node_id = str(kw["node_id"])
        if call.method == ADD_MEMBER:
            learner = bool(kw.get("learner", False))
            return await self.add(
                group, node_id, str(kw["url"]), learner=learner, deadline=deadline
            )
        if call.method == REMOVE_MEMBER:
            return await self.remove(group, node_id, deadline=deadline)
        if call.method == TRANSFER_LEADER:
            return await self.transfer_leader(group, node_id, deadline=deadline)
        raise MembershipChangeError(f"unknown membership change {call.method!r}")

    # -- one group, as its leader ----------------------------------------------------------------
    async def _conf_change(self, group: Group, change: ConfChange, deadline: float) -> None:
        remaining = deadline - self._clock.monotonic()
        fut = group.require_leader().propose_conf_change(change)
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

    async def add(
        self, group: Group, node_id: str, url: str, *, learner: bool, deadline: float
    ) -> str:
        """Add ``node_id`` as a learner; unless ``learner``, promote it once it caught up.
        A voter added again is left as it is."""
        group.require_leader()
        conf = group.driver.raft.conf
        if node_id in conf.voters:
            if learner:
                raise MembershipChangeError(f"{node_id!r} is already a voting member")
            return UNCHANGED
        done = UNCHANGED
        if node_id not in conf.learners:
            await self._conf_change(
                group, ConfChange(ConfChangeType.ADD_LEARNER, node_id, url.encode()), deadline
            )
            done = ADDED
        if learner:
            return done
        while True:  # wait until the learner holds everything committed so far
            progress = group.require_leader().raft.status().progress.get(node_id)
            if progress is not None and progress[0] >= group.driver.raft.commit_index:
                break
            if self._clock.monotonic() >= deadline:
                raise AgreeTimeoutError(
                    f"learner {node_id!r} did not catch up in time; it stays a learner"
                )
            await self._clock.sleep(self._poll)
        await self._conf_change(group, ConfChange(ConfChangeType.PROMOTE, node_id), deadline)
        return ADDED if done == ADDED else PROMOTED

    async def remove(self, group: Group, node_id: str, *, deadline: float) -> str:
        """Remove a voter or a learner; a node that is no member is left as it is."""
        conf = group.require_leader().raft.conf
        if node_id not in conf.voters and node_id not in conf.learners:
            return UNCHANGED
        await self._conf_change(group, ConfChange(ConfChangeType.REMOVE, node_id), deadline)
        return REMOVED

    async def transfer_leader(self, group: Group, node_id: str, *, deadline: float) -> str:
        """Hand the group's leadership to ``node_id`` and wait until it leads (§3.10)."""
        if group.driver.soft_state.leader_id == node_id:
            return UNCHANGED
        await group.require_leader().transfer_leader(node_id)
        while group.driver.soft_state.leader_id != node_id:
            if self._clock.monotonic() >= deadline:
                raise AgreeTimeoutError(f"leadership did not move to {node_id!r} in time")
            await self._router.wait_leader_change(group, deadline)
        return TRANSFERRED
