"""Remote clients of an agree cluster: :class:`Client` (blocking) and :class:`AsyncClient`.

They speak the HTTP API only, so importing this package loads neither the Raft runtime nor the
storage layer (no SQLAlchemy, no Alembic): a machine that only calls a cluster needs neither.
"""

from agree.client._async import DEFAULT_TIMEOUT, AsyncClient
from agree.client._sync import Client

__all__ = ["DEFAULT_TIMEOUT", "AsyncClient", "Client"]
