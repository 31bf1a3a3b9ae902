"""The keyword side near a point: how many of a word's local matches it ranks, and at what cost, ranked in scope
(the candidate sets keep a common word's matches in stock in scope: engine/keyword.py) against the baseline in
the same run, the catalogue's first `keyword_cap` matches kept by a per-listing probe (the one statement, as
a search without the sets runs it).

Per word, radius and point (`--points` stores' places), both forms rank the keyword side 30 deep on the
engine as an API worker holds it (`api_engine.open_api_engine`), each timed `--repeats` times (wall, and the
API process's CPU). The naive plan is the truth: every product the word matches with a listing in stock at an
active store within the radius (ST_DWithin), ranked by the same score, exact matches first, then the shorter
name, then by id.

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.bench_keyword_scope --database-url URL

Results: benchmarks/results/keyword-scope-<date>.{json,md} (`-run2`, … when that name is taken).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.api_engine import ApiEngine, open_api_engine
from benchmarks.output import measured_run, save_and_show
from benchmarks.report import free_stem
from search_service.engine.keyword import rank_keyword
from search_service.engine.results import SearchParams
from search_service.engine.scope import Scope, resolve_scope
from search_service.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"
DEPTH = 30
FORMS = ("baseline", "in_scope")
NAIVE = """
WITH q AS (SELECT websearch_to_tsquery('english', $1) AS e, websearch_to_tsquery('simple', $1) AS s, btrim($1) AS t),
here AS (SELECT ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography AS g),
m AS (
    SELECT p.id, p.name,
           (lower(p.name) = lower(q.t) OR lower(p.brand) = lower(q.t) OR p.gtin = q.t) AS exact,
           CASE WHEN p.search_tsv @@ q.e THEN ts_rank_cd(p.search_tsv, q.e) ELSE ts_rank_cd(p.search_tsv, q.s) END AS k
    FROM product_master p, q
    WHERE p.is_active AND (p.search_tsv @@ q.e OR p.search_tsv @@ q.s)
      AND EXISTS (
          SELECT 1 FROM store_product sp JOIN store s ON s.id = sp.store_id, here
          WHERE sp.product_master_id = p.id AND sp.is_active AND sp.quantity > 0 AND s.is_active
            AND ST_DWithin(s.location, here.g, $4))
)
SELECT coalesce(array_agg(id ORDER BY exact DESC, k DESC, length(name), id), '{}') AS ids FROM m
"""


async def naive(truth: asyncpg.Connection, word: str, lon: float, lat: float, radius_m: float) -> list[Any]:
    return list(await truth.fetchval(NAIVE, word, lon, lat, radius_m))


async def points(engine: ApiEngine, n: int) -> list[tuple[float, float]]:
    """(lon, lat) of `n` active stores, spread over the id space (the same ones every run)."""
    rows = await engine.conn.fetch(
        "SELECT ST_X(location::geometry) AS lon, ST_Y(location::geometry) AS lat FROM store WHERE is_active"
        " ORDER BY md5(id::text) LIMIT $1",
        n,
    )
    return [(r["lon"], r["lat"]) for r in rows]


async def scope_of(engine: ApiEngine, params: SearchParams) -> Scope:
    scope = await resolve_scope(engine.conn, params, None, engine.vectors.candidates, engine.stores)
    assert isinstance(scope, Scope), scope
    return scope


async def timed_form(engine: ApiEngine, scope: Scope, repeats: int) -> dict[str, Any]:
    """The side `repeats` times: its ids, total, and the median wall and API CPU (ms)."""
    wall, cpu = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        ranked = await rank_keyword(engine.conn, scope, DEPTH, engine.config)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return {
        "ids": ranked.ids,
        "total": ranked.total,
        "total_exact": ranked.total_exact,
        "wall_ms": round(statistics.median(wall), 2),
        "api_cpu_ms": round(statistics.median(cpu), 2),
    }


async def one_case(
    engine: ApiEngine,
    truth_conn: asyncpg.Connection,
    word: str,
    place: tuple[float, float],
    radius_m: float,
    repeats: int,
) -> Any:
    params = SearchParams(q=word, lon=place[0], lat=place[1], radius_m=radius_m, limit=DEPTH, mode="keyword")
    scope = await scope_of(engine, params)
    truth = await naive(truth_conn, word, place[0], place[1], radius_m)
    out: dict[str, Any] = {"matches_in_scope": len(truth)}
    for form in FORMS:
        timed = await timed_form(engine, scope if form == "in_scope" else replace(scope, sets=None), repeats)
        ids = timed.pop("ids")
        want = truth[:DEPTH]
        timed["recall_at_30"] = round(len(set(ids) & set(want)) / len(want), 3) if want else 1.0
        timed["same_order"] = ids == want
        out[form] = timed
    return out


async def measure_async(args: argparse.Namespace) -> dict[str, Any]:
    engine, info = await open_api_engine(args.database_url, Settings.from_env())
    engine.config = replace(engine.config, keyword_cap=args.keyword_cap or engine.config.keyword_cap)
    truth_conn = await asyncpg.connect(args.database_url)  # the naive plan, without the API's statement timeout
    cases = []
    try:
        places = await points(engine, args.points)
        for word in args.words.split(","):
            for km in (float(r) for r in args.radii.split(",")):
                for i, place in enumerate(places):
                    case = await one_case(engine, truth_conn, word, place, km * 1000, args.repeats)
                    cases.append({"word": word, "radius_km": km, "point": i, **case})
                    print(f"[keyword-scope] {word!r} {km} km point {i}: {case}", flush=True)
    finally:
        await truth_conn.close()
        await engine.close()
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "engine": info,
        "cap": engine.config.keyword_cap,
        "depth": DEPTH,
        "cases": cases,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# The keyword side near a point, {result['date']}",
        "",
        f"- Load {result['load_before']} before, {result['load_after']} after; {result['machine']['cores']} cores;"
        f" {result['engine']['vectors']:,} products. Keyword side {result['depth']} deep; the baseline ranks the"
        f" catalogue's first {result['cap']} matches (probed per listing), in scope ranks the word's matches the"
        " candidate sets hold in stock in scope. Medians of each case's repeats; the truth is the naive plan.",
        "",
        "| word | radius | point | matches in scope | baseline: seen, recall@30, ms (API CPU) |"
        " in scope: seen, recall@30, ms (API CPU) | ms in scope / baseline |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    for c in result["cases"]:
        b, s = c["baseline"], c["in_scope"]
        ratio = s["wall_ms"] / b["wall_ms"] if b["wall_ms"] else float("nan")
        lines.append(
            f"| `{c['word']}` | {c['radius_km']:g} km | {c['point']} | {c['matches_in_scope']:,} | {_form(b)} |"
            f" {_form(s)} | {ratio:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def _form(f: dict[str, Any]) -> str:
    seen = f"{f['total']:,}" + ("" if f["total_exact"] else " (capped)")
    return f"{seen}, {f['recall_at_30']:.3f}, {f['wall_ms']:.1f} ({f['api_cpu_ms']:.1f})"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--words", default="milk,organic,chocolate,shampoo,oat milk", help="comma-separated")
    parser.add_argument("--radii", default="1,5,20", help="km, comma-separated")
    parser.add_argument("--points", type=int, default=3, help="stores whose places the searches start from")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keyword-cap", type=int, default=0, help="EngineConfig.keyword_cap (0: the default)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="", help="result file stem (default keyword-scope-<date>)")
    args = parser.parse_args(argv)
    result = measured_run("keyword_scope", lambda: asyncio.run(measure_async(args)))
    stem = args.name or free_stem(args.out, f"keyword-scope-{result['date']}").name
    save_and_show(result, markdown(result), args.out, stem)
    return result


if __name__ == "__main__":
    main()
