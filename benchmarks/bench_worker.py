"""End-to-end worker rate (claim → embed → fenced write) against the production encoder's raw rate, same texts.

    python -m benchmarks.bench_worker                       # a throwaway PostgreSQL cluster of its own
    python -m benchmarks.bench_worker --dsn postgresql://postgres@127.0.0.1:54329/postgres --n 3000

A fresh database is created (and dropped) on the server. Target: the worker reaches ≥ 90% of the encoder's raw rate.

Machines are noisy (shared CPUs), so the three measurements are interleaved: the catalogue is cut into rounds, and
each round measures, on its own slice, the raw encoder, the worker with its write pipelined behind the next
batch's embedding and the worker writing serially, in an order that rotates from round to round. The headline
worker rate is the worker's default mode (pipelined).
Rates are totals over all rounds; the per-round ratios are reported too, to show the spread. Peak RSS is that of
a real `plinqy-search worker --drain` process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from embeddings import queue
from embeddings.encoder import DEFAULT_CACHE_DIR, Encoder, EncoderConfig, load_encoder
from embeddings.worker import Worker, WorkerConfig, product_text
from search_service.db import migrate

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
CATEGORIES = [("Home & Garden", None), ("Garden", 1), ("Hoses & Watering", 2), ("Food", None), ("Bakery", 4)]


def _replace_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def throwaway_server() -> Iterator[str]:
    """A PostgreSQL cluster in a temporary directory on a free port; yields its maintenance URL."""
    from search_service.db.cluster import Cluster, free_port

    root = Path(tempfile.mkdtemp(prefix="plinqy-bench-worker-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(root / "data", free_port(), dbname="postgres")
    cluster.up()
    try:
        yield cluster.url("postgres")
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


def _seed(dsn: str, n: int) -> None:
    """n products with brand, description, attributes and a 2–3 level category (the insert trigger queues them)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        ids: list[int] = []
        for name, parent in CATEGORIES:
            parent_id = ids[parent - 1] if parent else None
            row = conn.execute(
                "INSERT INTO category (name, parent_id) VALUES (%s, %s) RETURNING id", (name, parent_id)
            ).fetchone()
            assert row is not None
            ids.append(int(row[0]))
        leaves = [ids[2], ids[1], ids[4]]
        copy_sql = "COPY product_master (name, brand, description, category_id, attributes) FROM STDIN"
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            for i in range(n):
                name = f"{NAMES[i % len(NAMES)]} {i}"
                attrs = json.dumps({"size": f"{1 + i % 9} pcs", "colour": ["green", "black", "white"][i % 3]})
                description = f"Everyday item number {i}, sold in local stores. " * (1 + i % 4)
                copy.write_row((name, BRANDS[i % len(BRANDS)], description, leaves[i % 3], attrs))


def _texts(conn: psycopg.Connection, ids: list[Any]) -> list[str]:
    products = queue.load_products(conn, ids)
    return [product_text(products[i]) for i in ids]


def _requeue(conn: psycopg.Connection, ids: list[Any]) -> None:
    """Make a slice due again from scratch: no vector, no hash, one fresh pending task each."""
    conn.execute(
        "UPDATE product_master SET ai_vector = NULL, ai_text_hash = NULL, ai_model = NULL, ai_embedded_at = NULL "
        "WHERE id = ANY(%s)",
        (ids,),
    )
    conn.execute(
        "INSERT INTO ai_task (product_master_id) SELECT unnest(%s::uuid[]) "
        "ON CONFLICT (product_master_id) WHERE status = 'pending' DO NOTHING",
        (ids,),
    )


def _run_worker(dsn: str, encoder: Encoder, batch_size: int, pipeline: bool) -> tuple[int, float]:
    worker = Worker(dsn, encoder, WorkerConfig(batch_size=batch_size, drain=True, pipeline=pipeline))
    t0 = time.perf_counter()
    totals = worker.run()
    return totals.embedded, time.perf_counter() - t0


def _peak_rss_mb(dsn: str, batch_size: int) -> float:
    """Peak RSS (model included) of a real worker process, from wait4's rusage of exactly that child."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "search_service", "worker", "--drain", "--batch-size", str(batch_size)],
        env={**os.environ, "DATABASE_URL": dsn},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"the worker process exited {proc.returncode}")
    return usage.ru_maxrss / 1024  # KiB on Linux


def measure_worker_rate(admin_dsn: str, n: int = 3000, batch_size: int = 128, rounds: int = 6) -> dict[str, Any]:
    encoder = load_encoder(EncoderConfig(backend="onnx", cache_dir=DEFAULT_CACHE_DIR))
    name = f"plinqy_bench_worker_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = _replace_db(admin_dsn, name)
    load_before = os.getloadavg()[0]
    try:
        migrate.upgrade(dsn)
        _seed(dsn, n)
        with psycopg.connect(dsn, autocommit=True) as conn:
            # Park every task; each round makes its own slice due.
            conn.execute("UPDATE ai_task SET run_after = 'infinity'")
            all_ids = [r[0] for r in conn.execute("SELECT id FROM product_master ORDER BY id")]
            encoder.encode(_texts(conn, all_ids[:batch_size]))  # warm-up
            size = -(-len(all_ids) // rounds)
            slices = [all_ids[i : i + size] for i in range(0, len(all_ids), size)]
            spent = {"encoder": 0.0, "pipelined": 0.0, "serial": 0.0}
            done = {"encoder": 0, "pipelined": 0, "serial": 0}
            per_round: list[dict[str, float]] = []
            for r, ids in enumerate(slices):
                texts = _texts(conn, ids)
                rates: dict[str, float] = {}
                order = ["encoder", "pipelined", "serial"]
                order = order[r % 3 :] + order[: r % 3]
                for what in order:
                    if what == "encoder":
                        t0 = time.perf_counter()
                        for start in range(0, len(texts), batch_size):
                            encoder.encode(texts[start : start + batch_size])
                        count, seconds = len(texts), time.perf_counter() - t0
                    else:
                        _requeue(conn, ids)
                        conn.execute(
                            "UPDATE ai_task SET run_after = now() WHERE status = 'pending' "
                            "AND product_master_id = ANY(%s)",
                            (ids,),
                        )
                        count, seconds = _run_worker(dsn, encoder, batch_size, pipeline=what == "pipelined")
                        assert count == len(ids), (what, count, len(ids))
                    spent[what] += seconds
                    done[what] += count
                    rates[what] = count / seconds
                per_round.append(
                    {
                        "products": len(ids),
                        "pipelined_ratio": round(rates["pipelined"] / rates["encoder"], 3),
                        "serial_ratio": round(rates["serial"] / rates["encoder"], 3),
                    }
                )
            encoder_rate = done["encoder"] / spent["encoder"]
            pipelined_rate = done["pipelined"] / spent["pipelined"]
            serial_rate = done["serial"] / spent["serial"]
            default_mode = "pipelined" if Worker(dsn, encoder, WorkerConfig()).pipelined else "serial"
            worker_rate = pipelined_rate if default_mode == "pipelined" else serial_rate
            _requeue(conn, all_ids[: min(len(all_ids), 4 * batch_size)])
        rss = _peak_rss_mb(dsn, batch_size)
        ratios = sorted(r[f"{default_mode}_ratio"] for r in per_round)
        return {
            "products": n,
            "batch_size": batch_size,
            "rounds": len(slices),
            "encoder": encoder.backend_name,
            "model": encoder.model_id,
            "encoder_texts_per_s": round(encoder_rate, 1),
            "worker_products_per_s": round(worker_rate, 1),
            "worker_to_encoder_ratio": round(worker_rate / encoder_rate, 3),
            "worker_ratio_per_round_median": ratios[len(ratios) // 2],
            "worker_mode": default_mode,
            "pipelined_products_per_s": round(pipelined_rate, 1),
            "pipelined_to_encoder_ratio": round(pipelined_rate / encoder_rate, 3),
            "serial_products_per_s": round(serial_rate, 1),
            "serial_to_encoder_ratio": round(serial_rate / encoder_rate, 3),
            "target_ratio": 0.9,
            "worker_peak_rss_mb": round(rss, 1),
            "per_round": per_round,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_avg_1m_before": round(load_before, 2),
                "load_avg_1m_after": round(os.getloadavg()[0], 2),
            },
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def markdown(result: dict[str, Any]) -> str:
    flat = {k: v for k, v in result.items() if not isinstance(v, (dict, list))}
    lines = [
        "# Embedding worker, end to end",
        "",
        "Worker = `Worker.run(drain=True)`: claim → compose → one model call → one fenced write transaction per batch;",
        "`pipelined` writes batch n while batch n+1 is embedded, `serial` does not; `worker_mode` is the default",
        "here. Encoder = the same ONNX encoder on the same texts, "
        "same batch size, no database. Measurements interleaved in rounds (rotating order) on one machine.",
        "",
        "| figure | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in flat.items()],
        "",
        "| round | products | pipelined / encoder | serial / encoder |",
        "|---|---|---|---|",
        *[
            f"| {i + 1} | {r['products']} | {r['pipelined_ratio']} | {r['serial_ratio']} |"
            for i, r in enumerate(result["per_round"])
        ],
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in result["machine"].items()),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dsn", help="a server's maintenance database URL (default: a throwaway cluster)")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        dsn = args.dsn or stack.enter_context(throwaway_server())
        result = measure_worker_rate(dsn, args.n, args.batch_size, args.rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"worker-{datetime.now(UTC).date().isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
