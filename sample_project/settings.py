"""Settings of the sample cluster: three nodes on this machine (ports 8001-8003), SQLite files
under ``sample_project/data/``, and the four sample objects of ``sample_project.models``.

Every upper-case name is a setting (``agree.conf.defaults`` lists them all with their
defaults); helper names start with an underscore.
"""

from pathlib import Path

_HERE = Path(__file__).resolve().parent

# How each node reaches each member; a node listens on the port of its own entry.
NODES = {
    "n1": "http://127.0.0.1:8001",
    "n2": "http://127.0.0.1:8002",
    "n3": "http://127.0.0.1:8003",
}

# One SQLite file per node; "{node_id}" is replaced by the node's id.
DATABASE_URL = f"sqlite:///{_HERE / 'data'}/{{node_id}}.db"

# The replicated objects: the name clients use -> "module.Class".
OBJECTS = {
    "kv": "sample_project.models.KVStore",
    "counter": "sample_project.models.Counter",
    "bank": "sample_project.models.Bank",
    "lock": "sample_project.models.Lock",
}

# Authenticates the nodes to one another.  This one is published with the sample: make your own
# for anything real (python -c "import secrets; print(secrets.token_urlsafe(32))").
CLUSTER_SECRET = "sample-only-7fJq2vR9xKp4Lw8NzT3bYc6HdE1mUa5S"

LOG_LEVEL = "INFO"
