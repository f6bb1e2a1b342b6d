"""The embedded one-liner: a replicated, durable counter in a local SQLite file.

Run it twice: the second run continues from where the first stopped, because wrapping again on
the same path restores the state from the database (snapshot + log).
"""

from __future__ import annotations

import sys
import tempfile

import agree
from agree import Replicated, command, query


class Counter(Replicated):
    def __init__(self) -> None:
        self.value = 0

    @command  # replicated through the log; re-raises the method's own exceptions
    def add(self, n: int = 1) -> int:
        if n < 0:
            raise ValueError("n must be >= 0")
        self.value += n
        return self.value

    @query  # linearizable unless told otherwise
    def get(self) -> int:
        return self.value


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
