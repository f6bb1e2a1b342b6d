"""``Client``: the synchronous twin of :class:`AsyncClient`.

It runs a private event loop in a daemon thread and hands every call to it, so one connection
pool serves every thread that uses the client.  ``close()`` (or leaving the ``with`` block) closes
the pool and ends the thread.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import threading
from collections.abc import Coroutine, Sequence
from types import TracebackType
from typing import Any, TypeVar

from agree.client._async import DEFAULT_TIMEOUT, AsyncClient
from agree.errors import UnavailableError
from agree.objects.replicated import Consistency
from agree.runtime.proxy import Proxy, ThreadLoop

T = TypeVar("T")


class Client:
    """``with Client(["http://127.0.0.1:8001", ...]) as client: client.proxy("counter").add(1)``"""

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        self._async = AsyncClient(urls, token=token, timeout=timeout, ssl=ssl)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="agree-client", daemon=True
        )
        self._thread.start()
        self._runner = ThreadLoop(self._loop)
        self._closed = False

    def __repr__(self) -> str:
        return f"<Client{repr(self._async).removeprefix('<AsyncClient')}"

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise UnavailableError("this client is closed")
        return self._runner.run(coro)

    @property
    def client_id(self) -> str:
        return self._async.client_id

    def proxy(
        self,
        name: str,
        cls: type | None = None,
        *,
        consistency: Consistency | str | None = None,
        timeout: float | None = None,
    ) -> Proxy:
        """A blocking handle on the object ``name`` (see :meth:`AsyncClient.proxy`)."""
        if cls is None or self._async._schemas is None:
            self._run(self._async.schemas())
        inner = self._async.proxy(name, cls, consistency=consistency, timeout=timeout)
        return Proxy(self._runner, inner)

    def schemas(self) -> dict[str, dict[str, Any]]:
        return self._run(self._async.schemas(refresh=True))

    def status(self) -> dict[str, Any]:
        return self._run(self._async.status())

    def members(self) -> dict[str, dict[str, str]]:
        return self._run(self._async.members())

    def members_by_group(self) -> dict[str, Any]:
        return self._run(self._async.members_by_group())

    def add_member(
        self,
        node_id: str,
        url: str,
        *,
        learner: bool = False,
        timeout: float | None = None,
        group: str | None = None,
    ) -> dict[str, dict[str, str]]:
        return self._run(
            self._async.add_member(node_id, url, learner=learner, timeout=timeout, group=group)
        )

    def remove_member(
        self, node_id: str, *, timeout: float | None = None, group: str | None = None
    ) -> dict[str, dict[str, str]]:
        return self._run(self._async.remove_member(node_id, timeout=timeout, group=group))

    def change_members(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        timeout: float | None,
        group: str | None,
    ) -> dict[str, Any]:
        return self._run(self._async.change_members(method, path, body, timeout, group))

    def transfer_leader(
        self, node_id: str, *, timeout: float | None = None, group: str | None = None
    ) -> None:
        self._run(self._async.transfer_leader(node_id, timeout=timeout, group=group))

    def snapshot(self, *, timeout: float | None = None) -> int:
        return self._run(self._async.snapshot(timeout=timeout))

    def backup(self, *, timeout: float | None = None) -> bytes:
        return self._run(self._async.backup(timeout=timeout))

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._runner.run(self._async.close(), timeout=10)
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
