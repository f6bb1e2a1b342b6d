"""``agree-manage shell [-c CODE]``: a Python prompt connected to a running cluster.

Ready in the namespace: ``settings``, ``client`` (an :class:`agree.Client` connected to NODES or
``--url``), ``agree``, and one proxy per object of the cluster under the object's own name
(``counter.add(1)``), or in ``objects[name]`` when the name is not an identifier.  IPython is used
when installed (``--interface python`` forces the standard prompt); ``-c CODE`` runs CODE in that
namespace and exits, for scripts and tests.
"""

from __future__ import annotations

import code
import contextlib
import keyword
from typing import Any

from agree.management.base import BaseCommand, CommandError, CommandParser
from agree.management.remote import add_remote_options, remote_client


class Command(BaseCommand):
    help = "Open a Python prompt with a connected client and a proxy for every object."

    def add_arguments(self, parser: CommandParser) -> None:
        add_remote_options(parser)
        parser.add_argument("-c", "--command", metavar="CODE", help="run CODE and exit")
        parser.add_argument(
            "-i",
            "--interface",
            choices=("ipython", "python"),
            help="the prompt to use (default: IPython when installed)",
        )

    def handle(self, **options: Any) -> int | None:
        import agree

        settings = self.load_cluster_settings(options) if self.settings_given(options) else None
        with remote_client(self, options) as client:
            objects = {name: client.proxy(name) for name in sorted(client.schemas())}
            namespace: dict[str, Any] = {
                "agree": agree,
                "client": client,
                "settings": settings,
                "objects": objects,
            }
            for name, proxy in objects.items():
                if name.isidentifier() and not keyword.iskeyword(name) and name not in namespace:
                    namespace[name] = proxy
            if options.get("command"):
                with contextlib.redirect_stdout(self.stdout.stream):
                    exec(options["command"], namespace)
                return None
            leader = client.status().get("leader_url") or "no leader known"
            banner = (
                f"agree {agree.__version__} shell; the leader is {leader}\n"
                f"objects: {', '.join(objects) or 'none'} (also in `objects`); "
                "`client`, `settings`, `agree`"
            )
            self._interact(namespace, banner, options.get("interface"))
        return None

    def _interact(self, namespace: dict[str, Any], banner: str, interface: str | None) -> None:
        if interface in (None, "ipython"):
            try:
                import IPython  # type: ignore[import-not-found, unused-ignore]
            except ImportError:
                if interface == "ipython":
                    raise CommandError("IPython is not installed (pip install ipython)") from None
            else:
                self.stdout.write(banner)
                IPython.start_ipython(argv=[], user_ns=namespace)
                return
        code.interact(banner=banner, local=namespace, exitmsg="")
