"""``agree-manage restore FILE [--node ID] [--force]``: put a backup into a node's database.

Run it before the node's first start, for every node of the new cluster (each with its own
``--node``); then start the nodes as usual.  The file's checksum is verified and its schemas
are checked against the settings' OBJECTS before anything is written; a database that already
holds a log is refused unless ``--force`` (which replaces that node's log and state).  The
restored node's membership is the settings' NODES.  See docs/operations.md, "Backup and
restore".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agree.backup import restore_backup
from agree.management.base import BaseCommand, CommandError, CommandParser
from agree.progress import Progress
from agree.storage.engine import display_url

#: Bytes read between two progress updates.
CHUNK = 1 << 20


def read_file(path: Path, progress: Progress) -> bytes:
    try:
        total = path.stat().st_size
        chunks = []
        done = 0
        with open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                chunks.append(chunk)
                done += len(chunk)
                progress.update(done, total)
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None
    return b"".join(chunks)


class Command(BaseCommand):
    help = "Restore a backup FILE into a fresh node's database, before the node first starts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE", help="a file written by `backup`")
        parser.add_argument(
            "--node",
            metavar="ID",
            help="whose database to restore into (default: the settings' NODE_ID)",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="replace the log and state of a database that already holds some",
        )

    def handle(self, **options: Any) -> int | None:
        from agree.conf.settings import load_settings, parse_overrides

        values: dict[str, Any] = {}
        if options.get("node"):
            values["NODE_ID"] = options["node"]
        overrides = parse_overrides(options.get("overrides") or ())
        settings = load_settings(options.get("settings"), overrides, **values)
        path = Path(options["file"])
        with Progress("restore", stream=self.stderr.stream) as progress:
            data = read_file(path, progress)
            restored = restore_backup(
                settings,
                data,
                force=bool(options.get("force")),
                source=str(path),
                progress=progress,
            )
            progress.finish("restored")
        replaced = " (its previous log replaced)" if restored.replaced else ""
        if len(restored.groups) > 1:
            replaced += "; groups: " + ", ".join(
                f"{group_id} at index {index}" for group_id, index in restored.groups.items()
            )
        self.stdout.write(
            f"Restored {path} (index {restored.index}, term {restored.term}; "
            f"{', '.join(restored.objects) or 'no objects'}) into node {settings.NODE_ID}'s "
            f"database {display_url(settings.database_url_for_node())}{replaced}. Start the "
            f"node (runnode --node {settings.NODE_ID}) once every node of the cluster is restored."
        )
        return None
