"""``startproject``, ``check`` and ``migrate --all`` on a generated project, without starting
any node: the project is importable as generated, ``check`` reports what is missing with ids and
hints and exits non-zero on errors only."""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest

from agree.conf.settings import load_cluster_settings
from agree.management import CommandError, call_command


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A fresh project made by startproject, importable under a name of its own."""
    name = f"proj_{uuid.uuid4().hex[:8]}"
    monkeypatch.chdir(tmp_path)
    out = StringIO()
    call_command("startproject", name, stdout=out)
    assert f"Created project {name}" in out.getvalue()
    root = tmp_path / name
    monkeypatch.syspath_prepend(str(root))
    try:
        yield name, root
    finally:
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]


def findings(module: str, *args: str) -> tuple[list[dict[str, str]], bool]:
    out = StringIO()
    failed = False
    try:
        call_command("check", "--json", "--settings", module, *args, stdout=out)
    except CommandError:
        failed = True
    return json.loads(out.getvalue()), failed


def test_startproject_makes_a_project_that_loads(project: tuple[str, Path]) -> None:
    name, root = project
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "manage.py",
        f"{name}/__init__.py",
        f"{name}/models.py",
        f"{name}/settings.py",
    ]
    manage = (root / "manage.py").read_text()
    assert f'os.environ.setdefault("AGREE_SETTINGS_MODULE", "{name}.settings")' in manage
    settings = load_cluster_settings(f"{name}.settings")
    assert sorted(settings.NODES) == ["n1", "n2", "n3"]
    ports = {url.rsplit(":", 1)[1] for url in settings.NODES.values()}
    assert len(ports) == 3
    assert settings.CLUSTER_SECRET is not None and len(settings.CLUSTER_SECRET) >= 32
    assert settings.replace(NODE_ID="n2").sqlite_path() == root / "data" / "n2.db"
    counter = importlib.import_module(f"{name}.models").Counter()
    assert counter.add(2) == 2
    # Two projects get different secrets and (very likely) different ports.
    other = StringIO()
    call_command("startproject", name + "b", stdout=other)
    other_settings = (Path(name + "b") / (name + "b") / "settings.py").read_text()
    assert settings.CLUSTER_SECRET not in other_settings


def test_startproject_refuses_bad_names_and_existing_directories(
    project: tuple[str, Path], tmp_path: Path
) -> None:
    name, _ = project
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(CommandError, match="already exists and is not empty"):
        call_command("startproject", f"{name}_new", str(taken))
    with pytest.raises(CommandError, match="not a valid project name"):
        call_command("startproject", "my-site")
    with pytest.raises(CommandError, match="conflicts with the name of an existing Python module"):
        call_command("startproject", "json")


def test_check_then_migrate_all_then_check(project: tuple[str, Path]) -> None:
    name, root = project
    module = f"{name}.settings"
    found, failed = findings(module)
    # A new project's nodes create their databases at start (AUTO_MIGRATE): its first check
    # passes, so "check && devcluster" as startproject suggests works; it still says so.
    assert not failed
    assert [(f["id"], f["object"]) for f in found] == [
        ("agree.W022", "n1"),
        ("agree.W022", "n2"),
        ("agree.W022", "n3"),
    ]
    # The hint is a command to type as it is: with the settings the check was given.
    assert [f["hint"] for f in found] == [
        f"or create it now: agree-manage --settings {module} migrate --node {n}"
        for n in ("n1", "n2", "n3")
    ]
    assert not (root / "data").exists()  # the check created nothing
    out = StringIO()
    call_command("migrate", "--all", "--settings", module, stdout=out)
    assert out.getvalue().count("Applied 0001") == 3
    found, failed = findings(module)
    assert (found, failed) == ([], False)
    out = StringIO()
    call_command("check", "--settings", module, stdout=out)
    assert out.getvalue() == "System check identified no issues.\n"


def test_migrate_node_of_a_several_node_settings_module(project: tuple[str, Path]) -> None:
    """The settings leave NODE_ID out (a project's settings serve every node): --node names the
    node whose database to migrate."""
    name, root = project
    call_command("migrate", "--node", "n2", "--settings", f"{name}.settings", stdout=StringIO())
    assert sorted(p.name for p in (root / "data").glob("*.db")) == ["n2.db"]


def test_check_findings_have_ids_and_hints(project: tuple[str, Path], tmp_path: Path) -> None:
    name, _ = project
    module = f"{name}.settings"
    found, failed = findings(
        module,
        "--no-database",
        "-s",
        "CLUSTER_SECRET=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "-s",
        "OBJECTS=" + json.dumps({"counter": f"{name}.models.Counter", "gone": f"{name}.x.Gone"}),
        "-s",
        f"TLS_CERT={tmp_path}/missing.pem",
        "-s",
        f"TLS_KEY={tmp_path}/missing.key",
    )
    ids = sorted(f["id"] for f in found)
    assert ids == ["agree.E010", "agree.E030", "agree.E030", "agree.W041"]
    assert failed
    assert all(f["hint"] for f in found)
    assert "aaaa" not in json.dumps(found)  # secrets are never shown

    found, failed = findings(module, "--no-database", "-s", "CLUSTER_SECRET=short-but-16-chars")
    assert [f["id"] for f in found] == ["agree.W040"]
    assert not failed  # warnings alone do not fail the check

    found, failed = findings(module, "--no-database", "-s", "OBJECTS={}")
    assert [f["id"] for f in found] == ["agree.W010"] and not failed

    found, failed = findings(module, "-s", "NODES=[1]")
    assert [f["id"] for f in found] == ["agree.E001"] and failed


def test_check_database_findings(project: tuple[str, Path], tmp_path: Path) -> None:
    name, _ = project
    module = f"{name}.settings"
    shared = f"DATABASE_URL=sqlite:///{tmp_path}/one.db"
    found, failed = findings(module, "-s", shared, "-s", "AUTO_MIGRATE=true")
    assert [f["id"] for f in found] == ["agree.W022", "agree.W023", "agree.W023"]
    assert not failed
    call_command("migrate", "--all", "--settings", module, "-s", shared, stdout=StringIO())
    found, _ = findings(module, "-s", shared)
    assert [f["id"] for f in found] == ["agree.W023", "agree.W023"]
    found, failed = findings(module, "-s", "DATABASE_URL=postgresql+psycopg://u@127.0.0.1:1/x")
    assert [f["id"] for f in found] == ["agree.E020"] * 3 and failed
