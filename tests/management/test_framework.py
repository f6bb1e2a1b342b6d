"""The agree-manage framework: discovery by module name, global options, call_command, exit
statuses and messages."""

from __future__ import annotations

import sys
import textwrap
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from agree.errors import AgreeError
from agree.management import CommandError, call_command, get_commands, load_command, main
from agree.management import commands as commands_package
from agree.management.base import BaseCommand, CommandParser


class Echo(BaseCommand):
    help = "Echo the options it received.\nSecond line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("words", nargs="*")
        parser.add_argument("--loud", action="store_true")
        parser.add_argument("--fail", default=None)

    def handle(self, **options: Any) -> int | None:
        if options["fail"]:
            raise CommandError(f"asked to fail: {options['fail']}", returncode=3)
        text = " ".join(options["words"])
        self.stdout.write(text.upper() if options["loud"] else text)
        self.stderr.write(f"settings={options['settings']} overrides={options['overrides']}")
        return None


@pytest.fixture
def echo_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command module 'echo' added the way any command is: a module in the package."""
    folder = tmp_path / "extra_commands"
    folder.mkdir()
    (folder / "echo.py").write_text(
        textwrap.dedent(
            """
            from tests_management_echo import Echo as Command  # noqa: F401
            """
        )
    )
    module = type(sys)("tests_management_echo")
    module.Echo = Echo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tests_management_echo", module)
    monkeypatch.setattr(commands_package, "__path__", [*commands_package.__path__, str(folder)])
    monkeypatch.delitem(sys.modules, "agree.management.commands.echo", raising=False)


def test_commands_are_discovered_by_module_name(echo_command: None) -> None:
    assert {"echo", "migrate"} <= set(get_commands())
    assert isinstance(load_command("echo"), Echo)


def test_call_command_parses_words_and_options(echo_command: None) -> None:
    out, err = StringIO(), StringIO()
    call_command("echo", "a", "b", "--loud", stdout=out, stderr=err)
    assert out.getvalue() == "A B\n"
    out = StringIO()
    call_command("echo", "x", loud=False, stdout=out, stderr=err)
    assert out.getvalue() == "x\n"


def test_call_command_refuses_unknown_options(echo_command: None) -> None:
    with pytest.raises(TypeError, match="nonsense"):
        call_command("echo", nonsense=True)


def test_a_bad_option_from_code_raises_instead_of_exiting(echo_command: None) -> None:
    with pytest.raises(CommandError, match="unrecognized arguments"):
        call_command("echo", "--no-such-option", stdout=StringIO())


def test_an_unknown_command_suggests_the_close_one() -> None:
    with pytest.raises(CommandError, match="Did you mean 'migrate'"):
        call_command("migrat")


def test_main_runs_a_command_with_global_options_before_and_after(
    echo_command: None, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["--settings", "my.settings", "-s", "A=1", "echo", "hi", "-s", "B=2"])
    assert status == 0
    captured = capsys.readouterr()
    assert captured.out == "hi\n"
    assert "settings=my.settings overrides=['A=1', 'B=2']" in captured.err


def test_main_reports_a_command_error_with_its_status(
    echo_command: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["echo", "--fail", "because"]) == 3
    assert capsys.readouterr().err == "CommandError: asked to fail: because\n"


def test_main_reports_other_agree_errors_without_a_traceback(
    echo_command: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Echo, **options: Any) -> None:
        raise AgreeError("the database is on fire")

    monkeypatch.setattr(Echo, "handle", broken)
    assert main(["echo"]) == 1
    assert capsys.readouterr().err == "AgreeError: the database is on fire\n"


def test_main_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nosuchcommand"]) == 1
    assert "unknown command 'nosuchcommand'" in capsys.readouterr().err


def test_help_lists_the_commands_with_their_first_help_line(
    echo_command: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "echo" in out and "Echo the options it received." in out
    assert "Second line" not in out
    assert "migrate" in out
    assert main(["help"]) == 0
    assert "Available commands" in capsys.readouterr().out


def test_help_on_one_command(echo_command: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["help", "echo"]) == 0
    out = capsys.readouterr().out
    assert "agree-manage echo" in out and "--loud" in out and "--settings" in out


def test_a_bad_option_on_the_command_line_exits_2(
    echo_command: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["echo", "--no-such-option"]) == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import agree

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"agree {agree.__version__}\n"


def test_a_closed_output_pipe_ends_the_command_quietly() -> None:
    """``agree-manage help | head -0``: the reader is gone before anything is written."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "agree.management", "help"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    assert proc.returncode == 141
