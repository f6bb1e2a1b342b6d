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

from agree.conf.settings import Settings
from agree.errors import ConfigurationError, DeadlockError, UnavailableError
from agree.objects.mutation import Mutation
from agree.objects.replicated import Replicated, describe_non_replicated
from agree.replica.subscriptions import Subscription
from agree.runtime.node import Node
from agree.runtime.proxy import LOOP_GRACE, Proxy, ThreadLoop
from agree.wire.calls import check_timeout

#: Ticks of a one-node cluster only drive its first election, so they can be short.
EMBEDDED_TICK_INTERVAL = 0.01

#: Seconds wrap() waits for the node to start and be ready, unless told otherwise.
EMBEDDED_START_TIMEOUT = 30.0


class Wrapped(Proxy):
    """A synchronous handle on a wrapped object; also a context manager that closes it."""

    def __init__(
        self, node: Node, name: str, loop: asyncio.AbstractEventLoop, thread: threading.Thread
    ) -> None:
        runner = ThreadLoop(loop)
        self._closed = False
        self._node = node
        self._object_name = name
        self._loop = loop
        self._thread = thread
        super().__init__(
            runner,
            runner.run(_proxy(node, name)),
            check=self._check_call,
            default_timeout=node.settings.REQUEST_TIMEOUT,
        )

    def _check_open(self) -> None:
        if self._closed:
            raise UnavailableError(f"the handle on {self._object_name!r} is closed")

    def _check_call(self) -> None:
        self._check_open()
        if self._node.holds_read_lock():
            raise DeadlockError(
                f"a call on {self._object_name!r} from inside its read_lock() would wait for"
                " the lock this thread holds (the node cannot apply or read until the block"
                " ends); make the call after the with block"
            )

    @property
    def node(self) -> Node:
        return self._node

    def subscribe(
        self, callback: Callable[[Mutation], Any], *, method: str | None = None
    ) -> Subscription:
        """Call ``callback(mutation)`` (in a worker thread) for each applied command."""

        self._check_open()

        async def go() -> Subscription:
            return self._node.subscribe(callback, self._object_name, method)

        return self._runner.run(go(), self._node.settings.REQUEST_TIMEOUT + LOOP_GRACE)

    @contextmanager
    def read_lock(self) -> Iterator[Any]:
        """The local object itself; commands and queries wait until the block ends, so keep
        it short, do not mutate the object, and make no call on this handle inside it (that
        is refused with DeadlockError)."""
        self._check_open()
        with self._node.read_lock(self._object_name) as obj:
            yield obj

    def snapshot(self) -> int:
        """Take a snapshot of the state now and compact the log; returns its index (a method
        of the object called ``snapshot`` stays callable as ``mutate``/``read("snapshot")``)."""
        self._check_call()
        return self._runner.run(self._node.snapshot(), self._node.settings.REQUEST_TIMEOUT)

    def close(self) -> None:
        if self._closed:
            return
        if self._node.holds_read_lock():  # the closing snapshot would wait for this thread
            raise DeadlockError(
                f"the handle on {self._object_name!r} cannot be closed from inside its"
                " read_lock(); close it after the with block"
            )
        self._closed = True
        try:
            self._runner.run(self._node.stop(), timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            if not self._thread.is_alive():  # else still stuck in a method: leave it be
                self._loop.close()

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
    timeout: float = EMBEDDED_START_TIMEOUT,
    configure_logging: bool = False,
    **settings: Any,
) -> Wrapped:
    """Replicate ``obj`` on a one-node cluster stored under ``path``; block until it is ready.

    ``settings`` override any setting (e.g. ``SNAPSHOT_ENTRIES=1000``).  ``timeout`` bounds
    the start, in seconds.  The node's records go to the ``agree`` loggers, configured by the
    program; with ``configure_logging=True`` they are written to stderr in ``LOG_FORMAT`` at
    ``LOG_LEVEL`` (:func:`agree.logs.configure`) -- a library never does that unasked.
    """
    if not isinstance(obj, Replicated):
        what = describe_non_replicated(obj)
        raise TypeError(
            f"wrap() needs an instance of an agree.Replicated subclass, got {what}; derive its"
            " class from Replicated, mark its methods @command/@query, and pass an instance"
        )
    seconds = check_timeout(timeout)
    timeout = EMBEDDED_START_TIMEOUT if seconds is None else seconds
    values: dict[str, Any] = {"TICK_INTERVAL": EMBEDDED_TICK_INTERVAL, **settings}
    node_settings = Settings.single_node(path, **values)
    if configure_logging:
        from agree import logs

        logs.configure(node_settings)
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigurationError(
            f"path {str(path)!r} is not a directory (a file is in the way); wrap() keeps its"
            " database in that directory: pass the path of a directory, or of one to create"
        ) from None
    node = Node(node_settings, objects={name: obj})
    loop = asyncio.new_event_loop()
    running = threading.Event()
    loop.call_soon(running.set)
    thread = threading.Thread(target=loop.run_forever, name="agree-embedded", daemon=True)
    thread.start()
    # A handle refuses calls on a loop that is not running: wait until this one is.
    running.wait(timeout)
    runner = ThreadLoop(loop)
    try:
        runner.run(_start(node, timeout), timeout=timeout + 5)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        if not thread.is_alive():
            loop.close()
        raise
    return Wrapped(node, name, loop, thread)


async def _start(node: Node, timeout: float) -> None:
    await node.start()
    try:
        await node.wait_ready(timeout)
    except BaseException:
        await node.stop()
        raise
