"""``agree-manage startproject NAME [DIRECTORY]``: a new project, runnable as generated.

Creates::

    NAME/                   (or DIRECTORY)
        manage.py           agree-manage with AGREE_SETTINGS_MODULE=NAME.settings
        README.md           how to run it
        NAME/__init__.py
        NAME/settings.py    three local nodes, a generated CLUSTER_SECRET, SQLite under data/
        NAME/models.py      a Counter to start from

The nodes' ports are ones that were free when the project was made (the system picks them), so
two projects on one machine do not collide; the secret comes from :func:`secrets.token_urlsafe`.
"""

from __future__ import annotations

import importlib.util
import keyword
import secrets
from pathlib import Path
from typing import Any

from agree.management.base import BaseCommand, CommandError, CommandParser
from agree.testing.ports import free_ports

NODE_COUNT = 3

SETTINGS = '''"""Settings of the {name} cluster (agree).  Every upper-case name is a setting; see
``agree.conf.defaults`` for all of them and their defaults."""

from pathlib import Path

_BASE = Path(__file__).resolve().parent.parent

# How each node reaches each member; a node listens on the port of its own entry.
NODES = {{
{nodes}
}}

# One SQLite file per node; "{{node_id}}" is replaced by the node's id.
DATABASE_URL = f"sqlite:///{{_BASE / 'data'}}/{{{{node_id}}}}.db"

# The replicated objects: name -> "module.Class".
OBJECTS = {{
    "counter": "{name}.models.Counter",
}}

# A node creates or upgrades its database when it starts: handy on a developer's machine.  In
# production, run `python manage.py migrate` as a step of its own and leave this off.
AUTO_MIGRATE = True

# Authenticates the nodes to one another.  Keep it secret; every node needs the same one.
CLUSTER_SECRET = "{secret}"

LOG_LEVEL = "INFO"
'''

MODELS = '''"""The replicated objects of {name}.  Every node runs the same commands in the same
order, so a command must be deterministic: no clock, no randomness, no I/O (use
``self.context`` for the entry's leader-stamped time)."""

from agree import Replicated, command, query


class Counter(Replicated):
    def __init__(self) -> None:
        self.value = 0

    @command
    def add(self, n: int = 1) -> int:
        if n < 0:
            raise ValueError("n must be >= 0")
        self.value += n
        return self.value

    @query
    def get(self) -> int:
        return self.value
'''

MANAGE = '''#!/usr/bin/env python
"""agree-manage for {name}: ``python manage.py COMMAND`` (``python manage.py help`` lists them)."""

import os
import sys


def main() -> None:
    os.environ.setdefault("AGREE_SETTINGS_MODULE", "{name}.settings")
    from agree.management import main as manage

    sys.exit(manage())


if __name__ == "__main__":
    main()
'''

README = """# {name}

A replicated-object cluster made with agree: three nodes on this machine.

```sh
python manage.py check              # settings, objects, databases
python manage.py devcluster         # migrate and start all three nodes; Ctrl-C stops them
```

In another terminal:

```sh
python manage.py status             # every member: role, term, indexes, lag
python manage.py call counter.add 5 # -> 5
python manage.py call counter.get   # -> 5
python manage.py shell              # a Python prompt with `counter` connected
```

The dashboard of the cluster is at {first_url}/ (every node serves it).

To run the nodes one by one instead (e.g. each in its own terminal):

```sh
{migrate}
{runnode}
```

`{name}/models.py` holds the replicated classes; `{name}/settings.py` the nodes, the database
and the secret.
"""



class Command(BaseCommand):
    help = "Create a new project: settings for three local nodes, models, manage.py, README."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", metavar="NAME", help="the project's Python package name")
        parser.add_argument(
            "directory", nargs="?", metavar="DIRECTORY", help="where to create it (default: ./NAME)"
        )

    def handle(self, **options: Any) -> int | None:
        name: str = options["name"]
        if not name.isidentifier() or keyword.iskeyword(name):
            raise CommandError(
                f"{name!r} is not a valid project name; use a Python identifier, e.g. mysite"
            )
        if importlib.util.find_spec(name) is not None:
            raise CommandError(
                f"{name!r} conflicts with the name of an existing Python module; "
                "choose another project name"
            )
        target = Path(options["directory"] or name)
        if target.exists() and any(target.iterdir()):
            raise CommandError(f"{target} already exists and is not empty")
        ports = free_ports(NODE_COUNT)
        ids = [f"n{i}" for i in range(1, NODE_COUNT + 1)]
        urls = {
            node_id: f"http://127.0.0.1:{port}" for node_id, port in zip(ids, ports, strict=True)
        }
        nodes = "\n".join(f'    "{node_id}": "{url}",' for node_id, url in urls.items())
        files = {
            target / "manage.py": MANAGE.format(name=name),
            target / "README.md": README.format(
                name=name,
                first_url=urls["n1"],
                migrate="\n".join(f"python manage.py migrate --node {i}" for i in ids),
                runnode="\n".join(f"python manage.py runnode --node {i} &" for i in ids),
            ),
            target / name / "__init__.py": "",
            target / name / "settings.py": SETTINGS.format(
                name=name, nodes=nodes, secret=secrets.token_urlsafe(32)
            ),
            target / name / "models.py": MODELS.format(name=name),
        }
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (target / "manage.py").chmod(0o755)
        self.stdout.write(
            f"Created project {name} in {target}/ (nodes {', '.join(urls.values())})."
        )
        self.stdout.write(
            f"Next: cd {target} && python manage.py check && python manage.py devcluster"
        )
        return None
