"""A small data-driven test format, after cockroachdb/datadriven (which etcd-io/raft uses).

A file is a sequence of cases::

    # comments and blank lines between cases are kept as they are
    command arg key=value key=(v1,v2)
    ----
    expected output, up to the next blank line

``run_file`` runs every case through a handler and compares its output with the expected
one; an exception a command raises is its output (``error: Type: message``).  With
``AGREE_REWRITE_TESTDATA=1`` in the environment it writes the actual outputs
back into the file instead, so a transcript is produced by running it, then reviewed.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REWRITE = os.environ.get("AGREE_REWRITE_TESTDATA", "") not in ("", "0")


@dataclass
class Case:
    """One command: its position, name, positional and keyword arguments, expected output."""

    path: Path
    line: int
    command: str
    args: list[str]
    kwargs: dict[str, str]
    expected: str
    preamble: list[str] = field(default_factory=list)  # comment and blank lines before it
    text: str = ""  # the command line as written

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"

    def get(self, key: str, default: str) -> str:
        return self.kwargs.get(key, default)

    def int(self, key: str, default: int) -> int:
        return int(self.kwargs.get(key, default))

    def flag(self, key: str, default: bool) -> bool:
        raw = self.kwargs.get(key)
        if raw is None:
            return default
        if raw not in ("true", "false"):
            raise ValueError(f"{self.where}: {key}={raw}: expected true or false")
        return raw == "true"


def parse(path: Path) -> tuple[list[Case], list[str]]:
    """The cases of ``path`` and the lines after the last one."""
    lines = path.read_text().splitlines()
    cases: list[Case] = []
    preamble: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            preamble.append(line)
            i += 1
            continue
        start = i
        words = shlex.split(line)
        i += 1
        if i >= len(lines) or lines[i] != "----":
            raise ValueError(f"{path.name}:{start + 1}: expected ---- after the command")
        i += 1
        out: list[str] = []
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        args = [w for w in words[1:] if "=" not in w]
        kwargs = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        cases.append(Case(path, start + 1, words[0], args, kwargs, "\n".join(out),
                          preamble, line))
        preamble = []
    return cases, preamble


def run_file(path: Path, handle: Callable[[Case], str]) -> None:
    """Run every case of ``path``; assert (or, rewriting, record) each output."""
    cases, trailer = parse(path)
    failures: list[str] = []
    outputs: list[str] = []
    for case in cases:
        try:
            actual = handle(case).rstrip("\n")
        except Exception as exc:
            actual = f"error: {type(exc).__name__}: {exc}"  # part of the transcript
        if any(not line.strip() for line in actual.splitlines()):
            raise ValueError(f"{case.where}: output must not contain blank lines")
        outputs.append(actual)
        if not REWRITE and actual != case.expected:
            failures.append(
                f"{case.where}: {case.text}\n--- expected\n{case.expected}\n--- actual\n{actual}"
            )
            break  # later cases depend on this one
    if REWRITE:
        text: list[str] = []
        for k, (case, actual) in enumerate(zip(cases, outputs, strict=True)):
            preamble = case.preamble
            if k and (not preamble or preamble[0].strip()):
                preamble = ["", *preamble]  # a blank line ends the previous output
            text += [*preamble, case.text, "----"]
            text += actual.splitlines()
        text += trailer
        path.write_text("\n".join(text).rstrip("\n") + "\n")
        return
    assert not failures, "\n\n".join(failures)
