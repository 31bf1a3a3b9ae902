"""Bulk loading of a generated marketplace into an EMPTY catalogue with COPY.

With `workers=1` the load runs in one transaction (all or nothing); with more, products and listings are copied
over several connections at once (product_master's generated tsvector column makes its COPY CPU-bound on the
server), after the drops below have committed. Either way:
- the secondary (non-constraint) indexes of store, product_master and store_product are captured with
  `pg_get_indexdef`, dropped, and recreated from those very definitions after the COPYs (so the schema stays
  identical), then the tables are ANALYZEd;
- the statement-level listing audit trigger (`trg_store_product_audit_insert`) is disabled for the COPY of
  store_product: a seed is not an audit event, and it would write three rows per listing (history_store_product,
  search_index_queue, inventory_event) — 30M rows for the large scale. It is re-enabled in `finally`.
- the same goes for the constraints that per-row checking makes slow on a bulk load and that nothing else
  depends on: the tables' outgoing foreign keys (checked row by row by RI triggers; re-adding one validates it with
  a single join) and primary-key/unique constraints no foreign key references (an index built once after the
  load instead of maintained row by row). They are re-added under their own names from `pg_get_constraintdef`,
  so the schema after the load is the schema before it;
- product_master's embedding trigger stays on: products copied without a vector get their ai_task (the worker
  embeds them), products copied with one do not;
- a session advisory lock serialises seeds of one database: the second finds the catalogue full and does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from tqdm import tqdm

from search_service.db.hnsw import build_memory
from search_service.db.sql import statement

from .load_ddl import (
    AUDIT_TRIGGER,
    CATALOGUE_TABLES,
    SECONDARY_INDEX_TABLES,
    _restore,
    _set_trigger,
    _strip,
    catalogue_counts,
    catalogue_is_empty,
    droppable_constraints,
    secondary_indexes,
    trigger_enabled,
)
from .load_report import LoadReport, TableStat
from .load_rows import _copy_categories, _copy_products, _copy_stores, _progress, _ranges, _uuid_hex, product_text
from .market import ListingChunk, Marketplace

# Re-exported: the package and the seed command import these from here.
__all__ = [
    "AUDIT_TRIGGER",
    "CATALOGUE_TABLES",
    "SECONDARY_INDEX_TABLES",
    "LoadReport",
    "TableStat",
    "catalogue_counts",
    "catalogue_is_empty",
    "droppable_constraints",
    "load",
    "product_text",
    "secondary_indexes",
    "trigger_enabled",
]


def _listing_lines(
    market: Marketplace, store_start: int, store_stop: int, store_hex: list[str], product_hex: list[str]
) -> Iterator[tuple[int, bytes]]:
    """Text COPY data per run of stores, built column-wise (far faster than a Python call per row)."""
    currency = [s.currency for s in market.stores]
    step = 50
    for lo in range(store_start, store_stop, step):
        chunk = ListingChunk.concat([market._store_listings(s) for s in range(lo, min(lo + step, store_stop))])
        n = len(chunk)
        if n == 0:
            continue
        ids = _uuid_hex(chunk.id_bytes)
        sids = [store_hex[i] for i in chunk.store_idx.tolist()]
        pids = [product_hex[i] for i in chunk.product_idx.tolist()]
        prices = [f"{p:.2f}" for p in chunk.price.tolist()]
        curr = [currency[i] for i in chunk.store_idx.tolist()]
        qty = [str(q) for q in chunk.quantity.tolist()]
        act = ["t" if a else "f" for a in chunk.is_active.tolist()]
        body = "\n".join(map("\t".join, zip(ids, sids, pids, prices, curr, qty, act, strict=True))) + "\n"
        yield n, body.encode()


def _copy_listing_range(
    dsn_or_conn: str | psycopg.Connection[Any],
    market: Marketplace,
    store_start: int,
    store_stop: int,
    store_hex: list[str],
    product_hex: list[str],
    bar: tqdm[Any],
) -> int:
    own = isinstance(dsn_or_conn, str)
    conn = psycopg.connect(dsn_or_conn, autocommit=True) if isinstance(dsn_or_conn, str) else dsn_or_conn
    rows = 0
    stmt = "COPY store_product (id, store_id, product_master_id, price, currency, quantity, is_active) FROM STDIN"
    try:
        with conn.cursor() as cur, cur.copy(stmt) as copy:
            for n, data in _listing_lines(market, store_start, store_stop, store_hex, product_hex):
                copy.write(data)
                rows += n
                bar.update(n)
    finally:
        if own:
            conn.close()
    return rows


def _copy_listings(
    conn: psycopg.Connection[Any], dsn: str, market: Marketplace, quiet: bool, workers: int
) -> TableStat:
    t0 = time.perf_counter()
    store_hex = [s.id.hex for s in market.stores]
    product_hex = _uuid_hex(market.plan.id_bytes)
    rows = 0
    with _progress(market.expected_listings, "store_product", quiet) as bar:
        if workers <= 1:
            rows = _copy_listing_range(conn, market, 0, len(market.stores), store_hex, product_hex, bar)
        else:
            with ThreadPoolExecutor(workers) as pool:
                futures = [
                    pool.submit(_copy_listing_range, dsn, market, a, b, store_hex, product_hex, bar)
                    for a, b in _ranges(len(market.stores), workers)
                ]
                rows = sum(f.result() for f in futures)
    return TableStat("store_product", rows, time.perf_counter() - t0)


def load(
    dsn: str,
    market: Marketplace,
    *,
    vectors: np.ndarray | None = None,
    model_id: str | None = None,
    report: LoadReport | None = None,
    quiet: bool = False,
    workers: int = 1,
    maintenance_work_mem: str | None = None,
) -> LoadReport:
    """COPY `market` into the empty catalogue at `dsn` (see the module docstring). With `vectors`
    (float32, one row per product, L2-normalised) and `model_id`, products carry their embedding.

    workers=1: everything in one transaction (all or nothing). workers>1: products and listings are copied over
    that many connections at once (product_master's generated tsvector makes its COPY CPU-bound on the server);
    the index/constraint drop and the trigger switch then commit first, and `finally` puts both back even when
    a COPY fails (the rows copied so far stay: seed a fresh database again).
    maintenance_work_mem: for the index rebuilds; None: enough to build the HNSW index over every product in memory.
    """
    _check_vectors(market, vectors, model_id)
    report = report or LoadReport(scale=market.scale.name, seed=market.seed)
    maintenance_work_mem = maintenance_work_mem or build_memory(market.n_products)
    t_start = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        if vectors is not None:
            from pgvector.psycopg import register_vector

            register_vector(conn)
        # One seed at a time per database: a second one waits, then finds the catalogue full.
        conn.execute("SELECT pg_advisory_lock(hashtext('plinqy-datagen-seed'))")
        try:
            if _already_seeded(conn, report):
                return report
            if workers <= 1:
                _load_in_one_transaction(conn, dsn, market, vectors, model_id, report, quiet, maintenance_work_mem)
            else:
                _load_in_parallel(conn, dsn, market, vectors, model_id, report, quiet, workers, maintenance_work_mem)
            conn.execute(statement("demo/delivery", "seed_delivery_areas").psycopg, {})  # delivery radii, polygons
            _count_and_analyze(conn, market, vectors, report)
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('plinqy-datagen-seed'))")
    report.seconds += time.perf_counter() - t_start
    return report


def _check_vectors(market: Marketplace, vectors: np.ndarray | None, model_id: str | None) -> None:
    if vectors is None:
        return
    if model_id is None:
        raise ValueError("vectors need the model_id that produced them")
    if vectors.shape[0] != market.n_products:
        raise ValueError(f"{vectors.shape[0]} vectors for {market.n_products} products")


def _already_seeded(conn: psycopg.Connection[Any], report: LoadReport) -> bool:
    """A full catalogue is left alone: the report says so, with its counts."""
    if catalogue_is_empty(conn):
        return False
    counts = catalogue_counts(conn)
    report.skipped = True
    report.message = (
        "catalogue already seeded, nothing to do (" + ", ".join(f"{t}: {c:,}" for t, c in counts.items()) + ")"
    )
    return True


def _count_and_analyze(
    conn: psycopg.Connection[Any], market: Marketplace, vectors: np.ndarray | None, report: LoadReport
) -> None:
    tasks = conn.execute("SELECT count(*) FROM ai_task WHERE status = 'pending'").fetchone()
    report.ai_tasks = int(tasks[0]) if tasks else 0
    report.vectors = market.n_products if vectors is not None else 0
    t0 = time.perf_counter()
    for table in (*CATALOGUE_TABLES, "ai_task"):
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    report.analyze_seconds = time.perf_counter() - t0


def _load_in_one_transaction(
    conn: psycopg.Connection[Any],
    dsn: str,
    market: Marketplace,
    vectors: np.ndarray | None,
    model_id: str | None,
    report: LoadReport,
    quiet: bool,
    maintenance_work_mem: str,
) -> None:
    try:
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL maintenance_work_mem = {}").format(sql.Literal(maintenance_work_mem)))
            dropped, constraints = _strip(conn)
            report.add(_copy_categories(conn, market))
            report.add(_copy_stores(conn, market, quiet))
            report.add(_copy_products(conn, dsn, market, vectors, model_id, quiet, 1))
            _set_trigger(conn, False)
            report.add(_copy_listings(conn, dsn, market, quiet, 1))
            _set_trigger(conn, True)
            _restore(conn, dropped, constraints, report, quiet)
    finally:
        # A failed transaction rolls the trigger back to enabled by itself; this is the belt to those braces.
        if not conn.closed and not trigger_enabled(conn, "store_product", AUDIT_TRIGGER):
            _set_trigger(conn, True)


def _load_in_parallel(
    conn: psycopg.Connection[Any],
    dsn: str,
    market: Marketplace,
    vectors: np.ndarray | None,
    model_id: str | None,
    report: LoadReport,
    quiet: bool,
    workers: int,
    maintenance_work_mem: str,
) -> None:
    with conn.transaction():
        dropped, constraints = _strip(conn)
        _set_trigger(conn, False)
    try:
        report.add(_copy_categories(conn, market))
        report.add(_copy_stores(conn, market, quiet))
        report.add(_copy_products(conn, dsn, market, vectors, model_id, quiet, workers))
        report.add(_copy_listings(conn, dsn, market, quiet, workers))
    finally:
        _set_trigger(conn, True)
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL maintenance_work_mem = {}").format(sql.Literal(maintenance_work_mem)))
            _restore(conn, dropped, constraints, report, quiet)
