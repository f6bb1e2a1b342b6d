"""The shape of an ``agree-manage`` command (after Django's management commands).

A command is a :class:`BaseCommand` subclass named ``Command`` in its own module under
:mod:`agree.management.commands`; the module name is the command name.  It declares ``help``,
adds its options in :meth:`BaseCommand.add_arguments`, does its work in
:meth:`BaseCommand.handle`, writes through ``self.stdout``/``self.stderr`` (so tests can capture
output with ``call_command(..., stdout=StringIO())``), and reports failure by raising
:class:`CommandError`, which lives here (as Django's does).

Every command also accepts the global options ``--settings MODULE`` and ``-s KEY=VALUE``;
:meth:`BaseCommand.load_settings` turns them into the node's :class:`~agree.conf.settings.Settings`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from agree.errors import AgreeError

if TYPE_CHECKING:
    from agree.conf.settings import Settings

__all__ = ["BaseCommand", "CommandError", "CommandParser", "OutputWrapper"]


class CommandError(AgreeError):
    """An ``agree-manage`` command could not do its job; the message tells the user why.

    ``returncode`` is the process exit status ``agree-manage`` ends with.
    """

    code = "command"

    def __init__(self, message: str, *, returncode: int = 1) -> None:
        super().__init__(message)
        self.returncode = returncode


class OutputWrapper:
    """A text stream whose ``write`` ends each message with a newline unless it already does."""

    def __init__(self, stream: TextIO, ending: str = "\n") -> None:
        self.stream = stream
        self.ending = ending

    def write(self, message: str = "", ending: str | None = None) -> None:
        ending = self.ending if ending is None else ending
        if ending and not message.endswith(ending):
            message += ending
        self.stream.write(message)

    def flush(self) -> None:
        self.stream.flush()


class CommandParser(argparse.ArgumentParser):
    """An argument parser that raises :class:`CommandError` instead of exiting when a command
    is called from code (``call_command``), so a bad option never ends the caller's process."""

    def __init__(self, *, called_from_command_line: bool = False, **kwargs: Any) -> None:
        self.called_from_command_line = called_from_command_line
        super().__init__(**kwargs)

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            super().error(message)
        raise CommandError(f"error: {message}", returncode=2)


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """``--settings`` and ``-s``: accepted by the dispatcher and by every command."""
    parser.add_argument(
        "--settings",
        metavar="MODULE",
        default=None,
        help="the settings module, e.g. mysite.settings (default: $AGREE_SETTINGS_MODULE)",
    )
    parser.add_argument(
        "-s",
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one setting (repeatable); VALUE is JSON or plain text",
    )


class BaseCommand:
    """Subclass as ``Command`` in ``agree/management/commands/<name>.py``."""

    help: str = ""

    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.stdout = OutputWrapper(stdout if stdout is not None else sys.stdout)
        self.stderr = OutputWrapper(stderr if stderr is not None else sys.stderr)

    def create_parser(
        self, prog_name: str, subcommand: str, *, called_from_command_line: bool = False
    ) -> CommandParser:
        parser = CommandParser(
            prog=f"{os.path.basename(prog_name)} {subcommand}",
            description=self.help or None,
            called_from_command_line=called_from_command_line,
        )
        add_global_options(parser)
        self.add_arguments(parser)
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        """Add this command's own options.  The default adds none."""

    def handle(self, **options: Any) -> int | None:
        """Do the work.  Return None (success) or an exit status; raise CommandError to fail."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle()")

    def execute(self, **options: Any) -> int | None:
        return self.handle(**options)

    # -- settings --------------------------------------------------------------------------

    @staticmethod
    def settings_given(options: dict[str, Any]) -> bool:
        """Whether the user named any settings: --settings, $AGREE_SETTINGS_MODULE or -s."""
        from agree.conf.settings import SETTINGS_MODULE_ENV

        return bool(
            options.get("settings")
            or os.environ.get(SETTINGS_MODULE_ENV, "").strip()
            or options.get("overrides")
        )

    @staticmethod
    def invocation(options: dict[str, Any]) -> str:
        """How the user runs agree-manage with these settings, for commands given in hints:
        ``python manage.py`` from a project's manage.py, else ``agree-manage`` (with the
        ``--settings`` given, if any)."""
        script = sys.argv[0] if sys.argv else ""
        if os.path.basename(script) == "manage.py":
            return f"python {script}"
        named = options.get("settings")
        return f"agree-manage --settings {named}" if named else "agree-manage"

    @staticmethod
    def load_settings(options: dict[str, Any]) -> Settings:
        """The node's settings from --settings / $AGREE_SETTINGS_MODULE and -s overrides."""
        from agree.conf.settings import load_settings, parse_overrides

        overrides: Sequence[str] = options.get("overrides") or ()
        return load_settings(options.get("settings"), parse_overrides(overrides))

    @staticmethod
    def load_cluster_settings(options: dict[str, Any]) -> Settings:
        """The settings for a command that acts on the whole cluster rather than as one node:
        NODE_ID may be left out with several NODES (the first member is assumed)."""
        from agree.conf.settings import load_cluster_settings, parse_overrides

        overrides: Sequence[str] = options.get("overrides") or ()
        return load_cluster_settings(options.get("settings"), parse_overrides(overrides))
