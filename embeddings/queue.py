"""The ai_task queue: claim with leases, fenced completion, backoff, dead letters, reaping, stats, retention."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, LiteralString, TypeVar
from uuid import UUID

import numpy as np
import psycopg
from psycopg import errors

from embeddings.sqlblocks import load_statements

SQL_PATH = Path(__file__).resolve().parent / "sql" / "queue.sql"


T = TypeVar("T")


def sql(name: str) -> LiteralString:
    return load_statements(SQL_PATH)[name].psycopg


def _in_transaction_retrying(conn: psycopg.Connection, body: Callable[[], T], tries: int = 5) -> T:
    """Run `body` in a transaction, again when it loses a race on "one pending task per product".

    A task returning to `pending` checks ai_task_other_pending() first, but a concurrent transaction (a product
    edit's trigger, another worker's reaper) may insert that other pending task after our snapshot: the unique
    index then waits for it and raises. On the next try the other task is visible and ours is 'superseded'."""
    for attempt in range(1, tries + 1):
        try:
            with conn.transaction():
                return body()
        except errors.UniqueViolation:
            if attempt == tries:
                raise
            time.sleep(0.01 * attempt)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ClaimedTask:
    id: int
    product_id: UUID | None
    attempts: int
    max_attempts: int
    force: bool = False  # embed even when the text and model are current (`reembed --all --via-queue`)
    holder: str = ""  # the claim's holder (locked_by): every fenced write of this task names it


def backoff_delay(
    attempt: int, *, base_s: float = 2.0, max_s: float = 600.0, rng: random.Random | None = None
) -> float:
    """Exponential backoff with "equal jitter": half the step is fixed, half random, so retries of a failed batch
    spread out but the delay still grows with every attempt. attempt counts from 1."""
    step = min(max_s, base_s * 2 ** max(attempt - 1, 0))
    return step / 2 + (rng or random).uniform(0, step / 2)


def claim(conn: psycopg.Connection, worker_id: str, batch_size: int, lease_seconds: float) -> list[ClaimedTask]:
    with conn.transaction():
        rows = conn.execute(
            sql("claim_batch"),
            {"worker_id": worker_id, "batch_size": batch_size, "lease_seconds": lease_seconds},
        ).fetchall()
    return [ClaimedTask(r[0], r[1], r[2], r[3], r[4], worker_id) for r in sorted(rows, key=lambda r: r[0])]


def load_products(conn: psycopg.Connection, ids: Sequence[UUID]) -> dict[UUID, dict[str, Any]]:
    rows = conn.execute(sql("load_products"), {"ids": list(ids)}).fetchall()
    return {r[0]: _product_row(r) for r in rows}


PRODUCT_KEYS = (
    "id",
    "name",
    "brand",
    "description",
    "attributes",
    "ai_model",
    "ai_text_hash",
    "category_path",
    "has_vector",
)


def _product_row(r: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(PRODUCT_KEYS, r, strict=True))


def lock_products(conn: psycopg.Connection, ids: Sequence[UUID]) -> dict[UUID, dict[str, Any]]:
    keys = ("id", "name", "brand", "description", "attributes", "category_path")
    rows = conn.execute(sql("lock_products"), {"ids": list(ids)}).fetchall()
    return {r[0]: dict(zip(keys, r, strict=True)) for r in rows}


def finish_owned(conn: psycopg.Connection, worker_id: str, results: dict[int, str]) -> dict[int, UUID | None]:
    """Mark done the tasks this worker still holds; returns them (task id → product id). Call in a transaction."""
    rows = conn.execute(
        sql("finish_owned"),
        {"task_ids": list(results), "results": list(results.values()), "worker_id": worker_id},
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def write_vectors(
    conn: psycopg.Connection, ids: Sequence[UUID], vectors: np.ndarray, hashes: Sequence[str], model: str
) -> None:
    if not ids:
        return
    conn.execute(
        sql("write_vectors"),
        {"ids": list(ids), "vectors": list(vectors), "hashes": list(hashes), "model": model},
    )


def close_failed_of(conn: psycopg.Connection, task_ids: Sequence[int], product_ids: Sequence[UUID]) -> None:
    """Close the earlier failed tasks of the products these tasks embedded (in the caller's transaction)."""
    conn.execute(sql("close_failed_of"), {"task_ids": list(task_ids), "product_ids": list(product_ids)})


def write_no_vectors(conn: psycopg.Connection, ids: Sequence[UUID], hashes: Sequence[str], model: str) -> None:
    """Products whose text has no token the model knows: no vector, and the hash and model it was read with."""
    conn.execute(sql("write_no_vectors"), {"ids": list(ids), "hashes": list(hashes), "model": model})


def fail(conn: psycopg.Connection, task: ClaimedTask, worker_id: str, error: str, delay_s: float) -> str | None:
    """Record a failed attempt; returns the task's new status (None if the lease was lost meanwhile)."""
    params = {"task_id": task.id, "worker_id": worker_id, "error": error, "delay_s": delay_s}
    row = _in_transaction_retrying(conn, lambda: conn.execute(sql("fail_task"), params).fetchone())
    return None if row is None else str(row[0])


def release(conn: psycopg.Connection, task_ids: Sequence[int], worker_id: str) -> int:
    """Give tasks back untouched (graceful shutdown): pending again, attempts unchanged."""
    params = {"task_ids": list(task_ids), "worker_id": worker_id}
    rows = _in_transaction_retrying(conn, lambda: conn.execute(sql("release_owned"), params).fetchall())
    return len(rows)


def requeue_changed(conn: psycopg.Connection, task_ids: Sequence[int], worker_id: str) -> dict[int, str]:
    """Tasks whose product was edited while they were embedded, given back as a release does: pending again for
    the new text, or done ('superseded') when the edit queued a task of its own. In the caller's transaction (a
    savepoint, retried like a release when a pending task of the product appears meanwhile); each one's status."""
    params = {"task_ids": list(task_ids), "worker_id": worker_id}
    rows = _in_transaction_retrying(conn, lambda: conn.execute(sql("release_owned"), params).fetchall())
    return {r[0]: r[1] for r in rows}  # task id → pending (to embed again) or done (superseded)


def renew_leases(conn: psycopg.Connection, holders: Sequence[str], lease_seconds: float) -> int:
    """Extend the leases of these claims (the heartbeat); returns how many tasks they still hold."""
    if not holders:
        return 0
    cur = conn.execute(sql("renew_leases"), {"holders": list(holders), "lease_seconds": lease_seconds})
    return cur.rowcount


def reap_expired(conn: psycopg.Connection, keep: Sequence[str] = ()) -> list[tuple[int, str]]:
    """Return expired leases to the queue, except those of the claims in `keep` (the reaper's own, in hand);
    loops because each pass takes one task per product."""
    reclaimed: list[tuple[int, str]] = []
    params = {"keep": list(keep)}
    while True:
        rows = _in_transaction_retrying(conn, lambda: conn.execute(sql("reap_expired"), params).fetchall())
        if not rows:
            return reclaimed
        reclaimed.extend((r[0], r[1]) for r in rows)


def drain_state(conn: psycopg.Connection, keep: Sequence[str] = ()) -> tuple[int, float | None]:
    """Tasks pending (due or backing off) or running under another holder's lease (`keep`: the caller's own
    claims), and the seconds until the next pending one is due (None: none pending)."""
    row = conn.execute(sql("drain_state"), {"keep": list(keep)}).fetchone()
    if row is None:
        return 0, None
    return int(row[0]), None if row[1] is None else float(row[1])


@dataclass(frozen=True)
class QueueStats:
    counts: dict[str, int]
    oldest_pending_s: float | None  # the longest a due task has waited since it was (re)queued or its backoff ended
    due: int = 0  # pending tasks a worker may claim now
    backing_off: int = 0  # pending tasks waiting out a failed attempt's backoff
    next_due_in_s: float | None = None  # when the first of those is due


def stats(conn: psycopg.Connection) -> QueueStats:
    rows = conn.execute(sql("stats")).fetchall()
    pending = next(r for r in rows if r[0] == "pending")
    counts = {r[0]: int(r[1]) for r in rows}
    oldest = None if pending[3] is None else float(pending[3])
    next_due = None if pending[4] is None else float(pending[4])
    return QueueStats(counts, oldest, int(pending[2]), counts["pending"] - int(pending[2]), next_due)


def list_failed(conn: psycopg.Connection, limit: int = 100) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sql("list_failed"), {"limit": limit}).fetchall()]


def retry_failed(conn: psycopg.Connection, ids: Sequence[int] | None) -> list[int]:
    """Requeue dead letters (all of them with ids=None) with fresh attempts; returns the requeued ids.
    A failed task whose product already has a pending task stays failed: that pending task does its work."""
    params = {"ids": None if ids is None else list(ids)}

    def body() -> list[Any]:
        rows = conn.execute(sql("retry_failed"), params).fetchall()
        if rows:
            conn.execute(sql("notify"))
        return rows

    return sorted(r[0] for r in _in_transaction_retrying(conn, body))


def task_statuses(conn: psycopg.Connection, ids: Sequence[int]) -> dict[int, str]:
    """The status of each of `ids` that names a task."""
    return dict(conn.execute(sql("task_statuses"), {"ids": list(ids)}).fetchall())


@dataclass(frozen=True)
class PrunePlan:
    cutoff: datetime  # done tasks that finished before this go
    upto: int  # the highest task id when the prune started: later tasks are the next prune's
    count: int  # how many tasks qualify


def plan_prune(conn: psycopg.Connection, older_than_s: float) -> PrunePlan:
    """What a prune of the done tasks older than `older_than_s` would delete (nothing is deleted)."""
    if older_than_s < 0:
        raise ValueError("older_than_s must be >= 0")
    row = conn.execute(sql("prune_cutoff"), {"older_than_s": older_than_s}).fetchone()
    assert row is not None
    cutoff, upto = row[0], int(row[1])
    counted = conn.execute(sql("prunable_count"), {"cutoff": cutoff, "upto": upto}).fetchone()
    return PrunePlan(cutoff, upto, int(counted[0]) if counted else 0)


def prune_done(
    conn: psycopg.Connection, plan: PrunePlan, window: int = 5000, on_batch: Callable[[int], object] | None = None
) -> int:
    """Delete the done tasks `plan` counted, `window` ids per transaction (short locks; an interrupted prune
    loses nothing and the next one goes on). `on_batch` gets each batch's deleted count. Returns the total."""
    if window < 1:
        raise ValueError("window must be >= 1")
    after, total = 0, 0
    while True:
        with conn.transaction():
            row = conn.execute(
                sql("prune_done"), {"after_id": after, "upto": plan.upto, "cutoff": plan.cutoff, "window": window}
            ).fetchone()
        if row is None or row[0] is None:
            return total
        after, deleted = int(row[0]), int(row[1])
        total += deleted
        if on_batch is not None:
            on_batch(deleted)
