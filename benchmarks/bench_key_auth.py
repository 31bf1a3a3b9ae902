"""What the shared per-key rate limit costs a write: authenticating an API key, before and after, same run.

    python -m benchmarks.bench_key_auth                  # 3,000 calls per path and round, a throwaway cluster
    python -m benchmarks.bench_key_auth --calls 500 --dsn postgresql://postgres@127.0.0.1:54329/postgres

Every write request's guard authenticates its key. Before: two statements (the key by hash, then its last use) and
a token bucket in the API process's memory, so `serve --workers N` allowed a key N times its rate. After: one
statement that reads the key, touches its last use and takes a token from its bucket in the UNLOGGED table
`api_key_rate`, shared by every API process (`keys.authenticate`). Measured on asyncpg, as the API does:
- sequential calls on one connection (the latency a write pays), median and p95 per call, rounds interleaved
  (before, after, before, after) so that the machine's load hits both alike;
- 8 connections at once on the same key (the bucket row is locked by each upsert in turn): calls per second;
- PostgreSQL's CPU per call (the server's process tree, when it runs on this machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import cputime
from benchmarks.output import write_json_and_markdown

RESULTS = Path(__file__).resolve().parent / "results"
CONCURRENCY = 8
RATE, BURST = 1e6, 1e7  # the bucket never refuses: what is measured is the cost of taking a token
# The code before this change (ingest/sql/keys.sql then): the key by hash, then its last use.
BEFORE_LOOKUP = "SELECT id, key_hash, store_id, scopes, revoked_at FROM api_key WHERE key_hash = $1"
BEFORE_TOUCH = (
    "UPDATE api_key SET last_used_at = now() "
    "WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
)


class MemoryBucket:
    """The in-process token bucket of before (api/auth.py), per key."""

    def __init__(self) -> None:
        self.tokens, self.stamp = BURST, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens, self.stamp = min(BURST, self.tokens + (now - self.stamp) * RATE), now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


async def before(conn: Any, key: str, bucket: MemoryBucket) -> bool:
    from search_service.ingest.keys import hash_key

    row = await conn.fetchrow(BEFORE_LOOKUP, hash_key(key))
    await conn.execute(BEFORE_TOUCH, row["id"])
    return bucket.take()


async def after(conn: Any, key: str, _bucket: MemoryBucket) -> bool:
    from search_service.ingest.keys import authenticate

    principal, wait_s = await authenticate(conn, key, RATE, BURST)
    return principal is not None and wait_s == 0


PATHS = {"before": before, "after": after}


async def sequential(conn: Any, path: str, key: str, calls: int) -> list[float]:
    call, bucket, out = PATHS[path], MemoryBucket(), []
    for _ in range(calls):
        t0 = time.perf_counter()
        assert await call(conn, key, bucket)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def concurrent(conns: list[Any], path: str, key: str, calls: int) -> float:
    """Calls per second of CONCURRENCY connections on one key (each its own loop of calls)."""
    bucket = MemoryBucket()  # one per process, shared by its connections, as before

    async def loop(conn: Any) -> None:
        for _ in range(calls // len(conns)):
            assert await PATHS[path](conn, key, bucket)

    t0 = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in conns))
    return (calls // len(conns)) * len(conns) / (time.perf_counter() - t0)


def _summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {"calls": len(ms), "median_ms": round(statistics.median(ordered), 4),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 4)}  # fmt: skip


async def measure(dsn: str, key: str, calls: int, rounds: int) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    conns = [await asyncpg.connect(dsn) for _ in range(CONCURRENCY)]
    try:
        postmaster = cputime.postmaster_of(conn.get_server_pid())
        latencies: dict[str, list[float]] = {p: [] for p in PATHS}
        db_cpu: dict[str, float] = dict.fromkeys(PATHS, 0.0)
        rates: dict[str, list[float]] = {p: [] for p in PATHS}
        for path in PATHS:  # warm both (plans, the bucket row)
            await sequential(conn, path, key, 50)
        for _ in range(rounds):
            for path in PATHS:
                cpu0 = cputime.process_tree_seconds(postmaster) if postmaster else None
                latencies[path] += await sequential(conn, path, key, calls)
                cpu1 = cputime.process_tree_seconds(postmaster) if postmaster else None
                if cpu0 is not None and cpu1 is not None:
                    db_cpu[path] += cpu1 - cpu0
                rates[path].append(await concurrent(conns, path, key, calls))
        return {
            path: {
                **_summary(latencies[path]),
                "database_cpu_ms_per_call": (
                    round(db_cpu[path] * 1000 / len(latencies[path]), 4) if postmaster else None
                ),
                f"c{CONCURRENCY}_calls_per_s": round(statistics.median(rates[path]), 1),
                "statements_per_call": 2 if path == "before" else 1,
                "shared_across_workers": path == "after",
            }
            for path in PATHS
        }
    finally:
        await conn.close()
        for c in conns:
            await c.close()


def run(admin_dsn: str, calls: int, rounds: int = 2) -> dict[str, Any]:
    from search_service.db import migrate
    from search_service.ingest.keys import create_key

    load_before = os.getloadavg()[0]
    name = f"plinqy_bench_keys_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + name
    try:
        migrate.upgrade(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            key = create_key(conn, store_id=None, scopes=["listings:write"]).key
        paths = asyncio.run(measure(dsn, key, calls, rounds))
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    b, a = paths["before"], paths["after"]
    return {
        "benchmark": "key_auth", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "calls_per_round": calls, "rounds": rounds, "concurrency": CONCURRENCY,
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                    "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]},  # shared machine
        "before": b, "after": a,
        "median_ratio": round(a["median_ms"] / b["median_ms"], 3),
        "p95_ratio": round(a["p95_ms"] / b["p95_ms"], 3),
        "concurrent_ratio": round(a[f"c{CONCURRENCY}_calls_per_s"] / b[f"c{CONCURRENCY}_calls_per_s"], 3),
    }  # fmt: skip


def markdown(r: dict[str, Any]) -> str:
    rate = f"c{r['concurrency']}_calls_per_s"

    def row(label: str, p: dict[str, Any]) -> str:
        cpu = "n/a" if p["database_cpu_ms_per_call"] is None else f"{p['database_cpu_ms_per_call']:.3f}"
        return (f"| {label} | {p['statements_per_call']} | {p['median_ms']:.3f} | {p['p95_ms']:.3f} | {cpu} | "
                f"{p[rate]:,.0f} |")  # fmt: skip

    return "\n".join([
        f"# API key authentication with the shared rate limit ({r['date']}, {r['machine']['cpus']} CPUs, load "
        f"average {r['machine']['load_average_1m'][0]} at the start, {r['machine']['load_average_1m'][1]} at the end)",
        "",
        f"{r['rounds']} interleaved rounds of {r['calls_per_round']:,} sequential calls per path on one asyncpg "
        f"connection, then the same number on {r['concurrency']} connections at once, all on one key.", "",
        f"| path | statements | median ms | p95 ms | PostgreSQL CPU ms/call | calls/s at c={r['concurrency']} |",
        "|---|---:|---:|---:|---:|---:|",
        row("before: key + last use, bucket in process memory (per worker)", r["before"]),
        row("**after**: one statement, bucket in `api_key_rate` (shared)", r["after"]),
        "",
        f"After / before: median {r['median_ratio']:.2f}×, p95 {r['p95_ratio']:.2f}×, calls/s at "
        f"c={r['concurrency']} {r['concurrent_ratio']:.2f}×.", "",
    ])  # fmt: skip


def write_results(result: dict[str, Any], out_dir: Path, tag: str = "") -> tuple[Path, Path]:
    return write_json_and_markdown(result, markdown(result), out_dir, f"keyauth{tag}-{result['date'][:10]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="Calls per path and round.")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dsn", help="Maintenance URL of a server to use (default: a throwaway cluster).")
    args = parser.parse_args()
    if args.dsn:
        result = run(args.dsn, args.calls, args.rounds)
    else:
        from benchmarks.bench_worker import throwaway_server

        with throwaway_server() as admin:
            result = run(admin, args.calls, args.rounds)
    for path in write_results(result, RESULTS):
        print(path)
    print(markdown(result))


if __name__ == "__main__":
    main()
