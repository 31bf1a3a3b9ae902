"""The embedding worker's leases with real processes: a batch that outlasts its lease is renewed, not reaped."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from pgvector.psycopg import register_vector

from embeddings import queue
from tests.test_worker import dsn_of, seed_products, spawn_worker, status_counts


@pytest.fixture
def db(fresh_db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        register_vector(conn)
        yield conn


def audit_vector_writes(conn: psycopg.Connection) -> None:
    """Count real vector writes per product, independently of the queue."""
    conn.execute("CREATE TABLE embed_audit (product_id uuid)")
    conn.execute(
        "CREATE FUNCTION audit_embed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO embed_audit (product_id) VALUES (NEW.id); RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER trg_audit AFTER UPDATE OF ai_vector ON product_master FOR EACH ROW "
        "WHEN (NEW.ai_vector IS DISTINCT FROM OLD.ai_vector) EXECUTE FUNCTION audit_embed()"
    )


def test_a_batch_that_outlasts_its_lease_is_renewed_not_reaped(db: psycopg.Connection) -> None:
    """Nothing renewed a lease while a batch was in hand: a batch held 3 s on a 1 s lease was reaped (by the other
    worker, or by its own at its next poll), claimed again and embedded twice, every reap an attempt."""
    seed_products(db, 30)
    audit_vector_writes(db)
    dsn = dsn_of(db)
    args = ("--drain", "--batch-size", "15", "--lease", "1", "--poll-interval", "0.05")
    workers = [spawn_worker(dsn, "--only", "embed", *args, PLINQY_WORKER_HOLD_S="3") for _ in range(2)]
    errs = []
    for proc in workers:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        errs.append(err)
    writes = db.execute(
        "SELECT count(a.product_id) FROM product_master p LEFT JOIN embed_audit a ON a.product_id = p.id GROUP BY p.id"
    ).fetchall()
    assert sorted({n for (n,) in writes}) == [1], errs  # every product embedded exactly once
    assert status_counts(db) == {"done": 30}
    tasks = db.execute("SELECT attempts, last_error FROM ai_task").fetchall()
    assert set(tasks) == {(0, None)}  # no attempt spent, no "lease expired"
    assert not any('"reaped"' in err or '"lost_lease": 1' in err for err in errs)


def test_a_stale_claim_cannot_write_over_the_same_workers_new_claim(db: psycopg.Connection) -> None:
    """The fence compared locked_by to the worker's id: a batch reaped and claimed again by its own worker still
    passed it with the stale claim's write. Each claim now has its own holder."""
    seed_products(db, 2)
    [first] = queue.claim(db, "w:1:abc#1", 1, 0)  # a lease already run out
    assert [t for t, _ in queue.reap_expired(db, keep=["w:1:abc#2"])] == [first.id]
    again = next(t for t in queue.claim(db, "w:1:abc#2", 2, 0) if t.id == first.id)  # run out too
    assert queue.reap_expired(db, keep=["w:1:abc#2"]) == []  # its own claim in hand is never reaped by it
    with db.transaction():
        assert queue.finish_owned(db, first.holder, {first.id: "embedded"}) == {}  # the stale claim: fenced out
    with db.transaction():
        assert list(queue.finish_owned(db, again.holder, {again.id: "embedded"})) == [again.id]
