"""``agree-manage migrate``: bring a node's database to agree's newest schema revision.

``--plan`` lists the revisions that would be applied; ``--check`` exits non-zero (status 1) if
any are pending, for deploy scripts that must not start a node on an old schema.  ``--stamp
REVISION`` first records that a database with no migration record already has the tables of
REVISION (made without this command, or whose record was lost), then migrates from there.
The database is ``--database-url``, else the DATABASE_URL of the settings (``--settings``,
``$AGREE_SETTINGS_MODULE``, ``-s``), for ``--node`` or the settings' NODE_ID; ``--all`` migrates
the database of every node of NODES in turn (a project whose nodes all run on this machine).
"""

from __future__ import annotations

from typing import Any

from agree.management.base import BaseCommand, CommandError, CommandParser
from agree.storage import MEMORY_URL
from agree.storage import migrate as migrations
from agree.storage.engine import display_url


class Command(BaseCommand):
    help = "Create or upgrade agree's tables in a node's database to the newest revision."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database-url",
            metavar="URL",
            help="the node's database, e.g. sqlite:///agree-data/n1.db (default: DATABASE_URL "
            "from the settings)",
        )
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--node",
            metavar="NODE_ID",
            help="with settings: migrate this node's database (default: the settings' NODE_ID)",
        )
        which.add_argument(
            "--all",
            action="store_true",
            help="with settings: migrate the database of every node of NODES",
        )
        parser.add_argument(
            "--stamp",
            metavar="REVISION",
            help="record that the database, which has agree's tables but no migration record, "
            "is at REVISION (changing no table), then migrate from there",
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--plan", action="store_true", help="list the pending revisions; change nothing"
        )
        mode.add_argument(
            "--check",
            action="store_true",
            help="exit with status 1 if the database is not at the newest revision",
        )

    def database_url(self, options: dict[str, Any]) -> str:
        url: str | None = options.get("database_url")
        if url:
            return url
        if not self.settings_given(options):
            raise CommandError(
                "no database to migrate: pass --database-url URL, or name the settings with "
                "--settings MODULE (or AGREE_SETTINGS_MODULE) so that DATABASE_URL is used"
            )
        node = options.get("node")
        if node:
            # The settings may name several nodes and none as this one (a project's settings):
            # --node says whose database it is.
            return self.load_cluster_settings(options).database_url_for_node(node)
        return self.load_settings(options).database_url_for_node()

    def handle(self, **options: Any) -> int | None:
        if options.get("all"):
            if options.get("database_url") or not self.settings_given(options):
                raise CommandError(
                    "--all migrates the nodes of the settings' NODES; name the "
                    "settings and leave out --database-url"
                )
            settings = self.load_cluster_settings(options)
            status = None
            for node_id in settings.NODES:
                self.stdout.write(f"Node {node_id}:")
                status = (
                    self.migrate_one(
                        settings.replace(NODE_ID=node_id).database_url_for_node(), options
                    )
                    or status
                )
            return status
        return self.migrate_one(self.database_url(options), options)

    def migrate_one(self, url: str, options: dict[str, Any]) -> int | None:
        if url.startswith(MEMORY_URL):
            raise CommandError(f"{url} is an in-memory store; it has no tables to migrate")
        shown = display_url(url)
        stamp: str | None = options.get("stamp")
        if stamp:
            if options.get("plan") or options.get("check"):
                raise CommandError(
                    "--stamp records a revision; it does not go with --plan or --check"
                )
            migrations.stamp(url, stamp)
            self.stdout.write(f"Recorded {stamp}: {shown} already had its tables.")
        pending = migrations.plan(url)
        if options.get("plan"):
            if not pending:
                self.stdout.write(f"No migrations to apply: {shown} is at {migrations.head()}.")
            else:
                self.stdout.write(f"Pending migrations for {shown}:")
                for revision in pending:
                    self.stdout.write(f"  {revision.revision}  {revision.doc.splitlines()[0]}")
            return None
        if options.get("check"):
            if pending:
                names = ", ".join(revision.revision for revision in pending)
                raise CommandError(
                    f"{shown} is not at the newest revision; pending: {names}. "
                    f"Run: {migrations.migrate_command(url)}"
                )
            self.stdout.write(f"{shown} is at the newest revision {migrations.head()}.")
            return None
        if not pending:
            self.stdout.write(f"No migrations to apply: {shown} is at {migrations.head()}.")
            return None
        migrations.upgrade(url)
        for revision in pending:
            self.stdout.write(f"Applied {revision.revision}  {revision.doc.splitlines()[0]}")
        self.stdout.write(f"{shown} is at {migrations.head()}.")
        return None
