"""The settings the engine's statements run under, and the transaction that carries them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from search_service.engine.config import EngineConfig

# A plain connection or a pool's proxy; the pool (or the connection) has pgvector's codec registered.
Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


def session_settings(config: EngineConfig) -> dict[str, str]:
    """The settings the engine's statements run under (a connection carries them, or gets them per search)."""
    settings: dict[str, str] = {
        # Each statement is planned for its own parameters: `$n IS NULL OR …` guards fold away, and a
        # 3-store radius and a 900-store radius do not share one generic plan.
        "plan_cache_mode": "force_custom_plan",
        "jit": "off",
        "hnsw.ef_search": str(int(config.ef_search)),
        "hnsw.iterative_scan": config.iterative_scan,
        "hnsw.max_scan_tuples": str(int(config.max_scan_tuples)),
        "hnsw.scan_mem_multiplier": str(float(config.scan_mem_multiplier)),
        "pg_trgm.similarity_threshold": str(float(config.trigram_similarity)),
    }
    if config.statement_timeout_ms is not None:
        settings["statement_timeout"] = str(int(config.statement_timeout_ms))
    settings.update(config.extra_settings)
    return settings


def generic_plan_settings(config: EngineConfig) -> dict[str, str]:
    """The engine's settings for a connection that plans each statement once (a generic plan, reused): for
    statements that are planned for longer than they run and whose plan the parameters hardly change.
    search_context, hydrate and rank_keyword: 0.3-1.0 ms planned against 0.1-0.5 run at 100k, same rows
    (docs/scale.md)."""
    return session_settings(config) | {"plan_cache_mode": "force_generic_plan"}


def settings_sql(config: EngineConfig) -> str:
    return "; ".join(f"SET LOCAL {name} = '{value}'" for name, value in session_settings(config).items())


@contextlib.asynccontextmanager
async def transaction(conn: Conn, config: EngineConfig, one_snapshot: bool = False) -> AsyncIterator[None]:
    """The engine's settings for the statements in the block. A connection that carries them already needs
    nothing (`EngineConfig.connection_has_settings`). A caller's open transaction (e.g. one with its
    statement_timeout) gets them with SET LOCAL; otherwise a read-only transaction opens with them in one
    round trip (asyncpg's `transaction()` and a SET would take two) and commits, or rolls back on error.
    `one_snapshot`: the block's statements read one snapshot (REPEATABLE READ), so that a page's stores and prices
    are those its ranking and order were read from; a connection carrying the settings then opens it too (a BEGIN
    and a COMMIT, ~0.1 ms in all)."""
    if conn.is_in_transaction():
        if not config.connection_has_settings:
            await conn.execute(settings_sql(config))
        yield
        return
    if config.connection_has_settings and not one_snapshot:
        yield
        return
    begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if one_snapshot else "BEGIN READ ONLY"
    await conn.execute(begin if config.connection_has_settings else f"{begin}; {settings_sql(config)}")
    try:
        yield
    except BaseException:
        if not conn.is_closed() and conn.is_in_transaction():
            with contextlib.suppress(Exception):  # a connection still cancelling: the pool's release rolls back
                await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")
