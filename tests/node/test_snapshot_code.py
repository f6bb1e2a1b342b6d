"""Snapshots carry state, not code: a restarted program runs its current code on it.

Each test runs real programs, one after the other, on the same data path: a first version
writes and stops (cleanly, or by dying), a second version -- a changed method body, a renamed
class, a renamed object -- starts on what the first left.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agree import Replicated, SchemaMismatchError, command
from agree.replica.host import Host
from agree.testing.models import Counter

CLASS = """
class @CLS@(Replicated):
    def __init__(self) -> None:
        self.value = 0
        self.seen: set[int] = set()

    @command
    def add(self, n: int) -> int:
        self.value += @STEP@ * n
        self.seen.add(n)
        return self.value

    @query
    def describe(self) -> str:
        return f"@VERSION@ {self.value} {sorted(self.seen)}"
"""

MAIN = """
import os
import sys

import agree
from agree import Replicated, command, query

@DEFINE@

path, action, snapshot_entries = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    handle = agree.wrap(
        @CLS@(), path=path, name="@NAME@", SNAPSHOT_ENTRIES=snapshot_entries, timeout=20
    )
except agree.AgreeError as exc:
    print(f"{type(exc).__name__}: {exc}")
    sys.exit(3)
if action in ("write", "write-and-die"):
    for n in (1, 2, 3):
        handle.add(n)
    if action == "write-and-die":
        os._exit(0)  # no clean stop: as if the process were killed
print(handle.describe())
handle.close()
"""


def _app(
    directory: Path,
    *,
    version: str,
    step: int = 1,
    cls: str = "Counter",
    name: str = "counter",
    in_module: bool = False,
) -> Path:
    """Write one version of the program (its class in __main__, or in models.py)."""
    define = CLASS.replace("@CLS@", cls).replace("@STEP@", str(step))
    define = define.replace("@VERSION@", version)
    if in_module:
        header = "from agree import Replicated, command, query\n"
        (directory / "models.py").write_text(header + define)
        define = f"from models import {cls}"
    script = directory / f"{version}.py"
    main = MAIN.replace("@DEFINE@", define).replace("@CLS@", cls).replace("@NAME@", name)
    script.write_text(main)
    return script


def _run(script: Path, data: Path, action: str, snapshot_entries: int = 10_000) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, script.name, str(data), action, str(snapshot_entries)],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 3), done.stderr
    return done.returncode, done.stdout.strip()


def test_after_a_snapshot_the_restarted_program_runs_its_new_method_bodies(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    v1 = _app(tmp_path, version="v1")
    # Snapshots every 2 entries, then the process dies: the restart restores a snapshot.
    assert _run(v1, data, "write-and-die", snapshot_entries=2) == (0, "")
    v2 = _app(tmp_path, version="v2")
    assert _run(v2, data, "read", snapshot_entries=2) == (0, "v2 6 [1, 2, 3]")


def test_a_clean_stop_leaves_nothing_to_replay_under_new_code(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _run(_app(tmp_path, version="v1"), data, "write") == (0, "v1 6 [1, 2, 3]")
    # v2's add multiplies by 100: had v1's commands been replayed under it, the value would
    # be 600.  The clean stop snapshotted them, so v2 only reads their state.
    v2 = _app(tmp_path, version="v2", step=100)
    assert _run(v2, data, "read") == (0, "v2 6 [1, 2, 3]")


def test_a_class_renamed_in_its_module_restores_the_snapshot(tmp_path: Path) -> None:
    data = tmp_path / "data"
    v1 = _app(tmp_path, version="v1", in_module=True)
    assert _run(v1, data, "write-and-die", snapshot_entries=2) == (0, "")
    v2 = _app(tmp_path, version="v2", cls="Tally", in_module=True)
    assert _run(v2, data, "read", snapshot_entries=2) == (0, "v2 6 [1, 2, 3]")


def test_a_renamed_object_is_refused_and_its_state_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _run(_app(tmp_path, version="v1"), data, "write")[0] == 0
    code, out = _run(_app(tmp_path, version="v2", name="tally"), data, "read")
    assert code == 3
    assert out.startswith("SchemaMismatchError:")
    assert "snapshot holds the state of 'counter' (class __main__.Counter)" in out
    assert "it hosts 'tally'" in out and "under its old name" in out
    # Nothing was dropped: under its old name the object is all there.
    assert _run(_app(tmp_path, version="v3"), data, "read") == (0, "v3 6 [1, 2, 3]")


def test_a_renamed_object_is_refused_when_only_the_log_holds_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _run(_app(tmp_path, version="v1"), data, "write-and-die") == (0, "")  # no snapshot
    code, out = _run(_app(tmp_path, version="v2", name="tally"), data, "read")
    assert code == 3
    assert out.startswith("SchemaMismatchError:")
    assert "the cluster records 'counter' (class Counter)" in out
    assert _run(_app(tmp_path, version="v3"), data, "read") == (0, "v3 6 [1, 2, 3]")


# -- the host, in process -------------------------------------------------------------------------


class Inventory(Replicated):
    """Version 1."""

    def __init__(self) -> None:
        self.stock: dict[str, int] = {}
        self.tags: set[str] = set()

    @command
    def put(self, sku: str, n: int) -> int:
        self.stock[sku] = self.stock.get(sku, 0) + n
        self.tags.add(sku[:1])
        return self.stock[sku]


class InventoryV2(Replicated):
    """Version 2: a new attribute, filled in for older state by ``__setstate__``."""

    def __init__(self) -> None:
        self.stock: dict[str, int] = {}
        self.tags: set[str] = set()
        self.reserved: dict[str, int] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("reserved", {sku: 0 for sku in self.stock})

    @command
    def put(self, sku: str, n: int) -> int:
        self.stock[sku] = self.stock.get(sku, 0) + n
        self.tags.add(sku[:1])
        return self.stock[sku] - self.reserved.get(sku, 0)


def _filled() -> Host:
    host = Host({"inv": Inventory(), "counter": Counter()}, node_id="n1")
    inv = host.objects["inv"]
    assert isinstance(inv, Inventory)
    for sku in ("apple", "pear", "plum"):
        inv.put(sku, 3)
    host.applied_index = 7
    return host


def test_a_restore_upgrades_older_state_through_setstate() -> None:
    blob = _filled().snapshot()
    host = Host({"inv": InventoryV2(), "counter": Counter(), "new": Counter()}, node_id="n1")
    untouched = host.objects["new"]
    host.restore(blob)
    inv = host.objects["inv"]
    assert isinstance(inv, InventoryV2)
    assert inv.stock == {"apple": 3, "pear": 3, "plum": 3} and inv.tags == {"a", "p"}
    assert inv.reserved == {"apple": 0, "pear": 0, "plum": 0}
    assert host.objects["new"] is untouched  # not in the snapshot: its initial state
    assert host.applied_index == 7


def test_a_snapshot_holding_an_object_this_node_does_not_host_is_refused() -> None:
    blob = _filled().snapshot()
    host = Host({"inv": Inventory()}, node_id="n1")
    before = host.objects["inv"]
    with pytest.raises(SchemaMismatchError) as info:
        host.restore(blob)
    message = str(info.value)
    assert "'counter' (class agree.testing.models.Counter)" in message
    assert "which this node does not host (it hosts 'inv')" in message
    assert host.objects == {"inv": before} and host.applied_index == 0  # nothing restored


def test_the_snapshot_is_stable_across_calls_and_configuration_order() -> None:
    host = _filled()
    blob = host.snapshot()
    assert host.snapshot() == blob
    reordered = Host(dict(reversed(list(host.objects.items()))), node_id="n1")
    reordered.applied_index = host.applied_index
    assert reordered.snapshot() == blob
