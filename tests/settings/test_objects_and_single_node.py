"""resolve_objects() imports OBJECTS; single_node() builds the embedded one-liner's settings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agree.conf.settings import Settings, load_settings
from agree.errors import ConfigurationError

from .conftest import MakeModule


class Plain:
    pass


def test_resolve_objects_imports_each_class(make_module: MakeModule) -> None:
    replicated = pytest.importorskip("agree.objects.replicated")

    class Counter(replicated.Replicated):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            self.value = 0

    class KV(replicated.Replicated):  # type: ignore[name-defined,misc]
        pass

    make_module("objsite.models", Counter=Counter, KV=KV)
    objects = {
        "counter": "objsite.models.Counter",
        "kv": "objsite.models.KV",
        "c2": "objsite.models.Counter",
    }
    s = load_settings(OBJECTS=objects)
    assert s.resolve_objects() == {"counter": Counter, "kv": KV, "c2": Counter}
    assert load_settings().resolve_objects() == {}


def test_a_class_that_is_not_replicated_is_refused(make_module: MakeModule) -> None:
    pytest.importorskip("agree.objects.replicated")
    make_module("objsite.models", Plain=Plain)
    with pytest.raises(ConfigurationError, match=r"not a subclass of agree\.Replicated") as info:
        load_settings(OBJECTS={"p": "objsite.models.Plain"}).resolve_objects()
    assert info.value.setting == "OBJECTS"
    assert "OBJECTS['p'] = 'objsite.models.Plain'" in str(info.value)


def test_a_module_that_cannot_be_imported(make_module: MakeModule) -> None:
    s = load_settings(OBJECTS={"counter": "nosuchpkg_41.models.Counter"})
    with pytest.raises(ConfigurationError) as info:
        s.resolve_objects()
    assert info.value.setting == "OBJECTS"
    message = str(info.value)
    assert "OBJECTS['counter'] = 'nosuchpkg_41.models.Counter'" in message
    assert "cannot import module 'nosuchpkg_41.models'" in message
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_a_module_that_raises_while_importing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "raisingmodels_52.py").write_text("raise RuntimeError('no database here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    s = load_settings(OBJECTS={"c": "raisingmodels_52.Counter"})
    with pytest.raises(ConfigurationError, match="RuntimeError: no database here"):
        s.resolve_objects()


def test_a_missing_attribute_suggests_the_closest(make_module: MakeModule) -> None:
    make_module("objsite.models", Counter=Plain)
    s = load_settings(OBJECTS={"counter": "objsite.models.Countr"})
    with pytest.raises(ConfigurationError) as info:
        s.resolve_objects()
    assert "has no attribute 'Countr' — did you mean 'Counter'?" in str(info.value)
    assert info.value.setting == "OBJECTS"


def test_something_that_is_not_a_class(make_module: MakeModule) -> None:
    make_module("objsite.models", make_counter=lambda: None, LIMIT=3)
    for attr, kind in (("make_counter", "function"), ("LIMIT", "int")):
        s = load_settings(OBJECTS={"x": f"objsite.models.{attr}"})
        with pytest.raises(ConfigurationError, match=f"is a {kind}, not a class") as info:
            s.resolve_objects()
        assert info.value.setting == "OBJECTS"


def test_settings_do_not_import_objects_until_asked(make_module: MakeModule) -> None:
    # Building and checking settings must not import the user's code.
    s = load_settings(OBJECTS={"counter": "nosuchpkg_41.models.Counter"})
    assert dict(s.OBJECTS) == {"counter": "nosuchpkg_41.models.Counter"}


# -- single_node -----------------------------------------------------------------------------


def test_single_node(tmp_path: Path) -> None:
    s = Settings.single_node(tmp_path / "data")
    assert s.NODE_ID == "n1"
    assert dict(s.NODES) == {"n1": "http://127.0.0.1:0"}
    assert s.bind_address() == ("127.0.0.1", 0)  # port 0: not served
    assert s.peers() == {}
    assert s.AUTO_MIGRATE is True
    assert s.CLUSTER_SECRET is None
    assert s.database_url_for_node() == f"sqlite:///{(tmp_path / 'data' / 'n1.db').as_posix()}"
    assert s.sqlite_path() == tmp_path / "data" / "n1.db"


def test_single_node_with_a_relative_path_is_anchored_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.single_node("agree-data", node_id="solo")
    assert s.NODE_ID == "solo"
    assert s.sqlite_path() == tmp_path / "agree-data" / "solo.db"


def test_single_node_with_braces_in_the_path(tmp_path: Path) -> None:
    s = Settings.single_node(tmp_path / "{odd}")
    assert s.sqlite_path() == tmp_path / "{odd}" / "n1.db"


def test_single_node_takes_other_settings(tmp_path: Path) -> None:
    s = Settings.single_node(
        str(tmp_path), OBJECTS={"kv": "pkg.models.KV"}, AUTO_MIGRATE=False, TICK_INTERVAL=0.01
    )
    assert dict(s.OBJECTS) == {"kv": "pkg.models.KV"}
    assert (s.AUTO_MIGRATE, s.TICK_INTERVAL) == (False, 0.01)


def test_single_node_checks_its_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.single_node(tmp_path, node_id="bad id")
    assert info.value.setting == "NODE_ID"
    with pytest.raises(ConfigurationError, match="did you mean 'OBJECTS'"):
        Settings.single_node(tmp_path, OBJECT={})
    with pytest.raises(ConfigurationError) as info:
        Settings.single_node(tmp_path, HEARTBEAT_TICKS=0)
    assert info.value.setting == "HEARTBEAT_TICKS"


def test_without_the_object_layer_any_class_resolves(
    make_module: MakeModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes the import fail as if agree.objects.replicated did not exist.
    monkeypatch.setitem(sys.modules, "agree.objects.replicated", None)
    make_module("objsite.models", Plain=Plain)
    s = load_settings(OBJECTS={"p": "objsite.models.Plain"})
    assert s.resolve_objects() == {"p": Plain}
