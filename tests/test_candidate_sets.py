"""The in-memory candidate sets (engine/candidates.py): exact after every listing change, in the engine and over HTTP.

A stock change is visible to the very next search: the sets apply the change log in the search's own first
statement. The hard case is a transaction that logged its change before a later one committed, and commits after
the sets moved past it: its rows carry a lower number than the sets' snapshot, and only its transaction id
(in progress in that snapshot) brings them in.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import numpy as np
import psycopg
import pytest
from pgvector.asyncpg import register_vector

from embeddings.encoder import Encoder
from search_service.api.shared_state import load_shared_state
from search_service.engine import candidates as candidates_module
from search_service.engine import facet_stock as facet_stock_module
from search_service.engine import keyword as keyword_module
from search_service.engine import search as engine_search
from search_service.engine.candidates import CandidateSets, Snapshot
from search_service.engine.facet_stock import StockBuckets
from search_service.engine.search import DEFAULT_CONFIG, SearchParams, SearchResult, search
from search_service.engine.vectors import VectorCache
from tests.ingest_helpers import serve
from tests.test_api import AT_CENTER, CENTER, Seeded, app_settings, load_test_encoder, seed_catalogue

GATHER = replace(DEFAULT_CONFIG, force="gather")


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_test_encoder()


@pytest.fixture(scope="module")
def seeded(db_url: str, encoder: Encoder) -> Seeded:
    return seed_catalogue(db_url, encoder)


def set_quantity(url: str, seeded: Seeded, product: str, store: str, quantity: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        updated = conn.execute(
            "UPDATE store_product SET quantity = %s WHERE product_master_id = %s AND store_id = %s",
            (quantity, seeded.products[product], seeded.stores[store]),
        ).rowcount
        assert updated == 1


def sets_by_store(sets: CandidateSets) -> dict[uuid.UUID, set[bytes]]:
    """Each store's products as id bytes (ordinals differ between two builds)."""
    raw = sets.keys[: sets.n].astype(">u8").tobytes()
    return {
        store: {raw[16 * o : 16 * o + 16] for o in bitmap}
        for store, bitmap in sets.stores.items()
        if len(bitmap)  # a store whose last listing went is an empty set in one and absent in the other
    }


def test_snapshot_covers_follows_visibility() -> None:
    older = Snapshot(seq=10, xmax=100, xip=(95, 97))
    assert older.covers(older)
    assert Snapshot(seq=12, xmax=100, xip=(97,)).covers(older)  # 95 committed since
    assert not older.covers(Snapshot(seq=12, xmax=100, xip=(97,)))
    assert Snapshot(seq=12, xmax=120, xip=(97, 110)).covers(older)  # 110 started after `older`
    assert not Snapshot(seq=12, xmax=120, xip=(96,)).covers(older)  # 96 was committed in `older`
    assert not Snapshot(seq=9, xmax=99, xip=()).covers(older)


class Engine:
    """The engine on one connection, with the vector copy (and its candidate sets) loaded."""

    def __init__(self, url: str, encoder: Encoder, candidates: CandidateSets | None = None) -> None:
        self.url, self.encoder, self.candidates = url, encoder, candidates

    async def start(self) -> None:
        self.conn = await asyncpg.connect(self.url)
        await register_vector(self.conn)
        self.vectors = VectorCache()
        if self.candidates is not None:  # loaded already, as a forked worker takes its supervisor's over
            self.vectors.candidates = self.candidates
        await self.vectors.load(self.conn)
        self.query = np.asarray(self.encoder.encode(["rice cakes snack"])[0], dtype=np.float32)

    async def ids(self, **params: Any) -> tuple[list[uuid.UUID], SearchResult]:
        base = SearchParams(q="", lat=CENTER[0], lon=CENTER[1], radius_m=3000.0, limit=50, mode="semantic")
        got = await search(self.conn, replace(base, **params), self.query, GATHER, self.vectors)
        return [hit.product.id for hit in got.results], got


def test_a_stock_change_reaches_the_very_next_search(db_url: str, seeded: Seeded, encoder: Encoder) -> None:
    pasta, bananas = seeded.products["pasta"], seeded.products["bananas"]

    async def body() -> None:
        engine = Engine(db_url, encoder)
        await engine.start()
        ids, got = await engine.ids()
        assert pasta in ids and got.strategy == "exact_gather", got.strategy
        count = got.total_candidates
        set_quantity(db_url, seeded, "pasta", "near", 0)
        ids, got = await engine.ids()
        assert pasta not in ids and got.total_candidates == count - 1
        set_quantity(db_url, seeded, "pasta", "near", 3)
        ids, got = await engine.ids()
        assert pasta in ids and got.total_candidates == count
        # A writer that logs first and commits last: the sets pass its number meanwhile.
        with psycopg.connect(db_url) as late, psycopg.connect(db_url, autocommit=True) as early:
            late.execute(
                "UPDATE store_product SET quantity = 0 WHERE product_master_id = %s AND store_id = %s",
                (bananas, seeded.stores["near"]),
            )
            assert bananas in (await engine.ids())[0]  # not committed yet
            early.execute(
                "UPDATE store_product SET quantity = 0 WHERE product_master_id = %s AND store_id = %s",
                (pasta, seeded.stores["near"]),
            )
            ids, _ = await engine.ids()
            assert pasta not in ids and bananas in ids
            late.commit()
            ids, _ = await engine.ids()
            assert bananas not in ids, "a change committed after the sets passed its number was missed"
        fresh = CandidateSets()
        await fresh.load(engine.conn)
        assert sets_by_store(fresh) == sets_by_store(engine.vectors.candidates)
        set_quantity(db_url, seeded, "pasta", "near", 3)
        set_quantity(db_url, seeded, "bananas", "near", 10)
        ids, _ = await engine.ids()
        assert pasta in ids and bananas in ids
        await engine.conn.close()

    asyncio.run(body())


def test_a_stock_change_reaches_the_keyword_side_ranked_in_scope(
    db_url: str, seeded: Seeded, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A word ranked in scope (keyword_cap 1: every word with a match is handed back) is kept by the sets as of
    the search: the stock change is in the very next keyword search, as in the vector side's."""
    pasta, kept = seeded.products["pasta"], []
    real = keyword_module.kept_in_scope
    monkeypatch.setattr(keyword_module, "kept_in_scope", lambda *a: kept.append(1) or real(*a))
    config = replace(DEFAULT_CONFIG, keyword_cap=1)
    params = SearchParams(q="pasta", lat=CENTER[0], lon=CENTER[1], radius_m=3000.0, limit=50, mode="keyword")

    async def body() -> list[bool]:
        engine = Engine(db_url, encoder)
        await engine.start()
        seen = []
        try:
            for quantity in (None, 0, 3):
                if quantity is not None:
                    set_quantity(db_url, seeded, "pasta", "near", quantity)
                got = await search(engine.conn, params, None, config, engine.vectors)
                seen.append(pasta in [hit.product.id for hit in got.results])
        finally:
            await engine.conn.close()
        return seen

    assert asyncio.run(body()) == [True, False, True]
    assert len(kept) == 3  # each search ranked in scope


def test_sets_loaded_before_a_fork_stay_exact_in_each_worker(db_url: str, seeded: Seeded, encoder: Encoder) -> None:
    """`serve --workers N`: the supervisor loads the sets (api/shared_state.py) and each forked worker holds a
    copy of them (here: deep copies). A worker brings its copy up to date instead of rebuilding it, and a change
    made before or after it started is in its very next search."""
    pasta = seeded.products["pasta"]

    async def body() -> None:
        state = await load_shared_state(app_settings(db_url))
        supervisor = state.candidates
        assert supervisor is not None and supervisor.loaded and state.stock is not None and state.stock.loaded
        own = CandidateSets()  # the supervisor builds the sets from the listing buckets' read: the same sets
        conn = await asyncpg.connect(db_url)
        await own.load(conn)
        await conn.close()
        # the same change-log position; the transaction horizon may have moved on (an autovacuum's ANALYZE between
        # the two reads takes a transaction id), so the later read only has to cover the earlier one
        assert sets_by_store(own) == sets_by_store(supervisor) and own.snapshot.seq == supervisor.snapshot.seq
        assert own.snapshot.covers(supervisor.snapshot)
        set_quantity(db_url, seeded, "pasta", "near", 0)  # after the supervisor's snapshot
        workers = [Engine(db_url, encoder, copy.deepcopy(supervisor)) for _ in range(2)]
        for worker in workers:
            await worker.start()
            assert worker.vectors.candidates is worker.candidates  # taken over, not replaced
            ids, got = await worker.ids()
            assert pasta not in ids and got.strategy == "exact_gather", got.strategy
            assert worker.vectors.candidates.applied_changes >= 1  # the change applied: the sets were not rebuilt
        set_quantity(db_url, seeded, "pasta", "near", 3)
        for worker in workers:
            assert pasta in (await worker.ids())[0]
        fresh = CandidateSets()
        await fresh.load(workers[0].conn)
        for worker in workers:
            assert sets_by_store(worker.vectors.candidates) == sets_by_store(fresh)
            await worker.conn.close()

    asyncio.run(body())


def test_listings_added_moved_and_deleted_keep_the_sets_exact(db_url: str, seeded: Seeded, encoder: Encoder) -> None:
    """Many changes of every kind, then the incrementally kept sets against a rebuild; a new product is numbered."""

    async def body() -> None:
        engine = Engine(db_url, encoder)
        await engine.start()
        with psycopg.connect(db_url, autocommit=True) as conn:
            new_product = conn.execute(
                "INSERT INTO product_master (name, ai_vector) SELECT 'Candidate probe', ai_vector FROM product_master "
                "WHERE id = %s RETURNING id",
                (seeded.products["pasta"],),
            ).fetchone()
            assert new_product is not None
            conn.execute(
                "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity) "
                "VALUES (%s, %s, 1.0, 'EUR', 2)",
                (seeded.stores["east49"], new_product[0]),
            )
            conn.execute(
                "UPDATE store_product SET store_id = %s WHERE product_master_id = %s AND store_id = %s",
                (seeded.stores["far"], seeded.products["hammer"], seeded.stores["east49"]),
            )
            conn.execute(
                "UPDATE store_product SET is_active = false WHERE product_master_id = %s", (seeded.products["oat"],)
            )
            conn.execute("DELETE FROM store_product WHERE product_master_id = %s", (seeded.products["washer"],))
        _ids, got = await engine.ids(radius_m=6000.0)
        assert got.strategy == "exact_gather"
        fresh = CandidateSets()
        await fresh.load(engine.conn)
        assert sets_by_store(fresh) == sets_by_store(engine.vectors.candidates)
        assert new_product[0].bytes in sets_by_store(fresh)[seeded.stores["east49"]]
        await engine.conn.close()

    asyncio.run(body())


def test_changes_pruned_before_they_were_read_rebuild_the_sets(db_url: str, seeded: Seeded, encoder: Encoder) -> None:
    pasta = seeded.products["pasta"]

    async def body() -> None:
        engine = Engine(db_url, encoder)
        await engine.start()
        sets = engine.vectors.candidates
        assert pasta in (await engine.ids())[0] and sets.loaded
        set_quantity(db_url, seeded, "pasta", "near", 0)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("SELECT prune_listing_changes(interval '0 seconds')")
        ids, got = await engine.ids()  # the sets fell behind: this search lists its products in SQL
        assert pasta not in ids and got.strategy == "exact_gather" and sets.stale
        await sets.refresh(engine.conn)  # the API's refresh rebuilds them
        assert sets.loaded
        set_quantity(db_url, seeded, "pasta", "near", 3)
        assert pasta in (await engine.ids())[0]
        await engine.conn.close()

    asyncio.run(body())


def test_an_emptied_log_rebuilds_the_sets(db_url: str, seeded: Seeded, encoder: Encoder) -> None:
    """TRUNCATE … RESTART IDENTITY (a reseed) numbers changes from 1 again, below the sets' snapshot."""
    bananas = seeded.products["bananas"]

    async def body() -> None:
        engine = Engine(db_url, encoder)
        await engine.start()
        sets = engine.vectors.candidates
        assert sets.snapshot is not None and sets.snapshot.seq > 0  # the earlier tests logged changes
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("TRUNCATE listing_change, listing_change_pruned RESTART IDENTITY")
        set_quantity(db_url, seeded, "bananas", "near", 0)
        ids, _ = await engine.ids()
        assert bananas not in ids and sets.stale
        await sets.refresh(engine.conn)
        set_quantity(db_url, seeded, "bananas", "near", 10)
        assert bananas in (await engine.ids())[0] and sets.loaded
        await engine.conn.close()

    asyncio.run(body())


class LoopWatch:
    """The longest the event loop went without running a coroutine that asks to run every millisecond."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.task = asyncio.ensure_future(self._tick())

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.gaps.append(now - last)
            last = now

    async def longest(self) -> float:
        await asyncio.sleep(0.01)  # a tick after the last stall records it
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        return max(self.gaps)


def slowed(module: Any, name: str, monkeypatch: pytest.MonkeyPatch, seconds: float = 0.5) -> None:
    build = getattr(module, name)

    def slow(*args: Any) -> Any:
        time.sleep(seconds)
        return build(*args)

    monkeypatch.setattr(module, name, slow)


def test_a_rebuild_leaves_the_event_loop_answering(
    db_url: str, seeded: Seeded, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild's CPU (~2 s at 10M listings, on the event loop before) runs in a thread: made slow on purpose,
    it stops no coroutine, a search meanwhile is answered exactly (in SQL: the sets are stale), and the sets
    swapped in are whole. The listing buckets likewise (they build the sets with theirs at start-up)."""
    slowed(candidates_module, "built_sets", monkeypatch)
    slowed(facet_stock_module, "built_buckets", monkeypatch)
    pasta = seeded.products["pasta"]

    async def body() -> None:
        engine = Engine(db_url, encoder)
        await engine.start()
        sets = engine.vectors.candidates
        set_quantity(db_url, seeded, "pasta", "near", 0)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("SELECT prune_listing_changes(interval '0 seconds')")
        assert pasta not in (await engine.ids())[0] and sets.stale
        set_quantity(db_url, seeded, "pasta", "near", 3)
        watch, second = LoopWatch(), await asyncpg.connect(db_url)
        rebuild = asyncio.ensure_future(sets.refresh(second))
        await asyncio.sleep(0.1)  # the build is under way in its thread
        ids, got = await engine.ids()
        assert not rebuild.done() and sets.stale and pasta in ids and got.strategy == "exact_gather"
        await rebuild
        assert sets.loaded and await watch.longest() < 0.25
        fresh = CandidateSets()
        await fresh.load(second)
        assert sets_by_store(sets) == sets_by_store(fresh) and pasta in (await engine.ids())[0]
        watch, buckets = LoopWatch(), StockBuckets()
        await buckets.load(second, CandidateSets())
        assert buckets.loaded and buckets.n > 0 and await watch.longest() < 0.25
        await second.close()
        await engine.conn.close()

    asyncio.run(body())


@pytest.fixture(scope="module")
def api_url(db_url: str, seeded: Seeded, encoder: Encoder) -> Iterator[str]:
    """The API with the gather plan forced (at this catalogue's size the plan choice takes the SQL exact plan, which
    the sets do not steer), so that its ranking reads the candidate sets."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine_search, "DEFAULT_CONFIG", GATHER)
        with serve(app_settings(db_url), encoder) as url:
            yield url


def test_a_stock_change_reaches_the_next_http_search(api_url: str, db_url: str, seeded: Seeded) -> None:
    def found() -> tuple[list[uuid.UUID], dict[str, Any]]:
        params = {"q": "rice cakes snack", "mode": "semantic", "limit": 50, "radius_m": 3000, **AT_CENTER}
        response = httpx.get(f"{api_url}/v1/search", params=params, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["strategy"] == "exact_gather", body["strategy"]
        return [uuid.UUID(r["product"]["id"]) for r in body["results"]], body

    rice = seeded.products["ricecakes"]
    ids, before = found()
    assert rice not in ids  # quantity 0
    set_quantity(db_url, seeded, "ricecakes", "near", 4)
    ids, body = found()
    assert rice in ids and body["total_candidates"] == before["total_candidates"] + 1
    set_quantity(db_url, seeded, "ricecakes", "near", 0)
    ids, body = found()
    assert rice not in ids and body["total_candidates"] == before["total_candidates"]


def test_a_moved_store_reaches_the_next_http_search(api_url: str, db_url: str, seeded: Seeded) -> None:
    """The API finds the stores in a radius in memory (store_locator.py): a store moved out of the radius and back
    is seen by the very next search (its copy is stale in that search's snapshot: the radius query answers) and
    after the copy reloaded."""

    def pasta_found() -> bool:
        params = {"q": "spaghetti", "mode": "keyword", "radius_m": 3000, **AT_CENTER}
        response = httpx.get(f"{api_url}/v1/search", params=params, timeout=30)
        assert response.status_code == 200, response.text
        return seeded.products["pasta"] in [uuid.UUID(r["product"]["id"]) for r in response.json()["results"]]

    def move(lat: float, lon: float) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE store SET location = ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography WHERE id = %s",
                (lon, lat, seeded.stores["near"]),
            )

    home = seeded.store_points["near"]  # (lat, lon)
    time.sleep(1.5)  # the API's copy of the stores' places is loaded by now
    assert pasta_found()  # sold only at "near"
    try:
        move(home[0] + 0.5, home[1])  # ~55 km north
        assert not pasta_found()
        time.sleep(1.5)  # reloaded
        assert not pasta_found()
    finally:
        move(*home)
    assert pasta_found()


def test_explain_counts_the_products_in_stock_in_scope(api_url: str, db_url: str, seeded: Seeded) -> None:
    """The UX path (explain) reads the changes itself and reports the sets' exact count."""

    def explained() -> dict[str, Any]:
        params = {"q": "rice cakes snack", "mode": "semantic", "radius_m": 3000, "explain": "true", **AT_CENTER}
        response = httpx.get(f"{api_url}/v1/search", params=params, timeout=30)
        assert response.status_code == 200, response.text
        return dict(response.json()["explain"])

    def in_stock_nearby() -> int:
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "SELECT count(DISTINCT sp.product_master_id) FROM store_product sp "
                "JOIN product_master p ON p.id = sp.product_master_id "
                "WHERE sp.store_id = %s AND sp.is_active AND sp.quantity > 0 AND p.ai_vector IS NOT NULL",
                (seeded.stores["near"],),  # the one active store within 3 km
            ).fetchone()
            assert row is not None
            return int(row[0])

    first = explained()
    assert first["plan"] == "exact_gather" and first["candidates"] == in_stock_nearby()
    set_quantity(db_url, seeded, "pasta", "near", 0)
    assert explained()["candidates"] == in_stock_nearby() == first["candidates"] - 1
    set_quantity(db_url, seeded, "pasta", "near", 3)
    assert explained()["candidates"] == first["candidates"]
