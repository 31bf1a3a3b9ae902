"""Ingest benchmark: CSV import vs the naive per-row PUT, webhook intake at concurrency 8, and freshness.

    python -m benchmarks.bench_ingest                 # a throwaway PostgreSQL cluster of its own
    python -m benchmarks.bench_ingest --dsn postgresql://postgres@127.0.0.1:54329/postgres --rows 100000

A fresh database is created (and dropped) on the server; the API (`plinqy-search serve`) and the worker
(`plinqy-search worker`, every job) run as real processes. Measured, in one run:
- CSV import of `--rows` rows into a new store: from the upload's first byte until every row is mapped (status
  `completed`, listings visible in SQL). Target ≥ 20k rows/s.
- Baseline: the naive path, one `PUT /v1/stores/{id}/listings/{sku}` per row, sequential, on a sample of
  `--baseline-rows` rows; its rate is EXTRAPOLATED to `--rows` (stated in the report).
- Webhook intake: `--webhooks` signed `stock.set` deliveries at concurrency 8 (verify, store, answer);
  deliveries/s and p95 latency. Targets ≥ 300/s, p95 ≤ 50 ms.
- Freshness, with the worker running: a stock change sent as a webhook until the product leaves `/v1/search`
  (p95 ≤ 1 s); a new product sent as a webhook until a semantic search finds it (p95 ≤ 5 s, embedding included).
Results: JSON + Markdown in `--out` (default benchmarks/results/).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psycopg
from standardwebhooks import Webhook

from benchmarks.bench_worker import throwaway_server
from benchmarks.cputime import postmaster_of, process_tree_seconds
from search_service.db import migrate
from search_service.db.cluster import free_port
from search_service.ingest.keys import create_key
from search_service.ingest.stores import StoreFields, create_connection, create_store
from search_service.settings import Settings

BERLIN = (52.52, 13.405)
WORDS = ["oat", "rye", "apple", "tea", "soap", "hammer", "cable", "lamp", "towel", "pepper", "rice", "candle"]


def _replace_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    name = f"plinqy_bench_ingest_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = _replace_db(server_url, name)
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-ingest-{args[0]}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "search_service", *args], env=env, stderr=log, stdout=log)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def wait_ready(base: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError("the API never became ready")


def wait_settled(pid: int, timeout: float = 60) -> float:
    """Wait until a process tree has started (its CPU still but for its polls: under 20 ms in half a second) and
    return the CPU seconds it took. The import's CPU a row is the worker's steady state: its start-up (0.7 s of
    imports, fork and heap freeze on the development machine) counted at once was 24 µs a row of a 30k-row import."""
    deadline, quiet = time.monotonic() + timeout, 0
    last = process_tree_seconds(pid) or 0.0
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = process_tree_seconds(pid) or 0.0
        quiet = quiet + 1 if now - last < 0.02 and now > 0 else 0
        if quiet == 2:  # twice in a row: a loaded machine may hold a starting process off its core for a moment
            return round(now, 2)
        last = now
    raise RuntimeError(f"process {pid} was still starting after {timeout:g} s")


def csv_bytes(rows: int, prefix: str) -> bytes:
    lines = ["sku;name;brand;price;quantity"]
    for i in range(rows):
        words = f"{WORDS[i % 12]} {WORDS[(i // 12) % 12]} {i}"
        lines.append(f"{prefix}{i};Bench {words};Brand {i % 97};{1 + i % 50},{i % 100:02d};{i % 20}")
    return ("\n".join(lines) + "\n").encode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


class CpuMeter:
    """CPU seconds (user + system) of the API's and the worker's process trees, the local PostgreSQL server's and
    this process, read before and after a measurement: what each row or delivery cost in each."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids

    def read(self) -> dict[str, float | None]:
        own = os.times()
        out = {name: None if pid is None else process_tree_seconds(pid) for name, pid in self.pids.items()}
        return {**out, "client": own.user + own.system}

    @staticmethod
    def per_item(
        before: dict[str, float | None], after: dict[str, float | None], n: int, unit: float
    ) -> dict[str, Any]:
        def each(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else round((b - a) * unit / n, 1)

        return {name: each(a, after.get(name)) for name, a in before.items()}


def _database_pid(dsn: str) -> int | None:
    with psycopg.connect(dsn, autocommit=True) as conn:  # read while the backend is there: it exits on close
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        return None if row is None else postmaster_of(int(row[0]))


def measure_csv(base: str, key: str, store: uuid.UUID, dsn: str, rows: int, cpu: CpuMeter) -> dict[str, Any]:
    data = csv_bytes(rows, "csv-")
    headers = {"Authorization": f"Bearer {key}", "content-type": "text/csv"}
    cpu_before = cpu.read()
    started = time.perf_counter()
    accepted = httpx.post(f"{base}/v1/stores/{store}/imports", content=data, headers=headers, timeout=600)
    if accepted.status_code != 202:
        raise RuntimeError(f"the upload was refused: {accepted.status_code} {accepted.text}")
    stored_s = time.perf_counter() - started
    batch = accepted.json()["batch_id"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        while conn.execute("SELECT status FROM import_batch WHERE id = %s", (batch,)).fetchone() != ("completed",):
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        listed = conn.execute("SELECT count(*) FROM store_product WHERE store_id = %s", (store,)).fetchone()
    assert listed == (rows,), listed
    return {"rows": rows, "bytes": len(data), "upload_stored_s": round(stored_s, 3), "total_s": round(elapsed, 3),
            "rows_per_s": round(rows / elapsed, 1),
            "cpu_us_per_row": CpuMeter.per_item(cpu_before, cpu.read(), rows, 1e6)}  # fmt: skip


def measure_baseline(base: str, key: str, store: uuid.UUID, rows: int, extrapolate_to: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(headers=headers, timeout=30) as client:
        started = time.perf_counter()
        for i in range(rows):
            body = {"name": f"Baseline {WORDS[i % 12]} {i}", "price": 1 + i % 50, "quantity": i % 20}
            client.put(f"{base}/v1/stores/{store}/listings/base-{i}", json=body).raise_for_status()
        elapsed = time.perf_counter() - started
    rate = rows / elapsed
    return {"rows_measured": rows, "seconds": round(elapsed, 3), "rows_per_s": round(rate, 1),
            "extrapolated_rows": extrapolate_to, "extrapolated_s": round(extrapolate_to / rate, 1),
            "note": f"measured on {rows} rows, sequential, one PUT per row; the time for {extrapolate_to} rows is "
                    "extrapolated at that rate"}  # fmt: skip


async def _deliver(base: str, connection: uuid.UUID, bodies: list[tuple[bytes, dict[str, str]]], c: int) -> list[float]:
    """The deliveries at concurrency c, on c kept-alive connections. aiohttp, not httpx: the load generator shares
    the two cores with the API and PostgreSQL, and httpx cost ~1.1 ms of CPU a request (as much as the API)."""
    latencies: list[float] = []
    queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)
    url = f"{base}/v1/ingest/{connection}"
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c), timeout=timeout) as session:

        async def worker() -> None:
            while not queue.empty():
                body, headers = queue.get_nowait()
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    text = await response.text()
                latencies.append(time.perf_counter() - started)
                assert response.status == 202, text

        await asyncio.gather(*(worker() for _ in range(c)))
    return latencies


def sign(secret: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    msg_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    return body, {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
                  "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
                  "content-type": "application/json"}  # fmt: skip


def measure_webhooks(
    base: str, connection: uuid.UUID, secret: str, n: int, concurrency: int, cpu: CpuMeter
) -> dict[str, Any]:
    bodies = [sign(secret, {"type": "stock.set", "data": {"sku": f"csv-{i % 1000}", "quantity": i % 9}})
              for i in range(n)]  # fmt: skip
    cpu_before = cpu.read()
    started = time.perf_counter()
    latencies = asyncio.run(_deliver(base, connection, bodies, concurrency))
    elapsed = time.perf_counter() - started
    return {"deliveries": n, "concurrency": concurrency, "seconds": round(elapsed, 3),
            "per_s": round(n / elapsed, 1), "p50_ms": round(pct(latencies, 0.5) * 1000, 1),
            "p95_ms": round(pct(latencies, 0.95) * 1000, 1),
            "cpu_ms_per_delivery": CpuMeter.per_item(cpu_before, cpu.read(), n, 1e3)}  # fmt: skip


def _post(base: str, connection: uuid.UUID, secret: str, payload: dict[str, Any]) -> None:
    body, headers = sign(secret, payload)
    httpx.post(f"{base}/v1/ingest/{connection}", content=body, headers=headers, timeout=30).raise_for_status()


def _found(base: str, store: uuid.UUID, query: str, name: str, mode: str) -> bool:
    params: dict[str, str | float] = {"q": query, "lat": BERLIN[0], "lon": BERLIN[1], "radius_m": 3000, "mode": mode}
    response = httpx.get(f"{base}/v1/search", params=params, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"/v1/search answered {response.status_code}: {response.text[:300]}")
    results = response.json()["results"]
    return any(r["product"]["name"] == name and any(s["id"] == str(store) for s in r["stores"]) for r in results)


def _until(check: Any, timeout: float = 30) -> float:
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            return float("inf")
        time.sleep(0.02)
    return time.perf_counter() - started


NEW_PRODUCTS = [
    ("Hand-thrown ceramic teapot", "pottery kettle for brewing tea"),
    ("Waterproof hiking boots", "shoes for walking in the mountains in rain"),
    ("Cast iron skillet 28 cm", "heavy frying pan"),
    ("Bamboo toothbrush", "eco friendly brush for teeth"),
    ("Wool winter gloves", "warm mittens for cold hands"),
    ("Acoustic guitar strings", "replacement strings for a guitar"),
]


def measure_freshness(base: str, store: uuid.UUID, connection: uuid.UUID, secret: str, trials: int) -> dict[str, Any]:
    stock_s: list[float] = []
    for i in range(trials):
        sku, name = f"csv-{i}", f"Bench {WORDS[i % 12]} {WORDS[(i // 12) % 12]} {i}"
        _post(base, connection, secret, {"type": "stock.set", "data": {"sku": sku, "quantity": 5}})
        _until(lambda name=name: _found(base, store, name, name, "keyword"))
        _post(base, connection, secret, {"type": "stock.set", "data": {"sku": sku, "quantity": 0}})
        stock_s.append(_until(lambda name=name: not _found(base, store, name, name, "keyword")))
    new_s: list[float] = []
    for i in range(max(1, trials // 2)):
        name, query = NEW_PRODUCTS[i % len(NEW_PRODUCTS)]
        name = f"{name} {i}"
        item = {"sku": f"new-{i}", "name": name, "price": 9.5, "quantity": 3}
        _post(base, connection, secret, {"type": "listing.upsert", "data": item})
        new_s.append(_until(lambda q=query, n=name: _found(base, store, q, n, "semantic")))
    return {
        "stock_trials": len(stock_s),
        "stock_p50_s": round(pct(stock_s, 0.5), 3),
        "stock_p95_s": round(pct(stock_s, 0.95), 3),
        "new_product_trials": len(new_s),
        "new_product_p50_s": round(pct(new_s, 0.5), 3),
        "new_product_p95_s": round(pct(new_s, 0.95), 3),
    }


def _setup(dsn: str, secret_key: str) -> dict[str, Any]:
    settings = Settings.from_env({"DATABASE_URL": dsn, "PLINQY_SECRET_KEY": secret_key})
    with psycopg.connect(dsn, autocommit=True) as conn:
        stores = {
            name: create_store(conn, StoreFields(name=f"Bench {name}", lat=BERLIN[0], lon=BERLIN[1]))
            for name in ("csv", "baseline", "fresh")
        }
        keys = {name: create_key(conn, store_id=sid, scopes=["listings:write"]).key for name, sid in stores.items()}
        hooks = {name: create_connection(conn, settings.secret_box(), store_id=stores[name], source="webhook")
                 for name in ("csv", "fresh")}  # fmt: skip
    return {"stores": stores, "keys": keys, "hooks": hooks}


def _wait_idle(dsn: str, timeout: float = 600) -> float:
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        while conn.execute(
            "SELECT count(*) FROM import_batch WHERE status IN ('pending', 'processing')"
        ).fetchone() != (0,) or conn.execute(
            "SELECT count(*) FROM ai_task WHERE status IN ('pending', 'running')"
        ).fetchone() != (0,):
            if time.perf_counter() - started > timeout:
                break
            time.sleep(0.1)
    return time.perf_counter() - started


def _drop_embedding_backlog(dsn: str) -> int:
    """The bulk import queued an embedding per new product (100k would keep the worker busy for half an hour on a
    2-core machine): the benchmark drops that backlog, so freshness is measured in a steady state."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("DELETE FROM ai_task WHERE status = 'pending'").rowcount


def _settle(dsn: str) -> float:
    """VACUUM (ANALYZE) after the bulk phase: the 100k-row import and the dropped embedding backlog leave work that
    autovacuum would otherwise do during the webhook measurement (CPU on the same cores, counted per delivery).
    The intake is measured in a steady state; returns the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return round(time.perf_counter() - started, 2)


def run(dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    from cryptography.fernet import Fernet

    secret_key = Fernet.generate_key().decode()
    ctx = _setup(dsn, secret_key)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": dsn, "PLINQY_SECRET_KEY": secret_key, "PLINQY_INGEST_RATE_PER_S": "100000",
           "PLINQY_INGEST_RATE_BURST": "100000", "PLINQY_INGEST_LANES": str(args.lanes)}  # fmt: skip
    serve_args = ["serve", "--port", str(port), "--workers", str(args.api_workers)]
    database = _database_pid(dsn)
    loads = {"start": round(os.getloadavg()[0], 2)}
    with process(serve_args, env) as api:
        wait_ready(base)
        stores, keys, hooks = ctx["stores"], ctx["keys"], ctx["hooks"]
        # The import phase runs the worker's `import` job alone: the embedding of 100k new products would compete
        # for the same cores (it is dropped below, see _drop_embedding_backlog).
        with process(["worker", "--only", "import", "--poll-interval", "0.2"], env) as worker:
            started_cpu_s = wait_settled(worker.pid)
            cpu = CpuMeter({"api": api.pid, "worker": worker.pid, "database": database})
            csv = {**measure_csv(base, keys["csv"], stores["csv"], dsn, args.rows, cpu),
                   "worker_start_cpu_s": started_cpu_s}  # fmt: skip
            loads["after_csv"] = round(os.getloadavg()[0], 2)
            baseline = measure_baseline(base, keys["baseline"], stores["baseline"], args.baseline_rows, args.rows)
        backlog = _drop_embedding_backlog(dsn)
        settled_s = _settle(dsn)
        with process(["worker", "--poll-interval", "0.2"], env) as worker:
            fresh_rows = max(args.freshness * 2, 50)
            fresh_csv = csv_bytes(fresh_rows, "csv-")
            fresh_headers = {"Authorization": f"Bearer {keys['fresh']}", "content-type": "text/csv"}
            url = f"{base}/v1/stores/{stores['fresh']}/imports"
            httpx.post(url, content=fresh_csv, timeout=60, headers=fresh_headers).raise_for_status()
            _wait_idle(dsn)
            hook = hooks["csv"]
            assert hook.secret is not None
            cpu = CpuMeter({"api": api.pid, "worker": worker.pid, "database": database})
            webhooks = measure_webhooks(base, hook.id, hook.secret, args.webhooks, args.concurrency, cpu)
            loads["after_webhooks"] = round(os.getloadavg()[0], 2)
            webhooks["backlog_mapped_s"] = round(_wait_idle(dsn), 2)
            fresh = hooks["fresh"]
            assert fresh.secret is not None
            freshness = measure_freshness(base, stores["fresh"], fresh.id, fresh.secret, args.freshness)
    return {
        "benchmark": "ingest",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "api_workers": args.api_workers,
        "import_lanes": args.lanes,
        "load_average_1m": loads,
        "csv_import": csv,
        "baseline_put": baseline,
        "speedup_vs_baseline": round(csv["rows_per_s"] / baseline["rows_per_s"], 1),
        "webhook_intake": webhooks,
        "freshness": freshness,
        "embedding_backlog_dropped": backlog,
        "vacuum_analyze_s": settled_s,
        "targets": {
            "csv_rows_per_s >= 20000": csv["rows_per_s"] >= 20000,
            "webhooks_per_s >= 300": webhooks["per_s"] >= 300,
            "webhook_p95_ms <= 50": webhooks["p95_ms"] <= 50,
            "stock_freshness_p95_s <= 1": freshness["stock_p95_s"] <= 1,
            "new_product_p95_s <= 5": freshness["new_product_p95_s"] <= 5,
        },
    }


def _cpu_text(cpu: dict[str, float | None] | None) -> str:
    return "not measured" if not cpu else ", ".join(f"{k} {'n/a' if v is None else v}" for k, v in cpu.items())


def _load_text(loads: dict[str, float]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in loads.items()) or "not recorded"


def markdown(result: dict[str, Any]) -> str:
    csv, base, hooks, fresh = (result[k] for k in ("csv_import", "baseline_put", "webhook_intake", "freshness"))
    lines = [
        f"# Ingest benchmark ({result['date']})",
        "",
        f"Machine: {result['machine']['cpus']} CPUs, Python {result['machine']['python']}; API workers: "
        f"{result['api_workers']}; import lanes: {result.get('import_lanes', 1)}. CSV import and baseline: "
        "`plinqy-search worker --only import` running; "
        "webhooks and freshness: `plinqy-search worker` (every job). Load average (1 min; other jobs share the "
        f"machine): {_load_text(result.get('load_average_1m', {}))}.",
        "",
        "| measurement | result | target |",
        "|---|---|---|",
        f"| CSV import, {csv['rows']} rows ({csv['bytes'] / 1e6:.1f} MB), upload to all rows mapped | "
        f"{csv['rows_per_s']:.0f} rows/s ({csv['total_s']} s; upload stored in {csv['upload_stored_s']} s) "
        "| ≥ 20k rows/s |",
        f"| baseline: one PUT per row, sequential | {base['rows_per_s']:.0f} rows/s ({base['rows_measured']} rows "
        f"measured; {base['extrapolated_rows']} rows extrapolated: {base['extrapolated_s']} s) | — |",
        f"| CSV import vs baseline | {result['speedup_vs_baseline']}× | — |",
        f"| webhook intake, c={hooks['concurrency']}, {hooks['deliveries']} deliveries | {hooks['per_s']:.0f}/s, "
        f"p50 {hooks['p50_ms']} ms, p95 {hooks['p95_ms']} ms | ≥ 300/s, p95 ≤ 50 ms |",
        f"| stock change (webhook) until gone from /v1/search | p50 {fresh['stock_p50_s']} s, p95 "
        f"{fresh['stock_p95_s']} s ({fresh['stock_trials']} trials) | p95 ≤ 1 s |",
        f"| new product (webhook) until found semantically | p50 {fresh['new_product_p50_s']} s, p95 "
        f"{fresh['new_product_p95_s']} s ({fresh['new_product_trials']} trials) | p95 ≤ 5 s |",
        "",
        f"CPU per CSV row (µs): {_cpu_text(csv.get('cpu_us_per_row'))} (the worker's start-up, "
        f"{csv.get('worker_start_cpu_s', 'n/a')} s of CPU, waited out before the upload). "
        "CPU per webhook delivery (ms): "
        f"{_cpu_text(hooks.get('cpu_ms_per_delivery'))} (the worker maps the deliveries meanwhile; the client is this "
        "process: it signs and sends). `database`: the local PostgreSQL server's processes, all of them.",
        "",
        f"Baseline: {base['note']}. The intake's deliveries were then mapped by the worker in "
        f"{hooks['backlog_mapped_s']} s (a store's batches are mapped in order, one at a time). Before the "
        f"freshness runs, the {result['embedding_backlog_dropped']} embedding tasks the bulk import queued were "
        "dropped (embedding them would keep the worker busy for long), and the database was vacuumed and analyzed "
        f"({result.get('vacuum_analyze_s', 'n/a')} s), so the intake and freshness are measured in a steady state.",
        "",
        "Targets met: " + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in result["targets"].items()),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", help="a PostgreSQL server's maintenance URL (default: a throwaway cluster)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=1000)
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--freshness", type=int, default=20, help="stock trials (new-product trials: half)")
    parser.add_argument("--api-workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--lanes", type=int, default=2, help="PLINQY_INGEST_LANES for the worker (1: one mapper)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--name", default=None, help="result file name (default: ingest-<date>)")
    args = parser.parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM unwinds like Ctrl-C: the API and worker processes and the throwaway cluster are stopped.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.ExitStack() as stack:
        server = args.dsn or stack.enter_context(throwaway_server())
        dsn = stack.enter_context(fresh_database(server))
        result = run(dsn, args)
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.name or f"ingest-{datetime.now(UTC):%Y-%m-%d}"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
