"""``agree-manage check``: inspect a project without starting it (Django's system checks).

Settings, the OBJECTS classes, every node's database (reachable, created, migrated), the TLS
files and the strength of the secrets; each finding printed with its id and a hint (the ids are
listed in :mod:`agree.management.checks`).  The exit status is 1 when anything is an error,
whatever the warnings.
"""

from __future__ import annotations

import json
from typing import Any

from agree.management.base import BaseCommand, CommandError, CommandParser
from agree.management.checks import CheckMessage, Level, run_checks


class Command(BaseCommand):
    help = "Check the settings, objects, databases, TLS files and secrets of a project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-database",
            action="store_true",
            help="skip the database checks (e.g. on a machine that runs no node)",
        )
        parser.add_argument("--json", action="store_true", help="print the findings as JSON")

    def handle(self, **options: Any) -> int | None:
        _, found = run_checks(
            lambda: self.load_cluster_settings(options),
            databases=not options["no_database"],
            manage=self.invocation(options),
        )
        errors = [m for m in found if m.is_error]
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    [
                        {
                            "id": m.id,
                            "level": m.level.name.lower(),
                            "object": m.obj,
                            "message": m.msg,
                            "hint": m.hint,
                        }
                        for m in found
                    ],
                    indent=2,
                )
            )
        else:
            self._report(found)
        if errors:
            raise CommandError(f"{len(errors)} error(s) found; fix them before starting the nodes")
        return None

    def _report(self, found: list[CheckMessage]) -> None:
        if not found:
            self.stdout.write("System check identified no issues.")
            return
        self.stdout.write("System check identified some issues:")
        for level, title in ((Level.ERROR, "ERRORS"), (Level.WARNING, "WARNINGS")):
            group = [m for m in found if m.level == level]
            if group:
                self.stdout.write(f"\n{title}:")
                for message in group:
                    self.stdout.write(str(message))
        count = len(found)
        self.stdout.write(f"\nSystem check identified {count} issue{'s' if count != 1 else ''}.")
