"""A synthetic catalogue for plan probes and engine tests: random unit vectors, stores around a point.

Random unit vectors are the hard case for HNSW (no cluster structure), so recall measured on them is a
conservative bound; the recall property under filters is about the plan, not the model.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from search_service.db.hnsw import build_memory

EMBEDDING_DIM = 384


@dataclass(frozen=True)
class SyntheticSpec:
    products: int = 4000
    stores: int = 150
    listings: int = 40000
    seed: int = 7
    center_lat: float = 52.52
    center_lon: float = 13.405
    sigma_m: float = 4000.0  # most stores lie in a normal cloud around the centre
    far_fraction: float = 0.15  # the rest lie 50-800 km away
    inactive_store_fraction: float = 0.04
    out_of_stock_fraction: float = 0.25
    inactive_listing_fraction: float = 0.05
    root_categories: int = 6
    children_per_root: int = 4
    rebuild_hnsw: bool = False  # drop and rebuild the HNSW index around the load (fast bulk loads)
    # False: drop the HNSW index and leave it out (1M vectors take most of an hour to index on 2 cores; the
    # engine ranks on its in-memory copy, only the naive baseline's forced-HNSW plan needs the index)
    hnsw: bool = True
    clusters: int = 0  # 0: uniform random unit vectors; else topic clusters (closer to text embeddings)
    cluster_spread: float = 0.8  # noise norm relative to the cluster centre


def offset_point(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point displaced by a small local offset (equirectangular; for generating data only)."""
    dlat = north_m / 111_320.0
    dlon = east_m / (111_320.0 * max(math.cos(math.radians(lat)), 1e-6))
    new_lon = (lon + dlon + 180.0) % 360.0 - 180.0
    return lat + dlat, new_lon


def random_unit_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((n, EMBEDDING_DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def clustered_unit_vectors(n: int, clusters: int, spread: float, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors around `clusters` random centres: structured like topic embeddings, unlike pure noise."""
    centres = random_unit_vectors(clusters, rng)
    v = centres[rng.integers(0, clusters, size=n)] + spread * random_unit_vectors(n, rng)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float32)


def query_vectors(vectors: np.ndarray, n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Queries near the data: perturbed catalogue vectors, as real queries land near real products."""
    picks = vectors[rng.integers(0, len(vectors), size=n)] + noise * random_unit_vectors(n, rng)
    picks /= np.linalg.norm(picks, axis=1, keepdims=True)
    return picks.astype(np.float32)


def _insert_categories(conn: psycopg.Connection, spec: SyntheticSpec) -> list[int]:
    """Roots and their children; returns every category id."""
    cat_ids: list[int] = []
    for r in range(spec.root_categories):
        row = conn.execute(
            "INSERT INTO category (name) VALUES (%s) RETURNING id", (f"root {r} {spec.seed}",)
        ).fetchone()
        assert row is not None
        root = int(row[0])
        cat_ids.append(root)
        for c in range(spec.children_per_root):
            row = conn.execute(
                "INSERT INTO category (parent_id, name) VALUES (%s, %s) RETURNING id",
                (root, f"child {r}.{c}"),
            ).fetchone()
            assert row is not None
            cat_ids.append(int(row[0]))
    return cat_ids


def _copy_products(
    conn: psycopg.Connection, spec: SyntheticSpec, cat_ids: list[int], rng: np.random.Generator
) -> list[uuid.UUID]:
    """Products with their vectors; returns their ids."""
    vectors = (
        clustered_unit_vectors(spec.products, spec.clusters, spec.cluster_spread, rng)
        if spec.clusters
        else random_unit_vectors(spec.products, rng)
    )
    product_ids = [uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i, version=4) for i in range(spec.products)]
    categories = rng.choice(np.array(cat_ids), size=spec.products)
    gtin_base = 4_000_000_000_000 + spec.seed * 10_000_000
    # Binary: pgvector's text form costs ~384 float-to-text conversions a row (1M products: ~2k rows/s).
    with conn.cursor().copy(
        "COPY product_master (id, name, brand, description, category_id, gtin, ai_vector, ai_model)"
        " FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["uuid", "text", "text", "text", "int8", "text", "vector", "text"])
        for i in range(spec.products):
            copy.write_row(
                (
                    product_ids[i],
                    f"synthetic product {i}",
                    f"brand{i % 97}",
                    f"description of synthetic product number {i}",
                    int(categories[i]),
                    str(gtin_base + i),
                    vectors[i],
                    "synthetic",
                )
            )
    return product_ids


def _store_point(spec: SyntheticSpec, rng: np.random.Generator) -> tuple[float, float]:
    if rng.random() < spec.far_fraction:
        dist = rng.uniform(50_000, 800_000)
        ang = rng.uniform(0, 2 * math.pi)
        return offset_point(spec.center_lat, spec.center_lon, dist * math.cos(ang), dist * math.sin(ang))
    north, east = rng.normal(0, spec.sigma_m, size=2)
    return offset_point(spec.center_lat, spec.center_lon, float(north), float(east))


def _copy_stores(conn: psycopg.Connection, spec: SyntheticSpec, rng: np.random.Generator) -> list[uuid.UUID]:
    """Stores around the centre (some far away); returns their ids."""
    store_ids = [uuid.uuid4() for _ in range(spec.stores)]
    with conn.cursor().copy("COPY store (id, name, location, is_active) FROM STDIN") as copy:
        for i, sid in enumerate(store_ids):
            lat, lon = _store_point(spec, rng)
            active = rng.random() >= spec.inactive_store_fraction
            copy.write_row((sid, f"store {i}", f"SRID=4326;POINT({lon} {lat})", active))
    return store_ids


def _copy_listings(
    conn: psycopg.Connection,
    spec: SyntheticSpec,
    store_ids: list[uuid.UUID],
    product_ids: list[uuid.UUID],
    rng: np.random.Generator,
    progress: Callable[[str], None],
) -> None:
    n_pairs = min(spec.listings, spec.stores * spec.products)
    flat = rng.choice(spec.stores * spec.products, size=n_pairs, replace=False)
    flat.sort()  # listings of one store together, as a per-store POS import would write them
    prices = np.round(rng.uniform(0.5, 50.0, size=n_pairs), 2)
    qty = rng.integers(1, 40, size=n_pairs)
    qty[rng.random(n_pairs) < spec.out_of_stock_fraction] = 0
    active_l = rng.random(n_pairs) >= spec.inactive_listing_fraction
    with conn.cursor().copy(
        "COPY store_product (store_id, product_master_id, price, currency, quantity, is_active) FROM STDIN"
    ) as copy:
        for j, f in enumerate(flat):
            s, p = divmod(int(f), spec.products)
            copy.write_row((store_ids[s], product_ids[p], f"{prices[j]:.2f}", "EUR", int(qty[j]), bool(active_l[j])))
            if j % 1_000_000 == 999_999:
                progress(f"listings: {j + 1:,} of {n_pairs:,}")


def _quiet(message: str) -> None:
    pass


def seed_synthetic(dsn: str, spec: SyntheticSpec = SyntheticSpec(), progress: Callable[[str], None] = _quiet) -> None:
    """Load categories, products (with vectors), stores and listings. Triggers are skipped for speed.
    `progress`: told each step as it ends, with the seconds since the start."""
    rng = np.random.default_rng(spec.seed)
    started = time.perf_counter()

    def step(message: str) -> None:
        progress(f"{message} ({time.perf_counter() - started:.0f} s)")

    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        conn.execute("SET session_replication_role = replica")  # no audit/queue triggers for bulk data
        cat_ids = _insert_categories(conn, spec)
        if spec.rebuild_hnsw or not spec.hnsw:
            conn.execute("DROP INDEX IF EXISTS ix_product_master_ai_vector_hnsw")
        product_ids = _copy_products(conn, spec, cat_ids, rng)
        step(f"{spec.products:,} products")
        store_ids = _copy_stores(conn, spec, rng)
        _copy_listings(conn, spec, store_ids, product_ids, rng, step)
        step(f"{spec.stores:,} stores, their listings")
        if spec.rebuild_hnsw and spec.hnsw:
            conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(build_memory(spec.products))))
            conn.execute(
                "CREATE INDEX ix_product_master_ai_vector_hnsw ON product_master "
                "USING hnsw (ai_vector vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
            )
            step("HNSW index")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        step("VACUUM ANALYZE")
