"""A point-in-time view of a node for hosts, operators and tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from agree.raft.entries import ConfState
from agree.raft.ready import Role


@dataclass(frozen=True, slots=True)
class Status:
    id: str
    term: int
    vote: str | None
    commit: int
    applied: int
    last_index: int
    role: Role
    leader_id: str | None
    conf: ConfState
    progress: Mapping[str, tuple[int, int]]  # leader only: member -> (match, next)
    lead_transferee: str | None
