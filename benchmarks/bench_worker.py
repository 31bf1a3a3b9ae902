"""End-to-end worker rate (claim → embed → fenced write) against the production encoder's raw rate, same texts.

    python -m benchmarks.bench_worker --dsn postgresql://postgres@127.0.0.1:54329/postgres --n 3000

A fresh database is created (and dropped) on the given server. Target: the worker reaches ≥ 90% of the encoder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from embeddings.encoder import DEFAULT_CACHE_DIR, EncoderConfig, load_encoder
from embeddings.worker import Worker, WorkerConfig, product_text
from search_service import migrate

NAMES = [
    "Oat drink barista",
    "Tap washer set",
    "Paracetamol 500 mg tablets",
    "Dog food adult chicken",
    "Claw hammer fibreglass",
    "Shampoo for dry hair",
    "USB-C fast charger",
    "Garden hose with nozzle",
    "Sourdough rye bread",
    "LED bulb E27 warm white",
    "Yoga mat non-slip",
    "Baby wipes sensitive",
]
BRANDS = ["Oatly", "FixIt", "Ratiopharm", "Happy Paws", "Stanley", "Nivea", "Anker", "Gardena", None, "Philips"]


def _replace_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def _seed(dsn: str, n: int) -> None:
    copy_sql = "COPY product_master (name, brand, description) FROM STDIN"
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for i in range(n):
            name = f"{NAMES[i % len(NAMES)]} {i}"
            copy.write_row((name, BRANDS[i % len(BRANDS)], f"Everyday item number {i}, sold in local stores."))


def measure_worker_rate(admin_dsn: str, n: int = 3000, batch_size: int = 128) -> dict[str, Any]:
    encoder = load_encoder(EncoderConfig(backend="onnx", cache_dir=DEFAULT_CACHE_DIR))
    name = f"plinqy_bench_worker_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = _replace_db(admin_dsn, name)
    try:
        migrate.upgrade(dsn)
        _seed(dsn, n)
        with psycopg.connect(dsn) as conn:
            from embeddings import queue

            products = queue.load_products(conn, [r[0] for r in conn.execute("SELECT id FROM product_master")])
        texts = [product_text(p) for p in products.values()]
        encoder.encode(texts[:batch_size])  # warm-up
        t0 = time.perf_counter()
        for start in range(0, len(texts), batch_size):
            encoder.encode(texts[start : start + batch_size])
        encoder_rate = len(texts) / (time.perf_counter() - t0)

        t0 = time.perf_counter()
        totals = Worker(dsn, encoder, WorkerConfig(batch_size=batch_size, drain=True)).run()
        worker_s = time.perf_counter() - t0
        worker_rate = totals.embedded / worker_s

        # Peak RSS of a real worker process, model included.
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE product_master SET description = description || ' (v2)'")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run(
            [sys.executable, "-m", "search_service", "worker", "--drain", "--batch-size", str(batch_size)],
            env={**os.environ, "DATABASE_URL": dsn},
            check=True,
            capture_output=True,
        )
        worker_rss_mb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
        return {
            "products": n,
            "batch_size": batch_size,
            "encoder": encoder.backend_name,
            "encoder_texts_per_s": round(encoder_rate, 1),
            "worker_products_per_s": round(worker_rate, 1),
            "worker_to_encoder_ratio": round(worker_rate / encoder_rate, 3),
            "target_ratio": 0.9,
            "worker_peak_rss_mb": round(worker_rss_mb, 1),
        }
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="a server's maintenance database URL")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    result = measure_worker_rate(args.dsn, args.n, args.batch_size)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"worker-{date.today().isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = ["| figure | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in result.items()]]
    stem.with_suffix(".md").write_text("# Embedding worker, end to end\n\n" + "\n".join(lines) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
