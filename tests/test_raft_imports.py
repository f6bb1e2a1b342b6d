"""The Raft core imports only the standard library (DESIGN.md, layer 1)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import agree.raft

RAFT_DIR = Path(agree.raft.__file__).parent
# agree.errors is itself stdlib-only (checked below), so the core may share the error tree.
ALLOWED_OWN = ("agree.raft", "agree.errors")
FORBIDDEN_STDLIB = {"asyncio", "socket", "time", "threading", "selectors", "subprocess"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def _check(path: Path) -> list[str]:
    bad = []
    for name in _imports(path):
        top = name.split(".")[0]
        if name.startswith(ALLOWED_OWN):
            continue
        if top not in sys.stdlib_module_names or top in FORBIDDEN_STDLIB:
            bad.append(f"{path.name}: {name}")
    return bad


def test_raft_core_imports_only_stdlib() -> None:
    files = sorted(RAFT_DIR.rglob("*.py"))
    assert files, "agree.raft has no modules?"
    bad = [b for f in files for b in _check(f)]
    assert bad == []


def test_error_module_is_stdlib_only() -> None:
    import agree.errors

    assert _check(Path(agree.errors.__file__)) == []


def test_a_forbidden_import_is_caught(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import asyncio\nfrom sqlalchemy import select\nimport random\n")
    assert _check(probe) == ["probe.py: asyncio", "probe.py: sqlalchemy"]
