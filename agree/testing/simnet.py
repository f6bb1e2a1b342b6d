"""A seeded, simulated network for the Raft simulator.

Owns: message delay, loss, duplication and reordering per directed link, and
partitions -- symmetric, one-way, and the "bridge" shape where one node sees
both halves -- and their healing.  Time is the simulator's step count.  All
randomness comes from the one injected ``random.Random``, so a seed replays
the same network exactly.

A message is anything with ``src`` and ``dst``.  A link cut while a message is
in flight loses the message (it is checked at send and at delivery).

Scripted scenarios also *hold* messages: a message matching a hold rule is set
aside when sent instead of being queued, and is released (delivered late, or
twice) whenever the script says -- the delays no random network would produce
on purpose.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class Routed(Protocol):
    @property
    def src(self) -> str: ...

    @property
    def dst(self) -> str: ...


M = TypeVar("M", bound=Routed)


@dataclass(frozen=True, slots=True)
class NetConfig:
    """Network behaviour.  Each directed link draws its own delay range within
    [min_delay, max_delay] when first used; each message then draws its delay in that range."""

    min_delay: int = 1  # ticks; >= 1 so a reply never arrives in the step it was caused
    max_delay: int = 3
    drop: float = 0.0  # probability a message is lost
    duplicate: float = 0.0  # probability a message is delivered twice (the copy later)
    reorder: float = 0.0  # probability a message is held back by up to 2*max_delay more ticks

    def __post_init__(self) -> None:
        if not 1 <= self.min_delay <= self.max_delay:
            raise ValueError("need 1 <= min_delay <= max_delay")
        for name in ("drop", "duplicate", "reorder"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability")


@dataclass(slots=True)
class NetStats:
    sent: int = 0
    delivered: int = 0
    dropped: int = 0  # lost at random
    blocked: int = 0  # lost to a partition
    duplicated: int = 0


class SimNet(Generic[M]):
    """The network.  ``send`` at step ``now``; ``deliver(now)`` returns what is due."""

    def __init__(self, rng: random.Random, config: NetConfig | None = None) -> None:
        self._rng = rng
        self.config = config or NetConfig()
        self._queue: list[tuple[int, int, M]] = []  # (due step, sequence, message)
        self._seq = 0
        self._links: dict[tuple[str, str], tuple[int, int]] = {}
        self._blocked: set[tuple[str, str]] = set()  # directed (src, dst) pairs that are cut
        self._holds: list[Callable[[M], bool]] = []
        self.held: list[M] = []  # messages set aside by a hold rule, in send order
        self.stats = NetStats()

    # -- sending and delivery ----------------------------------------------------------

    def _delay(self, src: str, dst: str) -> int:
        link = self._links.get((src, dst))
        if link is None:
            cfg = self.config
            lo = self._rng.randint(cfg.min_delay, cfg.max_delay)
            link = (lo, self._rng.randint(lo, cfg.max_delay))
            self._links[(src, dst)] = link
        delay = self._rng.randint(*link)
        if self.config.reorder and self._rng.random() < self.config.reorder:
            delay += self._rng.randint(1, 2 * self.config.max_delay)
        return delay

    def _push(self, due: int, msg: M) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (due, self._seq, msg))

    def send(self, msg: M, now: int) -> None:
        self.stats.sent += 1
        if any(rule(msg) for rule in self._holds):
            self.held.append(msg)
            return
        if (msg.src, msg.dst) in self._blocked:
            self.stats.blocked += 1
            return
        cfg = self.config
        if cfg.drop and self._rng.random() < cfg.drop:
            self.stats.dropped += 1
            return
        self._push(now + self._delay(msg.src, msg.dst), msg)
        if cfg.duplicate and self._rng.random() < cfg.duplicate:
            self.stats.duplicated += 1
            self._push(now + self._delay(msg.src, msg.dst), msg)

    def deliver(self, now: int) -> list[M]:
        """Every message due at or before ``now`` whose link is still up, in due order."""
        out: list[M] = []
        queue = self._queue
        while queue and queue[0][0] <= now:
            _, _, msg = heapq.heappop(queue)
            if (msg.src, msg.dst) in self._blocked:
                self.stats.blocked += 1
                continue
            self.stats.delivered += 1
            out.append(msg)
        return out

    def in_flight(self) -> int:
        return len(self._queue)

    def discard_to(self, node: str) -> int:
        """Drop everything in flight to ``node`` (e.g. it was wiped); returns how many."""
        return self._discard(lambda m: m.dst == node)

    def discard_from(self, node: str) -> int:
        """Drop everything in flight from ``node``: what its crash took with it from its
        send buffers; returns how many."""
        return self._discard(lambda m: m.src == node)

    def _discard(self, doomed: Callable[[M], bool]) -> int:
        kept = [item for item in self._queue if not doomed(item[2])]
        dropped = len(self._queue) - len(kept)
        heapq.heapify(kept)
        self._queue = kept
        self.stats.dropped += dropped
        return dropped

    # -- holding (scripted scenarios) ---------------------------------------------------

    def hold(self, rule: Callable[[M], bool]) -> Callable[[M], bool]:
        """Set aside every message sent from now on for which ``rule`` is true; returns
        ``rule`` (to pass to :meth:`unhold`)."""
        self._holds.append(rule)
        return rule

    def unhold(self, rule: Callable[[M], bool]) -> None:
        self._holds.remove(rule)

    def release(self, now: int, which: Callable[[M], bool] | None = None, *,
                keep: bool = False) -> list[M]:
        """Queue the held messages ``which`` selects (all by default) for delivery at the
        next step, in the order they were sent; ``keep`` leaves copies held, so a message
        can be delivered again later (a duplicate).  Returns them."""
        chosen = [m for m in self.held if which is None or which(m)]
        if not keep:
            self.held = [m for m in self.held if not (which is None or which(m))]
        for msg in chosen:
            self._push(now + 1, msg)
        return chosen

    # -- partitions -----------------------------------------------------------------------

    def is_blocked(self, src: str, dst: str) -> bool:
        return (src, dst) in self._blocked

    @property
    def partitioned(self) -> bool:
        return bool(self._blocked)

    def partition(self, *groups: Iterable[str]) -> None:
        """Symmetric: nodes in different groups cannot talk (in addition to existing cuts)."""
        sets = [frozenset(g) for g in groups]
        for i, a in enumerate(sets):
            for b in sets[i + 1 :]:
                for x in a:
                    for y in b:
                        if x != y:
                            self._blocked.add((x, y))
                            self._blocked.add((y, x))

    def cut_one_way(self, srcs: Iterable[str], dsts: Iterable[str]) -> None:
        """One-way: messages from any of ``srcs`` to any of ``dsts`` are lost; replies flow."""
        dst_list = list(dsts)
        for x in srcs:
            for y in dst_list:
                if x != y:
                    self._blocked.add((x, y))

    def bridge(self, left: Iterable[str], right: Iterable[str], bridge: str) -> None:
        """Two halves that cannot talk, and one node that talks to both."""
        self.partition([n for n in left if n != bridge], [n for n in right if n != bridge])

    def isolate(self, node: str, others: Iterable[str]) -> None:
        self.partition([node], [n for n in others if n != node])

    def heal(self) -> None:
        self._blocked.clear()
