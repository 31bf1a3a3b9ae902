"""The benchmark suite: one command, one JSON + Markdown + plots.

    .venv/bin/python -m benchmarks.run --scale small|large|tiny [--seed 42] [--queries N] [--out benchmarks/results]

Steps (each timed, every figure lands in the JSON):

1. Data: a database of its own (`plinqy_bench_<scale>` on the dev cluster, or `--database-url`), migrated and
   seeded by the data generator (`search_service.demo`, real-model vectors) — or by `search_service.demo.synthetic` when
   the generator is not there (or `--generator synthetic`). A seeded database is reused when its scale, seed
   and generator match (the marker is the database's COMMENT), so a second run skips generation.
2. HNSW build: REINDEX of the HNSW index, timed; table and index sizes.
3. Query set (`benchmarks.queries`): templated texts that are not product texts, at places where people live.
4. Ground truth: every product vector, sellable listing and store loaded into numpy once; the stores in a
   radius come from PostGIS itself (the engine's ST_DWithin on the spheroid), then the top-k is exact.
5. SQL-only: the engine (`search()` on an asyncpg connection; semantic for recall, hybrid for latency) and the
   naive single statement (planner's choice, and HNSW forced) at radii 0.5/2/5/20/100 km and without a radius.
6. HTTP: the real app (`python -m search_service serve`) in a subprocess; latency per radius (semantic and
   hybrid), recall of the semantic answers, QPS at concurrency 1/8/32; peak RSS of the process.
7. Embedding: encoder rates (torch reference, ONNX, int8; cosine to the reference), the worker's rate and the
   re-embedding rate (the embedding engineer's measuring functions when present).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import importlib
import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import numpy as np
import psycopg
from pgvector.asyncpg import register_vector as register_vector_async
from pgvector.psycopg import register_vector
from psycopg import sql as psql

from benchmarks import bench_typos, cputime
from benchmarks import queries as qmod
from benchmarks.api_engine import open_api_engine
from benchmarks.output import cpu_model
from benchmarks.plan_probe import NAIVE_GLOBAL_SQL, NAIVE_SQL
from search_service.db import migrate
from search_service.db.hnsw import build_memory
from search_service.db.sql import statement
from search_service.demo.synthetic import SyntheticSpec, seed_synthetic
from search_service.engine.candidates import NO_CHANGES
from search_service.engine.scope import NO_NEAR
from search_service.engine.search import (
    HNSW_INDEX,
    EngineConfig,
    SearchParams,
    as_vector,
    choose_strategy,
    estimate,
    search,
    settings_sql,
)
from search_service.engine.stats import read_stats
from search_service.engine.store_locator import NOT_LOCATED
from search_service.engine.text import embedded_text
from search_service.engine.vectors import VectorCache
from search_service.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = PROJECT_ROOT / "benchmarks" / "results"
RADII: tuple[float | None, ...] = (500.0, 2000.0, 5000.0, 20000.0, 100000.0, None)
CONCURRENCIES: tuple[int, ...] = (1, 8, 32)
TIE_EPS = 1e-5  # a result scoring within this of the k-th true score counts as a hit (float32 ties)
ENCODER_RUNS = 2  # timed passes per encoder backend (median); each backend also runs a warm-up


@dataclass(frozen=True)
class Scale:
    name: str
    datagen_scale: str | None  # the generator's scale name; None: always synthetic
    products: int  # synthetic fallback sizes
    stores: int
    listings: int
    queries: int
    qps_duration_s: float
    encoder_texts: int
    reembed_rows: int
    worker_rows: int
    naive_queries: int
    http: bool = True
    qps_c8_windows: int = 3  # QPS at concurrency 8 (the target's figure): the median of this many windows
    # Synthetic data: build the HNSW index. 1M vectors take most of an hour to index on 2 busy cores, and the
    # engine never uses it while the API holds every vector (only the naive baseline's forced plan does).
    hnsw: bool = True


SCALES: dict[str, Scale] = {
    "tiny": Scale("tiny", None, 1500, 40, 12000, 12, 1.0, 32, 200, 64, 12, qps_c8_windows=1),
    # 7 s per QPS window keeps `make bench` within 15 minutes here with three windows per c=8 figure
    "small": Scale("small", "small", 100_000, 1000, 1_000_000, 200, 7.0, 256, 500, 500, 40),
    "large": Scale("large", "large", 1_000_000, 10_000, 10_000_000, 200, 10.0, 256, 2000, 1000, 30, hnsw=False),
}


def sized(scale: Scale, products: int | None, stores: int | None, listings: int | None) -> Scale:
    """The scale with the synthetic sizes given on the command line (stores and listings default to the
    scale's ratios to its products)."""
    if products is None and stores is None and listings is None:
        return scale
    n = products or scale.products
    return replace(
        scale,
        products=n,
        stores=stores or max(1, scale.stores * n // scale.products),
        listings=listings or scale.listings * n // scale.products,
    )


def has_hnsw(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (HNSW_INDEX,)).fetchone() == (True,)


def settle_heap() -> None:
    """Move what the harness holds (ground truth, expected results, query set) out of the collector's reach
    before a timed phase. Full collections over it paused this process for 0.1-0.3 s, 11 times in two minutes
    of a run without the HTTP phase; a pause inside a timed search read as that search's latency (SQL-table
    maxima of 0.15-1.5 s, against < 0.08 s with the heap frozen) and would stall the load loops of a QPS
    window."""
    gc.collect()
    gc.freeze()


def label(radius: float | None) -> str:
    return "global" if radius is None else f"{radius / 1000:g} km"


def pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else None


def summary(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "p99": pct(values, 99),
        "mean": float(np.mean(values)) if values else None,
        "max": float(max(values)) if values else None,
    }


CPU_STATES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_ticks() -> dict[str, int] | None:
    """The machine's CPU time per state over all CPUs (/proc/stat, clock ticks); None where there is none."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    return dict(zip(CPU_STATES, (int(f) for f in fields), strict=False))


def cpu_shares(before: dict[str, int] | None, after: dict[str, int] | None) -> dict[str, float] | None:
    """The share of the machine's CPU time each state took between two `cpu_ticks()`."""
    if before is None or after is None:
        return None
    spent = {name: after.get(name, 0) - before.get(name, 0) for name in before}
    total = sum(spent.values())
    return {name: round(ticks / total, 4) for name, ticks in spent.items()} if total > 0 else None


def speed_probe_ms(repeats: int = 5) -> float:
    """A fixed single-threaded CPU workload (3M iterations of a Python loop), best of `repeats`, in ms. On a
    shared machine the same code runs slower at some moments than at others: this reads higher then, so runs
    (and the start and end of one run) can be compared by it."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        total = 0
        for i in range(3_000_000):
            total += i * i
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 1)


class Phases:
    """Wall time of each step of the run, and how the machine's CPU time was spent meanwhile (the share the
    hypervisor stole from this VM, the share spent waiting for disk)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, dict[str, float]] = {}
        self.current: str | None = None  # the step under way (the one a failure happened in)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        ticks = cpu_ticks()
        print(f"[bench] {name} …", flush=True)
        self.current = name
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - t0, 2)
            shares = cpu_shares(ticks, cpu_ticks())
            if shares is not None:
                self.cpu[name] = shares
            print(f"[bench] {name}: {self.seconds[name]:.1f} s", flush=True)


# --------------------------------------------------------------------------------------------------------
# 1. Data


def _with_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def _db_name(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?", 1)[0]


def datagen_module() -> Any | None:
    try:
        module = importlib.import_module("search_service.demo")
    except ImportError:
        return None
    return module if hasattr(module, "seed") else None


def ensure_database(server_url: str, name: str) -> str:
    with psycopg.connect(_with_db(server_url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')  # name built by us from the scale
    return _with_db(server_url, name)


def read_marker(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    if not row or not row[0]:
        return {}
    try:
        marker = json.loads(row[0])
    except ValueError:
        return {}
    return marker if isinstance(marker, dict) else {}


def write_marker(url: str, marker: dict[str, Any]) -> None:
    text = json.dumps(marker, default=str).replace("'", "''")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"COMMENT ON DATABASE \"{_db_name(url)}\" IS '{text}'")


def wipe(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'alembic_version'"
                # extension tables (PostGIS's spatial_ref_sys) are not ours to empty
                " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
                "                 AND d.objid = c.oid AND d.deptype = 'e')"
            ).fetchall()
        ]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        out = {}
        for table in ("product_master", "store", "store_product", "category"):
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            out[table] = int(row[0]) if row else 0
        row = conn.execute("SELECT count(*) FROM product_master WHERE ai_vector IS NOT NULL").fetchone()
        out["embedded_products"] = int(row[0]) if row else 0
    return out


def _report_dict(report: Any) -> dict[str, Any]:
    if report is None:
        return {}
    if hasattr(report, "__dataclass_fields__"):
        return {k: v for k, v in asdict(report).items() if _jsonable(v)}
    if isinstance(report, dict):
        return {k: v for k, v in report.items() if _jsonable(v)}
    return {"repr": repr(report)}


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, default=str)
    except (TypeError, ValueError):
        return False
    return True


def seed_data(url: str, scale: Scale, seed: int, generator: str, settings: Settings) -> dict[str, Any]:
    """Seed `url` (emptied first); returns what was loaded, how, and how fast."""
    wipe(url)
    t0 = time.perf_counter()
    info: dict[str, Any] = {"generator": generator}
    if generator == "datagen":
        datagen = datagen_module()
        assert datagen is not None and scale.datagen_scale is not None
        report = datagen.seed(
            url,
            scale.datagen_scale,
            seed,
            embed=True,
            cache_dir=settings.cache_dir,
            encoder_config=settings.encoder,
        )
        info["load_report"] = _report_dict(report)
    else:
        spec = SyntheticSpec(
            products=scale.products,
            stores=scale.stores,
            listings=scale.listings,
            seed=seed,
            clusters=max(scale.products // 50, 1),
            rebuild_hnsw=True,
            hnsw=scale.hnsw,
            sigma_m=6000.0,
        )
        seed_synthetic(url, spec, progress=lambda message: print(f"[bench] seeded {message}", flush=True))
        info["synthetic_spec"] = asdict(spec)
    info["seconds"] = round(time.perf_counter() - t0, 2)
    info["counts"] = counts(url)
    rows = sum(info["counts"][t] for t in ("product_master", "store", "store_product", "category"))
    info["rows"] = rows
    report_rate = _rows_per_s(info.get("load_report", {}))
    info["rows_per_s"] = report_rate if report_rate is not None else rows / max(info["seconds"], 1e-9)
    info["rows_per_s_source"] = "generator LoadReport" if report_rate is not None else "rows / wall time"
    return info


def _rows_per_s(report: dict[str, Any]) -> float | None:
    for key in ("rows_per_s", "rows_per_second", "load_rows_per_s"):
        value = report.get(key)
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    return None


SEED_MARK = "BENCH_SEED_JSON:"


def seed_in_subprocess(url: str, scale: Scale, seed: int, generator: str) -> dict[str, Any]:
    """seed_data in a child process: the generator's arrays never swell this process, whose memory high-water
    mark every later child inherits (ru_maxrss survives fork and exec, and the encoder benchmark reads it).
    Its progress lines are passed on as they come."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--seed-only",
            "--database-url",
            url,
            "--scale",
            scale.name,
            "--seed",
            str(seed),
            "--generator",
            generator,
            *(f"--{name}={getattr(scale, name)}" for name in ("products", "stores", "listings")),
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        if line.startswith(SEED_MARK):
            proc.wait()
            return dict(json.loads(line[len(SEED_MARK) :]))
        print(line, end="", flush=True)
        tail = [*tail[-40:], line]
    proc.wait()
    raise RuntimeError(f"seeding {scale.name} failed (exit {proc.returncode}):\n{''.join(tail)}")


VERIFY_SQL = """
SELECT p.name, p.brand, p.description, p.attributes,
       (WITH RECURSIVE path(id, parent_id, name, depth) AS (
            SELECT c.id, c.parent_id, c.name, 0 FROM category c WHERE c.id = p.category_id
            UNION ALL
            SELECT c.id, c.parent_id, c.name, path.depth + 1 FROM category c JOIN path ON c.id = path.parent_id
            WHERE path.depth < 32)
        SELECT coalesce(array_agg(name ORDER BY depth DESC), '{}') FROM path) AS category_path,
       p.ai_vector
FROM product_master p
WHERE p.ai_vector IS NOT NULL
ORDER BY md5(p.id::text || 'verify')
LIMIT %(n)s
"""


def verify_vectors(url: str, settings: Settings, n: int = 24) -> dict[str, Any]:
    """Do the stored vectors belong to their products? Re-embeds n products' composed texts and compares: a stale
    vector cache (a generator change under an unchanged cache key) shows up as cosines far below 1."""
    from embeddings.encoder import load_encoder
    from embeddings.text import compose_text

    with psycopg.connect(url) as conn:
        register_vector(conn)
        rows = conn.execute(VERIFY_SQL, {"n": n}).fetchall()
    if not rows:
        return {"sample": 0}
    texts = [
        compose_text(name=r[0], brand=r[1], description=r[2], attributes=r[3] or {}, category_path=r[4] or ())
        for r in rows
    ]
    fresh = load_encoder(settings.encoder).encode(texts)
    stored = np.stack([as_vector(r[5]) for r in rows])
    stored /= np.maximum(np.linalg.norm(stored, axis=1, keepdims=True), 1e-12)
    cos = (fresh * stored).sum(axis=1)
    return {"sample": len(rows), "cosine_min": float(cos.min()), "cosine_median": float(np.median(cos))}


def prepare_data(args: argparse.Namespace, scale: Scale, settings: Settings, phases: Phases) -> tuple[str, dict]:
    if args.database_url:
        url = args.database_url
    else:
        server = args.server_url or settings.database_url
        url = ensure_database(server, f"plinqy_bench_{scale.name}")
    with phases("migrate"):
        migrate.upgrade(url)
    generator = args.generator
    if generator == "auto":
        generator = "datagen" if scale.datagen_scale and datagen_module() is not None else "synthetic"
    wanted: dict[str, Any] = {"scale": scale.name, "seed": args.seed, "generator": generator}
    if generator == "synthetic":
        wanted |= {"products": scale.products, "stores": scale.stores, "listings": scale.listings}
    marker = read_marker(url)
    current = counts(url)
    if (
        not args.regenerate
        and {k: marker.get(k) for k in wanted} == wanted
        and current["product_master"] > 0
        and marker.get("load")
    ):
        load = dict(marker["load"])
        load["reused"] = True
        print(f"[bench] reusing {_db_name(url)} ({current['product_master']} products, {generator})", flush=True)
    else:
        with phases("generate"):
            load = seed_in_subprocess(url, scale, args.seed, generator)
        write_marker(url, {**wanted, "load": load})
        load["reused"] = False
    if generator == "datagen":
        load["vector_check"] = check = verify_vectors(url, settings)
        print(f"[bench] stored vectors vs fresh embeddings of their texts: {check}", flush=True)
        if check.get("sample") and check["cosine_min"] < 0.98 and not args.no_verify:
            raise SystemExit(
                f"error: the vectors in {_db_name(url)} do not belong to their products (cosine to a fresh embedding "
                f"of the product text: min {check['cosine_min']:.3f}, median {check['cosine_median']:.3f}). "
                "The generator's vector cache is stale: delete .cache/vectors/ and rerun with --regenerate."
            )
    return url, load


# --------------------------------------------------------------------------------------------------------
# 2. Index build and sizes


def reindex_hnsw(url: str) -> dict[str, Any]:
    """REINDEX the HNSW index, timed, with the memory to build it in memory (`search_service.db.hnsw`)."""
    with psycopg.connect(url, autocommit=True) as conn:
        counted = conn.execute("SELECT count(*) FROM product_master WHERE ai_vector IS NOT NULL").fetchone()
        maintenance_work_mem = build_memory(int(counted[0]) if counted else 0)
        conn.execute(psql.SQL("SET maintenance_work_mem = {}").format(psql.Literal(maintenance_work_mem)))
        workers = conn.execute("SHOW max_parallel_maintenance_workers").fetchone()
        t0 = time.perf_counter()
        conn.execute(f"REINDEX INDEX {HNSW_INDEX}")
        seconds = time.perf_counter() - t0
        conn.execute("ANALYZE")
    return {
        "index": HNSW_INDEX,
        "seconds": round(seconds, 2),
        "maintenance_work_mem": maintenance_work_mem,
        "max_parallel_maintenance_workers": int(workers[0]) if workers else None,
    }


def sizes(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        tables = {}
        for table in ("product_master", "store", "store_product", "category", "ai_task"):
            row = conn.execute(
                "SELECT pg_relation_size(c.oid), pg_indexes_size(c.oid), pg_total_relation_size(c.oid)"
                " FROM pg_class c WHERE c.relname = %s AND c.relkind = 'r'",
                (table,),
            ).fetchone()
            if row:
                tables[table] = {"table_bytes": row[0], "indexes_bytes": row[1], "total_bytes": row[2]}
        indexes = {
            r[0]: int(r[1])
            for r in conn.execute(
                "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes ORDER BY 2 DESC"
            ).fetchall()
        }
        db = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return {"tables": tables, "indexes": indexes, "database_bytes": int(db[0]) if db else None}


# --------------------------------------------------------------------------------------------------------
# 3/4. Query set and ground truth


def build_query_set(url: str, scale: Scale, n: int, seed: int) -> tuple[list[qmod.Query], dict[str, Any]]:
    with psycopg.connect(url) as conn:
        products = qmod.sample_products(conn, max(4 * n, 50), seed)
        places, source = _places(conn, seed)
    queries = qmod.build_queries(products, places, n, seed)
    info = {
        "n": len(queries),
        "places_source": source,
        "places": len(places),
        "kinds": dict(Counter(q.kind for q in queries)),
        "place_kinds": dict(Counter(q.place.kind for q in queries)),
        "examples": [q.as_dict() for q in queries[:12]],
    }
    return queries, info


def _places(conn: psycopg.Connection[Any], seed: int) -> tuple[list[qmod.Place], str]:
    """The generator's cities and neighbourhoods when it offers them for this database, else store rings."""
    datagen = datagen_module()
    finder = getattr(datagen, "bench_places", None) if datagen is not None else None
    if callable(finder):
        try:
            found = [qmod.Place(**p) if isinstance(p, dict) else p for p in finder(conn, seed)]
        except Exception as exc:  # the generator's map is optional; fall back, but say so
            print(f"[bench] datagen places unavailable ({type(exc).__name__}: {exc}); using store rings")
        else:
            if found:
                return found, "datagen"
    return qmod.places_from_stores(conn, seed), "store rings"


@dataclass
class Truth:
    """Exact filtered top-k, brute force in numpy."""

    product_ids: list[UUID]
    index_of: dict[UUID, int]
    vectors: np.ndarray  # (n, d) float32, L2-normalised; zero rows for products without a vector
    product_ok: np.ndarray  # active and embedded
    store_active: np.ndarray
    listing_product: np.ndarray  # sellable listings only (active, quantity > 0)
    listing_store: np.ndarray
    store_sets: dict[tuple[float, float, float], np.ndarray] = field(default_factory=dict)

    @classmethod
    def load(cls, url: str) -> Truth:
        with psycopg.connect(url) as conn:
            register_vector(conn)
            ids: list[UUID] = []
            vecs: list[np.ndarray | None] = []
            ok: list[bool] = []
            with conn.cursor(binary=True) as cur:
                cur.execute("SELECT id, ai_vector, is_active FROM product_master ORDER BY id")
                for pid, vec, active in cur:
                    ids.append(pid)
                    vecs.append(None if vec is None else as_vector(vec))
                    ok.append(bool(active) and vec is not None)
            dim = next((v.shape[0] for v in vecs if v is not None), 384)
            matrix = np.zeros((len(ids), dim), dtype=np.float32)
            for i, v in enumerate(vecs):
                if v is not None:
                    matrix[i] = v
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            matrix /= np.maximum(norms, 1e-12)
            store_active = np.asarray(
                [bool(r[0]) for r in conn.execute("SELECT is_active FROM store ORDER BY id").fetchall()], dtype=bool
            )
            text = bytearray()
            with conn.cursor().copy(
                "COPY (SELECT pi.i, si.i FROM store_product sp"
                " JOIN (SELECT id, (row_number() OVER (ORDER BY id))::int - 1 AS i FROM product_master) pi"
                "   ON pi.id = sp.product_master_id"
                " JOIN (SELECT id, (row_number() OVER (ORDER BY id))::int - 1 AS i FROM store) si"
                "   ON si.id = sp.store_id"
                " WHERE sp.is_active AND sp.quantity > 0) TO STDOUT"
            ) as copy:
                for chunk in copy:
                    text += chunk
        # np.fromstring in text mode (not deprecated): 10x faster than int() per value on millions of listings
        pairs = (
            np.fromstring(bytes(text), dtype=np.int64, sep=" ").reshape(-1, 2)
            if text.strip()
            else np.zeros((0, 2), dtype=np.int64)
        )
        return cls(
            product_ids=ids,
            index_of={pid: i for i, pid in enumerate(ids)},
            vectors=matrix,
            product_ok=np.asarray(ok, dtype=bool),
            store_active=store_active,
            listing_product=pairs[:, 0].copy(),
            listing_store=pairs[:, 1].copy(),
        )

    def stores_in(self, conn: psycopg.Connection[Any], lat: float, lon: float, radius: float) -> np.ndarray:
        """Indices of active stores within `radius` of the point: PostGIS's own geodesic ST_DWithin."""
        key = (lat, lon, radius)
        if key not in self.store_sets:
            rows = conn.execute(
                "SELECT s.i FROM (SELECT (row_number() OVER (ORDER BY id))::int - 1 AS i, location, is_active"
                " FROM store) s WHERE s.is_active"
                " AND ST_DWithin(s.location, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s)",
                (lon, lat, radius),
            ).fetchall()
            self.store_sets[key] = np.asarray([r[0] for r in rows], dtype=np.int64)
        return self.store_sets[key]

    def candidates(self, store_idx: np.ndarray | None) -> np.ndarray:
        """Products with a sellable listing at one of the stores (None: at any active store)."""
        mask_store = self.store_active.copy() if store_idx is None else np.zeros(len(self.store_active), bool)
        if store_idx is not None:
            mask_store[store_idx] = True
        cand = np.zeros(len(self.product_ids), dtype=bool)
        cand[self.listing_product[mask_store[self.listing_store]]] = True
        return cand & self.product_ok


@dataclass
class Expected:
    top: list[int]  # product indices, best first
    kth_score: float  # similarity of the k-th (or last) true result
    n_candidates: int
    candidate_mask: np.ndarray
    top_scores: list[float] = field(default_factory=list)  # similarities of `top`


def exact_topk(all_scores: np.ndarray, cand: np.ndarray, k: int) -> Expected:
    """Top-k of the candidates by exact similarity; `all_scores` = vectors @ q over the whole catalogue."""
    n = int(np.count_nonzero(cand))
    if n == 0:
        return Expected([], math.inf, 0, cand)
    masked = np.where(cand, all_scores, -np.inf)
    kk = min(k, n)
    part = np.argpartition(-masked, kk - 1)[:kk]
    order = part[np.argsort(-masked[part], kind="stable")]
    return Expected([int(j) for j in order], float(masked[order[-1]]), n, cand, [float(x) for x in masked[order]])


@dataclass
class Scored:
    recall: float
    short: bool
    invalid: int  # results that do not pass the filter (should be 0)
    empty: bool = False  # nothing qualifies (e.g. no store in the radius): recall is trivially 1
    sim_loss: float = 0.0  # mean similarity given up per rank: (Σ true top-k sims − Σ returned top-k sims) / k


def score(truth: Truth, exp: Expected, q: np.ndarray, got: Sequence[UUID], k: int, limit: int) -> Scored:
    got_idx = [truth.index_of.get(g, -1) for g in got]
    invalid = sum(1 for i in got_idx if i < 0 or not exp.candidate_mask[i])
    short = len(got) < min(limit, exp.n_candidates)
    if not exp.top:
        return Scored(1.0 if not got else 0.0, short, invalid, empty=True)
    want = set(exp.top)
    hits = 0
    got_sims: list[float] = []
    for i in got_idx[:k]:
        if i < 0 or not exp.candidate_mask[i]:
            continue
        sim = float(truth.vectors[i] @ q)
        got_sims.append(sim)
        if i in want or sim >= exp.kth_score - TIE_EPS:
            hits += 1
    loss = (sum(exp.top_scores) - sum(sorted(got_sims, reverse=True)[: len(exp.top)])) / len(exp.top)
    return Scored(min(hits, len(exp.top)) / len(exp.top), short, invalid, sim_loss=max(loss, 0.0))


# --------------------------------------------------------------------------------------------------------
# 5. SQL-only: engine and naive plan


NAIVE_SETTINGS = "SET LOCAL hnsw.iterative_scan = off; SET LOCAL jit = off"
FORCED_SETTINGS = (
    NAIVE_SETTINGS + "; SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off;"
    " SET LOCAL enable_incremental_sort = off; SET LOCAL enable_bitmapscan = off"
)


async def naive(
    conn: asyncpg.Connection, q: np.ndarray, query: qmod.Query, radius: float | None, k: int, forced: bool
) -> list[UUID]:
    async with conn.transaction(readonly=True):
        await conn.execute(FORCED_SETTINGS if forced else NAIVE_SETTINGS)
        if radius is None:
            rows = await conn.fetch(NAIVE_GLOBAL_SQL, q, k)
        else:
            rows = await conn.fetch(NAIVE_SQL, q, query.place.lon, query.place.lat, radius, k)
    return [r["id"] for r in rows]


def _plan_nodes(node: dict[str, Any], depth: int = 0) -> list[str]:
    name = node.get("Node Type", "?")
    if node.get("Index Name"):
        name += f" using {node['Index Name']}"
    elif node.get("Relation Name"):
        name += f" on {node['Relation Name']}"
    out = ["  " * depth + name]
    for child in node.get("Plans", []) or []:
        out.extend(_plan_nodes(child, depth + 1))
    return out


async def naive_plan(
    conn: asyncpg.Connection, q: np.ndarray, query: qmod.Query, radius: float | None, k: int, forced: bool
) -> dict[str, Any]:
    async with conn.transaction(readonly=True):
        await conn.execute(FORCED_SETTINGS if forced else NAIVE_SETTINGS)
        if radius is None:
            raw = await conn.fetchval("EXPLAIN (FORMAT JSON) " + NAIVE_GLOBAL_SQL, q, k)
        else:
            raw = await conn.fetchval(
                "EXPLAIN (FORMAT JSON) " + NAIVE_SQL, q, query.place.lon, query.place.lat, radius, k
            )
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    nodes = _plan_nodes(plan)
    return {"uses_hnsw": any(HNSW_INDEX in n for n in nodes), "nodes": nodes}


def _bound(name: str, prefix: str = "", **values: Any) -> tuple[Any, ...]:
    """(prefix + the engine's statement `name`, its arguments bound by name), for `conn.fetch(*...)`."""
    stmt = statement("engine/search", name)
    return (prefix + stmt.sql, *stmt.bind(**values))


async def explain_engine(
    conn: asyncpg.Connection,
    params: SearchParams,
    q: np.ndarray,
    config: EngineConfig | None = None,
    vectors: VectorCache | None = None,
) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the vector-side statement the engine picks for these parameters (the
    strategy choice is replayed with the engine's own functions; a fallback explains both statements)."""
    config = config or EngineConfig()
    geo = params.lat is not None and params.lon is not None
    out: list[str] = []
    async with conn.transaction(readonly=True):
        await conn.execute(settings_sql(config))
        ctx = await conn.fetchrow(
            *_bound(
                "search_context",
                lon=params.lon,
                lat=params.lat,
                radius_m=float(params.radius_m),
                category_id=None,
                **NO_CHANGES,
                **NOT_LOCATED,
            )
        )
        assert ctx is not None
        store_ids = list(ctx["store_ids"] or []) if geo else None
        if store_ids is not None and not store_ids:
            return "no stores in the radius"
        est = estimate(await read_stats(conn), None, None if store_ids is None else len(store_ids), params)
        choice = choose_strategy(est, params.limit, config, None if vectors is None else len(vectors))
        listed: dict[str, Any] = {"store_ids": store_ids, "in_stock": True, "min_price": None, "max_price": None}
        args: dict[str, Any] = {**listed, "category_ids": None, "exclude_id": None, "brand": None, "excluding": None}
        scan_cost = (
            ""
            if choice.scan_cost_us is None or choice.gather_cost_us is None
            else f", scan cost {choice.scan_cost_us / 1000:.1f} ms, gather cost {choice.gather_cost_us / 1000:.1f} ms"
        )
        out.append(
            f"-- stores in scope: {'all' if store_ids is None else len(store_ids)}; estimated candidates "
            f"{est.candidates:.0f} (selectivity {est.selectivity:.4f}); plan {choice.plan} "
            f"(exact cost {choice.exact_cost_us / 1000:.1f} ms, hnsw cost {choice.hnsw_cost_us / 1000:.1f} ms"
            f"{scan_cost})"
        )
        exact = choice.plan == "exact"
        if choice.plan == "scan" and vectors is not None:
            t0 = time.perf_counter()
            ids = vectors.ids_of(vectors.rank(q).top(choice.fetch)[0])
            out.append(f"-- in-memory scores of {len(vectors):,} vectors: {(time.perf_counter() - t0) * 1000:.1f} ms")
            rows = await conn.fetch(
                *_bound(
                    "filter_ranked",
                    "EXPLAIN (ANALYZE, BUFFERS) ",
                    query_vector=q,
                    ids=ids,
                    ids_listed=False,
                    changed_since=vectors.watermark,
                    **args,
                    **NO_NEAR,
                )
            )
            out.append(f"-- filter_ranked, first slice ({choice.fetch} ids)")
            out.extend(r[0] for r in rows)
        elif choice.plan == "gather" and vectors is not None:
            rows = await conn.fetch(*_bound("listed_products", "EXPLAIN (ANALYZE, BUFFERS) ", **listed))
            out.append("-- listed_products")
            out.extend(r[0] for r in rows)
            t0 = time.perf_counter()
            ranking = vectors.rank_subset(q, await conn.fetchval(*_bound("listed_products", **listed)))
            ids = vectors.ids_of(ranking.top(2 * params.limit)[0])
            took_ms = (time.perf_counter() - t0) * 1000
            out.append(f"-- in-memory scores of {len(ranking):,} listed products: {took_ms:.1f} ms")
            rows = await conn.fetch(
                *_bound(
                    "filter_ranked",
                    "EXPLAIN (ANALYZE, BUFFERS) ",
                    query_vector=q,
                    ids=ids,
                    ids_listed=True,  # listed_products' ids
                    changed_since=vectors.watermark,
                    **args,
                    **NO_NEAR,
                )
            )
            out.append(f"-- filter_ranked, first slice ({len(ids)} ids)")
            out.extend(r[0] for r in rows)
        elif not exact:
            rows = await conn.fetch(
                *_bound("rank_hnsw", "EXPLAIN (ANALYZE, BUFFERS) ", query_vector=q, fetch_n=choice.fetch, **args)
            )
            out.append(f"-- rank_hnsw (fetch {choice.fetch})")
            out.extend(r[0] for r in rows)
            got = await conn.fetch(*_bound("rank_hnsw", query_vector=q, fetch_n=choice.fetch, **args))
            exact = len(got) < choice.fetch
        if exact:
            rows = await conn.fetch(
                *_bound("rank_exact", "EXPLAIN (ANALYZE, BUFFERS) ", query_vector=q, top_n=params.limit, **args)
            )
            out.append("-- rank_exact")
            out.extend(r[0] for r in rows)
    return "\n".join(out)


def _params(query: qmod.Query, radius: float | None, limit: int, mode: str) -> SearchParams:
    return SearchParams(
        q=query.text,
        lat=None if radius is None else query.place.lat,
        lon=None if radius is None else query.place.lon,
        radius_m=5000.0 if radius is None else radius,
        limit=limit,
        mode=mode,  # type: ignore[arg-type]
    )


def _plan_stats(times: list[float], scored: list[Scored], strategies: Counter[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"latency_ms": summary(times)}
    if scored:
        out["recall_at_k"] = float(np.mean([s.recall for s in scored]))
        out["recall_min"] = float(min(s.recall for s in scored))
        out["queries_below_0_99"] = sum(1 for s in scored if s.recall < 0.99)
        out["short_rate"] = float(np.mean([s.short for s in scored]))
        out["invalid_results"] = int(sum(s.invalid for s in scored))
        with_candidates = [s for s in scored if not s.empty]
        out["queries_with_candidates"] = len(with_candidates)
        out["recall_at_k_with_candidates"] = (
            float(np.mean([s.recall for s in with_candidates])) if with_candidates else None
        )
        out["similarity_loss_mean"] = float(np.mean([s.sim_loss for s in scored]))
        out["similarity_loss_max"] = float(max(s.sim_loss for s in scored))
    if strategies is not None:
        out["strategies"] = dict(strategies)
    return out


SWEEP_RADII: tuple[float | None, ...] = (5000.0, 20000.0, None)
SWEEP_CONFIGS: tuple[dict[str, Any], ...] = (
    {"ef_search": 100, "overfetch": 2.0},
    {"ef_search": 200, "overfetch": 2.0},
    {"ef_search": 400, "overfetch": 2.0},
    {"ef_search": 100, "overfetch": 10.0},
    {"ef_search": 400, "overfetch": 10.0},
    {"ef_search": 1000, "overfetch": 10.0},
    {"force": "exact"},
)


async def sweep_engine(
    url: str,
    truth: Truth,
    queries: Sequence[qmod.Query],
    vectors: np.ndarray,
    expected: dict[tuple[int, float | None], Expected],
    k: int,
    limit: int,
    n: int,
) -> list[dict[str, Any]]:
    """`--sweep`: recall and latency of engine configurations (EngineConfig knobs) at the radii where the HNSW
    plans run, over the first n queries: evidence for tuning, the defaults are measured by bench_sql."""
    conn = await asyncpg.connect(url)
    await register_vector_async(conn)
    rows: list[dict[str, Any]] = []
    try:
        for radius in SWEEP_RADII:
            for knobs in SWEEP_CONFIGS:
                config = EngineConfig(**knobs)
                times: list[float] = []
                scored: list[Scored] = []
                strategies: Counter[str] = Counter()
                for i, query in enumerate(queries[:n]):
                    t0 = time.perf_counter()
                    res = await search(conn, _params(query, radius, limit, "semantic"), vectors[i], config)
                    times.append((time.perf_counter() - t0) * 1000)
                    got = [h.product.id for h in res.results]
                    scored.append(score(truth, expected[(query.id, radius)], vectors[i], got, k, limit))
                    strategies[res.strategy] += 1
                row = {"radius": label(radius), "config": knobs, **_plan_stats(times, scored, strategies)}
                rows.append(row)
                print(
                    f"[bench] sweep {label(radius):>7} {knobs}: p50 {row['latency_ms']['p50']:.1f} ms"
                    f" p95 {row['latency_ms']['p95']:.1f} recall {row['recall_at_k']:.3f}"
                    f" loss {row['similarity_loss_mean']:.4f} {dict(strategies)}",
                    flush=True,
                )
    finally:
        await conn.close()
    return rows


async def load_vector_cache(conn: asyncpg.Connection) -> tuple[VectorCache, dict[str, Any]]:
    """The API's in-memory vector copy, loaded as the API loads it (the engine's exact scan needs it)."""
    cache = VectorCache()
    t0 = time.perf_counter()
    await cache.load(conn)
    return cache, {"vectors": len(cache), "mib": cache.nbytes / 2**20, "load_s": time.perf_counter() - t0}


async def bench_sql(
    url: str,
    truth: Truth,
    queries: Sequence[qmod.Query],
    vectors: np.ndarray,
    expected: dict[tuple[int, float | None], Expected],
    k: int,
    limit: int,
    with_naive: bool,
    naive_queries: int,
    with_forced: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per radius: the engine (semantic: latency, recall, short results, strategies; hybrid: latency) over every
    query, and the naive statement (planner's plan and HNSW forced) over the first `naive_queries` of them (it
    takes up to seconds per query at wide radii), compared with the engine on that same subset. Also returns the
    in-memory vector copy's size and load time."""
    conn = await asyncpg.connect(url)
    await register_vector_async(conn)
    results: dict[str, Any] = {}
    api, copy_info = await open_api_engine(url, Settings.from_env())  # the engine as an API worker runs it
    vcache = api.vectors
    try:
        for radius in RADII:
            lab = label(radius)
            stats: dict[str, tuple[list[float], list[Scored], Counter[str]]] = {
                name: ([], [], Counter()) for name in ("engine_semantic", "engine_hybrid", "naive", "naive_forced")
            }
            slowest: tuple[float, int] = (-1.0, 0)
            worst: tuple[float, float, int] = (2.0, 0.0, 0)  # (recall, -similarity loss, query index)
            per_strategy: dict[str, list[float]] = {}
            strategy_ms: dict[str, list[float]] = {}
            for i, query in enumerate(queries[: min(5, len(queries))]):  # warm-up, not measured
                await api.search(_params(query, radius, limit, "semantic"), vectors[i])
            for i, query in enumerate(queries):
                q = vectors[i]
                exp = expected[(query.id, radius)]
                t0 = time.perf_counter()
                res = await api.search(_params(query, radius, limit, "semantic"), q)
                ms = (time.perf_counter() - t0) * 1000
                st = stats["engine_semantic"]
                st[0].append(ms)
                sc = score(truth, exp, q, [h.product.id for h in res.results], k, limit)
                st[1].append(sc)
                st[2][res.strategy] += 1
                per_strategy.setdefault(res.strategy, []).append(sc.recall)
                strategy_ms.setdefault(res.strategy, []).append(ms)
                slowest = max(slowest, (ms, i))
                worst = min(worst, (sc.recall, -sc.sim_loss, i))
                t0 = time.perf_counter()
                hres = await api.search(_params(query, radius, limit, "hybrid"), q)
                stats["engine_hybrid"][0].append((time.perf_counter() - t0) * 1000)
                stats["engine_hybrid"][2][hres.strategy] += 1
                if with_naive and i < naive_queries:
                    for name, forced in (("naive", False), ("naive_forced", True))[: 2 if with_forced else 1]:
                        t0 = time.perf_counter()
                        got = await naive(conn, q, query, radius, limit, forced)
                        stats[name][0].append((time.perf_counter() - t0) * 1000)
                        stats[name][1].append(score(truth, exp, q, got, k, limit))
            entry: dict[str, Any] = {
                "radius_m": radius,
                "candidates_median": float(np.median([expected[(qq.id, radius)].n_candidates for qq in queries])),
                "candidates_min": int(min(expected[(qq.id, radius)].n_candidates for qq in queries)),
                "stores_median": float(
                    np.median(
                        [
                            len(truth.store_sets.get((qq.place.lat, qq.place.lon, radius), []))
                            if radius is not None
                            else int(truth.store_active.sum())
                            for qq in queries
                        ]
                    )
                ),
            }
            for name, (times, scored, strategies) in stats.items():
                if times:
                    entry[name] = _plan_stats(times, scored, strategies if name.startswith("engine") else None)
            if with_naive:
                probe = queries[0]
                entry["naive"]["plan"] = await naive_plan(conn, vectors[0], probe, radius, limit, False)
                if with_forced:
                    entry["naive_forced"]["plan"] = await naive_plan(conn, vectors[0], probe, radius, limit, True)
                n_sub = len(stats["naive"][0])
                sub_times = stats["engine_semantic"][0][:n_sub]
                entry["naive_queries"] = n_sub
                entry["engine_on_naive_subset"] = {
                    "latency_ms": summary(sub_times),
                    "recall_at_k": float(np.mean([sc.recall for sc in stats["engine_semantic"][1][:n_sub]])),
                }
                e50 = pct(sub_times, 50)
                n50 = entry["naive"]["latency_ms"]["p50"]
                entry["ratio_naive_over_engine_p50"] = n50 / e50 if e50 else None
                if with_forced:
                    f50 = entry["naive_forced"]["latency_ms"]["p50"]
                    entry["ratio_naive_forced_over_engine_p50"] = f50 / e50 if e50 else None
            slow_query = queries[slowest[1]]
            entry["slowest_engine_query"] = {
                "ms": slowest[0],
                "query": slow_query.as_dict(),
                "explain_analyze": await explain_engine(
                    conn, _params(slow_query, radius, limit, "semantic"), vectors[slowest[1]], vectors=vcache
                ),
            }
            entry["engine_semantic"]["recall_by_strategy"] = {
                name: {"queries": len(v), "recall_at_k": float(np.mean(v)), "latency_ms": summary(strategy_ms[name])}
                for name, v in per_strategy.items()
            }
            if worst[0] < 1.0:
                bad = queries[worst[2]]
                entry["worst_recall_engine_query"] = {
                    "recall": worst[0],
                    "similarity_loss": -worst[1],
                    "query": bad.as_dict(),
                    "explain_analyze": await explain_engine(
                        conn, _params(bad, radius, limit, "semantic"), vectors[worst[2]], vectors=vcache
                    ),
                }
            results[lab] = entry
            es = entry["engine_semantic"]
            line = (
                f"[bench] sql {lab:>7}: engine p50 {es['latency_ms']['p50']:.1f} ms p95 {es['latency_ms']['p95']:.1f}"
                f" recall {es['recall_at_k']:.3f} short {es['short_rate']:.3f} {dict(es['strategies'])}"
            )
            if with_naive:
                nv = entry["naive"]
                line += (
                    f" | naive p50 {nv['latency_ms']['p50']:.1f} recall {nv['recall_at_k']:.3f}"
                    f" hnsw={nv['plan']['uses_hnsw']}"
                )
                if with_forced:
                    line += (
                        f" | forced p50 {entry['naive_forced']['latency_ms']['p50']:.1f}"
                        f" recall {entry['naive_forced']['recall_at_k']:.3f}"
                    )
            print(line, flush=True)
    finally:
        await api.close()
        await conn.close()
    return results, copy_info


# --------------------------------------------------------------------------------------------------------
# 6. HTTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_bytes(pid: int) -> dict[str, int | None]:
    """VmHWM (peak resident set) and VmRSS of a process, from /proc."""
    out: dict[str, int | None] = {"vm_hwm": None, "vm_rss": None}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                out["vm_hwm"] = int(line.split()[1]) * 1024
            elif line.startswith("VmRSS:"):
                out["vm_rss"] = int(line.split()[1]) * 1024
    return out


def process_memory(pid: int) -> list[dict[str, Any]]:
    """RSS, PSS and peak RSS of a process and its children (serve's supervisor and workers), after the load:
    PSS shares each page among the processes that map it, so their sum is what the API costs the machine."""
    out = []
    for each in [pid, *child_pids(pid)]:
        entry: dict[str, Any] = {"pid": each, **peak_rss_bytes(each)}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/smaps_rollup").read_text().splitlines():
                name, _, rest = line.partition(":")
                if name in ("Rss", "Pss", "Pss_Anon", "Pss_File"):
                    entry[name.lower()] = int(rest.split()[0]) * 1024
        out.append(entry)
    return out


def child_pids(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def local_postmaster(url: str) -> int | None:
    """The PostgreSQL server's postmaster PID when it runs on this machine (its CPU can then be read)."""
    with psycopg.connect(url) as conn:  # read while the backend lives
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        return None if row is None else cputime.postmaster_of(int(row[0]))


class Server:
    """`python -m search_service serve --workers N` against the benchmark database, in a subprocess."""

    def __init__(self, url: str, query_cache: int, log_path: Path, workers: int = 1, holds_vectors: int = 0) -> None:
        """holds_vectors: the API's in-memory vector copy is allowed at least this many vectors
        (PLINQY_VECTOR_CACHE_MAX), so that it serves the catalogue on the plans the SQL-only part measured."""
        self.url = url
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        self.vector_cache_max = max(holds_vectors, Settings.from_env(env).vector_cache_max)
        env.update(
            {
                "DATABASE_URL": url,
                "PLINQY_QUERY_CACHE_SIZE": str(query_cache),
                "PLINQY_STATEMENT_TIMEOUT_MS": env.get("PLINQY_STATEMENT_TIMEOUT_MS", "5000"),
                "PLINQY_VECTOR_CACHE_MAX": str(self.vector_cache_max),
            }
        )
        self.log_path = log_path
        self._log = log_path.open("wb")
        address = ["--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "search_service", "serve", *address, "--workers", str(workers)],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout_s: float = 180.0) -> float:
        import httpx

        # Each poll is a new connection, which any worker process may accept: one ready answer only says that one
        # worker is ready, and a client kept alive on another got nothing but 503s for its first requests (seen
        # in a smoke run). Ready means this many ready answers in a row, which every worker has given by then.
        in_a_row = 8 * self.workers if self.workers > 1 else 1
        ready = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the API exited with {self.proc.returncode}; see {self.log_path}")
            ok = False
            with contextlib.suppress(httpx.HTTPError):
                ok = httpx.get(self.base + "/readyz", timeout=2.0).status_code == 200
            ready = ready + 1 if ok else 0
            if ready >= in_a_row:
                return time.perf_counter() - t0
            if not ok:
                time.sleep(0.25)
        raise RuntimeError(f"the API was not ready after {timeout_s:.0f} s; see {self.log_path}")

    def wait_warm(self, timeout_s: float = 180.0) -> float:
        """Seconds after ready until every worker has built its suggestion index (`/readyz` checks.suggestions
        ok or off, as many answers in a row as `wait_ready` wants): the builds' CPU (~5-9 s of PostgreSQL a worker
        at 100k) stays out of the measured windows. A server whose answer lacks the check counts as warm."""
        import httpx

        in_a_row = 8 * self.workers if self.workers > 1 else 1
        warm, t0 = 0, time.perf_counter()
        while warm < in_a_row:
            if time.perf_counter() - t0 > timeout_s:
                raise RuntimeError(f"the API's suggestion index was not built after {timeout_s:.0f} s")
            state = "building"
            with contextlib.suppress(httpx.HTTPError, ValueError):
                state = httpx.get(self.base + "/readyz", timeout=2.0).json()["checks"].get("suggestions", "ok")
            warm = warm + 1 if state in ("ok", "off") else 0
            if warm == 0:
                time.sleep(0.25)
        return time.perf_counter() - t0

    def peak_rss(self) -> dict[str, int | None]:
        """The API's peak RSS: of its one process, or the largest of its worker processes."""
        pids = child_pids(self.proc.pid) if self.workers > 1 else [self.proc.pid]
        readings = [peak_rss_bytes(pid) for pid in pids] or [peak_rss_bytes(self.proc.pid)]
        return max(readings, key=lambda r: r["vm_hwm"] or 0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def _http_params(query: qmod.Query, radius: float | None, limit: int, mode: str) -> dict[str, str]:
    p = {"q": query.text, "limit": str(limit), "mode": mode}
    if radius is not None:
        p.update({"lat": f"{query.place.lat:.7f}", "lon": f"{query.place.lon:.7f}", "radius_m": f"{radius:g}"})
    return p


async def _qps(
    base: str,
    queries: Sequence[qmod.Query],
    radius: float | None,
    limit: int,
    mode: str,
    conc: int,
    seconds: float,
    meter: cputime.CpuMeter | None = None,
) -> dict[str, Any]:
    # aiohttp: the load generator shares the machine with the API and PostgreSQL, and costs ~0.5 ms of CPU per
    # request where httpx's async client cost ~2.3 ms (measured here), CPU the server would otherwise have.
    import aiohttp

    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    deadline = time.perf_counter() + seconds
    timeout = aiohttp.ClientTimeout(total=30.0)
    connector = aiohttp.TCPConnector(limit=conc)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:

        async def loop(worker: int) -> None:
            i = worker * max(len(queries) // max(conc, 1), 1)
            while time.perf_counter() < deadline:
                query = queries[i % len(queries)]
                i += 1
                t0 = time.perf_counter()
                try:
                    async with session.get("/v1/search", params=_http_params(query, radius, limit, mode)) as r:
                        await r.read()
                        statuses[str(r.status)] += 1
                        if r.status == 200:
                            latencies.append((time.perf_counter() - t0) * 1000)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    statuses[type(exc).__name__] += 1

        cpu_before = None if meter is None else meter.read()
        t0 = time.perf_counter()
        await asyncio.gather(*(loop(w) for w in range(conc)))
        elapsed = time.perf_counter() - t0
        cpu_after = None if meter is None else meter.read()
    ok = statuses.get("200", 0)
    cpu = None
    if cpu_before is not None and cpu_after is not None:
        cpu = cputime.per_request(cpu_before, cpu_after, sum(statuses.values()))
    return {
        "concurrency": conc,
        "mode": mode,
        "seconds": round(elapsed, 2),
        "qps": ok / elapsed,
        "ok": ok,
        "errors": {k: v for k, v in statuses.items() if k != "200"},
        "latency_ms": summary(latencies),
        "cpu_ms_per_request": cpu,
    }


def _cpu_note(cpu: dict[str, float | None] | None) -> str:
    """CPU ms per request of a c=8 window for a progress line."""
    if not cpu:
        return ""
    parts = [f"{name} {cpu[name]:.1f}" for name in ("api", "database", "client") if cpu.get(name) is not None]
    return "; c8 cpu ms/request " + ", ".join(parts)


def _ms1(value: float | None) -> str:
    """A latency for a progress line; "–" when no request of the set succeeded (its errors say why)."""
    return "–" if value is None else f"{value:.1f}"


async def _qps_windows(
    base: str,
    queries: Sequence[qmod.Query],
    radius: float | None,
    limit: int,
    modes: Sequence[str],
    conc: int,
    seconds: float,
    windows: int,
    meter: cputime.CpuMeter | None = None,
) -> dict[str, dict[str, Any]]:
    """Per mode, the median of `windows` QPS windows, the modes interleaved so that a slow minute of the shared
    machine falls on both: one window's rate moved by ~10 % between runs here. The median window's figures,
    with every window's rate (`windows_qps`) and CPU per request, and the errors of all of them."""
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for _ in range(max(windows, 1)):
        for mode in modes:
            runs[mode].append(await _qps(base, queries, radius, limit, mode, conc, seconds, meter))
    out: dict[str, dict[str, Any]] = {}
    for mode, results in runs.items():
        median = dict(sorted(results, key=lambda r: r["qps"])[len(results) // 2])
        median["windows_qps"] = [r["qps"] for r in results]
        median["windows_cpu_ms_per_request"] = [r["cpu_ms_per_request"] for r in results]
        median["errors"] = dict(sum((Counter(r["errors"]) for r in results), Counter()))
        out[mode] = median
    return out


def bench_http(
    url: str,
    truth: Truth,
    queries: Sequence[qmod.Query],
    vectors: np.ndarray,
    expected: dict[tuple[int, float | None], Expected],
    k: int,
    limit: int,
    qps_seconds: float,
    qps_mode: str,
    query_cache: int,
    log_dir: Path,
    cached_qps_seconds: float = 0.0,
    api_workers: int = 1,
    qps_windows: int = 1,
) -> dict[str, Any]:
    import httpx

    # The SQL-only part held every vector; above PLINQY_VECTOR_CACHE_MAX (1M by default) the API
    # would hold none and answer on HNSW plans instead, so its cap is raised to the catalogue.
    holds = len(truth.product_ids)
    server = Server(url, query_cache, log_dir / "api-server.log", api_workers, holds_vectors=holds)
    out: dict[str, Any] = {
        "query_cache_size": query_cache,
        "api_vector_cache_max": server.vector_cache_max,
        "qps_mode": qps_mode,
        "qps_c8_windows": qps_windows,
        "api_workers": api_workers,
        "engine_fingerprint_at_server_start": engine_fingerprint(),
        "radii": {},
    }
    try:
        out["ready_after_s"] = round(server.wait_ready(), 2)
        out["warm_after_s"] = round(server.wait_warm(), 2)
        meter = cputime.CpuMeter(server.proc.pid, local_postmaster(url))
        out["cpu_measured"] = {"api": True, "database": meter.postmaster_pid is not None, "client": True}
        with httpx.Client(base_url=server.base, timeout=30.0) as client:
            for query in queries[: min(5, len(queries))]:  # warm-up
                client.get("/v1/search", params=_http_params(query, 5000.0, limit, "hybrid"))
            for radius in RADII:
                lab = label(radius)
                entry: dict[str, Any] = {"radius_m": radius}
                for mode in ("semantic", "hybrid"):
                    times: list[float] = []
                    took: list[float] = []
                    scored: list[Scored] = []
                    strategies: Counter[str] = Counter()
                    errors: Counter[int] = Counter()
                    for i, query in enumerate(queries):
                        t0 = time.perf_counter()
                        r = client.get("/v1/search", params=_http_params(query, radius, limit, mode))
                        ms = (time.perf_counter() - t0) * 1000
                        if r.status_code != 200:
                            errors[r.status_code] += 1
                            continue
                        body = r.json()
                        times.append(ms)
                        took.append(float(body.get("took_ms", 0.0)))
                        strategies[str(body.get("strategy"))] += 1
                        if mode == "semantic":
                            got = [UUID(h["product"]["id"]) for h in body["results"]]
                            scored.append(score(truth, expected[(query.id, radius)], vectors[i], got, k, limit))
                    stats = _plan_stats(times, scored, strategies)
                    stats["server_took_ms"] = summary(took)
                    stats["errors"] = dict(errors)
                    entry[mode] = stats
                other = "semantic" if qps_mode == "hybrid" else "hybrid"
                c8 = asyncio.run(
                    _qps_windows(
                        server.base, queries, radius, limit, (qps_mode, other), 8, qps_seconds, qps_windows, meter
                    )
                )
                entry["qps"] = {
                    str(conc): c8[qps_mode]
                    if conc == 8
                    else asyncio.run(_qps(server.base, queries, radius, limit, qps_mode, conc, qps_seconds, meter))
                    for conc in CONCURRENCIES
                }
                entry["qps_other_mode"] = {"8": c8[other]}
                out["radii"][lab] = entry
                sem = entry["semantic"]
                print(
                    f"[bench] http {lab:>7}: semantic p50 {_ms1(sem['latency_ms']['p50'])} p95"
                    f" {_ms1(sem['latency_ms']['p95'])} recall {sem.get('recall_at_k', float('nan')):.3f};"
                    f" hybrid p95 {_ms1(entry['hybrid']['latency_ms']['p95'])};"
                    f" errors {sem['errors'] or 0} / {entry['hybrid']['errors'] or 0};"
                    " qps "
                    + ", ".join(f"c{c}={v['qps']:.0f}" for c, v in entry["qps"].items())
                    + f" ({qps_mode}), c8={entry['qps_other_mode']['8']['qps']:.0f} ({other})"
                    + _cpu_note(entry["qps"]["8"].get("cpu_ms_per_request")),
                    flush=True,
                )
        out["api_rss_bytes"] = server.peak_rss()
        out["api_processes"] = process_memory(server.proc.pid)
    finally:
        server.stop()
    if cached_qps_seconds > 0 and query_cache == 0:
        # The same load with the API's query-embedding cache on and warm (the loops repeat the query set): what
        # the database side sustains when the model is out of the way, next to the every-request-embeds figure.
        cached = Server(url, 1024, log_dir / "api-server-cached.log", api_workers, holds_vectors=holds)
        try:
            cached.wait_ready()
            cached.wait_warm()
            with httpx.Client(base_url=cached.base, timeout=30.0) as client:
                for query in queries:
                    client.get("/v1/search", params=_http_params(query, None, limit, qps_mode))
            for radius in RADII:
                entry = out["radii"][label(radius)]
                entry["qps_cached"] = {
                    "8": asyncio.run(_qps(cached.base, queries, radius, limit, qps_mode, 8, cached_qps_seconds))
                }
            print(
                "[bench] http cached-embedding c8 qps: "
                + ", ".join(f"{lab} {e['qps_cached']['8']['qps']:.0f}" for lab, e in out["radii"].items()),
                flush=True,
            )
        except Exception as exc:  # keep the figures of the first server
            out["cached_failed"] = f"{type(exc).__name__}: {exc}"
            print(f"[bench] http cached-embedding QPS failed: {exc}", flush=True)
        finally:
            cached.stop()
    return out


# --------------------------------------------------------------------------------------------------------
# 7. Embedding


PRODUCT_TEXT_SQL = """
SELECT p.name, p.brand, p.description, p.attributes,
       (WITH RECURSIVE path(id, parent_id, name, depth) AS (
            SELECT c.id, c.parent_id, c.name, 0 FROM category c WHERE c.id = p.category_id
            UNION ALL
            SELECT c.id, c.parent_id, c.name, path.depth + 1 FROM category c JOIN path ON c.id = path.parent_id
            WHERE path.depth < 32)
        SELECT coalesce(array_agg(name ORDER BY depth DESC), '{}') FROM path) AS category_path
FROM product_master p
ORDER BY md5(p.id::text)
LIMIT %(n)s
"""


def catalogue_texts(url: str, n: int) -> list[str]:
    """Composed texts of n products of the benchmark catalogue (what the worker would embed)."""
    from embeddings.text import compose_text

    with psycopg.connect(url) as conn:
        rows = conn.execute(PRODUCT_TEXT_SQL, {"n": n}).fetchall()
    return [
        compose_text(name=r[0], brand=r[1], description=r[2], attributes=r[3] or {}, category_path=r[4] or ())
        for r in rows
    ]


def bench_embedding(
    url: str,
    scale: Scale,
    settings: Settings,
    generator: str,
    skip_torch: bool,
    encoder_rates: bool = True,
    worker_rate: bool = True,
) -> dict[str, Any]:
    """Encoder rates (benchmarks.bench_encoder), the worker as a process (rate and peak RSS, measured here), the
    worker's end-to-end rate against the raw encoder (benchmarks.bench_worker) and the batch re-embedder's rate
    (embeddings.reembed on `reembed_rows` products of this database)."""
    import tempfile

    out: dict[str, Any] = {}
    bench_encoder = _optional("benchmarks.bench_encoder")
    out["harness_rss_bytes_before"] = peak_rss_bytes(os.getpid())
    if not encoder_rates:
        out["encoders"] = {"skipped": "--skip-encoder-rates"}
    elif bench_encoder is not None and hasattr(bench_encoder, "measure_encoder_rates"):
        # Real catalogue texts when the generator wrote them; the encoder benchmark's own templates otherwise.
        if generator == "datagen":
            texts, source = catalogue_texts(url, scale.encoder_texts), "catalogue"
        else:
            texts, source = bench_encoder.product_texts(scale.encoder_texts), "bench_encoder templates"
        backends = ("onnx", "onnx-int8") if skip_torch else ("torch", "onnx", "onnx-int8")
        try:
            rates = bench_encoder.measure_encoder_rates(
                texts, backends=backends, runs=ENCODER_RUNS, cache_dir=settings.encoder.cache_dir
            )
            out["encoders"] = {"texts": len(texts), "text_source": source, "runs": ENCODER_RUNS, "backends": rates}
        except Exception as exc:
            out["encoders"] = {"error": f"{type(exc).__name__}: {exc}"}
    else:
        out["encoders"] = {"skipped": "benchmarks/bench_encoder.py (measure_encoder_rates) is not there"}
    worker = _optional("benchmarks.bench_worker") if worker_rate else None
    if worker_rate:
        try:
            out["worker_process"] = measure_worker_process(url, scale.worker_rows)
        except Exception as exc:
            out["worker_process"] = {"error": f"{type(exc).__name__}: {exc}"}
    if not worker_rate:
        out["worker"] = {"skipped": "--skip-worker"}
    elif worker is not None:
        out["worker"] = _call_worker_bench(worker, url, scale.worker_rows)
    else:
        out["worker"] = {"skipped": "benchmarks/bench_worker.py is not there yet"}
    try:
        from embeddings.encoder import load_encoder
        from embeddings.reembed import reembed

        encoder = load_encoder(settings.encoder)
        with tempfile.TemporaryDirectory() as tmp:
            rep = reembed(url, encoder, mode="all", limit=scale.reembed_rows, cache_dir=Path(tmp), progress=False)
        out["reembed"] = {
            "rows": rep.written,
            "seconds": round(rep.seconds, 2),
            "rows_per_s": rep.rate,
            "encoder": encoder.model_id,
            "note": "embeddings.reembed --all on a sample of the catalogue (encode + COPY + UPDATE + HNSW insert)",
        }
    except Exception as exc:
        out["reembed"] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def measure_worker_process(url: str, n: int) -> dict[str, Any]:
    """`plinqy-search worker --drain` as its own process on n products copied from the benchmark catalogue into a
    throwaway database (the insert trigger queues them): wall time (model load included), steady products/s
    (between the first and the last finished batch) and peak RSS, polled from /proc VmHWM while it runs."""
    import tempfile

    from psycopg.types.json import Jsonb

    name = f"plinqy_bench_worker_rss_{os.getpid()}"
    admin = _with_db(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    wurl = _with_db(url, name)
    try:
        migrate.upgrade(wurl)
        with psycopg.connect(url) as src:
            rows = src.execute(
                "SELECT name, brand, description, attributes FROM product_master ORDER BY md5(id::text) LIMIT %s",
                (n,),
            ).fetchall()
        with psycopg.connect(wurl) as dst:
            with dst.cursor() as cur:
                cur.executemany(
                    "INSERT INTO product_master (name, brand, description, attributes) VALUES (%s, %s, %s, %s)",
                    [(r[0], r[1], r[2], Jsonb(r[3] or {})) for r in rows],
                )
            dst.commit()
            queued_row = dst.execute("SELECT count(*) FROM ai_task WHERE status = 'pending'").fetchone()
        queued = int(queued_row[0]) if queued_row else 0
        with tempfile.TemporaryFile() as log:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "search_service", "worker", "--drain"],
                env={**os.environ, "DATABASE_URL": wurl},
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            hwm = 0
            while proc.poll() is None:
                hwm = max(hwm, peak_rss_bytes(proc.pid)["vm_hwm"] or 0)
                time.sleep(0.1)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-800:]
                return {"error": f"worker exited with {proc.returncode}: {tail}"}
        with psycopg.connect(wurl) as dst:
            stats = dst.execute(
                "SELECT count(*) FILTER (WHERE status = 'done'),"
                " extract(epoch FROM max(finished_at) - min(finished_at)),"
                " count(*) FILTER (WHERE finished_at = (SELECT min(finished_at) FROM ai_task))"
                " FROM ai_task"
            ).fetchone()
            embedded_row = dst.execute("SELECT count(*) FROM product_master WHERE ai_vector IS NOT NULL").fetchone()
        done, span, first_batch = (int(stats[0]), float(stats[1] or 0.0), int(stats[2])) if stats else (0, 0.0, 0)
        embedded = int(embedded_row[0]) if embedded_row else 0
        return {
            "products": queued,
            "embedded": embedded,
            "tasks_done": done,
            "wall_s": round(wall, 2),
            "products_per_s_wall": embedded / wall if wall > 0 else None,
            "products_per_s_steady": (done - first_batch) / span if span > 0 else None,
            "peak_rss_bytes": hwm,
            "note": "python -m search_service worker --drain in its own process; VmHWM polled every 0.1 s",
        }
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _optional(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _call_worker_bench(module: Any, url: str, rows: int) -> dict[str, Any]:
    """benchmarks.bench_worker.measure_worker_rate: its own throwaway database on the same server."""
    fn: Callable[..., Any] | None = getattr(module, "measure_worker_rate", None)
    if not callable(fn):
        return {"skipped": f"{module.__name__} has no measure_worker_rate"}
    try:
        return {
            "function": f"{module.__name__}.measure_worker_rate",
            **_report_dict(fn(_with_db(url, "postgres"), rows)),
        }
    except Exception as exc:
        return {"function": f"{module.__name__}.measure_worker_rate", "error": f"{type(exc).__name__}: {exc}"}


# --------------------------------------------------------------------------------------------------------
# Machine


ENGINE_FILES = (
    "search_service/search.py",
    "search_service/sql/search.sql",
    "search_service/app.py",
    "search_service/vectors.py",
    "search_service/sql/vectors.sql",
)


def engine_fingerprint() -> str:
    """Hash of the engine's code: the harness imports it once, the API subprocess when it starts; a change in
    between (others commit while a run goes on) makes the SQL and HTTP figures measure different engines."""
    import hashlib

    digest = hashlib.sha256()
    for name in ENGINE_FILES:
        with contextlib.suppress(OSError):
            digest.update((PROJECT_ROOT / name).read_bytes())
    return digest.hexdigest()[:12]


def code_version() -> dict[str, Any]:
    def git(*cmd: str) -> str:
        try:
            out = subprocess.run(["git", *cmd], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.stdout.strip()

    return {
        "git_head": git("rev-parse", "--short", "HEAD"),
        "engine_dirty": bool(git("status", "--porcelain", "--", *ENGINE_FILES)),
        "engine_fingerprint_at_import": ENGINE_AT_IMPORT,
    }


ENGINE_AT_IMPORT = engine_fingerprint()


def machine(url: str) -> dict[str, Any]:
    cpu = cpu_model()
    mem = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    with psycopg.connect(url) as conn:
        pg = conn.execute("SHOW server_version").fetchone()
        ext: dict[str, str] = dict(conn.execute("SELECT extname, extversion FROM pg_extension").fetchall())
        pg_settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name = ANY(%s)",
                (["shared_buffers", "work_mem", "effective_cache_size", "jit", "max_parallel_workers_per_gather"],),
            ).fetchall()
        )
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for mod in ("onnxruntime", "torch", "numpy", "asyncpg", "litestar", "httpx"):
        try:
            versions[mod] = str(importlib.import_module(mod).__version__)
        except Exception:
            versions[mod] = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu,
        "ram_bytes": mem,
        "load_average_start": os.getloadavg(),
        "speed_probe_ms_start": speed_probe_ms(),
        "platform": platform.platform(),
        "postgresql": pg[0] if pg else None,
        "pgvector": ext.get("vector"),
        "postgis": ext.get("postgis"),
        "postgres_settings": pg_settings,
        "versions": versions,
    }


# --------------------------------------------------------------------------------------------------------
# Main


def encode_queries(queries: Sequence[qmod.Query], settings: Settings) -> tuple[np.ndarray, str]:
    from embeddings.encoder import load_encoder

    encoder = load_encoder(settings.encoder)
    # the text the API embeds (its operators and excluded words left out): `cornflakes or muesli` embedded as typed
    # ranked near-ties otherwise, and the HTTP answers' recall read 0.996 against a truth the API never asks for
    return encoder.encode([embedded_text(q.text) or q.text for q in queries]), encoder.model_id


def checkpoint(result: dict[str, Any]) -> None:
    """The result so far, in .cache/ (not a result file): what a run killed part-way had measured."""
    path = PROJECT_ROOT / ".cache" / f"bench-{result['scale']}-partial.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every phase; one that fails is recorded in result["failed"] and the phases measured before it are
    kept (and written, as a complete run's are)."""
    scale = sized(SCALES[args.scale], args.products, args.stores, args.listings)
    settings = Settings.from_env()
    phases = Phases()
    started = dt.datetime.now(dt.UTC)
    n_queries = args.queries or scale.queries
    k = limit = args.k
    url, load = prepare_data(args, scale, settings, phases)
    result: dict[str, Any] = {
        "scale": scale.name,
        "started_at": started.isoformat(timespec="seconds"),
        "database": _db_name(url),
        "parameters": {
            "seed": args.seed,
            "queries": n_queries,
            "k": k,
            "limit": limit,
            "radii_m": list(RADII),
            "concurrencies": list(CONCURRENCIES),
            "qps_seconds": args.qps_seconds if args.qps_seconds is not None else scale.qps_duration_s,
            "qps_mode": args.qps_mode,
            "qps_c8_windows": args.qps_windows if args.qps_windows is not None else scale.qps_c8_windows,
            "query_cache_size": args.query_cache,
            "engine_config": asdict(EngineConfig()),
            "naive_settings": NAIVE_SETTINGS,
            "naive_forced_settings": FORCED_SETTINGS,
            "tie_eps": TIE_EPS,
        },
        "machine": machine(url),
        "code": code_version(),
        "load": load,
    }
    load["hnsw_index"] = has_hnsw(url)
    try:
        _run_phases(args, scale, settings, phases, url, result)
    except Exception as exc:  # keep what was measured; say where it stopped
        import traceback

        traceback.print_exc()
        result["failed"] = {"phase": phases.current, "error": f"{type(exc).__name__}: {exc}"}
    result["phases_s"] = phases.seconds
    result["phases_cpu"] = phases.cpu
    seen = {ENGINE_AT_IMPORT, engine_fingerprint(), result.get("http", {}).get("engine_fingerprint_at_server_start")}
    result["code"]["engine_changed_during_run"] = len(seen - {None}) > 1
    if result["code"]["engine_changed_during_run"]:
        print("[bench] WARNING: the engine's code changed during the run; SQL and HTTP figures may differ", flush=True)
    result["machine"]["load_average_end"] = os.getloadavg()
    result["machine"]["speed_probe_ms_end"] = speed_probe_ms()
    result["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return result


def _run_phases(
    args: argparse.Namespace, scale: Scale, settings: Settings, phases: Phases, url: str, result: dict[str, Any]
) -> None:
    n_queries = result["parameters"]["queries"]
    k = limit = args.k
    load = result["load"]
    checkpoint(result)
    # Embedding first, while this process is still lean (its children inherit its memory high-water mark);
    # the re-embedding updates some vectors, and the REINDEX below rebuilds the graph after it.
    if not args.skip_embedding:
        with phases("embedding"):
            result["embedding"] = bench_embedding(
                url,
                scale,
                settings,
                load["generator"],
                skip_torch=args.skip_torch,
                encoder_rates=not args.skip_encoder_rates,
                worker_rate=not args.skip_worker,
            )
    if not args.skip_reindex and load["hnsw_index"]:
        with phases("hnsw build (REINDEX)"):
            result["hnsw_build"] = reindex_hnsw(url)
    result["sizes"] = sizes(url)
    with phases("query set"):
        queries, result["query_set"] = build_query_set(url, scale, n_queries, args.seed)
        vectors, model_id = encode_queries(queries, settings)
        result["query_set"]["encoder"] = model_id
    with phases("ground truth"):
        truth = Truth.load(url)
        expected: dict[tuple[int, float | None], Expected] = {}
        masks: dict[tuple[float, float, float | None], np.ndarray] = {}
        with psycopg.connect(url) as conn:
            for i, query in enumerate(queries):
                all_scores = truth.vectors @ vectors[i]  # once per query, shared by every radius
                for radius in RADII:
                    key = (query.place.lat, query.place.lon, radius) if radius is not None else (0.0, 0.0, None)
                    if key not in masks:
                        store_idx = (
                            None if radius is None else truth.stores_in(conn, query.place.lat, query.place.lon, radius)
                        )
                        masks[key] = truth.candidates(store_idx)
                    expected[(query.id, radius)] = exact_topk(all_scores, masks[key], k)
        result["ground_truth"] = {
            "products": len(truth.product_ids),
            "embedded_active_products": int(truth.product_ok.sum()),
            "stores": len(truth.store_active),
            "sellable_listings": len(truth.listing_product),
            "method": "numpy brute force over the same filters; stores in radius from PostGIS ST_DWithin",
        }
    settle_heap()
    with phases("sql benchmark"):
        result["sql"], result["vector_cache"] = asyncio.run(
            bench_sql(
                url,
                truth,
                queries,
                vectors,
                expected,
                k,
                limit,
                with_naive=not args.skip_naive,
                naive_queries=args.naive_queries if args.naive_queries is not None else scale.naive_queries,
                with_forced=load["hnsw_index"],
            )
        )
    checkpoint(result)
    if args.typo_names:
        with phases("typo tolerance"):
            result["typos"] = bench_typos.measure(url, settings, args.typo_names, args.seed)
    if args.sweep:
        with phases("engine sweep"):
            result["engine_sweep"] = asyncio.run(
                sweep_engine(url, truth, queries, vectors, expected, k, limit, min(args.sweep, len(queries)))
            )
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not args.skip_http and scale.http:
        settle_heap()
        with phases("http benchmark"):
            result["http"] = bench_http(
                url,
                truth,
                queries,
                vectors,
                expected,
                k,
                limit,
                result["parameters"]["qps_seconds"],
                args.qps_mode,
                args.query_cache,
                out_dir,
                cached_qps_seconds=result["parameters"]["qps_seconds"] / 2 if not args.skip_cached_qps else 0.0,
                api_workers=args.api_workers,
                qps_windows=result["parameters"]["qps_c8_windows"],
            )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=sorted(SCALES), default="small")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--queries", type=int, default=None, help="query count (default per scale)")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--k", type=int, default=10, help="recall@k; also the page size asked for")
    p.add_argument("--database-url", help="use this (migrated or empty) database instead of plinqy_bench_<scale>")
    p.add_argument("--server-url", help="server to create plinqy_bench_<scale> on (default: DATABASE_URL/embedded)")
    p.add_argument("--generator", choices=["auto", "datagen", "synthetic"], default="auto")
    p.add_argument("--regenerate", action="store_true", help="reseed even when the database matches")
    p.add_argument("--no-verify", action="store_true", help="go on when stored vectors do not match their products")
    p.add_argument("--qps-seconds", type=float, default=None, help="duration of each QPS measurement")
    p.add_argument("--qps-mode", choices=["hybrid", "semantic"], default="hybrid")
    p.add_argument(
        "--qps-windows", type=int, default=None, help="QPS at concurrency 8: median of this many windows (per scale)"
    )
    p.add_argument(
        "--typo-names", type=int, default=300, help="names with slips for the typo-tolerance figures (0: skip)"
    )
    p.add_argument(
        "--api-workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="API worker processes (`serve --workers`; default: one per usable CPU, as `serve` runs)",
    )
    p.add_argument(
        "--query-cache", type=int, default=0, help="API query-embedding cache size (0: every request embeds)"
    )
    p.add_argument("--naive-queries", type=int, default=None, help="queries run through the naive plan per radius")
    p.add_argument(
        "--sweep", type=int, default=0, metavar="N", help="also sweep engine knobs (ef_search, overfetch) on N queries"
    )
    p.add_argument("--skip-http", action="store_true")
    p.add_argument("--skip-cached-qps", action="store_true", help="leave out QPS with the query-embedding cache on")
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--skip-embedding", action="store_true")
    p.add_argument("--skip-torch", action="store_true", help="leave the torch reference out of the encoder rates")
    p.add_argument("--skip-encoder-rates", action="store_true", help="embedding: leave out the encoder rates")
    p.add_argument("--skip-worker", action="store_true", help="embedding: leave out the worker's end-to-end rate")
    p.add_argument("--skip-reindex", action="store_true")
    p.add_argument("--tag", default="", help="suffix of the result file names")
    p.add_argument("--products", type=int, default=None, help="synthetic data: products (default per scale)")
    p.add_argument("--stores", type=int, default=None, help="synthetic data: stores (default: the scale's ratio)")
    p.add_argument("--listings", type=int, default=None, help="synthetic data: listings (default: the scale's ratio)")
    p.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    from benchmarks import report

    args = parse_args(argv)
    if args.seed_only:  # the child of seed_in_subprocess
        scale = sized(SCALES[args.scale], args.products, args.stores, args.listings)
        info = seed_data(args.database_url, scale, args.seed, args.generator, Settings.from_env())
        print(SEED_MARK + json.dumps(info, default=str), flush=True)
        return {}
    result = run(args)
    paths = report.write(result, Path(args.out), tag=args.tag)
    for kind, path in paths.items():
        print(f"[bench] {kind}: {path}")
    return paths


if __name__ == "__main__":
    main()
