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

import itertools
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from tqdm import tqdm

from embeddings.text import text_hash
from search_service.db.hnsw import build_memory
from search_service.db.sql import statement

from .market import ListingChunk, Marketplace, Product, slugify

SECONDARY_INDEX_TABLES = ("store", "product_master", "store_product")
AUDIT_TRIGGER = "trg_store_product_audit_insert"
CATALOGUE_TABLES = ("category", "store", "product_master", "store_product")

_SECONDARY_INDEXES = sql.SQL(
    """
SELECT format('%I.%I', n.nspname, c.relname) AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indrelid = {table}::regclass
  AND NOT EXISTS (
      SELECT 1 FROM pg_constraint k
      WHERE k.conrelid = i.indrelid AND k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))
ORDER BY c.relname
"""
)


_DROPPABLE_CONSTRAINTS = sql.SQL(
    """
SELECT k.conname, pg_get_constraintdef(k.oid), k.contype
FROM pg_constraint k
WHERE k.conrelid = {table}::regclass
  AND (k.contype = 'f'
       OR (k.contype IN ('p', 'u')
           AND NOT EXISTS (SELECT 1 FROM pg_constraint r WHERE r.contype = 'f' AND r.conindid = k.conindid)))
ORDER BY k.contype = 'f', k.conname
"""
)


@dataclass
class TableStat:
    table: str
    rows: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class LoadReport:
    """What a seed did. `tables`: table -> {"rows", "seconds", "rows_per_s"} of its COPY."""

    scale: str
    seed: int
    skipped: bool = False
    message: str = ""
    tables: dict[str, dict[str, float]] = field(default_factory=dict)
    rows: int = 0
    copy_seconds: float = 0.0
    rows_per_s: float = 0.0
    generate_seconds: float = 0.0
    embed_seconds: float = 0.0
    index_seconds: float = 0.0
    analyze_seconds: float = 0.0
    seconds: float = 0.0
    vectors: int = 0  # products copied with a vector
    ai_tasks: int = 0  # products left for the worker to embed
    indexes_recreated: list[str] = field(default_factory=list)
    constraints_readded: list[str] = field(default_factory=list)

    def add(self, stat: TableStat) -> None:
        self.tables[stat.table] = {
            "rows": stat.rows,
            "seconds": round(stat.seconds, 3),
            "rows_per_s": round(stat.rows_per_s, 1),
        }
        self.rows += stat.rows
        self.copy_seconds += stat.seconds
        self.rows_per_s = self.rows / self.copy_seconds if self.copy_seconds > 0 else 0.0

    def lines(self) -> list[str]:
        """Human-readable summary, one line per table."""
        if self.skipped:
            return [self.message]
        out = [f"seeded scale {self.scale!r} (seed {self.seed}) in {self.seconds:.1f}s"]
        for table, t in self.tables.items():
            out.append(
                f"  {table:<14} {int(t['rows']):>10,} rows  {t['seconds']:>8.2f}s  {t['rows_per_s']:>12,.0f} rows/s"
            )
        out.append(
            f"  copy {self.rows:,} rows at {self.rows_per_s:,.0f} rows/s; generate {self.generate_seconds:.1f}s, "
            f"embed {self.embed_seconds:.1f}s, indexes {self.index_seconds:.1f}s, analyze {self.analyze_seconds:.1f}s"
        )
        out.append(f"  vectors written: {self.vectors:,}; products queued for the worker: {self.ai_tasks:,}")
        if self.message:
            out.append(f"  {self.message}")
        return out


def catalogue_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return {
        t: int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0])  # type: ignore[index]
        for t in CATALOGUE_TABLES
    }


def catalogue_is_empty(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM store) OR EXISTS (SELECT 1 FROM product_master) "
        "OR EXISTS (SELECT 1 FROM category) OR EXISTS (SELECT 1 FROM store_product)"
    ).fetchone()
    return not bool(row and row[0])


def secondary_indexes(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str]]:
    """(qualified name, CREATE INDEX statement) of the table's indexes that back no constraint."""
    rows = conn.execute(_SECONDARY_INDEXES.format(table=sql.Literal(table))).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def droppable_constraints(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str, str]]:
    """(name, definition, type) of the table's foreign keys and of its primary-key/unique constraints that no
    foreign key depends on: keys first, foreign keys last (the order to re-add them in)."""
    rows = conn.execute(_DROPPABLE_CONSTRAINTS.format(table=sql.Literal(table))).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def trigger_enabled(conn: psycopg.Connection[Any], table: str, trigger: str) -> bool:
    row = conn.execute(
        "SELECT tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s", (table, trigger)
    ).fetchone()
    return bool(row) and row[0] != "D"  # type: ignore[index]


def _progress(total: int, desc: str, quiet: bool) -> tqdm[Any]:
    return tqdm(total=total, desc=desc, unit="rows", unit_scale=True, disable=quiet, leave=False)


def _uuid_hex(id_bytes: np.ndarray) -> list[str]:
    """32-digit hex per (n, 16) uint8 row: PostgreSQL's uuid input takes it without dashes."""
    h = id_bytes.tobytes().hex()
    return [h[i : i + 32] for i in range(0, len(h), 32)]


def _copy_categories(conn: psycopg.Connection[Any], market: Marketplace) -> TableStat:
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        with cur.copy("COPY category (id, parent_id, name, slug, position) FROM STDIN") as copy:
            for c in market.categories:
                copy.write_row((c.id, c.parent_id, c.name, c.slug, c.position))
        cur.execute("SELECT setval(pg_get_serial_sequence('category', 'id'), (SELECT max(id) FROM category))")
    return TableStat("category", len(market.categories), time.perf_counter() - t0)


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS: dict[str, tuple[str, str, str | None]] = {
    # store type -> (weekdays, saturday, sunday)
    "supermarket": ("07:00-22:00", "07:00-22:00", None),
    "convenience": ("06:00-23:00", "06:00-23:00", "08:00-22:00"),
    "bakery": ("06:30-18:30", "06:30-14:00", "07:30-12:00"),
    "pharmacy": ("08:00-19:00", "09:00-14:00", None),
}


def _opening_hours(store_type: str) -> str:
    week, sat, sun = _HOURS.get(store_type, ("09:00-19:00", "10:00-18:00", None))
    hours = {d: week for d in _WEEKDAYS[:5]} | {"sat": sat}
    if sun:
        hours["sun"] = sun
    return json.dumps(hours)


def _copy_stores(conn: psycopg.Connection[Any], market: Marketplace, quiet: bool) -> TableStat:
    t0 = time.perf_counter()
    cols = (
        "id, name, slug, store_type, description, address, city, country_code, location, phone, website, "
        "opening_hours, is_active"
    )
    with (
        conn.cursor() as cur,
        _progress(len(market.stores), "store", quiet) as bar,
        cur.copy(sql.SQL("COPY store ({}) FROM STDIN").format(sql.SQL(cols))) as copy,
    ):
        for s in market.stores:
            slug = f"{slugify(s.name)}-{s.id.hex[:6]}"
            digits = f"{s.id.int % 10**7:07d}"
            phone = {"DE": f"+49 30 {digits}", "GB": f"+44 20 {digits[:4]} {digits[4:]}"}.get(
                s.country_code, f"+{digits[:2]} {digits[2:]}"
            )
            copy.write_row(
                (
                    s.id,
                    s.name,
                    slug,
                    s.store_type,
                    f"{s.name}: your local {s.store_type.replace('_', ' ')} in {s.city}.",
                    s.address,
                    s.city,
                    s.country_code,
                    f"SRID=4326;POINT({s.lon} {s.lat})",
                    phone,
                    f"https://{slug}.example.com",
                    _opening_hours(s.store_type),
                    s.is_active,
                )
            )
        bar.update(len(market.stores))
    return TableStat("store", len(market.stores), time.perf_counter() - t0)


def product_text(p: Product) -> str:
    """The text the worker would embed for this product (same category path, attributes and description)."""
    from embeddings.text import compose_text

    return compose_text(
        name=p.name,
        brand=p.brand,
        category_path=list(p.category_path),
        description=p.description,
        attributes=p.attributes,
    )


_PRODUCT_COLS = "id, name, brand, description, category_id, gtin, attributes"
_VECTOR_COLS = "ai_vector, ai_model, ai_text_hash, ai_embedded_at"
_PRODUCT_TYPES = ["uuid", "text", "text", "text", "int8", "text", "jsonb"]
_VECTOR_TYPES = ["vector", "text", "text", "timestamptz"]


def _copy_product_range(
    dsn_or_conn: str | psycopg.Connection[Any],
    market: Marketplace,
    start: int,
    stop: int,
    vectors: np.ndarray | None,
    model_id: str | None,
    bar: tqdm[Any],
    chunk: int = 10_000,
) -> int:
    """COPY products [start, stop): text COPY without vectors, binary COPY (pgvector's dumper) with them."""
    own = isinstance(dsn_or_conn, str)
    conn = psycopg.connect(dsn_or_conn, autocommit=True) if isinstance(dsn_or_conn, str) else dsn_or_conn
    try:
        if vectors is not None and own:
            from pgvector.psycopg import register_vector

            register_vector(conn)
        now = datetime.now(UTC)
        if vectors is None:
            stmt = sql.SQL("COPY product_master ({}) FROM STDIN").format(sql.SQL(_PRODUCT_COLS))
        else:
            stmt = sql.SQL("COPY product_master ({}, {}) FROM STDIN (FORMAT BINARY)").format(
                sql.SQL(_PRODUCT_COLS), sql.SQL(_VECTOR_COLS)
            )
        with conn.cursor() as cur, cur.copy(stmt) as copy:
            if vectors is not None:
                copy.set_types(_PRODUCT_TYPES + _VECTOR_TYPES)
            for lo in range(start, stop, chunk):
                products = market.products(lo, min(lo + chunk, stop))
                if vectors is None:
                    for p in products:
                        copy.write_row(
                            (p.id, p.name, p.brand, p.description, p.category_id, p.gtin, json.dumps(p.attributes))
                        )
                else:
                    block = vectors[lo : lo + len(products)]
                    for p, vec in zip(products, block, strict=True):
                        copy.write_row(
                            (
                                p.id, p.name, p.brand, p.description, p.category_id, p.gtin, p.attributes,
                                np.asarray(vec, dtype=np.float32), model_id, text_hash(product_text(p)), now,
                            )
                        )  # fmt: skip
                bar.update(len(products))
    finally:
        if own:
            conn.close()
    return stop - start


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


def _ranges(n: int, parts: int) -> list[tuple[int, int]]:
    bounds = np.linspace(0, n, max(1, min(parts, n)) + 1).astype(int).tolist()
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def _copy_products(
    conn: psycopg.Connection[Any],
    dsn: str,
    market: Marketplace,
    vectors: np.ndarray | None,
    model_id: str | None,
    quiet: bool,
    workers: int,
) -> TableStat:
    t0 = time.perf_counter()
    n = market.n_products
    with _progress(n, "product_master", quiet) as bar:
        if workers <= 1:
            _copy_product_range(conn, market, 0, n, vectors, model_id, bar)
        else:
            with ThreadPoolExecutor(workers) as pool:
                futures = [
                    pool.submit(_copy_product_range, dsn, market, a, b, vectors, model_id, bar)
                    for a, b in _ranges(n, workers)
                ]
                for f in futures:
                    f.result()
    return TableStat("product_master", n, time.perf_counter() - t0)


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


def _strip(conn: psycopg.Connection[Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str, str, str]]]:
    """Drop the secondary indexes and the droppable constraints; return what is needed to put them back."""
    dropped: list[tuple[str, str]] = []
    constraints: list[tuple[str, str, str, str]] = []
    for table in SECONDARY_INDEX_TABLES:
        for name, definition in secondary_indexes(conn, table):
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))
            dropped.append((name, definition))
        for name, definition, kind in droppable_constraints(conn, table):
            constraints.append((table, name, definition, kind))
    # Foreign keys go first: a key constraint cannot be dropped while a foreign key leans on it.
    for table, name, _definition, _kind in sorted(constraints, key=lambda c: c[3] != "f"):
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name)))
    return dropped, constraints


def _restore(
    conn: psycopg.Connection[Any],
    dropped: list[tuple[str, str]],
    constraints: list[tuple[str, str, str, str]],
    report: LoadReport,
    quiet: bool,
) -> None:
    """Re-add the constraints (keys before the foreign keys that need them) and recreate the indexes."""
    t0 = time.perf_counter()
    for table, name, definition, _kind in sorted(constraints, key=lambda c: c[3] == "f"):
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)
            )
        )
        report.constraints_readded.append(name)
    for name, definition in tqdm(dropped, desc="indexes", disable=quiet, leave=False):
        conn.execute(sql.SQL(definition))
        report.indexes_recreated.append(name)
    report.index_seconds = time.perf_counter() - t0


def _set_trigger(conn: psycopg.Connection[Any], enabled: bool) -> None:
    action = sql.SQL("ENABLE" if enabled else "DISABLE")
    conn.execute(sql.SQL("ALTER TABLE store_product {} TRIGGER {}").format(action, sql.Identifier(AUDIT_TRIGGER)))


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
    if vectors is not None:
        if model_id is None:
            raise ValueError("vectors need the model_id that produced them")
        if vectors.shape[0] != market.n_products:
            raise ValueError(f"{vectors.shape[0]} vectors for {market.n_products} products")
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
            if not catalogue_is_empty(conn):
                counts = catalogue_counts(conn)
                report.skipped = True
                report.message = (
                    "catalogue already seeded, nothing to do ("
                    + ", ".join(f"{t}: {c:,}" for t, c in counts.items())
                    + ")"
                )
                return report
            if workers <= 1:
                _load_in_one_transaction(conn, dsn, market, vectors, model_id, report, quiet, maintenance_work_mem)
            else:
                _load_in_parallel(conn, dsn, market, vectors, model_id, report, quiet, workers, maintenance_work_mem)
            conn.execute(statement("demo/delivery", "seed_delivery_areas").psycopg, {})  # delivery radii, polygons
            tasks = conn.execute("SELECT count(*) FROM ai_task WHERE status = 'pending'").fetchone()
            report.ai_tasks = int(tasks[0]) if tasks else 0
            report.vectors = market.n_products if vectors is not None else 0
            t0 = time.perf_counter()
            for table in (*CATALOGUE_TABLES, "ai_task"):
                conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
            report.analyze_seconds = time.perf_counter() - t0
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('plinqy-datagen-seed'))")
    report.seconds += time.perf_counter() - t_start
    return report


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
