"""What the commands that talk to a running cluster share: options and the client they use.

``--url URL`` (repeatable) names the nodes to ask; without it, the settings' NODES are used
(this node's own URL first).  ``--token`` (or ``$AGREE_TOKEN``) is the bearer token; with
TLS_CERT in the settings the client checks the nodes against TLS_CA and, with TLS_CA, presents
the node's certificate (mutual TLS).
"""

from __future__ import annotations

import json
import os
import ssl
from typing import TYPE_CHECKING, Any

from agree.management.base import BaseCommand, CommandError, CommandParser

if TYPE_CHECKING:
    from agree.client import Client

TOKEN_ENV = "AGREE_TOKEN"


def add_remote_options(parser: CommandParser) -> None:
    parser.add_argument(
        "--url",
        action="append",
        default=[],
        metavar="URL",
        help="a node to ask (repeatable; default: NODES from the settings)",
    )
    parser.add_argument("--token", default=None, help=f"the client token (default: ${TOKEN_ENV})")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call (10)")


def remote_client(command: BaseCommand, options: dict[str, Any]) -> Client:
    """A client for the cluster the options (or the settings) name."""
    from agree.client import Client

    urls, token, context = connection(command, options)
    return Client(urls, token=token, timeout=options.get("timeout") or 10.0, ssl=context)


def connection(
    command: BaseCommand, options: dict[str, Any]
) -> tuple[list[str], str | None, ssl.SSLContext | None]:
    """The URLs, token and TLS context the options (or the settings) name."""
    urls: list[str] = list(options.get("url") or [])
    context: ssl.SSLContext | None = None
    if command.settings_given(options):
        settings = command.load_cluster_settings(options)
        if not urls:
            urls = [settings.node_url(), *settings.peers().values()]
        if settings.TLS_CERT is not None and settings.TLS_KEY is not None:
            context = ssl.create_default_context(cafile=settings.TLS_CA)
            if settings.TLS_CA is not None:
                context.load_cert_chain(settings.TLS_CERT, settings.TLS_KEY)
    if not urls:
        raise CommandError(
            "which cluster? pass --url http://host:port, or name the settings with "
            "--settings MODULE (or AGREE_SETTINGS_MODULE) so that NODES is used"
        )
    token = options.get("token") or os.environ.get(TOKEN_ENV) or None
    return urls, token, context


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
