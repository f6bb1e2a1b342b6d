"""agree.wrap: the one-line embedded single-node cluster."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import agree
from agree.testing.models import Counter, KVStore


def test_wrap_calls_options_generic_verbs_and_restore(tmp_path: Path) -> None:
    with agree.wrap(Counter(), path=tmp_path) as c:
        assert c.add(5) == 5
        assert c.get() == 5
        assert c.options(consistency=agree.Consistency.ANY, timeout=2.0).get() == 5
        assert c.mutate("add", 2) == 7
        assert c.read("get", agree.Consistency.ANY) == 7
        assert c.read("peek") == 7
        with pytest.raises(ValueError):
            c.add(-1)
        with c.read_lock() as obj:
            assert obj.value == 7
    # Wrapping again on the same path restores the state, whatever object is passed.
    with agree.wrap(Counter(), path=tmp_path) as c:
        assert c.get() == 7


def test_wrap_subscribe_receives_mutations(tmp_path: Path) -> None:
    seen: list[agree.Mutation] = []
    done = threading.Event()

    def on_mutation(m: agree.Mutation) -> None:
        seen.append(m)
        if len(seen) == 2:
            done.set()

    with agree.wrap(KVStore(), path=tmp_path) as kv:
        sub = kv.subscribe(on_mutation, method="set")
        kv.set("a", "1")
        kv.delete("a")
        kv.set("b", "2")
        assert done.wait(5)
        sub.cancel()
    assert [(m.method, m.args) for m in seen] == [("set", ("a", "1")), ("set", ("b", "2"))]
    assert seen[0].index < seen[1].index
    assert seen[0].object == "default" and seen[0].error is None


def test_wrap_restores_after_snapshots(tmp_path: Path) -> None:
    with agree.wrap(Counter(), path=tmp_path, SNAPSHOT_ENTRIES=10) as c:
        for _ in range(35):
            c.add(1)
        assert c.node.status().applied_index >= 35
    with agree.wrap(Counter(), path=tmp_path, SNAPSHOT_ENTRIES=10) as c:
        assert c.get() == 35
        assert c.add(1) == 36
