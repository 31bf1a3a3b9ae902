"""Plan probe: per-radius latency (median/p95) and recall@k of the search engine's vector plan vs the naive
single statement, against a database with data loaded.

    DATABASE_URL=postgresql://postgres@127.0.0.1:54329/plinqy .venv/bin/python -m benchmarks.plan_probe \
        --radii 300,1000,2000,5000,20000,global --queries 30 --k 10

Ground truth is the engine's exact plan (`EngineConfig(force="exact")`), exact by construction (every
candidate's distance computed, no index on the ORDER BY). The functions are importable for the benchmark
suite.
Optional: `--generate 100000,1000,1000000` first loads a synthetic catalogue (clustered random vectors).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import LiteralString

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from search_service.demo.synthetic import SyntheticSpec, seed_synthetic
from search_service.engine.search import EngineConfig, SearchParams, SearchResult, as_vector, search

# The naive plan: one statement, radius as an EXISTS filter, ORDER BY the HNSW operator.
NAIVE_SQL: LiteralString = """
SELECT p.id
FROM product_master p
WHERE p.is_active AND EXISTS (
    SELECT 1 FROM store_product sp JOIN store s ON s.id = sp.store_id
    WHERE sp.product_master_id = p.id AND sp.is_active AND sp.quantity > 0 AND s.is_active
      AND ST_DWithin(s.location, ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography, $4))
ORDER BY p.ai_vector <=> $1
LIMIT $5
"""

NAIVE_GLOBAL_SQL: LiteralString = """
SELECT p.id
FROM product_master p
WHERE p.is_active AND EXISTS (
    SELECT 1 FROM store_product sp JOIN store s ON s.id = sp.store_id
    WHERE sp.product_master_id = p.id AND sp.is_active AND sp.quantity > 0 AND s.is_active)
ORDER BY p.ai_vector <=> $1
LIMIT $2
"""


@dataclass(frozen=True)
class ProbeRow:
    label: str
    radius_m: float | None
    plan: str
    median_ms: float
    p95_ms: float
    recall: float
    strategies: dict[str, int]


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


def recall_at_k(truth: Sequence[object], got: Sequence[object], k: int) -> float:
    want = list(truth)[:k]
    if not want:
        return 1.0 if not list(got) else 0.0
    return len(set(want) & set(list(got)[:k])) / len(want)


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    return conn


async def sample_queries(conn: asyncpg.Connection, n: int, noise: float = 0.5, seed: int = 3) -> list[np.ndarray]:
    """Queries near the catalogue: sampled product vectors plus noise, re-normalised."""
    rows = await conn.fetch(
        "SELECT ai_vector FROM product_master WHERE ai_vector IS NOT NULL ORDER BY md5(id::text || $1) LIMIT $2",
        str(seed),
        n,
    )
    rng = np.random.default_rng(seed)
    out = []
    for r in rows:
        v: np.ndarray = as_vector(r["ai_vector"])
        e = np.asarray(rng.standard_normal(size=(v.shape[0],)), dtype=np.float32)
        v = v + noise * e / float(np.linalg.norm(e))
        out.append(np.asarray(v / float(np.linalg.norm(v)), dtype=np.float32))
    return out


async def densest_point(conn: asyncpg.Connection) -> tuple[float, float]:
    """The median store position: a busy spot where radii of a few hundred metres already hold stores."""
    row = await conn.fetchrow(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ST_Y(location::geometry)) AS lat,"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY ST_X(location::geometry)) AS lon"
        " FROM store WHERE is_active"
    )
    assert row is not None
    return float(row["lat"]), float(row["lon"])


async def engine_ids(
    conn: asyncpg.Connection, params: SearchParams, q: np.ndarray, config: EngineConfig
) -> SearchResult:
    return await search(conn, params, q, config)


async def naive_ids(
    conn: asyncpg.Connection,
    q: np.ndarray,
    lat: float | None,
    lon: float | None,
    radius: float | None,
    k: int,
) -> list[object]:
    async with conn.transaction():
        await conn.execute("SET LOCAL jit = off")
        if lat is None or lon is None or radius is None:
            rows = await conn.fetch(NAIVE_GLOBAL_SQL, q, k)
        else:
            rows = await conn.fetch(NAIVE_SQL, q, lon, lat, radius, k)
    return [r["id"] for r in rows]


async def probe_radius(
    conn: asyncpg.Connection,
    queries: Sequence[np.ndarray],
    lat: float | None,
    lon: float | None,
    radius: float | None,
    k: int = 10,
    config: EngineConfig | None = None,
    include_naive: bool = True,
    include_forced: bool = True,
) -> list[ProbeRow]:
    """Latency and recall@k of the engine (auto plan, and each plan forced) and of the naive statement."""
    config = config or EngineConfig()
    base = SearchParams(q="", lat=lat, lon=lon, radius_m=radius or 0.0, limit=k, mode="semantic")
    truth: list[list[object]] = []
    for q in queries:
        res = await search(conn, base, q, replace(config, force="exact"))
        truth.append([h.product.id for h in res.results])
    label = "global" if radius is None else f"{radius:g} m"
    rows: list[ProbeRow] = []
    plans: list[tuple[str, EngineConfig]] = [("engine auto", config)]
    if include_forced:
        plans += [
            ("engine exact", replace(config, force="exact")),
            ("engine hnsw", replace(config, force="hnsw")),
        ]
    for name, cfg in plans:
        times: list[float] = []
        recalls: list[float] = []
        strategies: dict[str, int] = {}
        for q, want in zip(queries, truth, strict=True):
            t0 = time.perf_counter()
            out = await search(conn, base, q, cfg)
            ms = (time.perf_counter() - t0) * 1000.0
            times.append(ms)
            recalls.append(recall_at_k(want, [h.product.id for h in out.results], k))
            strategies[out.strategy] = strategies.get(out.strategy, 0) + 1
        rows.append(
            ProbeRow(
                label,
                radius,
                name,
                statistics.median(times),
                percentile(times, 95),
                float(np.mean(recalls)),
                strategies,
            )
        )
    if include_naive:
        times = []
        recalls = []
        for q, want in zip(queries, truth, strict=True):
            t0 = time.perf_counter()
            got = await naive_ids(conn, q, lat, lon, radius, k)
            ms = (time.perf_counter() - t0) * 1000.0
            times.append(ms)
            recalls.append(recall_at_k(want, got, k))
        rows.append(
            ProbeRow(
                label,
                radius,
                "naive 1-statement",
                statistics.median(times),
                percentile(times, 95),
                float(np.mean(recalls)),
                {},
            )
        )
    return rows


async def stores_in_radius(conn: asyncpg.Connection, lat: float, lon: float, radius: float) -> int:
    n = await conn.fetchval(
        "SELECT count(*) FROM store WHERE is_active AND "
        "ST_DWithin(location, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, $3)",
        lon,
        lat,
        radius,
    )
    return int(n)


def format_rows(rows: Sequence[ProbeRow]) -> str:
    lines = [f"{'radius':>10} {'plan':<18} {'median ms':>10} {'p95 ms':>8} {'recall':>7}  strategies"]
    for r in rows:
        strategies = ", ".join(f"{k}:{v}" for k, v in sorted(r.strategies.items()))
        lines.append(f"{r.label:>10} {r.plan:<18} {r.median_ms:>10.1f} {r.p95_ms:>8.1f} {r.recall:>7.3f}  {strategies}")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    conn = await connect(args.dsn)
    try:
        lat, lon = (args.lat, args.lon) if args.lat is not None else await densest_point(conn)
        queries = await sample_queries(conn, args.queries)
        config = EngineConfig(ef_search=args.ef_search)
        print(f"point lat={lat:.5f} lon={lon:.5f}, {len(queries)} queries, k={args.k}, ef_search={args.ef_search}")
        for token in args.radii.split(","):
            radius = None if token == "global" else float(token)
            if radius is not None:
                print(f"-- {radius:g} m: {await stores_in_radius(conn, lat, lon, radius)} active stores")
            for q in queries[:3]:  # warm-up
                await search(conn, SearchParams(q="", lat=lat, lon=lon, radius_m=radius or 0, mode="semantic"), q)
            rows = await probe_radius(
                conn,
                queries,
                None if radius is None else lat,
                None if radius is None else lon,
                radius,
                args.k,
                config,
                include_naive=not args.no_naive,
            )
            print(format_rows(rows), flush=True)
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:54329/plinqy"))
    parser.add_argument("--radii", default="300,500,1000,2000,5000,20000,global")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--ef-search", type=int, default=EngineConfig().ef_search)
    parser.add_argument("--lat", type=float)
    parser.add_argument("--lon", type=float)
    parser.add_argument("--no-naive", action="store_true", help="skip the (slow) naive statement")
    parser.add_argument("--generate", help="products,stores,listings: load a synthetic catalogue first")
    args = parser.parse_args(argv)
    if args.generate:
        products, stores, listings = (int(x) for x in args.generate.split(","))
        seed_synthetic(
            args.dsn,
            SyntheticSpec(
                products=products,
                stores=stores,
                listings=listings,
                clusters=max(products // 50, 1),
                rebuild_hnsw=True,
                sigma_m=6000,
            ),
        )
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
