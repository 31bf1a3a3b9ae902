"""The vector side: the plan the planner chose, run, as a `Ranked` side (score = 1 - cosine distance).

``exact`` computes every candidate's distance in SQL (rank_exact); ``hnsw`` is an iterative HNSW scan
(rank_hnsw), answered exactly instead when it returns fewer rows than asked (it ran out of
hnsw.max_scan_tuples); ``scan`` and ``gather`` rank the in-memory copy (vector_scan.py). Without a point the
strategies are prefixed ``global_``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from search_service.db.sql import statement
from search_service.engine.config import EngineConfig
from search_service.engine.fusion import Ranked
from search_service.engine.results import Strategy
from search_service.engine.scope import Scope
from search_service.engine.session import Conn
from search_service.engine.vector_scan import VectorPlan, rank_gather, rank_scan


def _ranked(rows: Sequence[Any], total: int, total_exact: bool, strategy: Strategy) -> Ranked:
    """Rows of (id, distance), best first."""
    ids = [r["id"] for r in rows]
    scores = {r["id"]: 1.0 - float(r["distance"]) for r in rows}
    return Ranked(ids, scores, total, total_exact, strategy)


async def _in_memory(
    conn: Conn, scope: Scope, plan: VectorPlan, vector: np.ndarray, top_n: int, config: EngineConfig
) -> Ranked:
    is_global = scope.store_ids is None
    found = None
    strategy: Strategy
    if plan.choice.plan == "scan":
        strategy = "global_exact_scan" if is_global else "exact_scan"
        found = await rank_scan(conn, scope, plan, vector, top_n, config)
        if found is None:
            strategy = "scan_fallback_gather"
    else:
        strategy = "global_exact_gather" if is_global else "exact_gather"
    if found is None:
        found = await rank_gather(conn, scope, plan, vector, top_n, config)
    ordered = sorted(found, key=lambda pid: (found[pid], pid))[:top_n]
    rows = [{"id": pid, "distance": found[pid]} for pid in ordered]
    return _ranked(rows, max(round(plan.est.candidates), len(found)), False, strategy)


async def _hnsw(conn: Conn, scope: Scope, plan: VectorPlan, vector: np.ndarray, top_n: int) -> Ranked | None:
    """None: the scan returned fewer rows than asked (its budget ran out, or fewer products qualify)."""
    stmt = statement("engine/search", "rank_hnsw")
    want = plan.choice.fetch
    rows = await conn.fetch(stmt.sql, *scope.bind(stmt, query_vector=vector, fetch_n=want))
    fetched = int(rows[0]["fetched"]) if rows else 0
    if fetched < want:
        return None
    strategy: Strategy = "global_hnsw" if scope.store_ids is None else "hnsw_iterative"
    return _ranked(rows[:top_n], max(round(plan.est.candidates), fetched), False, strategy)


async def _exact(conn: Conn, scope: Scope, vector: np.ndarray, top_n: int, strategy: Strategy) -> Ranked:
    stmt = statement("engine/search", "rank_exact")
    rows = await conn.fetch(stmt.sql, *scope.bind(stmt, query_vector=vector, top_n=top_n))
    return _ranked(rows, int(rows[0]["total"]) if rows else 0, True, strategy)


async def rank_vector(
    conn: Conn, scope: Scope, plan: VectorPlan, vector: np.ndarray, top_n: int, config: EngineConfig
) -> Ranked:
    """The top_n products nearest to `vector` under the scope's filters, by the plan chosen."""
    if plan.choice.plan in ("scan", "gather"):
        return await _in_memory(conn, scope, plan, vector, top_n, config)
    is_global = scope.store_ids is None
    strategy: Strategy
    if plan.choice.plan == "hnsw":
        ranked = await _hnsw(conn, scope, plan, vector, top_n)
        if ranked is not None:
            return ranked
        strategy = "global_fallback_exact" if is_global else "hnsw_fallback_exact"
    else:
        strategy = "global_exact" if is_global else "exact"
    return await _exact(conn, scope, vector, top_n, strategy)
