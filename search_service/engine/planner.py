"""The plan choice, pure: estimates from catalogue statistics, the cost model, and the exact scan's slice
arithmetic. No I/O and no database driver here (tests/test_planner.py checks it without a database).

The plans (see `search.py`): ``exact`` (every candidate's distance in SQL), ``hnsw`` (an iterative HNSW
scan, over-fetched), and with the in-memory vector copy ``scan`` (the whole copy ranked, filtered slice by
slice) and ``gather`` (the listed products ranked in memory).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

import numpy as np

from search_service.engine.config import EngineConfig

if TYPE_CHECKING:
    from search_service.engine.results import SearchParams
    from search_service.engine.stats import CatalogueStats


@dataclass(frozen=True)
class Estimate:
    listings: float  # qualifying listings at the stores in scope
    candidates: float  # distinct qualifying products (before vector NULLs)
    selectivity: float  # candidates / products
    counted: bool = False  # from the in-memory candidate sets' exact counts (`counted`), not statistics


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


def category_fraction(stats: CatalogueStats, ids: Sequence[int] | None) -> float:
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
    candidates = distinct * category_fraction(stats, category_ids)
    return Estimate(listings=listings, candidates=candidates, selectivity=min(candidates / n_products, 1.0))


def counted(
    stats: CatalogueStats, category_ids: Sequence[int] | None, products: int, listings: int, params: SearchParams
) -> Estimate:
    """From the candidate sets (candidates.py): the products in stock at the stores in scope that the vector copy
    holds, and those stores' in-stock listings, exact. A category or price filter, which the sets do not know,
    scales them by its estimated share."""
    share = category_fraction(stats, category_ids) * _fraction_in_range(
        stats.price_histogram,
        None if params.min_price is None else float(params.min_price),
        None if params.max_price is None else float(params.max_price),
    )
    n_products = max(float(stats.n_products or 0), float(products), 1.0)
    candidates = products * share
    return Estimate(float(listings) * share, candidates, min(candidates / n_products, 1.0), counted=True)


def needs_count(est: Estimate, config: EngineConfig) -> bool:
    """Whether a scope is planned on the candidate sets' exact count: not when the statistics put it at
    `count_below_share` of the products or more (the union of that many stores' sets is the dearer part of a
    search, and such a scope is scanned either way)."""
    return est.selectivity < config.count_below_share


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
        listing_cost = 0.0 if est.counted else config.gather_us_per_listing * est.listings  # counted: in memory
        gather_cost = listing_cost + config.gather_us_per_candidate * est.candidates + 2 * config.scan_us_per_round
    plan: Plan
    if config.force != "auto":
        plan = config.force
        if plan in ("scan", "gather") and scan_vectors is None:
            raise ValueError(f"the {plan} plan needs the in-memory vector copy")
    elif scan_vectors is not None and scan_cost is not None and gather_cost is not None:  # all three: exact
        costs: dict[Plan, float] = {"gather": gather_cost, "scan": scan_cost, "exact": exact_cost}
        if est.counted and est.candidates < config.scan_min_share * scan_vectors:
            del costs["scan"]  # the gather ranks exactly the rows the scan would check in SQL one by one
        plan = min(costs, key=lambda name: costs[name])
    elif est.candidates <= config.exact_max_candidates or exact_cost <= hnsw_cost:
        plan = "exact"
    else:
        plan = "hnsw"
    return Choice(plan, fetch, exact_cost, hnsw_cost, scan_cost, gather_cost)


def next_stop(stop: int, passed: int, top_n: int) -> int:
    """The next slice's end. The pass rate so far predicts the depth still needed (x1.5 for safety), kept
    within x1.5..x4 of this slice: a fixed x4 checks up to 4x the ids needed, and a 10k-id slice against
    dozens of stores costs ~50 ms. Once top_n passed, a bound-ordered ranking's threshold only has to fall
    below the k-th distance: x1.5."""
    want = stop * 1.5 if passed >= top_n else stop + 1.5 * (top_n - passed) * stop / max(passed, 1)
    return int(min(max(want, stop * 1.5), stop * 4))


def ids_left(next_slice: int, checked: int, passed: int, top_n: int) -> int:
    """The ids a scan still has to check: the next slice, or more when fewer than top_n passed so far, at
    the pass rate so far (half a pass when none passed yet)."""
    if passed >= top_n:
        return next_slice
    return max(next_slice, round(checked * (top_n - passed) / max(passed, 0.5)))
