"""Changing a group's members: add (as a learner, promoted once caught up), remove, and hand
leadership over (§3.10).  Every change goes through the group's leader and its log."""

from __future__ import annotations

import asyncio

from agree.clock import Clock
from agree.errors import AgreeTimeoutError, MembershipChangeError, OutcomeUnknownError, ProposalLost
from agree.raft.entries import ConfChange, ConfChangeType
from agree.runtime.group import Group
from agree.runtime.router import Router


class Membership:
    def __init__(self, router: Router, clock: Clock, poll_interval: float) -> None:
        """``poll_interval``: how often a learner's progress is checked (a tick)."""
        self._router = router
        self._clock = clock
        self._poll = poll_interval

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
    ) -> None:
        """Add ``node_id`` as a learner; unless ``learner``, promote it once it caught up."""
        conf = group.driver.raft.conf
        if node_id not in conf.learners:
            if node_id in conf.voters:
                raise MembershipChangeError(f"{node_id!r} is already a voting member")
            await self._conf_change(
                group, ConfChange(ConfChangeType.ADD_LEARNER, node_id, url.encode()), deadline
            )
        if learner:
            return
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

    async def remove(self, group: Group, node_id: str, *, deadline: float) -> None:
        await self._conf_change(group, ConfChange(ConfChangeType.REMOVE, node_id), deadline)

    async def transfer_leader(self, group: Group, node_id: str, *, deadline: float) -> None:
        """Hand the group's leadership to ``node_id`` and wait until it leads (§3.10)."""
        if group.driver.soft_state.leader_id == node_id:
            return
        await group.require_leader().transfer_leader(node_id)
        while group.driver.soft_state.leader_id != node_id:
            if self._clock.monotonic() >= deadline:
                raise AgreeTimeoutError(f"leadership did not move to {node_id!r} in time")
            await self._router.wait_leader_change(group, deadline)
