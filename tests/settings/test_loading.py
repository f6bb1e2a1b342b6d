"""Layering: defaults < settings module < -s overrides < keyword values; env var; -s parsing."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from agree.conf.settings import (
    SETTINGS_MODULE_ENV,
    load_settings,
    parse_override,
    parse_overrides,
)
from agree.errors import ConfigurationError

from .conftest import MakeModule

SECRET = "0123456789abcdef0123"
NODES = {
    "n1": "http://127.0.0.1:8001",
    "n2": "http://127.0.0.1:8002",
    "n3": "http://127.0.0.1:8003",
}


def site(make_module: MakeModule, name: str = "mysite.settings", **extra: object) -> None:
    values: dict[str, object] = {
        "NODE_ID": "n1",
        "NODES": NODES,
        "CLUSTER_SECRET": SECRET,
        "ELECTION_TICKS": 12,
        "DATABASE_URL": "sqlite:///data/{node_id}.db",
    }
    make_module(name, **{**values, **extra})


def test_the_module_overrides_the_defaults(make_module: MakeModule) -> None:
    site(make_module)
    s = load_settings("mysite.settings")
    assert (s.NODE_ID, s.ELECTION_TICKS, s.HEARTBEAT_TICKS) == ("n1", 12, 1)
    assert s.database_url_for_node() == "sqlite:///data/n1.db"
    assert s.peers() == {"n2": "http://127.0.0.1:8002", "n3": "http://127.0.0.1:8003"}


def test_a_module_object_works_like_its_name(make_module: MakeModule) -> None:
    site(make_module)
    assert load_settings(sys.modules["mysite.settings"]) == load_settings("mysite.settings")


def test_overrides_beat_the_module_and_keywords_beat_overrides(make_module: MakeModule) -> None:
    site(make_module)
    overrides = parse_overrides(["NODE_ID=n2", "ELECTION_TICKS=20", "HEARTBEAT_TICKS=2"])
    s = load_settings("mysite.settings", overrides)
    assert (s.NODE_ID, s.ELECTION_TICKS, s.HEARTBEAT_TICKS) == ("n2", 20, 2)
    s = load_settings("mysite.settings", overrides, NODE_ID="n3")
    assert (s.NODE_ID, s.ELECTION_TICKS) == ("n3", 20)
    assert s.bind_address() == ("127.0.0.1", 8003)


def test_the_environment_variable_names_the_module(
    make_module: MakeModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    site(make_module, "envsite.settings", ELECTION_TICKS=33)
    monkeypatch.setenv(SETTINGS_MODULE_ENV, "envsite.settings")
    assert load_settings().ELECTION_TICKS == 33
    # An explicit module (--settings) wins over the environment.
    site(make_module, "mysite.settings")
    assert load_settings("mysite.settings").ELECTION_TICKS == 12


def test_an_empty_environment_variable_means_no_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTINGS_MODULE_ENV, "  ")
    assert load_settings() == load_settings(None)


def test_a_settings_file_on_sys_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "filesite_0a1b"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(
        textwrap.dedent(
            """
            from agree.conf.defaults import *  # the documented way to start from defaults

            _BASE = "http://127.0.0.1"  # helper: ignored, it starts with an underscore
            NODES = {"a": _BASE + ":9001", "b": _BASE + ":9002"}
            CLUSTER_SECRET = "file-secret-file-secret"
            helper = "lower case names are not settings"
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(SETTINGS_MODULE_ENV, "filesite_0a1b.settings")
    try:
        s = load_settings(overrides={"NODE_ID": "b"})
    finally:
        for name in [n for n in sys.modules if n.startswith("filesite_0a1b")]:
            del sys.modules[name]
    assert s.bind_address() == ("127.0.0.1", 9002)
    assert s.peers() == {"a": "http://127.0.0.1:9001"}


def test_an_unknown_name_in_the_module_is_a_typo(make_module: MakeModule) -> None:
    site(make_module, NODEZ={})
    with pytest.raises(ConfigurationError) as info:
        load_settings("mysite.settings")
    assert info.value.setting == "NODEZ"
    assert str(info.value) == (
        "unknown setting 'NODEZ' in settings module 'mysite.settings' — did you mean 'NODES'?"
    )


def test_an_unknown_name_in_an_override_is_a_typo() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(overrides={"NODEZ": "{}"})
    assert info.value.setting == "NODEZ"
    assert str(info.value) == "unknown setting 'NODEZ' in -s NODEZ=... — did you mean 'NODES'?"
    with pytest.raises(ConfigurationError, match="did you mean 'NODE_ID'"):
        load_settings(overrides={"node_id": "n2"})


def test_an_unknown_keyword_is_a_typo() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'TICK_INTERVAL'") as info:
        load_settings(TICK_INTERVALS=0.1)
    assert info.value.setting == "TICK_INTERVALS"


def test_a_missing_module_names_the_module_and_how_it_was_named() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings("nosuchsite_9f.settings")
    message = str(info.value)
    assert info.value.setting == SETTINGS_MODULE_ENV
    assert "'nosuchsite_9f.settings'" in message
    assert "--settings" in message and SETTINGS_MODULE_ENV in message
    assert "PYTHONPATH" in message


def test_a_missing_module_from_the_environment_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTINGS_MODULE_ENV, "nosuchsite_9f.settings")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert f"named by the {SETTINGS_MODULE_ENV} environment variable" in str(info.value)


def test_a_file_path_instead_of_a_module_gets_a_hint() -> None:
    with pytest.raises(ConfigurationError, match=r"such as 'nosite_9f\.settings', not a file path"):
        load_settings("nosite_9f/settings.py")


def test_a_module_that_fails_to_import_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "brokensite_7c.py").write_text("NODES = {\n")  # a syntax error
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigurationError) as info:
        load_settings("brokensite_7c")
    assert "'brokensite_7c'" in str(info.value)
    assert "SyntaxError" in str(info.value)
    assert isinstance(info.value.__cause__, SyntaxError)
    assert info.value.setting == SETTINGS_MODULE_ENV


def test_an_invalid_value_says_where_it_was_set(make_module: MakeModule) -> None:
    site(make_module, HEARTBEAT_TICKS=0)
    with pytest.raises(ConfigurationError) as info:
        load_settings("mysite.settings")
    assert info.value.setting == "HEARTBEAT_TICKS"
    assert str(info.value).endswith("(set by settings module 'mysite.settings')")
    with pytest.raises(ConfigurationError) as info:
        load_settings(overrides={"NODE_ID": "n9"})
    assert str(info.value).endswith("(set by -s NODE_ID=...)")
    with pytest.raises(ConfigurationError) as info:
        load_settings(LOG_LEVEL="LOUD")
    assert str(info.value).endswith("(set by a keyword argument)")
    assert isinstance(info.value.__cause__, ConfigurationError)


def test_a_multi_node_module_without_node_id_asks_for_one(make_module: MakeModule) -> None:
    make_module("nodeless.settings", NODES=NODES, CLUSTER_SECRET=SECRET)
    with pytest.raises(ConfigurationError, match="runnode --node ID") as info:
        load_settings("nodeless.settings")
    assert info.value.setting == "NODE_ID"
    assert load_settings("nodeless.settings", {"NODE_ID": "n3"}).NODE_ID == "n3"


# -- -s KEY=VALUE ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NODE_ID=n2", ("NODE_ID", "n2")),
        ("ELECTION_TICKS=20", ("ELECTION_TICKS", 20)),
        ("TICK_INTERVAL=0.1", ("TICK_INTERVAL", 0.1)),
        ("AUTO_MIGRATE=true", ("AUTO_MIGRATE", True)),
        ("CLUSTER_SECRET=null", ("CLUSTER_SECRET", None)),
        ('NODES={"n1": "http://127.0.0.1:8001"}', ("NODES", {"n1": "http://127.0.0.1:8001"})),
        ('NODE_ID="n2"', ("NODE_ID", "n2")),
        ("DATABASE_URL=sqlite:///a=b.db", ("DATABASE_URL", "sqlite:///a=b.db")),
        ("NODE_ID=", ("NODE_ID", "")),
        (" LOG_LEVEL =DEBUG", ("LOG_LEVEL", "DEBUG")),
        ("NODES={not json", ("NODES", "{not json")),
    ],
)
def test_parse_override(text: str, expected: tuple[str, object]) -> None:
    assert parse_override(text) == expected


def test_parse_override_without_equals_says_how() -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_override("NODE_ID")
    assert info.value.setting == "NODE_ID"
    assert "has no '='; write -s KEY=VALUE" in str(info.value)
    with pytest.raises(ConfigurationError, match="no setting name"):
        parse_override("=n2")


def test_parse_overrides_keeps_raw_text_and_the_last_value_wins() -> None:
    assert parse_overrides(["NODE_ID=n1", "ELECTION_TICKS=20", "NODE_ID=n2"]) == {
        "NODE_ID": "n2",
        "ELECTION_TICKS": "20",
    }
    with pytest.raises(ConfigurationError, match="no '='"):
        parse_overrides(["NODE_ID=n1", "oops"])


def test_override_values_are_json_when_they_parse() -> None:
    nodes = {"a": "http://127.0.0.1:7001", "b": "http://127.0.0.1:7002"}
    s = load_settings(
        overrides={
            "NODES": json.dumps(nodes),
            "NODE_ID": "b",
            "CLUSTER_SECRET": SECRET,
            "ELECTION_TICKS": "20",
            "TICK_INTERVAL": "0.01",
            "AUTO_MIGRATE": "true",
            "OBJECTS": '{"kv": "pkg.models.KV"}',
        }
    )
    assert dict(s.NODES) == nodes
    assert (s.ELECTION_TICKS, s.TICK_INTERVAL, s.AUTO_MIGRATE) == (20, 0.01, True)
    assert dict(s.OBJECTS) == {"kv": "pkg.models.KV"}


def test_text_settings_keep_text_that_looks_like_json() -> None:
    s = load_settings(
        overrides={
            "NODES": '{"1": "http://127.0.0.1:7001", "2": "http://127.0.0.1:7002"}',
            "NODE_ID": "2",  # JSON would make it the number 2
            "CLUSTER_SECRET": "12345678901234567890",
            "LOG_LEVEL": '"warning"',  # a JSON string is still honoured
        }
    )
    assert (s.NODE_ID, s.CLUSTER_SECRET, s.LOG_LEVEL) == ("2", "12345678901234567890", "WARNING")


def test_a_non_json_override_for_a_number_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(overrides={"ELECTION_TICKS": "twenty"})
    assert info.value.setting == "ELECTION_TICKS"
    assert "whole number of ticks" in str(info.value)
    assert str(info.value).endswith("(set by -s ELECTION_TICKS=...)")
    with pytest.raises(ConfigurationError, match="True or False"):
        load_settings(overrides={"AUTO_MIGRATE": "True"})
