"""The embedded one-liner: a replicated, durable counter in a local SQLite file.

Run it twice: the second run continues from where the first stopped, because wrapping again on
the same path restores the state from the database (snapshot + log).
"""

from __future__ import annotations

import sys
import tempfile

import agree
from agree.testing.models import Counter


def main(path: str) -> None:
    with agree.wrap(Counter(), path=path) as counter:
        start = counter.get()
        counter.add(5)
        counter.add(2)
        with counter.read_lock() as obj:
            local = obj.value
        print(f"counter at {path}: was {start}, now {counter.get()} (local copy: {local})")
        try:
            counter.add(-1)
        except ValueError as exc:
            print(f"a command's own exception comes back with its type: ValueError({exc})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="agree-"))
