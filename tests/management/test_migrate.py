"""``agree-manage migrate``: upgrade, --plan, --check, and where the database URL comes from."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest

from agree.errors import ConfigurationError
from agree.management import CommandError, call_command, main
from agree.storage import migrate, open_store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


def test_migrate_upgrades_to_head(url: str) -> None:
    out = StringIO()
    call_command("migrate", "--database-url", url, stdout=out)
    assert "Applied 0001" in out.getvalue()
    assert migrate.check(url)
    open_store(url).close()  # a node now opens it without auto-migrating
    out = StringIO()
    call_command("migrate", database_url=url, stdout=out)
    assert "No migrations to apply" in out.getvalue()


def test_plan_lists_pending_revisions_and_changes_nothing(url: str) -> None:
    out = StringIO()
    call_command("migrate", "--plan", database_url=url, stdout=out)
    assert "Pending migrations" in out.getvalue() and "0001" in out.getvalue()
    assert migrate.current(url) is None
    call_command("migrate", database_url=url, stdout=StringIO())
    out = StringIO()
    call_command("migrate", "--plan", database_url=url, stdout=out)
    assert "No migrations to apply" in out.getvalue()


def test_check_fails_until_migrated(url: str) -> None:
    with pytest.raises(CommandError) as caught:
        call_command("migrate", "--check", database_url=url, stdout=StringIO())
    assert caught.value.returncode == 1
    assert "pending: 0001" in str(caught.value)
    assert "agree-manage migrate --database-url" in str(caught.value)
    assert migrate.current(url) is None
    call_command("migrate", database_url=url, stdout=StringIO())
    out = StringIO()
    call_command("migrate", "--check", database_url=url, stdout=out)
    assert "is at the newest revision" in out.getvalue()


def test_check_and_plan_exclude_each_other(sqlite_url: str) -> None:
    with pytest.raises(CommandError, match="not allowed with"):
        call_command("migrate", "--check", "--plan", database_url=sqlite_url)


def test_main_exit_statuses(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--database-url", sqlite_url, "--check"]) == 1
    assert "CommandError" in capsys.readouterr().err
    assert main(["migrate", "--database-url", sqlite_url]) == 0
    assert main(["migrate", "--database-url", sqlite_url, "--check"]) == 0


def test_without_a_url_or_settings_it_says_what_to_pass() -> None:
    with pytest.raises(CommandError, match="--database-url URL"):
        call_command("migrate", stdout=StringIO())


def test_the_url_may_come_from_settings_overrides(tmp_path: Path) -> None:
    template = f"sqlite:///{tmp_path}/{{node_id}}.db"
    out = StringIO()
    call_command("migrate", "-s", f"DATABASE_URL={template}", "--node", "n7", stdout=out)
    assert (tmp_path / "n7.db").is_file()
    assert migrate.check(f"sqlite:///{tmp_path}/n7.db")


def test_the_url_may_come_from_a_settings_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "proj"
    package.mkdir()
    (package / "mysettings.py").write_text(
        f"NODE_ID = 'n1'\nDATABASE_URL = 'sqlite:///{tmp_path}/db/{{node_id}}.db'\n"
    )
    monkeypatch.syspath_prepend(str(package))
    assert main(["--settings", "mysettings", "migrate"]) == 0
    assert migrate.check(f"sqlite:///{tmp_path}/db/n1.db")


def test_a_bad_settings_module_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no_such_settings_module"):
        call_command("migrate", settings="no_such_settings_module", stdout=StringIO())


def test_memory_has_nothing_to_migrate() -> None:
    with pytest.raises(CommandError, match="in-memory"):
        call_command("migrate", database_url="memory://", stdout=StringIO())
