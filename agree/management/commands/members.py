"""``agree-manage members list|add ID URL [--learner]|remove ID [--group G]``: the cluster's
membership.

A change is made in every Raft group (or the one named with ``--group``), each by its leader
(the node asked forwards it); what it did is printed per group.  A change that failed in one
group names it and is safe to retry.  Changes need an ``admin`` token when the cluster has
TOKENS.
"""

from __future__ import annotations

from typing import Any

from agree.management.base import BaseCommand, CommandError, CommandParser
from agree.management.remote import add_remote_options, remote_client


class Command(BaseCommand):
    help = "List, add or remove the members of a running cluster (in every Raft group)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_remote_options(parser)
        parser.add_argument("action", choices=("list", "add", "remove"))
        parser.add_argument("node_id", nargs="?", metavar="ID")
        parser.add_argument("node_url", nargs="?", metavar="URL")
        parser.add_argument(
            "--learner", action="store_true", help="add: keep the node a non-voting learner"
        )
        parser.add_argument(
            "--group", metavar="GROUP", help="add/remove: change this Raft group only"
        )

    def handle(self, **options: Any) -> int | None:
        action, node_id, node_url = options["action"], options["node_id"], options["node_url"]
        group = options.get("group")
        if action == "add" and not (node_id and node_url):
            raise CommandError("members add needs the new node's ID and URL")
        if action == "remove" and not node_id:
            raise CommandError("members remove needs the ID of the node to remove")
        with remote_client(self, options) as client:
            if action == "add":
                body = {"id": node_id, "url": node_url, "learner": options["learner"]}
                answer = client.change_members("POST", "/v1/members", body, None, group)
            elif action == "remove":
                answer = client.change_members(
                    "DELETE", f"/v1/members/{node_id}", None, None, group
                )
            else:
                answer = client.members_by_group()
        groups: dict[str, dict[str, Any]] = answer.get("groups") or {
            "default": {"members": answer.get("members", {})}
        }
        for group_id, info in sorted(groups.items()):
            change = f": {info['change']}" if "change" in info else ""
            if len(groups) > 1 or change:
                self.stdout.write(f"[{group_id}]{change}")
            for member_id, member in sorted(info["members"].items()):
                self.stdout.write(f"{member_id}  {member['role']:<8} {member['url']}")
        return None
