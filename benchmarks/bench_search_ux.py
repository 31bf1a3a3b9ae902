"""The search features' latency targets: suggestions' p95 (target <= 10 ms at the 100k scale), and search p95 with
`facets=category,brand,price` against the same searches without facets (target <= 1.5x).

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.bench_search_ux --database-url URL [--scale small] [--queries 200]

The database is seeded with `seed-demo`'s generator at `--scale` when its catalogue is empty (no vectors: the
keyword mode is measured; semantic and hybrid need an embedded catalogue, see --modes). Scopes: global, and
points at random store locations with radii of 0.5, 2, 5 and 20 km. Suggest prefixes: 1-4 letters of catalogue
names, brands and categories, and two-word prefixes ("cordless dr"). Latencies are measured at the client over one
asyncpg connection carrying the engine's session settings, after a warm-up pass. Suggestions are timed both ways,
interleaved: from memory (the suggestion index and candidate sets, as the API answers them) and by the statement
plans (narrow scopes from the product labels, as before the index). Results: JSON + Markdown in --out.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import psycopg
from pgvector.asyncpg import register_vector
from pgvector.psycopg import register_vector as register_vector_psycopg

from benchmarks import cputime
from search_service.db.hnsw import build_memory
from search_service.demo.seed import seed
from search_service.engine import search as engine
from search_service.engine.candidates import CandidateSets
from search_service.engine.facet_labels import ProductLabels
from search_service.engine.facet_stock import StockBuckets
from search_service.engine.facets import FacetConfig
from search_service.engine.stats import StatsCache
from search_service.engine.suggest import SuggestParams, split_prefix, suggest
from search_service.engine.suggest_index import SuggestIndex
from search_service.engine.suggest_scope import suggest_in_memory
from search_service.engine.ux import UxParams, ux_search
from search_service.engine.vectors import VectorCache

RADII_M = (500, 2_000, 5_000, 20_000)
FACETS = ("category", "brand", "price")
CONFIG = engine.EngineConfig(connection_has_settings=True)


@dataclass(frozen=True)
class Scope:
    label: str
    lat: float | None
    lon: float | None
    radius_m: float


def _scopes(conn: psycopg.Connection[Any], rng: random.Random, per_radius: int) -> list[Scope]:
    stores = conn.execute("SELECT ST_Y(location::geometry), ST_X(location::geometry) FROM store WHERE is_active")
    points = rng.sample(stores.fetchall(), k=per_radius)
    scopes = [Scope("global", None, None, 5000)]
    for radius in RADII_M:
        scopes += [Scope(f"{radius / 1000:g} km", lat, lon, radius) for lat, lon in points]
    return scopes


def _prefixes(conn: psycopg.Connection[Any], rng: random.Random, n: int) -> list[str]:
    names = [r[0] for r in conn.execute("SELECT name FROM product_master ORDER BY md5(id::text) LIMIT 500")]
    brands = [r[0] for r in conn.execute("SELECT DISTINCT brand FROM product_master WHERE brand IS NOT NULL")]
    cats = [r[0] for r in conn.execute("SELECT name FROM category")]
    out = []
    for _ in range(n):
        kind = rng.random()
        text = rng.choice(names if kind < 0.6 else brands if kind < 0.8 else cats)
        words = text.split()
        if kind < 0.15 and len(words) > 1:  # two words, the second one partly typed
            out.append(f"{words[0]} {words[1][: rng.randint(1, 3)]}")
        else:
            out.append(text[: rng.randint(1, 4)])
    return out


def _queries(conn: psycopg.Connection[Any], rng: random.Random, n: int) -> list[str]:
    names = [r[0] for r in conn.execute("SELECT name FROM product_master ORDER BY md5(id::text) LIMIT 2000")]
    out = []
    for name in rng.sample(names, k=min(n, len(names))):
        words = [w for w in name.split() if w.isalpha() and len(w) > 2] or name.split()
        out.append(" ".join(words[: rng.randint(1, 2)]))
    return out


def query_vector(q: str) -> np.ndarray:
    """A unit vector per query text, for catalogues whose vectors are synthetic (see `_vectors`): the plans'
    costs do not depend on what the vectors mean. Deterministic, so both variants rank the same query alike."""
    rng = np.random.default_rng(zlib.crc32(q.encode()))
    v = rng.normal(size=384).astype(np.float32)
    return v / np.linalg.norm(v)


def synthetic_vectors(url: str, seed_value: int = 42) -> int:
    """Random unit vectors (ai_model 'synthetic-random-unit') for the products without one: COPY into a scratch
    table, one UPDATE with the HNSW index dropped, the index rebuilt (as the seed builds it). Returns how many."""
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector_psycopg(conn)
        ids = [r[0] for r in conn.execute("SELECT id FROM product_master WHERE ai_vector IS NULL ORDER BY id")]
        if not ids:
            return 0
        rng = np.random.default_rng(seed_value)
        conn.execute(f"DROP INDEX IF EXISTS {engine.HNSW_INDEX}")
        conn.execute("CREATE UNLOGGED TABLE bench_vec (id uuid PRIMARY KEY, vec vector(384))")
        with conn.cursor().copy("COPY bench_vec (id, vec) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["uuid", "vector"])
            for pid in ids:
                v = rng.normal(size=384).astype(np.float32)
                copy.write_row((pid, v / np.linalg.norm(v)))
        conn.execute(
            "UPDATE product_master p SET ai_vector = b.vec, ai_model = 'synthetic-random-unit', "
            "ai_embedded_at = now() FROM bench_vec b WHERE b.id = p.id"
        )
        conn.execute("DROP TABLE bench_vec")
        total = conn.execute("SELECT count(*) FROM product_master").fetchone()
        conn.execute(f"SET maintenance_work_mem = '{build_memory(int(total[0]) if total else len(ids))}'")
        conn.execute(
            f"CREATE INDEX {engine.HNSW_INDEX} ON product_master USING hnsw (ai_vector vector_cosine_ops) "
            "WITH (m = 16, ef_construction = 64)"
        )
        conn.execute("VACUUM ANALYZE product_master")
    return len(ids)


def _vectors(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute("SELECT coalesce(ai_model, 'none'), count(*) FROM product_master GROUP BY 1").fetchall()
    return {str(model): int(n) for model, n in rows}


def _summary(timed: list[tuple[float, float]]) -> dict[str, float]:
    """Latency percentiles and the mean CPU a call cost (this process and the backend: stable under load)."""
    a = np.asarray([wall for wall, _cpu in timed])
    return {
        "n": len(a),
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p95_ms": round(float(np.percentile(a, 95)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "mean_ms": round(float(a.mean()), 2),
        "cpu_ms": round(sum(cpu for _wall, cpu in timed) / len(a), 2),
    }


def _cpu_ms(backend_pid: int) -> float:
    """CPU milliseconds of this process (all threads: the vector ranking's too) and of the connection's backend
    (in 10 ms ticks: exact summed over many calls)."""
    return (time.process_time() + (cputime.process_tree_seconds(backend_pid) or 0.0)) * 1000


async def _timed(
    calls: Sequence[tuple[str, Callable[[], Awaitable[Any]]]], backend_pid: int
) -> dict[str, list[tuple[float, float]]]:
    """(wall ms, CPU ms) of each call, by label."""
    for _label, call in calls[: min(len(calls), 20)]:  # warm-up: plans, caches
        await call()
    out: dict[str, list[tuple[float, float]]] = {}
    for label, call in calls:
        t, cpu = time.perf_counter(), _cpu_ms(backend_pid)
        await call()
        out.setdefault(label, []).append(((time.perf_counter() - t) * 1000, _cpu_ms(backend_pid) - cpu))
    return out


async def _plain_search(
    conn: Any, params: engine.SearchParams, vector: np.ndarray | None, **engine_kw: Any
) -> engine.SearchResult:
    """A search without facets as the API answers it (`routes/search.py`): the engine's path, whose hydrate also
    says whether each hit's store delivers to the point (it took a statement of its own before 2026-12-04)."""
    return await engine.search(conn, params, vector, CONFIG, **engine_kw)


def _variants(
    conn: Any, label: str, params: engine.SearchParams, vec: np.ndarray | None, kw: dict[str, Any], memory: Any
) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    """One search as the API answers it without facets (plain), the engine's part of that alone (engine: run6's
    baseline), and with facets=category,brand,price."""
    ux = UxParams(facets=FACETS)
    return [
        (f"plain|{label}", lambda: _plain_search(conn, params, vec, **kw)),
        (f"engine|{label}", lambda: engine.search(conn, params, vec, CONFIG, **kw)),
        (f"facets|{label}", lambda: ux_search(conn, params, vec, ux, config=CONFIG, **memory, **kw)),
    ]


async def _measure(url: str, scopes: list[Scope], prefixes: list[str], queries: list[str], modes: list[str]) -> dict:
    conn = await asyncpg.connect(url)
    await register_vector(conn)
    for name, value in engine.session_settings(CONFIG).items():
        await conn.execute(f"SET {name} = '{value}'")
    stats = StatsCache()
    labels = ProductLabels()  # as the API holds them: facets counted in memory
    await labels.load(conn)
    stock = StockBuckets()  # as the API holds them: the facet sets' listings in memory
    await stock.load(conn)
    vectors: VectorCache | None = None
    if any(m != "keyword" for m in modes):
        vectors = VectorCache()  # as the API holds it: the vector side's plans are the exact scan and gather
        await vectors.load(conn)
    try:
        result: dict[str, Any] = await _measure_suggest(conn, scopes, prefixes, labels)
        for mode in modes:
            calls: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
            for s in scopes:
                for q in queries:
                    params = engine.SearchParams(q=q, lat=s.lat, lon=s.lon, radius_m=s.radius_m, mode=mode)  # type: ignore[arg-type]
                    vec = None if mode == "keyword" else query_vector(q)
                    kw = {"vectors": vectors, "stats": stats}
                    calls += _variants(conn, s.label, params, vec, kw, {"labels": labels, "stock": stock})
            random.Random(5).shuffle(calls)  # interleaved, so that a slow phase of the machine hits all alike
            timed = await _timed(calls, conn.get_server_pid())
            result[mode] = _search_summary(timed)
        return result
    finally:
        await conn.close()


async def _measure_suggest(conn: Any, scopes: list[Scope], prefixes: list[str], labels: ProductLabels) -> dict:
    """Suggestions from memory (`suggest`) and by the statement plans (`suggest_sql`), interleaved; `suggest_check`:
    how many the memory path left to the statements, and how many answers differ between the two."""
    index, sets = SuggestIndex(), CandidateSets()
    await index.load(conn)
    await sets.load(conn)
    calls: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
    for s in scopes:
        for p in prefixes:
            params = SuggestParams(p, s.lat, s.lon, s.radius_m)
            calls.append((f"memory|{s.label}", functools.partial(suggest, conn, params, labels, index, sets)))
            calls.append((f"sql|{s.label}", functools.partial(suggest, conn, params, labels)))
    random.Random(6).shuffle(calls)
    timed = await _timed(calls, conn.get_server_pid())
    out: dict[str, Any] = {}
    for way, key in (("memory", "suggest"), ("sql", "suggest_sql")):
        mine = {label.split("|", 1)[1]: v for label, v in timed.items() if label.startswith(way + "|")}
        out[key] = {k: _summary(v) for k, v in mine.items()}
        out[key]["all"] = _summary([x for v in mine.values() for x in v])
    fallbacks = differ = 0
    for s in scopes:
        for p in prefixes:
            params = SuggestParams(p, s.lat, s.lon, s.radius_m)
            scope = {"lon": s.lon, "lat": s.lat, "radius_m": s.radius_m}
            fallbacks += await suggest_in_memory(conn, index, sets, split_prefix(p), scope, 10) is None
            differ += await suggest(conn, params, labels, index, sets) != await suggest(conn, params, labels)
    out["suggest_check"] = {"calls": len(scopes) * len(prefixes), "fallbacks": fallbacks, "differ": differ}
    return out


def _search_summary(timed: dict[str, list[tuple[float, float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, values in timed.items():
        variant, label = key.split("|")
        out.setdefault(label, {})[variant] = _summary(values)
    for kind in ("plain", "engine", "facets"):
        out.setdefault("all", {})[kind] = _summary([x for k, v in timed.items() if k.startswith(kind) for x in v])
    for row in out.values():
        row["ratio_p95"] = round(row["facets"]["p95_ms"] / row["plain"]["p95_ms"], 2)
        row["ratio_p95_engine"] = round(row["facets"]["p95_ms"] / row["engine"]["p95_ms"], 2)
        row["ratio_cpu"] = round(row["facets"]["cpu_ms"] / max(row["plain"]["cpu_ms"], 0.01), 2)
    return out


def _markdown(report: dict[str, Any]) -> str:
    load = report["load_average"]
    lines = [f"# Search UX benchmark ({report['date']})", "", f"Catalogue: {report['catalogue']}", ""]
    lines += [
        f"Product vectors (ai_model: count): {report['vectors']}; semantic/hybrid queries use a random unit "
        "vector per query text.",
        "",
    ]
    lines += [
        f"Machine: {load['cores']} cores, 1-minute load average {load['before']:.1f} before, "
        f"{load['after']:.1f} after (other processes share the machine). CPU ms: this process (every thread) and "
        "its PostgreSQL backend per call, which other load does not inflate as it does latency.",
        "",
    ]
    lines += _suggest_markdown(report["results"])
    for mode in report["modes"]:
        lines += ["", f"## Search, {mode} mode: facets={','.join(FACETS)} vs none", ""]
        lines += [
            "plain: the API's path without facets (the engine, then whether each hit's store delivers to the point); "
            "engine only: `engine.search` alone (run6's baseline).",
            "",
        ]
        lines += [
            "| scope | p95 plain ms | p95 facets ms | ratio | p50 plain | p50 facets | CPU ms plain | CPU ms facets "
            "| CPU ratio | p95 engine only ms | ratio to it |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for label, row in report["results"][mode].items():
            p, f, e = row["plain"], row["facets"], row["engine"]
            lines.append(
                f"| {label} | {p['p95_ms']} | {f['p95_ms']} | {row['ratio_p95']} | {p['p50_ms']} | {f['p50_ms']} "
                f"| {p['cpu_ms']} | {f['cpu_ms']} | {row['ratio_cpu']} | {e['p95_ms']} | {row['ratio_p95_engine']} |"
            )
    return "\n".join(lines) + "\n"


def _suggest_markdown(results: dict[str, Any]) -> list[str]:
    check = results["suggest_check"]
    lines = [
        "## Suggestions (client side: round trips and in-memory work)",
        "",
        "memory: the suggestion index and the candidate sets (one statement a call); sql: the statement plans (narrow "
        "scopes from the product labels), timed interleaved with it. "
        f"Of {check['calls']} (scope, prefix) pairs, {check['fallbacks']} fell back to the statements and "
        f"{check['differ']} answered differently.",
        "",
        "| scope | n | p50 ms | p95 ms | p99 ms | CPU ms/call | p95 sql ms | CPU ms sql | p95 ratio | CPU ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, s in results["suggest"].items():
        q = results["suggest_sql"][label]
        ratios = f"{s['p95_ms'] / max(q['p95_ms'], 0.01):.2f} | {s['cpu_ms'] / max(q['cpu_ms'], 0.01):.2f}"
        lines.append(
            f"| {label} | {s['n']} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} | {s['cpu_ms']} | {q['p95_ms']} "
            f"| {q['cpu_ms']} | {ratios} |"
        )
    return lines


def main(argv: list[str] | None = None) -> dict[str, Path]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--scale", default="small")
    ap.add_argument("--prefixes", type=int, default=60)
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--points", type=int, default=4, help="random store locations per radius")
    ap.add_argument("--modes", default="keyword")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--name", default=None)
    ap.add_argument(
        "--synthetic-vectors",
        action="store_true",
        help="give products without a vector a random unit one (semantic/hybrid timing, no embedding run)",
    )
    args = ap.parse_args(argv)
    seed(args.database_url, args.scale, 42, embed=False, quiet=True)
    if args.synthetic_vectors:
        synthetic_vectors(args.database_url)
    rng = random.Random(24)
    with psycopg.connect(args.database_url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM product_master), (SELECT count(*) FROM store), "
            "(SELECT count(*) FROM store_product)"
        ).fetchone()
        vectors = _vectors(conn)
        scopes = _scopes(conn, rng, args.points)
        prefixes = _prefixes(conn, rng, args.prefixes)
        queries = _queries(conn, rng, args.queries)
    assert counts is not None
    modes = args.modes.split(",")
    load_before = os.getloadavg()
    results = asyncio.run(_measure(args.database_url, scopes, prefixes, queries, modes))
    load_after = os.getloadavg()
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "catalogue": f"{counts[0]:,} products, {counts[1]:,} stores, {counts[2]:,} listings (scale {args.scale})",
        "facet_depth": FacetConfig().depth,
        "vectors": vectors,  # the catalogue's ai_model counts: the semantic/hybrid figures' query vectors are random
        # other work on the machine skews every figure; the 1-minute load average before and after, and the cores
        "load_average": {"before": load_before[0], "after": load_after[0], "cores": os.cpu_count()},
        "modes": modes,
        "prefixes": prefixes,
        "queries": queries,
        "results": results,
    }
    name = args.name or f"search-ux-{args.scale}-{datetime.now(UTC):%Y-%m-%d}"
    args.out.mkdir(parents=True, exist_ok=True)
    paths = {"json": args.out / f"{name}.json", "md": args.out / f"{name}.md"}
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    paths["md"].write_text(_markdown(report))
    print(paths["md"].read_text())
    return paths


if __name__ == "__main__":
    main()
