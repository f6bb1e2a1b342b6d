"""Settings of an agree node: the typed, frozen :class:`Settings` and how it is loaded.

Loading is Django-shaped.  :func:`load_settings` starts from the framework
defaults (:mod:`agree.conf.defaults`), applies the upper-case names of the
settings module (named by ``--settings`` or ``AGREE_SETTINGS_MODULE``), then
``-s KEY=VALUE`` overrides, then keyword values.  Every problem is raised as
:class:`agree.errors.ConfigurationError` whose ``setting`` names the setting and
whose message says what to do; pydantic's own errors never escape.

Importing the classes named by ``OBJECTS`` is deferred to
:meth:`Settings.resolve_objects`, so that a settings object can be built (and
checked) without importing the user's code.
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
import re
import string
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, Self, TypeVar, get_origin
from urllib.parse import urlsplit

import pydantic
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    field_serializer,
    field_validator,
    model_validator,
)

from agree.conf import defaults
from agree.errors import ConfigurationError
from agree.raft.config import Config

__all__ = [
    "SETTINGS_MODULE_ENV",
    "Settings",
    "load_settings",
    "parse_override",
    "parse_overrides",
    "validate_node_id",
    "validate_node_url",
]

SETTINGS_MODULE_ENV: Final = "AGREE_SETTINGS_MODULE"

MIN_SECRET_LENGTH: Final = 16

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["console", "json"]
Permission = Literal["read", "write", "admin"]
SqliteSynchronous = Literal["FULL", "NORMAL"]

# Node ids and object names travel in URL paths (/v1/members/{id},
# /v1/objects/{name}/...) and in file names ("{node_id}.db"), so they are kept
# to characters that need no escaping anywhere.
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

_SECRET_HINT: Final = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"

# What each setting must be, for messages about a value of the wrong type.
_EXPECTED: Final[Mapping[str, str]] = {
    "NODE_ID": "a node id string such as 'n1'",
    "NODES": "a dict of node id to base URL, e.g. {'n1': 'http://127.0.0.1:8001'}",
    "DATABASE_URL": "a SQLAlchemy URL string, e.g. 'sqlite:///agree-data/{node_id}.db'",
    "OBJECTS": "a dict of object name to dotted class path, "
    "e.g. {'counter': 'myproject.models.Counter'}",
    "GROUPS": "a dict of group id to a list of object names, e.g. {'orders': ['orders']}",
    "CLUSTER_SECRET": f"a string of at least {MIN_SECRET_LENGTH} characters, or None",
    "TICK_INTERVAL": "a number of seconds greater than 0, e.g. 0.05",
    "ELECTION_TICKS": "a whole number of ticks greater than 0, e.g. 10",
    "HEARTBEAT_TICKS": "a whole number of ticks greater than 0, e.g. 1",
    "SNAPSHOT_ENTRIES": "a whole number of entries greater than 0, e.g. 10000",
    "SNAPSHOT_BYTES": "a whole number of bytes greater than 0, e.g. 67108864",
    "MAX_BODY_BYTES": "a whole number of bytes greater than 0, e.g. 16777216",
    "MAX_CALL_BYTES": "a whole number of bytes greater than 0, e.g. 1048576",
    "REQUEST_TIMEOUT": "a number of seconds greater than 0, e.g. 5.0",
    "TOKENS": "a dict of token to permission ('read', 'write' or 'admin'), "
    "e.g. {'<a random token>': 'admin'}",
    "TLS_CERT": "the path of a PEM certificate file, or None",
    "TLS_KEY": "the path of a PEM private key file, or None",
    "TLS_CA": "the path of a PEM CA certificate file, or None",
    "AUTO_MIGRATE": "True or False (true or false with -s)",
    "SQLITE_SYNCHRONOUS": "'FULL' (durable) or 'NORMAL' (faster, unsafe under power loss)",
    "STORAGE_COMMIT_DELAY": "a number of seconds >= 0 (testing only; 0 in production)",
    "LOG_LEVEL": "one of 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'",
    "LOG_FORMAT": "'console' (for a terminal) or 'json' (one JSON object per line)",
}


class Settings(BaseModel):
    """The validated settings of one node.  Frozen: use :meth:`replace` for a changed copy.

    Build one with :func:`load_settings`, :meth:`single_node`, or directly with
    keyword arguments named like the settings (``Settings(NODE_ID="n1", ...)``);
    anything not given takes the framework default.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,  # a module that says ELECTION_TICKS = "10" or True has a bug worth reporting
        allow_inf_nan=False,
        validate_default=True,
        hide_input_in_errors=True,  # the input may be CLUSTER_SECRET
    )

    NODE_ID: str
    NODES: Mapping[str, str] = Field(default_factory=lambda: dict(defaults.NODES))
    DATABASE_URL: str = defaults.DATABASE_URL
    OBJECTS: Mapping[str, str] = Field(default_factory=lambda: dict(defaults.OBJECTS))
    GROUPS: Mapping[str, list[str] | tuple[str, ...]] = Field(
        default_factory=lambda: dict(defaults.GROUPS)
    )
    CLUSTER_SECRET: str | None = Field(default=defaults.CLUSTER_SECRET, repr=False)
    TICK_INTERVAL: float = defaults.TICK_INTERVAL
    ELECTION_TICKS: int = defaults.ELECTION_TICKS
    HEARTBEAT_TICKS: int = defaults.HEARTBEAT_TICKS
    SNAPSHOT_ENTRIES: int = defaults.SNAPSHOT_ENTRIES
    SNAPSHOT_BYTES: int = defaults.SNAPSHOT_BYTES
    MAX_BODY_BYTES: int = defaults.MAX_BODY_BYTES
    MAX_CALL_BYTES: int = defaults.MAX_CALL_BYTES
    TOKENS: Mapping[str, Permission] = Field(
        default_factory=lambda: dict(defaults.TOKENS), repr=False
    )
    TLS_CERT: str | None = defaults.TLS_CERT
    TLS_KEY: str | None = defaults.TLS_KEY
    TLS_CA: str | None = defaults.TLS_CA
    REQUEST_TIMEOUT: float = defaults.REQUEST_TIMEOUT
    AUTO_MIGRATE: bool = defaults.AUTO_MIGRATE
    SQLITE_SYNCHRONOUS: SqliteSynchronous = defaults.SQLITE_SYNCHRONOUS
    STORAGE_COMMIT_DELAY: float = defaults.STORAGE_COMMIT_DELAY
    LOG_LEVEL: LogLevel = defaults.LOG_LEVEL
    LOG_FORMAT: LogFormat = defaults.LOG_FORMAT

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def single_node(cls, path: str | Path, node_id: str = "n1", **values: Any) -> Settings:
        """Settings for the embedded one-node cluster: a SQLite file under ``path``.

        The node's URL has port 0, meaning its HTTP API is not served.  Migrations
        run automatically.  ``values`` override any setting.
        """
        validate_node_id(node_id, setting="NODE_ID")
        # Braces in the directory name must not be taken for placeholders.
        file = (Path(path).resolve() / f"{node_id}.db").as_posix()
        file = file.replace("{", "{{").replace("}", "}}")
        base: dict[str, Any] = {
            "NODE_ID": node_id,
            "NODES": {node_id: "http://127.0.0.1:0"},
            "DATABASE_URL": f"sqlite:///{file}",
            "AUTO_MIGRATE": True,
        }
        _check_names(values, "Settings.single_node()")
        return cls(**{**base, **values})

    def replace(self, **changes: Any) -> Self:
        """A validated copy with ``changes`` applied (e.g. ``replace(NODE_ID="n2")``)."""
        _check_names(changes, "Settings.replace()")
        current: dict[str, Any] = {
            name: getattr(self, name) for name in type(self).model_fields
        }
        current["NODES"] = dict(self.NODES)
        current["OBJECTS"] = dict(self.OBJECTS)
        current["GROUPS"] = dict(self.GROUPS)
        current["TOKENS"] = dict(self.TOKENS)
        return type(self)(**{**current, **changes})

    @model_validator(mode="wrap")
    @classmethod
    def _translate_errors(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        if isinstance(data, Mapping):
            data = _infer_node_id(data)
        try:
            return handler(data)
        except pydantic.ValidationError as exc:
            raise _from_pydantic(exc) from None

    # -- field checks (types are already right here) --------------------------------------

    @field_validator("SQLITE_SYNCHRONOUS", "LOG_LEVEL", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("LOG_FORMAT", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("NODE_ID")
    @classmethod
    def _check_node_id(cls, value: str) -> str:
        validate_node_id(value, setting="NODE_ID")
        return value

    @field_validator("NODES")
    @classmethod
    def _check_nodes(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        if not value:
            raise ConfigurationError(
                "NODES is empty; list every member of the cluster, "
                "e.g. NODES = {'n1': 'http://127.0.0.1:8001'}",
                setting="NODES",
            )
        single = len(value) == 1
        nodes = {}
        for node_id, url in value.items():
            validate_node_id(node_id, setting="NODES")
            nodes[node_id] = validate_node_url(
                url, setting="NODES", node_id=node_id, allow_port_zero=single
            )
        # A read-only view, so that a frozen Settings cannot be changed through it.
        return types.MappingProxyType(nodes)

    @field_validator("OBJECTS")
    @classmethod
    def _check_objects(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        for name, path in value.items():
            if not _NAME_RE.fullmatch(name):
                raise ConfigurationError(
                    f"OBJECTS has an invalid object name {name!r}; names appear in URLs, so use "
                    "letters, digits, '_', '-' and '.' (at most 64, starting with a letter "
                    "or digit)",
                    setting="OBJECTS",
                )
            parts = path.split(".")
            if len(parts) < 2 or not all(part.isidentifier() for part in parts):
                raise ConfigurationError(
                    f"OBJECTS[{name!r}] = {path!r} is not a dotted path to a class; "
                    "write it as 'package.module.ClassName'",
                    setting="OBJECTS",
                )
        return types.MappingProxyType(dict(value))

    @field_validator("GROUPS")
    @classmethod
    def _check_groups(
        cls, value: Mapping[str, list[str] | tuple[str, ...]]
    ) -> Mapping[str, tuple[str, ...]]:
        placed: dict[str, str] = {}
        for group_id, names in value.items():
            if not _NAME_RE.fullmatch(group_id):
                raise ConfigurationError(
                    f"GROUPS has an invalid group id {group_id!r}; use letters, digits, '_', '-'"
                    " and '.' (at most 64, starting with a letter or digit)",
                    setting="GROUPS",
                )
            if not names:
                raise ConfigurationError(
                    f"GROUPS[{group_id!r}] names no object; list the names of the objects it"
                    " hosts, or leave the group out",
                    setting="GROUPS",
                )
            for name in names:
                if name in placed:
                    raise ConfigurationError(
                        f"object {name!r} is in two groups of GROUPS ({placed[name]!r} and"
                        f" {group_id!r}); an object lives in exactly one group",
                        setting="GROUPS",
                    )
                placed[name] = group_id
        return types.MappingProxyType({g: tuple(names) for g, names in value.items()})

    @field_validator("CLUSTER_SECRET")
    @classmethod
    def _check_secret(cls, value: str | None) -> str | None:
        # The message never repeats the secret itself.
        if value is not None and len(value) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"CLUSTER_SECRET is {len(value)} characters long; it needs at least "
                f"{MIN_SECRET_LENGTH}. Generate one with {_SECRET_HINT}",
                setting="CLUSTER_SECRET",
            )
        return value

    @field_validator("TOKENS")
    @classmethod
    def _check_tokens(cls, value: Mapping[str, Permission]) -> Mapping[str, Permission]:
        # Messages number the tokens: they never repeat one.
        for position, token in enumerate(value, 1):
            if len(token) < MIN_SECRET_LENGTH or not token.isprintable() or " " in token:
                raise ConfigurationError(
                    f"TOKENS: token number {position} is {len(token)} characters long or "
                    f"contains spaces; each token needs at least {MIN_SECRET_LENGTH} printable "
                    f"characters without spaces. Generate one with {_SECRET_HINT}",
                    setting="TOKENS",
                )
        return types.MappingProxyType(dict(value))

    @field_validator("TICK_INTERVAL", "REQUEST_TIMEOUT")
    @classmethod
    def _check_seconds(cls, value: float, info: pydantic.ValidationInfo) -> float:
        return _positive(info.field_name, value)

    @field_validator("STORAGE_COMMIT_DELAY")
    @classmethod
    def _check_delay(cls, value: float, info: pydantic.ValidationInfo) -> float:
        if not value >= 0:  # also refuses NaN
            raise ConfigurationError(
                f"STORAGE_COMMIT_DELAY is {value!r}; it must be "
                f"{_EXPECTED['STORAGE_COMMIT_DELAY']}",
                setting="STORAGE_COMMIT_DELAY",
            )
        return float(value)

    @field_validator(
        "ELECTION_TICKS",
        "HEARTBEAT_TICKS",
        "SNAPSHOT_ENTRIES",
        "SNAPSHOT_BYTES",
        "MAX_BODY_BYTES",
        "MAX_CALL_BYTES",
    )
    @classmethod
    def _check_count(cls, value: int, info: pydantic.ValidationInfo) -> int:
        return _positive(info.field_name, value)

    # -- checks across settings ------------------------------------------------------------

    @model_validator(mode="after")
    def _check_together(self) -> Self:
        if self.NODE_ID not in self.NODES:
            known = ", ".join(sorted(self.NODES))
            raise ConfigurationError(
                f"NODE_ID {self.NODE_ID!r} is not in NODES (which has {known})"
                f"{_did_you_mean(self.NODE_ID, self.NODES)}; pass runnode --node with one of "
                f"those ids, or add {self.NODE_ID!r}: 'http://host:port' to NODES",
                setting="NODE_ID",
            )
        if self.ELECTION_TICKS <= self.HEARTBEAT_TICKS:
            raise ConfigurationError(
                f"ELECTION_TICKS ({self.ELECTION_TICKS}) must be greater than HEARTBEAT_TICKS "
                f"({self.HEARTBEAT_TICKS}): a leader must be heard several times per election "
                "timeout or followers depose it (Raft §5.2); e.g. ELECTION_TICKS = 10 with "
                "HEARTBEAT_TICKS = 1",
                setting="ELECTION_TICKS",
            )
        if len(self.NODES) > 1 and self.CLUSTER_SECRET is None:
            raise ConfigurationError(
                f"CLUSTER_SECRET is required because NODES has {len(self.NODES)} nodes; set it "
                f"to the same random string of at least {MIN_SECRET_LENGTH} characters on every "
                f"node, e.g. from {_SECRET_HINT}",
                setting="CLUSTER_SECRET",
            )
        if (self.TLS_CERT is None) != (self.TLS_KEY is None):
            given, missing = ("TLS_CERT", "TLS_KEY") if self.TLS_KEY is None else (
                "TLS_KEY", "TLS_CERT"
            )
            raise ConfigurationError(
                f"{given} is set but {missing} is not; TLS needs both the certificate chain "
                "(TLS_CERT) and its private key (TLS_KEY), as PEM file paths",
                setting=missing,
            )
        if self.TLS_CA is not None and self.TLS_CERT is None:
            raise ConfigurationError(
                "TLS_CA is set without TLS_CERT and TLS_KEY; mutual TLS needs this node's own "
                "certificate and key too",
                setting="TLS_CERT",
            )
        self._check_database_url()
        return self

    def _check_database_url(self) -> None:
        template = self.DATABASE_URL
        shown = _masked(template)
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as exc:
            raise ConfigurationError(
                f"DATABASE_URL {shown!r} has unbalanced braces ({exc}); the only "
                "placeholder is {node_id}, and a literal brace is written {{ or }}",
                setting="DATABASE_URL",
            ) from None
        unknown = sorted({f for f in fields if f != "node_id"})
        if unknown:
            raise ConfigurationError(
                f"DATABASE_URL {shown!r} uses the placeholder {{{unknown[0]}}}; the only "
                "placeholder is {node_id}, and a literal brace is written {{ or }}",
                setting="DATABASE_URL",
            )
        url = self.database_url_for_node()
        # Imported here, not at the top: ``import agree`` must not load SQLAlchemy.
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ConfigurationError(
                f"DATABASE_URL {shown!r} is not a database URL; use e.g. "
                "'sqlite:///agree-data/{node_id}.db' or "
                "'postgresql+psycopg://user@host/agree_{node_id}'",
                setting="DATABASE_URL",
            ) from None
        if "synchronous" in parsed.query:
            # One place decides durability, so that a reviewer of the settings sees it.
            raise ConfigurationError(
                f"DATABASE_URL {shown!r} sets ?synchronous=; remove it and set "
                "SQLITE_SYNCHRONOUS instead ('FULL', the default, or 'NORMAL')",
                setting="DATABASE_URL",
            )
        in_memory = parsed.get_backend_name() == "sqlite" and parsed.database in (
            None,
            "",
            ":memory:",
        )
        if in_memory and len(self.NODES) > 1:
            # Raft §5.1: currentTerm and votedFor must survive a restart, or a
            # restarted node may vote twice in one term.
            raise ConfigurationError(
                "DATABASE_URL is an in-memory SQLite database, which forgets the node's term "
                "and vote on restart; a cluster of several nodes needs durable storage, e.g. "
                "'sqlite:///agree-data/{node_id}.db'",
                setting="DATABASE_URL",
            )

    def __setattr__(self, name: str, value: Any) -> None:
        raise ConfigurationError(
            f"settings are frozen; build a changed copy with settings.replace({name}=...)",
            setting=name,
        )

    def __delattr__(self, name: str) -> None:
        raise ConfigurationError("settings are frozen", setting=name)

    # The read-only mappings cannot be pickled or deep-copied as they are; an
    # immutable value needs no copy, and a pickle rebuilds (and re-checks) it.
    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.model_dump()))

    def __hash__(self) -> int:
        return hash(tuple(_hashable(getattr(self, name)) for name in type(self).model_fields))

    @field_serializer("NODES", "OBJECTS", "TOKENS")
    def _serialize_mapping(self, value: Mapping[str, str]) -> dict[str, str]:
        return dict(value)

    @field_serializer("GROUPS")
    def _serialize_groups(
        self, value: Mapping[str, list[str] | tuple[str, ...]]
    ) -> dict[str, list[str]]:
        return {group_id: list(names) for group_id, names in value.items()}

    # -- derived values -------------------------------------------------------------------

    def database_url_for_node(self, node_id: str | None = None) -> str:
        """DATABASE_URL with ``{node_id}`` replaced by ``node_id`` (default: NODE_ID)."""
        return self.DATABASE_URL.format(node_id=self.NODE_ID if node_id is None else node_id)

    def store_url(self, node_id: str | None = None) -> str:
        """The URL to open this node's store with: :meth:`database_url_for_node` carrying
        SQLITE_SYNCHRONOUS as ``?synchronous=`` for SQLite (the form
        :func:`agree.storage.engine.create_store_engine` reads); other URLs unchanged.
        """
        from sqlalchemy.engine import make_url

        url = self.database_url_for_node(node_id)
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or self.SQLITE_SYNCHRONOUS == "FULL":
            return url  # FULL is the store's own default
        parsed = parsed.update_query_dict({"synchronous": self.SQLITE_SYNCHRONOUS})
        return parsed.render_as_string(hide_password=False)

    def sqlite_path(self) -> Path | None:
        """The SQLite file of this node's database, or None (not SQLite, or in memory).

        Whoever opens the database creates its directory; SQLite will not.
        """
        from sqlalchemy.engine import make_url

        parsed = make_url(self.database_url_for_node())
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        return Path(str(parsed.database))

    def node_url(self) -> str:
        """This node's own base URL, from NODES."""
        return self.NODES[self.NODE_ID]

    def bind_address(self) -> tuple[str, int]:
        """(host, port) of this node's own NODES entry.  Port 0 means "not served"."""
        parts = urlsplit(self.node_url())
        assert parts.hostname is not None and parts.port is not None  # checked at validation
        return parts.hostname, parts.port

    def peers(self) -> dict[str, str]:
        """NODES without this node: peer id -> base URL."""
        return {node_id: url for node_id, url in self.NODES.items() if node_id != self.NODE_ID}

    def raft_config(self) -> Config:
        """The Raft core's tunables taken from these settings."""
        return Config(
            id=self.NODE_ID,
            election_tick=self.ELECTION_TICKS,
            heartbeat_tick=self.HEARTBEAT_TICKS,
        )

    def public_dict(self) -> dict[str, Any]:
        """All settings as plain values, with CLUSTER_SECRET masked, for display."""
        values = self.model_dump()
        if values["CLUSTER_SECRET"] is not None:
            values["CLUSTER_SECRET"] = "********"
        values["TOKENS"] = {f"<token {i}>": p for i, p in enumerate(values["TOKENS"].values(), 1)}
        return values

    def resolve_objects(self) -> dict[str, type]:
        """Import every class named in OBJECTS: object name -> class.

        Raises ConfigurationError(setting="OBJECTS") naming the object and the path
        when a module cannot be imported, has no such attribute, or it is not a
        subclass of :class:`agree.objects.replicated.Replicated`.
        """
        base = _replicated_base()
        resolved = {}
        for name, path in self.OBJECTS.items():
            cls = _import_class(name, path)
            if base is not None and not issubclass(cls, base):
                raise ConfigurationError(
                    f"OBJECTS[{name!r}] = {path!r} is not a subclass of agree.Replicated; "
                    "derive the class from Replicated and mark its methods @command/@query",
                    setting="OBJECTS",
                )
            resolved[name] = cls
        return resolved


# -- loading ----------------------------------------------------------------------------------


def load_settings(
    module: str | types.ModuleType | None = None,
    overrides: Mapping[str, str] | None = None,
    **values: Any,
) -> Settings:
    """Build the settings of a node.  Later layers win:

    1. the framework defaults (:mod:`agree.conf.defaults`);
    2. the upper-case names of ``module`` (a dotted module name or a module object;
       when None, the module named by the ``AGREE_SETTINGS_MODULE`` environment
       variable, if set); names starting with ``_`` are ignored;
    3. ``overrides``, the raw text of ``-s KEY=VALUE`` options (see
       :func:`parse_overrides`): a value is parsed as JSON when it parses, except
       that a text setting (NODE_ID, DATABASE_URL, ...) keeps its raw text unless
       the JSON is a string or null;
    4. ``values``, given as keyword arguments (``NODE_ID="n2"``).
    """
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}

    if module is None:
        env = os.environ.get(SETTINGS_MODULE_ENV, "").strip()
        if env:
            module = _import_settings_module(
                env, f"the {SETTINGS_MODULE_ENV} environment variable"
            )
    elif isinstance(module, str):
        module = _import_settings_module(
            module, f"--settings (or the {SETTINGS_MODULE_ENV} environment variable)"
        )
    if module is not None:
        where = f"settings module {module.__name__!r}"
        from_module = {
            name: getattr(module, name)
            for name in dir(module)
            if name.isupper() and not name.startswith("_")
        }
        _check_names(from_module, where)
        merged.update(from_module)
        sources.update(dict.fromkeys(from_module, where))

    if overrides:
        _check_names(overrides, "-s {name}=...")
        for name, raw in overrides.items():
            merged[name] = _decode_override(name, raw)
            sources[name] = f"-s {name}=..."

    if values:
        _check_names(values, "load_settings()")
        merged.update(values)
        sources.update(dict.fromkeys(values, "a keyword argument"))

    try:
        return Settings(**merged)
    except ConfigurationError as exc:
        source = sources.get(exc.setting or "")
        if source is None:
            raise
        raise ConfigurationError(f"{exc} (set by {source})", setting=exc.setting) from exc


def parse_override(text: str) -> tuple[str, object]:
    """Parse one ``-s KEY=VALUE``: the value as JSON when it parses, else as a string.

    ``-s ELECTION_TICKS=20`` gives 20, ``-s NODE_ID=n2`` gives "n2",
    ``-s 'NODES={"n1": "http://127.0.0.1:8001"}'`` gives a dict.
    """
    name, raw = _split_override(text)
    return name, _json_or_text(raw)


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """Split ``-s KEY=VALUE`` options into the raw mapping :func:`load_settings` takes.

    A later option for the same key wins.
    """
    return dict(_split_override(item) for item in items)


def validate_node_id(node_id: object, *, setting: str) -> str:
    """Check a node id (for NODE_ID, NODES or a membership change); return it."""
    if not isinstance(node_id, str) or not _NAME_RE.fullmatch(node_id):
        raise ConfigurationError(
            f"{setting} has an invalid node id {node_id!r}; a node id is 1 to 64 letters, "
            "digits, '_', '-' or '.', starting with a letter or digit, e.g. 'n1'",
            setting=setting,
        )
    return node_id


def validate_node_url(
    url: object, *, setting: str, node_id: str | None = None, allow_port_zero: bool = False
) -> str:
    """Check a node's base URL ``http(s)://host:port``; return it without a trailing slash.

    Port 0 means "not served" and is allowed only when ``allow_port_zero``.
    """
    label = setting if node_id is None else f"{setting}[{node_id!r}]"
    if not isinstance(url, str):
        raise ConfigurationError(
            f"{label} must be a URL string such as 'http://127.0.0.1:8001', "
            f"not {type(url).__name__}",
            setting=setting,
        )
    if "://" not in url:
        raise ConfigurationError(
            f"{label} = {url!r} has no scheme; write it as 'http://{url}'", setting=setting
        )
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ConfigurationError(
            f"{label} = {url!r} must use http:// or https://", setting=setting
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            f"{label} = {url!r} must not contain credentials; peers authenticate with "
            "CLUSTER_SECRET",
            setting=setting,
        )
    if not parts.hostname:
        raise ConfigurationError(
            f"{label} = {url!r} has no host; write it as 'http://host:port'", setting=setting
        )
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(
            f"{label} = {url!r} has an invalid port; use a number from 1 to 65535",
            setting=setting,
        ) from None
    if port is None:
        raise ConfigurationError(
            f"{label} = {url!r} has no port; add one, e.g. "
            f"'{parts.scheme}://{parts.netloc}:8001'",
            setting=setting,
        )
    if port == 0 and not allow_port_zero:
        raise ConfigurationError(
            f"{label} = {url!r} has port 0, which means 'not served' and is allowed only "
            "for a single-node cluster; give the port the node listens on",
            setting=setting,
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(
            f"{label} = {url!r} must be a base URL with no path, query or fragment; "
            f"write it as '{parts.scheme}://{parts.netloc}'",
            setting=setting,
        )
    return f"{parts.scheme.lower()}://{parts.netloc}"


# -- helpers ----------------------------------------------------------------------------------


_TEXT_SETTINGS: Final = frozenset(
    name
    for name, field in Settings.model_fields.items()
    if field.annotation in (str, str | None) or get_origin(field.annotation) is Literal
)


def _check_names(values: Iterable[str], where: str) -> None:
    """Reject names that are not settings, suggesting the closest one.

    ``where`` says where the name was written; "{name}" in it is filled in.
    """
    known = Settings.model_fields
    for name in values:
        if name not in known:
            place = where.replace("{name}", name)
            raise ConfigurationError(
                f"unknown setting {name!r} in {place}{_did_you_mean(name, known)}",
                setting=name,
            )


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' — did you mean X?' for the closest choice, ignoring case; '' when none is close."""
    by_folded = {choice.casefold(): choice for choice in choices}
    close = difflib.get_close_matches(name.casefold(), by_folded, n=1, cutoff=0.6)
    return f" — did you mean {by_folded[close[0]]!r}?" if close else ""


def load_cluster_settings(
    module: str | types.ModuleType | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Settings:
    """The settings as seen from outside any one node (a client, ``check``, ``devcluster``):
    as :func:`load_settings`, except that a missing NODE_ID with several NODES is taken to be
    the first member instead of being an error."""
    try:
        return load_settings(module, overrides)
    except ConfigurationError as exc:
        if exc.setting != "NODE_ID":
            raise
    nodes: Any
    if overrides and "NODES" in overrides:
        nodes = _decode_override("NODES", overrides["NODES"])
    else:
        if module is None:
            module = os.environ.get(SETTINGS_MODULE_ENV, "").strip() or None
        if isinstance(module, str):
            module = _import_settings_module(module, "--settings")
        nodes = getattr(module, "NODES", defaults.NODES)
    first = next(iter(nodes), None) if isinstance(nodes, Mapping) else None
    return load_settings(module, overrides, NODE_ID=first)


def _infer_node_id(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Fill a missing NODE_ID from a one-node NODES; a several-node NODES needs it said."""
    if data.get("NODE_ID") is not None:
        return data
    nodes = data.get("NODES", defaults.NODES)
    if not isinstance(nodes, Mapping):
        return data  # the type error on NODES is the one to report
    if len(nodes) == 1:
        (only,) = nodes
        # An invalid id is left for the NODES check to report.
        valid = isinstance(only, str) and _NAME_RE.fullmatch(only)
        return {**data, "NODE_ID": only} if valid else data
    if not nodes:
        return data  # the NODES check says that it is empty
    known = ", ".join(sorted(map(str, nodes))) or "no nodes"
    raise ConfigurationError(
        f"NODE_ID is not set and NODES has {known}; say which node this is with "
        "runnode --node ID, -s NODE_ID=ID, or NODE_ID in the settings module",
        setting="NODE_ID",
    )


def _from_pydantic(exc: pydantic.ValidationError) -> ConfigurationError:
    """Turn pydantic's first error into a ConfigurationError naming the setting."""
    errors = exc.errors(include_url=False, include_input=False)
    # A missing NODE_ID is often the consequence of a malformed NODES; report the cause.
    error = next((e for e in errors if e["type"] != "missing"), errors[0])
    loc = error["loc"]
    name = str(loc[0]) if loc else None
    if name is None:
        return ConfigurationError(
            f"settings must be given as names and values, not {exc.title} input"
        )
    if error["type"] == "extra_forbidden":
        return ConfigurationError(
            f"unknown setting {name!r}{_did_you_mean(name, Settings.model_fields)}",
            setting=name,
        )
    if error["type"] == "missing":
        return ConfigurationError(
            f"{name} is not set; set it in the settings module or with -s {name}=VALUE",
            setting=name,
        )
    where = "".join(f"[{part!r}]" for part in loc[1:] if part != "[key]")
    what = "a key" if loc[-1] == "[key]" else "the value"
    detail = f" ({what} at {name}{where} is wrong)" if len(loc) > 1 else ""
    if name == "TOKENS" and len(loc) > 1:
        detail = f" ({what} of a token is wrong)"  # the location would repeat the token
    expected = _EXPECTED.get(name, "valid")
    return ConfigurationError(f"{name} must be {expected}{detail}", setting=name)


_N = TypeVar("_N", int, float)


def _positive(name: str | None, value: _N) -> _N:
    if value <= 0:
        setting = name or "?"
        raise ConfigurationError(
            f"{setting} is {value!r}; it must be {_EXPECTED.get(setting, 'greater than 0')}",
            setting=setting,
        )
    return value


def _masked(url: str) -> str:
    """``url`` with any password replaced, for messages."""
    return re.sub(r"(://[^:/@]*:)[^/]*@", r"\1***@", url)


def _rebuild(cls: type[Settings], values: dict[str, Any]) -> Settings:
    return cls(**values)


def _hashable(value: object) -> object:
    if isinstance(value, Mapping):
        return tuple(sorted(value.items()))
    return value


def _split_override(text: str) -> tuple[str, str]:
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep:
        raise ConfigurationError(
            f"-s {text!r} has no '='; write -s KEY=VALUE, e.g. -s NODE_ID=n2 or "
            "-s ELECTION_TICKS=20",
            setting=name or None,
        )
    if not name:
        raise ConfigurationError(
            f"-s {text!r} has no setting name before '='; write -s KEY=VALUE, e.g. -s NODE_ID=n2"
        )
    return name, raw


def _json_or_text(raw: str) -> object:
    try:
        decoded: object = json.loads(raw)
    except ValueError:
        return raw
    return decoded


def _decode_override(name: str, raw: str) -> object:
    value = _json_or_text(raw)
    if name in _TEXT_SETTINGS and not isinstance(value, str) and value is not None:
        # -s CLUSTER_SECRET=1234567890123456 or -s NODE_ID=1 mean the text.
        return raw
    return value


def _import_settings_module(name: str, named_by: str) -> types.ModuleType:
    hint = ""
    if name.endswith(".py") or "/" in name or "\\" in name:
        dotted = name.removesuffix(".py").replace("/", ".").replace("\\", ".").strip(".")
        hint = f"; give a dotted module name such as {dotted!r}, not a file path"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"cannot import the settings module {name!r} named by {named_by}: {exc}{hint}; "
            "check the name and that its package is on sys.path (run from the project "
            "directory or set PYTHONPATH)",
            setting=SETTINGS_MODULE_ENV,
        ) from exc
    except Exception as exc:
        raise ConfigurationError(
            f"the settings module {name!r} named by {named_by} failed while importing: "
            f"{type(exc).__name__}: {exc}",
            setting=SETTINGS_MODULE_ENV,
        ) from exc


def _import_class(name: str, path: str) -> type:
    module_name, _, attr = path.rpartition(".")
    label = f"OBJECTS[{name!r}] = {path!r}"
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigurationError(
            f"{label}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}; "
            "check the path and that the project is on sys.path",
            setting="OBJECTS",
        ) from exc
    try:
        obj = getattr(module, attr)
    except AttributeError:
        public = [n for n in dir(module) if not n.startswith("_")]
        raise ConfigurationError(
            f"{label}: module {module_name!r} has no attribute {attr!r}"
            f"{_did_you_mean(attr, public)}",
            setting="OBJECTS",
        ) from None
    if not isinstance(obj, type):
        raise ConfigurationError(
            f"{label} is a {type(obj).__name__}, not a class; name the Replicated subclass "
            "to host",
            setting="OBJECTS",
        )
    return obj


def _replicated_base() -> type | None:
    """agree.objects.replicated.Replicated, imported late: settings load without the object
    layer."""
    try:
        module = importlib.import_module("agree.objects.replicated")
    except ModuleNotFoundError as exc:
        if exc.name != "agree.objects.replicated":
            raise
        return None
    base = getattr(module, "Replicated", None)
    return base if isinstance(base, type) else None

