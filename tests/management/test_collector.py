"""The node process tunes the garbage collector once it has started (runnode)."""

from __future__ import annotations

import gc

from agree.management.commands.runnode import GC_YOUNG_THRESHOLD, tune_collector


def test_the_node_process_collects_less_often_and_never_rescans_its_start() -> None:
    threshold = gc.get_threshold()
    try:
        tune_collector()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *threshold[1:])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
