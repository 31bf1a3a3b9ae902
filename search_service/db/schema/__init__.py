"""SQLAlchemy metadata for the whole Plinqy schema: the one source of truth for alembic.

One module per domain (catalog, ingest, events, ops), all on the one `metadata` of `base`. Triggers and their
functions are plain SQL in the migrations (alembic cannot compare them).
"""

from __future__ import annotations

from search_service.db.schema import catalog, events, ingest, ops
from search_service.db.schema.base import EMBEDDING_DIM, metadata

# Every table, in dependency order (the domain modules above have all been imported by now).
ALL_TABLES = tuple(metadata.sorted_tables)

__all__ = ["ALL_TABLES", "EMBEDDING_DIM", "catalog", "events", "ingest", "metadata", "ops"]
