"""The embedding worker against a real PostgreSQL and the real model, including real processes and SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from embeddings import queue
from embeddings.encoder import DEFAULT_CACHE_DIR, Encoder, EncoderConfig, load_encoder
from embeddings.worker import Worker, WorkerConfig, product_text


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_encoder(EncoderConfig(backend="onnx", cache_dir=DEFAULT_CACHE_DIR))


@pytest.fixture
def db(fresh_db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        register_vector(conn)
        yield conn


def dsn_of(conn: psycopg.Connection) -> str:
    info = conn.info
    return f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"


def seed_products(conn: psycopg.Connection, n: int, *, poison: int | None = None) -> None:
    garden = conn.execute("INSERT INTO category (name) VALUES ('Garden') RETURNING id").fetchone()[0]
    hoses = conn.execute("INSERT INTO category (name, parent_id) VALUES ('Hoses', %s) RETURNING id", (garden,))
    leaf = hoses.fetchone()[0]
    conn.execute(
        "INSERT INTO product_master (name, brand, description, category_id, attributes) "
        "SELECT 'Garden hose ' || i || ' m', 'Gardena', 'Kink-free hose, ' || i || ' metres', %s, "
        "jsonb_build_object('length', i || ' m') FROM generate_series(1, %s) i",
        (leaf, n),
    )
    if poison is not None:
        conn.execute("UPDATE product_master SET name = name || ' POISON' WHERE name = %s", (f"Garden hose {poison} m",))


def status_counts(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM ai_task GROUP BY status").fetchall())


def worker_env(dsn: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": dsn, **extra}


def spawn_worker(dsn: str, *args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "search_service", "worker", *args],
        env=worker_env(dsn, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def test_stored_vectors_equal_the_reference_encoder(db: psycopg.Connection, encoder: Encoder) -> None:
    seed_products(db, 25)
    totals = Worker(dsn_of(db), encoder, WorkerConfig(batch_size=8, drain=True)).run()
    assert totals.embedded == 25 and totals.errors == 0
    assert status_counts(db) == {"done": 25}
    reference = load_encoder(EncoderConfig(backend="torch", cache_dir=DEFAULT_CACHE_DIR))
    rows = queue.load_products(db, [r[0] for r in db.execute("SELECT id FROM product_master")])
    stored = {
        r[0]: (np.asarray(r[1].to_numpy()), r[2])
        for r in db.execute("SELECT id, ai_vector, ai_model FROM product_master")
    }
    texts = {pid: product_text(p) for pid, p in rows.items()}
    assert all("Category: Garden > Hoses" in t and "Length:" in t for t in texts.values())
    expected = reference.encode(list(texts.values()))
    for (pid, _), vec in zip(texts.items(), expected, strict=True):
        assert float(stored[pid][0] @ vec) >= 0.999
        assert stored[pid][1] == encoder.model_id


def test_unchanged_text_is_not_reembedded_changed_text_is(db: psycopg.Connection, encoder: Encoder) -> None:
    seed_products(db, 3)
    worker = Worker(dsn_of(db), encoder, WorkerConfig(drain=True))
    worker.run()
    before = dict(db.execute("SELECT name, ai_embedded_at FROM product_master").fetchall())
    db.execute("UPDATE product_master SET is_active = false WHERE name = 'Garden hose 1 m'")  # not embedded text
    db.execute("UPDATE product_master SET description = 'Now with brass fittings' WHERE name = 'Garden hose 2 m'")
    # A task for a product whose text did not change (e.g. a manual requeue) completes without a model call.
    db.execute("INSERT INTO ai_task (product_master_id) SELECT id FROM product_master WHERE name = 'Garden hose 3 m'")
    totals = Worker(dsn_of(db), encoder, WorkerConfig(drain=True)).run()
    assert (totals.embedded, totals.unchanged) == (1, 1)
    after = dict(db.execute("SELECT name, ai_embedded_at FROM product_master").fetchall())
    assert after["Garden hose 1 m"] == before["Garden hose 1 m"]
    assert after["Garden hose 3 m"] == before["Garden hose 3 m"]
    assert after["Garden hose 2 m"] > before["Garden hose 2 m"]
    results = {r[0] for r in db.execute("SELECT result FROM ai_task WHERE status = 'done'")}
    assert results == {"embedded", "unchanged"}


def test_deleted_product_completes_as_a_noop_with_a_reason(db: psycopg.Connection, encoder: Encoder) -> None:
    seed_products(db, 2)
    db.execute("DELETE FROM product_master WHERE name = 'Garden hose 1 m'")
    totals = Worker(dsn_of(db), encoder, WorkerConfig(drain=True)).run()
    assert (totals.embedded, totals.deleted) == (1, 1)
    rows = db.execute("SELECT status, result FROM ai_task ORDER BY id").fetchall()
    assert rows == [("done", "product deleted"), ("done", "embedded")]


def test_a_worker_whose_lease_was_taken_over_writes_nothing(db: psycopg.Connection, encoder: Encoder) -> None:
    seed_products(db, 4)
    worker = Worker(dsn_of(db), encoder, WorkerConfig())
    claimed = queue.claim(db, worker.worker_id, 10, 60)
    assert len(claimed) == 4
    db.execute("UPDATE ai_task SET locked_by = 'someone-else'")  # the reaper and another worker took over
    from embeddings.worker import BatchOutcome

    outcome = BatchOutcome()
    worker._process(db, claimed, outcome)
    assert outcome.lost_lease == 4 and outcome.embedded == 0
    assert db.execute("SELECT count(*) FROM product_master WHERE ai_vector IS NOT NULL").fetchone() == (0,)
    assert status_counts(db) == {"running": 4}


def test_edit_during_embedding_is_not_overwritten_with_the_old_text(db: psycopg.Connection, encoder: Encoder) -> None:
    seed_products(db, 1)

    class EditingEncoder:
        """Delegates to the real model, but a shop owner edits the product while the model runs."""

        dim, model_id, has_known_token = encoder.dim, encoder.model_id, encoder.has_known_token

        def encode(self, texts: list[str]) -> np.ndarray:
            with psycopg.connect(dsn_of(db), autocommit=True) as other:
                other.execute("UPDATE product_master SET name = 'Garden hose 1 m, reinforced'")
            return encoder.encode(texts)

    worker = Worker(dsn_of(db), EditingEncoder(), WorkerConfig())  # type: ignore[arg-type]
    assert worker.run_once(db)
    assert (worker.totals.superseded, worker.totals.embedded) == (1, 0)
    assert db.execute("SELECT ai_vector FROM product_master").fetchone() == (None,)
    pending = db.execute("SELECT count(*) FROM ai_task WHERE status = 'pending'").fetchone()
    assert pending == (1,)  # the edit queued its own task, which embeds the new text
    Worker(dsn_of(db), encoder, WorkerConfig(drain=True)).run()
    stored = db.execute("SELECT ai_text_hash FROM product_master").fetchone()[0]
    current = queue.load_products(db, [r[0] for r in db.execute("SELECT id FROM product_master")])
    from embeddings.text import text_hash

    assert stored == text_hash(product_text(next(iter(current.values()))))


def test_an_edit_made_while_its_task_was_still_pending_is_embedded(db: psycopg.Connection, encoder: Encoder) -> None:
    """The edit's trigger queued nothing (a task was pending), a worker claimed that task and read the old text
    before the edit committed, then found the new text and finished the task 'superseded': nothing ever embedded
    the new text (no vector at all for a new product). The task now goes back to the queue for it."""
    seed_products(db, 1)
    editor = psycopg.connect(dsn_of(db))  # a write path's transaction, still open when the worker claims
    editor.execute("UPDATE product_master SET name = 'Cordless power drill', description = 'With two batteries'")

    class CommittingEncoder:
        dim, model_id, has_known_token = encoder.dim, encoder.model_id, encoder.has_known_token

        def encode(self, texts: list[str]) -> np.ndarray:
            editor.commit()  # the edit lands while the model runs on the old text
            return encoder.encode(texts)

    worker = Worker(dsn_of(db), CommittingEncoder(), WorkerConfig())  # type: ignore[arg-type]
    claimed = queue.claim(db, worker.worker_id, 10, 60)
    assert len(claimed) == 1
    from embeddings.worker import BatchOutcome

    outcome = BatchOutcome()
    worker._process(db, claimed, outcome)
    editor.close()
    assert db.execute("SELECT status, result FROM ai_task").fetchall() == [("pending", None)]
    assert (outcome.requeued, outcome.superseded, outcome.embedded) == (1, 0, 0)  # not counted as superseded
    Worker(dsn_of(db), encoder, WorkerConfig(drain=True)).run()
    from embeddings.text import text_hash

    stored = db.execute("SELECT ai_text_hash FROM product_master").fetchone()
    current = queue.load_products(db, [r[0] for r in db.execute("SELECT id FROM product_master")])
    assert stored is not None and stored[0] == text_hash(product_text(next(iter(current.values()))))
    assert "drill" in product_text(next(iter(current.values()))).lower()


def test_three_worker_processes_embed_each_product_exactly_once(db: psycopg.Connection) -> None:
    seed_products(db, 300)
    # The audit is independent of the queue: it counts real vector writes per product.
    db.execute("CREATE TABLE embed_audit (product_id uuid, at timestamptz DEFAULT clock_timestamp())")
    db.execute(
        "CREATE FUNCTION audit_embed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO embed_audit (product_id) VALUES (NEW.id); RETURN NEW; END $$"
    )
    db.execute(
        "CREATE TRIGGER trg_audit AFTER UPDATE OF ai_vector ON product_master FOR EACH ROW "
        "WHEN (NEW.ai_vector IS DISTINCT FROM OLD.ai_vector) EXECUTE FUNCTION audit_embed()"
    )
    dsn = dsn_of(db)
    workers = [spawn_worker(dsn, "--drain", "--batch-size", "16", "--poll-interval", "0.2") for _ in range(3)]
    for proc in workers:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    per_product = db.execute(
        "SELECT p.id, count(a.product_id) FROM product_master p LEFT JOIN embed_audit a ON a.product_id = p.id "
        "GROUP BY p.id"
    ).fetchall()
    assert len(per_product) == 300
    assert {count for _, count in per_product} == {1}
    assert status_counts(db) == {"done": 300}


def test_sigkilled_worker_loses_nothing(db: psycopg.Connection) -> None:
    seed_products(db, 40)
    dsn = dsn_of(db)
    doomed = spawn_worker(dsn, "--batch-size", "100", "--lease", "2", PLINQY_WORKER_HOLD_S="60")
    wait_for(lambda: status_counts(db).get("running", 0) == 40, timeout=90)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    assert status_counts(db) == {"running": 40}
    time.sleep(2.5)  # let the lease expire
    rescuer = spawn_worker(dsn, "--drain", "--poll-interval", "0.2")
    _out, err = rescuer.communicate(timeout=180)
    assert rescuer.returncode == 0, err[-2000:]
    assert status_counts(db) == {"done": 40}
    missing = db.execute("SELECT count(*) FROM product_master WHERE ai_vector IS NULL").fetchone()
    assert missing == (0,)
    attempts = {r[0] for r in db.execute("SELECT attempts FROM ai_task")}
    assert attempts == {1}  # the killed attempt counted once, with its reason kept
    errors = {r[0] for r in db.execute("SELECT last_error FROM ai_task")}
    assert len(errors) == 1 and next(iter(errors)).startswith("lease expired (held by ")


def test_poison_task_fails_after_max_attempts_and_neighbours_succeed(db: psycopg.Connection, encoder: Encoder) -> None:
    seed_products(db, 12, poison=5)
    db.execute("UPDATE ai_task SET max_attempts = 3")
    config = WorkerConfig(batch_size=12, fail_marker="POISON", backoff_base_s=0.01, backoff_max_s=0.05)
    worker = Worker(dsn_of(db), encoder, config)
    deadline = time.monotonic() + 60
    while status_counts(db).get("pending", 0) and time.monotonic() < deadline:
        worker.run_once(db)
        time.sleep(0.05)
    poison = db.execute(
        "SELECT t.status, t.attempts, t.last_error FROM ai_task t JOIN product_master p ON p.id = t.product_master_id "
        "WHERE p.name LIKE '%%POISON%%'"
    ).fetchone()
    assert poison is not None
    assert poison[:2] == ("failed", 3)
    assert "injected fault marker 'POISON'" in poison[2]
    assert status_counts(db) == {"done": 11, "failed": 1}
    assert db.execute("SELECT count(*) FROM product_master WHERE ai_vector IS NOT NULL").fetchone() == (11,)
    failed = queue.list_failed(db)
    assert len(failed) == 1
    assert queue.retry_failed(db, None) == [failed[0][0]]
    assert status_counts(db) == {"done": 11, "pending": 1}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_exits_zero_and_leaves_nothing_running(db: psycopg.Connection, signum: int) -> None:
    """SIGHUP (a closed terminal, a unit manager's reload) ended the worker 129 with its tasks left `running`."""
    seed_products(db, 60)
    # The worker holds its batch for 30 s: SIGTERM cuts the hold short and gives the batch back untouched.
    proc = spawn_worker(dsn_of(db), "--batch-size", "10", "--poll-interval", "0.5", PLINQY_WORKER_HOLD_S="30")
    wait_for(lambda: status_counts(db).get("running", 0) > 0, timeout=90)
    proc.send_signal(signum)
    started = time.monotonic()
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert time.monotonic() - started < 15
    assert db.execute("SELECT count(*) FROM ai_task WHERE status = 'running'").fetchone() == (0,)
    counts = status_counts(db)
    assert counts == {"pending": 60}  # released, not failed; it stopped claiming
    assert {r[0] for r in db.execute("SELECT attempts FROM ai_task")} == {0}  # no attempt spent


def test_stop_during_a_batch_finishes_it_then_exits(db: psycopg.Connection, encoder: Encoder) -> None:
    """A stop request that arrives while the model runs: the batch is written (pipelined writer), then exit."""
    seed_products(db, 30)
    worker: Worker

    class StoppingEncoder:
        dim, model_id, has_known_token = encoder.dim, encoder.model_id, encoder.has_known_token

        def encode(self, texts: list[str]) -> np.ndarray:
            worker.request_stop()  # as SIGTERM's handler does
            return encoder.encode(texts)

    config = WorkerConfig(batch_size=10, pipeline=True)
    worker = Worker(dsn_of(db), StoppingEncoder(), config)  # type: ignore[arg-type]
    totals = worker.run()
    assert (totals.embedded, worker.batches) == (10, 1)
    assert status_counts(db) == {"done": 10, "pending": 20}


def test_drain_reaches_an_empty_queue_with_the_pipelined_writer(db: psycopg.Connection, encoder: Encoder) -> None:
    seed_products(db, 50)
    db.execute("UPDATE ai_task SET priority = 1 WHERE product_master_id IN (SELECT id FROM product_master LIMIT 7)")
    worker = Worker(dsn_of(db), encoder, WorkerConfig(batch_size=16, drain=True, pipeline=True))
    totals = worker.run()
    assert (totals.embedded, totals.errors, worker.batches) == (50, 0, 4)
    assert status_counts(db) == {"done": 50}
    assert db.execute("SELECT count(*) FROM product_master WHERE ai_model = %s", (encoder.model_id,)).fetchone() == (
        50,
    )


def test_a_drain_waits_out_a_killed_workers_lease_and_embeds_its_tasks(
    db: psycopg.Connection, encoder: Encoder
) -> None:
    """A drain run while a killed worker's claim was still leased ended with those tasks `running`, unembedded: it
    counted only the pending ones. Now it waits, the reaper returns them once the lease lapses, and it embeds them."""
    seed_products(db, 12)
    assert len(queue.claim(db, "embed:killed#1", batch_size=5, lease_seconds=2)) == 5
    worker = Worker(dsn_of(db), encoder, WorkerConfig(batch_size=16, drain=True, poll_interval_s=0.2))
    totals = worker.run()
    assert totals.embedded == 12 and status_counts(db) == {"done": 12}


def test_notify_wakes_an_idle_worker_long_before_its_poll(db: psycopg.Connection, encoder: Encoder) -> None:
    worker = Worker(dsn_of(db), encoder, WorkerConfig(poll_interval_s=60))
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(
            lambda: (
                db.execute("SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN ai_task'").fetchone()[0] == 1
            ),
            timeout=30,
        )
        time.sleep(0.3)  # idle in its wait now, the queue empty and reaped
        started = time.monotonic()
        seed_products(db, 3)  # the insert trigger NOTIFYs
        wait_for(lambda: status_counts(db) == {"done": 3}, timeout=30)
        assert time.monotonic() - started < 15  # the poll alone would have taken 60 s
    finally:
        worker.request_stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert worker.totals.embedded == 3


def test_a_write_that_fails_is_isolated_to_its_row(db: psycopg.Connection, encoder: Encoder) -> None:
    """A real constraint makes one product's write fail: only its task fails, the batch's others are written."""
    seed_products(db, 8)
    bad = db.execute("SELECT id FROM product_master WHERE name = 'Garden hose 3 m'").fetchone()[0]
    db.execute(f"ALTER TABLE product_master ADD CONSTRAINT no_vector_for_3 CHECK (id <> '{bad}' OR ai_vector IS NULL)")
    worker = Worker(dsn_of(db), encoder, WorkerConfig(batch_size=8, backoff_base_s=30))
    assert worker.run_once(db)
    assert (worker.totals.embedded, worker.totals.errors) == (7, 1)
    row = db.execute("SELECT status, attempts, last_error FROM ai_task WHERE product_master_id = %s", (bad,)).fetchone()
    assert row[:2] == ("pending", 1) and "no_vector_for_3" in row[2]
