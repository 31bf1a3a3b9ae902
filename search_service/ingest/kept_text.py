"""A row's product text that a product other stores list keeps (docs/ingest.md: only a product one store lists
takes a row's text): the fields of the row that differ from the product's are noted on it, not dropped unsaid."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from search_service.db.sql import statement
from search_service.ingest.rows import ValidRow

FIELDS = ("brand", "description", "category", "attributes")  # the name is the listing's own title: applied


async def note_kept_text(conn: Any, store_id: UUID, kept: Sequence[tuple[UUID, ValidRow, int | None]]) -> None:
    """Note on each row (product, row, its category) which of its fields its product kept, and why."""
    ids, rows, cats = zip(*kept, strict=True)
    stmt = statement("ingest/mapping", "kept_text")
    found = await conn.fetch(
        stmt.sql,
        *stmt.bind(
            store_id=store_id,
            ids=list(ids),
            brands=[r.brand for r in rows],
            descriptions=[r.description for r in rows],
            category_ids=list(cats),
            attributes=[None if r.attributes is None else json.dumps(r.attributes) for r in rows],
        ),
    )
    for differs in found:
        fields = ", ".join(f for f in FIELDS if differs[f])
        why = "other stores list it too" if differs["shared"] else "this listing joined it, already in the catalogue"
        rows[differs["ord"] - 1].notes.append(
            f"{fields} not applied: the product keeps its own ({why}; only a product one store lists takes a "
            "row's text)"
        )
