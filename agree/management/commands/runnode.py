"""``agree-manage runnode [--node ID] [--bind HOST:PORT] [--join]``: run one node until
SIGTERM/SIGINT.

The node serves clients, operators and peers on one port: its own NODES entry, or ``--bind``
(e.g. to listen on 0.0.0.0 behind the address that NODES advertises).  ``--join`` starts a node
that is to be added to a running cluster (``agree-manage members add``): with an empty database
it waits to receive the cluster's log instead of founding a cluster of its own.

On SIGTERM or SIGINT it shuts down cleanly, in this order: stop accepting connections; let
in-flight calls finish for up to REQUEST_TIMEOUT, then fail the rest explicitly; flush and close
storage; close the peers.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agree.conf.settings import Settings
from agree.errors import ConfigurationError
from agree.management.base import BaseCommand, CommandError, CommandParser
from agree.progress import CatchUp, Progress

if TYPE_CHECKING:
    from aiohttp import web

    from agree.runtime.node import Node
    from agree.transport.aiohttp import AiohttpTransport

log = logging.getLogger("agree.runnode")


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8001`` for IPv6) as (host, port); CommandError when malformed."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise CommandError(f"--bind {text!r} is not HOST:PORT; write e.g. --bind 0.0.0.0:8001")
    return host, int(port_text)


def server_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS for the node's port from TLS_CERT/TLS_KEY, requiring client certificates when
    TLS_CA is set (mutual TLS); None without TLS_CERT."""
    if settings.TLS_CERT is None or settings.TLS_KEY is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.TLS_CERT, settings.TLS_KEY)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"cannot load TLS_CERT {settings.TLS_CERT!r} with TLS_KEY: {exc}; both must be "
            "readable PEM files, the key matching the certificate",
            setting="TLS_CERT",
        ) from None
    if settings.TLS_CA is not None:
        try:
            context.load_verify_locations(settings.TLS_CA)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load TLS_CA {settings.TLS_CA!r}: {exc}; it must be a readable PEM file",
                setting="TLS_CA",
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class Command(BaseCommand):
    help = "Run this node: serve clients and peers on one port until SIGTERM or SIGINT."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--node",
            metavar="ID",
            help="which member of NODES this process is (default: the settings' NODE_ID)",
        )
        parser.add_argument(
            "--bind",
            metavar="HOST:PORT",
            help="listen here instead of at this node's own NODES entry",
        )
        parser.add_argument(
            "--join",
            action="store_true",
            help="a new node joining a running cluster: found nothing, wait to be added",
        )

    def handle(self, **options: Any) -> int | None:
        from agree.conf.settings import load_settings, parse_overrides

        overrides = parse_overrides(options.get("overrides") or ())
        values: dict[str, Any] = {}
        if options.get("node"):
            values["NODE_ID"] = options["node"]
        settings = load_settings(options.get("settings"), overrides, **values)
        if options.get("bind"):
            host, port = parse_bind(options["bind"])
        else:
            host, port = settings.bind_address()
            if port == 0:
                raise CommandError(
                    f"NODES[{settings.NODE_ID!r}] = {settings.node_url()!r} has port 0 (not "
                    "served); give it the port to listen on, or pass --bind HOST:PORT"
                )
        # A process running one node owns its logging: LOG_FORMAT and LOG_LEVEL, every line
        # bound with this node's id (agree.logs).
        from agree import logs

        logs.configure(settings)
        asyncio.run(serve(settings, host, port, join=bool(options.get("join"))))
        return None


async def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    join: bool = False,
    configure: Callable[[web.Application, Node], None] | None = None,
) -> None:
    """Run the node's app on ``host:port`` until SIGTERM or SIGINT, then shut down cleanly.

    ``configure(app, node)`` may add routes before the app starts (benchmarks do).
    """
    from agree.runtime.node import Node
    from agree.server.app import create_app
    from agree.server.metrics import RuntimeMetrics
    from agree.server.peer import add_peer_routes
    from agree.storage.engine import display_url

    sqlite_file = settings.sqlite_path()
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    ssl_context = server_ssl_context(settings)
    transport = peer_transport(settings)
    runtime_metrics = RuntimeMetrics()
    node = Node(settings, transport=transport, join=join, observer=runtime_metrics)
    app = create_app(node, transport=transport, runtime_metrics=runtime_metrics)
    add_peer_routes(app, transport)
    if configure is not None:
        configure(app, node)
    from aiohttp import web

    # handle_signals=False: this function owns SIGTERM/SIGINT and the shutdown order.
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        log.info(
            "starting node %s (%s); database %s; objects %s",
            settings.NODE_ID,
            settings.node_url(),
            display_url(settings.database_url_for_node()),
            ", ".join(f"{name}={path}" for name, path in settings.OBJECTS.items()) or "none",
        )
        await runner.setup()  # starts the node (the app's cleanup_ctx)
        # On a terminal: the log applied at start, or a long catch-up, as a progress line.
        watcher = CatchUp(
            _indexes(node),
            Progress(f"node {settings.NODE_ID}", unit="entries"),
            receiving=lambda: node.driver.raft.snapshot_receiving,
        )
        watcher.sample()
        tune_collector()
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from None
        scheme = "https" if ssl_context else "http"
        log.info(
            "node %s serving on %s://%s:%d (peers: %s; client tokens: %s)",
            settings.NODE_ID,
            scheme,
            host,
            port,
            ", ".join(f"{i}={u}" for i, u in settings.peers().items()) or "none",
            "required" if settings.TOKENS else "not required",
        )
        catch_up = asyncio.create_task(watcher.follow())
        await stop.wait()
        catch_up.cancel()
        log.info("node %s shutting down", settings.NODE_ID)
        await runner.cleanup()
        log.info("node %s stopped", settings.NODE_ID)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _indexes(node: Node) -> Callable[[], tuple[int, int]]:
    def indexes() -> tuple[int, int]:
        status = node.status()
        return status.applied_index, status.commit_index

    return indexes


#: Allocations between two young-generation collections in a node process (CPython's
#: default is 700).  A node allocates a few dozen objects per command while thousands may be
#: in flight: at the default, the collector runs every few commands and its full passes over
#: a large heap stall the loop for hundreds of milliseconds, long enough to miss heartbeats.
GC_YOUNG_THRESHOLD = 50_000


def tune_collector() -> None:
    """The node process owns its interpreter: collect less often, and never rescan what
    was loaded at start (modules, settings, the restored state), which lives as long as the
    process does."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def client_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """How this node checks its peers' certificates (TLS_CA, else the system's CAs) and, with
    TLS_CA, presents its own for mutual TLS; None without TLS."""
    if settings.TLS_CERT is None or settings.TLS_KEY is None:
        return None
    context = ssl.create_default_context(cafile=settings.TLS_CA)
    if settings.TLS_CA is not None:
        context.load_cert_chain(settings.TLS_CERT, settings.TLS_KEY)
    return context


def peer_transport(settings: Settings) -> AiohttpTransport:
    """The node's transport to its peers: one authenticated WebSocket per peer on the same
    port (CLUSTER_SECRET), over TLS to https peers."""
    from agree.transport.aiohttp import AiohttpTransport

    return AiohttpTransport.from_settings(settings, ssl=client_ssl_context(settings))
