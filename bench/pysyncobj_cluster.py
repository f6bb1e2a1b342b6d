"""PySyncObj on the same workload as ``bench/throughput.py``: the comparison side of
``--compare pysyncobj``.

Each node is its own process (``python bench/pysyncobj_cluster.py MODE SELF OTHER... DIR``)
holding a ``SyncObj`` with one replicated ``set(key, value)``, controlled over its standard
input and output, one JSON line each way.  A ``run`` issues ``n`` commands from inside that
process with ``window`` in flight: each command's callback (called on PySyncObj's own thread)
records its latency and issues the next one, so the window stays full as it does in agree's
bench.

Two modes, as PySyncObj 0.3.17 is measured in the performance issue:

* ``memory``: its defaults (memory journal, ``appendEntriesUseBatch=True``), for throughput;
  one command at a time waits for the next ``appendEntriesPeriod`` (0.1 s), the batching cliff;
* ``file``: its file journal (``journalFile``, which flushes an mmap but never fsyncs) with
  ``appendEntriesUseBatch=False``, for one-at-a-time latency.

Needs the ``bench`` extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

KEY_SPACE = 1024
PREFIX = "@@"  # marks the control replies among whatever else a node prints


# -- inside a node process ---------------------------------------------------------------------


def serve(mode: str, me: str, others: list[str], directory: str) -> None:
    from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated

    class KV(SyncObj):  # type: ignore[misc]
        def __init__(self, conf: Any) -> None:
            self.data: dict[str, str] = {}
            super().__init__(me, others, conf)

        @replicated  # type: ignore[misc]
        def set(self, key: str, value: str) -> None:
            self.data[key] = value

    if mode == "memory":
        conf = SyncObjConf()
    else:
        journal = os.path.join(directory, me.replace(":", "_") + ".journal")
        conf = SyncObjConf(journalFile=journal, appendEntriesUseBatch=False)
    kv = KV(conf)

    def run(window: int, n: int, payload: int, seconds: float) -> dict[str, Any]:
        value = "v" * payload
        latencies: list[float] = []
        failures: list[int] = []
        done = threading.Event()
        lock = threading.Lock()
        stop_at = time.perf_counter() + seconds
        state = {"issued": 0, "open": 0}

        def issue_one() -> None:
            with lock:
                if state["issued"] >= n or time.perf_counter() >= stop_at:
                    if state["open"] == 0:
                        done.set()
                    return
                i = state["issued"]
                state["issued"] += 1
                state["open"] += 1
            started = time.perf_counter()

            def callback(result: Any, error: Any) -> None:
                if error == FAIL_REASON.SUCCESS:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    failures.append(int(error))
                with lock:
                    state["open"] -= 1
                issue_one()

            kv.set(f"k{i % KEY_SPACE:04d}", value, callback=callback)

        started = time.perf_counter()
        for _ in range(min(window, n)):
            issue_one()
        done.wait()
        elapsed = time.perf_counter() - started
        latencies.sort()
        return {
            "n": len(latencies),
            "failures": len(failures),
            "seconds": elapsed,
            "p50_ms": latencies[len(latencies) // 2] if latencies else float("nan"),
            "p99_ms": (
                latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
                if latencies
                else float("nan")
            ),
        }

    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "status":
            leader = kv._getLeader()
            reply: Any = {"leader": None if leader is None else str(leader), "self": me}
        elif request["cmd"] == "run":
            reply = run(
                int(request["window"]),
                int(request["n"]),
                int(request["payload"]),
                float(request.get("seconds", 1e9)),
            )
        else:
            break
        print(PREFIX + json.dumps(reply), flush=True)
    kv.destroy()


# -- the orchestrator's side ----------------------------------------------------------------------


class PySyncObjCluster:
    """``nodes`` PySyncObj processes on loopback in ``mode`` (``memory`` or ``file``)."""

    def __init__(self, directory: Path, nodes: int, mode: str, ports: list[int]) -> None:
        self.directory = directory
        self.addresses = [f"127.0.0.1:{p}" for p in ports[:nodes]]
        self.procs = {
            address: subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    mode,
                    address,
                    *(a for a in self.addresses if a != address),
                    str(directory),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                # Its warnings (e.g. "truncating already-applied log entries") are kept aside
                # and counted, not mixed into the bench's table.
                stderr=(directory / f"{address.replace(':', '_')}.log").open("w"),
                text=True,
                cwd=directory,
            )
            for address in self.addresses
        }

    def ask(self, address: str, request: dict[str, Any]) -> Any:
        proc = self.procs[address]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        for line in proc.stdout:
            if line.startswith(PREFIX):
                return json.loads(line[len(PREFIX) :])
        raise SystemExit(f"PySyncObj node {address} exited")

    def wait_leader(self, timeout: float = 60) -> str:
        """The leader's address, once every node knows it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leaders = {self.ask(a, {"cmd": "status"})["leader"] for a in self.addresses}
            if len(leaders) == 1 and None not in leaders:
                return str(leaders.pop())
            time.sleep(0.1)
        raise SystemExit("PySyncObj elected no leader")

    def warnings(self) -> int:
        """Lines the nodes wrote to their standard error so far."""
        return sum(len(path.read_text().splitlines()) for path in self.directory.glob("*.log"))

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None and proc.stdin is not None:
                try:
                    proc.stdin.write(json.dumps({"cmd": "stop"}) + "\n")
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], sys.argv[3:-1], sys.argv[-1])
