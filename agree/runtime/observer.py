"""What the runtime reports about its own work, for metrics and the dashboard.

The driver calls an :class:`Observer` after each step of the Ready loop -- persist, send, apply
-- and after each snapshot, with what the step handled and how long it took on the node's clock
(so a run on virtual time reports durations of zero, deterministically).  The default observes
nothing and costs nothing: the driver does not even read the clock for it.
"""

from __future__ import annotations

from typing import Protocol


class Observer(Protocol):
    def persisted(self, *, entries: int, seconds: float) -> None:
        """A Ready's hard state, entries and snapshot were written durably (one transaction)."""

    def sent(self, *, messages: int, seconds: float) -> None:
        """A Ready's messages were handed to the transport."""

    def applied(self, *, entries: int, seconds: float) -> None:
        """Committed entries (and a received snapshot, if any) were applied to the state."""

    def snapshotted(self, *, index: int, size: int, seconds: float) -> None:
        """A snapshot of ``size`` bytes at ``index`` was taken and the log compacted."""


class NoObserver:
    """Observes nothing (the default)."""

    def persisted(self, *, entries: int, seconds: float) -> None:
        pass

    def sent(self, *, messages: int, seconds: float) -> None:
        pass

    def applied(self, *, entries: int, seconds: float) -> None:
        pass

    def snapshotted(self, *, index: int, size: int, seconds: float) -> None:
        pass
