"""Structured logs in process (agree.logs): bound fields, both formats, masking of secrets, and a
library that configures no logging unless asked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agree
from agree import Node, Settings, logs
from agree.testing.models import Counter

SECRET = "cluster-secret-for-log-tests-0001"
TOKEN = "client-token-for-log-tests-00001"


@pytest.fixture(autouse=True)
def _restore_agree_logger() -> Iterator[None]:
    logger = logging.getLogger("agree")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        yield
    finally:
        for handler in logger.handlers:
            if handler not in saved[0]:
                handler.close()
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(
        NODE_ID="n1",
        NODES={"n1": "http://127.0.0.1:7001"},
        DATABASE_URL=f"sqlite:///{tmp_path.as_posix()}/n1.db",
        AUTO_MIGRATE=True,
        CLUSTER_SECRET=SECRET,
        TOKENS={TOKEN: "admin"},
        **values,
    )


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_node_logs_json_lines_bound_with_node_group_term_and_index(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    stream = io.StringIO()
    logs.configure(settings, stream)
    async with Node(settings, objects={"counter": Counter()}) as node:
        await node.wait_ready(10)
        await node.proxy("counter").add(2)
        index = await node.snapshot()
    records = _records(stream)
    assert records
    for record in records:
        assert list(record)[:10] == ["ts", "level", "logger", "msg", *logs.FIELDS]
        assert (record["node"], record["group"]) == ("n1", "default")
    leader = next(r for r in records if r["msg"] == "became the leader")
    assert leader["term"] >= 1 and leader["logger"] == "agree.runtime.driver"
    snapshot = next(r for r in records if r["msg"].startswith("took a snapshot"))
    assert snapshot["index"] == index and snapshot["term"] == leader["term"]
    assert [r["msg"] for r in records][-1] == "stopped"
    assert SECRET not in stream.getvalue() and TOKEN not in stream.getvalue()


def test_bound_fields_come_from_the_context_the_adapter_and_extra_in_that_order(
    tmp_path: Path,
) -> None:
    stream = io.StringIO()
    logs.configure(_settings(tmp_path, LOG_FORMAT="json"), stream)
    term = [3]
    log = logs.get_logger("agree.test", term=lambda: term[0], object="kv")
    plain = logging.getLogger("agree.test.plain")
    with logs.bind(method="put", object="ignored", index=4):
        log.info("one")
        term[0] = 4
        log.bind(index=9).warning("two", extra={"peer": "n2"})
        plain.info("three", extra={"attempt": 2})
    plain.info("four")
    one, two, three, four = _records(stream)
    assert (one["term"], one["object"], one["method"], one["index"]) == (3, "kv", "put", 4)
    assert (two["term"], two["index"], two["peer"], two["level"]) == (4, 9, "n2", "WARNING")
    assert (three["object"], three["method"], three["attempt"]) == ("ignored", "put", 2)
    assert three["term"] is None
    # Outside the block only the handler's defaults remain.
    assert (four["node"], four["group"], four["method"], four["index"]) == (
        "n1", "default", None, None
    )


def test_the_secret_and_the_tokens_are_masked_in_every_part_of_a_line(tmp_path: Path) -> None:
    for fmt in ("json", "console"):
        stream = io.StringIO()
        logs.configure(_settings(tmp_path, LOG_FORMAT=fmt), stream)
        log = logs.get_logger("agree.test", object=f"x{TOKEN}")
        log.warning("secret %s", SECRET, extra={"header": f"Bearer {TOKEN}"})
        try:
            raise ValueError(f"bad token {TOKEN}")
        except ValueError:
            log.exception("failed")
        text = stream.getvalue()
        assert SECRET not in text and TOKEN not in text, fmt
        assert "[redacted]" in text


def test_console_lines_show_the_bound_fields(tmp_path: Path) -> None:
    stream = io.StringIO()
    logs.configure(_settings(tmp_path), stream)  # LOG_FORMAT's default is "console"
    logs.get_logger("agree.test", term=2, index=7).info("hello %s", "there")
    line = stream.getvalue().strip()
    assert line.endswith(
        "INFO agree.test [node=n1 group=default term=2 index=7]: hello there"
    ), line


def test_configuring_again_replaces_the_handler_and_leaves_the_root_logger_alone(
    tmp_path: Path,
) -> None:
    root = list(logging.getLogger().handlers)
    first, second = io.StringIO(), io.StringIO()
    logs.configure(_settings(tmp_path), first)
    logs.configure(_settings(tmp_path, LOG_LEVEL="WARNING"), second)
    logging.getLogger("agree.x").info("dropped: below WARNING")
    logging.getLogger("agree.x").warning("kept")
    assert first.getvalue() == ""
    assert second.getvalue().count("\n") == 1 and "kept" in second.getvalue()
    assert logging.getLogger().handlers == root


def test_an_embedded_node_configures_logging_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = logging.getLogger("agree")
    before = (list(logger.handlers), list(logging.getLogger().handlers), logger.propagate)
    with agree.wrap(Counter(), tmp_path / "a", timeout=20) as handle:
        handle.add(1)
    assert (list(logger.handlers), list(logging.getLogger().handlers), logger.propagate) == before

    with agree.wrap(
        Counter(), tmp_path / "b", timeout=20, configure_logging=True, LOG_FORMAT="json"
    ) as handle:
        handle.add(1)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert any(r["msg"] == "became the leader" and r["node"] == "n1" for r in lines)
