"""A node's view of one Raft group, typed; and the JSON the HTTP API answers with."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from agree.raft.ready import Role


class MemberRole(enum.Enum):
    VOTER = "voter"
    LEARNER = "learner"


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    url: str
    role: MemberRole

    def to_json(self) -> dict[str, str]:
        return {"url": self.url, "role": self.role.value}


@dataclass(frozen=True, slots=True)
class NodeStatus:
    id: str
    role: Role
    leader_id: str | None
    term: int
    commit_index: int
    applied_index: int
    last_index: int
    voters: tuple[str, ...]
    learners: tuple[str, ...]
    #: Member -> its URL, as this group's membership records it.
    members: dict[str, str]
    #: Leader only: member -> the highest log index known to be replicated on it.
    match_index: dict[str, int] = field(default_factory=dict)
    #: Member -> seconds since this node last received a message from it.
    last_contact: dict[str, float] = field(default_factory=dict)
    group: str = "default"

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    def member_list(self) -> dict[str, Member]:
        """Voters then learners, by id."""
        out = {
            node_id: Member(node_id, self.members.get(node_id, ""), MemberRole.VOTER)
            for node_id in self.voters
        }
        for node_id in self.learners:
            out[node_id] = Member(node_id, self.members.get(node_id, ""), MemberRole.LEARNER)
        return out

    def group_json(self) -> dict[str, Any]:
        """One entry of ``GET /v1/status``'s ``groups``: this group's leader, term, indexes
        and voters/learners as this node sees them."""
        leader_url = self.members.get(self.leader_id) if self.leader_id else None
        return {**self._raft_json(), "leader_url": leader_url}

    def _raft_json(self) -> dict[str, Any]:
        """The fields both views share: role, leader, term, indexes, voters and learners."""
        return {
            "role": self.role.value,
            "leader_id": self.leader_id,
            "term": self.term,
            "commit_index": self.commit_index,
            "applied_index": self.applied_index,
            "last_index": self.last_index,
            "voters": list(self.voters),
            "learners": list(self.learners),
        }

    def to_json(self) -> dict[str, Any]:
        """The shape of ``GET /v1/status`` (without the URLs the server adds)."""
        return {
            "id": self.id,
            **self._raft_json(),
            "members": dict(self.members),
            "match_index": dict(self.match_index),
            "last_contact": dict(self.last_contact),
        }


def members_json(members: dict[str, Member]) -> dict[str, dict[str, str]]:
    return {node_id: member.to_json() for node_id, member in members.items()}
