"""The search engine of issue 4 ("Search near me"): exact top-k under a radius filter, hybrid ranking.

Plan (a handful of round trips; in a read-only transaction of its own unless the connections carry the
engine's settings, as the API's do):

1. `search_context`: active stores in the radius via the GiST index on store.location (none → return at
   once, strategy ``no_stores``) and the category subtree; a global search without a category skips it. The
   catalogue statistics (reltuples, pg_stats) come from `stats.StatsCache`, read every 30 s.
2. The vector side picks a plan per query from a cost estimate (`choose_strategy`):
   - ``exact_scan`` (when the API holds the in-memory vector copy, `vectors.VectorCache`): every vector is
     ranked in memory (int8 bounds, float32 re-scoring: exact), and PostgreSQL keeps the best-ranked ids
     that pass the filters, slice by slice, together with the qualifying products whose vector changed
     after the copy was taken; it stops once the k-th kept distance is no worse than the best any unchecked
     vector can have, so the answer is the true top-k. Cost: ranking plus a few index probes per id
     checked. When the next slice would cost more than the gather plan, that plan answers instead
     (``scan_fallback_gather``).
   - ``exact_gather`` (with the copy): the product ids listed at the stores in scope, in one packed array
     (`listed_products`, ~1 µs each, no product row read), ranked exactly in memory and checked best
     first as in the scan. Cheapest for a few thousand candidates, where the scan may walk far down the
     ranking before it finds products the nearby stores sell.
   - ``exact``: candidates = distinct products listed in-stock at those stores; each candidate's distance
     is computed with `cosine_distance()` (not index-orderable, so the HNSW index cannot be used) and
     top-N sorted. Exact by construction; ~10 µs per candidate (a heap and TOAST fetch each), so with the
     copy it only wins for a handful of candidates.
   - ``hnsw_iterative``: an HNSW iterative index scan (`hnsw.iterative_scan`, raised `hnsw.ef_search`,
     bounded `hnsw.max_scan_tuples`) filtered by an EXISTS probe of the listings, over-fetched and re-sorted
     by exact distance. If the scan returns fewer rows than asked, it ran out of budget: the query is
     answered by the exact plan instead (``hnsw_fallback_exact``), so a selective filter never loses rows.
   Without a point the filter is "listed at any active store" (``global_hnsw`` / ``global_exact`` /
   ``global_fallback_exact``).
3. Hybrid mode also runs the keyword side (`rank_keyword`) under the same filters and fuses both ranked
   lists with Reciprocal Rank Fusion (k=60); exact name/brand/GTIN matches sort first.
4. `hydrate`: the page's products and, per product, its nearest qualifying stores (LATERAL).

Scores: ``semantic`` → cosine similarity (1 - cosine distance); ``hybrid`` → RRF score
Σ 1/(60 + rank) over the two lists (rank from 1; at most 2/61); ``keyword`` → text rank (ts_rank_cd
under the 'english' config, else 'simple') or, for a typo match, trigram word similarity; plus 1.0 for an
exact name/brand/GTIN match.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeAlias
from uuid import UUID

import asyncpg
import numpy as np
from asyncpg.pool import PoolConnectionProxy

from embeddings.sqlblocks import load_blocks
from search_service.engine.stats import CatalogueStats, StatsCache, read_stats
from search_service.engine.vectors import Ranking, VectorCache, as_vector

SQL_PATH = Path(__file__).resolve().parent / "sql" / "search.sql"
HNSW_INDEX = "ix_product_master_ai_vector_hnsw"
RRF_K = 60
MAX_OFFSET = 1000

# A plain connection or a pool's proxy; the pool (or the connection) has pgvector's codec registered.
Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
Mode = Literal["hybrid", "semantic", "keyword"]
ForcedPlan = Literal["auto", "exact", "hnsw", "scan", "gather"]


class ProductNotFound(LookupError):
    """similar() was asked about a product id that does not exist (the HTTP layer answers 404)."""

    def __init__(self, product_id: UUID) -> None:
        super().__init__(f"product {product_id} not found")
        self.product_id = product_id


@dataclass(frozen=True)
class SearchParams:
    q: str  # already trimmed and validated
    lat: float | None = None
    lon: float | None = None
    radius_m: float = 5000
    limit: int = 20
    offset: int = 0
    category_id: int | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool = True
    stores_per_product: int = 3
    mode: Mode = "hybrid"
    brand: str | None = None


@dataclass(frozen=True)
class ProductSummary:
    id: UUID
    name: str
    brand: str | None
    category_id: int | None
    gtin: str | None
    description: str | None


@dataclass(frozen=True)
class StoreHit:
    id: UUID
    name: str
    distance_m: float | None  # None in a global search (no point given)
    price: Decimal
    currency: str
    quantity: int


@dataclass(frozen=True)
class ProductHit:
    product: ProductSummary
    score: float
    stores: list[StoreHit]


@dataclass(frozen=True)
class SearchResult:
    results: list[ProductHit]
    total_candidates: int
    strategy: str
    # False when total_candidates is the planner-side estimate (HNSW plans do not enumerate candidates).
    total_candidates_exact: bool = True


@dataclass(frozen=True)
class EngineConfig:
    """Knobs of the plan choice. Defaults measured on 100k products / 1k stores / 1M listings (2 cores)."""

    force: ForcedPlan = "auto"  # tests and benchmarks force a plan; production leaves "auto"
    # Without the in-memory copy: always exact up to this many estimated candidate products.
    exact_max_candidates: int = 3000
    # Cost model (µs) comparing the plans above that: exact = per candidate + per listing scanned;
    # HNSW = base (graph descent at ef_search) + per index tuple the iterative scan visits
    # (fetch / selectivity).
    exact_us_per_candidate: float = 10.0
    exact_us_per_listing: float = 0.5
    hnsw_base_us: float = 10000.0
    hnsw_us_per_visit: float = 40.0
    # exact_scan: ranking the in-memory copy, plus a filter statement per slice of ids checked. Measured on
    # the small benchmark (2-core machine): the exact plan 9-12 µs per candidate; the scan ~3 ms per 100k
    # vectors (int8 bounds + float32 re-scoring, thread hand-off included), ~1.2 ms per filter statement and
    # ~12 µs per id checked (200-600 ids at 2 km: a primary-key probe, a listing probe, client encoding).
    # Under a selective filter the scan checks far more ids than the first slice (`fetch`): a query's nearest
    # products are often of a kind the few stores in range do not sell, so the choice prices scan_depth x
    # fetch ids (32 µs per fetched id; at 2 and 5 km, engine p95 25 -> 20 and 23 -> 18 ms against 4 µs on the
    # benchmark's queries, 27 -> 27 and 19 -> 17 ms on a second query set). A scan whose remaining work,
    # predicted from the share of the ids checked so far that passed, would cost more than the gather plan's
    # estimate hands the query to it (``scan_fallback_gather``).
    scan_us_per_vector: float = 0.03
    scan_us_per_round: float = 1200.0
    scan_us_per_probe: float = 12.0
    scan_depth: float = 8.0 / 3.0  # x scan_us_per_probe: 32 µs per fetched id
    # exact_gather: the qualifying listings' product ids, packed in one bytea (~0.2 µs per listing: 5 ms for
    # 26k at 2 km) and mapped to rows of the copy (~0.05 µs: a sort and a searchsorted), ranked there (~0.1 µs
    # per id: the whole copy's int8 ranking, computed meanwhile, restricted to them), plus a filter statement
    # for the best.
    gather_us_per_listing: float = 0.25
    gather_us_per_candidate: float = 0.1
    scan_fallback: bool = True  # tests turn it off to run the scan to its end
    # Real MiniLM vectors of a templated catalogue are full of near-duplicates, which HNSW finds hard: on the
    # small benchmark (100k products), unfiltered recall@10 was 0.88 at ef_search=100, 0.95 at 400 and 1.00 at
    # 800; the engine at 2/5/20 km and globally went from 0.87-0.95 to 1.00 for ~6-10 ms more (2 cores).
    ef_search: int = 800
    # Over-fetch: the iterative scan returns max(top_n * overfetch, top_n * selectivity_overfetch / s,
    # top_n + min_extra) rows, re-sorted by exact distance. Under a filter passing a fraction s of the
    # products, relaxed order needs ~1/s x top_n rows for recall >= 0.99 (measured at s=0.1: 10x → 0.995,
    # 1x → 0.85).
    overfetch: float = 2.0
    selectivity_overfetch: float = 1.5
    min_extra: int = 10
    # Cap of index tuples one HNSW scan may visit; a scan returning fewer rows than asked falls back to exact.
    max_scan_tuples: int = 20000
    scan_mem_multiplier: float = 2.0
    iterative_scan: Literal["relaxed_order", "strict_order"] = "relaxed_order"
    rrf_depth: int = 30  # hybrid: each side contributes at least this many ranked products
    keyword_cap: int = 400  # keyword side: at most this many full-text and this many typo matches
    typo_tolerance: bool = True  # off: the keyword side matches the words as typed only (a benchmark baseline)
    trigram_similarity: float = 0.3  # a query word's vocabulary corrections are at least this similar
    statement_timeout_ms: int | None = None  # None: leave it to the caller (the HTTP layer sets it)
    extra_settings: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # The connections already carry `session_settings(config)` (the API's pool sets them at connect): each
    # statement then runs on its own, without a transaction and its SET LOCALs (two round trips per connection
    # and search: mean hybrid search 13.5 -> 12.5 ms at 5 km, 14.4 -> 13.1 at 100 km; semantic -0.5 ms). Every
    # statement is a read, and in READ COMMITTED each takes its own snapshot either way.
    connection_has_settings: bool = False


DEFAULT_CONFIG = EngineConfig()


def sql_blocks() -> dict[str, str]:
    return dict(load_blocks(SQL_PATH))


# --------------------------------------------------------------------------------------------------------
# Plan choice


@dataclass(frozen=True)
class Estimate:
    listings: float  # qualifying listings at the stores in scope
    candidates: float  # distinct qualifying products (before vector NULLs)
    selectivity: float  # candidates / products


def _fraction_in_range(bounds: Sequence[float] | None, lo: float | None, hi: float | None) -> float:
    if lo is None and hi is None:
        return 1.0
    if not bounds or len(bounds) < 2:
        return 0.33  # the planner's default guess for a range without statistics
    arr = np.asarray(bounds, dtype=float)
    lo_v = -math.inf if lo is None else lo
    hi_v = math.inf if hi is None else hi

    def cdf(x: float) -> float:
        return float(np.interp(x, arr, np.linspace(0.0, 1.0, len(arr)), left=0.0, right=1.0))

    return max(cdf(hi_v) - cdf(lo_v), 0.0)


def _category_fraction(stats: CatalogueStats, ids: Sequence[int] | None) -> float:
    if ids is None:
        return 1.0
    if not ids:
        return 0.0
    mcv = list(stats.category_mcv or [])
    mcf = list(stats.category_mcf or [])
    n_products = max(float(stats.n_products or 0), 1.0)
    nd = float(stats.category_n_distinct or 0)
    n_distinct = -nd * n_products if nd < 0 else nd
    rest = max(1.0 - sum(mcf), 0.0)
    per_other = rest / max(n_distinct - len(mcv), 1.0)
    freq = dict(zip(mcv, mcf, strict=False))
    return min(sum(freq.get(cid, per_other) for cid in ids), 1.0)


def estimate(
    stats: CatalogueStats, category_ids: Sequence[int] | None, n_stores_in_scope: int | None, params: SearchParams
) -> Estimate:
    """Candidate products from cheap statistics: stores x listings per store x price/category selectivity."""
    n_products = max(float(stats.n_products or 0), 1.0)
    n_stores = max(float(stats.n_stores or 0), 1.0)
    n_listings = max(float(stats.n_listings or 0), 0.0)
    n_in_stock = float(stats.n_in_stock or 0)
    if n_in_stock <= 0:  # never analysed: assume most listings are in stock (errs toward more candidates)
        n_in_stock = n_listings
    per_store = (n_in_stock if params.in_stock else n_listings) / n_stores
    if stats.n_products is None or stats.n_products < 0:
        per_store = max(per_store, 1000.0)  # no statistics at all
    stores = n_stores if n_stores_in_scope is None else float(n_stores_in_scope)
    price_frac = _fraction_in_range(
        stats.price_histogram,
        None if params.min_price is None else float(params.min_price),
        None if params.max_price is None else float(params.max_price),
    )
    listings = stores * per_store * price_frac
    # Listings are spread over products: the expected number of distinct products they cover.
    distinct = n_products * (1.0 - math.exp(-listings / n_products))
    candidates = distinct * _category_fraction(stats, category_ids)
    return Estimate(listings=listings, candidates=candidates, selectivity=min(candidates / n_products, 1.0))


def fetch_size(top_n: int, est: Estimate, config: EngineConfig) -> int:
    mult = max(config.overfetch, config.selectivity_overfetch / max(est.selectivity, 1e-6))
    return max(math.ceil(top_n * mult), top_n + config.min_extra)


Plan: TypeAlias = Literal["exact", "hnsw", "scan", "gather"]


@dataclass(frozen=True)
class Choice:
    plan: Plan
    fetch: int  # rows the HNSW scan is asked for; ids the exact scan checks first
    exact_cost_us: float
    hnsw_cost_us: float
    scan_cost_us: float | None  # None: no in-memory vector copy
    gather_cost_us: float | None  # None: no in-memory vector copy


def choose_strategy(est: Estimate, top_n: int, config: EngineConfig, scan_vectors: int | None = None) -> Choice:
    """`scan_vectors`: the size of the in-memory vector copy, None without one (the scan is then impossible)."""
    fetch = fetch_size(top_n, est, config)
    visits = fetch / max(est.selectivity, 1e-6)
    exact_cost = config.exact_us_per_candidate * est.candidates + config.exact_us_per_listing * est.listings
    hnsw_cost = config.hnsw_base_us + config.hnsw_us_per_visit * visits
    scan_cost = gather_cost = None
    if scan_vectors is not None:
        scan_cost = (
            config.scan_us_per_vector * scan_vectors
            + 2 * config.scan_us_per_round
            + config.scan_us_per_probe * config.scan_depth * fetch
        )
        gather_cost = (
            config.gather_us_per_listing * est.listings
            + config.gather_us_per_candidate * est.candidates
            + 2 * config.scan_us_per_round
        )
    plan: Plan
    if config.force != "auto":
        plan = config.force
        if plan in ("scan", "gather") and scan_vectors is None:
            raise ValueError(f"the {plan} plan needs the in-memory vector copy")
    elif scan_cost is not None and gather_cost is not None:  # all three remaining plans are exact
        costs: dict[Plan, float] = {"gather": gather_cost, "scan": scan_cost, "exact": exact_cost}
        plan = min(costs, key=lambda name: costs[name])
    elif est.candidates <= config.exact_max_candidates or exact_cost <= hnsw_cost:
        plan = "exact"
    else:
        plan = "hnsw"
    return Choice(plan, fetch, exact_cost, hnsw_cost, scan_cost, gather_cost)


# --------------------------------------------------------------------------------------------------------
# Execution


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


def settings_sql(config: EngineConfig) -> str:
    return "; ".join(f"SET LOCAL {name} = '{value}'" for name, value in session_settings(config).items())


@dataclass
class _Ranked:
    ids: list[UUID]
    distances: dict[UUID, float]
    total: int
    total_exact: bool
    strategy: str


@dataclass(frozen=True)
class _Scope:
    store_ids: list[UUID] | None  # None: global (any active store)
    category_ids: list[int] | None
    params: SearchParams

    def filter_args(self) -> tuple[Any, ...]:
        p = self.params
        return (self.store_ids, self.category_ids, p.min_price, p.max_price, p.in_stock)


# Float32 in memory vs PostgreSQL's own arithmetic: distances agree to ~1e-6.
SCAN_DISTANCE_SLACK = 1e-5


@dataclass
class _VectorPlan:
    est: Estimate
    choice: Choice
    vectors: VectorCache | None  # the loaded in-memory copy, if any
    ranking: asyncio.Task[Ranking] | None = None  # the scan's in-memory ranking, asked for at planning time
    changed_since: dt.datetime | None = None  # the copy's watermark, captured before the scores were asked for

    def start_scan(self, vector: np.ndarray) -> None:
        """Ask for the scan's ranking now (it is computed in a thread while the caller goes on)."""
        if self.choice.plan == "scan" and self.vectors is not None and self.ranking is None:
            self.changed_since = self.vectors.watermark or dt.datetime.min.replace(tzinfo=dt.UTC)
            self.ranking = asyncio.ensure_future(self.vectors.rank_batched(vector))

    def cancel(self) -> None:
        if self.ranking is not None:
            self.ranking.cancel()


def _plan_vector(
    scope: _Scope, stats: CatalogueStats, top_n: int, config: EngineConfig, vectors: VectorCache | None
) -> _VectorPlan:
    est = estimate(stats, scope.category_ids, None if scope.store_ids is None else len(scope.store_ids), scope.params)
    usable = vectors if vectors is not None and vectors.loaded else None
    return _VectorPlan(est, choose_strategy(est, top_n, config, None if usable is None else len(usable)), usable)


def _next_stop(stop: int, passed: int, top_n: int) -> int:
    """The next slice's end. The pass rate so far predicts the depth still needed (x1.5 for safety), kept
    within x1.5..x4 of this slice: a fixed x4 checks up to 4x the ids needed, and a 10k-id slice against
    dozens of stores costs ~50 ms. Once top_n passed, a bound-ordered ranking's threshold only has to fall
    below the k-th distance: x1.5."""
    want = stop * 1.5 if passed >= top_n else stop + 1.5 * (top_n - passed) * stop / max(passed, 1)
    return int(min(max(want, stop * 1.5), stop * 4))


def _ids_left(next_slice: int, checked: int, passed: int, top_n: int) -> int:
    """The ids a scan still has to check: the next slice, or more when fewer than top_n passed so far, at
    the pass rate so far (half a pass when none passed yet)."""
    if passed >= top_n:
        return next_slice
    return max(next_slice, round(checked * (top_n - passed) / max(passed, 0.5)))


async def _check_ranked(
    conn: Conn,
    scope: _Scope,
    vectors: VectorCache,
    ranking: Ranking,
    vector: np.ndarray,
    first: int,
    top_n: int,
    exclude_id: UUID | None,
    changed_since: dt.datetime | None,
    give_up_us: float | None = None,
    config: EngineConfig = DEFAULT_CONFIG,
) -> dict[UUID, float] | None:
    """Qualifying products (id → PostgreSQL's distance) that include the true top_n of an in-memory ranking.

    Checks the ranking's ids in slices (first `first`, then as `_next_stop` says) with filter_ranked; the
    first slice also checks every qualifying product whose vector changed since `changed_since` (the
    copy's watermark).
    Every product outside the ids checked either changed after the copy was taken or has an in-memory
    similarity no better than the ranking's threshold, so once top_n qualifying distances are no worse
    than that, nothing unchecked can beat them. None: the rest of the scan would cost more than `give_up_us`
    (predicted from the next slice, and from the share of the ids checked so far that passed)."""
    sql = sql_blocks()["filter_ranked"]
    n = len(ranking)
    checked = np.zeros(len(vectors), dtype=bool)  # the ranking's rows are rows of the copy as it was, or fewer
    checked_count = 0
    found: dict[UUID, float] = {}
    stop = max(first, 1)
    while True:
        rows, threshold = ranking.top(stop)
        rows = rows[~checked[rows]]
        checked[rows] = True
        if give_up_us is not None and changed_since is None:
            ids_left = _ids_left(len(rows), checked_count, len(found), top_n)
            if config.scan_us_per_round + config.scan_us_per_probe * ids_left > give_up_us:
                return None
        checked_count += len(rows)
        records = await conn.fetch(sql, vector, vectors.ids_of(rows), *scope.filter_args(), exclude_id, changed_since)
        found.update((r["id"], float(r["distance"])) for r in records)
        changed_since = None  # changed vectors are checked once
        if stop >= n:
            return found
        if len(found) >= top_n and sorted(found.values())[top_n - 1] <= 1.0 - threshold + SCAN_DISTANCE_SLACK:
            return found
        stop = _next_stop(stop, len(found), top_n)


async def _rank_scan(
    conn: Conn,
    scope: _Scope,
    plan: _VectorPlan,
    vector: np.ndarray,
    top_n: int,
    exclude_id: UUID | None,
    config: EngineConfig,
) -> dict[UUID, float] | None:
    """The exact scan over every held vector. None: a selective radius whose best products rank far down
    (the next slice would cost more than the gather plan's estimate): the caller gathers instead."""
    plan.start_scan(vector)
    assert plan.vectors is not None and plan.ranking is not None
    ranking = await plan.ranking
    give_up = plan.choice.gather_cost_us if config.scan_fallback and scope.store_ids is not None else None
    return await _check_ranked(
        conn,
        scope,
        plan.vectors,
        ranking,
        vector,
        plan.choice.fetch,
        top_n,
        exclude_id,
        plan.changed_since,
        give_up,
        config,
    )


async def _rank_gather(
    conn: Conn,
    scope: _Scope,
    plan: _VectorPlan,
    vector: np.ndarray,
    top_n: int,
    exclude_id: UUID | None,
) -> dict[UUID, float]:
    """The exact gather: the products listed at the stores in scope, ranked in memory, checked best first.
    A ranking of the whole copy (the scan's, or one computed in a thread while PostgreSQL lists the ids, when
    that is cheaper than gathering the listed rows' vectors) is restricted to the listed ids."""
    assert plan.vectors is not None
    vectors = plan.vectors
    changed_since = vectors.watermark or dt.datetime.min.replace(tzinfo=dt.UTC)  # before the ids are read
    whole = plan.ranking
    if whole is None and vectors.whole_ranking_pays(plan.est.candidates):
        whole = asyncio.ensure_future(vectors.rank_batched(vector))
    p = scope.params
    try:
        packed = await conn.fetchval(
            sql_blocks()["listed_products"], scope.store_ids, p.min_price, p.max_price, p.in_stock
        )
    except BaseException:
        if whole is not None:
            whole.cancel()
        raise
    ranking = vectors.rank_subset(vector, packed, None if whole is None else await whole)
    found = await _check_ranked(
        conn, scope, vectors, ranking, vector, max(2 * top_n, top_n + 10), top_n, exclude_id, changed_since
    )
    assert found is not None  # no give-up budget
    return found


async def _rank_vector(
    conn: Conn,
    scope: _Scope,
    plan: _VectorPlan,
    vector: np.ndarray,
    top_n: int,
    exclude_id: UUID | None,
    config: EngineConfig,
) -> _Ranked:
    sql = sql_blocks()
    est, choice = plan.est, plan.choice
    prefix = "global_" if scope.store_ids is None else ""
    if choice.plan in ("scan", "gather"):
        found = None
        strategy = f"{prefix}exact_scan"
        if choice.plan == "scan":
            found = await _rank_scan(conn, scope, plan, vector, top_n, exclude_id, config)
            if found is None:
                strategy = "scan_fallback_gather"
        else:
            strategy = f"{prefix}exact_gather"
        if found is None:
            found = await _rank_gather(conn, scope, plan, vector, top_n, exclude_id)
        ordered = sorted(found, key=lambda pid: (found[pid], pid))[:top_n]
        return _Ranked(
            ids=ordered,
            distances={pid: found[pid] for pid in ordered},
            total=max(round(est.candidates), len(found)),
            total_exact=False,
            strategy=strategy,
        )
    if choice.plan == "hnsw":
        want = choice.fetch
        rows = await conn.fetch(sql["rank_hnsw"], vector, *scope.filter_args(), want, exclude_id)
        fetched = int(rows[0]["fetched"]) if rows else 0
        if fetched >= want:
            rows = rows[:top_n]
            return _Ranked(
                ids=[r["id"] for r in rows],
                distances={r["id"]: float(r["distance"]) for r in rows},
                total=max(round(est.candidates), fetched),
                total_exact=False,
                strategy=f"{prefix}hnsw" if prefix else "hnsw_iterative",
            )
        # The scan hit max_scan_tuples (or fewer products qualify than we asked for): answer exactly.
        strategy = f"{prefix}fallback_exact" if prefix else "hnsw_fallback_exact"
    else:
        strategy = f"{prefix}exact"
    rows = await conn.fetch(sql["rank_exact"], vector, *scope.filter_args(), top_n, exclude_id)
    return _Ranked(
        ids=[r["id"] for r in rows],
        distances={r["id"]: float(r["distance"]) for r in rows},
        total=int(rows[0]["total"]) if rows else 0,
        total_exact=True,
        strategy=strategy,
    )


async def _hydrate(conn: Conn, scope: _Scope, ids: list[UUID], scores: dict[UUID, float]) -> list[ProductHit]:
    if not ids:
        return []
    p = scope.params
    rows = await conn.fetch(
        sql_blocks()["hydrate"],
        ids,
        scope.store_ids,
        p.lon if scope.store_ids is not None else None,
        p.lat if scope.store_ids is not None else None,
        p.in_stock,
        p.min_price,
        p.max_price,
        p.stores_per_product,
    )
    hits: dict[UUID, ProductHit] = {}
    for r in rows:
        pid = r["id"]
        hit = hits.get(pid)
        if hit is None:
            summary = ProductSummary(
                id=pid,
                name=r["name"],
                brand=r["brand"],
                category_id=r["category_id"],
                gtin=r["gtin"],
                description=r["description"],
            )
            hit = hits[pid] = ProductHit(product=summary, score=scores[pid], stores=[])
        if r["store_id"] is not None:
            hit.stores.append(
                StoreHit(
                    id=r["store_id"],
                    name=r["store_name"],
                    distance_m=None if r["distance_m"] is None else float(r["distance_m"]),
                    price=r["price"],
                    currency=r["currency"],
                    quantity=r["quantity"],
                )
            )
    return [hits[i] for i in ids if i in hits]


def rrf_fuse(lists: Sequence[Sequence[UUID]], k: int = RRF_K) -> dict[UUID, float]:
    """Reciprocal Rank Fusion: score(d) = Σ over lists containing d of 1 / (k + rank), rank from 1."""
    scores: dict[UUID, float] = {}
    for ranked in lists:
        for rank, pid in enumerate(ranked, start=1):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (k + rank)
    return scores


QueryVector: TypeAlias = "np.ndarray | Awaitable[np.ndarray]"


async def _resolved(vector: QueryVector) -> np.ndarray:
    return np.asarray(vector if isinstance(vector, np.ndarray) else await vector, dtype=np.float32)


async def _keyword_rows(
    conn: Conn,
    scope: _Scope,
    depth: int,
    exclude_id: UUID | None,
    config: EngineConfig,
    typo_below: int | None = None,
) -> list[asyncpg.Record]:
    """`typo_below`: the typo threshold (default `depth`); facets rank deeper with search's threshold."""
    return await conn.fetch(
        sql_blocks()["rank_keyword"],
        scope.params.q,
        *scope.filter_args(),
        depth,
        exclude_id,
        config.keyword_cap,
        config.typo_tolerance,
        depth if typo_below is None else typo_below,
    )


async def _keyword_rows_apart(
    conn: Conn, scope: _Scope, depth: int, exclude_id: UUID | None, config: EngineConfig
) -> list[asyncpg.Record]:
    """The keyword side on a second connection, in a transaction of its own with the engine's settings."""
    async with _transaction(conn, config):
        return await _keyword_rows(conn, scope, depth, exclude_id, config)


async def _catalogue_stats(conn: Conn, cache: StatsCache | None) -> CatalogueStats:
    return await (read_stats(conn) if cache is None else cache.get(conn))


async def _run(
    conn: Conn,
    params: SearchParams,
    query_vector: QueryVector | None,
    exclude_id: UUID | None,
    config: EngineConfig,
    vectors: VectorCache | None,
    stats: StatsCache | None,
    keyword_conn: Conn | None = None,
) -> SearchResult:
    if params.offset < 0 or params.offset > MAX_OFFSET:
        raise ValueError(f"offset must be between 0 and {MAX_OFFSET}")
    if params.limit < 1:
        raise ValueError("limit must be at least 1")
    sql = sql_blocks()
    top_n = params.offset + params.limit
    geo = params.lat is not None and params.lon is not None
    store_ids: list[UUID] | None = None
    category_ids: list[int] | None = None
    # A global search without a category has no context to look up: no round trip for it.
    if geo or params.category_id is not None:
        ctx = await conn.fetchrow(
            sql["search_context"],
            params.lon if geo else None,
            params.lat if geo else None,
            float(params.radius_m),
            params.category_id,
        )
        assert ctx is not None
        category_ids = ctx["category_ids"]
        if geo:
            store_ids = list(ctx["store_ids"] or [])
            if not store_ids:
                return SearchResult(results=[], total_candidates=0, strategy="no_stores")
    scope = _Scope(store_ids=store_ids, category_ids=category_ids, params=params)
    if scope.category_ids is not None and not scope.category_ids:  # unknown category: nothing qualifies
        return SearchResult(results=[], total_candidates=0, strategy="no_category")

    mode = params.mode if query_vector is not None else "keyword"
    if query_vector is None and exclude_id is not None:
        return SearchResult(results=[], total_candidates=0, strategy="no_vector")

    if mode == "semantic":
        assert query_vector is not None
        vector = await _resolved(query_vector)
        plan = _plan_vector(scope, await _catalogue_stats(conn, stats), top_n, config, vectors)
        ranked = await _rank_vector(conn, scope, plan, vector, top_n, exclude_id, config)
        page = ranked.ids[params.offset : top_n]
        scores = {pid: 1.0 - ranked.distances[pid] for pid in page}
        hits = await _hydrate(conn, scope, page, scores)
        return SearchResult(hits, ranked.total, ranked.strategy, ranked.total_exact)

    depth = max(top_n, config.rrf_depth)
    if mode == "keyword":
        kw_rows = await _keyword_rows(conn, scope, depth, exclude_id, config)
    else:
        assert query_vector is not None
        kw_rows, ranked = await _hybrid_sides(
            conn, keyword_conn, scope, stats, query_vector, depth, exclude_id, config, vectors
        )
    kw_capped = bool(kw_rows[0]["capped"]) if kw_rows else False
    kw_ids = [r["id"] for r in kw_rows]
    exact_ids = {r["id"] for r in kw_rows if r["exact"]}
    if mode == "keyword":
        page = kw_ids[params.offset : top_n]
        kscores = {r["id"]: float(r["kscore"]) + (1.0 if r["exact"] else 0.0) for r in kw_rows}
        hits = await _hydrate(conn, scope, page, kscores)
        total = int(kw_rows[0]["total"]) if kw_rows else 0
        return SearchResult(hits, total, "keyword", not kw_capped)

    fused = rrf_fuse([ranked.ids, kw_ids])
    vec_rank = {pid: i for i, pid in enumerate(ranked.ids)}
    order = sorted(
        fused,
        key=lambda pid: (pid not in exact_ids, -fused[pid], vec_rank.get(pid, len(vec_rank)), str(pid)),
    )
    page = order[params.offset : top_n]
    hits = await _hydrate(conn, scope, page, {pid: fused[pid] for pid in page})
    total = max(ranked.total, int(kw_rows[0]["total"]) if kw_rows else 0)
    return SearchResult(hits, total, ranked.strategy, ranked.total_exact)


async def _hybrid_sides(
    conn: Conn,
    keyword_conn: Conn | None,
    scope: _Scope,
    stats: StatsCache | None,
    query_vector: QueryVector,
    depth: int,
    exclude_id: UUID | None,
    config: EngineConfig,
    vectors: VectorCache | None,
) -> tuple[list[asyncpg.Record], _Ranked]:
    """Both sides of hybrid search. With a second connection the keyword statement (the costlier side, and
    one that needs no vector) starts at once, while the query embedding finishes and the vector side runs
    on `conn`; without one, the vector ranking runs in a thread while `conn` answers the keyword side."""
    if keyword_conn is not None:
        keyword = asyncio.ensure_future(_keyword_rows_apart(keyword_conn, scope, depth, exclude_id, config))
        try:
            vector = await _resolved(query_vector)
            plan = _plan_vector(scope, await _catalogue_stats(conn, stats), depth, config, vectors)
            ranked = await _rank_vector(conn, scope, plan, vector, depth, exclude_id, config)
            return await keyword, ranked
        except BaseException:
            keyword.cancel()
            with contextlib.suppress(BaseException):
                await keyword
            raise
    vector = await _resolved(query_vector)
    plan = _plan_vector(scope, await _catalogue_stats(conn, stats), depth, config, vectors)
    plan.start_scan(vector)  # the in-memory ranking runs in a thread while PostgreSQL answers the keyword side
    try:
        kw_rows = await _keyword_rows(conn, scope, depth, exclude_id, config)
    except BaseException:
        plan.cancel()
        raise
    return kw_rows, await _rank_vector(conn, scope, plan, vector, depth, exclude_id, config)


@contextlib.asynccontextmanager
async def _transaction(conn: Conn, config: EngineConfig) -> AsyncIterator[None]:
    """The engine's settings for the statements in the block. A connection that carries them already needs
    nothing (`EngineConfig.connection_has_settings`). A caller's open transaction (e.g. one with its
    statement_timeout) gets them with SET LOCAL; otherwise a read-only transaction opens with them in one
    round trip (asyncpg's `transaction()` and a SET would take two) and commits, or rolls back on error."""
    if config.connection_has_settings:
        yield
        return
    if conn.is_in_transaction():
        await conn.execute(settings_sql(config))
        yield
        return
    await conn.execute("BEGIN READ ONLY; " + settings_sql(config))
    try:
        yield
    except BaseException:
        if not conn.is_closed() and conn.is_in_transaction():
            with contextlib.suppress(Exception):  # a connection still cancelling: the pool's release rolls back
                await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


async def search(
    conn: Conn,
    params: SearchParams,
    query_vector: QueryVector | None,
    config: EngineConfig = DEFAULT_CONFIG,
    vectors: VectorCache | None = None,
    keyword_conn: Conn | None = None,
    stats: StatsCache | None = None,
) -> SearchResult:
    """Search near a point (or globally without lat/lon). `query_vector`: float32 (384,), L2-normalised, or
    an awaitable of one (the embedding still running: the engine awaits it only once it needs it); None is
    accepted in keyword mode only. `vectors`: the in-memory vector copy, which enables the exact scan and
    gather plans (without it, or before it is loaded, the engine chooses between the exact and HNSW plans).
    `keyword_conn`: a second connection for hybrid's keyword side (the engine opens a transaction on it, or
    uses the caller's). `stats`: the catalogue statistics the plan choice reads (without a cache, a
    statement per search reads them). Statements run in the caller's open transaction, or in a read-only
    one of their own."""
    if query_vector is None and params.mode != "keyword":
        raise ValueError(f"mode {params.mode!r} needs a query vector")
    async with _transaction(conn, config):
        return await _run(conn, params, query_vector, None, config, vectors, stats, keyword_conn)


async def similar(
    conn: Conn,
    product_id: UUID,
    params: SearchParams,
    config: EngineConfig = DEFAULT_CONFIG,
    vectors: VectorCache | None = None,
    stats: StatsCache | None = None,
) -> SearchResult:
    """Products like `product_id` under the same filters (semantic ranking; `q` and `mode` are unused).

    Raises ProductNotFound for an unknown id; a product not embedded yet gives strategy ``no_vector``."""
    async with _transaction(conn, config):
        row = await conn.fetchrow(sql_blocks()["product_vector"], product_id)
        if row is None:
            raise ProductNotFound(product_id)
        vector = row["ai_vector"]
        if vector is None:
            return SearchResult(results=[], total_candidates=0, strategy="no_vector")
        semantic = replace(params, mode="semantic")
        return await _run(conn, semantic, as_vector(vector), product_id, config, vectors, stats)
