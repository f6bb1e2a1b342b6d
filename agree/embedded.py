"""The embedded one-liner: ``agree.wrap(obj)`` (go-agree's ``Wrap`` with an empty config).

A single-node cluster on a local SQLite file, run on an event loop in a background thread,
behind a synchronous proxy.  Wrapping again on the same path restores the state from the
database (snapshot + log), whatever initial object is passed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from agree.mutation import Mutation
from agree.node import Node
from agree.proxy import Proxy, ThreadLoop
from agree.replicated import Replicated
from agree.settings import Settings
from agree.subscriptions import Subscription

#: Ticks of a one-node cluster only drive its first election, so they can be short.
EMBEDDED_TICK_INTERVAL = 0.01


class Wrapped(Proxy):
    """A synchronous handle on a wrapped object; also a context manager that closes it."""

    def __init__(
        self, node: Node, name: str, loop: asyncio.AbstractEventLoop, thread: threading.Thread
    ) -> None:
        runner = ThreadLoop(loop)
        super().__init__(runner, runner.run(_proxy(node, name)))
        self._node = node
        self._object_name = name
        self._loop = loop
        self._thread = thread
        self._closed = False

    @property
    def node(self) -> Node:
        return self._node

    def subscribe(
        self, callback: Callable[[Mutation], Any], *, method: str | None = None
    ) -> Subscription:
        """Call ``callback(mutation)`` (in a worker thread) for each applied command."""

        async def go() -> Subscription:
            return self._node.subscribe(callback, self._object_name, method)

        return self._runner.run(go())

    @contextmanager
    def read_lock(self) -> Iterator[Any]:
        """The local object itself; commands wait until the block ends.  Do not mutate it."""
        with self._node.read_lock(self._object_name) as obj:
            yield obj

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._runner.run(self._node.stop(), timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)

    def __enter__(self) -> Wrapped:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _proxy(node: Node, name: str) -> Any:
    return node.proxy(name)


def wrap(
    obj: Replicated,
    path: str | Path = "agree-data",
    *,
    name: str = "default",
    timeout: float = 30.0,
    **settings: Any,
) -> Wrapped:
    """Replicate ``obj`` on a one-node cluster stored under ``path``; block until it is ready.

    ``settings`` override any setting (e.g. ``SNAPSHOT_ENTRIES=1000``).
    """
    values: dict[str, Any] = {"TICK_INTERVAL": EMBEDDED_TICK_INTERVAL, **settings}
    node_settings = Settings.single_node(path, **values)
    Path(path).mkdir(parents=True, exist_ok=True)
    node = Node(node_settings, objects={name: obj})
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="agree-embedded", daemon=True)
    thread.start()
    runner = ThreadLoop(loop)
    try:
        runner.run(_start(node, timeout), timeout=timeout + 5)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        raise
    return Wrapped(node, name, loop, thread)


async def _start(node: Node, timeout: float) -> None:
    await node.start()
    try:
        await node.wait_ready(timeout)
    except BaseException:
        await node.stop()
        raise
