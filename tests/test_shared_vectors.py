"""The vector copy shared by the API's processes (search_service.engine.vector_files, VectorCache(shared_dir)):
one generation mapped by several processes (the same file), rankings identical to a private copy's, changes
visible after a refresh, a new generation written once the private rows pile up and taken by the others, and
searches on a shared copy as exact as on a private one."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest
from pyroaring import BitMap

from search_service.db.cluster import pg_bin_dir
from search_service.demo.synthetic import random_unit_vectors
from search_service.engine.candidates import CandidateSets
from search_service.engine.ranking import FLOAT16_ERROR
from search_service.engine.search import search
from search_service.engine.vectors import VectorCache
from tests.test_search_engine import connect, run
from tests.test_vectors import COPY_PLANS, N_PRODUCTS, add_product, exact_top, ids, nearby, seed, set_vector

PROJECT_ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import asyncio, json, os, sys
from pathlib import Path
import numpy as np
from search_service.engine.vectors import VectorCache
from tests.test_search_engine import connect

async def main():
    conn = await connect(sys.argv[1])
    cache = VectorCache(shared_dir=Path(sys.argv[2]))
    await cache.load(conn)
    await conn.close()
    q = np.asarray(json.loads(sys.argv[3]), dtype=np.float32)
    rows, _ = cache.rank(q).top(20)
    print(json.dumps({"inode": os.stat(cache._view.matrix.filename).st_ino, "generation": cache.generation,
                      "top": [str(i) for i in cache.ids_of(rows)]}))

asyncio.run(main())
"""


def top_ids(cache: VectorCache, q: np.ndarray, k: int = 20) -> list[str]:
    rows, _ = cache.rank(q).top(k)
    return [str(i) for i in cache.ids_of(rows)]


def test_two_processes_map_one_generation_and_rank_as_a_private_copy(fresh_db_url: str, tmp_path: Path) -> None:
    seed(fresh_db_url, 400)
    q = random_unit_vectors(1, np.random.default_rng(5))[0]

    async def body() -> tuple[VectorCache, VectorCache]:
        conn = await connect(fresh_db_url)
        try:
            shared, private = VectorCache(shared_dir=tmp_path), VectorCache()
            assert await shared.load(conn) == await private.load(conn) == 400
            return shared, private
        finally:
            await conn.close()

    shared, private = run(body())
    assert shared.generation == 1 and private.generation == 0
    assert shared.private_rows == 0 and private.private_rows == 400
    matrix_file = shared._view.matrix.filename  # type: ignore[attr-defined]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, fresh_db_url, str(tmp_path), json.dumps(q.tolist())],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=120,
        check=True,
    )
    seen = json.loads(child.stdout.strip().splitlines()[-1])
    assert seen["inode"] == os.stat(matrix_file).st_ino and seen["generation"] == 1  # mapped, not loaded again
    assert seen["top"] == top_ids(shared, q)  # the same float16 generation
    assert shared._view.matrix.dtype == np.float16
    for query in [q, *random_unit_vectors(10, np.random.default_rng(6))]:
        assert_float32_order_within_error(top_ids(shared, query, 50), private, query)


def assert_float32_order_within_error(got: list[str], private: VectorCache, q: np.ndarray) -> None:
    """`got` (a float16 copy's top) is the float32 top but for swaps of rows whose float32 similarities lie
    within twice the float16 error of each other."""
    scores = private._matrix @ q
    rows = np.argsort(-scores, kind="stable")
    similarity = dict(zip((str(i) for i in private.ids_of(rows)), scores[rows], strict=True))
    want = [str(i) for i in private.ids_of(rows[: len(got)])]
    slack = 2 * FLOAT16_ERROR
    assert all(similarity[a] >= similarity[b] - slack for a, b in itertools.pairwise(got))
    assert min(similarity[i] for i in got) >= similarity[want[-1]] - slack
    assert sum(a != b for a, b in zip(got, want, strict=True)) <= len(got) // 5  # near-ties only


@pytest.mark.parametrize("plan", list(COPY_PLANS))
def test_searches_on_a_shared_copy_are_exact_before_and_after_refresh(
    fresh_db_url: str, tmp_path: Path, plan: str
) -> None:
    config, strategy = COPY_PLANS[plan]
    product_ids, store, vecs = seed(fresh_db_url)
    q = random_unit_vectors(1, np.random.default_rng(8))[0]

    async def body() -> None:
        conn = await connect(fresh_db_url)
        try:
            first, second = VectorCache(shared_dir=tmp_path), VectorCache(shared_dir=tmp_path)
            await first.load(conn)
            await second.load(conn)
            assert first.generation == second.generation == 1
            moved = product_ids[-1]
            set_vector(fresh_db_url, moved, (q + 0.05 * vecs[-1]) / np.linalg.norm(q + 0.05 * vecs[-1]))
            new = add_product(fresh_db_url, "Brand new", q, store)
            want = exact_top(fresh_db_url, q, 5)
            assert want[:2] == [new, moved]
            got = await search(conn, nearby(), q, config, second)
            assert got.strategy == strategy and ids(got) == want  # exact before the copy has seen it
            assert await second.refresh(conn) == 2
            assert len(second) == N_PRODUCTS + 1 and second.private_rows == 2 and second.generation == 1
            rows, _ = second.rank(q).top(2)
            assert second.ids_of(rows) == [new, moved]  # the change is in the copy itself now
            assert ids(await search(conn, nearby(), q, config, second)) == want
            assert ids(await search(conn, nearby(), q, config, first)) == want  # not refreshed yet: SQL covers it
        finally:
            await conn.close()

    run(body())


def test_private_rows_past_the_limit_make_a_generation_the_others_take(fresh_db_url: str, tmp_path: Path) -> None:
    product_ids, store, _vecs = seed(fresh_db_url, 200)
    rng = np.random.default_rng(11)

    async def body() -> None:
        conn = await connect(fresh_db_url)
        try:
            writer, reader = VectorCache(shared_dir=tmp_path), VectorCache(shared_dir=tmp_path)
            private = VectorCache()
            for cache in (writer, reader, private):
                await cache.load(conn)
            old_dir = Path(writer._view.matrix.filename).parent  # type: ignore[attr-defined]
            writer.private_floor = reader.private_floor = 5
            fresh = random_unit_vectors(12, rng)
            for pid, v in zip(product_ids[:10], fresh[:10], strict=True):
                set_vector(fresh_db_url, pid, v)
            added = [add_product(fresh_db_url, f"New {i}", fresh[10 + i], store) for i in range(2)]
            assert await writer.refresh(conn) == 12
            assert writer.generation == 2 and writer.private_rows == 0  # written, and mapped by the writer
            assert not old_dir.exists()  # unlinked; the reader still maps it
            assert reader.generation == 1
            assert_float32_order_within_error(top_ids(reader, fresh[0], 5), private, fresh[0])
            await reader.refresh(conn)
            await private.refresh(conn)
            assert reader.generation == 2 and reader.private_rows == 0 and len(reader) == 202
            for query in [*fresh, *random_unit_vectors(5, rng)]:
                assert top_ids(reader, query, 30) == top_ids(writer, query, 30)  # the same generation
                assert_float32_order_within_error(top_ids(reader, query, 30), private, query)
            rows, _ = reader.rank(fresh[11]).top(1)
            assert reader.ids_of(rows) == [added[1]]
        finally:
            await conn.close()

    run(body())


def test_a_generation_with_rows_in_another_order_waits_for_the_rankings_in_flight(
    fresh_db_url: str, tmp_path: Path
) -> None:
    _product_ids, store, _vecs = seed(fresh_db_url, 50)
    fresh = random_unit_vectors(2, np.random.default_rng(21))

    async def body() -> None:
        conn = await connect(fresh_db_url)
        try:
            writer, reader = VectorCache(shared_dir=tmp_path), VectorCache(shared_dir=tmp_path)
            await writer.load(conn)
            await reader.load(conn)
            added = [add_product(fresh_db_url, f"New {i}", v, store) for i, v in enumerate(fresh)]
            records = await conn.fetch(
                "SELECT id, ai_vector, ai_embedded_at FROM product_master WHERE id = ANY($1::uuid[])", added
            )
            by_id = {r["id"]: r for r in records}
            reader._apply([by_id[added[0]], by_id[added[1]]])
            writer._apply([by_id[added[1]], by_id[added[0]]])  # the same rows, added in the other order
            writer.private_floor = 0
            await writer.refresh(conn)
            assert writer.generation == 2
            held = reader.rank(fresh[0])  # a search in flight holds rows of the reader's own numbering
            await reader.refresh(conn)
            assert reader.generation == 1  # taking generation 2 now would renumber the held rows
            rows, _ = held.top(1)
            assert reader.ids_of(rows) == [added[0]]
            del held
            await reader.refresh(conn)
            assert reader.generation == 2 and top_ids(reader, fresh[0], 10) == top_ids(writer, fresh[0], 10)
        finally:
            await conn.close()

    run(body())


def test_a_generation_of_the_older_layout_is_loaded_anew(fresh_db_url: str, tmp_path: Path) -> None:
    """A kept generation whose codes are columns (`codes.npy`, before `rows8`) is not mapped: the next process
    loads from PostgreSQL and writes a generation of the current layout."""
    seed(fresh_db_url, 120)

    async def load() -> VectorCache:
        conn = await connect(fresh_db_url)
        try:
            cache = VectorCache(shared_dir=tmp_path)
            assert await cache.load(conn) == 120
            return cache
        finally:
            await conn.close()

    first = run(load())
    assert first.generation == 1
    [gen] = list(tmp_path.glob("*/gen-*"))
    (gen / "rows8.npy").rename(gen / "codes.npy")
    second = run(load())
    assert second.generation == 2 and second._view.int8 is not None and second._view.int8.scores_rows
    assert [p.name for p in tmp_path.glob("*/gen-*")] == ["gen-00000002"]


def test_a_generation_kept_from_before_an_in_place_restore_is_loaded_anew(fresh_db_url: str, tmp_path: Path) -> None:
    """pg_restore --clean into the same database keeps its identity (the directory) and, once a product is embedded
    after it, the newest stamp passes the kept generation's watermark; the generation, taken from the product_master
    the restore dropped, holds a vector the database no longer has. It is not mapped: the copy is loaded anew."""
    product_ids, _store, vecs = seed(fresh_db_url, 120)
    dump, bin_dir = tmp_path / "backup.dump", pg_bin_dir()
    subprocess.run([bin_dir / "pg_dump", "-Fc", "-f", dump, "-d", fresh_db_url], check=True, timeout=120)
    changed = random_unit_vectors(2, np.random.default_rng(21))
    set_vector(fresh_db_url, product_ids[0], changed[0])  # after the backup

    async def load() -> VectorCache:
        conn = await connect(fresh_db_url)
        try:
            cache = VectorCache(shared_dir=tmp_path / "kept")
            assert await cache.load(conn) == 120
            return cache
        finally:
            await conn.close()

    before = run(load())
    assert before.generation == 1 and top_ids(before, changed[0], 1) == [str(product_ids[0])]
    restore = [bin_dir / "pg_restore", "--clean", "--if-exists", "-d", fresh_db_url, dump]
    subprocess.run(restore, check=True, timeout=120)
    set_vector(fresh_db_url, product_ids[1], changed[1])  # embedded after the restore: past the watermark
    after = run(load())
    assert after.generation == 2  # not generation 1, mapped
    assert top_ids(after, vecs[0], 1) == [str(product_ids[0])]  # the vector the database holds again
    assert top_ids(after, changed[1], 1) == [str(product_ids[1])]
    assert [p.name for p in (tmp_path / "kept").glob("*/gen-*")] == ["gen-00000002"]


def add_unembedded_product(url: str, name: str, store: uuid.UUID) -> uuid.UUID:
    with psycopg.connect(url) as conn:
        row = conn.execute("INSERT INTO product_master (name) VALUES (%s) RETURNING id", (name,)).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity)"
            " VALUES (%s, %s, 1.00, 'EUR', 2)",
            (store, row[0]),
        )
        return uuid.UUID(str(row[0]))


def rows_by_lookup(sets: CandidateSets, cache: VectorCache) -> list[int]:
    """The truth for rows_in_copy: every ordinal's id looked up in the copy, the rows found, sorted."""
    view = cache._view
    rows = view.index.find(view.key, view.n, sets.keys[: sets.n])
    return sorted(int(r) for r in rows if r >= 0)


def test_a_generation_holds_its_rows_in_id_order_and_the_sets_map_onto_them_in_order(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """A generation written from a load lists its rows by id, as the candidate sets number the products: their
    rows in the copy then rise with the ordinals (no sort). Products listed before they are embedded get both an
    ordinal and a row past the others: still in order; embedded in another order than listed, they are not, and
    the rows still come out sorted."""
    product_ids, store, _ = seed(fresh_db_url, 200)

    async def body() -> None:
        conn = await connect(fresh_db_url)
        try:
            cache, sets = VectorCache(shared_dir=tmp_path), CandidateSets()
            await cache.load(conn)
            await sets.load(conn)
            held = cache.ids_of(np.arange(len(cache)))
            assert [i.bytes for i in held] == sorted(i.bytes for i in product_ids)  # rows in id order
            everything = BitMap(range(sets.n))
            assert sets.rows_in_copy(everything, cache).tolist() == rows_by_lookup(sets, cache) == list(range(200))
            assert sets._row_map(cache).in_order
            first = add_unembedded_product(fresh_db_url, "Listed first", store)
            assert await sets.brought_current(conn, [store], True)  # its listing applied: an ordinal
            second = add_unembedded_product(fresh_db_url, "Listed second", store)
            assert await sets.brought_current(conn, [store], True)
            for product, seed_no in ((first, 11), (second, 12)):  # embedded in the order listed
                set_vector(fresh_db_url, product, random_unit_vectors(1, np.random.default_rng(seed_no))[0])
                assert await cache.refresh(conn) == 1
                everything = BitMap(range(sets.n))
                assert sets.rows_in_copy(everything, cache).tolist() == rows_by_lookup(sets, cache)
                assert sets._row_map(cache).in_order
            assert len(sets.rows_in_copy(everything, cache)) == 202
            late = add_unembedded_product(fresh_db_url, "Listed third", store)
            assert await sets.brought_current(conn, [store], True)
            early = add_unembedded_product(fresh_db_url, "Listed fourth", store)
            assert await sets.brought_current(conn, [store], True)
            for product, seed_no in ((early, 13), (late, 14)):  # not in the order their ordinals came
                set_vector(fresh_db_url, product, random_unit_vectors(1, np.random.default_rng(seed_no))[0])
                assert await cache.refresh(conn) == 1
            everything = BitMap(range(sets.n))
            rows = sets.rows_in_copy(everything, cache)
            assert rows.tolist() == rows_by_lookup(sets, cache) and len(rows) == 204
            assert not sets._row_map(cache).in_order
        finally:
            await conn.close()

    run(body())
