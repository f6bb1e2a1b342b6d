"""Deliberately broken modes, for negative controls of the fault-injection suite only.

A test suite that never fails proves nothing; :mod:`agree.testing.chaos` shows it can fail by
running nodes with one of these switches on and asserting that it finds the anomaly:

* ``AGREE_UNSAFE_LOCAL_READS=1``: a LINEARIZABLE read is served from the node's local state at
  once, without a ReadIndex round (Raft §6.4) -- stale reads on partitioned or lagging nodes.
* ``AGREE_UNSAFE_ACK_BEFORE_DURABLE=1``: a Ready's messages are sent, and its committed entries
  applied and answered, before its entries are stored; the store catches up in the background
  (§5.3's "persist before responding" broken) -- acknowledged writes lost when nodes are killed.

They are environment variables, never settings, and a node refuses to start with either set
unless ``AGREE_TESTING_ALLOW_UNSAFE`` is also set to the exact phrase in :data:`ALLOW_PHRASE`:
no settings file, ``-s`` override or stray ``=1`` turns them on by accident.  The flags are read
once, at import.
"""

from __future__ import annotations

import os
from typing import Final

from agree.errors import ConfigurationError

ALLOW_PHRASE: Final = "i-want-a-broken-cluster"

LOCAL_READS: Final = os.environ.get("AGREE_UNSAFE_LOCAL_READS") == "1"
ACK_BEFORE_DURABLE: Final = os.environ.get("AGREE_UNSAFE_ACK_BEFORE_DURABLE") == "1"
_ALLOWED: Final = os.environ.get("AGREE_TESTING_ALLOW_UNSAFE") == ALLOW_PHRASE


def refuse_unless_allowed() -> None:
    """Called as a node starts: ConfigurationError if a switch is on without the testing flag."""
    on = [
        name
        for name, value in (
            ("AGREE_UNSAFE_LOCAL_READS", LOCAL_READS),
            ("AGREE_UNSAFE_ACK_BEFORE_DURABLE", ACK_BEFORE_DURABLE),
        )
        if value
    ]
    if on and not _ALLOWED:
        raise ConfigurationError(
            f"{', '.join(on)} breaks linearizability on purpose and exists only for the "
            "fault-injection suite's negative controls; unset it (a node refuses to start with "
            f"it unless AGREE_TESTING_ALLOW_UNSAFE={ALLOW_PHRASE} is set too)"
        )
