"""The API's in-memory vector copy (search_service.engine.vectors) and the exact scan that uses it, against a real
PostgreSQL: the change stamp kept by the trigger of migration 0002, answers that stay exact while the copy is
behind the database, the refresh (including a transaction that commits after the copy moved past its stamp),
and the API's readiness and fall-back when the copy is turned off or too large."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
import pytest
from litestar.testing import TestClient
from pgvector.psycopg import register_vector as register_vector_psycopg

from embeddings.encoder import Encoder
from search_service.api import readiness
from search_service.api.app import create_app
from search_service.demo.synthetic import SyntheticSpec, random_unit_vectors, seed_synthetic
from search_service.engine.search import DEFAULT_CONFIG, SearchParams, SearchResult, search
from search_service.engine.vector_load import load_all
from search_service.engine.vector_view import CopyView
from search_service.engine.vectors import Ranking, VectorCache, highest
from tests.test_api import READY_TIMEOUT_S, app_settings, load_test_encoder
from tests.test_search_engine import connect, run

SCAN = replace(DEFAULT_CONFIG, force="scan", scan_fallback=False)
GATHER = replace(DEFAULT_CONFIG, force="gather")
COPY_PLANS = {"scan": (SCAN, "exact_scan"), "gather": (GATHER, "exact_gather")}
POINT = (52.52, 13.405)
N_PRODUCTS = 300


def seed(url: str, n: int = N_PRODUCTS) -> tuple[list[uuid.UUID], uuid.UUID, np.ndarray]:
    """n products with random unit vectors, all listed in stock at one store at POINT."""
    vecs = random_unit_vectors(n, np.random.default_rng(3))
    with psycopg.connect(url) as conn:
        register_vector_psycopg(conn)
        store = conn.execute(
            "INSERT INTO store (name, location) VALUES ('Corner shop', ST_SetSRID(ST_MakePoint(%s, %s), 4326))"
            " RETURNING id",
            (POINT[1], POINT[0]),
        ).fetchone()
        assert store is not None
        ids = []
        for i, v in enumerate(vecs):
            row = conn.execute(
                "INSERT INTO product_master (name, ai_vector) VALUES (%s, %s) RETURNING id", (f"Item {i}", v)
            ).fetchone()
            assert row is not None
            ids.append(row[0])
        conn.execute(
            "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity)"
            " SELECT %s, id, 1.50, 'EUR', 4 FROM product_master",
            (store[0],),
        )
        conn.execute("ANALYZE product_master, store_product, store")  # the plan choice reads the statistics
    return ids, store[0], vecs


def add_product(url: str, name: str, vector: np.ndarray, store: uuid.UUID) -> uuid.UUID:
    with psycopg.connect(url) as conn:
        register_vector_psycopg(conn)
        row = conn.execute(
            "INSERT INTO product_master (name, ai_vector) VALUES (%s, %s) RETURNING id", (name, vector)
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity)"
            " VALUES (%s, %s, %s, 'EUR', 3)",
            (store, row[0], Decimal("2.00")),
        )
        return uuid.UUID(str(row[0]))


def set_vector(url: str, product: uuid.UUID, vector: np.ndarray) -> None:
    with psycopg.connect(url) as conn:
        register_vector_psycopg(conn)
        conn.execute("UPDATE product_master SET ai_vector = %s WHERE id = %s", (vector, product))


def nearby(limit: int = 5) -> SearchParams:
    return SearchParams(q="", lat=POINT[0], lon=POINT[1], radius_m=1000, limit=limit, mode="semantic")


def ids(result: SearchResult) -> list[uuid.UUID]:
    return [h.product.id for h in result.results]


def exact_top(url: str, q: np.ndarray, k: int) -> list[uuid.UUID]:
    """The truth: PostgreSQL's own exact distances over every listed, active product with a vector."""
    with psycopg.connect(url) as conn:
        register_vector_psycopg(conn)
        rows = conn.execute(
            "SELECT p.id FROM product_master p WHERE p.is_active AND p.ai_vector IS NOT NULL"
            " AND EXISTS (SELECT 1 FROM store_product sp WHERE sp.product_master_id = p.id AND sp.quantity > 0)"
            " ORDER BY cosine_distance(p.ai_vector, %s), p.id LIMIT %s",
            (q, k),
        ).fetchall()
    return [r[0] for r in rows]


def test_every_vector_change_moves_the_stamp(fresh_db_url: str) -> None:
    vec = random_unit_vectors(2, np.random.default_rng(1))
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        register_vector_psycopg(conn)
        pid = conn.execute(
            "INSERT INTO product_master (name, ai_vector, ai_embedded_at) VALUES ('Kettle', %s, '2001-01-01')"
            " RETURNING id",
            (vec[0],),
        ).fetchone()[0]  # type: ignore[index]

        def stamp() -> dt.datetime | None:
            return conn.execute("SELECT ai_embedded_at FROM product_master WHERE id = %s", (pid,)).fetchone()[0]  # type: ignore[index]

        first = stamp()
        assert first is not None and first.year > 2001  # the writer's stamp is replaced by the trigger's
        conn.execute("UPDATE product_master SET name = 'Electric kettle' WHERE id = %s", (pid,))
        assert stamp() == first  # not a vector change
        conn.execute("UPDATE product_master SET ai_vector = ai_vector WHERE id = %s", (pid,))
        assert stamp() == first  # the same vector: no change either
        conn.execute("UPDATE product_master SET ai_vector = %s WHERE id = %s", (vec[1], pid))
        second = stamp()
        assert second is not None and second > first
        conn.execute("UPDATE product_master SET ai_vector = NULL WHERE id = %s", (pid,))
        assert stamp() is None
        bare = conn.execute("INSERT INTO product_master (name) VALUES ('Toaster') RETURNING ai_embedded_at").fetchone()
        assert bare == (None,)


@pytest.mark.parametrize("plan", list(COPY_PLANS))
def test_plans_on_the_copy_are_exact_while_it_is_behind_and_after_refresh(fresh_db_url: str, plan: str) -> None:
    config, strategy = COPY_PLANS[plan]
    product_ids, store, vecs = seed(fresh_db_url)
    rng = np.random.default_rng(8)
    q = random_unit_vectors(1, rng)[0]

    async def body() -> None:
        conn = await connect(fresh_db_url)
        try:
            vectors = VectorCache()
            assert await vectors.load(conn) == N_PRODUCTS
            before = ids(await search(conn, nearby(), q, config, vectors))
            assert before == exact_top(fresh_db_url, q, 5)

            # After the copy was taken: one vector moves next to the query, a new product lands on it,
            # the old best is deactivated and the second best deleted.
            moved = product_ids[-1]
            set_vector(fresh_db_url, moved, (q + 0.05 * vecs[-1]) / np.linalg.norm(q + 0.05 * vecs[-1]))
            new = add_product(fresh_db_url, "Brand new", q, store)
            with psycopg.connect(fresh_db_url, autocommit=True) as pg:
                pg.execute("UPDATE product_master SET is_active = false WHERE id = %s", (before[0],))
                pg.execute("DELETE FROM product_master WHERE id = %s", (before[1],))
            want = exact_top(fresh_db_url, q, 5)
            assert want[:2] == [new, moved]

            got = await search(conn, nearby(), q, config, vectors)
            assert got.strategy == strategy
            assert ids(got) == want  # exact before the copy has seen any of it
            assert len(vectors) == N_PRODUCTS

            watermark = vectors.watermark
            assert await vectors.refresh(conn) == 2  # the moved vector and the new one, nothing else
            assert len(vectors) == N_PRODUCTS + 1
            assert vectors.watermark is not None and watermark is not None and vectors.watermark > watermark
            assert await vectors.refresh(conn) == 0
            assert ids(await search(conn, nearby(), q, config, vectors)) == want
            glob = await search(conn, SearchParams(q="", limit=5, mode="semantic"), q, config, vectors)
            assert glob.strategy == f"global_{strategy}" and ids(glob) == want
        finally:
            await conn.close()

    run(body())


def _role_url(url: str, role: str) -> str:
    """`url` with another user (the test cluster trusts local connections)."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"


@pytest.fixture
def reader_url(fresh_db_url: str) -> Any:
    """A role that may read the catalogue but not see other roles' sessions (no pg_read_all_stats)."""
    role = f"plinqy_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT SELECT ON product_master TO {role}")
    try:
        yield _role_url(fresh_db_url, role)
    finally:
        with psycopg.connect(fresh_db_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


async def _late_commit(url: str, reader: str, plan: str) -> VectorCache:
    """A writer stamps a row (the trigger: clock_timestamp() at the write), another writer stamps a later row
    and commits, the copy refreshes, and only then does the first commit: its row lands below the watermark.
    The copy must pick it up on its next refresh."""
    product_ids, _store, _vecs = seed(url, 50)
    q = random_unit_vectors(1, np.random.default_rng(11))[0]
    config = COPY_PLANS[plan][0]
    late, other = product_ids[7], product_ids[8]
    conn, reading = await connect(url), await connect(reader)
    try:
        vectors = VectorCache()
        await vectors.load(reading)
        with psycopg.connect(url) as slow, psycopg.connect(url, autocommit=True) as quick:
            register_vector_psycopg(slow)
            register_vector_psycopg(quick)
            slow.execute("UPDATE product_master SET ai_vector = %s WHERE id = %s", (q, late))
            quick.execute(
                "UPDATE product_master SET ai_vector = %s WHERE id = %s",
                (random_unit_vectors(1, np.random.default_rng(12))[0], other),
            )
            assert await vectors.refresh(reading) == 1  # the quick writer's row; the slow one is not committed
            slow.commit()
            stamp = slow.execute("SELECT ai_embedded_at FROM product_master WHERE id = %s", (late,)).fetchone()
            assert stamp is not None and vectors.watermark is not None and stamp[0] < vectors.watermark
        # the documented window: the search checks stamps above the watermark only
        assert ids(await search(conn, nearby(1), q, config, vectors)) != [late]
        assert await vectors.refresh(reading) == 1
        assert ids(await search(conn, nearby(1), q, config, vectors)) == [late]
        return vectors
    finally:
        await conn.close()
        await reading.close()


@pytest.mark.parametrize("plan", list(COPY_PLANS))
def test_refresh_catches_a_commit_that_lands_behind_the_watermark(fresh_db_url: str, plan: str) -> None:
    """The refresh after the late commit reads from the write horizon taken before the previous one (the slow
    writer's start): the two rows written since, not the 50 stamped in the seconds before."""
    vectors = run(_late_commit(fresh_db_url, fresh_db_url, plan))
    assert vectors.last_refresh_stamps == 2
    assert vectors.write_horizon_known


def test_without_the_horizon_the_refresh_looks_back_a_margin(reader_url: str, fresh_db_url: str) -> None:
    """A role that cannot see the writers' sessions cannot know the horizon: the refresh re-reads the stamps
    of the last `margin` seconds (the 50 seeded rows too), which also catches the late commit."""
    vectors = run(_late_commit(fresh_db_url, reader_url, "scan"))
    assert vectors.last_refresh_stamps >= 50
    assert not vectors.write_horizon_known


def test_a_refresh_reads_only_the_stamps_since_its_horizon(fresh_db_url: str) -> None:
    """With no writer open, the next refresh reads nothing it has already seen, where a fixed look-back
    re-reads every vector stamped within it (during a bulk re-embed: all of the last minute's, every second)."""
    product_ids, _store, vecs = seed(fresh_db_url, 60)

    async def body() -> None:
        conn = await connect(fresh_db_url)
        try:
            vectors = VectorCache(margin_s=60)
            await vectors.load(conn)
            with psycopg.connect(fresh_db_url, autocommit=True) as pg:
                register_vector_psycopg(pg)
                for pid, v in zip(product_ids[:40], vecs[20:60], strict=True):
                    pg.execute("UPDATE product_master SET ai_vector = %s WHERE id = %s", (v, pid))
            assert await vectors.refresh(conn) == 40
            assert vectors.last_refresh_stamps == 40
            assert await vectors.refresh(conn) == 0
            assert vectors.last_refresh_stamps == 0
            set_vector(fresh_db_url, product_ids[50], vecs[0])
            assert await vectors.refresh(conn) == 1
            assert vectors.last_refresh_stamps == 1
        finally:
            await conn.close()

    run(body())


def test_a_session_left_open_after_a_write_does_not_hold_the_refresh_back(fresh_db_url: str) -> None:
    """Its start is the write horizon for as long as it stays open; the refresh still reads no further back
    than `margin` before its watermark, so its cost does not pile up behind that session."""
    product_ids, _store, vecs = seed(fresh_db_url, 30)

    async def body() -> None:
        conn = await connect(fresh_db_url)
        try:
            with psycopg.connect(fresh_db_url) as idle, psycopg.connect(fresh_db_url, autocommit=True) as pg:
                register_vector_psycopg(pg)
                idle.execute("UPDATE product_master SET name = name WHERE id = %s", (product_ids[0],))  # an xid
                vectors = VectorCache(margin_s=0.5)
                await vectors.load(conn)
                for pid, v in zip(product_ids[1:11], vecs[11:21], strict=True):
                    pg.execute("UPDATE product_master SET ai_vector = %s WHERE id = %s", (v, pid))
                time.sleep(1.0)
                pg.execute("UPDATE product_master SET ai_vector = %s WHERE id = %s", (vecs[0], product_ids[20]))
                assert await vectors.refresh(conn) == 11
                assert await vectors.refresh(conn) == 0
                assert vectors.last_refresh_stamps == 1  # the last 0.5 s before the watermark, not all 11
                idle.rollback()
        finally:
            await conn.close()

    run(body())


def test_scan_walks_further_when_the_filter_is_selective(fresh_db_url: str) -> None:
    """Most of the best-scored products are not sold nearby: the scan must keep going, not come back short."""
    product_ids, _store, vecs = seed(fresh_db_url)
    q = vecs[0]
    with psycopg.connect(fresh_db_url, autocommit=True) as pg:  # only every 25th product stays in stock
        pg.execute(
            "UPDATE store_product SET quantity = 0 WHERE product_master_id <> ALL(%s)",
            ([p for i, p in enumerate(product_ids) if i % 25 == 0],),
        )

    async def body() -> SearchResult:
        conn = await connect(fresh_db_url)
        try:
            vectors = VectorCache()
            await vectors.load(conn)
            return await search(conn, nearby(10), q, SCAN, vectors)
        finally:
            await conn.close()

    got = run(body())
    assert ids(got) == exact_top(fresh_db_url, q, 10)
    assert len(got.results) == 10


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_test_encoder()


def wait_ready(client: TestClient[Any]) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        body: dict[str, Any] = client.get("/readyz").json()
        if body["status"] == "ready" or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("overrides", "state"),
    [({}, "ok"), ({"vector_cache_max": 0}, "disabled"), ({"vector_cache_max": 100}, "disabled")],
)
def test_api_uses_the_copy_unless_it_is_off_or_too_large(
    fresh_db_url: str, encoder: Encoder, overrides: dict[str, Any], state: str
) -> None:
    seed(fresh_db_url, 600)  # enough products for the scan to beat enumerating them all in SQL
    app = create_app(app_settings(fresh_db_url, vector_cache_refresh_s=0.1, **overrides), encoder=encoder)
    with TestClient(app, timeout=60) as client:
        ready = wait_ready(client)
        assert ready["status"] == "ready", ready
        assert ready["checks"]["vectors"] == state
        body = client.get("/v1/search", params={"q": "anything at all", "mode": "semantic", "limit": 5}).json()
        assert len(body["results"]) == 5
        if state == "ok":  # a plan that ranks in memory
            assert body["strategy"] in ("global_exact_scan", "global_exact_gather"), body["strategy"]
        else:
            assert "scan" not in body["strategy"] and "gather" not in body["strategy"], body["strategy"]


def test_readyz_reads_the_vector_copys_state_once(
    fresh_db_url: str, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the copy finishing its load while readyz awaited its key check answered `ready` beside `vectors: loading`
    seed(fresh_db_url, 50)
    app = create_app(app_settings(fresh_db_url), encoder=encoder)
    with TestClient(app, timeout=60) as client:
        assert wait_ready(client)["status"] == "ready"
        runtime = app.state["runtime"]
        key_check = readiness._key_check

        async def copy_loads_meanwhile(rt: Any, reasons: list[str], migrated: bool, deadline: float | None) -> str:
            rt.vectors_state = "ok"
            return await key_check(rt, reasons, migrated, deadline)

        runtime.vectors_state = "loading"
        monkeypatch.setattr(readiness, "_key_check", copy_loads_meanwhile)
        body = client.get("/readyz").json()
        assert (body["status"], body["checks"]["vectors"]) == ("not ready", "loading"), body


def test_concurrent_queries_are_batched_and_ranked_exactly(fresh_db_url: str) -> None:
    seed(fresh_db_url, 200)
    queries = random_unit_vectors(12, np.random.default_rng(21))

    async def body() -> tuple[VectorCache, list[Ranking]]:
        conn = await connect(fresh_db_url)
        try:
            vectors = VectorCache()
            await vectors.load(conn)
        finally:
            await conn.close()
        got = await asyncio.gather(*(vectors.rank_batched(q) for q in queries))
        with pytest.raises(ValueError):  # a malformed query fails its own caller, and the batcher lives on
            await vectors.rank_batched(np.ones(7, dtype=np.float32))
        got.append(await vectors.rank_batched(queries[0]))
        return vectors, got

    vectors, got = run(body())
    matrix = np.array(vectors._matrix)
    for q, ranking in zip([*queries, queries[0]], got, strict=True):
        rows, threshold = ranking.top(10)
        want = np.sort(matrix @ q)[::-1]
        np.testing.assert_allclose(matrix[rows] @ q, want[:10], rtol=0, atol=1e-6)  # the true top 10, best first
        assert threshold == pytest.approx(want[9], abs=1e-6)
        rows, threshold = ranking.top(len(vectors))
        assert sorted(rows.tolist()) == list(range(len(vectors))) and threshold == -np.inf  # every row, once
    assert vectors.batcher.items == len(queries) + 1
    assert vectors.batcher.batches < len(queries)  # the first query ran alone, the rest waited and went together


def test_the_vector_copy_holds_blas_to_one_thread() -> None:
    # Its matrix-vector products are memory-bound: extra OpenBLAS threads only busy-wait, at 2-3x the CPU.
    from threadpoolctl import threadpool_info

    VectorCache()
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == 1 for pool in blas)


def _bounds_of_shape(shape: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if shape == "spread":
        return rng.standard_normal(n)
    if shape == "ties":
        return rng.integers(0, 4, n).astype(np.float64)
    if shape == "sorted":
        return np.sort(rng.standard_normal(n))
    return np.where(np.arange(n) == n // 2, 1.0, 0.0)  # one peak, which the sample does not see


@pytest.mark.parametrize("shape", ["spread", "ties", "sorted", "one_peak"])
def test_highest_gives_the_top_m_and_the_highest_bound_left_out(shape: str) -> None:
    """The sampled-threshold selection answers as a full argpartition does, ties and skewed samples included."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(2, 20_000))
        m = int(rng.integers(1, n))
        bounds = _bounds_of_shape(shape, n, rng).astype(np.float32)
        positions, limit = highest(bounds, m)
        assert len(positions) == m and len(np.unique(positions)) == m
        left_out = np.setdiff1d(np.arange(n), positions)
        assert float(bounds[left_out].max()) == limit
        assert float(bounds[positions].min()) >= limit
        assert np.array_equal(np.sort(bounds[positions]), np.sort(bounds)[n - m :])


def test_the_binary_load_holds_every_vector_with_its_stamp(fresh_db_url: str) -> None:
    """The full load (one binary COPY decoded by numpy, vector_load.py): the vectors and ids PostgreSQL holds,
    the stamps to the microsecond, a NULL stamp (a bulk load with triggers off) as none, over several batches."""
    seed_synthetic(fresh_db_url, SyntheticSpec(products=700, stores=5, listings=900, seed=4))
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        register_vector_psycopg(conn)
        stamped = conn.execute(
            "UPDATE product_master SET ai_vector = %s"
            " WHERE id = (SELECT id FROM product_master ORDER BY id LIMIT 1) RETURNING id, ai_embedded_at",
            (random_unit_vectors(1, np.random.default_rng(9))[0],),
        ).fetchone()
        assert stamped is not None and stamped[1] is not None
        rows = conn.execute("SELECT id, ai_vector FROM product_master").fetchall()

    async def body() -> VectorCache:
        conn = await connect(fresh_db_url)
        try:
            cache = VectorCache()
            assert await cache.load(conn, batch=64) == 700
            async with conn.transaction():  # the API's statement_timeout does not bound the load's one COPY
                await conn.execute("SET LOCAL statement_timeout = 1")  # 1 ms (1M vectors: 1.5 GB in ~10 s)
                view = CopyView(
                    np.zeros((0, 384), np.float32), np.zeros((0, 2), np.uint64), np.zeros(0, np.int64), None
                )
                assert await load_all(conn, view, 384, 64) == 700 == view.n
            return cache
        finally:
            await conn.close()

    cache = run(body())
    assert cache.watermark == stamped[1]
    want = {r[0]: np.asarray(r[1].to_numpy(), dtype=np.float32) for r in rows}
    held = dict(zip(cache.ids_of(np.arange(len(cache))), cache._matrix, strict=True))
    assert held.keys() == want.keys()
    for pid, vec in want.items():
        np.testing.assert_allclose(held[pid], vec / np.linalg.norm(vec), atol=1e-6)
    stamps = dict(zip(cache.ids_of(np.arange(len(cache))), cache._view.stamp[: len(cache)], strict=True))
    assert stamps[stamped[0]] == (stamped[1] - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    assert sum(s == np.iinfo(np.int64).min for s in stamps.values()) == 699
