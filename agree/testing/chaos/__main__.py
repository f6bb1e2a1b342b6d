"""``python -m agree.testing.chaos --seconds S --nodes N --seed K [--database postgres]``.

Runs real node processes under faults for S seconds, checks every history, prints the faults,
the outcomes and any anomaly with how to replay it, and ends with exactly the line
``chaos: seconds=S nodes=N ops=O faults=F anomalies=A``.  Exit status 1 on any anomaly.

``--overload C`` instead keeps C commands in flight for S seconds, without faults, then checks
that the nodes converge, stay live and kept their memory bounded
(:mod:`agree.testing.chaos.overload`); it ends with ``overload: in_flight=C seconds=S ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from agree.testing.chaos.nemesis import ALL_FAULTS
from agree.testing.chaos.overload import run_overload
from agree.testing.chaos.runner import replay_command, run, unsafe_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agree.testing.chaos", description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="time under faults")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--faults",
        default=",".join(ALL_FAULTS),
        help=f"comma-separated fault kinds (default: all of {', '.join(ALL_FAULTS)})",
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="with --database postgres: the server (each node gets a schema of its own)",
    )
    parser.add_argument(
        "--commit-delay",
        type=float,
        help="every node's STORAGE_COMMIT_DELAY in seconds (default: one slow disk by seed)",
    )
    parser.add_argument(
        "--overload",
        type=int,
        metavar="C",
        help="keep C commands in flight for --seconds (no faults), then check convergence, "
        "liveness and memory",
    )
    parser.add_argument("--dir", type=Path, help="work directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("-v", "--verbose", action="store_true", help="print faults as they happen")
    args = parser.parse_args(argv)
    kinds = tuple(k for k in args.faults.split(",") if k)
    unknown = [k for k in kinds if k not in ALL_FAULTS]
    if unknown:
        parser.error(f"unknown fault kinds {unknown}; choose from {', '.join(ALL_FAULTS)}")
    if args.nodes < 1:
        parser.error("--nodes must be at least 1")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )
    if args.overload is not None:
        return _overload(args)
    env = unsafe_env()
    report = asyncio.run(
        run(
            seconds=args.seconds,
            nodes=args.nodes,
            seed=args.seed,
            database=args.database,
            directory=args.dir,
            kinds=kinds,
            env=env,
            keep=args.keep,
            commit_delay=args.commit_delay,
            postgres_url=args.postgres_url,
        )
    )
    faults = ", ".join(f"{k}={v}" for k, v in sorted(report.faults.items()))
    outcomes = ", ".join(f"{k}={v}" for k, v in sorted(report.outcomes.items()))
    print(f"faults: {faults}")
    print(f"outcomes: {outcomes}; operations checked: {report.checked}")
    if report.converged_after is not None:
        print(f"converged {report.converged_after:.2f}s after the last heal")
    for anomaly in report.anomalies:
        print(f"ANOMALY: {anomaly}")
    if report.anomalies:
        print(f"history and node logs: {report.directory}")
        print(f"replay: {replay_command(report, env)}")
    print(report.summary())
    return 1 if report.anomalies else 0


def _overload(args: argparse.Namespace) -> int:
    report = asyncio.run(
        run_overload(
            in_flight=args.overload,
            seconds=args.seconds,
            nodes=args.nodes,
            seed=args.seed,
            database=args.database,
            directory=args.dir,
            keep=args.keep,
            postgres_url=args.postgres_url,
        )
    )
    for anomaly in report.anomalies:
        print(f"ANOMALY: {anomaly}")
    if report.anomalies:
        print(f"node logs: {report.directory}")
    print("\n".join(report.lines()))
    return 1 if report.anomalies else 0


if __name__ == "__main__":
    sys.exit(main())
