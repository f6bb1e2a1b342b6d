"""``agree-manage transfer-leader ID [--group G]``: hand leadership of a Raft group ("default"
unless named) to another voter and wait until it leads (Raft dissertation §3.10).  Needs an
``admin`` token when the cluster has TOKENS."""

from __future__ import annotations

from typing import Any

from agree.management.base import BaseCommand, CommandParser
from agree.management.remote import add_remote_options, remote_client


class Command(BaseCommand):
    help = "Hand the leadership of a Raft group to another voting member."

    def add_arguments(self, parser: CommandParser) -> None:
        add_remote_options(parser)
        parser.add_argument("node_id", metavar="ID", help="the voter that is to lead")
        parser.add_argument("--group", metavar="GROUP", help='the Raft group (default "default")')

    def handle(self, **options: Any) -> int | None:
        group = options.get("group")
        with remote_client(self, options) as client:
            client.transfer_leader(options["node_id"], group=group)
        of = f" of {group}" if group else ""
        self.stdout.write(f"{options['node_id']} is the leader{of}.")
        return None
