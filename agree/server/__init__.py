"""Inbound traffic, on one aiohttp application per node, on one port: the peer route, the
client API and the operations endpoints.  Its modules load aiohttp.

* :mod:`agree.server.app` builds the application (``create_app``) and owns its lifetimes and
  shutdown order;
* :mod:`agree.server.client_api` holds the client routes (calls, schema, status, membership,
  leader transfer, watch, health, metrics);
* :mod:`agree.server.peer` is the peer transport's route (mounted with ``add_peer_routes``);
* :mod:`agree.server.auth` checks client tokens; :mod:`agree.server.metrics` exposes Prometheus
  metrics; :mod:`agree.server.dashboard` serves the live cluster dashboard at ``/``.
"""
