"""``agree-manage snapshot``: make a node snapshot its state and compact its log now."""

from __future__ import annotations

from typing import Any

from agree.management.base import BaseCommand, CommandParser
from agree.management.remote import add_remote_options, remote_client


class Command(BaseCommand):
    help = "Make a running node take a snapshot and compact its log."

    def add_arguments(self, parser: CommandParser) -> None:
        add_remote_options(parser)

    def handle(self, **options: Any) -> int | None:
        with remote_client(self, options) as client:
            index = client.snapshot()
        self.stdout.write(f"Snapshot at index {index}.")
        return None
