"""``agree-manage schema [--json]``: the operations a running cluster's objects offer, as the
server publishes them (``GET /v1/schema``)."""

from __future__ import annotations

from typing import Any

from agree.management.base import BaseCommand, CommandParser
from agree.management.remote import add_remote_options, dumps, remote_client


class Command(BaseCommand):
    help = "Show the operations of a running cluster's replicated objects."

    def add_arguments(self, parser: CommandParser) -> None:
        add_remote_options(parser)
        parser.add_argument("--json", action="store_true", help="print the published schema")

    def handle(self, **options: Any) -> int | None:
        with remote_client(self, options) as client:
            schemas = client.schemas()
        if options.get("json"):
            self.stdout.write(dumps(schemas))
            return None
        for name, schema in sorted(schemas.items()):
            self.stdout.write(f"{name} ({schema.get('class')})")
            for op_name, op in sorted(schema["operations"].items()):
                params = []
                for p in op["params"]:
                    text = f"{p['name']}: {p['type']}"
                    if not p["required"]:
                        text += f" = {p.get('default')!r}"
                    params.append(text)
                kind = op["kind"]
                if kind == "query" and op.get("consistency"):
                    kind = f"query, {op['consistency']}"
                self.stdout.write(
                    f"  {op_name}({', '.join(params)}) -> {op['returns_type']}  [{kind}]"
                )
        return None
