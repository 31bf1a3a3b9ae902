"""The keyword side: full-text, exact name/brand/GTIN and typo-tolerant matches under the search's filters
(rank_keyword), as a `Ranked` side (score = text rank, + 1.0 for an exact match)."""

from __future__ import annotations

from search_service.db.sql import statement
from search_service.engine.config import EngineConfig
from search_service.engine.fusion import Ranked
from search_service.engine.scope import Scope
from search_service.engine.session import Conn, transaction


async def rank_keyword(
    conn: Conn, scope: Scope, depth: int, config: EngineConfig, typo_below: int | None = None
) -> Ranked:
    """`typo_below`: the typo threshold (default `EngineConfig.rrf_depth`, whatever the depth: a deeper ranking
    holds the same matches, so that pages of different depths are slices of one order)."""
    stmt = statement("engine/search", "rank_keyword")
    values = scope.bind(
        stmt,
        depth=depth,
        cap=config.keyword_cap,
        typo_tolerance=config.typo_tolerance,
        typo_below=config.rrf_depth if typo_below is None else typo_below,
    )
    rows = await conn.fetch(stmt.sql, *values)
    capped = bool(rows[0]["capped"]) if rows else False
    return Ranked(
        ids=[r["id"] for r in rows],
        scores={r["id"]: float(r["kscore"]) + (1.0 if r["exact"] else 0.0) for r in rows},
        total=int(rows[0]["total"]) if rows else 0,
        total_exact=not capped,
        strategy="keyword",
        exact_ids=frozenset(r["id"] for r in rows if r["exact"]),
    )


async def rank_keyword_apart(conn: Conn, scope: Scope, depth: int, config: EngineConfig) -> Ranked:
    """The keyword side on a second connection, in a transaction of its own with the engine's settings."""
    async with transaction(conn, config):
        return await rank_keyword(conn, scope, depth, config)
