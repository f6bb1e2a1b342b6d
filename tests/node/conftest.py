"""Node-level tests run on virtual time (agree.testing.virtualtime): no test here waits on the
wall clock, and a run is decided by its seed.  A test that needs other threads to make progress
while the loop waits (the embedded handles block a thread on the loop) is marked
``wall_clock`` and runs on an ordinary loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

from agree.testing.virtualtime import VirtualTimeLoop


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "wall_clock: run on an ordinary event loop, in real time")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if item.get_closest_marker("wall_clock") is not None:
        return {"wall": asyncio.new_event_loop}
    return {"virtual": VirtualTimeLoop}
