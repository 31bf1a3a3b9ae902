"""Chaos drill of both queues: worker processes over embedding tasks and webhook deliveries, killed at random.

    python -m benchmarks.chaos --workers 8 --tasks 10000 --deliveries 10000 --kill-every 2,5 --terminate-every 10

A store with one webhook to a local receiver (127.0.0.1) gets `deliveries` listings (listing.created events) of
products of which `tasks` need a vector. `workers` processes of `plinqy-search worker --only embed,events` (or just
`events` without tasks) run while a random one is SIGKILLed every kill-every seconds (and restarted, keeping the
count) and a random worker connection is ended with pg_terminate_backend every terminate-every seconds. After
`chaos` seconds the faults stop; the workers finish the work; then every worker gets SIGTERM and must exit 0.

Checked afterwards: no task lost (all done), no vector written twice for the same text (a trigger counts the
writes), every event delivered at least once and, after deduplication by webhook-id, exactly once; nothing left
locked or connected. The test suite runs a small version (tests/test_events_chaos.py); `make soak` the full one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
from cryptography.fernet import Fernet

from benchmarks.webhook_receiver import Receiver
from search_service.db.secretbox import SecretBox
from search_service.events import subscriptions
from search_service.events.config import EventsConfig

RESULTS = Path(__file__).resolve().parent / "results"
VECTOR_WRITES = """
CREATE TABLE IF NOT EXISTS chaos_vector_write (product_id uuid, text_hash text, at timestamptz DEFAULT now());
CREATE OR REPLACE FUNCTION chaos_count_vector_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO chaos_vector_write (product_id, text_hash) VALUES (NEW.id, NEW.ai_text_hash);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS trg_chaos_vector_write ON product_master;
CREATE TRIGGER trg_chaos_vector_write AFTER UPDATE OF ai_vector ON product_master
    FOR EACH ROW WHEN (NEW.ai_vector IS NOT NULL) EXECUTE FUNCTION chaos_count_vector_write();
"""


@dataclass(frozen=True)
class ChaosPlan:
    workers: int = 3
    tasks: int = 0  # products needing a vector (0: no embedding job)
    deliveries: int = 300
    kill_every_s: tuple[float, float] = (0.8, 1.2)
    terminate_every_s: float | None = None  # None: once, half-way through the chaos
    chaos_s: float = 4.0
    timeout_s: float = 120.0
    receiver_delay_s: float = 0.2  # each delivery takes this long, so kills land on sends in flight
    lease_s: float = 3.0
    concurrency: int = 8  # sends in flight per dispatcher


@dataclass
class ChaosReport:
    plan: dict[str, Any]
    kills: int = 0
    terminations: int = 0
    seconds: float = 0.0
    events: int = 0
    received: int = 0
    unique_delivered: int = 0
    duplicates: int = 0
    missing: int = 0
    bad_signatures: int = 0
    tasks_done: int = 0
    tasks_lost: int = 0
    double_vector_writes: int = 0
    sigterm_exit_codes: list[int | None] = field(default_factory=list)
    locked_after: int = 0
    connections_after: int = 0

    @property
    def passed(self) -> bool:
        return (
            self.missing == 0
            and self.unique_delivered == self.events
            and self.bad_signatures == 0
            and self.tasks_lost == 0
            and self.double_vector_writes == 0
            and all(code == 0 for code in self.sigterm_exit_codes)
            and self.locked_after == 0
            and self.connections_after == 0
        )


def seed(dsn: str, plan: ChaosPlan, box: SecretBox, url: str) -> tuple[str, set[str]]:
    """The store, its webhook, the products and listings; returns the secret and the expected webhook-ids."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(VECTOR_WRITES)
        store = conn.execute(
            "INSERT INTO store (name, location) VALUES ('Chaos Hardware', 'SRID=4326;POINT(4.89 52.35)') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
    config = EventsConfig(allow_hosts=frozenset({"127.0.0.1"}))

    async def subscribe() -> subscriptions.Created:
        conn = await asyncpg.connect(dsn)
        try:
            return await subscriptions.create(conn, box, config, store, url, ["listing.created"])
        finally:
            await conn.close()

    created = asyncio.run(subscribe())
    products = max(plan.tasks, plan.deliveries)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO product_master (name, description) "
            "SELECT 'Chaos product ' || i, 'Item number ' || i || ' of the drill' FROM generate_series(1, %s) i",
            (products,),
        )
        if plan.tasks < products:  # only `tasks` of them wait for a vector
            conn.execute(
                "DELETE FROM ai_task WHERE id NOT IN (SELECT id FROM ai_task ORDER BY id LIMIT %s)", (plan.tasks,)
            )
        conn.execute(
            "INSERT INTO store_product (store_id, product_master_id, sku, price, currency, quantity) "
            "SELECT %s, id, 'SKU-' || row_number() OVER (ORDER BY id), 1.5, 'EUR', 3 "
            "FROM (SELECT id FROM product_master ORDER BY id LIMIT %s) p",
            (store, plan.deliveries),
        )
        expected = {r[0] for r in conn.execute("SELECT message_id FROM webhook_delivery")}
    return created.secret, expected


class Fleet:
    """The worker processes: spawn, kill one at random (and respawn), SIGTERM all."""

    def __init__(self, argv: list[str], env: dict[str, str], size: int, log_dir: Path) -> None:
        self.argv, self.env, self.log_dir = argv, env, log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0
        for _ in range(size):
            self.procs.append(self._spawn())

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.started += 1
        log = open(self.log_dir / f"worker-{self.started}.log", "wb")  # noqa: SIM115 (closed with the process)
        return subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def kill_one(self, rng: random.Random) -> None:
        i = rng.randrange(len(self.procs))
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()
        self.procs[i] = self._spawn()

    def stop(self, timeout_s: float = 60.0) -> list[int | None]:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout=timeout_s))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(None)
        return codes


def terminate_one_backend(dsn: str, rng: random.Random) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        pids = [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND (application_name LIKE 'plinqy-events%%' OR application_name LIKE 'plinqy-worker%%') "
                "AND state IS NOT NULL"
            )
        ]
        if not pids:
            return False
        conn.execute("SELECT pg_terminate_backend(%s)", (rng.choice(pids),))
        return True


def _progress(dsn: str) -> tuple[int, int]:
    """(deliveries not yet delivered, tasks not yet done)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM webhook_delivery WHERE status <> 'delivered'), "
            "(SELECT count(*) FROM ai_task WHERE status <> 'done')"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _worker_connections(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND (application_name LIKE 'plinqy-events%%' OR application_name LIKE 'plinqy-worker%%')"
        ).fetchone()
    return int(row[0]) if row else 0


def wait_until_connected(dsn: str, count: int, timeout_s: float = 60.0) -> None:
    """The faults start once every worker is up (started processes first load Python and, maybe, the model)."""
    deadline = time.monotonic() + timeout_s
    while _worker_connections(dsn) < count and time.monotonic() < deadline:
        time.sleep(0.1)


def run_faults(dsn: str, fleet: Fleet, plan: ChaosPlan, report: ChaosReport, rng: random.Random) -> None:
    started = time.monotonic()
    next_kill = started + rng.uniform(*plan.kill_every_s)
    every = plan.terminate_every_s
    next_term = started + (every if every is not None else plan.chaos_s / 2)
    while time.monotonic() - started < plan.chaos_s:
        now = time.monotonic()
        if now >= next_kill:
            fleet.kill_one(rng)
            report.kills += 1
            next_kill = now + rng.uniform(*plan.kill_every_s)
        if next_term is not None and now >= next_term:
            if terminate_one_backend(dsn, rng):
                report.terminations += 1
                next_term = now + every if every is not None else None  # type: ignore[assignment]
            else:
                next_term = now + 0.2  # no worker connected at this moment: try again shortly
        time.sleep(0.05)


def check(dsn: str, receiver: Receiver, secret: str, expected: set[str], report: ChaosReport) -> None:
    from standardwebhooks import Webhook

    verifier = Webhook(secret)
    got = receiver.snapshot()
    for record in got:
        try:
            verifier.verify(record.body, record.headers)
        except Exception:
            report.bad_signatures += 1
    ids = [r.webhook_id for r in got]
    report.received = len(ids)
    report.unique_delivered = len(set(ids) & expected)
    report.duplicates = len(ids) - len(set(ids))
    report.missing = len(expected - set(ids))
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT status, count(*) FROM ai_task GROUP BY status").fetchall()
        counts: dict[str, int] = {str(r[0]): int(r[1]) for r in rows}
        report.tasks_done = int(counts.get("done", 0))
        report.tasks_lost = sum(v for k, v in counts.items() if k != "done")
        twice = (
            "SELECT count(*) FROM (SELECT 1 FROM chaos_vector_write "
            "GROUP BY product_id, text_hash HAVING count(*) > 1) x"
        )
        report.double_vector_writes = int(conn.execute(twice).fetchone()[0])  # type: ignore[index]
        locked = (
            "SELECT (SELECT count(*) FROM webhook_delivery WHERE locked_by IS NOT NULL) "
            "+ (SELECT count(*) FROM ai_task WHERE status = 'running')"
        )
        report.locked_after = int(conn.execute(locked).fetchone()[0])  # type: ignore[index]
        report.connections_after = _worker_connections(dsn)


def worker_env(dsn: str, key: str, plan: ChaosPlan) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": dsn,
        "PLINQY_SECRET_KEY": key,
        "PLINQY_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
        "PLINQY_WEBHOOK_LEASE_S": str(plan.lease_s),
        "PLINQY_WEBHOOK_TIMEOUT_S": f"{plan.lease_s / 3:g}",  # a lease must be more than twice the timeout
        "PLINQY_WEBHOOK_POLL_S": "0.2",
        "PLINQY_WEBHOOK_CONCURRENCY": str(plan.concurrency),
        "PLINQY_WEBHOOK_RETRY_SCHEDULE": "0,0.5,1,2,5,10,30",
    }


def run_chaos(dsn: str, plan: ChaosPlan, log_dir: Path, on_tick: Callable[[str], None] | None = None) -> ChaosReport:
    rng = random.Random(7)
    key = Fernet.generate_key().decode()
    report = ChaosReport(plan=asdict(plan))
    log_dir.mkdir(parents=True, exist_ok=True)
    with Receiver() as receiver:
        path = f"/slow/{plan.receiver_delay_s}/chaos" if plan.receiver_delay_s else "/ok/chaos"
        secret, expected = seed(dsn, plan, SecretBox(key.encode()), receiver.url(path))
        report.events = len(expected)
        jobs = "embed,events" if plan.tasks else "events"
        argv = [sys.executable, "-m", "search_service", "worker", "--only", jobs, "--lease", str(plan.lease_s)]
        argv += ["--poll-interval", "1"]
        started = time.monotonic()
        fleet = Fleet(argv, worker_env(dsn, key, plan), plan.workers, log_dir)
        try:
            wait_until_connected(dsn, plan.workers)
            run_faults(dsn, fleet, plan, report, rng)
            deadline = started + plan.timeout_s
            while (left := _progress(dsn)) != (0, 0) and time.monotonic() < deadline:
                if on_tick:
                    on_tick(f"left: {left[0]} deliveries, {left[1]} tasks")
                time.sleep(0.5)
        finally:
            wait_until_connected(dsn, plan.workers, timeout_s=30.0)  # a worker restarted last is up: its SIGTERM
            report.sigterm_exit_codes = fleet.stop()  # is a graceful stop's, not one during its interpreter's start
        report.seconds = round(time.monotonic() - started, 1)
        check(dsn, receiver, secret, expected, report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--kill-every", default="2,5", help="min,max seconds between SIGKILLs")
    parser.add_argument("--terminate-every", type=float, default=10.0)
    parser.add_argument("--chaos", type=float, default=120.0, help="seconds of faults")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    lo, hi = (float(x) for x in args.kill_every.split(","))
    plan = ChaosPlan(
        workers=args.workers,
        tasks=args.tasks,
        deliveries=args.deliveries,
        kill_every_s=(lo, hi),
        terminate_every_s=args.terminate_every,
        chaos_s=args.chaos,
        timeout_s=args.timeout,
        lease_s=10.0,
    )
    scratch = not os.environ.get("DATABASE_URL")
    dsn = _scratch_database() if scratch else os.environ["DATABASE_URL"]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H%M")
    logs = Path(tempfile.mkdtemp(prefix=f"plinqy-soak-{stamp}-"))
    print(f"worker logs: {logs}", flush=True)
    report = run_chaos(dsn, plan, logs, on_tick=lambda s: print(s, flush=True))
    out = {**asdict(report), "passed": report.passed}
    (RESULTS / f"soak-{stamp}.json").write_text(json.dumps(out, indent=2))
    (RESULTS / f"soak-{stamp}.md").write_text(_markdown(out))
    print(json.dumps(out, indent=2))
    if scratch:
        _drop_scratch(dsn, keep=not report.passed)
    sys.exit(0 if report.passed else 1)


def _markdown(out: dict[str, Any]) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in out.items() if k != "plan")
    plan = ", ".join(f"{k}={v}" for k, v in out["plan"].items())
    return f"# Soak: chaos over both queues\n\nPlan: {plan}\n\n| measure | value |\n|---|---|\n{rows}\n"


def _drop_scratch(url: str, keep: bool) -> None:
    """A passed soak drops its scratch database (each run made a new one); a failed one keeps it to inspect."""
    name = url.rsplit("/", 1)[1]
    if keep:
        print(f'kept the soak\'s database {name} to inspect; drop it with: DROP DATABASE "{name}"', flush=True)
        return
    base = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _scratch_database() -> str:
    """A fresh, migrated database on the embedded cluster (make soak runs after make migrate)."""
    from search_service.db import migrate
    from search_service.settings import Settings

    base = Settings.from_env().database_url
    name = f"plinqy_soak_{int(time.time())}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + "/" + name
    migrate.upgrade(url)
    return url


if __name__ == "__main__":
    main()
