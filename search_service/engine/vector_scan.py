"""The exact plans over the API's in-memory vector copy (`vectors.VectorCache`): ``scan`` ranks every vector
in memory and keeps, slice by slice, the best-ranked ids that pass the filters; ``gather`` ranks only the
products listed at the stores in scope. Both check their ids with filter_ranked, best first, until nothing
unchecked can beat the k-th distance kept, so the answer is the true top-k."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from uuid import UUID

import numpy as np

from search_service.db.sql import statement
from search_service.engine.config import EngineConfig
from search_service.engine.planner import (
    Choice,
    Estimate,
    choose_strategy,
    counted,
    estimate,
    ids_left,
    needs_count,
    next_stop,
)
from search_service.engine.scope import Scope
from search_service.engine.session import Conn
from search_service.engine.stats import CatalogueStats
from search_service.engine.vectors import Ranking, VectorCache

# Float32 in memory vs PostgreSQL's own arithmetic: distances agree to ~1e-6.
SCAN_DISTANCE_SLACK = 1e-5


def _epoch() -> dt.datetime:
    return dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass
class VectorPlan:
    est: Estimate
    choice: Choice
    vectors: VectorCache | None  # the loaded in-memory copy, if any
    ranking: asyncio.Task[Ranking] | None = None  # the scan's in-memory ranking, asked for at planning time
    changed_since: dt.datetime | None = None  # the copy's watermark, captured before the scores were asked for
    rows: np.ndarray | None = None  # the gather plan's rows, from the candidate sets (None: listed_products)

    def whole_ranking(self) -> bool:
        """Whether this plan reads a ranking of the whole copy: the scan, or a gather of many rows."""
        if self.choice.plan == "gather" and self.rows is not None and self.vectors is not None:
            return self.vectors.whole_ranking_pays(len(self.rows))
        return self.choice.plan == "scan"

    def start_scan(self, vector: np.ndarray) -> None:
        """Ask for the whole copy's ranking now, if the plan reads one (computed in a thread meanwhile)."""
        if self.whole_ranking() and self.vectors is not None and self.ranking is None:
            self.changed_since = self.vectors.watermark or _epoch()
            self.ranking = asyncio.ensure_future(self.vectors.rank_batched(vector))

    def cancel(self) -> None:
        if self.ranking is not None:
            self.ranking.cancel()


def plan_vector(
    scope: Scope, stats: CatalogueStats, top_n: int, config: EngineConfig, vectors: VectorCache | None
) -> VectorPlan:
    """The plan: on the candidate sets' exact count when the scope has them, else on an estimate. The copy's
    rows of the products in scope are listed only for the gather plan (the count routes first: a near-full scope
    is scanned, `EngineConfig.scan_min_share`)."""
    usable = vectors if vectors is not None and vectors.loaded else None
    size = None if usable is None else len(usable)
    n_stores = None if scope.store_ids is None else len(scope.store_ids)
    est = estimate(stats, scope.category_ids, n_stores, scope.params)
    in_scope = scope.products_in_scope() if usable is not None and needs_count(est, config) else None
    if usable is None or in_scope is None:
        return VectorPlan(est, choose_strategy(est, top_n, config, size), usable)
    est = counted(stats, scope.category_ids, len(in_scope.products), in_scope.listings, scope.params)
    choice = choose_strategy(est, top_n, config, size)
    if choice.plan != "gather":
        return VectorPlan(est, choice, usable)
    rows = usable.candidates.rows_in_copy(in_scope.products, usable)  # the products the copy holds
    est = counted(stats, scope.category_ids, len(rows), in_scope.listings, scope.params)
    return VectorPlan(est, choose_strategy(est, top_n, config, size), usable, rows=rows)


@dataclass(frozen=True)
class _Check:
    """What check_ranked is asked: the ranking, the first slice, and when to give up."""

    ranking: Ranking
    first: int
    top_n: int
    changed_since: dt.datetime | None
    give_up_us: float | None = None
    listed: bool = False  # every row ranked has a qualifying listing in scope: filter_ranked skips their probes
    keep: Callable[[np.ndarray], np.ndarray] | None = None  # which of a slice's rows may qualify (None: all)


async def check_ranked(
    conn: Conn, scope: Scope, vectors: VectorCache, vector: np.ndarray, check: _Check, config: EngineConfig
) -> dict[UUID, float] | None:
    """Qualifying products (id → PostgreSQL's distance) that include the true top_n of an in-memory ranking.

    Checks the ranking's ids in slices (first `check.first`, then as `next_stop` says) with filter_ranked; the
    first slice also checks every qualifying product whose vector changed since `changed_since` (the copy's
    watermark). Every product outside the ids checked either changed after the copy was taken or has an
    in-memory similarity no better than the ranking's threshold, so once top_n qualifying distances are no
    worse than that, nothing unchecked can beat them. None: the rest of the scan would cost more than
    `give_up_us` (predicted from the next slice, and from the share of the ids checked so far that passed)."""
    stmt = statement("engine/search", "filter_ranked")
    ranking, top_n, changed_since = check.ranking, check.top_n, check.changed_since
    checked = np.zeros(len(vectors), dtype=bool)  # the ranking's rows are rows of the copy as it was, or fewer
    checked_count = 0
    found: dict[UUID, float] = {}
    stop = max(check.first, 1)
    while True:
        rows, threshold = ranking.top(stop)
        rows = rows[~checked[rows]]
        checked[rows] = True
        if check.keep is not None:
            rows = rows[check.keep(rows)]
        if check.give_up_us is not None and changed_since is None:
            left = ids_left(len(rows), checked_count, len(found), top_n)
            if config.scan_us_per_round + config.scan_us_per_probe * left > check.give_up_us:
                return None
        checked_count += len(rows)
        ids = vectors.ids_of(rows)
        values = scope.bind(stmt, query_vector=vector, ids=ids, ids_listed=check.listed, changed_since=changed_since)
        records = await conn.fetch(stmt.sql, *values)
        found.update((r["id"], float(r["distance"])) for r in records)
        changed_since = None  # changed vectors are checked once
        if stop >= len(ranking):
            return found
        if len(found) >= top_n and sorted(found.values())[top_n - 1] <= 1.0 - threshold + SCAN_DISTANCE_SLACK:
            return found
        stop = next_stop(stop, len(found), top_n)


async def rank_scan(
    conn: Conn, scope: Scope, plan: VectorPlan, vector: np.ndarray, top_n: int, config: EngineConfig
) -> dict[UUID, float] | None:
    """The exact scan over every held vector. None: a selective radius whose best products rank far down
    (the next slice would cost more than the gather plan's estimate): the caller gathers instead."""
    plan.start_scan(vector)
    assert plan.vectors is not None and plan.ranking is not None
    ranking = await plan.ranking
    give_up = plan.choice.gather_cost_us if config.scan_fallback and scope.store_ids is not None else None
    check = _Check(ranking, plan.choice.fetch, top_n, plan.changed_since, give_up)
    if scope.in_scope is not None:  # the plan counted on the union: a slice's rows outside it cannot qualify
        share = len(scope.in_scope.products) / max(len(plan.vectors), 1)
        keep = partial(plan.vectors.candidates.held_in, scope.in_scope.products, plan.vectors)
        first = min(math.ceil(plan.choice.fetch / max(share, 0.1)), len(ranking))
        check = dataclasses.replace(check, first=first, listed=_prices_open(scope), keep=keep)
    return await check_ranked(conn, scope, plan.vectors, vector, check, config)


async def _rank_listed(conn: Conn, scope: Scope, plan: VectorPlan, vector: np.ndarray) -> Ranking:
    """The gather plan's ranking of the products listed_products lists (no candidate sets for this scope)."""
    assert plan.vectors is not None
    vectors = plan.vectors
    whole = plan.ranking
    if whole is None and vectors.whole_ranking_pays(plan.est.candidates):
        whole = asyncio.ensure_future(vectors.rank_batched(vector))
    stmt = statement("engine/search", "listed_products")
    try:
        packed = await conn.fetchval(stmt.sql, *scope.bind(stmt))
    except BaseException:
        if whole is not None:
            whole.cancel()
        raise
    return vectors.rank_subset(vector, packed, None if whole is None else await whole)


def _rows_listed(scope: Scope, plan: VectorPlan) -> bool:
    """Whether the gather's rows all have a qualifying listing in scope: listed_products lists exactly those; the
    candidate sets hold the in-stock listings, which qualify unless a price bound narrows them."""
    return plan.rows is None or _prices_open(scope)


def _prices_open(scope: Scope) -> bool:
    return scope.params.min_price is None and scope.params.max_price is None


async def rank_gather(
    conn: Conn, scope: Scope, plan: VectorPlan, vector: np.ndarray, top_n: int, config: EngineConfig
) -> dict[UUID, float]:
    """The exact gather: the products listed at the stores in scope, ranked in memory, checked best first.
    A ranking of the whole copy (the scan's, or one computed in a thread while PostgreSQL lists the ids, when
    that is cheaper than gathering the listed rows' vectors) is restricted to the listed ids."""
    assert plan.vectors is not None
    vectors = plan.vectors
    in_scope = scope.products_in_scope() if plan.rows is None else None
    if in_scope is not None:  # a scan that gave up: the candidate sets' rows
        plan.rows = vectors.candidates.rows_in_copy(in_scope.products, vectors)
    if plan.rows is not None:  # the candidate sets' rows: no statement lists them
        plan.start_scan(vector)
        changed_since = plan.changed_since or vectors.watermark or _epoch()
        ranking = vectors.rank_subset(vector, plan.rows, None if plan.ranking is None else await plan.ranking)
    else:
        changed_since = vectors.watermark or _epoch()  # before the ids are read
        ranking = await _rank_listed(conn, scope, plan, vector)
    check = _Check(ranking, max(2 * top_n, top_n + 10), top_n, changed_since, listed=_rows_listed(scope, plan))
    found = await check_ranked(conn, scope, vectors, vector, check, config)
    assert found is not None  # no give-up budget
    return found
