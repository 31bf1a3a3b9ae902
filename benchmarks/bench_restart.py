"""The first searches after a restart of the embedded cluster: with autoprewarm's record of the buffers, and
without it (the baseline), in the same run.

The embedded cluster preloads pg_prewarm (`db/cluster.py`): a stop records which blocks shared buffers hold, a
start reads them back. Per variant, the cluster holding `--database-url` is stopped and started as
`plinqy-search db down/up` do, after a reboot's state when run as root (the OS page cache dropped; `--keep-os-cache`
keeps it):
- *cold*: the record deleted before the start (what a cluster without autoprewarm starts with);
- *prewarmed*: the record the stop wrote; the run waits for autoprewarm's log line (its load time is reported).
Cold runs first, so the record read by the prewarmed start holds the blocks its searches left in the buffers. Then
the engine as an API worker holds it (`api_engine.open_api_engine`: the vectors load alike in both) and, per
radius, one pass of the queries, each timed (the first searches users meet), then a second pass of the same ones
(the steady state, both passes in the same run).

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.bench_restart --database-url URL --scale large

Results: benchmarks/results/restart-<date><tag>.{json,md} (`-run2`, … when that name is taken).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from benchmarks import run as bench
from benchmarks.api_engine import open_api_engine
from benchmarks.output import measured_run, save_and_show
from benchmarks.report import free_stem
from search_service.db.cluster import Cluster
from search_service.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"
RECORD = "autoprewarm.blocks"
LOADED = "autoprewarm successfully prewarmed"
VARIANTS = ("cold", "prewarmed")


def drop_os_cache() -> bool:
    """The kernel's page cache emptied, as after a reboot (root only; False where it was not)."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def wait_for_prewarm(log_file: Path, offset: int, timeout_s: float = 300.0) -> dict[str, Any]:
    """Seconds from now until autoprewarm logs its load (past `offset` in the server log), and the blocks read."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        with log_file.open("rb") as log:
            log.seek(offset)
            for line in log.read().decode(errors="replace").splitlines():
                if LOADED in line:
                    blocks = line.split(LOADED, 1)[1].split()[0]
                    return {"waited_s": round(time.perf_counter() - started, 2), "blocks": int(blocks)}
        time.sleep(0.1)
    raise RuntimeError(f"autoprewarm logged no load in {timeout_s:.0f} s; see {log_file}")


def restart(cluster: Cluster, variant: str, drop_cache: bool) -> dict[str, Any]:
    """Stop (autoprewarm records the buffers), delete the record for the cold variant, start; the start's facts."""
    cluster.down()
    record = cluster.data_dir / RECORD
    if variant == "cold":
        record.unlink(missing_ok=True)
    facts: dict[str, Any] = {
        "record_blocks": _record_blocks(record),
        "os_cache_dropped": drop_cache and drop_os_cache(),
    }
    offset = cluster.log_file.stat().st_size if cluster.log_file.exists() else 0
    started = time.perf_counter()
    cluster.up()
    facts["start_s"] = round(time.perf_counter() - started, 2)
    facts["prewarm"] = wait_for_prewarm(cluster.log_file, offset) if facts["record_blocks"] else None
    return facts


def _record_blocks(record: Path) -> int:
    """The blocks a record lists (its first line is `<<count>>`); 0 without one."""
    if not record.exists():
        return 0
    first = record.read_text().split("\n", 1)[0]
    return int(first.strip("<>"))


async def passes(url: str, radii: Sequence[float | None], queries: list[Any], vectors: np.ndarray) -> dict[str, Any]:
    """Per radius: the first pass and the second pass of the queries, each search timed (ms)."""
    engine, info = await open_api_engine(url, Settings.from_env())
    out: dict[str, Any] = {"engine": info, "radii": {}}
    try:
        for radius in radii:
            timed: dict[str, list[float]] = {"first": [], "second": []}
            for name in timed:
                for query, vector in zip(queries, vectors, strict=True):
                    started = time.perf_counter()
                    await engine.search(bench._params(query, radius, 10, "semantic"), vector)
                    timed[name].append((time.perf_counter() - started) * 1000)
            out["radii"][bench.label(radius)] = {name: bench.summary(ms) for name, ms in timed.items()}
    finally:
        await engine.close()
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings.from_env()
    port = urlparse(args.database_url).port
    cluster = Cluster(args.pgdata or settings.pgdata, port or settings.db_port, bin_dir=settings.pg_bindir)
    if not cluster.status().running:
        raise SystemExit(f"error: no embedded cluster runs in {cluster.data_dir} on port {cluster.port}")
    queries, _ = bench.build_query_set(args.database_url, bench.SCALES[args.scale], args.queries, args.seed)
    vectors, model = bench.encode_queries(queries, settings)
    radii = [None if r == "global" else float(r) * 1000 for r in args.radii.split(",")]
    runs = {}
    for variant in VARIANTS:
        facts = restart(cluster, variant, not args.keep_os_cache)
        print(f"[restart] {variant}: {facts}", flush=True)
        runs[variant] = facts | asyncio.run(passes(args.database_url, radii, queries, vectors))
    return {"date": datetime.now(UTC).date().isoformat(), "queries": len(queries), "model": model, "runs": runs}


def markdown(result: dict[str, Any]) -> str:
    cold, warm = result["runs"]["cold"], result["runs"]["prewarmed"]
    load = warm["prewarm"] or {}
    lines = [
        f"# The first searches after a restart, {result['date']}",
        "",
        f"- Load {result['load_before']} before, {result['load_after']} after; {result['machine']['cores']} cores.",
        f"- {cold['engine']['vectors']:,} products; {result['queries']} queries a radius (semantic, page 10), the"
        " in-process engine as an API worker holds it;"
        f" OS page cache dropped before each start: {cold['os_cache_dropped']} / {warm['os_cache_dropped']}.",
        f"- Prewarmed start: {warm['record_blocks']:,} blocks recorded, loaded {load.get('waited_s')} s after the"
        f" start returned; cold start: {cold['record_blocks']} recorded.",
        "",
        "| radius | cold start: first pass p50 / p95 ms | prewarmed: first pass | cold / prewarmed p50 |"
        " second pass after the cold start | second pass after the prewarmed start |",
        "|---|---|---|---:|---|---|",
    ]
    for radius, c in cold["radii"].items():
        w = warm["radii"][radius]
        ratio = c["first"]["p50"] / w["first"]["p50"] if w["first"]["p50"] else float("nan")
        lines.append(
            f"| {radius} | {_pair(c['first'])} | {_pair(w['first'])} | {ratio:.2f}x |"
            f" {_pair(c['second'])} | {_pair(w['second'])} |"
        )
    return "\n".join(lines) + "\n"


def _pair(summary: dict[str, float | None]) -> str:
    return f"{summary['p50'] or 0:.1f} / {summary['p95'] or 0:.1f}"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a database of the embedded cluster (restarted)")
    parser.add_argument("--pgdata", type=Path, help="the cluster's data directory (default: PLINQY_PGDATA's)")
    parser.add_argument("--scale", choices=sorted(bench.SCALES), default="large", help="query set's scale")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--radii", default="0.5,2,5", help="km, comma-separated; `global` for none")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep-os-cache", action="store_true", help="do not drop the OS page cache (root only)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    result = measured_run("restart", lambda: measure(args))
    stem = free_stem(args.out, f"restart-{result['date']}{args.tag}")  # an earlier run's files stay
    save_and_show(result, markdown(result), args.out, stem.name)
    return result


if __name__ == "__main__":
    main()
