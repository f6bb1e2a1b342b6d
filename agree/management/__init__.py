"""``agree-manage``: the Django-shaped command line of agree.

``main(argv)`` is the console script; :func:`call_command` runs a command from code (tests,
scripts) with its output captured.  Commands are discovered by module name under
:mod:`agree.management.commands` — this dispatcher knows no command by name — so adding a
command is adding a module with a ``Command`` class.

Usage: ``agree-manage [--settings MODULE] [-s KEY=VALUE ...] COMMAND [options]``; the global
options may also follow the command name.
"""

from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from agree.errors import AgreeError
from agree.management import commands as _commands_package
from agree.management.base import BaseCommand, CommandError, CommandParser, add_global_options

__all__ = ["BaseCommand", "CommandError", "call_command", "get_commands", "load_command", "main"]

PROG = "agree-manage"


def get_commands() -> list[str]:
    """The names of every available command, sorted.  A module ``transfer_leader`` is the
    command ``transfer-leader``."""
    return sorted(
        info.name.replace("_", "-")
        for info in pkgutil.iter_modules(_commands_package.__path__)
        if not info.name.startswith("_") and not info.ispkg
    )


def load_command(
    name: str, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> BaseCommand:
    """An instance of the command called ``name``; CommandError if there is none."""
    available = get_commands()
    if name not in available:
        close = difflib.get_close_matches(name, available, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise CommandError(
            f"unknown command {name!r}.{hint} Type '{PROG} help' for the list of commands."
        )
    module = importlib.import_module(f"{_commands_package.__name__}.{name.replace('-', '_')}")
    command_class = getattr(module, "Command", None)
    if not (isinstance(command_class, type) and issubclass(command_class, BaseCommand)):
        raise CommandError(f"module {module.__name__} defines no Command(BaseCommand) class")
    command: BaseCommand = command_class(stdout=stdout, stderr=stderr)
    return command


def call_command(
    name: str,
    *args: str,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    **options: Any,
) -> int | None:
    """Run command ``name`` from code.

    ``args`` are command-line words (``"--plan"``, ``"--database-url", url``); ``options`` set
    parsed option values by their destination name (``database_url=url``) and win over
    ``args``.  Failures raise :class:`CommandError`; the command's return value is returned.
    """
    command = load_command(name, stdout=stdout, stderr=stderr)
    parser = command.create_parser(PROG, name)
    known = {action.dest for action in parser._actions if action.dest != "help"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"unknown option(s) for {name}: {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
        )
    parsed = vars(parser.parse_args(list(args)))
    parsed.update(options)
    return command.execute(**parsed)


def _dispatcher_parser() -> CommandParser:
    parser = CommandParser(
        prog=PROG,
        add_help=False,
        called_from_command_line=True,
        usage=f"{PROG} [--settings MODULE] [-s KEY=VALUE ...] COMMAND [options]",
    )
    add_global_options(parser)
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("--version", action="store_true")
    return parser


def _split_global(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split argv into the global options before the command and the rest (command first)."""
    takes_value = {"--settings", "-s", "--set"}
    index = 0
    while index < len(argv):
        word = argv[index]
        if not word.startswith("-") or word == "-":
            break
        index += 2 if word in takes_value else 1
    return list(argv[:index]), list(argv[index:])


def _usage(out: TextIO) -> None:
    out.write(
        f"Usage: {PROG} [--settings MODULE] [-s KEY=VALUE ...] COMMAND [options]\n\n"
        f"Type '{PROG} help COMMAND' for help on a command.\n\nAvailable commands:\n"
    )
    for name in get_commands():
        try:
            summary = (load_command(name).help or "").strip().splitlines()[0]
        except (CommandError, IndexError):
            summary = ""
        out.write(f"    {name:<16} {summary}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``agree-manage`` console script.  Returns the process exit status."""
    try:
        return _main(argv)
    except BrokenPipeError:
        return _reader_gone()


def _main(argv: Sequence[str] | None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    # A console script's sys.path starts with its bin directory; a project's settings module
    # (--settings mysite.settings) is found from the directory the user runs it in, as with
    # Django's manage.py.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    prog = os.path.basename(sys.argv[0]) if argv is None and sys.argv[0] else PROG
    leading, rest = _split_global(words)
    try:
        global_options = vars(_dispatcher_parser().parse_args(leading))
    except SystemExit as exc:  # argparse already printed why
        return int(exc.code or 0)
    if global_options["version"]:
        from agree import __version__

        sys.stdout.write(f"agree {__version__}\n")
        return 0
    if not rest or global_options["help"] or rest[0] == "help":
        if rest[1:2] and rest[0] == "help":
            rest = [rest[1], "--help"]
        else:
            _usage(sys.stdout)
            return 0
    name, command_words = rest[0], rest[1:]
    try:
        command = load_command(name)
        parser = command.create_parser(prog, name, called_from_command_line=True)
        try:
            options = vars(parser.parse_args(command_words))
        except SystemExit as exc:
            return int(exc.code or 0)
        # Global options given before the command name count as if given after it.
        options["settings"] = options["settings"] or global_options["settings"]
        options["overrides"] = list(global_options["overrides"]) + list(options["overrides"])
        status = command.execute(**options)
    except CommandError as exc:
        sys.stderr.write(f"CommandError: {exc}\n")
        return exc.returncode
    except AgreeError as exc:
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        return 1
    return int(status or 0)


def _reader_gone() -> int:
    """The output's reader went away (``agree-manage schema | head``): stop quietly, as a
    command killed by SIGPIPE would, instead of a traceback.  Standard output is pointed at
    /dev/null so that flushing it at exit does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + 13  # the shell's status for a process ended by SIGPIPE
