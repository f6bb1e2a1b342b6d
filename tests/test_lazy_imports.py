"""``import agree`` (and the wire formats and the in-memory transport) load neither SQLAlchemy,
Alembic nor aiohttp: those come with the runtime, on first use."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "alembic", "aiohttp")


def loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, env=os.environ
    )
    loaded: list[str] = ast.literal_eval(out.stdout.strip())
    return loaded


@pytest.mark.parametrize(
    "code",
    [
        "import agree",
        "import agree.wire",
        "import agree.transport",
        "import agree.errors",
        "import agree.batteries",
        "import agree.testing",
    ],
)
def test_importing_loads_no_runtime_dependency(code: str) -> None:
    assert loaded_after(code) == []


def test_the_lazy_names_load_on_first_use() -> None:
    assert "sqlalchemy" in loaded_after("import agree\nagree.Node")
    assert "aiohttp" in loaded_after("import agree.transport.aiohttp")
    assert "sqlalchemy" in loaded_after("import agree.testing\nagree.testing.MemoryCluster")
