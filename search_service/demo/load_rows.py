"""COPY of the generated categories, stores and products (listings: see load.py)."""

from __future__ import annotations

import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from tqdm import tqdm

from embeddings.text import text_hash

from .load_report import TableStat
from .market import Marketplace, Product, slugify


def _progress(total: int, desc: str, quiet: bool) -> tqdm[Any]:
    return tqdm(total=total, desc=desc, unit=" rows", unit_scale=True, disable=quiet, leave=False)


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
