"""Single-server membership changes (dissertation §4.1): applying a ConfChange to a
ConfState, checking that a change is valid, and the entries that bootstrap a cluster."""

from __future__ import annotations

from collections.abc import Mapping

from agree.errors import MembershipChangeError
from agree.raft.entries import ConfChange, ConfChangeType, ConfState, Entry, EntryType


def check_change(conf: ConfState, change: ConfChange) -> None:
    """Raise MembershipChangeError unless ``change`` is valid against ``conf``."""
    node = change.node_id
    if not node:
        raise MembershipChangeError("a membership change needs a node id")
    if change.type is ConfChangeType.ADD_LEARNER:
        if node in conf.voters or node in conf.learners:
            raise MembershipChangeError(f"{node!r} is already a member")
    elif change.type is ConfChangeType.PROMOTE:
        if node not in conf.learners:
            raise MembershipChangeError(f"{node!r} is not a learner; only learners are promoted")
    elif change.type is ConfChangeType.REMOVE:
        if node not in conf.voters and node not in conf.learners:
            raise MembershipChangeError(f"{node!r} is not a member")
        if conf.voters == {node}:
            raise MembershipChangeError(f"{node!r} is the last voter and cannot be removed")


def apply_change(conf: ConfState, change: ConfChange) -> ConfState:
    """The configuration after ``change``.  Lenient: followers apply whatever the leader
    appended (the leader validated it), so an inapplicable change leaves ``conf`` as is."""
    node = change.node_id
    voters, learners = conf.voters, conf.learners
    if change.type is ConfChangeType.ADD_LEARNER:
        if node in voters:
            return conf
        return ConfState(voters=voters, learners=learners | {node})
    if change.type is ConfChangeType.PROMOTE:
        return ConfState(voters=voters | {node}, learners=learners - {node})
    return ConfState(voters=voters - {node}, learners=learners - {node})


def bootstrap_entries(
    conf: ConfState, contexts: Mapping[str, bytes] | None = None
) -> list[Entry]:
    """The identical log prefix every founding member writes (term 1, committed).

    Spelling the initial configuration out as CONF_CHANGE entries lets a server that joins
    later learn it by replaying the log from index 1, like any other configuration.
    ``contexts`` (opaque to the core, e.g. each member's address) ride on the ADD_LEARNER
    entries."""
    ctx = contexts or {}
    changes: list[ConfChange] = []
    for voter in sorted(conf.voters):
        changes.append(ConfChange(ConfChangeType.ADD_LEARNER, voter, ctx.get(voter, b"")))
        changes.append(ConfChange(ConfChangeType.PROMOTE, voter))
    for learner in sorted(conf.learners - conf.voters):
        changes.append(ConfChange(ConfChangeType.ADD_LEARNER, learner, ctx.get(learner, b"")))
    return [
        Entry(term=1, index=i, type=EntryType.CONF_CHANGE, data=change.encode())
        for i, change in enumerate(changes, start=1)
    ]
