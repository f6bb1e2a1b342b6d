"""``agree-manage members list|add ID URL [--learner]|remove ID``: the cluster's membership.

Changes go to the leader (the client follows it from any listed node) and need an ``admin``
token when the cluster has TOKENS.
"""

from __future__ import annotations

from typing import Any

from agree.management.base import BaseCommand, CommandError, CommandParser
from agree.management.remote import add_remote_options, remote_client


class Command(BaseCommand):
    help = "List, add or remove the members of a running cluster."

    def add_arguments(self, parser: CommandParser) -> None:
        add_remote_options(parser)
        parser.add_argument("action", choices=("list", "add", "remove"))
        parser.add_argument("node_id", nargs="?", metavar="ID")
        parser.add_argument("node_url", nargs="?", metavar="URL")
        parser.add_argument(
            "--learner", action="store_true", help="add: keep the node a non-voting learner"
        )

    def handle(self, **options: Any) -> int | None:
        action, node_id, node_url = options["action"], options["node_id"], options["node_url"]
        if action == "add" and not (node_id and node_url):
            raise CommandError("members add needs the new node's ID and URL")
        if action == "remove" and not node_id:
            raise CommandError("members remove needs the ID of the node to remove")
        with remote_client(self, options) as client:
            if action == "add":
                members = client.add_member(node_id, node_url, learner=options["learner"])
            elif action == "remove":
                members = client.remove_member(node_id)
            else:
                members = client.members()
        for member_id, info in sorted(members.items()):
            self.stdout.write(f"{member_id}  {info['role']:<8} {info['url']}")
        return None
