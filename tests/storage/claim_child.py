"""A process that holds a database's claim for test_claim.py.

``python claim_child.py URL OWNER [fork]`` opens the storage at URL as node OWNER, optionally
forks a child that just sleeps (it must not inherit the claim), prints ``ready PID`` (the
forked child's pid, or 0) and then holds the claim until killed or its stdin closes.
"""

from __future__ import annotations

import os
import sys
import time

from agree.storage import open_storage


def main(url: str, owner: str, fork: bool) -> None:
    storage = open_storage(url, auto_migrate=True, owner=owner)
    forked = 0
    if fork:
        forked = os.fork()
        if forked == 0:
            time.sleep(120)
            os._exit(0)
    print(f"ready {forked}", flush=True)
    sys.stdin.read()
    storage.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:] == ["fork"])
