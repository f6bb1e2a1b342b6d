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
import functools
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

from agree.errors import (
    AgreeTimeoutError,
    DeadlockError,
    MethodNotFoundError,
    OutcomeUnknownError,
    UnavailableError,
    UnknownMethodError,
    ValidationError,
)
from agree.objects.replicated import Consistency
from agree.objects.schema import ObjectSchema, Operation
from agree.wire.calls import Call, CallKind, Outcome, check_timeout
from agree.wire.codec import decode_error

T = TypeVar("T")


class Backend(Protocol):
    def admit(self) -> Awaitable[None] | None:
        """None: a new call may start its work now; else what to await first (a node bounds
        the calls started per turn of its loop, agree.runtime.intake)."""

    async def call(self, call: Call, timeout: float | None) -> Outcome: ...

    def next_call_ids(self) -> tuple[str, int, int]: ...

    def call_done(self, seq: int) -> None: ...


class CallSession:
    """A caller's session: its client id, the sequence number of each command it issues, and
    the acknowledged low-water mark (every seq below it has been answered), which lets the
    replicas forget the results they keep for retries (Raft dissertation §6.3)."""

    def __init__(self, client_id: str | None = None) -> None:
        self.client_id = client_id or uuid.uuid4().hex
        self._seq = 0
        self._outstanding: set[int] = set()
        self._low = 1  # the lowest seq not yet done: every seq below it is answered

    def next_call_ids(self) -> tuple[str, int, int]:
        """(client id, seq, ack) for a new command."""
        self._seq += 1
        self._outstanding.add(self._seq)
        return self.client_id, self._seq, self._low - 1

    def call_done(self, seq: int) -> None:
        outstanding = self._outstanding
        outstanding.discard(seq)
        # Amortised O(1): the low-water mark only moves forward.
        low, top = self._low, self._seq
        while low <= top and low not in outstanding:
            low += 1
        self._low = low


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
        self._timeout = check_timeout(timeout)  # None: the node's REQUEST_TIMEOUT

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return _handle_repr(self, self._backend)

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
            timeout=self._timeout if timeout is None else check_timeout(timeout),
        )

    def __getattr__(self, method: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        if method.startswith("_"):
            raise AttributeError(method)
        bound = self._method(self._operation(method))
        # Kept on the instance: the next ``proxy.method`` is a plain attribute, not a lookup
        # and a new closure per call.
        self.__dict__[method] = bound
        return bound

    def _operation(self, method: str) -> Operation:
        try:
            return self._schema.operation(method)
        except UnknownMethodError as exc:
            # Also an AttributeError, so that hasattr() and getattr(..., default) work.
            raise MethodNotFoundError(str(exc)) from None

    def _method(self, op: Operation) -> Callable[..., Coroutine[Any, Any, Any]]:
        # _invoke itself with the operation bound, rather than a coroutine function awaiting
        # it: one coroutine less on every call (still a coroutine function to inspect).
        invoke = functools.partial(self._invoke, op, self._consistency)
        invoke.__name__ = op.name  # type: ignore[attr-defined]
        invoke.__doc__ = getattr(op, "doc", None)
        return invoke

    async def mutate(self, method: str, *args: Any, **kwargs: Any) -> Any:
        op = self._schema.operation(method)
        if op.kind != "command":
            raise ValidationError(f"{self._name}.{method} is a query; use read()")
        return await self._invoke(op, None, *args, **kwargs)

    async def read(
        self, method: str, consistency: Consistency | str | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        op = self._schema.operation(method)
        if op.kind != "query":
            raise ValidationError(f"{self._name}.{method} is a command; use mutate()")
        return await self._invoke(
            op, _consistency(consistency) or self._consistency, *args, **kwargs
        )

    async def _invoke(
        self, op: Operation, consistency: Consistency | None, /, *args: Any, **kwargs: Any
    ) -> Any:
        backend = self._backend
        turn = backend.admit()
        if turn is not None:  # before binding: that costs as much as the rest, for big values
            await turn
        bound = op.bind(args, kwargs)  # validated here: nothing leaves a bad call
        jargs, jkwargs = bound.to_json()
        if op.kind == "command":
            client_id, seq, ack = backend.next_call_ids()
            # Positional, in Call's field order (consistency: None): one per command, and
            # matching eight keywords costs about twice the rest of the call.
            call = Call(
                self._name, op.name, CallKind.COMMAND, jargs, jkwargs, None, client_id, seq, ack
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


def _handle_repr(handle: AsyncProxy | Proxy, backend: Backend) -> str:
    """``<AsyncProxy 'counter' (Counter) on node 'n1'>``, with the handle's own options."""
    inner = handle if isinstance(handle, AsyncProxy) else handle._inner
    options = ""
    if inner._consistency is not None:
        options += f", consistency={inner._consistency.value}"
    if inner._timeout is not None:
        options += f", timeout={inner._timeout}"
    qualname = inner._schema.qualname
    return f"<{type(handle).__name__} {inner._name!r} ({qualname}) on {backend!r}{options}>"


class LoopRunner(Protocol):
    """Runs coroutines on an event loop that lives in another thread."""

    def run(
        self,
        coro: Coroutine[Any, Any, T],
        timeout: float | None = None,
        *,
        on_timeout: Callable[[], BaseException] | None = None,
    ) -> T: ...


#: How long past a call's own deadline a synchronous caller still waits for the loop's answer
#: (which says precisely what happened) before it gives up on the loop itself (e.g. blocked by
#: a method that never returns).
LOOP_GRACE = 2.0


class ThreadLoop:
    """An event loop in a daemon thread, for synchronous handles."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def run(
        self,
        coro: Coroutine[Any, Any, T],
        timeout: float | None = None,
        *,
        on_timeout: Callable[[], BaseException] | None = None,
    ) -> T:
        """Run ``coro`` on the loop and wait at most ``timeout`` seconds for it; then cancel it
        and raise ``on_timeout()`` (default AgreeTimeoutError).  Refused at once where waiting
        could never end: on a loop that is not running, or from the loop's own thread."""
        try:
            self._check()
        except BaseException:
            coro.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            if future.done():
                # The coroutine's own timeout error (concurrent.futures.TimeoutError is the
                # builtin TimeoutError, so AgreeTimeoutError and OutcomeUnknownError land here
                # too): it keeps its type and message.
                raise
            future.cancel()
            if on_timeout is not None:
                raise on_timeout() from None
            raise AgreeTimeoutError("the call did not finish in time") from None

    def _check(self) -> None:
        if self.loop.is_closed() or not self.loop.is_running():
            raise UnavailableError("the event loop of this handle is not running (closed?)")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if running is self.loop:
            raise DeadlockError(
                "a synchronous handle was called from its own event loop, which would wait for"
                " itself; on the loop, use the async proxy (node.proxy(name)) and await it"
            )


class Proxy:
    """The synchronous twin of :class:`AsyncProxy`: ``proxy.method(*args)`` blocks.

    ``check`` runs before every call and may refuse it (e.g. a closed handle).  Every call
    waits at most its timeout (``default_timeout`` when the handle has none) plus
    :data:`LOOP_GRACE`, however stuck the loop is.
    """

    def __init__(
        self,
        runner: LoopRunner,
        inner: AsyncProxy,
        *,
        check: Callable[[], None] | None = None,
        default_timeout: float | None = None,
    ) -> None:
        self._runner = runner
        self._inner = inner
        self._check = check
        self._default_timeout = default_timeout

    @property
    def name(self) -> str:
        return self._inner.name

    def __repr__(self) -> str:
        return _handle_repr(self, self._inner._backend)

    @property
    def schema(self) -> ObjectSchema:
        return self._inner.schema

    def options(
        self, *, consistency: Consistency | str | None = None, timeout: float | None = None
    ) -> Proxy:
        return Proxy(
            self._runner,
            self._inner.options(consistency=consistency, timeout=timeout),
            check=self._check,
            default_timeout=self._default_timeout,
        )

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)
        op = self._inner._operation(method)
        async_method = self._inner._method(op)

        def invoke(*args: Any, **kwargs: Any) -> Any:
            return self._run(async_method(*args, **kwargs), op.kind == "command")

        invoke.__name__ = method
        invoke.__doc__ = getattr(op, "doc", None)
        return invoke

    def mutate(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._run(self._inner.mutate(method, *args, **kwargs), True)

    def read(
        self, method: str, consistency: Consistency | str | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        return self._run(self._inner.read(method, consistency, *args, **kwargs), False)

    def _run(self, coro: Coroutine[Any, Any, T], command: bool) -> T:
        if self._check is not None:
            try:
                self._check()
            except BaseException:
                coro.close()
                raise
        # Private attributes of the twin: a public name would hide an operation of that name.
        timeout = self._inner._timeout or self._default_timeout
        name = self._inner.name

        def gave_up() -> AgreeTimeoutError:
            if command:
                return OutcomeUnknownError(
                    f"a command on {name!r} got no answer from its node in time; it may or may"
                    " not have been applied"
                )
            return AgreeTimeoutError(f"a query on {name!r} got no answer from its node in time")

        bound = None if timeout is None else timeout + LOOP_GRACE
        return self._runner.run(coro, bound, on_timeout=gave_up)


__all__ = [
    "AsyncProxy",
    "Backend",
    "CallSession",
    "LoopRunner",
    "Proxy",
    "ThreadLoop",
]
