"""The API's memory and start-up with 1 and with 2 worker processes (`serve --workers N`, the real CLI).

Per run: a synthetic catalogue of random unit vectors (no model needed to build it; `--products`), then for each
worker count a fresh `serve` against it: the time from start to ready (every worker answered /readyz), then the
RSS and PSS of every API process (/proc/<pid>/smaps_rollup: PSS divides each shared page among the processes
mapping it, so the PSS of all processes is what the API costs the machine), and the generation file of the
shared vector copy each worker maps. The extra cost of the second worker is the difference of the PSS totals.

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.bench_memory --products 200000 --database-url URL

The database is seeded when it holds no product (`--seed`), or used as it is. Results: JSON and Markdown in
benchmarks/results/memory-<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg

from benchmarks.run import Server, child_pids
from search_service.demo.synthetic import SyntheticSpec, seed_synthetic

RESULTS = Path(__file__).resolve().parent / "results"
SMAPS_FIELDS = ("Rss", "Pss", "Pss_Anon", "Pss_File", "Shared_Clean", "Private_Dirty", "Private_Clean")


def smaps_rollup(pid: int) -> dict[str, int]:
    """The process's memory totals in bytes (smaps_rollup's kB lines)."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in SMAPS_FIELDS:
            out[name.lower()] = int(rest.split()[0]) * 1024
    return out


def mapped_generation(pid: int) -> str | None:
    """The vector matrix file of the shared copy this process maps (the newest, if several)."""
    found = [line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if "matrix.npy" in line]
    return max(found) if found else None


def cpu_seconds(pid: int) -> float:
    """CPU the process has used, with that of its children it has waited for (serve's generation writer)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime


def api_processes(server: Server) -> list[int]:
    """The serving processes: the one process, or the supervisor and its children (workers and helpers)."""
    return [server.proc.pid] if server.workers == 1 else [server.proc.pid, *child_pids(server.proc.pid)]


def role_of(server: Server, pid: int) -> str:
    if server.workers == 1:
        return "worker"
    if pid == server.proc.pid:
        return "supervisor"
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    forked = cmdline == Path(f"/proc/{server.proc.pid}/cmdline").read_bytes()  # serve's forked workers
    return "worker" if forked or b"spawn_main" in cmdline else "helper"  # multiprocessing's resource tracker


def worker_pids(server: Server) -> list[int]:
    return [pid for pid in api_processes(server) if role_of(server, pid) == "worker"]


def warm(base: str, searches: int = 24) -> None:
    """Searches on new connections, several at once, so that every worker serves some (and reads the copy)."""
    params = {"q": "warm up", "limit": "5"}
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: httpx.get(base + "/v1/search", params=params, timeout=60), range(searches)))


def measure(url: str, workers: int, log_dir: Path, settle_s: float, shared_dir: Path | None = None) -> dict[str, Any]:
    """One `serve --workers N`: ready time, then every process's memory after warm-up searches. `shared_dir`:
    PLINQY_VECTOR_SHARED_DIR, kept across runs (a run after one that wrote it maps its generation)."""
    with contextlib.ExitStack() as stack:
        if shared_dir is not None:
            env = stack.enter_context(environment_restored())
            env["PLINQY_VECTOR_SHARED_DIR"] = str(shared_dir)
        server = Server(url, 1024, log_dir / f"api-{workers}.log", workers, holds_vectors=10**8)
    try:
        ready_s = server.wait_ready()
        ready_cpu_s = sum(cpu_seconds(pid) for pid in api_processes(server))  # steadier than ready_s under load
        warm(server.base)
        time.sleep(settle_s)
        processes = []
        for pid in api_processes(server):
            entry: dict[str, Any] = {"pid": pid, "role": role_of(server, pid), **smaps_rollup(pid)}
            entry["generation_file"] = mapped_generation(pid)
            processes.append(entry)
        return {
            "workers": workers,
            "generation_kept": shared_dir is not None,
            "ready_s": round(ready_s, 2),
            "ready_cpu_s": round(ready_cpu_s, 2),
            "processes": processes,
            "pss_total": sum(p["pss"] for p in processes),
            "rss_total": sum(p["rss"] for p in processes),
        }
    finally:
        server.stop()


@contextlib.contextmanager
def environment_restored() -> Iterator[dict[str, str]]:
    """os.environ, restored afterwards (the server copies it when it starts)."""
    saved = dict(os.environ)
    try:
        yield os.environ  # type: ignore[misc]
    finally:
        os.environ.clear()
        os.environ.update(saved)


def catalogue_size(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM product_master WHERE ai_vector IS NOT NULL").fetchone()
    return int(row[0]) if row else 0


def run(
    url: str, products: int, worker_counts: Sequence[int], settle_s: float = 2.0, restart: bool = False
) -> dict[str, Any]:
    seeded_s = None
    if catalogue_size(url) == 0:
        started = time.perf_counter()
        stores = max(10, products // 100)
        with psycopg.connect(url, autocommit=True) as conn:
            # Not needed to measure memory (the API ranks on its copy), and inserting into it row by row took
            # most of the seeding (200k products: >10 min on 2 busy cores).
            conn.execute("DROP INDEX IF EXISTS ix_product_master_ai_vector_hnsw")
        seed_synthetic(url, SyntheticSpec(products=products, stores=stores, listings=min(products * 2, 400_000)))
        seeded_s = round(time.perf_counter() - started, 1)
    load_start = os.getloadavg()  # a shared machine: the ready times move with it
    log_dir = Path(tempfile.mkdtemp(prefix="plinqy-bench-memory-"))
    try:
        runs = [measure(url, n, log_dir, settle_s) for n in worker_counts]
        if restart:  # a restart on the generation a first run wrote and kept: start-up without the load
            kept = log_dir / "vectors"
            runs += [measure(url, worker_counts[-1], log_dir, settle_s, kept) for _ in range(2)][1:]
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "vectors": catalogue_size(url),
        "seeded_s": seeded_s,
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "runs": runs,
    }
    by_workers = {r["workers"]: r for r in runs if not r["generation_kept"]}
    if 1 in by_workers and 2 in by_workers:
        result["second_worker_pss"] = by_workers[2]["pss_total"] - by_workers[1]["pss_total"]
    return result


def markdown(result: dict[str, Any]) -> str:
    mib = 2**20
    lines = [
        f"# API memory and start-up, {result['vectors']:,} vectors ({result['date']}, {result['cpus']} CPUs)",
        "",
        f"Load average at start {', '.join(f'{x:.2f}' for x in result.get('load_average_start', ()))}, at end "
        f"{', '.join(f'{x:.2f}' for x in result.get('load_average_end', ()))} (a shared machine).",
        "",
        "| workers | ready s | CPU s to ready | process | RSS MiB | PSS MiB | PSS anon MiB | PSS file MiB "
        "| generation mapped |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in result["runs"]:
        if r["generation_kept"]:
            lines.append(
                f"| {r['workers']}, restarted on a kept generation | {r['ready_s']} | {r.get('ready_cpu_s', '')} "
                "| | | | | | |"
            )
            continue
        for p in r["processes"]:
            generation = Path(p["generation_file"]).parent.name if p["generation_file"] else "-"
            lines.append(
                f"| {r['workers']} | {r['ready_s']} | {r.get('ready_cpu_s', '')} | {p['role']} {p['pid']} "
                f"| {p['rss'] / mib:,.0f} "
                f"| {p['pss'] / mib:,.0f} | {p.get('pss_anon', 0) / mib:,.0f} | {p.get('pss_file', 0) / mib:,.0f} "
                f"| {generation} |"
            )
        lines.append(
            f"| {r['workers']} | | | **all** | {r['rss_total'] / mib:,.0f} | {r['pss_total'] / mib:,.0f} | | | |"
        )
    if "second_worker_pss" in result:
        lines += ["", f"The second worker costs {result['second_worker_pss'] / mib:,.0f} MiB of PSS."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL"), required="DATABASE_URL" not in os.environ
    )
    parser.add_argument("--products", type=int, default=100_000, help="catalogue size when seeding an empty database")
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, in order")
    parser.add_argument("--settle-s", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--tag", default="", help="suffix of the result files' names")
    parser.add_argument("--restart", action="store_true", help="also: a restart on a kept generation")
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]
    result = run(args.database_url, args.products, workers, args.settle_s, args.restart)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"memory-{result['date']}{args.tag}"
    paths = {"json": stem.with_suffix(".json"), "md": stem.with_suffix(".md")}
    paths["json"].write_text(json.dumps(result, indent=2) + "\n")
    paths["md"].write_text(markdown(result))
    print(markdown(result), flush=True)
    return paths


if __name__ == "__main__":
    main()
