"""Testing tools: an in-process cluster for your own tests, a deterministic Raft cluster
simulator and a linearizability checker.

:class:`MemoryCluster` runs real nodes (Raft, storage, your classes) in one process, joined by
an in-memory network; on a :class:`VirtualTimeLoop` it runs on virtual time (docs/testing.md).
Both load the node runtime on first use, so importing this package stays light.

``agree.testing.linearizability`` checks histories of client operations (from the simulator
or from real processes); ``agree.testing.simnet`` is the simulated network,
``agree.testing.simclock`` the nodes' drifting clocks, ``agree.testing.simstate`` their
snapshot bytes; ``agree.testing.sim`` runs Raft cores on them and
``agree.testing.scenarios`` scripts named defects (``python -m agree.testing.sim --help``).
"""

from typing import TYPE_CHECKING

from agree._lazy import lazy_getattr
from agree.testing.linearizability import (
    LINEARIZABLE,
    NOT_LINEARIZABLE,
    UNKNOWN,
    Cas,
    CheckResult,
    KeyResult,
    Model,
    Operation,
    Read,
    RegisterModel,
    Write,
    check,
    check_key,
    explain,
)

if TYPE_CHECKING:
    from agree.testing.cluster import MemoryCluster
    from agree.testing.virtualtime import VirtualTimeLoop

_LAZY = {
    "MemoryCluster": "agree.testing.cluster",
    "VirtualTimeLoop": "agree.testing.virtualtime",
}


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "LINEARIZABLE",
    "NOT_LINEARIZABLE",
    "UNKNOWN",
    "Cas",
    "CheckResult",
    "KeyResult",
    "MemoryCluster",
    "Model",
    "Operation",
    "Read",
    "RegisterModel",
    "VirtualTimeLoop",
    "Write",
    "check",
    "check_key",
    "explain",
]
