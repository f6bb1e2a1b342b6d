"""Inbound traffic, on one aiohttp application per node: the peer route, the client API and the
operations endpoints.  Importing this package loads aiohttp."""
