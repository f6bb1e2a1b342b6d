"""The system checks behind ``agree-manage check`` (after Django's system check framework).

Each finding is a :class:`CheckMessage` with a level, a message, a hint that says what to do and
a stable id (``agree.E010``) that documentation and scripts can refer to.  :func:`run_checks`
looks at a project as a whole, every node of NODES, without starting anything and without
creating any file: an SQLite database that does not exist yet is reported, not made.

=============  ===============================================================
``agree.E001``  the settings do not load (a setting is missing or invalid)
``agree.E010``  an OBJECTS class cannot be imported or is not Replicated
``agree.E011``  an OBJECTS class cannot be instantiated with no arguments
``agree.W010``  OBJECTS is empty: the cluster would replicate nothing
``agree.E020``  a node's database cannot be reached
``agree.E021``  a node's database is not at agree's newest schema revision
``agree.W021``  the same, but AUTO_MIGRATE will migrate it when the node starts
``agree.E022``  a node's SQLite database does not exist yet
``agree.W022``  the same, but AUTO_MIGRATE will create it when the node starts
``agree.W023``  several nodes on this machine share one SQLite file
``agree.E030``  a TLS file is missing, unreadable or does not match its key
``agree.W040``  CLUSTER_SECRET is short (under 32 characters)
``agree.W041``  CLUSTER_SECRET has little variety (few distinct characters)
``agree.W042``  a client token is short or has little variety
=============  ===============================================================
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agree.errors import AgreeError, ConfigurationError

if TYPE_CHECKING:
    from agree.conf.settings import Settings

#: A secret should carry at least this many characters (e.g. ``secrets.token_urlsafe(32)``).
STRONG_SECRET_LENGTH = 32
#: Fewer distinct characters than this suggests a made-up secret ("aaaa...", "0123...").
MIN_DISTINCT = 10


class Level(enum.IntEnum):
    INFO = 20
    WARNING = 30
    ERROR = 40


@dataclass(frozen=True, slots=True)
class CheckMessage:
    level: Level
    msg: str
    hint: str
    id: str
    #: What the finding is about: a setting name, ``OBJECTS['x']``, a node id.
    obj: str = "?"

    @property
    def is_error(self) -> bool:
        return self.level >= Level.ERROR

    def __str__(self) -> str:
        text = f"{self.obj}: ({self.id}) {self.msg}"
        return f"{text}\n\tHINT: {self.hint}" if self.hint else text


def _error(msg: str, hint: str, id: str, obj: str = "?") -> CheckMessage:
    return CheckMessage(Level.ERROR, msg, hint, id, obj)


def _warning(msg: str, hint: str, id: str, obj: str = "?") -> CheckMessage:
    return CheckMessage(Level.WARNING, msg, hint, id, obj)


GENERATE_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


def check_settings(load: Callable[[], Settings]) -> tuple[Settings | None, list[CheckMessage]]:
    """Load the settings; E001 when they do not load."""
    try:
        return load(), []
    except ConfigurationError as exc:
        hint = f"fix {exc.setting} in the settings module" if exc.setting else ""
        return None, [_error(str(exc), hint, "agree.E001", exc.setting or "settings")]


def check_objects(settings: Settings) -> list[CheckMessage]:
    from agree.objects.replicated import create_initial

    if not settings.OBJECTS:
        return [
            _warning(
                "OBJECTS is empty: the cluster would replicate nothing",
                'name your classes, e.g. OBJECTS = {"counter": "myproject.models.Counter"}',
                "agree.W010",
                "OBJECTS",
            )
        ]
    found: list[CheckMessage] = []
    for name, path in settings.OBJECTS.items():
        where = f"OBJECTS[{name!r}]"
        try:
            cls = settings.replace(OBJECTS={name: path}).resolve_objects()[name]
        except (ConfigurationError, TypeError) as exc:
            hint = "check the dotted path and that the module imports without errors"
            found.append(_error(str(exc), hint, "agree.E010", where))
            continue
        try:
            create_initial(cls)
        except Exception as exc:
            found.append(
                _error(
                    f"{path}() fails: {type(exc).__name__}: {exc}",
                    "a node creates the initial state by calling the class with no arguments; "
                    "give every __init__ parameter a default",
                    "agree.E011",
                    where,
                )
            )
    return found


def check_databases(settings: Settings, manage: str = "agree-manage") -> list[CheckMessage]:
    from agree.storage import MEMORY_URL
    from agree.storage import migrate as migrations
    from agree.storage.engine import display_url

    found: list[CheckMessage] = []
    seen_files: dict[Path, str] = {}
    for node_id in settings.NODES:
        node = settings.replace(NODE_ID=node_id)
        url = node.database_url_for_node()
        if url.startswith(MEMORY_URL):
            continue
        shown = display_url(url)
        command = f"{manage} migrate --node {node_id}"
        sqlite_file = node.sqlite_path()
        if sqlite_file is not None:
            resolved = sqlite_file.resolve()
            if resolved in seen_files:
                found.append(
                    _warning(
                        f"nodes {seen_files[resolved]} and {node_id} share the SQLite file "
                        f"{sqlite_file} (if they run on this machine, they corrupt each other)",
                        'put "{node_id}" in DATABASE_URL, e.g. sqlite:///data/{node_id}.db',
                        "agree.W023",
                        "DATABASE_URL",
                    )
                )
                continue
            seen_files[resolved] = node_id
            if not sqlite_file.exists():
                # Opening it would create it: report instead, the check changes nothing.
                message = f"node {node_id}'s database {sqlite_file} does not exist yet"
                if settings.AUTO_MIGRATE:
                    found.append(
                        _warning(
                            message + "; AUTO_MIGRATE creates it when the node starts",
                            f"or create it now: {command}",
                            "agree.W022",
                            node_id,
                        )
                    )
                else:
                    found.append(_error(message, f"create it: {command}", "agree.E022", node_id))
                continue
        try:
            pending = migrations.plan(url)
        except AgreeError as exc:
            found.append(
                _error(
                    f"node {node_id}'s database {shown} cannot be used: {exc}",
                    "check that the database server is running, reachable and that the "
                    "user may connect",
                    "agree.E020",
                    node_id,
                )
            )
            continue
        if pending:
            names = ", ".join(revision.revision for revision in pending)
            message = f"node {node_id}'s database {shown} has pending migrations: {names}"
            if settings.AUTO_MIGRATE:
                found.append(
                    _warning(
                        message + "; AUTO_MIGRATE applies them when the node starts",
                        f"or apply them now: {command}",
                        "agree.W021",
                        node_id,
                    )
                )
            else:
                found.append(_error(message, f"apply them: {command}", "agree.E021", node_id))
    return found


def check_tls(settings: Settings) -> list[CheckMessage]:
    import ssl

    found: list[CheckMessage] = []
    for name in ("TLS_CERT", "TLS_KEY", "TLS_CA"):
        path = getattr(settings, name)
        if path is not None and not Path(path).is_file():
            found.append(
                _error(
                    f"{name} = {path!r} is not a file",
                    "give the path of a PEM file readable by the node",
                    "agree.E030",
                    name,
                )
            )
    if found or settings.TLS_CERT is None or settings.TLS_KEY is None:
        return found
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(settings.TLS_CERT, settings.TLS_KEY)
        if settings.TLS_CA is not None:
            context.load_verify_locations(settings.TLS_CA)
    except (OSError, ssl.SSLError) as exc:
        found.append(
            _error(
                f"the TLS files do not load: {exc}",
                "TLS_CERT and TLS_KEY must be PEM files and the key must match the certificate; "
                "TLS_CA a PEM bundle",
                "agree.E030",
                "TLS_CERT",
            )
        )
    return found


def _weak(secret: str) -> str | None:
    """Why ``secret`` is weak, or None."""
    if len(secret) < STRONG_SECRET_LENGTH:
        return f"it has {len(secret)} characters (at least {STRONG_SECRET_LENGTH} advised)"
    if len(set(secret)) < MIN_DISTINCT:
        return f"it uses only {len(set(secret))} distinct characters"
    return None


def check_secrets(settings: Settings) -> list[CheckMessage]:
    found: list[CheckMessage] = []
    secret = settings.CLUSTER_SECRET
    if secret is not None:
        why = _weak(secret)
        if why is not None:
            id = "agree.W040" if len(secret) < STRONG_SECRET_LENGTH else "agree.W041"
            found.append(
                _warning(
                    f"CLUSTER_SECRET is weak: {why}",
                    f"generate one: {GENERATE_SECRET}",
                    id,
                    "CLUSTER_SECRET",
                )
            )
    for number, token in enumerate(settings.TOKENS, start=1):
        why = _weak(token)
        if why is not None:
            # Never show the token itself: the check's output may be logged.
            found.append(
                _warning(
                    f"client token #{number} ({settings.TOKENS[token]}) is weak: {why}",
                    f"generate one: {GENERATE_SECRET}",
                    "agree.W042",
                    "TOKENS",
                )
            )
    return found


def run_checks(
    load: Callable[[], Settings], *, databases: bool = True, manage: str = "agree-manage"
) -> tuple[Settings | None, list[CheckMessage]]:
    """Every check, in order; nothing further is checked when the settings do not load.
    ``manage`` is how the user runs agree-manage, for the commands the hints give."""
    settings, found = check_settings(load)
    if settings is None:
        return None, found
    found += check_objects(settings)
    if databases:
        found += check_databases(settings, manage)
    found += check_tls(settings)
    found += check_secrets(settings)
    return settings, found


__all__ = ["CheckMessage", "Level", "run_checks"]
