"""`worker --drain` and the embed queue's backoff: a drain ends only once no task is pending, due or backing off,
and exits 1, saying how many, when tasks failed for good."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg

from embeddings.encoder import Encoder
from embeddings.worker import Worker, WorkerConfig
from tests.test_worker import db, encoder

__all__ = ["db", "encoder"]  # test_worker's fixtures (the model loaded once a module, a database a test)


def statuses(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM ai_task GROUP BY status").fetchall())


def test_a_drain_waits_out_a_backoff_until_the_task_is_done_or_failed(
    db: psycopg.Connection, fresh_db_url: str, encoder: Encoder
) -> None:
    """The drain counted only due tasks: one waiting out its retry's backoff was left `pending`, the drain over."""
    db.execute("INSERT INTO product_master (name) VALUES ('Garden hose 10 m'), ('POISONX widget')")
    config = WorkerConfig(drain=True, poll_interval_s=0.2, backoff_base_s=0.4, fail_marker="POISONX")
    started = time.monotonic()
    totals = Worker(fresh_db_url, encoder, config).run()
    assert statuses(db) == {"done": 1, "failed": 1}  # 4 backoffs waited out: 0.2-0.4, 0.4-0.8, 0.8-1.6, 1.6-3.2 s
    assert (totals.embedded, totals.errors, totals.failed) == (1, 5, 1)
    assert 3.0 <= time.monotonic() - started < 60


def test_the_drain_exits_1_saying_how_many_tasks_failed_for_good(db: psycopg.Connection, fresh_db_url: str) -> None:
    """A drain whose tasks ended `failed` exited 0: the work asked for was not done and nothing said so."""
    db.execute("INSERT INTO product_master (name) VALUES ('Garden hose 10 m'), ('POISONX widget')")
    db.execute("UPDATE ai_task SET attempts = 4")  # the next failure is its last: no 2-16 s backoff to wait out
    env = {**os.environ, "DATABASE_URL": fresh_db_url, "PLINQY_WORKER_FAIL_MARKER": "POISONX"}
    args = [sys.executable, "-m", "search_service", "worker", "--only", "embed", "--drain", "--poll-interval", "0.2"]
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr[-2000:]
    said = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    expected = "error: embed job: 1 task(s) failed for good: `plinqy-search tasks failed` lists them, `tasks retry` "
    assert said == [expected + "requeues them"], run.stderr[-2000:]
    assert "Traceback" not in run.stderr and statuses(db) == {"done": 1, "failed": 1}
    db.execute("DELETE FROM product_master WHERE name = 'POISONX widget'")
    db.execute("UPDATE ai_task SET status = 'done' WHERE status = 'failed'")
    db.execute("INSERT INTO product_master (name) VALUES ('Garden rake')")
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and statuses(db) == {"done": 3}, again.stderr[-2000:]


def test_a_failed_task_is_closed_once_a_later_task_embeds_its_product(
    db: psycopg.Connection, fresh_db_url: str, encoder: Encoder
) -> None:
    """The dead letter of a product renamed and embedded since stayed `failed`: `tasks stats` said failed 1 and
    `tasks failed` listed it for ever (`tasks prune` keeps failed tasks), so an alert on failed > 0 never cleared."""
    from embeddings import queue

    db.execute("INSERT INTO product_master (name) VALUES ('POISONX widget'), ('Garden hose 10 m')")
    db.execute("UPDATE ai_task SET attempts = 4")
    config = WorkerConfig(drain=True, poll_interval_s=0.2, fail_marker="POISONX")
    Worker(fresh_db_url, encoder, config).run()
    [(dead, product)] = db.execute("SELECT id, product_master_id FROM ai_task WHERE status = 'failed'").fetchall()
    other = db.execute("SELECT id FROM product_master WHERE id <> %s", (product,)).fetchone()[0]
    db.execute("INSERT INTO ai_task (product_master_id, status, attempts) VALUES (%s, 'failed', 5)", (other,))
    db.execute("UPDATE product_master SET name = 'Widget' WHERE id = %s", (product,))
    Worker(fresh_db_url, encoder, config).run()
    later = db.execute("SELECT max(id) FROM ai_task WHERE product_master_id = %s", (product,)).fetchone()[0]
    row = db.execute("SELECT status, result FROM ai_task WHERE id = %s", (dead,)).fetchone()
    assert row == ("done", f"superseded: embedded by task {later}")
    assert queue.stats(db).counts["failed"] == 1  # the other product's dead letter: its product was not embedded again
    assert [r[1] for r in queue.list_failed(db)] == [other]
