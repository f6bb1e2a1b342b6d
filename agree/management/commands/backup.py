"""``agree-manage backup FILE``: save a consistent backup of a running cluster's state.

The leader takes it at a linearizable point (``GET /v1/backup``: every command acknowledged
before it is in it); the file has a header with its format version, log index and term, the
membership, every object's schema and the SHA-256 of the state (agree.wire.backup).  It is
written next to FILE first and then renamed, so FILE is never left half written.
``agree-manage restore FILE`` puts it into a fresh node's database (docs/operations.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agree.management.base import BaseCommand, CommandError, CommandParser
from agree.management.remote import add_remote_options, remote_client
from agree.progress import Progress, format_amount
from agree.wire.backup import decode_backup

#: Bytes written between two progress updates.
CHUNK = 1 << 20


def write_file(path: Path, data: bytes, progress: Progress) -> None:
    """``data`` into ``path``, durably, through a temporary name beside it."""
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as out:
            for start in range(0, len(data), CHUNK):
                out.write(data[start : start + CHUNK])
                progress.update(min(start + CHUNK, len(data)), len(data))
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CommandError(f"cannot write {path}: {exc}") from None


class Command(BaseCommand):
    help = "Save a consistent backup of a running cluster's state to FILE."

    def add_arguments(self, parser: CommandParser) -> None:
        add_remote_options(parser)
        parser.add_argument("file", metavar="FILE", help="where to write the backup")

    def handle(self, **options: Any) -> int | None:
        path = Path(options["file"])
        if path.is_dir():
            raise CommandError(f"{path} is a directory; name the backup file to write")
        with Progress("backup", stream=self.stderr.stream) as progress:
            progress.stage("asking the leader for a backup")
            with remote_client(self, options) as client:
                data = client.backup()
            backup = decode_backup(data, source="the leader's answer")
            header = backup.header
            write_file(path, data, progress)
            progress.finish(f"{format_amount(len(data), 'bytes')} written")
        objects = ", ".join(sorted(header.objects)) or "none"
        others = "".join(
            f"; group {group_id} at index {state.index} (term {state.term}) of "
            f"{', '.join(sorted(state.objects)) or 'none'}"
            for group_id, state in backup.groups.items()
        )
        self.stdout.write(
            f"Backup at index {header.index} (term {header.term}, from {header.node}) of "
            f"{objects}{others} written to {path} ({len(data)} bytes, body SHA-256 "
            f"{header.body_sha256[:16]}...)."
        )
        return None
