"""Catalogue reads for the API's non-search endpoints and its readiness: one function per statement of
`engine/sql/catalog.sql`, so no handler holds SQL text. Each takes an asyncpg connection (or pool proxy)."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from search_service.db.sql import statement

FILE = "engine/catalog"


async def get_product(conn: Any, product_id: UUID) -> dict[str, Any] | None:
    """An active product with `attributes`, `category_path` (root first) and `images` decoded, or None."""
    stmt = statement(FILE, "product_by_id")
    row = await conn.fetchrow(stmt.sql, *stmt.bind(product_id=product_id))
    if row is None:
        return None
    product = dict(row)
    for key in ("attributes", "category_path", "images"):
        product[key] = json.loads(product[key])
    return product


async def stores_nearby(
    conn: Any, *, lat: float, lon: float, radius_m: float, limit: int, offset: int = 0
) -> tuple[list[Any], int]:
    """Active stores within `radius_m` metres of (lat, lon), nearest first (rows with lat, lon, distance_m), the
    `limit` after the `offset` nearest, and how many the radius holds."""
    stmt = statement(FILE, "stores_nearby")
    rows = await conn.fetch(stmt.sql, *stmt.bind(lat=lat, lon=lon, radius_m=radius_m, limit=limit, offset=offset))
    return [r for r in rows if r["id"] is not None], int(rows[0]["total"])


async def categories(conn: Any) -> list[Any]:
    """Every category as (id, parent_id, name, slug, position) rows, sorted by (position, name, id)."""
    return list(await conn.fetch(statement(FILE, "categories").sql))


async def bound_statements(conn: Any, timeout_ms: int) -> None:
    """The statement timeout of the rest of the connection's transaction."""
    stmt = statement(FILE, "bound_statements")
    await conn.execute(stmt.sql, *stmt.bind(timeout_ms=str(timeout_ms)))


async def migration_revisions(conn: Any) -> list[str]:
    """The alembic revision(s) the database is at; raises asyncpg.UndefinedTableError when none was applied."""
    return [row["version_num"] for row in await conn.fetch(statement(FILE, "migration_revisions").sql)]


async def some_stored_secrets(conn: Any) -> list[bytes]:
    """A few secrets stored encrypted (none when none is stored)."""
    return [bytes(row["token"]) for row in await conn.fetch(statement(FILE, "some_stored_secrets").sql)]


async def vector_count(conn: Any) -> int:
    """How many product vectors a full load of the in-memory copy would hold."""
    return int(await conn.fetchval(statement(FILE, "vector_count").sql))


async def active_product_count(conn: Any) -> int:
    """How many products a suggestion index would hold."""
    return int(await conn.fetchval(statement(FILE, "active_product_count").sql))
