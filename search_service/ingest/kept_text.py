"""A row's product text that a product other stores list keeps (docs/ingest.md: only a product one store lists
takes a row's text): the fields of the row that differ from the product's are noted on it, not dropped unsaid. And
the text a listing's former product keeps for its new one, when a new GTIN moves the listing and the row leaves
fields out."""

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


async def carry_former_text(
    conn: Any, new_products: Sequence[tuple[UUID, ValidRow, int | None]], former: dict[UUID, UUID]
) -> list[tuple[UUID, ValidRow, int | None]]:
    """The new products (product, row, its category), those made for a listing its new GTIN moves (`former`: new
    product → the product the listing leaves, a barcode corrected) with the text their row leaves out taken from
    that product, as an absent field keeps the stored value (it was lost unsaid); the row's note says so."""
    stmt = statement("ingest/mapping", "former_text")
    found = {r["id"]: r for r in await conn.fetch(stmt.sql, *stmt.bind(ids=list(set(former.values()))))}
    out = []
    for product, row, category_id in new_products:
        old = found.get(former[product]) if product in former else None
        if old is not None:
            category_id, carried = _carry(row, category_id, old)
            if carried:
                of_gtin = f" (gtin {old['gtin']})" if old["gtin"] else ""
                row.notes.append(f"{', '.join(carried)} kept from the product this listing left{of_gtin}: the row "
                                 "gives none; send them if this article's differ")  # fmt: skip
        out.append((product, row, category_id))
    return out


def _carry(row: ValidRow, category_id: int | None, old: Any) -> tuple[int | None, list[str]]:
    """The fields of FIELDS the row leaves out and the old product holds, set on the row (its category returned)."""
    carried = []
    for key in ("brand", "description"):
        if getattr(row, key) is None and old[key] is not None:
            setattr(row, key, old[key])
            carried.append(key)
    if category_id is None and old["category_id"] is not None:
        category_id = old["category_id"]
        carried.append("category")
    if row.attributes is None and old["attributes"] is not None:
        row.attributes = json.loads(old["attributes"])
        carried.append("attributes")
    return category_id, carried
