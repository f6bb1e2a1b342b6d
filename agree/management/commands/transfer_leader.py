"""``agree-manage transfer-leader ID``: hand leadership to another voter and wait until it leads
(Raft dissertation §3.10).  Needs an ``admin`` token when the cluster has TOKENS."""

from __future__ import annotations

from typing import Any

from agree.management.base import BaseCommand, CommandParser
from agree.management.remote import add_remote_options, remote_client


class Command(BaseCommand):
    help = "Hand the cluster's leadership to another voting member."

    def add_arguments(self, parser: CommandParser) -> None:
        add_remote_options(parser)
        parser.add_argument("node_id", metavar="ID", help="the voter that is to lead")

    def handle(self, **options: Any) -> int | None:
        with remote_client(self, options) as client:
            client.transfer_leader(options["node_id"])
        self.stdout.write(f"{options['node_id']} is the leader.")
        return None
