"""Where a call runs: proposed here as the group's leader, forwarded to the leader, retried
across leader changes, or read locally at the consistency asked (ReadIndex, §6.4).

A command is retried with the same ``(client id, seq)``, so it applies at most once; once an
attempt may have reached the log, a timeout means "outcome unknown", never "not applied".
The forward-and-retry loop is written once, for commands and leader reads alike.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from agree.errors import (
    AgreeTimeoutError,
    NotLeaderError,
    OutcomeUnknownError,
    ProposalLost,
    ProposalRejectedError,
    UnavailableError,
)
from agree.objects.replicated import Consistency
from agree.raft.ready import Role
from agree.runtime.clock import Clock
from agree.runtime.group import Group
from agree.transport.base import Transport
from agree.wire.calls import Call, CallKind, Outcome
from agree.wire.codec import CommandRecord, encode_command


class _Retry(Exception):
    """A local attempt failed in a way worth retrying; ``in_doubt`` if it may have been
    proposed, ``wait`` if the leader is changing."""

    def __init__(self, *, in_doubt: bool, wait: bool) -> None:
        self.in_doubt = in_doubt
        self.wait = wait


class Router:
    def __init__(
        self,
        node_id: str,
        transport: Callable[[], Transport],
        clock: Clock,
        election_timeout: float,
    ) -> None:
        self.node_id = node_id
        self._transport = transport
        self._clock = clock
        self.election_timeout = election_timeout
        self._last_stamp = 0

    # -- commands and queries --------------------------------------------------------------------
    def command(
        self,
        group: Group,
        call: Call,
        deadline: float,
        *,
        may_forward: bool,
        arguments: str | None = None,
        as_decoded: bool = False,
    ) -> Coroutine[Any, Any, Outcome]:
        """``arguments``: ``encode_arguments(call.args, call.kwargs)`` if the caller has it.
        ``as_decoded``: ``call.args`` and ``call.kwargs`` are exactly what decoding the command
        gives back (the JSON form a proxy binds, or a peer's frame decodes), so that the leader
        applies its own command as proposed, without decoding its entry."""

        async def propose(remaining: float) -> Outcome:
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
            # Times out by the driver's deadline sweep (one per tick), not a timer per call.
            data = encode_command(record, arguments)
            fut = group.driver.propose(data, deadline, record if as_decoded else None)
            try:
                outcome: Outcome = await fut
                return outcome
            except ProposalLost:
                raise _Retry(in_doubt=True, wait=False) from None
            except (NotLeaderError, ProposalRejectedError):
                raise _Retry(in_doubt=False, wait=True) from None
            except TimeoutError:
                raise _Retry(in_doubt=True, wait=False) from None
            except UnavailableError as exc:
                # The node stopped with the command in its log: it may still commit.
                raise OutcomeUnknownError(
                    f"{call.object}.{call.method}: {exc}; it may or may not have been applied"
                    " (retrying with the same client id and seq is safe)"
                ) from exc

        # The retry loop's coroutine itself, not one more awaiting it: every command passes here.
        return self._at_leader(group, call, deadline, may_forward, propose)

    async def query(
        self,
        group: Group,
        call: Call,
        consistency: Consistency,
        deadline: float,
        *,
        may_forward: bool,
        running: Callable[[], bool],
    ) -> Outcome:
        if consistency is Consistency.ANY:
            return await self.local_query(group, call, deadline, running)
        if consistency is Consistency.LINEARIZABLE:
            await self.linearizable_index(group, deadline)
            return await self.local_query(group, call, deadline, running)

        async def read(remaining: float) -> Outcome:
            return await self.local_query(group, call, deadline, running)

        # LEADER: the node that believes it leads answers, without a check.
        return await self._at_leader(group, call, deadline, may_forward, read)

    async def _at_leader(
        self,
        group: Group,
        call: Call,
        deadline: float,
        may_forward: bool,
        local: Callable[[float], Awaitable[Outcome]],
    ) -> Outcome:
        """Run ``local`` while this node leads the group, else forward to the leader; retry
        across leader changes until ``deadline``."""
        command = call.kind is CallKind.COMMAND
        in_doubt = False  # whether some attempt may have reached the log
        while True:
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                raise self._timed_out(call, in_doubt)
            soft = group.driver.soft_state
            if soft.role is Role.LEADER:
                try:
                    return await local(remaining)
                except _Retry as retry:
                    in_doubt = in_doubt or retry.in_doubt
                    if retry.wait and group.driver.soft_state.role is Role.LEADER:
                        # E.g. a transfer under way: wait for its outcome.  A leader deposed
                        # since forwards to the leader it knows now (below), at once.
                        await self.wait_leader_change(group, deadline)
                continue
            if soft.leader_id is not None and soft.leader_id != self.node_id:
                if not may_forward:
                    raise group.not_leader()
                try:
                    return await self._transport().forward(soft.leader_id, call, remaining)
                except (NotLeaderError, ProposalRejectedError, UnavailableError, AgreeTimeoutError):
                    # Whatever the peer said, it may have proposed the command before it failed
                    # (e.g. lost its slot to a new leader's snapshot): from here on, a timeout
                    # means "outcome unknown", never "not applied".
                    in_doubt = in_doubt or command
                    await self.wait_leader_change(group, deadline, at_most=self.election_timeout)
                continue
            await self.wait_leader_change(group, deadline)

    async def at_leader(
        self,
        group: Group,
        call: Call,
        deadline: float,
        local: Callable[[float], Awaitable[Outcome]],
    ) -> Outcome:
        """Run ``local`` while this node leads the group, else forward ``call`` (which the
        leader's node runs with ``local``'s effect) to the leader; retry across leader changes."""

        async def here(remaining: float) -> Outcome:
            try:
                return await local(remaining)
            except NotLeaderError:  # lost the lead before anything was proposed
                raise _Retry(in_doubt=False, wait=True) from None

        return await self._at_leader(group, call, deadline, True, here)

    @staticmethod
    def _timed_out(call: Call, in_doubt: bool) -> Exception:
        what = f"{call.object}.{call.method}"
        if call.kind is not CallKind.COMMAND:
            return AgreeTimeoutError(f"{what}: no leader answered in time")
        if in_doubt:
            return OutcomeUnknownError(
                f"{what} timed out; it may or may not have been applied (retrying with the same"
                " client id and seq is safe)"
            )
        return AgreeTimeoutError(f"{what} timed out; it was not applied")

    async def local_query(
        self, group: Group, call: Call, deadline: float, running: Callable[[], bool]
    ) -> Outcome:
        if not running():  # its state is no longer kept up to date
            raise UnavailableError(f"node {self.node_id!r} is stopped")
        group.driver  # noqa: B018 - raises if the group failed
        host = group.host
        lock = host.lock
        if lock.try_acquire():  # the usual case, without a wait
            try:
                return host.query(call.object, call.method, call.args, call.kwargs)
            finally:
                lock.release()
        async with lock.held(deadline):  # never blocks the loop on a read_lock()
            return host.query(call.object, call.method, call.args, call.kwargs)

    async def linearizable_index(self, group: Group, deadline: float) -> int:
        """ReadIndex (§6.4): a read index confirmed by the leader and applied here."""
        while True:
            now = self._clock.monotonic()
            if now >= deadline:
                raise AgreeTimeoutError("no linearizable read could be confirmed in time")
            # A round that is not confirmed within two election timeouts (lost request, deposed
            # leader) is abandoned and a new one started.  The driver times the read out (one
            # sweep per tick), not a timer per read.
            attempt = min(deadline, now + 2 * self.election_timeout)
            try:
                return await group.driver.read_index(attempt)
            except NotLeaderError:
                await self.wait_leader_change(group, deadline, at_most=self.election_timeout)
            except TimeoutError:
                continue

    async def propose_here(self, group: Group, data: bytes, deadline: float, what: str) -> Outcome:
        """As the group's leader, propose ``data`` and answer once it applied."""
        remaining = deadline - self._clock.monotonic()
        try:
            fut = group.require_leader().propose(data)
            outcome: Outcome = await asyncio.wait_for(fut, remaining)
        except TimeoutError:
            raise AgreeTimeoutError(f"{what} was not applied in time") from None
        return outcome

    async def wait_leader_change(
        self, group: Group, deadline: float, at_most: float | None = None
    ) -> None:
        remaining = deadline - self._clock.monotonic()
        if at_most is not None:
            remaining = min(remaining, at_most)
        if remaining <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(group.driver.leader_change(), remaining)

    def _stamp(self) -> int:
        # The leader's clock, made strictly increasing; replicas apply max(previous, stamp).
        self._last_stamp = max(self._clock.wall_ns(), self._last_stamp + 1)
        return self._last_stamp
