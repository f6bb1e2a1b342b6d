"""TOKENS and TLS_* settings: validated with messages that name the setting and the fix, and a
token never appears in a message or a display of the settings."""

from __future__ import annotations

import pytest

from agree.conf.settings import Settings, load_settings
from agree.errors import ConfigurationError

TOKEN = "tok-0123456789abcdef"


def test_tokens_are_checked_without_being_repeated() -> None:
    s = Settings(NODE_ID="n1", TOKENS={TOKEN: "admin", TOKEN + "r": "read"})
    assert dict(s.TOKENS) == {TOKEN: "admin", TOKEN + "r": "read"}
    shown = s.public_dict()["TOKENS"]
    assert TOKEN not in str(shown) and sorted(shown.values()) == ["admin", "read"]
    assert TOKEN not in repr(s)
    with pytest.raises(ConfigurationError, match="token number 1 is 5 characters") as info:
        Settings(NODE_ID="n1", TOKENS={"short": "admin"})
    assert info.value.setting == "TOKENS"
    with pytest.raises(ConfigurationError, match="'read', 'write' or 'admin'") as info:
        Settings(NODE_ID="n1", TOKENS={TOKEN: "root"})
    assert TOKEN not in str(info.value)
    loaded = load_settings(overrides={"TOKENS": f'{{"{TOKEN}": "write"}}'})
    assert dict(loaded.TOKENS) == {TOKEN: "write"}


def test_tls_settings_go_together() -> None:
    with pytest.raises(ConfigurationError, match="TLS_CERT is set but TLS_KEY is not") as info:
        Settings(NODE_ID="n1", TLS_CERT="/etc/agree/runtime/node.pem")
    assert info.value.setting == "TLS_KEY"
    with pytest.raises(ConfigurationError, match="TLS_KEY is set but TLS_CERT is not"):
        Settings(NODE_ID="n1", TLS_KEY="/etc/agree/runtime/node.key")
    with pytest.raises(ConfigurationError, match="TLS_CA is set without TLS_CERT"):
        Settings(NODE_ID="n1", TLS_CA="/etc/agree/ca.pem")
    s = load_settings(overrides={"TLS_CERT": "/a.pem", "TLS_KEY": "/a.key", "TLS_CA": "/ca.pem"})
    assert (s.TLS_CERT, s.TLS_KEY, s.TLS_CA) == ("/a.pem", "/a.key", "/ca.pem")
