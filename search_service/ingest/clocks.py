"""Newest wins: how a row's clocks compare with what its listing holds."""

from __future__ import annotations

from typing import Any

from search_service.ingest.rows import ValidRow


def clock_staleness(row: ValidRow, look: Any) -> str | None:
    """`stale` (older than the listing: nothing changes), `level` (a row with both clocks whose stock level
    alone is older: the rest of it applies, the listing keeps its level), `catalog` (the reverse: a level with its
    own clock, or a POS level that carries none, on a row whose catalogue part is older: the level alone applies)
    or None.

    A row carrying both `updated_at` and `version` (a connector's first sync carries each level, with its own
    clock, on its product's upsert; a till's PATCH, stock change or delete may too) reads `updated_at` as the
    catalogue's clock (text, price, on sale) and `version` as the level's, whatever its op (a PATCH was `stale`
    where an upsert with the same clocks applied); otherwise either clock is the whole row's. A `catalog_version`
    (X-Series' product version) orders the catalogue too where the listing holds one: two edits within a second
    share their `updated_at`. It does not replace `updated_at`: a write without one (the API, CSV) keeps the
    listing's version under its newer stamp."""
    held_at, held_version = look["source_updated_at"], look["source_version"]
    held_catalog = look["source_catalog_version"]
    if held_at is not None and held_at.tzinfo is None:  # -infinity (asyncpg reads it naive): no clock held
        held_at = None
    older_catalog = (row.updated_at is not None and held_at is not None and row.updated_at < held_at) or (
        row.catalog_version is not None and held_catalog is not None and row.catalog_version < held_catalog
    )
    older_version = row.version is not None and held_version is not None and row.version < held_version
    catalog_clock = row.updated_at is not None or row.catalog_version is not None
    if older_catalog and not older_version and _own_level(row):
        return "catalog"
    if older_catalog or (older_version and not catalog_clock):
        return "stale"
    return "level" if older_version else None


def _own_level(row: ValidRow) -> bool:
    """A level judged by its own clock (`version`), or a level a POS sends apart from its products (`stock_apart`,
    no clock: it applies, as its stock row would): a poll's fold carries it on the product's upsert, whose older
    `updated_at` dropped it, and the stock cursor moved past it for good."""
    return row.op != "delete" and row.quantity is not None and (row.version is not None or row.stock_apart)


LEVEL_ALONE = "older than the listing's last update: only its stock level applied (a level has its own clock)"
NOTHING_CHANGED = "older than the listing's last update; nothing changed"


def is_stale(row: ValidRow, look: Any) -> bool:
    """Whether the row is older than its listing; a row whose level alone is older drops the level (and its
    version, the level's clock stays the listing's) and says so; the rest of it applies. One whose catalogue part
    alone is older becomes a stock row of its level (its notes on that part dropped) and says so."""
    staleness = clock_staleness(row, look)
    if staleness == "catalog":
        row.op, row.price, row.currency, row.updated_at, row.catalog_version = "stock", None, None, None, None
        row.notes = [note for note in row.notes if note.startswith(("stock level", "quantity"))] + [LEVEL_ALONE]
    if staleness == "level":
        row.quantity, row.version = None, None
        if row.op != "delete":  # a delete carries no level
            row.notes.append("the stock level is older than the listing's (version); the listing keeps its level")
    return staleness == "stale"
