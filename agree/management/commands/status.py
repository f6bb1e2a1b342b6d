"""``agree-manage status [--json]``: the status of a running node (role, leader, indexes)."""

from __future__ import annotations

from typing import Any

from agree.management.base import BaseCommand, CommandParser
from agree.management.remote import add_remote_options, dumps, remote_client


class Command(BaseCommand):
    help = "Show a running node's status: role, leader, term, indexes and members."

    def add_arguments(self, parser: CommandParser) -> None:
        add_remote_options(parser)
        parser.add_argument("--json", action="store_true", help="print the status as JSON")

    def handle(self, **options: Any) -> int | None:
        with remote_client(self, options) as client:
            status = client.status()
        if options.get("json"):
            self.stdout.write(dumps(status))
            return None
        self.stdout.write(
            f"node {status['id']} ({status['url']}): {status['role']}, term {status['term']}"
        )
        leader = status.get("leader_id")
        self.stdout.write(
            f"leader: {leader} ({status.get('leader_url')})" if leader else "leader: none known"
        )
        self.stdout.write(
            f"commit index {status['commit_index']}, applied {status['applied_index']}, "
            f"last {status['last_index']}"
        )
        self.stdout.write(f"voters: {', '.join(status['voters'])}")
        if status["learners"]:
            self.stdout.write(f"learners: {', '.join(status['learners'])}")
        return None
