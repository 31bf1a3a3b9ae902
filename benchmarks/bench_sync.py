"""First-sync throughput of a POS connector against the per-item listing PUT, same catalogue, same run.

    python -m benchmarks.bench_sync                      # 50,000 items, a throwaway PostgreSQL cluster
    python -m benchmarks.bench_sync --items 2000 --put-sample 200 --dsn postgresql://postgres@127.0.0.1:54329/postgres

A local fake Lightspeed X-Series serves the catalogue in its API 2.0 shape (products and inventory pages of 1,000
by `version`, pre-rendered so the fake is not what is measured). The figures:
- connector: fetch + map only (vendor JSON to normalized rows), items/s;
- sync: `sync_connection` storing the pages as raw batches, each with its cursor;
- mapping: then the import job's mapping of every batch into products and listings (its CPU per item);
- end to end (the target, >= 5,000 items/s): the same first sync into an empty database while
  `plinqy-search worker --only import` maps each stored batch alongside, as `plinqy-search worker` runs them;
- baseline: one `PUT /v1/stores/{id}/listings/{sku}` per item over real HTTP (uvicorn on 127.0.0.1), mapped
  inline. It runs on a sample (`--put-sample`) and is EXTRAPOLATED to the whole catalogue (rate × items).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg

from benchmarks.output import write_json_and_markdown

RESULTS = Path(__file__).resolve().parent / "results"
WORDS = ["Oat drink", "Claw hammer", "Garden hose", "LED bulb", "Dog food", "Green tea", "Yoga mat", "Sunscreen"]
PAGE = 1000


def gtin13(n: int) -> str:
    body = f"590{n:09d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def catalogue(n: int, outlet: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    products, levels = [], []
    for i in range(n):
        pid = f"{uuid.UUID(int=i + 1)}"
        products.append({
            "id": pid, "name": f"{WORDS[i % len(WORDS)]} {i}", "variant_name": f"{WORDS[i % len(WORDS)]} {i}",
            "sku": f"SKU-{i}", "product_codes": [{"type": "EAN", "code": gtin13(i)}] if i % 3 else [],
            "brand": {"name": f"Brand {i % 97}"}, "product_category": {"name": "Misc"},
            "description": "<p>Bench item.</p>", "price_including_tax": round(1 + (i % 500) / 10, 2),
            "is_active": True, "updated_at": "2025-06-18T18:30:09+00:00", "version": 10 + i,
        })  # fmt: skip
        levels.append({"id": f"inv-{i}", "outlet_id": outlet, "product_id": pid, "current_inventory_level": i % 40,
                       "version": 10 + i})  # fmt: skip
    return products, levels


def _pages(records: list[dict[str, Any]]) -> dict[int, bytes]:
    """`after` -> the pre-rendered page that follows it; the last `after` gets an empty page."""
    pages, after = {}, 0
    for start in range(0, len(records), PAGE):
        chunk = records[start : start + PAGE]
        body = {"data": chunk, "version": {"min": chunk[0]["version"], "max": chunk[-1]["version"]}}
        pages[after] = json.dumps(body).encode()
        after = chunk[-1]["version"]
    pages[after] = b'{"data": [], "version": {}}'
    return pages


@contextlib.contextmanager
def fake_x_series(products: list[dict[str, Any]], levels: list[dict[str, Any]]) -> Iterator[str]:
    routes = {"/api/2.0/products": _pages(products), "/api/2.0/inventory": _pages(levels)}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            after = int(parse_qs(parts.query).get("after", ["0"])[0])
            body = routes.get(parts.path, {}).get(after, b'{"data": []}')
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def measure_connector(base_url: str, n: int) -> dict[str, Any]:
    from search_service.ingest.connectors.common import MapContext
    from search_service.ingest.connectors.lightspeed_x import LightspeedX

    client = LightspeedX(domain_prefix="bench", token="t", ctx=MapContext("outlet-1"), base_url=base_url)
    started, rows = time.perf_counter(), 0
    for page in client.pages({}):
        rows += len(page.rows)
    seconds = time.perf_counter() - started
    client.close()
    return {"items": n, "rows": rows, "seconds": seconds, "items_per_s": n / seconds}


def _store(conn: psycopg.Connection, name: str) -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO store (name, location) VALUES (%s, 'SRID=4326;POINT(4.9 52.37)') RETURNING id", (name,)
    ).fetchone()
    assert row is not None
    store_id: uuid.UUID = row[0]
    return store_id


def _x_connection(conn: psycopg.Connection, box: Any, name: str, base_url: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A new store and its X-Series connection to the fake at `base_url`: (store id, connection id)."""
    from search_service.ingest.stores import create_connection

    store = _store(conn, name)
    new = create_connection(
        conn, box, store_id=store, source="lightspeed-x", credentials={"domain_prefix": "b", "token": "t"},
        config={"location": "outlet-1", "account": "lightspeed-x:b"}, external_location="outlet-1",
        base_url=base_url,
    )  # fmt: skip
    return store, new.id


def _backend_cpu_s(pid: int) -> float:
    """User + system CPU of a local PostgreSQL backend (the server runs on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _drain(dsn: str) -> tuple[float, float]:
    """Map every pending batch as the import worker does; returns the CPU seconds of (this process, its backend)."""
    from search_service.ingest import pipeline

    async def run() -> tuple[float, float]:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        try:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            cpu, db_cpu = time.process_time(), _backend_cpu_s(pid)
            while (batch := await pipeline.claim_batch(conn, "bench", 120)) is not None:
                await pipeline.map_batch(conn, batch, "bench", 5000, 120)
            return time.process_time() - cpu, _backend_cpu_s(pid) - db_cpu
        finally:
            await conn.close()

    return asyncio.run(run())


def measure_sync(dsn: str, base_url: str, n: int) -> dict[str, Any]:
    from search_service.db.secretbox import SecretBox
    from search_service.ingest.connectors.sync import load_spec, record_rows, sync_connection

    box = SecretBox(b"x1Yd9jgn0ZzvhkBp8v1mJm0jv5t8k1cQ0VQYt6uXo7A=")
    with psycopg.connect(dsn, autocommit=True) as conn:
        store, connection = _x_connection(conn, box, "Bench X-Series", base_url)
        started = time.perf_counter()
        report = sync_connection(conn, load_spec(conn, box, connection), record_rows)
        synced = time.perf_counter()
        worker_cpu, db_cpu = _drain(dsn)
        mapped_at = time.perf_counter()
        counts = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE quantity > 0) FROM store_product WHERE store_id = %s", (store,)
        ).fetchone()
    assert counts is not None
    total, sync_s = mapped_at - started, synced - started
    return {"items": n, "vendor_records": report.read, "rows": report.rows, "listings": counts[0],
            "in_stock": counts[1], "sync_seconds": sync_s, "sync_items_per_s": n / sync_s,
            "map_seconds": mapped_at - synced, "map_items_per_s": n / (mapped_at - synced),
            "map_cpu_us_per_item": {"worker": worker_cpu / n * 1e6, "database": db_cpu / n * 1e6},
            "seconds": total, "items_per_s": n / total}  # fmt: skip


def _wait_mapped(dsn: str, store: uuid.UUID, timeout_s: float = 900) -> None:
    """Until the store's batches are all mapped (none pending or processing)."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            left = conn.execute(
                "SELECT count(*) FROM import_batch WHERE store_id = %s AND status IN "
                "('receiving', 'pending', 'processing')",
                (store,),
            ).fetchone()
            if left == (0,):
                return
            time.sleep(0.05)
    raise RuntimeError("the import worker did not map the sync's batches in time")


def measure_with_worker(dsn: str, base_url: str, n: int) -> dict[str, Any]:
    """The first sync as a user runs it: `plinqy-search worker --only import` maps each stored batch while the
    sync stores the next (as `plinqy-search worker`'s sync and import jobs do, each in its own process)."""
    import signal
    import subprocess
    import sys

    from benchmarks.cputime import process_tree_seconds
    from search_service.db.secretbox import SecretBox
    from search_service.ingest.connectors.sync import load_spec, record_rows, sync_connection

    box = SecretBox(b"x1Yd9jgn0ZzvhkBp8v1mJm0jv5t8k1cQ0VQYt6uXo7A=")
    env = {**os.environ, "DATABASE_URL": dsn}
    worker = subprocess.Popen(
        [sys.executable, "-m", "search_service", "worker", "--only", "import"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            store, connection = _x_connection(conn, box, "Bench X-Series with the worker", base_url)
            time.sleep(2.0)  # the worker is up and listening (its start is not part of the sync)
            cpu_before, started = process_tree_seconds(worker.pid) or 0.0, time.perf_counter()
            sync_connection(conn, load_spec(conn, box, connection), record_rows)
            synced = time.perf_counter()
            _wait_mapped(dsn, store)
            done = time.perf_counter()
            worker_cpu = (process_tree_seconds(worker.pid) or 0.0) - cpu_before
            listings = conn.execute("SELECT count(*) FROM store_product WHERE store_id = %s", (store,)).fetchone()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert listings is not None
    return {"items": n, "listings": listings[0], "sync_seconds": synced - started, "seconds": done - started,
            "items_per_s": n / (done - started), "worker_cpu_us_per_item": worker_cpu / n * 1e6}  # fmt: skip


def measure_put_baseline(dsn: str, products: list[dict[str, Any]], sample: int, n: int) -> dict[str, Any]:
    import dataclasses

    import httpx
    import uvicorn

    from search_service.api.app import create_app
    from search_service.db.cluster import free_port
    from search_service.ingest.keys import create_key
    from search_service.settings import Settings

    with psycopg.connect(dsn, autocommit=True) as conn:
        store = _store(conn, "Bench PUT")
        key = create_key(conn, store_id=store, scopes=["listings:write"]).key
    settings = dataclasses.replace(Settings.from_env({"DATABASE_URL": dsn}), vector_cache_max=0)
    settings = dataclasses.replace(
        settings, ingest=dataclasses.replace(settings.ingest, rate_per_s=1e6, rate_burst=1e7)
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            started = time.perf_counter()
            for p in products[:sample]:
                body = {"name": p["name"], "price": str(p["price_including_tax"]), "quantity": 5,
                        "gtin": (p["product_codes"] or [{}])[0].get("code"), "brand": p["brand"]["name"]}  # fmt: skip
                response = client.put(f"/v1/stores/{store}/listings/{p['id']}", json=body)
                response.raise_for_status()
            seconds = time.perf_counter() - started
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    rate = sample / seconds
    return {"sample": sample, "sample_seconds": seconds, "items_per_s": rate,
            "extrapolated_items": n, "extrapolated_seconds": n / rate}  # fmt: skip


def _wait_ready(url: str, timeout_s: float = 240) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError("the API never became ready")


def _database(admin_dsn: str) -> str:
    from search_service.db import migrate

    name = f"plinqy_bench_sync_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + name
    migrate.upgrade(dsn)
    return dsn


def run(admin_dsn: str, n: int, put_sample: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    made: list[str] = []
    try:
        made.append(dsn := _database(admin_dsn))
        made.append(worker_dsn := _database(admin_dsn))  # the same first sync again, into an empty database
        products, levels = catalogue(n, "outlet-1")
        with fake_x_series(products, levels) as base_url:
            connector = measure_connector(base_url, n)
            sync = measure_sync(dsn, base_url, n)
            with_worker = measure_with_worker(worker_dsn, base_url, n)
        baseline = measure_put_baseline(dsn, products, min(put_sample, n), n)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            for dsn_made in made:
                conn.execute(f'DROP DATABASE IF EXISTS "{dsn_made.rsplit("/", 1)[1]}" WITH (FORCE)')
    return {
        "benchmark": "sync", "date": datetime.now(UTC).isoformat(timespec="seconds"), "items": n,
        "machine": {"cpus": _cpus(), "python": platform.python_version(),
                    "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]},  # shared machine
        "target_items_per_s": 5000,
        "connector": connector, "sync": sync, "with_worker": with_worker, "put_baseline": baseline,
        "sync_speedup_vs_put": sync["sync_items_per_s"] / baseline["items_per_s"],
        "end_to_end_speedup_vs_put": with_worker["items_per_s"] / baseline["items_per_s"],
        "passes": sync["sync_items_per_s"] >= 5000,  # the connector's sync; see end_to_end_passes
        "end_to_end_passes": with_worker["items_per_s"] >= 5000,
    }  # fmt: skip


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def markdown(r: dict[str, Any]) -> str:
    s, c, b, w = r["sync"], r["connector"], r["put_baseline"], r["with_worker"]
    verdict = "met" if r["passes"] else "NOT met"
    e2e = "met" if r["end_to_end_passes"] else "NOT met"
    return "\n".join([
        f"# Sync benchmark ({r['date']}, {r['machine']['cpus']} CPUs, load average "
        f"{r['machine']['load_average_1m'][0]} at the start, {r['machine']['load_average_1m'][1]} at the end)", "",
        f"First sync of {r['items']:,} items from a local fake Lightspeed X-Series (API 2.0 pages of 1,000).", "",
        "| stage | items/s | seconds |", "|---|---:|---:|",
        f"| connector: fetch + map to rows | {c['items_per_s']:,.0f} | {c['seconds']:.1f} |",
        f"| **sync** (`plinqy-search sync`): fetch + map + raw batches of ≤ 5,000 rows, each with its cursor | "
        f"**{s['sync_items_per_s']:,.0f}** | {s['sync_seconds']:.1f} |",
        f"| import job: mapping the batches into products and listings | {s['map_items_per_s']:,.0f} | "
        f"{s['map_seconds']:.1f} |",
        f"| … its CPU per item: worker {s['map_cpu_us_per_item']['worker']:.0f} µs, PostgreSQL backend "
        f"{s['map_cpu_us_per_item']['database']:.0f} µs | | |",
        f"| sync, then mapping (one after the other) | {s['items_per_s']:,.0f} | {s['seconds']:.1f} |",
        f"| **end to end**: sync with `plinqy-search worker --only import` mapping alongside, until every row is "
        f"mapped (worker CPU {w['worker_cpu_us_per_item']:.0f} µs an item) | **{w['items_per_s']:,.0f}** | "
        f"{w['seconds']:.1f} |",
        f"| baseline: one `PUT /v1/stores/{{id}}/listings/{{sku}}` per item (sample {b['sample']}) | "
        f"{b['items_per_s']:,.0f} | {b['extrapolated_seconds']:.0f} (extrapolated to {b['extrapolated_items']:,}) |",
        "",
        f"Target ≥ 5,000 items/s: sync alone {verdict}; end to end {e2e}. Sync is "
        f"{r['sync_speedup_vs_put']:.0f}× and end to end {r['end_to_end_speedup_vs_put']:.0f}× the per-item PUT. "
        f"{s['listings']:,} listings written "
        f"({s['in_stock']:,} in stock). The PUT figure is measured on {b['sample']} items over real HTTP and "
        f"EXTRAPOLATED, not run on all {r['items']:,}.", "",
    ])  # fmt: skip


def write_results(result: dict[str, Any], out_dir: Path, tag: str = "") -> tuple[Path, Path]:
    return write_json_and_markdown(result, markdown(result), out_dir, f"sync{tag}-{result['date'][:10]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--put-sample", type=int, default=1000, help="PUTs actually sent (then extrapolated).")
    parser.add_argument("--dsn", help="Maintenance URL of a server to use (default: a throwaway cluster).")
    parser.add_argument("--tag", default="", help="result file name sync<TAG>-<date> (default: sync-<date>)")
    args = parser.parse_args()
    if args.dsn:
        result = run(args.dsn, args.items, args.put_sample)
    else:
        from benchmarks.bench_worker import throwaway_server

        with throwaway_server() as admin:
            result = run(admin, args.items, args.put_sample)
    for path in write_results(result, RESULTS, args.tag):
        print(path)
    print(markdown(result))


if __name__ == "__main__":
    main()
