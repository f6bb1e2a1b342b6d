"""Client workloads over the HTTP client (``agree.AsyncClient``), recorded as a history.

* registers: ~10 processes doing read / write / compare-and-set on a few keys, every value
  written unique per key, reads LINEARIZABLE, each process pinned first to one node, so reads
  are served by leaders and followers alike;
* append: processes appending unique ids ("nothing acknowledged lost, nothing applied twice");
* bank: transfers between accounts and LINEARIZABLE reads of all balances;
* watch: subscribers on the log object's server-sent events that resume after every broken
  stream from the next index, on whichever node answers.

A process whose outcome is unknown (``info``) continues as a new process with a new client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
from collections.abc import Callable
from typing import Any

import aiohttp

from agree.client import AsyncClient
from agree.errors import AgreeError, OutcomeUnknownError
from agree.testing.chaos.cluster import ChaosCluster
from agree.testing.chaos.history import History, Op, Stream
from agree.testing.chaos.models import AppendLog, Bank, Insufficient, Registers

KEYS = [f"k{i}" for i in range(5)]
ACCOUNTS = [f"a{i}" for i in range(5)]
BANK_TOTAL = 500


class Workload:
    def __init__(
        self,
        cluster: ChaosCluster,
        history: History,
        rng: random.Random,
        *,
        clock: Callable[[], float],
        timeout: float = 3.0,
        registers: int = 10,
        appenders: int = 2,
        bankers: int = 3,
        watchers: int = 2,
    ) -> None:
        self.cluster = cluster
        self.history = history
        self.rng = rng
        self.clock = clock
        self.timeout = timeout
        self.counts = {"registers": registers, "append": appenders, "bank": bankers}
        self.watchers = watchers
        self.streams: list[Stream] = []
        self._stop = asyncio.Event()
        self.process_ids = itertools.count()
        self.values = itertools.count(1)  # unique across all keys, so unique per key
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        slot = itertools.count()
        for kind, count in self.counts.items():
            for _ in range(count):
                self._tasks.append(asyncio.ensure_future(self._process(kind, next(slot))))
        for k in range(self.watchers):
            stream = Stream(f"w{k}")
            self.streams.append(stream)
            self._tasks.append(asyncio.ensure_future(self._watch(stream, k)))

    async def stop_writers(self) -> None:
        self._stop.set()
        writers = self._tasks[: sum(self.counts.values())]
        await asyncio.gather(*writers, return_exceptions=True)

    async def stop_watchers(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- processes --------------------------------------------------------------------------------
    def _client(self, slot: int) -> tuple[AsyncClient, str]:
        ids = self.cluster.ids
        first = ids[slot % len(ids)]
        urls = [self.cluster.urls[n] for n in ids[slot % len(ids) :] + ids[: slot % len(ids)]]
        return AsyncClient(urls, timeout=self.timeout), first

    async def _process(self, kind: str, slot: int) -> None:
        rng = random.Random(self.rng.random())
        while not self._stop.is_set():
            process = next(self.process_ids)
            client, node = self._client(slot)
            try:
                while not self._stop.is_set():
                    op = await self._one(kind, client, process, node, rng)
                    if op.type == "info":
                        break  # continue as a new process, with a new client id
            finally:
                with contextlib.suppress(Exception):
                    await client.close()

    async def _one(
        self, kind: str, client: AsyncClient, process: int, node: str, rng: random.Random
    ) -> Op:
        if kind == "registers":
            key = rng.choice(KEYS)
            proxy = client.proxy("registers", Registers)
            roll = rng.random()
            if roll < 0.5:
                op = self.history.invoke(process, "read", key, None, self.clock(), node)
                return await self._run(op, proxy.get(key), read=True)
            if roll < 0.75:
                value = next(self.values)
                op = self.history.invoke(process, "write", key, value, self.clock(), node)
                return await self._run(op, proxy.write(key, value))
            expected = self._recent(key, rng)
            new = next(self.values)
            op = self.history.invoke(process, "cas", key, (expected, new), self.clock(), node)
            return await self._run(op, proxy.cas(key, expected, new))
        if kind == "append":
            item = f"p{process}-{next(self.values)}"
            op = self.history.invoke(process, "append", "log", item, self.clock(), node)
            return await self._run(op, client.proxy("log", AppendLog).append(item))
        bank = client.proxy("bank", Bank)
        if rng.random() < 0.4:
            op = self.history.invoke(process, "balances", "bank", None, self.clock(), node)
            return await self._run(op, bank.balances(), read=True)
        src, dst = rng.sample(ACCOUNTS, 2)
        amount = rng.randint(1, 40)
        op = self.history.invoke(
            process, "transfer", "bank", (src, dst, amount), self.clock(), node
        )
        return await self._run(op, bank.transfer(src, dst, amount))

    def _recent(self, key: str, rng: random.Random) -> int | None:
        """A value the key may hold: one recently written or read there (CAS should succeed
        often enough to matter)."""
        for op in reversed(self.history.ops[-200:]):
            if op.key != key or op.type != "ok":
                continue
            if op.f == "read":
                return op.result  # type: ignore[no-any-return]
            if op.f == "write" and rng.random() < 0.5:
                return op.value  # type: ignore[no-any-return]
        return None

    async def _run(self, op: Op, call: Any, *, read: bool = False) -> Op:
        try:
            result = await call
        except Insufficient as exc:  # a definite answer: the transfer did not happen
            op.type, op.result = "fail", f"insufficient: {exc}"
        except OutcomeUnknownError as exc:
            op.type, op.result = "info", repr(exc)[:200]
        except AgreeError as exc:
            # The client's contract: any other error of a command means it was not carried out
            # (in doubt it raises OutcomeUnknownError).  The checks hold it to that.
            op.type, op.result = ("fail", repr(exc)[:200])
        except Exception as exc:  # anything unexpected: the outcome is unknown
            op.type, op.result = "info", repr(exc)[:200]
        else:
            op.type, op.result = "ok", result
        if read and op.type == "info":
            op.type = "fail"  # a read changes nothing: not knowing its answer constrains nothing
        op.complete = self.clock()
        return op

    # -- watch streams ----------------------------------------------------------------------------
    async def _watch(self, stream: Stream, k: int) -> None:
        ids = self.cluster.ids
        node = ids[k % len(ids)]
        rng = random.Random(self.rng.random())
        next_index = 1
        async with aiohttp.ClientSession() as session:
            while True:
                url = f"{self.cluster.urls[node]}/v1/watch/log?from_index={next_index}"
                try:
                    async with session.get(
                        url, timeout=aiohttp.ClientTimeout(total=None, sock_read=5.0)
                    ) as response:
                        if response.status == 410:
                            stream.overflowed = True
                            return
                        if response.status != 200:
                            raise aiohttp.ClientError(f"HTTP {response.status}")
                        fields: dict[str, str] = {}
                        async for raw in response.content:
                            line = raw.decode().rstrip("\r\n")
                            if line:
                                name, _, value = line.partition(":")
                                fields[name] = value.lstrip(" ")
                                continue
                            if fields.get("event") == "error":
                                stream.overflowed = True
                                return
                            if fields.get("event") == "mutation" and "data" in fields:
                                data = json.loads(fields["data"])
                                item = (data.get("args") or [data.get("kwargs", {}).get("item")])[0]
                                index = int(data["index"])
                                stream.seen.append((index, str(item)))
                                next_index = max(next_index, index + 1)
                            fields = {}
                except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
                    pass
                stream.reconnects += 1
                node = rng.choice(ids)
                await asyncio.sleep(0.05)
