"""The search engine (search_service.engine.search) against a real PostgreSQL: exact recall under the radius filter
for every plan, plan shapes (EXPLAIN), filters, hybrid ranking, geodesic distances.

The catalogue: ~4k products with clustered random unit vectors (the recall property is about the plan, not the
model), 150 stores scattered around Berlin (some far away, some inactive), ~40k listings with random stock,
plus hand-placed products and stores for the filter, keyword and geodesy cases. The ground truth is numpy over
data read back from the database, with radii decided by geographiclib (WGS84 geodesics).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import numpy as np
import psycopg
import pytest
from geographiclib.geodesic import Geodesic
from pgvector.asyncpg import register_vector
from pgvector.psycopg import register_vector as register_vector_psycopg

from search_service.db.sql import CACHEABLE_STATEMENT_BYTES, statement
from search_service.demo.synthetic import SyntheticSpec, query_vectors, random_unit_vectors, seed_synthetic
from search_service.engine.candidates import NO_CHANGES
from search_service.engine.keyword import query_texts
from search_service.engine.scope import NO_NEAR
from search_service.engine.search import (
    DEFAULT_CONFIG,
    EngineConfig,
    ProductNotFound,
    SearchParams,
    SearchResult,
    _ids_left,
    as_vector,
    generic_plan_settings,
    search,
    session_settings,
    settings_sql,
    similar,
    sql_blocks,
)
from search_service.engine.store_locator import NOT_LOCATED, StoreLocator
from search_service.engine.vectors import VectorCache

CENTER = (52.52, 13.405)
SPEC = SyntheticSpec(products=4000, stores=150, listings=40_000, seed=5, clusters=80, sigma_m=4000.0)
GEOD = Geodesic.WGS84
T = TypeVar("T")

# Hand-placed points: far from the synthetic cloud so only our own stores are in range.
BOUNDARY_POINT = (48.137, 11.575)  # Munich: stores at 4.9 km and 5.1 km
ANTIMERIDIAN_POINT = (-16.5, -179.99)  # Fiji: a store across the antimeridian at lon +179.99
SVALBARD_POINT = (78.2232, 15.6267)  # Longyearbyen
OCEAN_POINT = (0.0, -30.0)  # mid-Atlantic, no store within 1000 km


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await register_vector(conn)
    return conn


def with_conn(url: str, fn: Callable[[asyncpg.Connection], Coroutine[Any, Any, T]]) -> T:
    async def body() -> T:
        conn = await connect(url)
        try:
            return await fn(conn)
        finally:
            await conn.close()

    return run(body())


def direct(lat: float, lon: float, azimuth: float, dist_m: float) -> tuple[float, float]:
    g = GEOD.Direct(lat, lon, azimuth, dist_m)
    return g["lat2"], g["lon2"]


def geodesic_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return float(GEOD.Inverse(lat1, lon1, lat2, lon2)["s12"])


@dataclass
class Truth:
    """The catalogue as numpy arrays, read back from the database."""

    product_ids: list[uuid.UUID]
    vectors: np.ndarray  # float64 (n, 384); rows of products without a vector are zero
    has_vector: np.ndarray
    product_active: np.ndarray
    category: np.ndarray  # int64, -1 for none
    index: dict[uuid.UUID, int]
    store_ids: list[uuid.UUID]
    store_lat: np.ndarray
    store_lon: np.ndarray
    store_active: np.ndarray
    store_index: dict[uuid.UUID, int]
    l_store: np.ndarray
    l_product: np.ndarray
    l_price: np.ndarray
    l_qty: np.ndarray
    l_active: np.ndarray
    parent: dict[int, int | None]

    def subtree(self, root: int) -> set[int]:
        out = {root}
        changed = True
        while changed:
            changed = False
            for cid, par in self.parent.items():
                if par in out and cid not in out:
                    out.add(cid)
                    changed = True
        return out

    def stores_within(self, lat: float, lon: float, radius: float) -> np.ndarray:
        d = np.array([geodesic_m(lat, lon, a, b) for a, b in zip(self.store_lat, self.store_lon, strict=True)])
        return (d <= radius) & self.store_active

    def qualifying(self, p: SearchParams, exclude: uuid.UUID | None = None) -> np.ndarray:
        if p.lat is not None and p.lon is not None:
            store_ok = self.stores_within(p.lat, p.lon, p.radius_m)
        else:
            store_ok = self.store_active.copy()
        ok = store_ok[self.l_store] & self.l_active
        if p.in_stock:
            ok &= self.l_qty > 0
        if p.min_price is not None:
            ok &= self.l_price >= float(p.min_price)
        if p.max_price is not None:
            ok &= self.l_price <= float(p.max_price)
        qual = np.zeros(len(self.product_ids), dtype=bool)
        qual[self.l_product[ok]] = True
        qual &= self.product_active
        if p.category_id is not None:
            cats = np.array(sorted(self.subtree(p.category_id)))
            qual &= np.isin(self.category, cats)
        if exclude is not None:
            qual[self.index[exclude]] = False
        return qual

    def top_k(self, p: SearchParams, q: np.ndarray, exclude: uuid.UUID | None = None) -> list[tuple[uuid.UUID, float]]:
        qual = self.qualifying(p, exclude) & self.has_vector
        idx = np.nonzero(qual)[0]
        dist = 1.0 - self.vectors[idx] @ q.astype(np.float64) / np.linalg.norm(q)
        order = np.argsort(dist, kind="stable")[: p.offset + p.limit]
        return [(self.product_ids[idx[i]], float(dist[i])) for i in order][p.offset :]


@dataclass
class Catalogue:
    url: str
    truth: Truth
    specials: dict[str, uuid.UUID]


def _insert_store(cur: psycopg.Cursor[Any], name: str, lat: float, lon: float, active: bool = True) -> uuid.UUID:
    row = cur.execute(
        "INSERT INTO store (name, location, is_active)"
        " VALUES (%s, ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s) RETURNING id",
        (name, lon, lat, active),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def _insert_product(
    cur: psycopg.Cursor[Any],
    name: str,
    vector: np.ndarray,
    *,
    brand: str | None = None,
    gtin: str | None = None,
    category_id: int | None = None,
) -> uuid.UUID:
    row = cur.execute(
        "INSERT INTO product_master (name, brand, gtin, category_id, ai_vector, ai_model)"
        " VALUES (%s, %s, %s, %s, %s, 'test') RETURNING id",
        (name, brand, gtin, category_id, vector),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def _list(
    cur: psycopg.Cursor[Any],
    store: uuid.UUID,
    product: uuid.UUID,
    price: str = "2.50",
    qty: int = 5,
    active: bool = True,
) -> None:
    cur.execute(
        "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity, is_active)"
        " VALUES (%s, %s, %s, 'EUR', %s, %s)",
        (store, product, Decimal(price), qty, active),
    )


def _add_specials(url: str) -> dict[str, uuid.UUID]:
    rng = np.random.default_rng(99)
    vecs = random_unit_vectors(16, rng)
    s: dict[str, uuid.UUID] = {}
    with psycopg.connect(url) as conn:
        register_vector_psycopg(conn)
        cur = conn.cursor()
        lat, lon = CENTER
        s["store_center"] = _insert_store(cur, "Centre Market", *direct(lat, lon, 45, 150))
        s["store_inactive"] = _insert_store(cur, "Closed Shop", *direct(lat, lon, 90, 200), active=False)
        s["oat_milk"] = _insert_product(cur, "Oat Milk", vecs[0], brand="Oatly", gtin="7394376616037")
        s["oat_barista"] = _insert_product(cur, "Oat Milk Barista Edition", vecs[1], brand="Oatly")
        # stored as the ingest path stores a GTIN (14 digits), searched as printed on the pack (13)
        s["almond"] = _insert_product(cur, "Almond Drink", vecs[2], brand="Alpro", gtin="05411188112709")
        s["only_oos"] = _insert_product(cur, "Sold Out Sprouts", vecs[3])
        s["only_inactive_listing"] = _insert_product(cur, "Delisted Dill", vecs[4])
        s["only_inactive_store"] = _insert_product(cur, "Closed Store Cress", vecs[5])
        for key in ("oat_milk", "oat_barista", "almond"):
            _list(cur, s["store_center"], s[key])
        _list(cur, s["store_center"], s["only_oos"], qty=0)
        _list(cur, s["store_center"], s["only_inactive_listing"], active=False)
        _list(cur, s["store_inactive"], s["only_inactive_store"])
        # geodesy: 4.9 km in / 5.1 km out around Munich; antimeridian; Svalbard
        blat, blon = BOUNDARY_POINT
        s["store_4900"] = _insert_store(cur, "In at 4.9 km", *direct(blat, blon, 30, 4900))
        s["store_5100"] = _insert_store(cur, "Out at 5.1 km", *direct(blat, blon, 210, 5100))
        s["boundary_product"] = _insert_product(cur, "Boundary Bread", vecs[6])
        _list(cur, s["store_4900"], s["boundary_product"], price="3.00")
        _list(cur, s["store_5100"], s["boundary_product"], price="1.00")
        alat, _ = ANTIMERIDIAN_POINT
        s["store_antimeridian"] = _insert_store(cur, "Taveuni East", alat, 179.99)
        s["antimeridian_product"] = _insert_product(cur, "Kava Root", vecs[7])
        _list(cur, s["store_antimeridian"], s["antimeridian_product"])
        slat, slon = SVALBARD_POINT
        s["store_svalbard"] = _insert_store(cur, "Svalbardbutikken", *direct(slat, slon, 60, 3000))
        s["svalbard_product"] = _insert_product(cur, "Polar Bread", vecs[8])
        _list(cur, s["store_svalbard"], s["svalbard_product"])
        conn.commit()
    return s


def _load_truth(url: str) -> Truth:
    with psycopg.connect(url) as conn:
        register_vector_psycopg(conn)
        prods = conn.execute(
            "SELECT id, ai_vector, is_active, coalesce(category_id, -1) FROM product_master ORDER BY id"
        ).fetchall()
        stores = conn.execute(
            "SELECT id, ST_Y(location::geometry), ST_X(location::geometry), is_active FROM store ORDER BY id"
        ).fetchall()
        listings = conn.execute(
            "SELECT store_id, product_master_id, price, quantity, is_active FROM store_product"
        ).fetchall()
        cats = conn.execute("SELECT id, parent_id FROM category").fetchall()
    ids = [r[0] for r in prods]
    index = {pid: i for i, pid in enumerate(ids)}
    vectors = np.zeros((len(ids), 384))
    has_vector = np.zeros(len(ids), dtype=bool)
    for i, r in enumerate(prods):
        if r[1] is not None:
            vectors[i] = as_vector(r[1]).astype(np.float64)
            has_vector[i] = True
    sids = [r[0] for r in stores]
    sindex = {sid: i for i, sid in enumerate(sids)}
    return Truth(
        product_ids=ids,
        vectors=vectors,
        has_vector=has_vector,
        product_active=np.array([r[2] for r in prods], dtype=bool),
        category=np.array([r[3] for r in prods], dtype=np.int64),
        index=index,
        store_ids=sids,
        store_lat=np.array([r[1] for r in stores]),
        store_lon=np.array([r[2] for r in stores]),
        store_active=np.array([r[3] for r in stores], dtype=bool),
        store_index=sindex,
        l_store=np.array([sindex[r[0]] for r in listings]),
        l_product=np.array([index[r[1]] for r in listings]),
        l_price=np.array([float(r[2]) for r in listings]),
        l_qty=np.array([r[3] for r in listings]),
        l_active=np.array([r[4] for r in listings], dtype=bool),
        parent={int(r[0]): (None if r[1] is None else int(r[1])) for r in cats},
    )


@pytest.fixture(scope="module")
def catalogue(db_url: str) -> Iterator[Catalogue]:
    seed_synthetic(db_url, SPEC)  # the HNSW index of the normal schema is maintained while loading
    specials = _add_specials(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    yield Catalogue(db_url, _load_truth(db_url), specials)


def _root_category(t: Truth) -> int:
    """The first top-level category that has children."""
    return min(cid for cid, par in t.parent.items() if par is None and any(p == cid for p in t.parent.values()))


def _queries(cat: Catalogue, n: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    vecs = cat.truth.vectors[cat.truth.has_vector].astype(np.float32)
    return list(query_vectors(vecs, n, 0.5, rng))


def _assert_same_ranking(got: SearchResult, want: list[tuple[uuid.UUID, float]], context: str) -> None:
    got_ids = [h.product.id for h in got.results]
    assert len(got_ids) == len(want), f"{context}: {len(got_ids)} results, expected {len(want)}"
    for pos, (hit, (wid, wdist)) in enumerate(zip(got.results, want, strict=True)):
        if hit.product.id != wid:  # only a near-tie may swap places
            assert abs((1.0 - hit.score) - wdist) < 1e-5, f"{context}: position {pos} differs: {got_ids} vs {want}"
        else:
            assert abs((1.0 - hit.score) - wdist) < 1e-5, f"{context}: score of {wid}"


def _radii(cat: Catalogue) -> list[float | None]:
    t = cat.truth
    lat, lon = CENTER
    d = np.sort(
        [geodesic_m(lat, lon, a, b) for a, b, act in zip(t.store_lat, t.store_lon, t.store_active, strict=True) if act]
    )
    # from the nearest store alone up to every store (including the far ones), then global
    return [
        float(d[0]) + 1,
        float(d[2]) + 1,
        float(d[9]) + 1,
        float(d[39]) + 1,
        5000.0,
        20_000.0,
        2_000_000.0,
        None,
    ]


PLANS = {
    "auto": DEFAULT_CONFIG,
    "exact": replace(DEFAULT_CONFIG, force="exact"),
    "hnsw": replace(DEFAULT_CONFIG, force="hnsw"),
    "scan": replace(DEFAULT_CONFIG, force="scan", scan_fallback=False),
    # every scan needing a second slice hands the query to the exact plan (slices priced far above it); a first
    # slice of 2 x top_n ids (sized on the candidate sets' exact count, most first slices sufficed)
    # Without the candidate sets' union (never counted): a scan that knows the scope's products checks only
    # those and never needs to give up; one on an estimate probes every id and hands over to the gather.
    "scan_fallback": replace(
        DEFAULT_CONFIG, force="scan", scan_us_per_probe=1e9, selectivity_overfetch=0.1, count_below_share=0.0
    ),
    "gather": replace(DEFAULT_CONFIG, force="gather"),
    "auto_with_vectors": DEFAULT_CONFIG,
    "located": DEFAULT_CONFIG,  # the API's: the vectors and the stores' places in memory (store_locator.py)
    "near": DEFAULT_CONFIG,  # the same, every radius probed by the statements instead of their list of stores
}
ALL_PLANS = list(PLANS)


class RadiusProbing(StoreLocator):
    """A store locator that has the statements probe every radius (the API does so for most of 2,000+ stores)."""

    def radius_pays(self, in_scope: int) -> bool:
        return self.loaded


async def stores_for(conn: asyncpg.Connection, plan: str) -> StoreLocator | None:
    if plan not in ("located", "near"):
        return None
    stores = RadiusProbing() if plan == "near" else StoreLocator()
    await stores.load(conn)
    return stores


async def vectors_for(conn: asyncpg.Connection, plan: str) -> VectorCache | None:
    """The in-memory vector copy for the plans that use it (the API's default), loaded from the database."""
    if plan not in ("scan", "scan_fallback", "gather", "auto_with_vectors", "located", "near"):
        return None
    vectors = VectorCache()
    await vectors.load(conn)
    return vectors


@pytest.mark.parametrize("plan", ALL_PLANS)
def test_vector_recall_is_exact_for_every_radius(catalogue: Catalogue, plan: str) -> None:
    config = PLANS[plan]
    queries = _queries(catalogue, 6)
    seen: dict[str, int] = {}
    scanned_shares: list[float] = []  # near a point: the share of the vectors in scope where the scan ran

    async def body(conn: asyncpg.Connection) -> None:
        vectors, stores = await vectors_for(conn, plan), await stores_for(conn, plan)
        for radius in _radii(catalogue):
            geo = radius is not None
            params = SearchParams(
                q="",
                lat=CENTER[0] if geo else None,
                lon=CENTER[1] if geo else None,
                radius_m=radius or 0.0,
                limit=10,
                mode="semantic",
            )
            for i, q in enumerate(queries):
                got = await search(conn, params, q, config, vectors, stores=stores)
                seen[got.strategy] = seen.get(got.strategy, 0) + 1
                want = catalogue.truth.top_k(params, q)
                _assert_same_ranking(got, want, f"{plan} radius={radius} query={i} strategy={got.strategy}")
                n_qual = int((catalogue.truth.qualifying(params) & catalogue.truth.has_vector).sum())
                assert len(got.results) == min(10, n_qual)
                if got.strategy == "exact_scan":
                    scanned_shares.append(n_qual / int(catalogue.truth.has_vector.sum()))
                if got.total_candidates_exact:
                    assert got.total_candidates == n_qual

    with_conn(catalogue.url, body)
    if plan == "exact":
        assert set(seen) <= {"exact", "global_exact"}
    if plan == "hnsw":  # the HNSW plan really ran (it may fall back to exact under tight radii, never lose rows)
        assert seen.get("hnsw_iterative", 0) > 0 and seen.get("global_hnsw", 0) > 0, seen
    if plan == "scan":
        assert set(seen) <= {"exact_scan", "global_exact_scan", "no_stores"}, seen
    if plan == "scan_fallback":  # radii whose best products are not stocked nearby: the exact plan answered
        assert seen.get("scan_fallback_gather", 0) > 0 and seen.get("exact_scan", 0) > 0, seen
    if plan == "gather":
        assert set(seen) <= {"exact_gather", "global_exact_gather", "no_stores"}, seen
    if plan == "auto_with_vectors":  # SQL exact for a handful of candidates, else gather on the candidate sets'
        # exact count (it ranks in memory the rows a scan would probe in SQL); the scan globally and for a
        # near-full scope (EngineConfig.scan_min_share, count_below_share)
        assert seen.get("exact", 0) > 0 and seen.get("exact_gather", 0) > 0, seen
        assert seen.get("global_exact_scan", 0) > 0, seen
        assert all(share >= 0.4 for share in scanned_shares), scanned_shares
        assert not any("hnsw" in name for name in seen), seen


@pytest.mark.parametrize("plan", ALL_PLANS)
def test_recall_with_offset_category_price_and_stock_filters(catalogue: Catalogue, plan: str) -> None:
    config = PLANS[plan]
    t = catalogue.truth
    root = _root_category(t)
    child = min(cid for cid, par in t.parent.items() if par == root)
    variants = [
        {"offset": 5, "limit": 7},
        {"category_id": root},
        {"category_id": child},
        {"min_price": Decimal("10.00"), "max_price": Decimal("20.00")},
        {"in_stock": False},
        {"category_id": root, "max_price": Decimal("25"), "radius_m": 20_000.0},
    ]
    queries = _queries(catalogue, 3, seed=2)

    async def body(conn: asyncpg.Connection) -> None:
        vectors, stores = await vectors_for(conn, plan), await stores_for(conn, plan)
        for v in variants:
            for geo in (True, False):
                base = SearchParams(
                    q="",
                    lat=CENTER[0] if geo else None,
                    lon=CENTER[1] if geo else None,
                    radius_m=3000.0,
                    limit=10,
                    mode="semantic",
                )
                params = replace(base, **v)  # type: ignore[arg-type]
                for i, q in enumerate(queries):
                    got = await search(conn, params, q, config, vectors, stores=stores)
                    _assert_same_ranking(got, t.top_k(params, q), f"{plan} {v} geo={geo} q={i} {got.strategy}")

    with_conn(catalogue.url, body)


@pytest.mark.parametrize("plan", ["auto", "located", "near"])
def test_scope_and_page_on_a_generic_plan_connection_change_nothing(catalogue: Catalogue, plan: str) -> None:
    """search_context and hydrate (and hybrid's keyword side) on a connection of generic plans (the API's,
    `context_conn`): the same ranking as the ground truth, the same stores, distances and prices as on the search's
    own connection, and the same hybrid pages."""
    config = replace(PLANS[plan], connection_has_settings=True)
    t = catalogue.truth
    variants: list[dict[str, Any]] = [
        {},
        {"category_id": _root_category(t)},
        {"min_price": Decimal("10.00"), "max_price": Decimal("20.00"), "radius_m": 20_000.0},
        {"in_stock": False, "radius_m": 1_000.0},
    ]
    queries = _queries(catalogue, 3, seed=4)

    async def body(conn: asyncpg.Connection) -> None:
        await conn.execute(settings_sql(config).replace("SET LOCAL", "SET"))
        generic = await asyncpg.connect(catalogue.url, server_settings=generic_plan_settings(config))
        await register_vector(generic)
        try:
            vectors, stores = await vectors_for(conn, plan), await stores_for(conn, plan)
            for v in variants:
                for geo in (True, False):
                    base = SearchParams(q="", lat=CENTER[0] if geo else None, lon=CENTER[1] if geo else None)
                    params = replace(base, **{"radius_m": 3000.0, "limit": 10, "mode": "semantic", **v})
                    hybrid = replace(params, q="oat milk", mode="hybrid")
                    for i, q in enumerate(queries):
                        own = await search(conn, params, q, config, vectors, stores=stores)
                        got = await search(conn, params, q, config, vectors, stores=stores, context_conn=generic)
                        _assert_same_ranking(got, t.top_k(params, q), f"{plan} {v} geo={geo} q={i} {got.strategy}")
                        assert got.results == own.results, f"{plan} {v} geo={geo} q={i}"
                        # hybrid: the keyword side on the generic connection too, between the scope and the page
                        own = await search(conn, hybrid, q, config, vectors, stores=stores)
                        got = await search(
                            conn, hybrid, q, config, vectors, keyword_conn=generic, stores=stores, context_conn=generic
                        )
                        assert got.results == own.results, f"hybrid {plan} {v} geo={geo} q={i}"
            assert await generic.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        finally:
            await generic.close()

    with_conn(catalogue.url, body)


def test_keyword_mode_ranks_on_the_keyword_connection_of_generic_plans(catalogue: Catalogue) -> None:
    """The API hands keyword mode its connection of generic plans as `keyword_conn`: rank_keyword runs there,
    planned once (a custom plan cost ~3 ms of planning a search at 100k: a 24 KB statement), the same pages."""
    config = replace(PLANS["located"], connection_has_settings=True)

    async def body(conn: asyncpg.Connection) -> None:
        await conn.execute(settings_sql(config).replace("SET LOCAL", "SET"))
        generic = await asyncpg.connect(
            catalogue.url,
            server_settings=generic_plan_settings(config),
            max_cacheable_statement_size=CACHEABLE_STATEMENT_BYTES,  # as the API's pools: kept, and planned once
        )
        await register_vector(generic)
        try:
            vectors, stores = await vectors_for(conn, "located"), await stores_for(conn, "located")
            found = 0
            for text in ("oat milk", "oat mlik", "milk", "zzqx"):
                params = SearchParams(q=text, lat=CENTER[0], lon=CENTER[1], radius_m=3000.0, limit=10, mode="keyword")
                own = await search(conn, params, None, config, vectors, stores=stores)
                got = await search(
                    conn, params, None, config, vectors, keyword_conn=generic, stores=stores, context_conn=generic
                )
                assert got.results == own.results, text
                found += len(got.results)
            assert found > 0
            plans = await generic.fetch(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%AS kscore%'"
            )
            assert plans and sum(r["generic_plans"] for r in plans) >= 4, plans
        finally:
            await generic.close()

    with_conn(catalogue.url, body)


def test_a_bulk_loads_change_log_is_read_by_its_indexes_on_a_generic_plan_connection(catalogue: Catalogue) -> None:
    """One transaction logs 40k listing changes (a bulk load; the log is pruned after an hour): search_context on
    the generic-plan connection reads the log through listing_changes_since, planned for its values, by index (no
    sequential scan of the log). Written in the statement itself, `seq > $1 OR xid = ANY($2)` planned generically
    was a sequential scan of the whole log (~80 ms a search at 965k rows)."""
    config = replace(PLANS["located"], connection_has_settings=True)
    queries = _queries(catalogue, 3, seed=6)
    params = SearchParams(q="", lat=CENTER[0], lon=CENTER[1], radius_m=3000.0, limit=10, mode="semantic")

    async def seq_scans(conn: asyncpg.Connection) -> int:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(await conn.fetchval("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'listing_change'"))

    async def body(conn: asyncpg.Connection) -> None:
        await conn.execute(settings_sql(config).replace("SET LOCAL", "SET"))
        await conn.execute(
            "INSERT INTO listing_change (store_id, product_master_id) SELECT sp.store_id, sp.product_master_id"
            " FROM store_product sp, generate_series(1, 40000 / (SELECT count(*) FROM store_product)::int + 1)"
        )  # listings as they are: a change re-reads a listing's state
        await conn.execute("ANALYZE listing_change")  # as autovacuum does after such a load
        generic = await asyncpg.connect(catalogue.url, server_settings=generic_plan_settings(config))
        await register_vector(generic)
        try:
            vectors, stores = await vectors_for(conn, "located"), await stores_for(conn, "located")
            assert vectors is not None and vectors.candidates.read_args()["since_seq"] is not None  # the log is read
            before = await seq_scans(conn)
            for q in queries:
                own = await search(conn, params, q, config, vectors, stores=stores)
                got = await search(conn, params, q, config, vectors, stores=stores, context_conn=generic)
                assert got.results == own.results
            await generic.execute("SELECT pg_stat_force_next_flush()")
            await generic.execute("SELECT 1")  # its counters reach the shared statistics as it goes idle
            await asyncio.sleep(0.2)
            assert await seq_scans(conn) == before
        finally:
            await generic.close()

    with_conn(catalogue.url, body)


def test_default_strategy_choice_uses_both_plans(catalogue: Catalogue) -> None:
    """At this scale the cost model must pick exact for a few stores and HNSW for the whole cloud."""
    q = _queries(catalogue, 1)[0]
    radii = _radii(catalogue)

    async def body(conn: asyncpg.Connection) -> tuple[str, str, str]:
        small = await search(
            conn, SearchParams(q="", lat=CENTER[0], lon=CENTER[1], radius_m=radii[0] or 0, mode="semantic"), q
        )
        large = await search(
            conn, SearchParams(q="", lat=CENTER[0], lon=CENTER[1], radius_m=2_000_000, mode="semantic"), q
        )
        glob = await search(conn, SearchParams(q="", mode="semantic"), q)
        return small.strategy, large.strategy, glob.strategy

    small, large, glob = with_conn(catalogue.url, body)
    assert small == "exact"
    assert large == "hnsw_iterative"
    assert glob == "global_hnsw"


def _filters(stores: list[Any] | None) -> dict[str, Any]:
    """The shared filters' parameters with nothing but the stores set (in stock only)."""
    values = dict(category_ids=None, exclude_id=None, brand=None, excluding=None, min_price=None, max_price=None)
    return {"store_ids": stores, "in_stock": True, **values}


async def _context(conn: asyncpg.Connection, params: SearchParams) -> Any:
    stmt = statement("engine/search", "search_context")
    place = {"lon": params.lon, "lat": params.lat, "radius_m": params.radius_m, "category_id": None}
    values = stmt.bind(**place, **NO_CHANGES, **NOT_LOCATED)
    return await conn.fetchrow(stmt.sql, *values)


async def _explain(conn: asyncpg.Connection, block: str, params: SearchParams, q: np.ndarray, top_n: int = 10) -> str:
    context = statement("engine/search", "search_context")
    context_args = context.bind(
        lon=params.lon, lat=params.lat, radius_m=params.radius_m, category_id=None, **NO_CHANGES, **NOT_LOCATED
    )
    async with conn.transaction():
        await conn.execute(settings_sql(DEFAULT_CONFIG))
        geo = params.lat is not None
        ctx = await conn.fetchrow(context.sql, *context_args)
        assert ctx is not None
        if block == "search_context":
            rows = await conn.fetch("EXPLAIN " + context.sql, *context_args)
        else:
            stmt = statement("engine/search", block)
            stores = ctx["store_ids"] if geo else None
            size = {"top_n" if block == "rank_exact" else "fetch_n": top_n}
            values = stmt.bind(query_vector=q, **size, **_filters(stores))
            rows = await conn.fetch("EXPLAIN " + stmt.sql, *values)
    return "\n".join(r[0] for r in rows)


def test_explain_hnsw_plan_uses_the_hnsw_index_and_exact_plan_does_not(catalogue: Catalogue) -> None:
    q = _queries(catalogue, 1)[0]
    params = SearchParams(q="", lat=CENTER[0], lon=CENTER[1], radius_m=20_000, mode="semantic")

    few_stores = replace(params, radius_m=_radii(catalogue)[1] or 0.0)

    async def body(conn: asyncpg.Connection) -> tuple[str, str, str, str]:
        return (
            await _explain(conn, "rank_hnsw", params, q, 40),
            await _explain(conn, "rank_exact", few_stores, q),
            await _explain(conn, "rank_hnsw", SearchParams(q="", mode="semantic"), q, 40),
            await _explain(conn, "search_context", replace(params, radius_m=1000), q),
        )

    hnsw_plan, exact_plan, global_plan, context_plan = with_conn(catalogue.url, body)
    assert "ix_product_master_ai_vector_hnsw" in hnsw_plan, hnsw_plan
    assert "ix_store_product_in_stock" in hnsw_plan, hnsw_plan  # the EXISTS probe is an index(-only) scan
    assert "ix_product_master_ai_vector_hnsw" in global_plan, global_plan
    assert "ix_product_master_ai_vector_hnsw" not in exact_plan, exact_plan
    assert "Order By" not in exact_plan, exact_plan  # no index-ordered scan anywhere
    # candidates come from the sellable listings of the stores in the radius: an index-only scan by store
    assert "Index Only Scan using ix_store_product_store_in_stock" in exact_plan, exact_plan
    assert "ix_store_location" in context_plan, context_plan


def _keyword_args(q: str) -> dict[str, Any]:
    """rank_keyword's own arguments, as a search without the candidate sets binds them."""
    own = {"depth": 30, "cap": 400, "typo_tolerance": True, "typo_below": 30, "scan_cap": None}
    return {"q": q, **query_texts(q), **own}


def test_keyword_statement_probes_listings_per_match(catalogue: Catalogue) -> None:
    """The keyword side checks the listing filter on each (capped) match with an index probe; it never hashes
    every listing of the stores in the radius, which the planner chose for an EXISTS (22 of 26 ms at 2 km)."""
    params = SearchParams(q="oat milk", lat=CENTER[0], lon=CENTER[1], radius_m=20_000)

    async def body(conn: asyncpg.Connection) -> str:
        stmt = statement("engine/search", "rank_keyword")
        async with conn.transaction():
            await conn.execute(settings_sql(DEFAULT_CONFIG))
            ctx = await _context(conn, params)
            assert ctx is not None and ctx["store_ids"]
            args = stmt.bind(**_keyword_args(params.q), **_filters(ctx["store_ids"]), **NO_NEAR)
            rows = await conn.fetch("EXPLAIN " + stmt.sql, *args)
        return "\n".join(r[0] for r in rows)

    plan = with_conn(catalogue.url, body)
    assert "SubPlan" in plan and "Index Only Scan using ix_store_product_in_stock" in plan, plan
    assert "ix_store_product_store_in_stock" not in plan, plan  # no scan of the radius's listings by store


def test_store_scope_is_a_hash_in_probes_and_an_index_key_where_it_drives_the_scan(catalogue: Catalogue) -> None:
    """Probes of a found product's listings test the stores in scope against a hash built once per statement
    (planning an `= ANY` of hundreds of constant stores cost 1-4 ms a statement); the statement that lists
    the stores' listings keeps them as index keys (as a hash it read every listing)."""
    params = SearchParams(q="oat milk", lat=CENTER[0], lon=CENTER[1], radius_m=20_000)
    q = _queries(catalogue, 1)[0]

    async def body(conn: asyncpg.Connection) -> dict[str, str]:
        async with conn.transaction():
            await conn.execute(settings_sql(DEFAULT_CONFIG))
            ctx = await _context(conn, params)
            assert ctx is not None and ctx["store_ids"]
            stores = ctx["store_ids"]
            filters = _filters(stores)
            listing = {k: filters[k] for k in ("store_ids", "in_stock", "min_price", "max_price")}
            probed = listing | NO_NEAR  # the statements that probe a found product's listings
            ids = await conn.fetchval("SELECT array_agg(id) FROM (SELECT id FROM product_master LIMIT 10) p")
            args: dict[str, dict[str, Any]] = {
                "hydrate": dict(
                    product_ids=ids,
                    lon=params.lon,
                    lat=params.lat,
                    home_lon=params.lon,
                    home_lat=params.lat,
                    stores_per_product=3,
                    cheapest_first=False,
                    **probed,
                ),
                "filter_ranked": dict(
                    query_vector=q, ids=ids, ids_listed=False, changed_since=None, **filters, **NO_NEAR
                ),
                "rank_keyword": dict(**_keyword_args(params.q), **filters, **NO_NEAR),
                "listed_products": listing,
            }
            plans = {}
            for name, values in args.items():
                stmt = statement("engine/search", name)
                rows = await conn.fetch("EXPLAIN " + stmt.sql, *stmt.bind(**values))
                plans[name] = "\n".join(r[0] for r in rows)
        return plans

    plans = with_conn(catalogue.url, body)
    for name in ("hydrate", "filter_ranked", "rank_keyword"):
        assert "hashed SubPlan" in plans[name] and "store_id = ANY ('{" not in plans[name], plans[name]
    listed = plans["listed_products"]
    assert "Index Cond: (store_id = ANY ('{" in listed and "hashed SubPlan" not in listed, listed


def test_scan_predicts_the_ids_it_still_has_to_check() -> None:
    assert _ids_left(600, 200, 30, 30) == 600  # enough passed: the threshold decides, the next slice is all
    assert _ids_left(600, 200, 20, 30) == 600  # 100 more at this pass rate: the slice is larger
    assert _ids_left(700, 236, 0, 30) == 14_160  # nothing passed: far down the ranking, a gather is cheaper
    assert _ids_left(600, 1000, 3, 30) == 9000


def test_empty_radius_returns_at_once(catalogue: Catalogue) -> None:
    q = _queries(catalogue, 1)[0]
    params = SearchParams(q="oat milk", lat=OCEAN_POINT[0], lon=OCEAN_POINT[1], radius_m=50_000)

    async def body(conn: asyncpg.Connection) -> tuple[SearchResult, float]:
        await search(conn, params, q)  # warm the statement cache
        t0 = time.perf_counter()
        res = await search(conn, params, q, PLANS["hnsw"])
        return res, (time.perf_counter() - t0) * 1000

    res, ms = with_conn(catalogue.url, body)
    assert res.strategy == "no_stores"
    assert res.results == [] and res.total_candidates == 0
    assert ms < 20, ms


def _near_center(**kw: Any) -> SearchParams:
    return SearchParams(**{"q": "", "lat": CENTER[0], "lon": CENTER[1], "radius_m": 1000.0, "limit": 50, **kw})


def test_stock_and_activity_filters(catalogue: Catalogue) -> None:
    s = catalogue.specials
    names = {
        "only_oos": "Sold Out Sprouts",
        "only_inactive_listing": "Delisted Dill",
        "only_inactive_store": "Closed Store Cress",
        "oat_milk": "Oat Milk",
    }
    vec = random_unit_vectors(1, np.random.default_rng(4))[0]

    async def body(conn: asyncpg.Connection) -> dict[tuple[str, bool, str], set[uuid.UUID]]:
        out: dict[tuple[str, bool, str], set[uuid.UUID]] = {}
        for key, name in names.items():
            for in_stock in (True, False):
                for mode in ("keyword", "hybrid"):
                    res = await search(conn, _near_center(q=name, mode=mode, in_stock=in_stock), vec)
                    out[key, in_stock, mode] = {h.product.id for h in res.results}
                    for h in res.results:
                        assert all(st.id != s["store_inactive"] for st in h.stores)
                        if in_stock:
                            assert all(st.quantity > 0 for st in h.stores)
        return out

    out = with_conn(catalogue.url, body)
    for mode in ("keyword", "hybrid"):
        assert s["oat_milk"] in out["oat_milk", True, mode]  # the query itself works
        assert s["only_oos"] not in out["only_oos", True, mode]
        assert s["only_oos"] in out["only_oos", False, mode]  # in_stock=false drops the quantity condition only
        for key in ("only_inactive_listing", "only_inactive_store"):
            assert s[key] not in out[key, True, mode] and s[key] not in out[key, False, mode]


def test_category_subtree_and_price_range_are_respected_in_every_mode(catalogue: Catalogue) -> None:
    t = catalogue.truth
    root = _root_category(t)
    subtree = t.subtree(root)
    q = _queries(catalogue, 1, seed=7)[0]

    async def body(conn: asyncpg.Connection) -> None:
        for mode in ("semantic", "hybrid", "keyword"):
            params = replace(
                _near_center(q="synthetic product", mode=mode, radius_m=5000.0, limit=30),
                category_id=root,
                min_price=Decimal("5"),
                max_price=Decimal("15"),
            )
            res = await search(conn, params, q)
            assert res.results, mode
            qual = t.qualifying(params)
            for h in res.results:
                assert int(t.category[t.index[h.product.id]]) in subtree
                assert h.product.category_id in subtree
                assert qual[t.index[h.product.id]], (mode, h.product.id)
                assert h.stores and all(Decimal("5") <= st.price <= Decimal("15") for st in h.stores)

    with_conn(catalogue.url, body)


def test_exact_name_gtin_and_brand_rank_first_and_typos_still_match(catalogue: Catalogue) -> None:
    s = catalogue.specials
    noise = random_unit_vectors(1, np.random.default_rng(11))[0]  # a vector unrelated to the products

    async def first(
        conn: asyncpg.Connection, q: str, mode: str = "hybrid", config: EngineConfig = DEFAULT_CONFIG
    ) -> list[uuid.UUID]:
        res = await search(conn, _near_center(q=q, mode=mode), noise, config)
        return [h.product.id for h in res.results]

    async def body(conn: asyncpg.Connection) -> dict[str, list[uuid.UUID]]:
        return {
            "name": await first(conn, "oat milk"),
            "gtin": await first(conn, "5411188112709"),
            "brand": await first(conn, "Oatly"),
            "typo_kw": await first(conn, "oat mlik", "keyword"),
            "typo_hybrid": await first(conn, "oat mlik"),
            # three slips (two swaps, one dropped letter)
            "typos_kw": await first(conn, "Oat Mikl Barsita Editon", "keyword"),
            "typos_kw_off": await first(
                conn, "Oat Mikl Barsita Editon", "keyword", replace(DEFAULT_CONFIG, typo_tolerance=False)
            ),
            "gtin_kw": await first(conn, "7394376616037", "keyword"),
            "gtin13_kw": await first(conn, "5411188112709", "keyword"),  # stored as 14 digits: it found nothing
            "gtin14_kw": await first(conn, "0 7394376 616037", "keyword"),  # stored as 13, typed as 14 with spaces
            # a swap in a short word leaves too few trigrams in common: found as a swap (it matched nothing)
            "swap_kw": await first(conn, "mlik", "keyword"),
        }

    r = with_conn(catalogue.url, body)
    assert r["name"][0] == s["oat_milk"]
    assert r["gtin"][0] == s["almond"]
    assert set(r["brand"][:2]) == {s["oat_milk"], s["oat_barista"]}
    assert r["gtin_kw"][0] == s["oat_milk"]
    assert r["gtin13_kw"][:1] == [s["almond"]] and r["gtin14_kw"][:1] == [s["oat_milk"]]
    assert s["oat_milk"] in r["typo_kw"][:3]
    assert s["oat_milk"] in r["typo_hybrid"][:5]
    assert r["typos_kw"][0] == s["oat_barista"]
    assert r["typos_kw_off"] == []  # the words as typed match nothing: typo tolerance found it
    assert s["oat_milk"] in r["swap_kw"]


def test_a_swap_corrects_an_unknown_word_only(fresh_db_url: str) -> None:
    """Two neighbouring letters swapped (`mlik`) find the word they spell, ahead of the trigram corrections that
    flooded it (`ml`); a word known by its stem is not swapped into another (`hoes` is hoe, not hose), nor any
    into a stop word (`form` is not from)."""
    vecs = random_unit_vectors(8, np.random.default_rng(5))
    names = ["Garden Hose 20 m", "Garden Hoe Long Handle", "Whole Milk 1 l", "Craft Pale Ale 500 ml",
             "Cabernet 375 ml", "Not From Concentrate Juice", "Mould Form"]  # fmt: skip
    with psycopg.connect(fresh_db_url) as conn:
        register_vector_psycopg(conn)
        cur = conn.cursor()
        store = _insert_store(cur, "Corner Shop", *direct(CENTER[0], CENTER[1], 0, 100))
        ids = {name: _insert_product(cur, name, vecs[i]) for i, name in enumerate(names)}
        for product in ids.values():
            _list(cur, store, product)

    async def body(conn: asyncpg.Connection) -> dict[str, list[str]]:
        by_id = {v: k for k, v in ids.items()}
        out = {}
        for q in ("mlik", "garden hoes", "frmo", "fomr"):
            res = await search(conn, _near_center(q=q, mode="keyword"), vecs[7])
            out[q] = [by_id[h.product.id] for h in res.results]
        return out

    got = with_conn(fresh_db_url, body)
    assert got["mlik"] == ["Whole Milk 1 l"]
    assert got["garden hoes"] == ["Garden Hoe Long Handle"]
    assert got["frmo"] == [] and got["fomr"] == ["Mould Form"]  # from is a stop word, not a correction


def test_a_long_word_is_corrected_in_time_whatever_the_vocabulary(fresh_db_url: str) -> None:
    """The swap correction re-ran its variants of the word for every vocabulary row: a 240-letter word cost
    vocabulary x length^2 (2 s on the demo city's 2,300 words; a dozen such requests made every search 503)."""
    vecs = random_unit_vectors(2, np.random.default_rng(6))
    with psycopg.connect(fresh_db_url) as conn:
        register_vector_psycopg(conn)
        cur = conn.cursor()
        store = _insert_store(cur, "Corner Shop", *direct(CENTER[0], CENTER[1], 0, 100))
        _list(cur, store, _insert_product(cur, "Whole Milk 1 l", vecs[0]))
        cur.execute("INSERT INTO search_term (term) SELECT 'vocab' || n FROM generate_series(1, 20000) AS n")
    word = "x" * 256
    explain = statement("engine/facets", "explain_typos")

    async def body(conn: asyncpg.Connection) -> tuple[float, float, list[Any]]:
        started = time.perf_counter()
        found = await search(conn, _near_center(q=f"milk {word}", mode="keyword"), vecs[1])
        ranked = time.perf_counter() - started
        started = time.perf_counter()
        await conn.fetch(
            explain.sql, *explain.bind(q=f"mlik {word}", product_ids=[h.product.id for h in found.results])
        )
        return ranked, time.perf_counter() - started, found.results

    ranked_s, explained_s, results = with_conn(fresh_db_url, body)
    assert ranked_s < 2.0 and explained_s < 2.0, (ranked_s, explained_s)  # was ~20 s each
    assert [h.product.name for h in results] == ["Whole Milk 1 l"]  # the long word, close to nothing known, dropped


def _common_word_near_center(
    catalogue: Catalogue, variants: list[dict[str, Any]], config: EngineConfig = DEFAULT_CONFIG
) -> list[tuple[SearchParams, SearchResult, list[uuid.UUID]]]:
    """Keyword searches for `synthetic` (every synthetic product: ten times the keyword cap) near the centre,
    with the API's candidate sets, each with the products that should match, in their order (equal text ranks:
    the shorter name first, then by id)."""

    async def body(conn: asyncpg.Connection) -> tuple[dict[uuid.UUID, int], list[tuple[SearchParams, SearchResult]]]:
        vectors = await vectors_for(conn, "gather")
        rows = await conn.fetch(
            "SELECT id, length(name) AS n FROM product_master WHERE name LIKE 'synthetic product %'"
        )
        out = []
        for v in variants:
            params = _near_center(**{"q": "synthetic", "mode": "keyword", "limit": 100, **v})
            out.append((params, await search(conn, params, None, config, vectors=vectors)))
        return {r["id"]: r["n"] for r in rows}, out

    synthetic, out = with_conn(catalogue.url, body)
    t = catalogue.truth
    wanted = []
    for params, got in out:
        qual = t.qualifying(params)
        matches = [pid for i, pid in enumerate(t.product_ids) if qual[i] and pid in synthetic]
        wanted.append((params, got, sorted(matches, key=lambda pid: (synthetic[pid], pid))))
    return wanted


def test_the_keyword_side_ranks_every_local_match_of_a_common_word(catalogue: Catalogue) -> None:
    """The catalogue's first 400 matches held about a tenth of those sold near the point: with the candidate
    sets the keyword side ranks every match in stock in scope (a price filter probed per listing)."""
    variants: list[dict[str, Any]] = [
        {"radius_m": 600.0},
        {"radius_m": 1500.0},
        {"radius_m": 1500.0, "min_price": Decimal("10.00"), "max_price": Decimal("20.00")},
        {"radius_m": 1500.0, "offset": 60, "limit": 30},
    ]
    for params, got, want in _common_word_near_center(catalogue, variants):
        assert 100 < len(want) <= DEFAULT_CONFIG.keyword_rank_cap, (params, len(want))
        assert [h.product.id for h in got.results] == want[params.offset : params.offset + params.limit], params
        assert got.total_candidates == len(want) and got.total_candidates_exact, params


def test_a_typo_of_a_common_word_is_ranked_in_scope(catalogue: Catalogue) -> None:
    """`synthetik` is corrected to `synthetic` (the vocabulary holds it within the test's transaction: the bulk
    load skipped its trigger); the correction's matches are ranked in scope as the word's are."""
    params = _near_center(q="synthetik", mode="keyword", limit=100, radius_m=1500.0)

    async def body(conn: asyncpg.Connection) -> tuple[dict[uuid.UUID, int], list[uuid.UUID]]:
        vectors = await vectors_for(conn, "gather")
        written = conn.transaction()
        await written.start()
        try:
            await conn.execute("INSERT INTO search_term (term) VALUES ('synthetic') ON CONFLICT DO NOTHING")
            got = await search(conn, params, None, vectors=vectors)
        finally:
            await written.rollback()
        rows = await conn.fetch(
            "SELECT id, length(name) AS n FROM product_master WHERE name LIKE 'synthetic product %'"
        )
        return {r["id"]: r["n"] for r in rows}, [h.product.id for h in got.results]

    synthetic, ids = with_conn(catalogue.url, body)
    qual = catalogue.truth.qualifying(params)
    matches = [pid for i, pid in enumerate(catalogue.truth.product_ids) if qual[i] and pid in synthetic]
    want = sorted(matches, key=lambda pid: (synthetic[pid], pid))  # equal ranks: the shorter name first
    assert len(want) > 100 and ids == want[:100]


def test_past_the_rank_cap_a_common_word_counts_its_local_matches(catalogue: Catalogue) -> None:
    config = replace(DEFAULT_CONFIG, keyword_rank_cap=40)
    for params, got, want in _common_word_near_center(catalogue, [{"radius_m": 1500.0}], config):
        ids = [h.product.id for h in got.results]
        assert len(ids) == 40 and set(ids) <= set(want) and ids == [w for w in want if w in set(ids)], params
        assert got.total_candidates == len(want) and not got.total_candidates_exact


def test_a_product_without_brand_or_gtin_ties_by_id_on_the_keyword_side(catalogue: Catalogue) -> None:
    """Two equal matches, one without a brand and a GTIN: the id decides, in both keyword statements (the exact
    flag was null for it, and a null sorted first: it took a place among the first `depth`, pages repeated it)."""
    t = catalogue.truth
    store = t.store_ids[int(np.flatnonzero(t.stores_within(CENTER[0], CENTER[1], 1000.0))[0])]
    first, last = uuid.UUID(int=1), uuid.UUID(int=2**128 - 1)
    params = _near_center(q="widget", mode="keyword", limit=1)

    async def body(conn: asyncpg.Connection) -> list[list[uuid.UUID]]:
        vectors = await vectors_for(conn, "gather")
        written = conn.transaction()  # rolled back: the module's catalogue stays as its truth says
        await written.start()
        try:
            for pid, brand, gtin in ((first, "Acme", "4000000000017"), (last, None, None)):
                await conn.execute(
                    "INSERT INTO product_master (id, name, brand, gtin) VALUES ($1, 'Zeta widget', $2, $3)",
                    pid, brand, gtin,
                )  # fmt: skip
                await conn.execute(
                    "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity)"
                    " VALUES ($1, $2, 1, 'EUR', 5)",
                    store, pid,
                )  # fmt: skip
            one = await search(conn, params, None)  # the one statement
            among = await search(conn, params, None, replace(DEFAULT_CONFIG, keyword_cap=1), vectors=vectors)
            return [[h.product.id for h in r.results] for r in (one, among)]
        finally:
            await written.rollback()

    got = with_conn(catalogue.url, body)
    assert got == [[first], [first]], got


def test_hybrid_scores_and_keyword_mode_strategy(catalogue: Catalogue) -> None:
    q = _queries(catalogue, 1)[0]

    async def body(conn: asyncpg.Connection) -> tuple[SearchResult, SearchResult, SearchResult]:
        hyb = await search(conn, _near_center(q="oat milk", limit=10), q)
        kw = await search(conn, _near_center(q="oat milk", mode="keyword", limit=10), None)
        sem = await search(conn, _near_center(q="oat milk", mode="semantic", limit=10), q)
        return hyb, kw, sem

    hyb, kw, sem = with_conn(catalogue.url, body)
    assert len(hyb.results) == 10  # the vector side fills the page beyond the keyword matches
    assert all(0 < h.score <= 2 / 61 + 1e-12 for h in hyb.results)
    assert kw.strategy == "keyword" and kw.results
    scores = [h.score for h in sem.results]
    assert scores == sorted(scores, reverse=True) and all(-1 <= x <= 1 for x in scores)


def test_stores_per_product_are_nearest_first_with_geodesic_distances(catalogue: Catalogue) -> None:
    t = catalogue.truth
    q = _queries(catalogue, 1, seed=5)[0]

    async def body(conn: asyncpg.Connection) -> SearchResult:
        return await search(conn, _near_center(radius_m=4000.0, limit=20, stores_per_product=4, mode="semantic"), q)

    res = with_conn(catalogue.url, body)
    assert res.results
    for h in res.results:
        assert 1 <= len(h.stores) <= 4
        dists = [st.distance_m for st in h.stores]
        assert all(d is not None for d in dists)
        assert dists == sorted(dists)  # type: ignore[type-var]
        for st in h.stores:
            i = t.store_index[st.id]
            ref = geodesic_m(CENTER[0], CENTER[1], t.store_lat[i], t.store_lon[i])
            assert st.distance_m is not None
            assert abs(st.distance_m - ref) <= 0.001 * ref + 0.01
            assert st.distance_m <= 4000.0 and st.currency == "EUR"


def test_global_search_lists_stores_by_price_without_distances(catalogue: Catalogue) -> None:
    q = _queries(catalogue, 1, seed=6)[0]

    async def body(conn: asyncpg.Connection) -> SearchResult:
        return await search(conn, SearchParams(q="", limit=10, stores_per_product=5, mode="semantic"), q)

    res = with_conn(catalogue.url, body)
    assert len(res.results) == 10
    for h in res.results:
        assert h.stores and all(st.distance_m is None for st in h.stores)
        prices = [st.price for st in h.stores]
        assert prices == sorted(prices)


class _Statements(asyncpg.Connection):
    """A connection that records which of the engine's named statements it ran."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.blocks: list[str] = []

    def _note(self, query: str) -> None:
        self.blocks.extend(name for name, sql in sql_blocks().items() if sql == query)

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> list[Any]:
        self._note(query)
        return await super().fetch(query, *args, **kwargs)

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        self._note(query)
        return await super().fetchrow(query, *args, **kwargs)


def test_global_search_without_a_category_skips_the_context_round_trip(catalogue: Catalogue) -> None:
    """Without a point or a category there are no stores or subtree to look up; with a category there are, and
    the subtree still filters."""
    t = catalogue.truth
    category = _root_category(t)
    q = _queries(catalogue, 1, seed=7)[0]

    async def body() -> tuple[list[str], list[str], SearchResult]:
        conn = await asyncpg.connect(catalogue.url, connection_class=_Statements)
        try:
            await register_vector(conn)
            await search(conn, SearchParams(q="oat milk", limit=10, mode="hybrid"), q)
            plain = list(conn.blocks)
            conn.blocks.clear()
            res = await search(conn, SearchParams(q="", limit=10, mode="semantic", category_id=category), q)
            return plain, list(conn.blocks), res
        finally:
            await conn.close()

    plain, with_category, res = run(body())
    assert "search_context" not in plain and {"rank_keyword", "hydrate"} <= set(plain), plain
    assert with_category[0] == "search_context", with_category
    assert res.results and all(h.product.category_id in t.subtree(category) for h in res.results)


def _special_search(cat: Catalogue, point: tuple[float, float], radius: float, product: str) -> list[Any]:
    q = random_unit_vectors(1, np.random.default_rng(3))[0]

    async def body(conn: asyncpg.Connection) -> list[Any]:
        res = await search(
            conn,
            SearchParams(q="", lat=point[0], lon=point[1], radius_m=radius, limit=50, mode="semantic"),
            q,
        )
        return [h for h in res.results if h.product.id == cat.specials[product]]

    return with_conn(cat.url, body)


def test_radius_boundary_4900_in_5100_out(catalogue: Catalogue) -> None:
    s = catalogue.specials
    hits = _special_search(catalogue, BOUNDARY_POINT, 5000, "boundary_product")
    assert len(hits) == 1
    assert [st.id for st in hits[0].stores] == [s["store_4900"]]  # the cheaper store at 5.1 km is outside
    assert abs(hits[0].stores[0].distance_m - 4900) < 4.9
    wide = _special_search(catalogue, BOUNDARY_POINT, 5200, "boundary_product")
    assert [st.id for st in wide[0].stores] == [s["store_4900"], s["store_5100"]]
    assert abs(wide[0].stores[1].distance_m - 5100) < 5.1


def test_antimeridian_and_high_latitude(catalogue: Catalogue) -> None:
    alat, alon = ANTIMERIDIAN_POINT
    expected = geodesic_m(alat, alon, alat, 179.99)
    assert 1500 < expected < 2500
    hits = _special_search(catalogue, ANTIMERIDIAN_POINT, 5000, "antimeridian_product")
    assert len(hits) == 1 and abs(hits[0].stores[0].distance_m - expected) <= 0.001 * expected
    assert _special_search(catalogue, ANTIMERIDIAN_POINT, 1000, "antimeridian_product") == []
    hits = _special_search(catalogue, SVALBARD_POINT, 5000, "svalbard_product")
    assert len(hits) == 1 and abs(hits[0].stores[0].distance_m - 3000) <= 3.0
    assert _special_search(catalogue, SVALBARD_POINT, 2000, "svalbard_product") == []


def test_similar_excludes_the_product_and_is_exact(catalogue: Catalogue) -> None:
    t = catalogue.truth
    pid = next(p for p, ok in zip(t.product_ids, t.has_vector, strict=True) if ok)
    vec = t.vectors[t.index[pid]].astype(np.float32)

    async def body(conn: asyncpg.Connection) -> list[SearchResult]:
        out = []
        vectors = await vectors_for(conn, "auto_with_vectors")
        for cache in (None, vectors):
            for radius in (5000.0, 2_000_000.0):
                out.append(
                    await similar(
                        conn,
                        pid,
                        SearchParams(q="", lat=CENTER[0], lon=CENTER[1], radius_m=radius),
                        vectors=cache,
                    )
                )
            out.append(await similar(conn, pid, SearchParams(q=""), vectors=cache))
        with pytest.raises(ProductNotFound):
            await similar(conn, uuid.uuid4(), SearchParams(q=""), vectors=vectors)
        return out

    results = with_conn(catalogue.url, body)
    assert results[-1].strategy == "global_exact_scan"
    for res, radius in zip(results, (5000.0, 2_000_000.0, None) * 2, strict=True):
        params = SearchParams(
            q="",
            lat=CENTER[0] if radius else None,
            lon=CENTER[1] if radius else None,
            radius_m=radius or 0.0,
            mode="semantic",
        )
        assert pid not in [h.product.id for h in res.results]
        _assert_same_ranking(res, t.top_k(params, vec, exclude=pid), f"similar radius={radius}")


def test_runs_inside_the_callers_transaction(catalogue: Catalogue) -> None:
    """The HTTP layer opens the transaction (with its statement_timeout); SET LOCAL must not leak past it."""
    q = _queries(catalogue, 1)[0]

    async def body(conn: asyncpg.Connection) -> tuple[SearchResult, str]:
        async with conn.transaction(readonly=True):
            await conn.execute("SET LOCAL statement_timeout = '2s'")
            res = await search(conn, _near_center(q="oat milk"), q)
        ef = await conn.fetchval("SHOW hnsw.ef_search")
        return res, str(ef)

    res, ef = with_conn(catalogue.url, body)
    assert res.results
    assert ef == "40"  # back to the default after the caller's transaction


def test_vectors_round_trip_as_float32(catalogue: Catalogue) -> None:
    async def body(conn: asyncpg.Connection) -> np.ndarray:
        return as_vector(await conn.fetchval("SELECT ai_vector FROM product_master LIMIT 1"))

    v = with_conn(catalogue.url, body)
    assert v.dtype == np.float32 and v.shape == (384,)


def test_hybrid_with_a_keyword_connection_and_an_awaited_vector_gives_the_same_answer(catalogue: Catalogue) -> None:
    queries = _queries(catalogue, 4, seed=17)

    async def body(conn: asyncpg.Connection) -> list[tuple[SearchResult, SearchResult]]:
        vectors = VectorCache()
        await vectors.load(conn)
        keyword_conn = await connect(catalogue.url)
        try:
            pairs = []
            for text, q in zip(["oat milk", "oat mlik", "5411188112709", "something else"], queries, strict=True):
                params = _near_center(q=text, limit=10)

                async def embedded_later(q: np.ndarray = q) -> np.ndarray:  # the API's embedding still running
                    await asyncio.sleep(0.02)
                    return q

                one = await search(conn, params, q, vectors=vectors)
                async with keyword_conn.transaction(readonly=True):
                    two = await search(conn, params, embedded_later(), vectors=vectors, keyword_conn=keyword_conn)
                pairs.append((one, two))
            return pairs
        finally:
            await keyword_conn.close()

    for one, two in with_conn(catalogue.url, body):
        assert one.results and [h.product.id for h in one.results] == [h.product.id for h in two.results]
        assert [h.score for h in one.results] == [h.score for h in two.results]
        assert one.strategy == two.strategy


def test_every_mode_answers_the_same_with_the_radius_probed(catalogue: Catalogue) -> None:
    """Keyword, hybrid and semantic pages, their stores and totals: the statements given the radius to probe
    (store_scope_near) answer what they answer given the list of the stores in it."""
    queries = _queries(catalogue, 3, seed=23)

    async def body(conn: asyncpg.Connection) -> list[tuple[SearchResult, SearchResult]]:
        vectors, listed, probing = await vectors_for(conn, "located"), StoreLocator(), RadiusProbing()
        await listed.load(conn)
        await probing.load(conn)
        pairs = []
        for radius in (2_000.0, 5_000.0, 20_000.0):
            for mode, text, q in zip(("keyword", "hybrid", "semantic"), ("oat milk", "milk", ""), queries, strict=True):
                params = _near_center(q=text, limit=10, radius_m=radius, mode=mode)
                vector = None if mode == "keyword" else q
                pairs.append(
                    (
                        await search(conn, params, vector, vectors=vectors, stores=listed),
                        await search(conn, params, vector, vectors=vectors, stores=probing),
                    )
                )
        return pairs

    pairs = with_conn(catalogue.url, body)
    assert sum(1 for one, _ in pairs if one.results) >= 6
    for one, two in pairs:
        assert [(h.product.id, h.score, h.stores) for h in one.results] == [
            (h.product.id, h.score, h.stores) for h in two.results
        ]
        assert (one.total_candidates, one.strategy) == (two.total_candidates, two.strategy)


class _Recording(asyncpg.Connection):
    """A connection that records the statements it is asked to run without parameters (BEGIN, SET, COMMIT)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.executed: list[str] = []

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        if not args:
            self.executed.append(query)
        return await super().execute(query, *args, timeout=timeout)


def test_connections_that_carry_the_settings_search_without_a_transaction(catalogue: Catalogue) -> None:
    """As the API's pool connections: the engine's settings at connect, then no BEGIN / SET / COMMIT per search,
    and the same answers (the typo path needs pg_trgm's threshold, the plans force_custom_plan)."""
    queries = _queries(catalogue, 3, seed=23)
    carrying = replace(DEFAULT_CONFIG, statement_timeout_ms=5000, connection_has_settings=True)

    async def body() -> list[tuple[SearchResult, SearchResult, list[str]]]:
        settings = session_settings(carrying)
        main = await asyncpg.connect(catalogue.url, server_settings=settings, connection_class=_Recording)
        spare = await asyncpg.connect(catalogue.url, server_settings=settings, connection_class=_Recording)
        plain = await connect(catalogue.url)
        try:
            for c in (main, spare):
                await register_vector(c)
            assert await main.fetchval("SHOW pg_trgm.similarity_threshold") == "0.3"
            assert await spare.fetchval("SHOW statement_timeout") == "5s"
            out = []
            for text, q in zip(["oat milk", "oat mlik", "something else"], queries, strict=True):
                params = _near_center(q=text, limit=10)
                main.executed.clear()
                spare.executed.clear()
                got = await search(main, params, q, carrying, keyword_conn=spare)
                want = await search(plain, params, q)
                out.append((got, want, main.executed + spare.executed))
            return out
        finally:
            for c in (main, spare, plain):
                await c.close()

    for got, want, executed in run(body()):
        assert executed == [], executed
        assert got.results and [h.product.id for h in got.results] == [h.product.id for h in want.results]
        assert got.strategy == want.strategy


def test_brand_filter_applies_in_every_mode_and_plan(catalogue: Catalogue) -> None:
    """`brand` (case-insensitive exact match) filters every mode, every vector plan and similar(); the vector
    plans still return the true top-k of the products of that brand."""
    t = catalogue.truth
    q = _queries(catalogue, 1, seed=11)[0]
    base = SearchParams(q="synthetic product", lat=CENTER[0], lon=CENTER[1], radius_m=20_000, limit=10)
    wanted = replace(base, brand="BRAND7")

    async def body(conn: asyncpg.Connection) -> tuple[dict[str, SearchResult], dict[uuid.UUID, str | None]]:
        brands = {r["id"]: r["brand"] for r in await conn.fetch("SELECT id, brand FROM product_master")}
        out = {mode: await search(conn, replace(wanted, mode=mode), q) for mode in ("semantic", "keyword", "hybrid")}
        for plan in ("exact", "hnsw", "scan", "gather"):
            vectors = await vectors_for(conn, plan)
            out[plan] = await search(conn, replace(wanted, mode="semantic"), q, PLANS[plan], vectors=vectors)
        out["unfiltered"] = await search(conn, replace(base, mode="hybrid"), q)
        anchor = out["semantic"].results[0].product.id
        out["similar"] = await similar(conn, anchor, wanted)
        return out, brands

    out, brands = with_conn(catalogue.url, body)
    unfiltered = {brands[h.product.id] for h in out.pop("unfiltered").results}
    assert len(unfiltered) > 1  # without the filter other brands rank too: the filter has something to remove
    for name, result in out.items():
        assert result.results, name
        assert {str(brands[h.product.id]).lower() for h in result.results} == {"brand7"}, name
        assert {h.product.brand for h in result.results} == {"brand7"}, name
    of_brand = np.array([brands[pid] == "brand7" for pid in t.product_ids])
    qual = t.qualifying(wanted) & t.has_vector & of_brand
    idx = np.nonzero(qual)[0]
    dist = 1.0 - t.vectors[idx] @ q.astype(np.float64) / np.linalg.norm(q)
    want = [(t.product_ids[idx[i]], float(dist[i])) for i in np.argsort(dist, kind="stable")[:10]]
    for plan in ("semantic", "exact", "hnsw", "scan", "gather"):
        _assert_same_ranking(out[plan], want, f"brand filter, {plan} plan ({out[plan].strategy})")
    anchor = out["semantic"].results[0].product.id
    assert anchor not in {h.product.id for h in out["similar"].results}


def test_the_facet_sets_rescoring_plans_no_nested_loop_under_stale_statistics(fresh_db_url: str) -> None:
    """Statistics taken before the vectors were written (null_frac 1: `make run`'s seed, an import, then the worker)
    made `product_similarity` a products x ids nested loop past ~480 ids: 150 ms at 5k products, a 503 at 100k."""
    stmt = statement("engine/search", "product_similarity")
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        register_vector_psycopg(conn)
        conn.execute("INSERT INTO product_master (name) SELECT 'p' || n FROM generate_series(1, 3000) AS n")
        conn.execute("ANALYZE product_master")  # no vector yet: null_frac 1
        vecs = random_unit_vectors(1, np.random.default_rng(9))
        conn.execute("UPDATE product_master SET ai_vector = %s", (vecs[0],))
        ids = [r[0] for r in conn.execute("SELECT id FROM product_master LIMIT 1000").fetchall()]
        params = {"ids": ids, "query_vector": vecs[0]}
        plan = conn.execute("EXPLAIN (FORMAT JSON) " + stmt.psycopg, params).fetchone()
        rows = conn.execute(stmt.psycopg, params).fetchall()
    assert "Nested Loop" not in json.dumps(plan), plan
    assert len(rows) == 1000 and all(abs(r[1] - 1.0) < 1e-6 for r in rows)
