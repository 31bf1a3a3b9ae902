"""The floor of a CSV import's cost on this machine: the least CPU each row's required work takes, done the cheapest
way (set-based SQL, no round trips), against the pipeline's real cost per row in the same run.

    python -m benchmarks.bench_ingest_floor --rows 20000 --dsn postgresql://postgres@127.0.0.1:54329/postgres

What a row of a CSV import must do (issue 20: raw first, then mapped; the schema's triggers keep the history, the
inventory events, the embedding queue, the search terms and the listings' change log that search, facets and
webhooks read): parse the cells, store the raw row, validate it, insert its product and its listing, record its
outcome. Each step is timed alone on a fresh database, in CPU seconds of this process (Python steps) or of its
PostgreSQL backend (SQL steps). Their sum is a lower bound of the CPU a row costs; on this machine's cores that
bounds the rows a second any design can reach: `cores / floor`. The same steps without the triggers and foreign keys
(`session_replication_role = replica`) show what the schema's side effects cost. Then the real path (parse,
`record_batch`, the import worker's `map_batch`) is measured on the same rows for the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.bench_ingest import csv_bytes, fresh_database
from benchmarks.output import write_json_and_markdown

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_ROWS_PER_S = 20_000


def _backend_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sql_us(conn: psycopg.Connection, sql: str, rows: int, params: Any = None) -> float:
    pid = conn.info.backend_pid
    before = _backend_cpu_s(pid)
    conn.execute(sql, params)
    return (_backend_cpu_s(pid) - before) / rows * 1e6


def _py_us(work: Callable[[], object], rows: int) -> float:
    before = time.process_time()
    work()
    return (time.process_time() - before) / rows * 1e6


def _store(conn: psycopg.Connection) -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO store (name, location) VALUES ('Floor', 'SRID=4326;POINT(13.4 52.5)') RETURNING id"
    ).fetchone()
    assert row is not None
    store_id: uuid.UUID = row[0]
    return store_id


def _steps(conn: psycopg.Connection, data: bytes, rows: int, tag: str) -> dict[str, float]:
    """Each required step's CPU per row (µs), the cheapest way; `tag` keeps SKUs and names of two passes apart."""
    from search_service.ingest.csvfile import parse_csv
    from search_service.ingest.raw_rows import split_rows
    from search_service.ingest.rows import validate

    out: dict[str, float] = {}
    parsed: list[Any] = []
    out["parse the CSV (Python)"] = _py_us(lambda: parsed.extend(parse_csv(data).rows), rows)
    split = split_rows(parsed)
    out["validate each row (Python)"] = _py_us(lambda: [validate(r) for r in parsed], rows)
    store = _store(conn)
    batch = conn.execute(
        "INSERT INTO import_batch (store_id, source, kind, status) VALUES (%s, 'csv', 'csv', 'pending') RETURNING id",
        (store,),
    ).fetchone()
    assert batch is not None
    pid, before = conn.info.backend_pid, _backend_cpu_s(conn.info.backend_pid)
    with (
        conn.cursor() as cur,
        cur.copy("COPY imported_product_raw (import_batch_id, row_number, payload, status) FROM STDIN") as copy,
    ):
        for number, payload, _raw, status, _error in split:
            copy.write_row((batch[0], number, payload, status))
    out["store the raw row (COPY)"] = (_backend_cpu_s(pid) - before) / rows * 1e6
    conn.execute(
        "CREATE TEMP TABLE floor_rows AS SELECT gen_random_uuid() AS id, id AS raw_id, payload->>'sku' AS sku, "
        "payload->>'name' AS name, payload->>'brand' AS brand, replace(payload->>'price', ',', '.')::numeric AS price, "
        "(payload->>'quantity')::int AS quantity FROM imported_product_raw WHERE import_batch_id = %s",
        (batch[0],),
    )
    out["insert the product"] = _sql_us(
        conn, "INSERT INTO product_master (id, name, brand) SELECT id, name || %s, brand FROM floor_rows", rows, (tag,)
    )
    out["insert the listing"] = _sql_us(
        conn,
        "INSERT INTO store_product (store_id, sku, product_master_id, title, price, currency, quantity, is_active) "
        "SELECT %s, sku, id, name, price, 'EUR', quantity, true FROM floor_rows",
        rows,
        (store,),
    )
    out["record the row's outcome"] = _sql_us(
        conn,
        "UPDATE imported_product_raw r SET status = 'mapped', matched_by = 'created', matched_product_id = f.id "
        "FROM floor_rows f WHERE r.id = f.raw_id",
        rows,
    )
    conn.execute("DROP TABLE floor_rows")
    return out


def _pipeline(dsn: str, data: bytes, rows: int) -> dict[str, float]:
    """The real path on the same rows: parse, record_batch, the import worker's map_batch (CPU per row, µs)."""
    import asyncpg

    from search_service.ingest import pipeline
    from search_service.ingest.csvfile import parse_csv

    with psycopg.connect(dsn, autocommit=True) as conn:
        store = _store(conn)
        started, db_before = time.process_time(), _backend_cpu_s(conn.info.backend_pid)
        pipeline.record_batch(conn, store_id=store, source="csv", kind="csv", rows=parse_csv(data).rows)
        stored_cpu, stored_db = time.process_time() - started, _backend_cpu_s(conn.info.backend_pid) - db_before

    async def drain() -> tuple[float, float, float]:
        aconn = await asyncpg.connect(dsn)
        try:
            pid = await aconn.fetchval("SELECT pg_backend_pid()")
            cpu, db, wall = time.process_time(), _backend_cpu_s(pid), time.perf_counter()
            while (batch := await pipeline.claim_batch(aconn, "floor", 120)) is not None:
                await pipeline.map_batch(aconn, batch, "floor", 5000, 120)
            return time.process_time() - cpu, _backend_cpu_s(pid) - db, time.perf_counter() - wall
        finally:
            await aconn.close()

    worker_cpu, db_cpu, map_wall = asyncio.run(drain())
    with psycopg.connect(dsn, autocommit=True) as conn:
        mapped = conn.execute("SELECT count(*) FROM store_product WHERE store_id = %s", (store,)).fetchone()
    if mapped != (rows,):
        raise RuntimeError(f"the pipeline mapped {mapped} of {rows} rows")
    return {"parse and store (Python)": stored_cpu / rows * 1e6, "store (PostgreSQL backend)": stored_db / rows * 1e6,
            "map (worker Python)": worker_cpu / rows * 1e6, "map (PostgreSQL backend)": db_cpu / rows * 1e6,
            "map wall": map_wall / rows * 1e6}  # fmt: skip


def run(server_url: str, rows: int) -> dict[str, Any]:
    cores = len(os.sched_getaffinity(0))
    load = [round(os.getloadavg()[0], 2)]
    data = csv_bytes(rows, "F")
    with fresh_database(server_url) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            floor = _steps(conn, data, rows, "")
            conn.execute("SET session_replication_role = replica")  # no triggers, no foreign keys
            bare = _steps(conn, csv_bytes(rows, "B"), rows, " (bare)")
        real = _pipeline(dsn, csv_bytes(rows, "R"), rows)
    load.append(round(os.getloadavg()[0], 2))
    floor_us = sum(floor.values())
    real_us = sum(v for k, v in real.items() if k != "map wall")
    return {
        "benchmark": "ingest_floor", "date": datetime.now(UTC).isoformat(timespec="seconds"), "rows": rows,
        "machine": {"cores": cores, "python": platform.python_version(), "load_average_1m": load},
        "floor_us_per_row": floor, "floor_total_us": floor_us, "bare_us_per_row": bare,
        "bare_total_us": sum(bare.values()), "pipeline_us_per_row": real, "pipeline_total_us": real_us,
        "ceiling_rows_per_s": cores * 1e6 / floor_us, "target_rows_per_s": TARGET_ROWS_PER_S,
        "target_budget_us": cores * 1e6 / TARGET_ROWS_PER_S,
    }  # fmt: skip


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# The floor of a CSV import's cost ({r['date']}, {r['rows']:,} rows)", "",
        f"Machine: {r['machine']['cores']} cores, Python {r['machine']['python']}; load average (1 min) "
        f"{r['machine']['load_average_1m'][0]} at the start, {r['machine']['load_average_1m'][1]} at the end. "
        "CPU µs a row; SQL steps set-based in one statement each (the cheapest way), on a fresh database.", "",
        "| step | with the schema's triggers and keys | bare (no triggers, no foreign keys) |", "|---|---:|---:|",
    ]  # fmt: skip
    for step, value in r["floor_us_per_row"].items():
        lines.append(f"| {step} | {value:.1f} | {r['bare_us_per_row'][step]:.1f} |")
    lines += [
        f"| **floor: the sum** | **{r['floor_total_us']:.1f}** | {r['bare_total_us']:.1f} |", "",
        f"At {r['target_rows_per_s']:,} rows/s, {r['machine']['cores']} cores give each row "
        f"**{r['target_budget_us']:.0f} µs** of CPU. The floor allows at most **{r['ceiling_rows_per_s']:,.0f} "
        "rows/s** on this machine, with every core busy on nothing else and no round trip, lock or commit.", "",
        "The pipeline on the same rows (parse, `record_batch`, the import worker's `map_batch`), µs a row: "
        + ", ".join(f"{k} {v:.1f}" for k, v in r["pipeline_us_per_row"].items())
        + f"; in all **{r['pipeline_total_us']:.1f}** µs of CPU, "
        f"{r['pipeline_total_us'] / r['floor_total_us']:.2f}× the floor.", "",
    ]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--dsn", help="maintenance URL of a server (default: a throwaway cluster)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default=None, help="result stem (default: ingest-floor-<date>)")
    args = parser.parse_args(argv)
    if args.dsn:
        result = run(args.dsn, args.rows)
    else:
        from benchmarks.bench_worker import throwaway_server

        with throwaway_server() as admin:
            result = run(admin, args.rows)
    stem = args.name or f"ingest-floor-{result['date'][:10]}"
    json_path, md_path = write_json_and_markdown(result, markdown(result), args.out, stem)
    print(markdown(result), file=sys.stdout)
    print(f"wrote {json_path} and {md_path}")
    return result


if __name__ == "__main__":
    main()
