"""``restore`` through ``call_command`` on a backup taken from a one-node cluster in this
process: it refuses a damaged file (checksum), a file whose schemas the settings' objects do not
extend (saying what differs), and a database that already holds a log (unless --force); what it
restores is what a node then serves.  The backup of a running three-node cluster and a new
cluster started from it: tests/cluster/test_backup.py."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import uuid
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest

from agree.backup import take_backup
from agree.errors import CorruptionError, NotLeaderError, SchemaMismatchError, StorageError
from agree.management import call_command
from agree.progress import format_amount
from agree.raft.ready import Role
from agree.wire.backup import decode_backup

MODELS = """
from agree import Replicated, command, query


class Ledger(Replicated):
    def __init__(self) -> None:
        self.tags: list[str] = []
        self.balance = 0

    @command
    def append(self, tag: str) -> int:
        self.tags.append(tag)
        return len(self.tags)

    @command
    def deposit(self, amount: int) -> int:
        self.balance += amount
        return self.balance

    @query
    def all_tags(self) -> list[str]:
        return list(self.tags)


class Retyped(Ledger):
    @command
    def deposit(self, amount: str) -> int:  # type: ignore[override]
        return self.balance


class Extended(Ledger):
    @query
    def get_balance(self) -> int:
        return self.balance


class Other(Replicated):
    @command
    def ping(self) -> None:
        pass
"""


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"backup_models_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield name
    finally:
        sys.modules.pop(name, None)


def node_options(tmp_path: Path, models: str, db: str, **objects: str) -> list[str]:
    """-s options for a one-node cluster on its own SQLite file, hosting ``objects``."""
    hosted = {name: f"{models}.{cls}" for name, cls in (objects or {"ledger": "Ledger"}).items()}
    return [
        "-s", "NODE_ID=n1",
        "-s", 'NODES={"n1": "http://127.0.0.1:1"}',
        "-s", f"DATABASE_URL=sqlite:///{tmp_path / db}",
        "-s", "OBJECTS=" + json.dumps(hosted),
        "-s", "AUTO_MIGRATE=true",
    ]  # fmt: skip


def settings_of(options: list[str]) -> object:
    from agree.conf.settings import load_settings, parse_overrides

    return load_settings(None, parse_overrides(options[1::2]))


async def _ledger_backup(options: list[str]) -> bytes:
    from agree.runtime.node import Node

    async with Node(settings_of(options)) as node:  # type: ignore[arg-type]
        await node.wait_ready(10)
        ledger = node.proxy("ledger")
        for tag in ("a", "b", "c"):
            await ledger.append(tag)
        await ledger.deposit(40)
        return await take_backup(node, 10)


@pytest.fixture
def backup_file(tmp_path: Path, models: str) -> Path:
    data = asyncio.run(_ledger_backup(node_options(tmp_path, models, "source.db")))
    path = tmp_path / "ledger.agree-backup"
    path.write_bytes(data)
    return path


async def _served(options: list[str]) -> tuple[list[str], int, int]:
    from agree.runtime.node import Node

    async with Node(settings_of(options)) as node:  # type: ignore[arg-type]
        await node.wait_ready(10)
        ledger = node.proxy("ledger")
        tags = await ledger.all_tags()
        balance = await ledger.deposit(2)
        return tags, balance, node.status().applied_index


def restore(path: Path, options: list[str], *extra: str, stderr: object = None) -> str:
    out = StringIO()
    call_command("restore", str(path), *options, *extra, stdout=out, stderr=stderr or StringIO())
    return out.getvalue()


def test_the_file_has_a_header_and_a_checksummed_body(backup_file: Path) -> None:
    backup = decode_backup(backup_file.read_bytes())
    header = backup.header
    assert backup_file.read_bytes().startswith(b"AGREE-BACKUP 1\n")
    assert header.node == "n1" and header.term >= 1 and header.index >= 4
    assert header.members == {"n1": {"url": "http://127.0.0.1:1", "role": "voter"}}
    assert sorted(header.objects["ledger"]["operations"]) == ["all_tags", "append", "deposit"]
    assert header.body_bytes == len(backup.body)


def test_restored_state_is_served_by_a_node_started_on_it(
    tmp_path: Path, models: str, backup_file: Path
) -> None:
    options = node_options(tmp_path, models, "restored.db")
    text = restore(backup_file, options)
    header = decode_backup(backup_file.read_bytes()).header
    assert f"Restored {backup_file} (index {header.index}, term {header.term}; ledger)" in text
    tags, balance, applied = asyncio.run(_served(options))
    assert tags == ["a", "b", "c"] and balance == 42
    assert applied > header.index  # it went on from the backup's index


def test_a_damaged_file_is_refused_by_its_checksum(
    tmp_path: Path, models: str, backup_file: Path
) -> None:
    data = bytearray(backup_file.read_bytes())
    data[-10] ^= 0xFF
    damaged = tmp_path / "damaged"
    damaged.write_bytes(bytes(data))
    options = node_options(tmp_path, models, "restored.db")
    with pytest.raises(CorruptionError, match="checksum mismatch"):
        restore(damaged, options)
    damaged.write_bytes(backup_file.read_bytes()[:-1])
    with pytest.raises(CorruptionError, match="truncated or altered"):
        restore(damaged, options)
    damaged.write_bytes(b"not a backup\n")
    with pytest.raises(CorruptionError, match="not an agree backup file"):
        restore(damaged, options)
    assert not (tmp_path / "restored.db").exists()  # nothing written


def test_another_schema_is_refused_saying_what_differs(
    tmp_path: Path, models: str, backup_file: Path
) -> None:
    retyped = node_options(tmp_path, models, "restored.db", ledger="Retyped")
    with pytest.raises(SchemaMismatchError) as info:
        restore(backup_file, retyped)
    assert "object 'ledger': 'deposit': parameter 'amount' type str here, int recorded" in str(
        info.value
    )
    elsewhere = node_options(tmp_path, models, "restored.db", other="Other")
    with pytest.raises(SchemaMismatchError, match=r"object 'ledger' \(class Ledger\) is in the "):
        restore(backup_file, elsewhere)
    assert not (tmp_path / "restored.db").exists()
    # Code that extends the backup's schema compatibly (a new query) takes the state.
    restore(backup_file, node_options(tmp_path, models, "restored.db", ledger="Extended"))


def test_a_database_with_a_log_is_refused_unless_forced(
    tmp_path: Path, models: str, backup_file: Path
) -> None:
    options = node_options(tmp_path, models, "restored.db")
    restore(backup_file, options)
    asyncio.run(_served(options))  # the node wrote to its log
    with pytest.raises(StorageError, match=r"already holds a log \(up to index \d+, term \d+\)"):
        restore(backup_file, options)
    assert "(its previous log replaced)" in restore(backup_file, options, "--force")
    tags, balance, _ = asyncio.run(_served(options))
    assert tags == ["a", "b", "c"] and balance == 42  # the deposit after the restore is gone


class FakeTTY(StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_only(tmp_path: Path, models: str, backup_file: Path) -> None:
    quiet = StringIO()
    restore(backup_file, node_options(tmp_path, models, "a.db"), stderr=quiet)
    assert quiet.getvalue() == ""
    tty = FakeTTY()
    restore(backup_file, node_options(tmp_path, models, "b.db"), stderr=tty)
    shown = tty.getvalue()
    size = format_amount(backup_file.stat().st_size, "bytes")
    assert f"\rrestore: {size} of {size} (100%)" in shown
    assert "\rrestore: writing " in shown
    assert re.search(r"\rrestore: restored *\n$", shown)


def test_only_the_leader_takes_a_backup() -> None:
    class Follower:
        def status(self) -> object:
            class S:
                role = Role.FOLLOWER
                leader_id = "n2"
                members = {"n2": "http://127.0.0.1:2"}

            return S()

    with pytest.raises(NotLeaderError) as info:
        asyncio.run(take_backup(Follower(), 1))  # type: ignore[arg-type]
    assert info.value.leader_url == "http://127.0.0.1:2"
