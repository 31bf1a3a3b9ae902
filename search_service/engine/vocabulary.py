"""The vocabulary hybrid search corrects query words against (table search_term, kept by a trigger)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from search_service.db.sql import statement


class VocabularyBusy(RuntimeError):
    """Product writes held their lock past the timeout."""


@dataclass(frozen=True)
class PruneReport:
    removed: int
    kept: int


def prune(conn: Any, lock_timeout_s: float = 10.0) -> PruneReport:
    """Drop words no product uses any more and duplicate words (a psycopg connection). Product writes wait
    for it (~1.6 s per 100k products); VocabularyBusy when they hold their lock for over `lock_timeout_s`."""
    import psycopg

    try:
        with conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(lock_timeout_s * 1000)}ms",))
            conn.execute(statement("engine/vocabulary", "lock_products_for_prune").psycopg)
            row = conn.execute(statement("engine/vocabulary", "prune_search_terms").psycopg).fetchone()
    except psycopg.errors.LockNotAvailable:
        raise VocabularyBusy(
            f"product writes held their lock for over {lock_timeout_s:g} s; retry when the catalogue is quieter"
        ) from None
    return PruneReport(removed=int(row[0]), kept=int(row[1]))
