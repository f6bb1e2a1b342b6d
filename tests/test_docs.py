"""The documentation stays true to the code: its links resolve, the ``agree.*`` names it cites
exist, and docs/batteries.md lists every operation of every battery with its kind."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

import agree.batteries
from agree.objects.schema import schema_of

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [REPO / "README.md", *DOCS]


def test_there_are_docs() -> None:
    names = {p.name for p in DOCS}
    assert {"concepts.md", "consistency.md", "exactly-once.md", "deterministic-commands.md",
            "batteries.md", "settings.md", "http-api.md", "quickstart.md", "operations.md",
            "security.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def _resolve(dotted: str) -> Any:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_cited_agree_names_exist(page: Path) -> None:
    for dotted in set(re.findall(r"`(agree(?:\.\w+)+)", page.read_text())):
        try:
            _resolve(dotted)
        except (ImportError, AttributeError):
            pytest.fail(f"{page.name} cites {dotted}, which does not exist")


def test_batteries_page_lists_every_operation_with_its_kind() -> None:
    text = (REPO / "docs" / "batteries.md").read_text()
    sections = re.split(r"^## `(\w+)`$", text, flags=re.MULTILINE)[1:]
    documented: dict[str, dict[str, str]] = {}
    for name, body in zip(sections[::2], sections[1::2], strict=True):
        ops: dict[str, str] = {}
        for first, kind in re.findall(r"^\| (`.+?) \| (command|query) \|", body, re.MULTILINE):
            for op in re.findall(r"`(\w+)\(", first):
                ops[op] = kind
        documented[name] = ops
    assert set(documented) == set(agree.batteries.__all__) - {"Lease"}
    for name, ops in documented.items():
        schema = schema_of(getattr(agree.batteries, name))
        actual = {op.name: op.kind for op in schema.operations.values()}
        assert ops == actual, name


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("docs_generate", REPO / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["settings.md", "http-api.md"])
def test_generated_reference_pages_are_up_to_date(name: str) -> None:
    render = _generator().PAGES[name]
    committed = (REPO / "docs" / name).read_text()
    assert committed == render(), (
        f"docs/{name} is out of date; regenerate it with: python docs/generate.py"
    )


def test_every_setting_and_every_route_is_in_the_generated_pages() -> None:
    from aiohttp.web import RouteDef

    from agree.conf.settings import Settings
    from agree.server.client_api import routes

    settings_page = (REPO / "docs" / "settings.md").read_text()
    for name in Settings.model_fields:
        assert f"\n## {name}\n" in settings_page, name
    api_page = (REPO / "docs" / "http-api.md").read_text()
    for route in routes:
        assert isinstance(route, RouteDef)
        assert f"\n## {route.method} {route.path}\n" in api_page, route.path


def test_the_generator_check_mode_fails_on_a_stale_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    generate = _generator()
    for name in generate.PAGES:
        (tmp_path / name).write_text("stale\n")
    monkeypatch.setattr(generate, "DOCS", tmp_path)
    assert generate.main(["--check"]) == 1
    assert "python docs/generate.py" in capsys.readouterr().err
    assert generate.main([]) == 0
    assert generate.main(["--check"]) == 0


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_cited_agree_manage_commands_and_options_exist(page: Path) -> None:
    """Every ``agree-manage [--settings X] COMMAND --option`` a page shows is a real command,
    and its options are ones that command (or the dispatcher) takes."""
    from agree.management import get_commands, load_command

    commands = set(get_commands())
    text = page.read_text()
    # In code: at the start of a line, after a backtick or a path ("/.venv/bin/").
    pattern = (
        r"(?m)(?:^\s*|[`/])agree-manage(?: --settings \S+)? ([a-z][a-z-]*)((?: [^\n`|#]*)?)"
    )
    for name, rest in re.findall(pattern, text):
        assert name in commands, f"{page.name} shows agree-manage {name}, which does not exist"
        parser = load_command(name).create_parser("agree-manage", name)
        known = {s for action in parser._actions for s in action.option_strings}
        for option in re.findall(r"(?<!\S)(--[a-z][a-z-]*)", rest):
            assert option in known, f"{page.name}: agree-manage {name} has no {option}"
