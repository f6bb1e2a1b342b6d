"""Testing tools: a deterministic Raft cluster simulator and a linearizability checker.

``agree.testing.linearizability`` checks histories of client operations (from the simulator
or from real processes); ``agree.testing.simnet`` is the simulated network,
``agree.testing.simclock`` the nodes' drifting clocks, ``agree.testing.simstate`` their
snapshot bytes; ``agree.testing.sim`` runs Raft cores on them and
``agree.testing.scenarios`` scripts named defects (``python -m agree.testing.sim --help``).
"""

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

__all__ = [
    "LINEARIZABLE",
    "NOT_LINEARIZABLE",
    "UNKNOWN",
    "Cas",
    "CheckResult",
    "KeyResult",
    "Model",
    "Operation",
    "Read",
    "RegisterModel",
    "Write",
    "check",
    "check_key",
    "explain",
]
