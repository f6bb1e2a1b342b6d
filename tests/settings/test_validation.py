"""Every invalid setting is a ConfigurationError that names the setting and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from agree.conf.settings import Settings, validate_node_id, validate_node_url
from agree.errors import ConfigurationError

SECRET = "0123456789abcdef"
TWO = {"n1": "http://127.0.0.1:8001", "n2": "http://127.0.0.1:8002"}

# (values, the setting named, a fragment of the message that says what to do)
CASES: list[tuple[dict[str, Any], str, str]] = [
    # NODE_ID
    ({"NODE_ID": "n9"}, "NODE_ID", "is not in NODES (which has n1)"),
    ({"NODES": TWO, "NODE_ID": "n3", "CLUSTER_SECRET": SECRET}, "NODE_ID", "runnode --node"),
    ({"NODES": TWO, "NODE_ID": "N1", "CLUSTER_SECRET": SECRET}, "NODE_ID", "did you mean 'n1'"),
    ({"NODES": TWO, "CLUSTER_SECRET": SECRET}, "NODE_ID", "say which node this is"),
    ({"NODE_ID": ""}, "NODE_ID", "invalid node id"),
    ({"NODE_ID": "a/b"}, "NODE_ID", "invalid node id"),
    ({"NODE_ID": 1}, "NODE_ID", "must be a node id string"),
    # NODES
    ({"NODES": {}}, "NODES", "list every member"),
    ({"NODES": ["http://127.0.0.1:8001"]}, "NODES", "must be a dict of node id to base URL"),
    ({"NODES": {1: "http://127.0.0.1:8001"}}, "NODES", "a key at NODES[1]"),
    ({"NODES": {"n1": 8001}}, "NODES", "the value at NODES['n1']"),
    ({"NODES": {"n 1": "http://127.0.0.1:8001"}}, "NODES", "invalid node id 'n 1'"),
    ({"NODES": {"n1": "127.0.0.1:8001"}}, "NODES", "no scheme; write it as 'http://127.0.0.1:8001'"),
    ({"NODES": {"n1": "ftp://h:21"}}, "NODES", "http:// or https://"),
    ({"NODES": {"n1": "http://127.0.0.1"}}, "NODES", "has no port; add one"),
    ({"NODES": {"n1": "http://:8001"}}, "NODES", "has no host"),
    ({"NODES": {"n1": "http://h:99999"}}, "NODES", "invalid port"),
    ({"NODES": {"n1": "http://h:x"}}, "NODES", "invalid port"),
    ({"NODES": {"n1": "http://u:p@h:1"}}, "NODES", "must not contain credentials"),
    ({"NODES": {"n1": "http://h:1/api"}}, "NODES", "write it as 'http://h:1'"),
    ({"NODES": {"n1": "http://h:1?x=1"}}, "NODES", "no path, query or fragment"),
    (
        {
            "NODES": {"n1": "http://h:0", "n2": "http://h:1"},
            "NODE_ID": "n1",
            "CLUSTER_SECRET": SECRET,
        },
        "NODES",
        "port 0",
    ),
    # CLUSTER_SECRET
    ({"NODES": TWO, "NODE_ID": "n1"}, "CLUSTER_SECRET", "is required because NODES has 2 nodes"),
    ({"CLUSTER_SECRET": "short"}, "CLUSTER_SECRET", "is 5 characters long; it needs at least 16"),
    ({"CLUSTER_SECRET": 1234567890123456789}, "CLUSTER_SECRET", "at least 16 characters, or None"),
    # timings
    ({"ELECTION_TICKS": 1, "HEARTBEAT_TICKS": 1}, "ELECTION_TICKS", "greater than HEARTBEAT_TICKS"),
    ({"ELECTION_TICKS": 5, "HEARTBEAT_TICKS": 8}, "ELECTION_TICKS", "greater than HEARTBEAT_TICKS"),
    ({"ELECTION_TICKS": 0}, "ELECTION_TICKS", "is 0; it must be a whole number"),
    ({"ELECTION_TICKS": "10"}, "ELECTION_TICKS", "must be a whole number of ticks"),
    ({"ELECTION_TICKS": 10.0}, "ELECTION_TICKS", "must be a whole number of ticks"),
    ({"ELECTION_TICKS": True}, "ELECTION_TICKS", "must be a whole number of ticks"),
    ({"HEARTBEAT_TICKS": 0}, "HEARTBEAT_TICKS", "greater than 0"),
    ({"HEARTBEAT_TICKS": -1}, "HEARTBEAT_TICKS", "greater than 0"),
    ({"TICK_INTERVAL": 0}, "TICK_INTERVAL", "is 0.0; it must be a number of seconds"),
    ({"TICK_INTERVAL": -0.5}, "TICK_INTERVAL", "greater than 0"),
    ({"TICK_INTERVAL": float("nan")}, "TICK_INTERVAL", "a number of seconds"),
    ({"TICK_INTERVAL": float("inf")}, "TICK_INTERVAL", "a number of seconds"),
    ({"TICK_INTERVAL": "fast"}, "TICK_INTERVAL", "a number of seconds"),
    ({"REQUEST_TIMEOUT": 0.0}, "REQUEST_TIMEOUT", "greater than 0"),
    ({"SNAPSHOT_ENTRIES": 0}, "SNAPSHOT_ENTRIES", "greater than 0"),
    ({"SNAPSHOT_BYTES": -1}, "SNAPSHOT_BYTES", "greater than 0"),
    ({"MAX_BODY_BYTES": 0}, "MAX_BODY_BYTES", "greater than 0"),
    ({"MAX_CALL_BYTES": 0}, "MAX_CALL_BYTES", "greater than 0"),
    # DATABASE_URL
    ({"DATABASE_URL": "data/{nodeid}.db"}, "DATABASE_URL", "the only placeholder is {node_id}"),
    ({"DATABASE_URL": "sqlite:///{0}.db"}, "DATABASE_URL", "the only placeholder is {node_id}"),
    ({"DATABASE_URL": "sqlite:///{node_id.db"}, "DATABASE_URL", "unbalanced braces"),
    ({"DATABASE_URL": "agree.db"}, "DATABASE_URL", "is not a database URL; use e.g."),
    (
        {"NODES": TWO, "NODE_ID": "n1", "CLUSTER_SECRET": SECRET, "DATABASE_URL": "sqlite://"},
        "DATABASE_URL",
        "in-memory SQLite",
    ),
    ({"DATABASE_URL": None}, "DATABASE_URL", "a SQLAlchemy URL string"),
    (
        {"DATABASE_URL": "sqlite:///a.db?synchronous=NORMAL"},
        "DATABASE_URL",
        "set SQLITE_SYNCHRONOUS instead",
    ),
    # OBJECTS
    ({"OBJECTS": {"counter": "Counter"}}, "OBJECTS", "write it as 'package.module.ClassName'"),
    ({"OBJECTS": {"counter": "my-app.models.Counter"}}, "OBJECTS", "not a dotted path"),
    ({"OBJECTS": {"counter": "a..B"}}, "OBJECTS", "not a dotted path"),
    ({"OBJECTS": {"my counter": "a.B"}}, "OBJECTS", "invalid object name 'my counter'"),
    ({"OBJECTS": {"c": object}}, "OBJECTS", "dotted class path"),
    # the rest
    ({"AUTO_MIGRATE": "yes"}, "AUTO_MIGRATE", "True or False"),
    ({"AUTO_MIGRATE": 1}, "AUTO_MIGRATE", "True or False"),
    ({"SQLITE_SYNCHRONOUS": "OFF"}, "SQLITE_SYNCHRONOUS", "'FULL' (durable) or 'NORMAL'"),
    ({"LOG_LEVEL": "VERBOSE"}, "LOG_LEVEL", "one of 'DEBUG', 'INFO'"),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT", "'console' (for a terminal) or 'json'"),
    ({"LOG_FORMAT": 1}, "LOG_FORMAT", "'console' (for a terminal) or 'json'"),
    # names
    ({"NODEZ": {}}, "NODEZ", "unknown setting 'NODEZ' — did you mean 'NODES'?"),
    ({"election_ticks": 3}, "election_ticks", "did you mean 'ELECTION_TICKS'?"),
]


@pytest.mark.parametrize(("values", "setting", "fragment"), CASES)
def test_invalid_setting(values: dict[str, Any], setting: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings(**values)
    assert info.value.setting == setting
    message = str(info.value)
    assert fragment in message
    assert setting in message


@pytest.mark.parametrize(("values", "setting", "fragment"), CASES)
def test_model_validate_raises_the_same_error(
    values: dict[str, Any], setting: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.model_validate(values)
    assert info.value.setting == setting
    assert fragment in str(info.value)


def test_an_unknown_name_far_from_every_setting_gets_no_guess() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings(XYZZY=1)
    assert str(info.value) == "unknown setting 'XYZZY'"


def test_a_non_mapping_input_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="names and values"):
        Settings.model_validate(["NODE_ID"])


def test_messages_never_contain_the_secret() -> None:
    secret = "tooshort"
    with pytest.raises(ConfigurationError) as info:
        Settings(CLUSTER_SECRET=secret)
    assert secret not in str(info.value)
    number = 123456789012345678901
    with pytest.raises(ConfigurationError) as info:
        Settings(CLUSTER_SECRET=number)
    assert str(number) not in str(info.value)


def test_valid_edge_values_pass() -> None:
    s = Settings(
        NODES={"a.b_c-1": "HTTP://Host.Example:1", "n2": "https://[::1]:65535/"},
        NODE_ID="a.b_c-1",
        CLUSTER_SECRET="x" * 16,
        ELECTION_TICKS=2,
        HEARTBEAT_TICKS=1,
        TICK_INTERVAL=1,  # an int is a number of seconds too
        SQLITE_SYNCHRONOUS="normal",
        LOG_LEVEL="debug",
        LOG_FORMAT="JSON",
        OBJECTS={"kv-1": "pkg.mod.KV", "counter": "pkg.Counter"},
    )
    assert s.NODES == {"a.b_c-1": "http://Host.Example:1", "n2": "https://[::1]:65535"}
    assert s.TICK_INTERVAL == 1.0 and isinstance(s.TICK_INTERVAL, float)
    assert (s.SQLITE_SYNCHRONOUS, s.LOG_LEVEL, s.LOG_FORMAT) == ("NORMAL", "DEBUG", "json")


def test_port_zero_is_allowed_for_a_single_node() -> None:
    assert Settings(NODES={"n1": "http://127.0.0.1:0"}).bind_address() == ("127.0.0.1", 0)


def test_in_memory_sqlite_is_allowed_for_a_single_node() -> None:
    assert Settings(DATABASE_URL="sqlite://").database_url_for_node() == "sqlite://"


def test_validate_node_id_and_url_are_reusable_for_membership_changes() -> None:
    assert validate_node_id("n4", setting="id") == "n4"
    assert validate_node_url("http://h:4/", setting="url") == "http://h:4"
    with pytest.raises(ConfigurationError) as info:
        validate_node_url("h:4", setting="url")
    assert info.value.setting == "url"
    with pytest.raises(ConfigurationError):
        validate_node_id("-n4", setting="id")
    with pytest.raises(ConfigurationError, match="port 0"):
        validate_node_url("http://h:0", setting="url")
    with pytest.raises(ConfigurationError, match="URL string"):
        validate_node_url(None, setting="url")


def test_database_url_messages_mask_the_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings(DATABASE_URL="postgresql+psycopg://agree:hunter2@db/agree_{node}")
    assert info.value.setting == "DATABASE_URL"
    assert "hunter2" not in str(info.value)
    assert "postgresql+psycopg://agree:***@db/agree_{node}" in str(info.value)
