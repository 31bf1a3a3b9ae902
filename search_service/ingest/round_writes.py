"""A mapping round's plan and its product writes (set-based: one statement each), apart from the decisions
(`mapping`): the products a round creates or whose text it rewrites, and a GTIN another transaction took meanwhile
(GtinTaken: the round is mapped again)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from search_service.db.sql import statement
from search_service.ingest.kept_text import carry_former_text
from search_service.ingest.rows import ValidRow
from search_service.ingest.threads import rows_off_loop


async def _run(conn: Any, name: str, **params: Any) -> list[Any]:
    return list(await conn.fetch((stmt := statement("ingest/mapping", name)).sql, *stmt.bind(**params)))


@dataclass
class RowResult:
    status: str  # mapped | stale | rejected
    error: str | None = None  # the reason (rejected) or what was ignored (mapped)
    matched_by: str | None = None  # gtin | sku | created (upserts)
    product_id: UUID | None = None
    changed: bool = True  # False: a mapped row whose write changed nothing (the import's unchanged_rows)


@dataclass
class Plan:
    """One round's writes (each SKU at most once per round)."""

    new_products: list[tuple[UUID, ValidRow, int | None]] = field(default_factory=list)
    product_updates: list[tuple[UUID, ValidRow, int | None]] = field(default_factory=list)
    kept_text: list[tuple[UUID, ValidRow, int | None]] = field(default_factory=list)  # another store's product too
    listings: list[tuple[ValidRow, UUID, str]] = field(default_factory=list)  # row, product, currency
    stock: list[ValidRow] = field(default_factory=list)
    deletes: list[ValidRow] = field(default_factory=list)
    new_by_gtin: dict[str, UUID] = field(default_factory=dict)  # the products the round gives a GTIN, by GTIN
    adopt: list[tuple[str, UUID]] = field(default_factory=list)  # (sku, product): a SKU-less listing takes the SKU
    former: dict[UUID, UUID] = field(default_factory=dict)  # a new product → the one its listing leaves (a new GTIN)


class GtinTaken(Exception):
    """Another transaction gave a GTIN this round attaches to a product to another product since the lookup."""


def jsonb(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value)


def product_columns(products: list[tuple[UUID, ValidRow, int | None]]) -> dict[str, list[Any]]:
    """The product statements' arrays, one item a product: its id, text, category, attributes and GTIN."""
    ids, rows, cats = zip(*products, strict=True)
    return {
        "ids": list(ids),
        "names": [r.name for r in rows],
        "brands": [r.brand for r in rows],
        "descriptions": [r.description for r in rows],
        "category_ids": list(cats),
        "attributes": [jsonb(r.attributes) for r in rows],
        "gtins": [r.gtin for r in rows],
    }


async def update_products(conn: Any, plan: Plan) -> set[UUID]:
    """The products whose text (or GTIN) changed; GtinTaken when another product took a GTIN meanwhile."""
    try:
        columns = await rows_off_loop(len(plan.product_updates), product_columns, plan.product_updates)
        got = await _run(conn, "update_products", **columns)
    except asyncpg.UniqueViolationError as exc:  # the other product's transaction committed while this waited
        if exc.constraint_name != "uq_product_master_gtin":
            raise
        raise GtinTaken from exc
    if any(r["taken"] for r in got):
        raise GtinTaken
    return {r["id"] for r in got}


async def insert_products(
    conn: Any, plan: Plan, results: dict[int, RowResult], valid: list[tuple[int, ValidRow]]
) -> None:
    if plan.former:  # what the rows of moved listings leave out, their former product keeps for them
        plan.new_products = await carry_former_text(conn, plan.new_products, plan.former)
    columns = await rows_off_loop(len(plan.new_products), product_columns, plan.new_products)
    inserted = await _run(conn, "insert_products", **columns)
    missing = set(columns["ids"]) - {r["id"] for r in inserted}
    if not missing:
        return
    # Another transaction created these GTINs' products first: link to those.
    lost = {pid: row.gtin for pid, row, _ in plan.new_products if pid in missing}
    found = {r["gtin14"]: r["id"] for r in await _run(conn, "gtin_products", gtins=list(lost.values()))}
    swap = {pid: found[gtin] for pid, gtin in lost.items() if gtin in found}
    plan.listings = [(row, swap.get(pid, pid), cur) for row, pid, cur in plan.listings]
    for result in results.values():
        if result.product_id in swap:
            result.product_id, result.matched_by = swap[result.product_id], "gtin"
