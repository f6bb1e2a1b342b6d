"""Proxy handles: call a replicated object's methods as if it were local.

:class:`AsyncProxy` awaits each call; :class:`Proxy` is the synchronous twin used by
``agree.wrap`` (and later by the synchronous client).  Both validate a call against the
operation schema before it leaves the caller, convert arguments and results faithfully, and
re-raise a method's exception with its own type.  A backend carries the JSON-level call to a
node; a handle knows nothing of where the node is.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from agree.calls import Call, CallKind, Outcome
from agree.codec import decode_error
from agree.errors import AgreeTimeoutError, ValidationError
from agree.replicated import Consistency
from agree.schema import ObjectSchema, Operation

if TYPE_CHECKING:
    from agree.node import Node

T = TypeVar("T")


class Backend(Protocol):
    async def call(self, call: Call, timeout: float | None) -> Outcome: ...

    def next_call_ids(self) -> tuple[str, int, int]: ...

    def call_done(self, seq: int) -> None: ...


class NodeBackend:
    """Calls go straight into a node running on the same event loop."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def call(self, call: Call, timeout: float | None) -> Outcome:
        # The proxy bound the call against the same schema: no need to validate it twice.
        return await self.node.call(call, timeout, validated=True)

    def next_call_ids(self) -> tuple[str, int, int]:
        return self.node.next_call_ids()

    def call_done(self, seq: int) -> None:
        self.node.call_done(seq)


def _consistency(value: Consistency | str | None) -> Consistency | None:
    if value is None:
        return None
    try:
        return Consistency(value)
    except ValueError:
        choices = ", ".join(c.value for c in Consistency)
        raise ValidationError(f"unknown consistency {value!r}; use one of {choices}") from None


class AsyncProxy:
    """``await proxy.method(*args)``; ``proxy.options(consistency=..., timeout=...)`` for a
    handle with per-call options; ``mutate``/``read`` are the generic verbs."""

    def __init__(
        self,
        backend: Backend,
        name: str,
        schema: ObjectSchema,
        *,
        consistency: Consistency | None = None,
        timeout: float | None = None,
    ) -> None:
        self._backend = backend
        self._name = name
        self._schema = schema
        self._consistency = consistency
        self._timeout = timeout

    @property
    def name(self) -> str:
        return self._name

    @property
    def schema(self) -> ObjectSchema:
        return self._schema

    def options(
        self, *, consistency: Consistency | str | None = None, timeout: float | None = None
    ) -> AsyncProxy:
        return AsyncProxy(
            self._backend,
            self._name,
            self._schema,
            consistency=_consistency(consistency) or self._consistency,
            timeout=self._timeout if timeout is None else timeout,
        )

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method.startswith("_"):
            raise AttributeError(method)
        op = self._schema.operation(method)

        async def invoke(*args: Any, **kwargs: Any) -> Any:
            return await self._invoke(op, args, kwargs, self._consistency)

        invoke.__name__ = method
        invoke.__doc__ = getattr(op, "doc", None)
        return invoke

    async def mutate(self, method: str, *args: Any, **kwargs: Any) -> Any:
        op = self._schema.operation(method)
        if op.kind != "command":
            raise ValidationError(f"{self._name}.{method} is a query; use read()")
        return await self._invoke(op, args, kwargs, None)

    async def read(
        self, method: str, consistency: Consistency | str | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        op = self._schema.operation(method)
        if op.kind != "query":
            raise ValidationError(f"{self._name}.{method} is a command; use mutate()")
        return await self._invoke(op, args, kwargs, _consistency(consistency) or self._consistency)

    async def _invoke(
        self,
        op: Operation,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        consistency: Consistency | None,
    ) -> Any:
        bound = op.bind(args, kwargs)  # validated here: nothing leaves a bad call
        jargs, jkwargs = bound.to_json()
        backend = self._backend
        if op.kind == "command":
            client_id, seq, ack = backend.next_call_ids()
            call = Call(
                object=self._name,
                method=op.name,
                kind=CallKind.COMMAND,
                args=jargs,
                kwargs=jkwargs,
                client_id=client_id,
                seq=seq,
                ack=ack,
            )
            try:
                outcome = await backend.call(call, self._timeout)
            finally:
                backend.call_done(seq)
        else:
            call = Call(
                object=self._name,
                method=op.name,
                kind=CallKind.QUERY,
                args=jargs,
                kwargs=jkwargs,
                consistency=consistency,
            )
            outcome = await backend.call(call, self._timeout)
        if outcome.error is not None:
            raise decode_error(outcome.error)
        return op.load_result(outcome.result)


class LoopRunner(Protocol):
    """Runs coroutines on an event loop that lives in another thread."""

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T: ...


class ThreadLoop:
    """An event loop in a daemon thread, for synchronous handles."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise AgreeTimeoutError("the call did not finish in time") from None


class Proxy:
    """The synchronous twin of :class:`AsyncProxy`: ``proxy.method(*args)`` blocks."""

    def __init__(self, runner: LoopRunner, inner: AsyncProxy) -> None:
        self._runner = runner
        self._inner = inner

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def schema(self) -> ObjectSchema:
        return self._inner.schema

    def options(
        self, *, consistency: Consistency | str | None = None, timeout: float | None = None
    ) -> Proxy:
        return Proxy(self._runner, self._inner.options(consistency=consistency, timeout=timeout))

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)
        async_method = getattr(self._inner, method)

        def invoke(*args: Any, **kwargs: Any) -> Any:
            return self._runner.run(async_method(*args, **kwargs))

        invoke.__name__ = method
        return invoke

    def mutate(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._runner.run(self._inner.mutate(method, *args, **kwargs))

    def read(
        self, method: str, consistency: Consistency | str | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        return self._runner.run(self._inner.read(method, consistency, *args, **kwargs))


__all__ = ["AsyncProxy", "Backend", "LoopRunner", "NodeBackend", "Proxy", "ThreadLoop"]
