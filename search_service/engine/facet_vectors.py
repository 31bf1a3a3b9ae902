"""The vector side of a facet set, from the API's in-memory vector copy.

Facets and sorts of semantic and hybrid search cover the `PLINQY_FACET_DEPTH` (1000) products most similar to the
query in scope. The engine's exact plans find a page's top-k and check each candidate's listings in SQL (~12 µs an
id, in slices): 1000-deep that was 3-4x a search's time. A set needs none of those checks here, since `facet_set`
reads every candidate's listings in scope anyway: the products listed at the stores in scope (`listed_products`,
one packed array; the whole copy for a global search) are ranked in memory and the best `depth` taken, scored
exactly in float32. Products whose vector changed since the copy's last refresh (about a second) rank by their old
vector; a global set holds products no active store lists, which `facet_set` drops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from search_service.db.sql import statement
from search_service.engine.fusion import Ranked
from search_service.engine.scope import Scope
from search_service.engine.vectors import VectorCache


async def rank_vector_set(conn: Any, scope: Scope, vectors: VectorCache, vector: np.ndarray, depth: int) -> Ranked:
    """The `depth` products of the copy most similar to `vector` among those listed in scope, best first."""
    if scope.store_ids is None:
        ranking = await vectors.rank_batched(vector)
    else:  # rank_subset ranks the whole copy itself only when that beats gathering the listed rows
        stmt = statement("engine/search", "listed_products")
        packed = await conn.fetchval(stmt.sql, *scope.bind(stmt))
        ranking = vectors.rank_subset(vector, packed)
    rows, _threshold = ranking.top(min(depth, len(ranking)))  # exact up to EXACT_ORDER_MAX, by bound past it
    query = vectors._unit_query(vector)
    similarity = vectors._matrix[rows] @ query  # exact float32 scores of the rows the bounds chose
    ids = vectors.ids_of(rows)
    order = sorted(range(len(ids)), key=lambda i: (-float(similarity[i]), str(ids[i])))
    ranked = [ids[i] for i in order]
    scores = {ids[i]: float(similarity[i]) for i in order}
    strategy = "global_facet_set" if scope.store_ids is None else "facet_set"
    return Ranked(ranked, scores, len(ranking), False, strategy)
