"""Framework defaults, derived helpers, and the value behaviour of Settings."""

from __future__ import annotations

import copy
import pickle

import pytest

from agree.conf import defaults as settings_defaults
from agree.conf.settings import _EXPECTED, _TEXT_SETTINGS, Settings, load_settings
from agree.errors import ConfigurationError
from agree.raft.config import Config

THREE = {
    "n1": "http://10.0.0.1:8001",
    "n2": "http://10.0.0.2:8002",
    "n3": "https://node3.example:8443/",
}
SECRET = "s3cret-s3cret-s3cret"


def three(node_id: str = "n2", **values: object) -> Settings:
    return Settings(NODE_ID=node_id, NODES=THREE, CLUSTER_SECRET=SECRET, **values)


def test_defaults_module_and_model_name_the_same_settings() -> None:
    public = {n for n in vars(settings_defaults) if n.isupper() and not n.startswith("_")}
    assert public == set(Settings.model_fields)
    assert set(_EXPECTED) == set(Settings.model_fields)


def test_text_settings_are_exactly_the_string_typed_ones() -> None:
    expected = {
        "NODE_ID",
        "DATABASE_URL",
        "CLUSTER_SECRET",
        "SQLITE_SYNCHRONOUS",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "TLS_CERT",
        "TLS_KEY",
        "TLS_CA",
    }
    assert expected == _TEXT_SETTINGS


def test_load_settings_without_a_module_gives_the_framework_defaults() -> None:
    s = load_settings()
    assert s.NODE_ID == "n1"  # inferred: NODES has one entry
    assert dict(s.NODES) == {"n1": "http://127.0.0.1:8001"}
    assert s.DATABASE_URL == "sqlite:///agree-data/{node_id}.db"
    assert dict(s.OBJECTS) == {}
    assert s.CLUSTER_SECRET is None
    assert s.TICK_INTERVAL == 0.05
    assert s.ELECTION_TICKS == 10
    assert s.HEARTBEAT_TICKS == 1
    assert s.SNAPSHOT_ENTRIES == 10_000
    assert s.SNAPSHOT_BYTES == 64 * 1024 * 1024
    assert s.MAX_BODY_BYTES == 16 * 1024 * 1024
    assert s.MAX_CALL_BYTES == 1024 * 1024
    assert s.REQUEST_TIMEOUT == 5.0
    assert s.AUTO_MIGRATE is False
    assert s.SQLITE_SYNCHRONOUS == "FULL"
    assert s.LOG_LEVEL == "INFO"
    assert s.LOG_FORMAT == "console"
    for name in Settings.model_fields:
        if name != "NODE_ID":
            assert s.model_dump()[name] == getattr(settings_defaults, name), name


def test_defaults_are_not_shared_between_instances() -> None:
    a = load_settings()
    b = load_settings(NODES={"x": "http://127.0.0.1:9"})
    assert dict(a.NODES) == {"n1": "http://127.0.0.1:8001"}
    assert dict(b.NODES) == {"x": "http://127.0.0.1:9"}
    assert settings_defaults.NODES == {"n1": "http://127.0.0.1:8001"}


def test_database_url_for_node_formats_the_node_id() -> None:
    s = three(DATABASE_URL="postgresql+psycopg://agree@db/agree_{node_id}")
    assert s.database_url_for_node() == "postgresql+psycopg://agree@db/agree_n2"
    assert s.database_url_for_node("n3") == "postgresql+psycopg://agree@db/agree_n3"
    assert s.sqlite_path() is None


def test_literal_braces_in_database_url_are_escaped() -> None:
    s = load_settings(DATABASE_URL="sqlite:///data{{x}}/{node_id}.db")
    assert s.database_url_for_node() == "sqlite:///data{x}/n1.db"


def test_store_url_carries_sqlite_synchronous() -> None:
    assert load_settings().store_url() == "sqlite:///agree-data/n1.db"
    normal = load_settings(SQLITE_SYNCHRONOUS="NORMAL")
    assert normal.store_url() == "sqlite:///agree-data/n1.db?synchronous=NORMAL"
    assert normal.store_url("n7") == "sqlite:///agree-data/n7.db?synchronous=NORMAL"
    pg = three(DATABASE_URL="postgresql+psycopg://a:b@db/x_{node_id}", SQLITE_SYNCHRONOUS="NORMAL")
    assert pg.store_url() == "postgresql+psycopg://a:b@db/x_n2"


def test_sqlite_path() -> None:
    assert load_settings().sqlite_path() is not None
    assert str(load_settings().sqlite_path()) == "agree-data/n1.db"
    assert load_settings(DATABASE_URL="sqlite://").sqlite_path() is None
    assert load_settings(DATABASE_URL="sqlite:///:memory:").sqlite_path() is None


def test_bind_address_and_peers() -> None:
    s = three("n3")
    assert s.bind_address() == ("node3.example", 8443)
    assert s.node_url() == "https://node3.example:8443"  # trailing slash dropped
    assert s.peers() == {"n1": "http://10.0.0.1:8001", "n2": "http://10.0.0.2:8002"}
    assert three("n1").bind_address() == ("10.0.0.1", 8001)


def test_bind_address_of_an_ipv6_node() -> None:
    s = load_settings(NODES={"a": "http://[::1]:7000"})
    assert s.bind_address() == ("::1", 7000)


def test_peers_is_a_copy() -> None:
    s = three()
    s.peers()["n9"] = "http://x:1"
    assert "n9" not in s.NODES


def test_raft_config_carries_the_timings() -> None:
    config = three(ELECTION_TICKS=20, HEARTBEAT_TICKS=2).raft_config()
    assert config == Config(id="n2", election_tick=20, heartbeat_tick=2)
    config.validate()


def test_settings_are_frozen() -> None:
    s = three()
    with pytest.raises(ConfigurationError, match="frozen") as info:
        s.NODE_ID = "n1"
    assert info.value.setting == "NODE_ID"
    with pytest.raises(TypeError):
        s.NODES["n9"] = "http://x:1"  # type: ignore[index]
    with pytest.raises(TypeError):
        s.OBJECTS["x"] = "a.B"  # type: ignore[index]
    assert s.NODE_ID == "n2"


def test_replace_revalidates() -> None:
    s = three()
    t = s.replace(NODE_ID="n1", ELECTION_TICKS=30)
    assert (t.NODE_ID, t.ELECTION_TICKS, s.NODE_ID, s.ELECTION_TICKS) == ("n1", 30, "n2", 10)
    with pytest.raises(ConfigurationError) as info:
        s.replace(NODE_ID="n7")
    assert info.value.setting == "NODE_ID"
    with pytest.raises(ConfigurationError, match="did you mean 'NODE_ID'") as info:
        s.replace(NODEID="n1")
    assert info.value.setting == "NODEID"


def test_the_secret_is_not_shown() -> None:
    s = three()
    assert SECRET not in repr(s)
    assert SECRET not in str(s)
    assert s.public_dict()["CLUSTER_SECRET"] == "********"
    assert load_settings().public_dict()["CLUSTER_SECRET"] is None
    assert s.CLUSTER_SECRET == SECRET


def test_equal_settings_hash_alike_and_survive_pickle_and_copy() -> None:
    s = three()
    assert three() == s and hash(three()) == hash(s)
    assert three("n1") != s
    for clone in (pickle.loads(pickle.dumps(s)), copy.copy(s), copy.deepcopy(s)):
        assert clone == s and hash(clone) == hash(s)
        assert clone.CLUSTER_SECRET == SECRET


def test_model_dump_is_plain_data() -> None:
    dumped = three().model_dump()
    assert type(dumped["NODES"]) is dict
    assert dumped["NODES"]["n3"] == "https://node3.example:8443"
    assert '"ELECTION_TICKS":10' in three().model_dump_json()
