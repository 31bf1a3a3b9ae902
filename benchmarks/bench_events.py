"""Webhook dispatch: deliveries per second to a local receiver, and event-to-first-attempt latency, with a baseline.

    python -m benchmarks.bench_events                 # a scratch database on the embedded cluster (make migrate first)
    DATABASE_URL=postgresql://... python -m benchmarks.bench_events --n 5000

Targets: ≥ 500 deliveries/s; event to first attempt p95 ≤ 1 s.

1. Backlog: n listing.created events (one store, one webhook to an aiohttp receiver on 127.0.0.1 in this process)
   are queued, then one `plinqy-search webhooks dispatch --drain` process (the product's dispatcher) sends them.
   Rate = n / (last delivered_at - first first_attempt_at), from the database's own clock.
2. The same backlog again (re-queued), sent by the baseline: a naive sender in this process that claims one
   delivery, POSTs it with a blocking httpx client, records it, and repeats.
3. Latency: a dispatcher process waits (idle) while events are written one transaction at a time at a steady rate;
   latency = first_attempt_at - the event's created_at (the transaction time of the listing change).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from cryptography.fernet import Fernet

from benchmarks.chaos import seed
from benchmarks.output import write_json_and_markdown
from benchmarks.webhook_receiver import Receiver
from search_service.db.secretbox import SecretBox
from search_service.db.sql import statement
from search_service.events import delivery

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_RATE = 500.0
TARGET_P95_S = 1.0


def _dispatcher_env(dsn: str, key: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": dsn,
        "PLINQY_SECRET_KEY": key,
        "PLINQY_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
        "PLINQY_WEBHOOK_POLL_S": "0.5",
    }


def _dispatcher(dsn: str, key: str, *, drain: bool) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "search_service", "webhooks", "dispatch", *(["--drain"] if drain else [])]
    return subprocess.Popen(argv, env=_dispatcher_env(dsn, key), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _rate(conn: psycopg.Connection) -> dict[str, Any]:
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'delivered'), count(*), "
        "extract(epoch FROM max(delivered_at) - min(first_attempt_at)) FROM webhook_delivery"
    ).fetchone()
    assert row is not None
    delivered, total, span = int(row[0]), int(row[1]), float(row[2] or 0)
    return {"delivered": delivered, "total": total, "seconds": round(span, 3), "rate_per_s": round(delivered / span, 1)}


def _requeue(conn: psycopg.Connection) -> None:
    conn.execute(
        "UPDATE webhook_delivery SET status = 'pending', attempts = 0, next_attempt_at = now(), "
        "first_attempt_at = NULL, delivered_at = NULL, locked_by = NULL, locked_until = NULL"
    )


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_dispatcher(dsn: str, key: str) -> dict[str, Any]:
    """The rate, and the dispatcher process's own CPU per delivery (start-up included): on a busy machine the
    rate is what the CPU left over allows; the CPU per delivery says what one free core would."""
    cpu_before = _cpu_of_children()
    proc = _dispatcher(dsn, key, drain=True)
    _, err = proc.communicate(timeout=600)
    cpu_s = _cpu_of_children() - cpu_before
    if proc.returncode != 0:
        raise RuntimeError(f"the dispatcher failed: {err.decode(errors='replace')[-2000:]}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        rate = _rate(conn)
    rate["dispatcher_cpu_s"] = round(cpu_s, 2)
    rate["dispatcher_cpu_ms_per_delivery"] = round(1000 * cpu_s / max(rate["delivered"], 1), 3)
    return rate


def measure_baseline(dsn: str, box: SecretBox) -> dict[str, Any]:
    """One at a time: claim one, sign, POST (blocking), record, repeat."""
    claim, record = statement("events/dispatch", "claim_deliveries"), statement("events/dispatch", "record_results")
    signers = delivery.Signers(box)
    with psycopg.connect(dsn, autocommit=True) as conn, httpx.Client(timeout=10, follow_redirects=False) as client:
        while True:
            params = {"worker_id": "baseline", "batch_size": 1, "per_webhook": 1, "busy": [], "lease_s": 60.0}
            row = conn.execute(claim.psycopg, params).fetchone()
            if row is None:
                break
            delivery_id, _, message_id, _, event_type, payload, created_at, url, secret, *_ = row  # no rotation
            body = delivery.message_body(event_type, created_at, payload)
            response = client.post(
                url, content=body, headers=delivery.signed_headers(signers.get(secret), message_id, body)
            )
            ok = 200 <= response.status_code < 300
            conn.execute(
                record.psycopg,
                {
                    "worker_id": "baseline",
                    "ids": [delivery_id],
                    "outcomes": ["delivered" if ok else "failed"],
                    "delays": [0.0],
                    "status_codes": [response.status_code],
                    "errors": [None],
                    "urls": [url],
                    "previous_attempts": [None],
                },
            )
        return _rate(conn)


def measure_latency(dsn: str, key: str, events: int, per_s: float) -> dict[str, Any]:
    """Events written one transaction at a time at `per_s` while a dispatcher waits; their first-attempt delay."""
    proc = _dispatcher(dsn, key, drain=False)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            time.sleep(3.0)  # the dispatcher is up and idle
            mark = int(conn.execute("SELECT coalesce(max(id), 0) FROM webhook_event").fetchone()[0])  # type: ignore[index]
            listing = conn.execute("SELECT id FROM store_product LIMIT 1").fetchone()[0]  # type: ignore[index]
            for i in range(events):
                conn.execute("UPDATE store_product SET sku = %s WHERE id = %s", (f"LAT-{i}", listing))
                time.sleep(1.0 / per_s)
            deadline = time.monotonic() + 60
            sql = "SELECT extract(epoch FROM d.first_attempt_at - e.created_at) FROM webhook_delivery d "
            sql += "JOIN webhook_event e ON e.id = d.event_id WHERE e.id > %s AND d.first_attempt_at IS NOT NULL"
            while time.monotonic() < deadline:
                delays = sorted(float(r[0]) for r in conn.execute(sql, (mark,)))
                if len(delays) >= events:
                    break
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(30)
    return {
        "events": len(delays),
        "per_s": per_s,
        "p50_s": round(statistics.median(delays), 4),
        "p95_s": round(delays[int(0.95 * (len(delays) - 1))], 4),
        "max_s": round(delays[-1], 4),
    }


def run(dsn: str, n: int, latency_events: int, latency_rate: float) -> dict[str, Any]:
    from benchmarks.chaos import ChaosPlan

    key = Fernet.generate_key().decode()
    box = SecretBox(key.encode())
    load = round(os.getloadavg()[0], 2)
    with Receiver() as receiver:
        # listing.created only: the latency phase's sku edits are listing.updated, subscribed separately below
        seed(dsn, ChaosPlan(deliveries=n, tasks=0), box, receiver.url("/ok/bench"))
        dispatched = measure_dispatcher(dsn, key)
        with psycopg.connect(dsn, autocommit=True) as conn:
            _requeue(conn)
        baseline = measure_baseline(dsn, box)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE store_webhook SET events = '{*}'")
        latency = measure_latency(dsn, key, latency_events, latency_rate)
        received = receiver.count()
    return {
        "benchmark": "events",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average_1m": load},
        "n": n,
        "dispatcher": dispatched,
        "baseline_one_at_a_time": baseline,
        "speedup": round(dispatched["rate_per_s"] / max(baseline["rate_per_s"], 1e-9), 1),
        "latency": latency,
        "received": received,
        "targets": {
            "rate_per_s": TARGET_RATE,
            "rate_met": dispatched["rate_per_s"] >= TARGET_RATE,
            "p95_s": TARGET_P95_S,
            "p95_met": latency["p95_s"] <= TARGET_P95_S,
        },
    }


def markdown(result: dict[str, Any]) -> str:
    d, b, lat, t = result["dispatcher"], result["baseline_one_at_a_time"], result["latency"], result["targets"]
    return (
        f"# Webhook dispatch ({result['date']}, {result['machine']['cpus']} CPUs)\n\n"
        f"| measure | dispatcher | baseline (one at a time) | target |\n|---|---|---|---|\n"
        f"| deliveries/s ({result['n']} queued) | {d['rate_per_s']} | {b['rate_per_s']} | ≥ {t['rate_per_s']:.0f} "
        f"({'met' if t['rate_met'] else 'NOT met'}) |\n"
        f"| event → first attempt p50 | {lat['p50_s'] * 1000:.0f} ms | | |\n"
        f"| event → first attempt p95 | {lat['p95_s'] * 1000:.0f} ms | | ≤ {t['p95_s'] * 1000:.0f} ms "
        f"({'met' if t['p95_met'] else 'NOT met'}) |\n"
        f"| event → first attempt max | {lat['max_s'] * 1000:.0f} ms | | |\n\n"
        f"Dispatcher process CPU: {d['dispatcher_cpu_ms_per_delivery']} ms per delivery (start-up included), "
        f"machine load average at the start: {result['machine']['load_average_1m']}.\n\n"
        f"Speed-up over the baseline: {result['speedup']}x. Latency: {lat['events']} events at {lat['per_s']}/s, "
        f"one transaction each, to an idle dispatcher.\n"
    )


def write(result: dict[str, Any], out_dir: Path, stem: str) -> tuple[Path, Path]:
    return write_json_and_markdown(result, markdown(result), out_dir, stem)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000, help="queued deliveries for the rate")
    parser.add_argument("--latency-events", type=int, default=200)
    parser.add_argument("--latency-rate", type=float, default=50.0, help="events per second in the latency phase")
    args = parser.parse_args()
    from benchmarks.chaos import _scratch_database

    dsn = os.environ.get("DATABASE_URL") or _scratch_database()
    result = run(dsn, args.n, args.latency_events, args.latency_rate)
    js, md = write(result, RESULTS, f"events-{datetime.now(UTC):%Y-%m-%d}")
    print(md.read_text())
    print(f"written: {js} {md}")


if __name__ == "__main__":
    main()
