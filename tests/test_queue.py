"""The ai_task queue's SQL against a real PostgreSQL: claims, leases, the fence, backoff, dead letters, the reaper,
"one pending task per product" under races, stats, requeueing and retention."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta
from uuid import UUID

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from embeddings import queue


def add_products(conn: psycopg.Connection, n: int) -> list[UUID]:
    """n products; the insert trigger queues one pending task each."""
    rows = conn.execute(
        "INSERT INTO product_master (name) SELECT 'Tap washer set ' || i FROM generate_series(1, %s) i RETURNING id",
        (n,),
    ).fetchall()
    return [r[0] for r in rows]


def tasks(conn: psycopg.Connection) -> dict[int, tuple]:  # type: ignore[type-arg]
    rows = conn.execute(
        "SELECT id, status, attempts, locked_by, result, last_error, product_master_id FROM ai_task ORDER BY id"
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_claim_takes_due_tasks_by_priority_then_age_and_leases_them(db: psycopg.Connection) -> None:
    add_products(db, 5)
    ids = sorted(tasks(db))
    db.execute("UPDATE ai_task SET priority = 5 WHERE id = %s", (ids[3],))
    db.execute("UPDATE ai_task SET run_after = now() - interval '1 hour' WHERE id = %s", (ids[4],))
    db.execute("UPDATE ai_task SET run_after = now() + interval '1 hour' WHERE id = %s", (ids[0],))  # backing off
    claimed = queue.claim(db, "w1", 3, 30)
    assert sorted(t.id for t in claimed) == sorted([ids[3], ids[4], ids[1]])
    lease = db.execute(
        "SELECT min(locked_until - now()), max(locked_until - now()) FROM ai_task WHERE status = 'running'"
    ).fetchone()
    assert timedelta(seconds=29) < lease[0] <= lease[1] <= timedelta(seconds=30)
    assert {tasks(db)[t.id][:3] for t in claimed} == {("running", 0, "w1")}
    assert [t.id for t in queue.claim(db, "w2", 10, 30)] == [ids[2]]  # the one in backoff is not due
    assert queue.claim(db, "w3", 10, 30) == []


def test_claim_uses_the_claim_index(db: psycopg.Connection) -> None:
    add_products(db, 50)
    db.execute("ANALYZE ai_task")
    with db.transaction():
        db.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in db.execute(
                "EXPLAIN " + queue.sql("claim_batch"), {"worker_id": "w", "batch_size": 8, "lease_seconds": 5.0}
            )
        )
    assert "ix_ai_task_claim" in plan
    assert "Sort" not in plan.split("ix_ai_task_claim")[0].rsplit("LockRows", 1)[-1]


def test_concurrent_claims_skip_locked_rows(db: psycopg.Connection, fresh_db_url: str) -> None:
    add_products(db, 10)
    with psycopg.connect(fresh_db_url) as other:  # a claim still in its transaction holds its rows
        held = other.execute(queue.sql("claim_batch"), {"worker_id": "a", "batch_size": 4, "lease_seconds": 30})
        held_ids = {r[0] for r in held.fetchall()}
        started = time.monotonic()
        mine = {t.id for t in queue.claim(db, "b", 10, 30)}
        assert time.monotonic() - started < 2  # did not wait for the other transaction
        other.commit()
    assert len(held_ids) == 4 and len(mine) == 6 and not held_ids & mine


def test_finish_is_fenced_on_the_lease(db: psycopg.Connection) -> None:
    add_products(db, 2)
    claimed = queue.claim(db, "w1", 2, 30)
    db.execute("UPDATE ai_task SET locked_by = 'w2' WHERE id = %s", (claimed[0].id,))  # taken over
    with db.transaction():
        owned = queue.finish_owned(db, "w1", {t.id: "embedded" for t in claimed})
    assert set(owned) == {claimed[1].id}
    rows = tasks(db)
    assert rows[claimed[0].id][:3] == ("running", 0, "w2")
    assert rows[claimed[1].id][0] == "done" and rows[claimed[1].id][3] == "embedded"


def test_fail_backs_off_then_dead_letters_at_max_attempts(db: psycopg.Connection) -> None:
    add_products(db, 1)
    db.execute("UPDATE ai_task SET max_attempts = 2")
    [task] = queue.claim(db, "w", 1, 30)
    assert queue.fail(db, task, "w", "boom 1", 40.0) == "pending"
    row = db.execute("SELECT attempts, last_error, run_after - now(), locked_by FROM ai_task").fetchone()
    assert row[0] == 1 and row[1] == "boom 1" and timedelta(seconds=39) < row[2] <= timedelta(seconds=40)
    assert row[3] is None
    assert queue.fail(db, task, "w", "boom 2", 1.0) is None  # not ours any more: nothing recorded
    db.execute("UPDATE ai_task SET run_after = now()")
    [task] = queue.claim(db, "w", 1, 30)
    assert queue.fail(db, task, "w", "boom 2", 1.0) == "failed"
    row = db.execute("SELECT status, attempts, last_error, result, finished_at IS NOT NULL FROM ai_task").fetchone()
    assert row == ("failed", 2, "boom 2", "failed after 2 attempts", True)


def test_release_keeps_attempts_and_yields_to_a_newer_pending_task(db: psycopg.Connection) -> None:
    products = add_products(db, 2)
    claimed = queue.claim(db, "w", 2, 30)
    db.execute("UPDATE product_master SET brand = 'FixIt' WHERE id = %s", (products[1],))  # queues a new task
    assert queue.release(db, [t.id for t in claimed], "w") == 2
    rows = tasks(db)
    by_product = {r[5]: r for tid, r in rows.items() if tid in {t.id for t in claimed}}
    assert by_product[products[0]][:4] == ("pending", 0, None, None)
    assert by_product[products[1]][:4] == ("done", 0, None, "superseded")


def test_reaper_boundaries(db: psycopg.Connection) -> None:
    add_products(db, 3)
    ids = sorted(tasks(db))
    lease = "UPDATE ai_task SET status = 'running', locked_by = 'w', locked_until = now() + %s::interval, attempts = %s"
    db.execute(lease + " WHERE id = %s", ("-1 millisecond", 0, ids[0]))  # expired a moment ago
    db.execute(lease + " WHERE id = %s", ("2 seconds", 0, ids[1]))  # about to expire
    db.execute(lease + ", max_attempts = 3 WHERE id = %s", ("-1 second", 2, ids[2]))  # expired, last attempt
    reclaimed = dict(queue.reap_expired(db))
    assert reclaimed == {ids[0]: "pending", ids[2]: "failed"}
    rows = tasks(db)
    assert rows[ids[0]][:3] == ("pending", 1, None)
    assert rows[ids[0]][4].startswith("lease expired (held by w)")
    assert rows[ids[1]][:3] == ("running", 0, "w")
    assert rows[ids[2]][:4] == ("failed", 3, None, "failed after 3 attempts")
    time.sleep(2.1)
    assert dict(queue.reap_expired(db)) == {ids[1]: "pending"}  # once it has expired, it is reclaimed


def test_reclaimed_task_yields_to_a_newer_pending_one(db: psycopg.Connection) -> None:
    add_products(db, 1)
    db.execute("UPDATE ai_task SET status = 'running', locked_by = 'w', locked_until = now() - interval '1 s'")
    db.execute("UPDATE product_master SET brand = 'Kärcher'")  # queues a new pending task meanwhile
    queue.reap_expired(db)
    rows = db.execute("SELECT status, result FROM ai_task ORDER BY id").fetchall()
    assert rows == [("done", "superseded"), ("pending", None)]


def test_two_expired_tasks_of_one_product_leave_one_pending(db: psycopg.Connection) -> None:
    [product] = add_products(db, 1)
    db.execute(
        "INSERT INTO ai_task (product_master_id, status, locked_by, locked_until) VALUES (%s, 'running', 'x', now())",
        (product,),
    )
    db.execute("UPDATE ai_task SET status = 'running', locked_by = 'w', locked_until = now() - interval '1 s'")
    reclaimed = sorted(queue.reap_expired(db))
    assert [status for _, status in reclaimed] == ["pending", "done"]
    assert db.execute("SELECT count(*) FROM ai_task WHERE status = 'pending'").fetchone() == (1,)


def test_reaper_loses_a_race_with_a_product_edit_and_retries(db: psycopg.Connection, fresh_db_url: str) -> None:
    """The edit's trigger inserts a pending task the reaper's snapshot cannot see yet: the unique index makes
    the reaper wait, then fail; it tries again and finishes its task as superseded."""
    [product] = add_products(db, 1)
    db.execute("UPDATE ai_task SET status = 'running', locked_by = 'w', locked_until = now() - interval '1 s'")
    result: list[object] = []
    with psycopg.connect(fresh_db_url) as editor:
        editor.execute("UPDATE product_master SET brand = 'Bosch' WHERE id = %s", (product,))  # uncommitted
        with psycopg.connect(fresh_db_url, autocommit=True) as reaper_conn:
            thread = threading.Thread(target=lambda: result.append(queue.reap_expired(reaper_conn)))
            thread.start()
            time.sleep(0.5)  # the reaper now waits on the unique index
            editor.commit()
            thread.join(timeout=30)
    assert result and result[0] == [(min(tasks(db)), "done")]
    rows = db.execute("SELECT status, result FROM ai_task ORDER BY id").fetchall()
    assert rows == [("done", "superseded"), ("pending", None)]


def test_stats_and_failed_listing(db: psycopg.Connection) -> None:
    """The oldest pending task's age counted from its creation: a task requeued by `tasks retry` a moment ago read
    as old as its first failure, and tasks waiting out a backoff were counted with the due ones."""
    add_products(db, 5)
    ids = sorted(tasks(db))
    db.execute("UPDATE ai_task SET created_at = now() - interval '1 hour', run_after = now() - interval '90 s'"
               " WHERE id = %s", (ids[0],))  # fmt: skip
    db.execute("UPDATE ai_task SET status = 'done' WHERE id = %s", (ids[1],))
    db.execute("UPDATE ai_task SET status = 'failed', attempts = 5, last_error = 'x' WHERE id = %s", (ids[2],))
    db.execute("UPDATE ai_task SET attempts = 2, run_after = now() + interval '6 s' WHERE id = %s", (ids[4],))
    stats = queue.stats(db)
    assert stats.counts == {"pending": 3, "running": 0, "done": 1, "failed": 1}
    assert (stats.due, stats.backing_off) == (2, 1)
    assert stats.next_due_in_s is not None and 4 < stats.next_due_in_s <= 6
    assert stats.oldest_pending_s is not None and 90 <= stats.oldest_pending_s < 120
    [failed] = queue.list_failed(db)
    assert failed[0] == ids[2] and failed[2:5] == (5, 5, "x")
    db.execute("UPDATE ai_task SET created_at = now() - interval '1 hour' WHERE id = %s", (ids[2],))
    db.execute("UPDATE ai_task SET status = 'done' WHERE id = %s", (ids[0],))
    assert queue.retry_failed(db, [ids[2]]) == [ids[2]]
    again = queue.stats(db)
    assert again.oldest_pending_s is not None and again.oldest_pending_s < 30  # requeued just now, not an hour ago


def test_retry_requeues_dead_letters_and_respects_one_pending_per_product(db: psycopg.Connection) -> None:
    products = add_products(db, 3)
    db.execute("UPDATE ai_task SET status = 'failed', attempts = 5, last_error = 'boom', finished_at = now()")
    # Product 0 has a second failed task, product 1 a fresh pending one.
    db.execute("INSERT INTO ai_task (product_master_id, status, attempts) VALUES (%s, 'failed', 5)", (products[0],))
    db.execute("INSERT INTO ai_task (product_master_id) VALUES (%s)", (products[1],))
    assert queue.retry_failed(db, [999_999]) == []
    requeued = queue.retry_failed(db, None)
    rows = tasks(db)
    assert len(requeued) == 2  # one for product 0, one for product 2; product 1 keeps its pending task
    assert {rows[t][5] for t in requeued} == {products[0], products[2]}
    assert all(rows[t][:2] == ("pending", 0) for t in requeued)
    pending = db.execute(
        "SELECT product_master_id, count(*) FROM ai_task WHERE status = 'pending' GROUP BY 1"
    ).fetchall()
    assert sorted(n for _, n in pending) == [1, 1, 1]
    assert queue.retry_failed(db, None) == []  # nothing more can be requeued without breaking the index


def _age_tasks(conn: psycopg.Connection, ids: list[int], status: str, days: float, finished: bool = True) -> None:
    """Put tasks into `status`, ended `days` ago: the updated_at trigger is off for this (it would stamp now())."""
    conn.execute("SET session_replication_role = replica")
    try:
        conn.execute(
            "UPDATE ai_task SET status = %s, updated_at = now() - make_interval(secs => %s * 86400),"
            " finished_at = CASE WHEN %s THEN now() - make_interval(secs => %s * 86400) END WHERE id = ANY(%s)",
            (status, days, finished, days, ids),
        )
    finally:
        conn.execute("SET session_replication_role = DEFAULT")


def test_prune_deletes_only_done_tasks_older_than_the_cutoff_in_windows(db: psycopg.Connection) -> None:
    add_products(db, 9)
    ids = sorted(tasks(db))
    old_done, superseded, recent_done, old_failed, old_pending = ids[:3], ids[3:4], ids[4:6], ids[6:7], ids[7:8]
    _age_tasks(db, old_done, "done", 10)
    _age_tasks(db, superseded, "done", 10, finished=False)  # superseded: done, no finished_at
    _age_tasks(db, recent_done, "done", 0.5)
    _age_tasks(db, old_failed, "failed", 10)
    _age_tasks(db, old_pending, "pending", 10, finished=False)
    plan = queue.plan_prune(db, 86400.0)
    assert plan.count == 4 and plan.upto == ids[-1]
    assert set(tasks(db)) == set(ids)  # planning deletes nothing
    batches: list[int] = []
    assert queue.prune_done(db, plan, window=2, on_batch=batches.append) == 4
    assert len(batches) == 5 and sum(batches) == 4  # 9 ids in windows of 2, each its own transaction
    assert set(tasks(db)) == set(ids) - set(old_done) - set(superseded)
    assert queue.prune_done(db, queue.plan_prune(db, 86400.0)) == 0
    with pytest.raises(ValueError):
        queue.plan_prune(db, -1.0)


@given(
    base=st.floats(min_value=0.01, max_value=30),
    cap=st.floats(min_value=1, max_value=3600),
    attempt=st.integers(min_value=1, max_value=40),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_grows_and_stays_within_its_bound(base: float, cap: float, attempt: int, seed: int) -> None:
    rng = random.Random(seed)
    step = min(cap, base * 2 ** (attempt - 1))
    next_step = min(cap, base * 2**attempt)
    delay = queue.backoff_delay(attempt, base_s=base, max_s=cap, rng=rng)
    assert step / 2 <= delay <= step <= cap  # jittered, never beyond the bound
    later = queue.backoff_delay(attempt + 1, base_s=base, max_s=cap, rng=rng)
    assert later >= next_step / 2 >= step / 2  # the window's floor never shrinks
    if base * 2**attempt <= cap:
        assert next_step == 2 * step  # and it doubles until the bound


def test_tasks_cli_stats_failed_retry_prune(db: psycopg.Connection, fresh_db_url: str) -> None:
    import os
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "search_service", "tasks", *args],
            env={**os.environ, "DATABASE_URL": fresh_db_url},
            capture_output=True,
            text=True,
            timeout=60,
        )

    add_products(db, 3)
    failed_id = min(tasks(db))
    db.execute(
        "UPDATE ai_task SET status = 'failed', attempts = 5, last_error = 'boom: bad text' WHERE id = %s", (failed_id,)
    )
    stats = cli("stats")
    assert stats.returncode == 0 and "pending  2" in stats.stdout and "failed   1" in stats.stdout
    assert "oldest pending: " in stats.stdout and "  due          2" in stats.stdout
    assert "  backing off  0\n" in stats.stdout
    listed = cli("failed")
    assert listed.returncode == 0 and f"{failed_id}\t" in listed.stdout and "boom: bad text" in listed.stdout
    neither = cli("retry")
    assert neither.returncode == 2 and neither.stderr.startswith("error: give either --all or")
    for wrong in (("retry", "abc"), ("failed", "--limit", "abc")):  # click said "is not a valid integer range"
        refused = cli(*wrong)
        assert refused.returncode == 2 and "'abc' is not a whole number" in refused.stderr, refused.stderr
    retried = cli("retry", str(failed_id), "999999")
    assert retried.returncode == 1 and "requeued 1 task(s)" in retried.stdout  # exit 0 when an id was not
    assert "not requeued: 999999 (no such task)" in retried.stdout  # it said nothing of the ids it left
    again = cli("retry", str(failed_id))
    assert again.returncode == 1 and f"not requeued: {failed_id} (it is pending, not failed)" in again.stdout
    assert tasks(db)[failed_id][:2] == ("pending", 0)
    db.execute("UPDATE ai_task SET status = 'failed', attempts = 5 WHERE id = %s", (failed_id,))
    alone = cli("retry", str(failed_id))
    assert alone.returncode == 0 and "requeued 1 task(s)" in alone.stdout and "not requeued" not in alone.stdout
    done_ids = sorted(tasks(db))[1:]
    _age_tasks(db, done_ids, "done", 3)
    bad = cli("prune", "--older-than", "2 weeks")
    assert bad.returncode == 2 and "is not a duration: give a number and a unit" in bad.stderr
    for value, says in (("nand", "is not a duration"), ("infs", "is not a duration"), ("1e12s", "at most 100 years")):
        out = cli("prune", "--older-than", value)  # these reached the database: a traceback
        assert out.returncode == 2 and says in out.stderr and "Traceback" not in out.stderr, out.stderr
    dry = cli("prune", "--older-than", "2d", "--dry-run")
    assert dry.returncode == 0 and "would delete 2 done task(s) that finished before" in dry.stdout
    assert set(done_ids) <= set(tasks(db))
    pruned = cli("prune", "--older-than", "48h")
    assert pruned.returncode == 0 and "deleted 2 done task(s)" in pruned.stdout
    assert set(tasks(db)) == {failed_id}
