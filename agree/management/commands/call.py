"""``agree-manage call OBJECT.METHOD [ARG...] [--consistency LEVEL]``: call an operation of a
running cluster; each ARG is JSON (``5``, ``'"text"'``, ``'[1, 2]'``), or plain text when it is
not valid JSON.  Prints the result as JSON.

When the method itself raises, the command fails (exit status 1) with the exception's type and
message, e.g. ``CommandError: ValueError: n must be >= 0``; agree's own errors (an unknown
method, a refused token) leave as themselves.
"""

from __future__ import annotations

import json
from typing import Any

from agree.errors import AgreeError, RemoteError
from agree.management.base import BaseCommand, CommandError, CommandParser
from agree.management.remote import add_remote_options, dumps, remote_client


def _arg(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


class Command(BaseCommand):
    help = "Call a @command or @query of a running cluster and print the result as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        add_remote_options(parser)
        parser.add_argument("target", metavar="OBJECT.METHOD")
        parser.add_argument("args", nargs="*", metavar="ARG", help="arguments, as JSON")
        parser.add_argument(
            "--consistency", choices=("any", "leader", "linearizable"), help="queries only"
        )

    def handle(self, **options: Any) -> int | None:
        name, dot, method = options["target"].partition(".")
        if not dot or not name or not method:
            raise CommandError(f"{options['target']!r} is not OBJECT.METHOD, e.g. counter.add")
        args = [_arg(a) for a in options["args"]]
        with remote_client(self, options) as client:
            proxy = client.proxy(name)
            op = proxy.schema.operation(method)
            if op.kind == "command" and options.get("consistency"):
                raise CommandError(f"{name}.{method} is a command; --consistency is for queries")
            try:
                if op.kind == "command":
                    result = proxy.mutate(method, *args)
                else:
                    result = proxy.read(method, options.get("consistency"), *args)
            except RemoteError as exc:
                # The method raised an exception whose class is not importable here.
                message = str(exc).removeprefix(f"{exc.type_name}: ")
                type_name = exc.type_name.rpartition(":")[2] or exc.type_name
                raise CommandError(f"{type_name}: {message}") from exc
            except AgreeError:
                raise
            except Exception as exc:
                # The method raised (the call was carried out; this is its outcome).
                raise CommandError(f"{type(exc).__name__}: {exc}") from exc
        self.stdout.write(dumps(result))
        return None
