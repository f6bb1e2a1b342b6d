"""agree's Alembic environment; installed as ``agree._migrations`` (see agree.storage.migrate)."""
