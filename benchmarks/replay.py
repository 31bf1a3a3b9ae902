"""Paired replay of one engine statement against a rewrite of it: the same rows, and which form is faster.

    python -m benchmarks.replay --block filter_ranked --variant my-search.sql \\
        [--radii 500,2000,5000,20000,100000,global] [--queries 200] [--reps 3] [--database-url URL] [--out DIR]

The engine answers the benchmark's query set in hybrid mode as the API runs it (the in-memory vector copy, the
statistics cache, a second connection for the keyword side) at each radius, and every call of `--block` is
recorded with its arguments. Each call then runs in both forms: once to compare their rows (a call whose rows
differ is a mismatch, and the tool exits 1), then `--reps` times on one idle connection: both forms once
untimed, then timed in ABBA order (BAAB for every other call), so that neither a machine whose speed drifts (a
shared one: 15-25 % from one minute to the next here) nor the caches a call's first run warms favour one form.
Reported per repetition: the mean wall time per call of each form, the ratio of their sums and the median of the
per-call ratios. `--variant` is a `.sql` file of named blocks (`search_service/sql/search.sql` edited, say).

Wall time, not server CPU: /proc counts CPU in 10 ms ticks, too coarse for one call of ~1 ms; on an idle
connection the two forms share the same round trip, so the difference between them is the server's.
Needs a loaded benchmark database (`make bench` creates plinqy_bench_small).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
from pgvector.asyncpg import register_vector

from benchmarks import report
from benchmarks import run as bench
from embeddings.sqlblocks import SqlBlockError, parse_statements
from search_service.db.sql import statements
from search_service.engine import search as engine
from search_service.engine.stats import StatsCache
from search_service.settings import Settings

FETCHES = ("fetch", "fetchrow", "fetchval")


@dataclass
class Call:
    method: str  # fetch, fetchrow or fetchval, as the engine made it
    args: tuple[Any, ...]


@dataclass
class Recorder:
    """A connection that records the engine's calls of one statement (and passes everything through)."""

    conn: asyncpg.Connection
    sql: str
    calls: list[Call] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)

    async def _call(self, method: str, sql: str, *args: Any) -> Any:
        if sql == self.sql:
            self.calls.append(Call(method, args))
        return await getattr(self.conn, method)(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> Any:
        return await self._call("fetch", sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._call("fetchrow", sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._call("fetchval", sql, *args)


def parse_radii(text: str) -> list[float | None]:
    radii: list[float | None] = []
    for part in text.split(","):
        part = part.strip()
        if part == "global":
            radii.append(None)
            continue
        try:
            value = float(part)
        except ValueError:
            raise SystemExit(f"--radii: {part!r} is neither a radius in metres nor 'global'") from None
        if value <= 0:
            raise SystemExit(f"--radii: {part!r} must be a positive number of metres")
        radii.append(value)
    return radii


def statement_pair(block: str, variant_path: Path) -> tuple[str, str]:
    """The engine's form of `block` and the variant's, or SystemExit saying what is wrong. Both take the same
    parameters in the same order (the recorded arguments are replayed into both)."""
    current = statements("engine/search")
    if block not in current:
        raise SystemExit(f"--block: the engine has no SQL block {block!r} (it has: {', '.join(sorted(current))})")
    try:
        variant = parse_statements(variant_path.read_text(encoding="utf-8"), str(variant_path))
    except (OSError, SqlBlockError) as exc:
        raise SystemExit(f"--variant: cannot read {variant_path}: {exc}") from None
    if block not in variant:
        raise SystemExit(f"--variant: {variant_path} has no block named {block!r} (`-- name: {block}`)")
    if variant[block].params != current[block].params:
        raise SystemExit(
            f"--variant: block {block!r} takes {variant[block].params}, the engine's {current[block].params}"
        )
    return current[block].sql, variant[block].sql


def _comparable(method: str, result: Any) -> Any:
    if method == "fetch":
        return [tuple(r) for r in result]
    if method == "fetchrow":
        return None if result is None else tuple(result)
    return result


async def _connect(url: str, config: engine.EngineConfig) -> asyncpg.Connection:
    conn = await asyncpg.connect(url, server_settings=engine.session_settings(config))
    await register_vector(conn)
    return conn


async def record_calls(url: str, sql: str, radii: Sequence[float | None], n_queries: int, seed: int) -> list[Call]:
    """The calls of `sql` the engine makes while it answers the query set at each radius (hybrid, page of 10)."""
    queries, _ = bench.build_query_set(url, bench.SCALES["small"], n_queries, seed)
    vectors, _ = bench.encode_queries(queries, Settings.from_env())
    config = engine.EngineConfig(connection_has_settings=True)
    main, second = await _connect(url, config), await _connect(url, config)
    try:
        vector_copy, _ = await bench.load_vector_cache(main)
        stats = StatsCache()
        recorder, keyword_recorder = Recorder(main, sql), Recorder(second, sql)
        for radius in radii:
            for i, query in enumerate(queries):
                await engine.search(
                    recorder,  # type: ignore[arg-type]
                    bench._params(query, radius, 10, "hybrid"),
                    vectors[i],
                    config=config,
                    vectors=vector_copy,
                    keyword_conn=keyword_recorder,  # type: ignore[arg-type]
                    stats=stats,
                )
        return recorder.calls + keyword_recorder.calls
    finally:
        await main.close()
        await second.close()


async def replay(
    url: str, calls: Sequence[Call], current: str, variant: str, reps: int
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """Rows compared call by call, then `reps` timed rounds over every call (see the module docstring)."""
    conn = await _connect(url, engine.EngineConfig(connection_has_settings=True))
    try:
        mismatches: list[dict[str, Any]] = []
        for i, call in enumerate(calls):
            run = getattr(conn, call.method)
            ours = await run(current, *call.args)
            try:
                theirs = await run(variant, *call.args)
            except asyncpg.PostgresError as exc:
                raise SystemExit(f"--variant: the block failed on call {i}: {type(exc).__name__}: {exc}") from None
            if _comparable(call.method, ours) != _comparable(call.method, theirs):
                mismatches.append({"call": i, "first_argument": repr(call.args[0])[:120] if call.args else None})
        rounds: list[dict[str, float]] = []
        forms = {"current": current, "variant": variant}
        for _ in range(reps):
            spent = {"current": 0.0, "variant": 0.0}
            ratios = []
            for i, call in enumerate(calls):
                run = getattr(conn, call.method)
                times = {"current": 0.0, "variant": 0.0}
                # The first run of a call pays for the caches its pages are not yet in: both forms run once
                # untimed, and the timed order alternates (ABBA, BAAB) so that neither form always goes first.
                for sql in forms.values():
                    await run(sql, *call.args)
                first, second = ("current", "variant") if i % 2 == 0 else ("variant", "current")
                for form in (first, second, second, first):
                    started = time.perf_counter()
                    await run(forms[form], *call.args)
                    times[form] += time.perf_counter() - started
                spent["current"] += times["current"]
                spent["variant"] += times["variant"]
                ratios.append(times["variant"] / times["current"])
            rounds.append(
                {
                    "current_ms_per_call": spent["current"] / (2 * len(calls)) * 1000,
                    "variant_ms_per_call": spent["variant"] / (2 * len(calls)) * 1000,
                    "ratio_of_sums": spent["variant"] / spent["current"],
                    "median_ratio": statistics.median(ratios),
                }
            )
        return {"calls": len(calls), "identical": len(calls) - len(mismatches), "mismatches": mismatches[:20]}, rounds
    finally:
        await conn.close()


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Statement replay: `{result['block']}` against `{result['variant']}`, {result['date']}",
        "",
        f"- Radii: {', '.join(result['radii'])}; {result['queries']} queries each (hybrid, page of 10); "
        f"code `{result['code'].get('git_head')}`.",
        f"- Calls recorded: {result['calls']}; identical rows in both forms: {result['identical']}.",
        "",
        "| repetition | current ms / call | variant ms / call | ratio of sums | median per-call ratio |",
        "|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(result["rounds"], start=1):
        lines.append(
            f"| {i} | {r['current_ms_per_call']:.3f} | {r['variant_ms_per_call']:.3f} | {r['ratio_of_sums']:.3f}"
            f" | {r['median_ratio']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--block", required=True, help="the engine's SQL block to compare (e.g. filter_ranked)")
    p.add_argument("--variant", required=True, type=Path, help="a .sql file with a block of that name")
    p.add_argument("--radii", default="500,2000,5000,20000,100000,global", help="metres, comma separated")
    p.add_argument("--queries", type=int, default=200, help="queries of the benchmark's query set per radius")
    p.add_argument("--reps", type=int, default=3, help="timed ABBA repetitions over every recorded call")
    p.add_argument("--seed", type=int, default=42, help="the query set's seed (the benchmark's default)")
    p.add_argument("--database-url", help="a loaded benchmark database (default: plinqy_bench_small)")
    p.add_argument(
        "--out", type=Path, help="also write replay-<block>-<date>[-runN].json and .md in this folder (never over one)"
    )
    args = p.parse_args(argv)
    if args.queries < 1 or args.reps < 1:
        p.error("--queries and --reps must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    radii = parse_radii(args.radii)
    current, variant = statement_pair(args.block, args.variant)
    url = args.database_url or bench._with_db(Settings.from_env().database_url, "plinqy_bench_small")
    if bench.counts(url).get("product_master", 0) == 0:
        raise SystemExit(f"{url}: no products; load the benchmark database first (`make bench`)")
    print(f"[replay] recording {args.block} over {args.queries} queries at {len(radii)} radii …", flush=True)
    calls = asyncio.run(record_calls(url, current, radii, args.queries, args.seed))
    if not calls:
        raise SystemExit(f"the engine never ran {args.block} on this query set at these radii: nothing to compare")
    print(f"[replay] {len(calls)} calls; comparing rows, then {args.reps} timed ABBA repetitions …", flush=True)
    checked, rounds = asyncio.run(replay(url, calls, current, variant, args.reps))
    result = {
        "block": args.block,
        "variant": str(args.variant),
        "date": date.today().isoformat(),
        "radii": [bench.label(r) for r in radii],
        "queries": args.queries,
        "code": bench.code_version(),
        **checked,
        "rounds": rounds,
    }
    text = markdown(result)
    print(text, end="")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = report.free_stem(args.out, f"replay-{args.block}-{result['date']}")
        stem.with_name(stem.name + ".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        stem.with_name(stem.name + ".md").write_text(text)
        print(f"[replay] wrote {stem}.json and {stem}.md")
    if checked["mismatches"]:
        print(f"[replay] {len(calls) - checked['identical']} calls returned other rows in the variant", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
