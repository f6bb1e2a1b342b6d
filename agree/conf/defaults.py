"""The framework's default settings, in the shape of a settings module.

:func:`agree.conf.settings.load_settings` starts from these values, then applies the
user's settings module, then ``-s KEY=VALUE`` overrides, then keyword values.
A project's settings module may ``from agree.conf.defaults import *`` to
start from them explicitly; it only needs to name what it changes.

Every public upper-case name here is a setting; nothing else is.  Helper
constants in a settings module must start with an underscore, because an
unknown upper-case name there is reported as a typo.
"""

from __future__ import annotations

from typing import Literal

# Which member of NODES this process is.  None means "not given": it is then
# taken from NODES when NODES has exactly one entry, and is an error otherwise
# (``runnode --node ID`` or ``-s NODE_ID=ID`` says which one).
NODE_ID: str | None = None

# How *this* node reaches each member: node id -> base URL "http://host:port".
# A node binds to the port of its own entry.  Peers are identified by id.
NODES: dict[str, str] = {"n1": "http://127.0.0.1:8001"}

# SQLAlchemy URL of this node's log and snapshots; "{node_id}" is replaced by
# NODE_ID, so one settings module serves every node of a cluster.
DATABASE_URL: str = "sqlite:///agree-data/{node_id}.db"

# Objects this node hosts: name -> dotted path "pkg.module.Class".
OBJECTS: dict[str, str] = {}

# Raft groups besides "default": group id -> names of the objects it hosts,
# e.g. {"orders": ["orders", "invoices"]}.  Each group has its own log, leader
# and membership; an object not named here is in the "default" group.
GROUPS: dict[str, list[str]] = {}

# Shared secret that authenticates peers and clients.  Required (at least 16
# characters) when NODES has more than one node.
CLUSTER_SECRET: str | None = None

# Seconds per Raft tick.  The Raft core counts time only in ticks.
TICK_INTERVAL: float = 0.05

# A follower campaigns after a randomised timeout in [ELECTION_TICKS,
# 2 * ELECTION_TICKS) ticks without hearing from a leader (Raft §5.2).
ELECTION_TICKS: int = 10

# A leader sends heartbeats every HEARTBEAT_TICKS ticks; it must be well below
# ELECTION_TICKS or followers campaign against a healthy leader.
HEARTBEAT_TICKS: int = 1

# Take a snapshot and compact the log after this many applied entries, or
# after SNAPSHOT_BYTES, whichever comes first (Raft §7).
SNAPSHOT_ENTRIES: int = 10_000

# Take a snapshot and compact the log once the entries applied since the last
# one hold this many bytes, or after SNAPSHOT_ENTRIES, whichever comes first.
SNAPSHOT_BYTES: int = 64 * 1024 * 1024

# Largest HTTP request body accepted from a client or peer; a larger one is
# answered with 413.
MAX_BODY_BYTES: int = 16 * 1024 * 1024

# Largest encoded size of one call's arguments, refused before anything is
# proposed; the same for a call made in-process and one that came over HTTP.
MAX_CALL_BYTES: int = 1024 * 1024

# Client bearer tokens: token -> permission, one of "read" (schema, status,
# members, queries, watch), "write" (read and commands) or "admin" (write and
# membership, leader transfer, snapshots).  Empty: the client API is open to
# anyone who can reach the port.  /livez, /readyz and /metrics never need a
# token.  Tokens are compared in constant time and never logged.  Each is at
# least 16 characters.
TOKENS: dict[str, Literal["read", "write", "admin"]] = {}

# TLS for the node's port (clients and peers): PEM certificate chain and
# private key files, both or neither.  With TLS_CA too, peers and clients must
# present a certificate signed by that CA (mutual TLS), and this node checks
# its peers' certificates against it.
TLS_CERT: str | None = None
TLS_KEY: str | None = None
TLS_CA: str | None = None

# Seconds a client call or peer request may take before it times out.
REQUEST_TIMEOUT: float = 5.0

# Apply pending database migrations at start instead of refusing to start.
AUTO_MIGRATE: bool = False

# SQLite's PRAGMA synchronous.  "FULL" makes every commit durable before Raft
# acts on it.  "NORMAL" is faster but may lose the last commits on power loss
# (not on a process crash), which can break Raft's safety: a node may forget
# a vote it cast or entries it acknowledged.
SQLITE_SYNCHRONOUS: Literal["FULL", "NORMAL"] = "FULL"

# Testing only: seconds the store sleeps before each commit, to model a slow
# disk in fault-injection runs (agree.testing.chaos).  Leave it at 0.
STORAGE_COMMIT_DELAY: float = 0.0

# Level of the "agree" logger: DEBUG, INFO, WARNING, ERROR or CRITICAL.
LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

# How runnode writes the "agree" logs to stderr: "console" (one readable line
# per record) or "json" (one JSON object per line with the stable keys ts,
# level, logger, msg, node, group, term, index, object, method, then extras).
# An embedded node configures no logging unless agree.logs.configure() is
# called.  The cluster secret and the tokens never appear in a line.
LOG_FORMAT: Literal["console", "json"] = "console"
