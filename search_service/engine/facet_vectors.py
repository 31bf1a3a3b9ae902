"""The vector side of a facet set, from the API's in-memory vector copy.

Facets and sorts of semantic and hybrid search cover the `PLINQY_FACET_DEPTH` (1000) products most similar to the
query in scope. The engine's exact plans find a page's top-k and check each candidate's listings in SQL (~12 µs an
id, in slices): 1000-deep that was 3-4x a search's time. Narrow scopes: the products listed at the stores in scope
(`listed_products`, one packed array) are ranked in memory and the best `depth` taken, in the copy's scores (float16
rows: within ranking.FLOAT16_ERROR of float32's; the page's window is re-scored by PostgreSQL: `_settled`);
with the candidate sets in scope (`candidates.py`, brought up to this search's snapshot) those products are their
union and no statement lists them.
Wide scopes (WIDE_SCOPE_STORES stores or more, where most products are listed and gathering every listing cost
~75 ms at 20 km; with the candidate sets, only those the statistics put near full: `union_pays`): the whole copy
is ranked and its best kept in order where they have a listing in scope, from the listing buckets brought up to
now (`listed_in_memory`) or probed by `listed_among` until `depth` are listed; the same set, since both keep the
held products with a listing in scope, in exact score order. A global
set in stock is kept so, listed at any active store; otherwise (in_stock=false, no buckets) it is the copy's best
`depth`, with products no active store lists, which `facet_set` drops. Products whose
vector changed since the copy's last refresh (about a second) rank by their old vector. Every plan skips the products
the labels hold inactive (`inactive_rows`): they counted toward the depth, and facet_set dropped them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from uuid import UUID

import numpy as np

from search_service.db.sql import statement
from search_service.engine.config import EngineConfig
from search_service.engine.facet_labels import ProductLabels
from search_service.engine.facet_stock import StockBuckets
from search_service.engine.fusion import Ranked
from search_service.engine.keyindex import ids_from_keys, keys_of
from search_service.engine.planner import estimate, needs_count
from search_service.engine.ranking import score_error
from search_service.engine.results import Strategy
from search_service.engine.scope import Scope
from search_service.engine.stats import StatsCache, read_stats
from search_service.engine.vectors import Ranking, VectorCache

# Scopes of this many stores probe the whole copy's best rather than gather listings (100k products, 1,000
# stores: gathering cost 50-65 ms at 70-125 stores, probing as much; 165 against 38 ms at 480 stores).
WIDE_SCOPE_STORES = 200
WIDE_PROBED = 3  # x depth: the whole copy's best probed at most before the gather plan takes over
WIDE_RESCORED = 8  # x depth: rows re-scored in float32 to certify the probed ones (int8 bounds are loose)
# The first probe takes depth + depth / this many of the best (a wide scope lists nearly all of them), the rest
# only if too few were listed: at 1M products, 20 km, the 3 x depth ids at once were ~4 ms of UUIDs to make and send.
WIDE_FIRST_MARGIN = 4
# Products past a page's window re-scored at most (_settled): a query whose similarities crowd within 2^-10 (a random
# vector's: thousands) would re-score thousands; past these, the window's last places keep the copy's order.
SETTLE_EXTRA = 256
# keys (m, 2) of products -> whether each has a listing in stock in scope (facet_stock.StockBuckets.listed)
Listed = Callable[[np.ndarray], np.ndarray]


def _exact_order(vectors: VectorCache, query: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`rows` best first by the copy's score (float16 rows: ranking.FLOAT16_ERROR), ties by id, and their scores."""
    similarity = vectors._matrix[rows] @ query
    keys = vectors._view.key[np.asarray(rows, dtype=np.int64)]
    order = np.lexsort((keys[:, 1], keys[:, 0], -similarity))
    return rows[order], similarity[order]


async def _wide_top(
    conn: Any,
    scope: Scope,
    vectors: VectorCache,
    vector: np.ndarray,
    depth: int,
    exact: tuple[float, int],
    listed: Listed | None = None,
) -> Ranked | None:
    """The set from the whole copy's best, or None when too few of them are listed in scope. `listed`: which are,
    from memory (the listing buckets, listed_in_memory); else listed_among probes them. `exact`: see _settled."""
    whole = await vectors.rank_batched(vector)
    rows, threshold = whole.top(min(len(whole), WIDE_RESCORED * depth))  # by bound: certified below
    rows, similarity = _exact_order(vectors, vectors._unit_query(vector), rows)
    # no row left out scores above the threshold (float16 similarities: within score_error of float32's)
    certain = np.flatnonzero(similarity - score_error(vectors._matrix) > threshold)
    certain = certain[_active(rows[certain], scope.inactive)][: WIDE_PROBED * depth]
    if listed is not None:
        picked = certain[listed(vectors._view.key[rows[certain]])]
        if len(picked) < depth and len(certain) < len(whole):
            return None
        keys = vectors._view.key[rows[picked]]
        return await _settled(conn, vector, keys, similarity[picked], exact, depth, "wide_facet_set", len(whole))
    return await _probed(conn, scope, vectors, vector, (rows, similarity, certain), (depth, len(whole)), exact)


async def _probed(
    conn: Any,
    scope: Scope,
    vectors: VectorCache,
    vector: np.ndarray,
    best: tuple[np.ndarray, ...],
    sizes: tuple[int, int],
    exact: tuple[float, int],
) -> Ranked | None:
    """_wide_top's set with listed_among probing the certified best (`best`: rows, similarities, certain;
    `sizes`: the depth and the copy's rows)."""
    rows, similarity, certain = best
    depth, whole = sizes
    stmt = statement("engine/search", "listed_among")
    listed: list[UUID] = []
    score: dict[UUID, float] = {}
    probed, size = 0, depth + depth // WIDE_FIRST_MARGIN
    while probed < len(certain) and len(listed) < depth:  # a first slice, then the rest if too few are listed
        part = certain[probed : probed + size]
        ids = vectors.ids_of(rows[part])
        listed += await conn.fetchval(stmt.sql, *scope.bind(stmt, ids=ids, depth=depth - len(listed)))
        score.update(zip(ids, similarity[part].tolist(), strict=True))
        probed, size = probed + len(part), len(certain)
    if len(listed) < depth and probed < whole:  # the gather plan finds the rest
        return None
    similarity = np.array([score[i] for i in listed])
    return await _settled(conn, vector, keys_of(listed), similarity, exact, depth, "wide_facet_set", whole)


async def rank_vector_set(
    conn: Any,
    scope: Scope,
    vectors: VectorCache,
    vector: np.ndarray,
    depth: int,
    union: bool = True,
    listed: Listed | None = None,
    settle: int = 0,
    passing: bytes | None = None,
) -> Ranked:
    """The `depth` products of the copy most similar to `vector` among those listed in scope, best first. `union`:
    whether the candidate sets' union of the stores in scope pays (union_pays); a wide scope probes otherwise.
    `settle`: how many of the best to order by PostgreSQL's scores (_settled: a page's window). `passing`: the
    products a filter keeps (products_passing), with the candidate sets' union."""
    exact = (score_error(vectors._matrix), settle)
    ranked = functools.partial(_ranked_rows, conn, vectors, vector, inactive=scope.inactive)
    in_scope = scope.products_in_scope() if union or passing is not None else scope.in_scope
    if in_scope is not None:  # the candidate sets' products in stock in scope: no statement
        rows = vectors.candidates.rows_in_copy(in_scope.products, vectors)
        if passing is not None:
            rows = np.intersect1d(rows, vectors._view.index.rows_of(vectors._view.key, vectors._view.n, passing))
        return await ranked(vectors.rank_subset(vector, rows), (depth, exact), "facet_set")
    if scope.store_ids is not None and len(scope.store_ids) >= WIDE_SCOPE_STORES:
        wide = await _wide_top(conn, scope, vectors, vector, depth, exact, listed)
        if wide is not None:
            return wide
    if scope.store_ids is None:
        ranking = await vectors.rank_batched(vector)
        if listed is not None:  # the best listed at an active store
            return await ranked(ranking, (depth, exact), "global_facet_set", listed)
        # facet_set drops products no active store lists: the page is no slice of the set, all of it is settled
        return await ranked(ranking, (depth, (exact[0], depth)), "global_facet_set")
    # rank_subset ranks the whole copy itself only when that beats gathering the listed rows
    stmt = statement("engine/search", "listed_products")
    ranking = vectors.rank_subset(vector, await conn.fetchval(stmt.sql, *scope.bind(stmt)))
    return await ranked(ranking, (depth, exact), "facet_set")


async def _ranked_rows(
    conn: Any,
    vectors: VectorCache,
    vector: np.ndarray,
    ranking: Ranking,
    sized: tuple[int, Any],
    strategy: Strategy,
    listed: Listed | None = None,
    inactive: np.ndarray | None = None,
) -> Ranked:
    """`sized`: the depth, and _settled's `exact`. `listed`: only the rows it keeps, and none of `inactive` (rows
    of inactive products), the best taken deeper (twice as deep each time) until `depth` of them are in hand."""
    depth, exact = sized
    want = depth
    while True:
        rows, similarity = ranking.best(want)  # at least `want`: every row above the highest bound left unscored
        if listed is None and inactive is None:
            break
        kept = _active(rows, inactive)
        if listed is not None:
            kept &= listed(vectors._view.key[rows])
        if int(np.count_nonzero(kept)) >= depth or len(rows) >= len(ranking):
            rows, similarity = rows[kept], similarity[kept]
            break
        want = min(len(ranking), 2 * max(want, len(rows)))
    return await _settled(conn, vector, vectors._view.key[rows], similarity, exact, depth, strategy, len(ranking))


def _active(rows: np.ndarray, inactive: np.ndarray | None) -> np.ndarray:
    """Which of the copy's `rows` are not among `inactive`'s (sorted: a binary search each, where np.isin took
    ~195 ms for 1,001 rows among 100k inactive)."""
    if inactive is None or len(inactive) == 0:
        return np.ones(len(rows), dtype=bool)
    at = np.minimum(np.searchsorted(inactive, rows), len(inactive) - 1)
    return inactive[at] != rows


def inactive_rows(labels: ProductLabels | None, vectors: VectorCache | None) -> np.ndarray | None:
    """The copy's rows of the products the labels hold as inactive (as of their last refresh, about a second);
    None when there are none or no labels."""
    if labels is None or not labels.loaded or vectors is None or not vectors.loaded:
        return None
    keys = labels.inactive_keys()
    if len(keys) == 0:
        return None
    view = vectors._view
    cached = labels.inactive_rows
    if cached is not None and cached[0] == labels.version and cached[1] is view and cached[2] == view.n:
        return cached[3]  # found once per write of either: 13 ms for 100 keys among 1M, 310 ms for 100k
    rows = view.index.find(view.key, view.n, keys)
    found = np.sort(rows[rows >= 0]) if np.any(rows >= 0) else None
    labels.inactive_rows = (labels.version, view, view.n, found)
    return found


async def _settled(
    conn: Any,
    vector: np.ndarray,
    keys: np.ndarray,
    similarity: np.ndarray,
    exact: tuple[float, int],
    depth: int,
    strategy: Strategy,
    total: int,
) -> Ranked:
    """The set's `depth` best, ties by id (as str(UUID) orders). `exact`: the copy's score error (float16 rows) and
    how many of the best to settle. Those, and the products about the depth-th place, are re-scored by PostgreSQL
    as the plain search scores them, and ordered by that score within their block (_blocks): the copy's scores put
    two products closer than twice the error in either order (a faceted page differed from search's, and the set's
    1000th product, so its counts, from one page of a query to another). Re-scoring the whole set cost ~10 ms a
    request at 100k; a page's window, ~1 ms."""
    error, settle = exact
    order = np.lexsort((keys[:, 1], keys[:, 0], -similarity))
    keys, similarity = keys[order], similarity[order]
    blocks = _blocks(similarity, settle, depth, error) if error else []
    if blocks:
        at = np.concatenate([np.arange(lo, hi) for lo, hi in blocks])
        ids = ids_from_keys(keys[at])
        stmt = statement("engine/search", "product_similarity")
        found = {
            r["id"]: float(r["similarity"])
            for r in await conn.fetch(stmt.sql, *stmt.bind(ids=ids, query_vector=vector))
        }
        similarity = similarity.astype(np.float64)
        similarity[at] = [found.get(i, s) for i, s in zip(ids, similarity[at].tolist(), strict=True)]
        for lo, hi in blocks:
            inner = np.lexsort((keys[lo:hi, 1], keys[lo:hi, 0], -similarity[lo:hi])) + lo
            keys[lo:hi], similarity[lo:hi] = keys[inner], similarity[inner]
    keys, similarity = keys[:depth], similarity[:depth]
    ids = ids_from_keys(keys)
    return Ranked(ids, dict(zip(ids, similarity.tolist(), strict=True)), total, False, strategy, keys=keys)


async def settle_window(conn: Any, vector: np.ndarray, vectors: VectorCache, side: Ranked, window: int) -> Ranked:
    """`side`, a set's vector side from the copy narrowed to the products chosen facet values keep (facet_chosen.py),
    with its first `window` (the page's among them) settled as _settled settles a set's: the set's own window is
    not the page's once a value is chosen."""
    keys = keys_of(side.ids) if side.keys is None else side.keys
    similarity = np.array([side.scores[i] for i in side.ids], dtype=np.float64)
    exact = (score_error(vectors._matrix), window)
    # one past its length: no last place to settle (the set's was, before the values narrowed it)
    settled = await _settled(conn, vector, keys, similarity, exact, len(keys) + 1, side.strategy, side.total)
    return replace(side, ids=settled.ids, scores=settled.scores, keys=settled.keys)


def _blocks(similarity: np.ndarray, settle: int, depth: int, error: float) -> list[tuple[int, int]]:
    """Ranges of the sorted scores to re-score: the first `settle` and those within twice the error of the last of
    them; the products within twice the error of the depth-th (one of those past it may belong in its place); each
    at most SETTLE_EXTRA past its mark, overlapping ones merged. A product outside them is farther than that from
    any inside, so their order holds."""
    n, out = len(similarity), []
    if settle and n:
        last = similarity[min(settle, n) - 1]
        out.append((0, min(int(np.count_nonzero(similarity >= last - 2 * error)), settle + SETTLE_EXTRA)))
    if n >= depth:  # n == depth too: a set ranked one past its depth (ux.py) keeps its first depth - 1 of them
        mark = similarity[depth - 1]
        lo = max(int(np.count_nonzero(similarity > mark + 2 * error)), depth - SETTLE_EXTRA)
        out.append((lo, min(int(np.count_nonzero(similarity >= mark - 2 * error)), depth + SETTLE_EXTRA)))
    if len(out) == 2 and out[1][0] <= out[0][1]:
        out = [(0, max(out[0][1], out[1][1]))]
    return [(lo, hi) for lo, hi in out if hi > lo]


async def listed_in_memory(conn: Any, scope: Scope, stock: StockBuckets | None) -> Listed | None:
    """Which products have a listing in stock in scope, from the listing buckets brought up to now (facet_stock.py),
    where they answer the scope exactly (in stock, no price bound): a wide facet set then needs no listed_among
    probes (1M products, 20 km: ~1,250 ids, ~9 ms of PostgreSQL), and a global one holds no product in stock
    nowhere (it counted them toward its depth, and facet_set dropped them: the cheapest product could be left out)."""
    params = scope.params
    exact = params.in_stock and params.min_price is None and params.max_price is None
    if stock is None or not exact or not await stock.brought_current(conn):
        return None
    inactive: list[UUID] = []
    if scope.store_ids is None:  # a global set: every active store (it counted products in stock nowhere)
        inactive = list(await conn.fetchval(statement("engine/facets", "inactive_stores").sql))
    return functools.partial(stock.listed, stores=stock.store_mask(scope.store_ids, inactive))


async def union_pays(conn: Any, scope: Scope, config: EngineConfig, stats: StatsCache | None) -> bool:
    """Whether a facet set takes the candidate sets' union of its stores: not for a wide scope the statistics put
    near full (as search's plans, planner.needs_count), which probes the whole copy's best instead (1M products,
    20 km: the union of 7,836 stores' sets was ~30 ms of a ~66 ms faceted search)."""
    if scope.sets is None or scope.store_ids is None or len(scope.store_ids) < WIDE_SCOPE_STORES:
        return True
    catalogue = await (read_stats(conn) if stats is None else stats.get(conn))
    return needs_count(estimate(catalogue, scope.category_ids, len(scope.store_ids), scope.params), config)


async def products_passing(conn: Any, scope: Scope) -> bytes | None:
    """The products the scope's product filters keep (a brand, a category), packed; None when the set cannot take
    them in memory: a price range (the candidate sets hold stock, not prices), or no candidate sets."""
    p = scope.params
    if scope.sets is None or p.min_price is not None or p.max_price is not None:
        return None
    stmt = statement("engine/search", "products_passing")
    return bytes(await conn.fetchval(stmt.sql, *scope.bind(stmt)))
