"""Where a node's CPU goes, by layer: a summary of py-spy's raw samples.

``py-spy record -f raw --threads --pid PID -o FILE`` writes one line per distinct stack,
``frame;frame;...;leaf COUNT``, each frame ``function (file:line)``.  Each sample is charged to
the layer of its innermost frame (self time: time in C code, e.g. sqlite3 or the socket calls,
is charged to the Python line that called it), and to the thread it ran on (the event loop's,
or another: the storage worker, executors).  With the process's CPU µs per command (measured
from /proc), each layer's share of the samples becomes µs per command; py-spy counts samples
where the thread was running, not waiting, so the shares are of busy time.

Run by hand: ``.venv/bin/python bench/profile_layers.py FILE [--cpu-us US_PER_COMMAND]``
(``bench/throughput.py --profile FILE`` prints the same at the end of its run).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# The first match on a frame's file names its layer; order matters (agree/server/peer.py is
# the peer transport, the rest of agree/server the client HTTP API).
LAYERS = (
    ("agree/raft/", "Raft core (agree/raft)"),
    ("agree/storage/", "storage: agree/storage + sqlite3/psycopg calls"),
    ("sqlalchemy", "SQLAlchemy"),
    ("agree/transport/", "peer transport (agree/transport)"),
    ("agree/server/peer", "peer transport (agree/server/peer.py)"),
    ("agree/server/", "client HTTP API (agree/server)"),
    ("agree/runtime/driver", "driver: Raft I/O loop (agree/runtime/driver.py)"),
    ("agree/runtime/node", "node: calls, sessions, reads (agree/runtime/node.py)"),
    ("agree/runtime/proxy", "proxy (agree/runtime/proxy.py)"),
    ("agree/replica/host", "host: applying commands (agree/replica/host.py)"),
    ("agree/objects/schema", "schema: arguments to and from JSON (agree/objects/schema.py)"),
    ("agree/wire/calls", "calls and outcomes (agree/wire/calls.py, codec.py)"),
    ("agree/wire/codec", "calls and outcomes (agree/wire/calls.py, codec.py)"),
    ("agree/wire/", "peer wire encoding (agree/wire)"),
    ("agree/", "agree, other modules"),
    ("json/", "json (standard library)"),
    ("<string>", "dataclass-generated methods"),
    ("aiohttp", "aiohttp"),
    ("asyncio", "asyncio event loop"),
    ("selectors", "asyncio event loop"),
    ("bench/", "bench workload (issuing the commands)"),
    ("threading", "threads, queues, executors"),
    ("concurrent/futures", "threads, queues, executors"),
    ("queue.py", "threads, queues, executors"),
)


def layer_of(path: str) -> str:
    for needle, layer in LAYERS:
        if needle in path:
            return layer
    return "other: " + path.rsplit("/", 1)[-1]


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    """Each stack as its frames (function, file), outermost first, with its sample count."""
    stacks = []
    for line in path.read_text().splitlines():
        body, _, count = line.rpartition(" ")
        if not body or not count.isdigit():
            continue
        frames = []
        for frame in body.split(";"):
            match = FRAME.match(frame.strip())
            if match:
                frames.append((match["function"], match["file"]))
            else:
                frames.append((frame.strip(), ""))
        stacks.append((frames, int(count)))
    return stacks


def task_of(code: list[tuple[str, str]]) -> str:
    """The coroutine or callback the event loop was running (the frame its handle called), or
    the thread's own function off the loop; "event loop itself" when in neither."""
    for k, (function, file) in enumerate(code):
        if function == "Handle._run" and k + 1 < len(code):
            function, file = code[k + 1]
            return f"{function} ({file.split('site-packages/')[-1]})"
    if any(f.endswith(".run_forever") for f, _ in code):
        return "event loop itself (select, scheduling)"
    function, file = code[-1]
    return f"off the loop: {function} ({file.split('site-packages/')[-1]})"


def summarise(path: Path) -> tuple[Counter[str], Counter[str], Counter[str], int]:
    """Samples by layer, by thread and by leaf file; and the total."""
    return summarise_all(path)[:4]  # type: ignore[return-value]


def summarise_all(
    path: Path,
) -> tuple[Counter[str], Counter[str], Counter[str], int, Counter[str]]:
    """Samples by layer, by thread, by leaf file, the total, and by task."""
    layers: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    files: Counter[str] = Counter()
    tasks: Counter[str] = Counter()
    total = 0
    for frames, count in parse(path):
        code = [f for f in frames if f[1]]
        if not code:
            continue
        total += count
        tasks[task_of(code)] += count
        leaf_file = code[-1][1]
        layers[layer_of(leaf_file)] += count
        files[f"{leaf_file.split('site-packages/')[-1]}:{code[-1][0]}"] += count
        # py-spy qualifies methods by class ("BaseEventLoop.run_forever") and, with --threads,
        # starts each stack with "thread (ID): NAME" (e.g. agree-storage_0).
        name = frames[0][0].partition("): ")[2] if frames[0][0].startswith("thread") else ""
        if any(function.endswith(".run_forever") for function, _ in code):
            threads["event loop thread"] += count
        else:
            threads[f"thread {name.rstrip('_0123456789') or '(unnamed)'}"] += count
    return layers, threads, files, total, tasks


def print_layers(path: Path, cpu_us: float | None, top: int = 25, who: str = "leader") -> None:
    layers, threads, files, total, tasks = summarise_all(path)
    if not total:
        print(f"{path}: no samples")
        return
    unit = f"of {cpu_us:.0f} CPU us per command" if cpu_us else "of the samples"
    print(f"{who}'s profile ({total} busy samples), by layer, {unit}:")
    for counter, heading in (
        (threads, "thread"),
        (tasks, "task (what the loop was running, all it called included)"),
        (layers, "layer (self time)"),
        (files, "leaf function (self time)"),
    ):
        print(f"  by {heading}:")
        for name, count in counter.most_common(top):
            share = count / total
            us = f"{share * cpu_us:7.1f} us" if cpu_us else ""
            print(f"    {share * 100:5.1f}% {us}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--cpu-us", type=float, help="the process's CPU us per command")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--who", default="leader", help="whose process the samples are of")
    args = parser.parse_args()
    print_layers(args.file, args.cpu_us, args.top, args.who)


if __name__ == "__main__":
    main()
