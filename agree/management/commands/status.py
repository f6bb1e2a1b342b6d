"""``agree-manage status [--json]``: every member of a running cluster, each asked directly.

One node (the first that answers, of ``--url`` or the settings' NODES) names the members; each
member is then asked for its own ``/v1/status`` (role, term, commit and applied index).  Lag is
how far a member's applied index trails the leader's commit index; last contact is how long ago
the leader last heard from it.  A member that does not answer is listed as unreachable, and the
exit status is then 1 so that scripts notice.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any

from agree.client import AsyncClient
from agree.management.base import BaseCommand, CommandParser
from agree.management.remote import add_remote_options, connection, dumps, remote_client

#: Seconds to wait for one member's answer: a dead member should not stall the report.
MEMBER_TIMEOUT = 2.0


async def _member_status(
    url: str, token: str | None, timeout: float, context: ssl.SSLContext | None
) -> dict[str, Any]:
    client = AsyncClient([url], token=token, timeout=timeout, ssl=context)
    try:
        return await client.status()
    finally:
        await client.close()


async def _gather(
    members: dict[str, dict[str, str]],
    token: str | None,
    timeout: float,
    context: ssl.SSLContext | None,
) -> dict[str, dict[str, Any] | BaseException]:
    ids = sorted(members)
    answers = await asyncio.gather(
        *(_member_status(members[i]["url"], token, timeout, context) for i in ids),
        return_exceptions=True,
    )
    return dict(zip(ids, answers, strict=True))


def _leader(statuses: Iterable[dict[str, Any]]) -> tuple[dict[str, Any] | None, int]:
    """Of the members' views of one group: the leader's, and the highest term seen."""
    views = list(statuses)
    leaders = [s for s in views if s.get("role") == "leader"]
    # Two nodes may both believe they lead for a moment (an old leader not yet told); the one
    # with the higher term is the real one (§5.1).
    leader = max(leaders, key=lambda s: s["term"]) if leaders else None
    return leader, max((s["term"] for s in views), default=0)


def _groups(statuses: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every Raft group's leader, term and commit index, and each member's view of it."""
    views: dict[str, dict[str, dict[str, Any]]] = {}
    for member_id, status in statuses.items():
        for group_id, view in (status.get("groups") or {}).items():
            views.setdefault(group_id, {})[member_id] = view
    out: dict[str, Any] = {}
    for group_id, by_member in sorted(views.items()):
        leader, highest_term = _leader(by_member.values())
        members = {}
        for member_id, view in sorted(by_member.items()):
            entry = {k: view[k] for k in ("role", "term", "commit_index", "applied_index")}
            if leader is not None:
                entry["lag"] = max(0, leader["commit_index"] - view["applied_index"])
            members[member_id] = entry
        out[group_id] = {
            "leader_id": leader["leader_id"] if leader else None,
            "term": leader["term"] if leader else highest_term,
            "commit_index": leader["commit_index"] if leader else None,
            "members": members,
        }
    return out


def cluster_status(
    members: dict[str, dict[str, str]], answers: dict[str, dict[str, Any] | BaseException]
) -> dict[str, Any]:
    """The report: the leader, its term and commit index, and one entry per member (of the
    "default" group); and in ``groups``, the same for every Raft group."""
    statuses = {i: a for i, a in answers.items() if isinstance(a, dict)}
    leader, highest_term = _leader(statuses.values())
    report: dict[str, Any] = {
        "leader_id": leader["id"] if leader else None,
        "term": leader["term"] if leader else highest_term,
        "commit_index": leader["commit_index"] if leader else None,
        "members": {},
    }
    for member_id, info in sorted(members.items()):
        entry: dict[str, Any] = {"url": info["url"], "membership": info["role"]}
        answer = answers[member_id]
        if isinstance(answer, BaseException):
            entry.update(role="unreachable", error=f"{type(answer).__name__}: {answer}")
        else:
            entry.update(
                role=answer["role"],
                term=answer["term"],
                commit_index=answer["commit_index"],
                applied_index=answer["applied_index"],
                last_index=answer["last_index"],
            )
            if leader is not None:
                entry["lag"] = max(0, leader["commit_index"] - answer["applied_index"])
        if leader is not None:
            if member_id == leader["id"]:
                entry["last_contact"] = 0.0
            else:
                entry["last_contact"] = leader.get("last_contact", {}).get(member_id)
        report["members"][member_id] = entry
    report["groups"] = _groups(statuses)
    return report


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s ago"


class Command(BaseCommand):
    help = "Show every member of a running cluster: role, term, indexes, lag and last contact."

    def add_arguments(self, parser: CommandParser) -> None:
        add_remote_options(parser)
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, **options: Any) -> int | None:
        with remote_client(self, options) as client:
            members = client.members()
        timeout = min(MEMBER_TIMEOUT, options.get("timeout") or MEMBER_TIMEOUT)
        _, token, context = connection(self, options)
        answers = asyncio.run(_gather(members, token, timeout, context))
        report = cluster_status(members, answers)
        unreachable = any(m["role"] == "unreachable" for m in report["members"].values())
        if options.get("json"):
            self.stdout.write(dumps(report))
            return 1 if unreachable else None
        leader = report["leader_id"]
        self.stdout.write(
            f"leader: {leader}, term {report['term']}, commit index {report['commit_index']}"
            if leader
            else "leader: none known"
        )
        header = f"{'ID':<8} {'ROLE':<11} {'TERM':>5} {'COMMIT':>7} {'APPLIED':>8} {'LAG':>5}"
        self.stdout.write(f"{header}  {'LAST CONTACT':<13} ADDRESS")
        for member_id, m in report["members"].items():
            role = m["role"] if m["membership"] == "voter" else f"{m['role']}*"
            if m["role"] == "unreachable":
                cells = f"{member_id:<8} {role:<11} {'-':>5} {'-':>7} {'-':>8} {'-':>5}"
            else:
                cells = (
                    f"{member_id:<8} {role:<11} {m['term']:>5} {m['commit_index']:>7} "
                    f"{m['applied_index']:>8} {m.get('lag', '-')!s:>5}"
                )
            self.stdout.write(f"{cells}  {_seconds(m.get('last_contact')):<13} {m['url']}")
        if any(m["membership"] != "voter" for m in report["members"].values()):
            self.stdout.write("* a learner (does not vote)")
        if len(report["groups"]) > 1:
            self._write_groups(report["groups"])
        return 1 if unreachable else None

    def _write_groups(self, groups: dict[str, Any]) -> None:
        for group_id, group in groups.items():
            leader = group["leader_id"]
            self.stdout.write(
                f"group {group_id}: leader {leader}, term {group['term']}, commit index "
                f"{group['commit_index']}"
                if leader
                else f"group {group_id}: leader none known"
            )
            for member_id, m in group["members"].items():
                self.stdout.write(
                    f"  {member_id:<8} {m['role']:<11} {m['term']:>5} {m['commit_index']:>7} "
                    f"{m['applied_index']:>8} {m.get('lag', '-')!s:>5}"
                )
