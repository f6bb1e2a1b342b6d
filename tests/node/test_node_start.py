"""What a node refuses at start, and says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from agree import ConfigurationError, MigrationRequiredError, Node, Settings
from agree.testing.models import Counter


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(
        NODE_ID="n1",
        NODES={"n1": "http://127.0.0.1:7001"},
        DATABASE_URL=f"sqlite:///{tmp_path.as_posix()}/n1.db",
        **values,  # type: ignore[arg-type]
    )


async def test_a_database_not_at_head_is_refused_with_the_command_to_run(tmp_path: Path) -> None:
    node = Node(_settings(tmp_path), objects={"counter": Counter()})
    with pytest.raises(MigrationRequiredError, match="agree-manage migrate"):
        await node.start()


async def test_auto_migrate_starts_and_serves(tmp_path: Path) -> None:
    async with Node(_settings(tmp_path, AUTO_MIGRATE=True), objects={"counter": Counter()}) as n:
        await n.wait_ready(10)
        assert await n.proxy("counter").add(2) == 2


async def test_a_node_without_objects_is_a_configuration_error(tmp_path: Path) -> None:
    node = Node(_settings(tmp_path, AUTO_MIGRATE=True))
    with pytest.raises(ConfigurationError, match="OBJECTS") as info:
        await node.start()
    assert info.value.setting == "OBJECTS"


def test_a_bad_setting_names_itself() -> None:
    with pytest.raises(ConfigurationError) as info:
        Node(None, NODE_ID="n1", ELECTION_TICKS=0)
    assert info.value.setting == "ELECTION_TICKS"
