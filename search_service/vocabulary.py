"""The vocabulary hybrid search corrects query words against (table search_term, kept by a trigger)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embeddings.sqlblocks import load_blocks

SQL_PATH = Path(__file__).resolve().parent / "sql" / "vocabulary.sql"


@dataclass(frozen=True)
class PruneReport:
    removed: int
    kept: int


def prune(conn: Any) -> PruneReport:
    """Drop words no product uses any more and duplicate words (a psycopg connection)."""
    row = conn.execute(load_blocks(SQL_PATH)["prune_search_terms"]).fetchone()
    return PruneReport(removed=int(row[0]), kept=int(row[1]))
