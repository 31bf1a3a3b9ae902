"""The pure plan choice (search_service.engine.planner), without a database: estimates and the plan picked at
the cost model's boundaries."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal

import pytest

from search_service.engine.config import EngineConfig
from search_service.engine.planner import (
    Estimate,
    _fraction_in_range,
    category_fraction,
    choose_strategy,
    counted,
    estimate,
    fetch_size,
    ids_left,
    needs_count,
    next_stop,
)
from search_service.engine.results import SearchParams
from search_service.engine.stats import CatalogueStats

STATS = CatalogueStats(
    n_products=100_000,
    n_stores=1_000,
    n_listings=1_000_000,
    n_in_stock=900_000,
    category_mcv=[1, 2],
    category_mcf=[0.2, 0.1],
    category_n_distinct=12,
    price_histogram=[0.0, 10.0, 20.0, 30.0, 40.0],
)
CONFIG = EngineConfig()


def test_the_planner_imports_no_database_driver() -> None:
    code = "import sys, search_service.engine.planner; sys.exit('asyncpg' in sys.modules or 'psycopg' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize(
    ("lo", "hi", "fraction"),
    [(None, None, 1.0), (0.0, 40.0, 1.0), (10.0, 20.0, 0.25), (None, 10.0, 0.25), (35.0, None, 0.125), (50, 60, 0.0)],
)
def test_price_fraction_interpolates_the_histogram(lo: float | None, hi: float | None, fraction: float) -> None:
    assert _fraction_in_range(STATS.price_histogram, lo, hi) == pytest.approx(fraction)


def test_price_fraction_without_statistics_is_the_planners_default() -> None:
    assert _fraction_in_range(None, 1.0, None) == 0.33
    assert _fraction_in_range([5.0], None, 2.0) == 0.33


def test_category_fraction_from_common_values_and_the_rest() -> None:
    assert category_fraction(STATS, None) == 1.0
    assert category_fraction(STATS, []) == 0.0
    assert category_fraction(STATS, [1]) == pytest.approx(0.2)
    assert category_fraction(STATS, [1, 2]) == pytest.approx(0.3)
    assert category_fraction(STATS, [7]) == pytest.approx(0.7 / 10)  # the rest spread over 10 other values
    negative = replace(STATS, category_n_distinct=-0.0001)  # a fraction of the rows: 10 distinct values
    assert category_fraction(negative, [7]) == pytest.approx(0.7 / 8)


def test_estimate_scales_with_stores_price_and_category() -> None:
    params = SearchParams(q="")
    one_store = estimate(STATS, None, 1, params)
    assert one_store.listings == pytest.approx(900.0)  # in-stock listings per store
    assert one_store.candidates == pytest.approx(100_000 * (1 - math.exp(-900 / 100_000)))
    assert estimate(STATS, None, None, replace(params, in_stock=False)).listings == pytest.approx(1_000_000)
    priced = estimate(STATS, None, 10, replace(params, min_price=Decimal(10), max_price=Decimal(20)))
    assert priced.listings == pytest.approx(9000 * 0.25)
    in_category = estimate(STATS, [1], 10, params)
    assert in_category.candidates == pytest.approx(estimate(STATS, None, 10, params).candidates * 0.2)
    assert in_category.selectivity == pytest.approx(in_category.candidates / 100_000)


def test_estimate_without_statistics_assumes_many_listings() -> None:
    empty = CatalogueStats(None, None, None, None, None, None, None, None)
    assert estimate(empty, None, 3, SearchParams(q="")).listings == pytest.approx(3000.0)


def test_fetch_size_over_fetches_under_a_selective_filter() -> None:
    assert fetch_size(10, Estimate(1e6, 1e5, 1.0), CONFIG) == 20  # overfetch x2
    assert fetch_size(10, Estimate(1e3, 1e3, 0.01), CONFIG) == 1500  # 1.5 / selectivity
    assert fetch_size(2, Estimate(1e6, 1e5, 1.0), CONFIG) == 12  # at least top_n + min_extra


def _exact_cost(candidates: float, listings: float) -> float:
    return CONFIG.exact_us_per_candidate * candidates + CONFIG.exact_us_per_listing * listings


@pytest.mark.parametrize(
    ("candidates", "selectivity", "plan"),
    [
        (3000, 0.03, "exact"),  # at exact_max_candidates: exact whatever HNSW would cost
        (3001, 0.03, "exact"),  # just over it, but HNSW (~1e6 visits) costs more than exact
        (50_000, 0.5, "hnsw"),  # broad: the HNSW descent is far cheaper than 50k distances
    ],
)
def test_plan_without_the_vector_copy(candidates: float, selectivity: float, plan: str) -> None:
    est = Estimate(listings=candidates * 2, candidates=candidates, selectivity=selectivity)
    choice = choose_strategy(est, 10, CONFIG)
    assert choice.plan == plan
    assert choice.scan_cost_us is None and choice.gather_cost_us is None
    assert choice.exact_cost_us == pytest.approx(_exact_cost(candidates, candidates * 2))


def test_exact_against_hnsw_at_their_cost_boundary() -> None:
    """Above exact_max_candidates the cheaper of the two wins; equal costs go to exact."""
    config = replace(CONFIG, exact_max_candidates=0, exact_us_per_listing=0.0)
    est = Estimate(listings=0, candidates=1000, selectivity=1.0)  # HNSW: 10000 + 40 x 20 visits = 10800 µs
    assert choose_strategy(est, 10, replace(config, exact_us_per_candidate=10.8)).plan == "exact"
    assert choose_strategy(est, 10, replace(config, exact_us_per_candidate=10.81)).plan == "hnsw"


def test_with_the_vector_copy_the_cheapest_exact_plan_wins() -> None:
    few = Estimate(listings=2000, candidates=1500, selectivity=0.015)
    many = Estimate(listings=900_000, candidates=99_000, selectivity=0.99)
    assert choose_strategy(few, 10, CONFIG, scan_vectors=100_000).plan == "gather"
    assert choose_strategy(many, 10, CONFIG, scan_vectors=100_000).plan == "scan"
    tiny = Estimate(listings=3, candidates=3, selectivity=0.00003)
    assert choose_strategy(tiny, 10, CONFIG, scan_vectors=100_000).plan == "exact"
    choice = choose_strategy(many, 10, CONFIG, scan_vectors=100_000)
    assert choice.scan_cost_us is not None and choice.gather_cost_us is not None
    assert choice.scan_cost_us < choice.gather_cost_us and choice.scan_cost_us < choice.exact_cost_us


def test_a_counted_scope_routes_on_its_exact_count() -> None:
    """The candidate sets' counts: exact without a category or price filter, scaled by their share with one;
    the gather plan then costs no listing reads and the scan is never chosen (it probes what the gather ranks)."""
    params = SearchParams(q="x")
    est = counted(STATS, None, 40_000, 450_000, params)
    assert (est.candidates, est.listings, est.counted) == (40_000, 450_000, True)
    assert est.selectivity == pytest.approx(0.4)
    assert counted(STATS, [1], 40_000, 450_000, params).candidates == pytest.approx(8_000)
    assert counted(STATS, None, 40_000, 450_000, replace(params, max_price=Decimal(10))).candidates == pytest.approx(
        10_000
    )
    choice = choose_strategy(est, 10, CONFIG, scan_vectors=100_000)
    assert choice.plan == "gather" and choice.gather_cost_us == pytest.approx(
        CONFIG.gather_us_per_candidate * 40_000 + 2 * CONFIG.scan_us_per_round
    )
    estimated = replace(est, counted=False)  # the same numbers from statistics: listings cost, and the scan wins
    assert choose_strategy(estimated, 10, CONFIG, scan_vectors=100_000).plan == "scan"
    assert choose_strategy(counted(STATS, None, 12, 14, params), 10, CONFIG, scan_vectors=100_000).plan == "exact"


@pytest.mark.parametrize("rows", [100_000, 1_000_000])
def test_a_near_full_counted_scope_is_scanned(rows: int) -> None:
    """From `scan_min_share` of the copy's rows in scope the scan is priced too, and wins near full (it lists no
    rows and restricts no ranking); just below that share it is not considered, whatever it would cost."""
    params = SearchParams(q="x")
    stats = replace(STATS, n_products=rows)
    share = CONFIG.scan_min_share

    def plan(products: int) -> str:
        return choose_strategy(counted(stats, None, products, 7 * products, params), 30, CONFIG, rows).plan

    assert plan(int(0.99 * rows)) == "scan"
    # at the share the costs decide: 1M rows, the gather's 0.1 µs a candidate outweighs the scan's extra probes
    assert plan(int(share * rows)) == ("scan" if rows >= 1_000_000 else "gather")
    assert plan(int(share * rows) - 1) == "gather"
    off = replace(CONFIG, scan_min_share=1.01)  # never: the gather, as before the rule
    assert choose_strategy(counted(stats, None, int(0.99 * rows), 7 * rows, params), 30, off, rows).plan == "gather"


def test_a_scope_the_statistics_put_near_full_is_planned_without_the_count() -> None:
    """From `count_below_share` of the products by the statistics' estimate, no union of the sets is taken: the
    estimate's plan is the scan (the listings a gather would read price it out)."""
    params = SearchParams(q="x")
    wide = estimate(STATS, None, 900, params)  # 900 of 1,000 stores, 900 listings each: ~100 % of the products
    narrow = estimate(STATS, None, 20, params)
    assert wide.selectivity >= CONFIG.count_below_share > narrow.selectivity
    assert not needs_count(wide, CONFIG) and needs_count(narrow, CONFIG)
    assert choose_strategy(wide, 30, CONFIG, scan_vectors=100_000).plan == "scan"
    assert needs_count(wide, replace(CONFIG, count_below_share=1.01))  # the rule off: always counted


def test_a_forced_plan_is_taken_but_the_copy_plans_need_the_copy() -> None:
    est = Estimate(listings=10, candidates=10, selectivity=0.0001)
    assert choose_strategy(est, 10, replace(CONFIG, force="hnsw")).plan == "hnsw"
    assert choose_strategy(est, 10, replace(CONFIG, force="gather"), scan_vectors=5).plan == "gather"
    with pytest.raises(ValueError, match="in-memory vector copy"):
        choose_strategy(est, 10, replace(CONFIG, force="scan"))


@pytest.mark.parametrize(
    ("stop", "passed", "top_n", "after"),
    [
        (100, 10, 10, 150),  # enough passed: x1.5
        (100, 5, 10, 250),  # half passed: 100 + 1.5 x 5 x 100 / 5
        (100, 0, 10, 400),  # nothing passed: capped at x4
        (100, 9, 10, 150),  # nearly there: at least x1.5
    ],
)
def test_next_stop(stop: int, passed: int, top_n: int, after: int) -> None:
    assert next_stop(stop, passed, top_n) == after


@pytest.mark.parametrize(
    ("next_slice", "checked", "passed", "top_n", "left"),
    [(600, 200, 30, 30, 600), (600, 200, 20, 30, 600), (700, 236, 0, 30, 14_160), (600, 1000, 3, 30, 9000)],
)
def test_ids_left(next_slice: int, checked: int, passed: int, top_n: int, left: int) -> None:
    assert ids_left(next_slice, checked, passed, top_n) == left
