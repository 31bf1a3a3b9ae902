"""The embedding worker: claims ai_task batches, embeds them in one model call, writes fenced on its lease.

Safe with many workers on many hosts (SKIP LOCKED claims, leases, fenced writes) and against SIGKILL (expired
leases are reaped by any worker). SIGTERM/SIGINT stop the claiming; the batch in hand is finished, then we exit.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any
from uuid import UUID

import psycopg
from pgvector.psycopg import register_vector

from embeddings import queue
from embeddings.encoder import Encoder
from embeddings.text import compose_text, text_hash

log = logging.getLogger("plinqy.worker")


@dataclass(frozen=True)
class WorkerConfig:
    batch_size: int = 64
    poll_interval_s: float = 5.0
    lease_seconds: float = 60.0
    backoff_base_s: float = 2.0
    backoff_max_s: float = 600.0
    drain: bool = False
    # Fault injection for tests and chaos drills: texts containing this marker fail to embed;
    # hold_s sleeps after each claim, so a test can kill a worker that holds a batch.
    fail_marker: str | None = None
    hold_s: float = 0.0


@dataclass
class BatchOutcome:
    embedded: int = 0
    unchanged: int = 0
    deleted: int = 0
    superseded: int = 0
    lost_lease: int = 0
    errors: int = 0


def product_text(product: dict[str, Any]) -> str:
    return compose_text(
        name=product["name"],
        brand=product["brand"],
        category_path=product["category_path"] or (),
        description=product["description"],
        attributes=product["attributes"] or {},
    )


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class EmbeddingError(RuntimeError):
    pass


class Worker:
    def __init__(self, dsn: str, encoder: Encoder, config: WorkerConfig, worker_id: str | None = None) -> None:
        self.dsn = dsn
        self.encoder = encoder
        self.config = config
        self.worker_id = worker_id or make_worker_id()
        self.stopping = False
        self.totals = BatchOutcome()
        self._conn: psycopg.Connection | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        self.stopping = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.dsn, autocommit=True, application_name=f"plinqy-worker {self.worker_id}")
        register_vector(conn)
        return conn

    def run(self) -> BatchOutcome:
        """Loop until stopped (or, with drain, until nothing is due)."""
        with self._connect() as conn, self._connect() as listener:
            self._conn = conn
            listener.execute("LISTEN ai_task")
            last_reap = 0.0
            while not self.stopping:
                if time.monotonic() - last_reap >= self.config.poll_interval_s:
                    reclaimed = queue.reap_expired(conn)
                    if reclaimed:
                        log.info(json.dumps({"event": "reaped", "tasks": len(reclaimed)}))
                    last_reap = time.monotonic()
                if self.run_once(conn):
                    continue
                if self.config.drain:
                    if queue.due_count(conn) == 0:
                        break
                    continue
                self._wait_for_work(listener)
        log.info(json.dumps({"event": "stopped", "worker": self.worker_id, **vars(self.totals)}))
        return self.totals

    def _wait_for_work(self, listener: psycopg.Connection) -> None:
        # Short slices keep a stop request responsive; a NOTIFY ends the wait at once, the poll bounds a lost one.
        deadline = time.monotonic() + self.config.poll_interval_s
        while not self.stopping and time.monotonic() < deadline:
            timeout = min(0.5, max(deadline - time.monotonic(), 0.0))
            for _ in listener.notifies(timeout=timeout, stop_after=1):
                return

    # -- one batch ----------------------------------------------------------------------------------------
    def run_once(self, conn: psycopg.Connection) -> bool:
        """Claim and process one batch; False when nothing was due."""
        tasks = queue.claim(conn, self.worker_id, self.config.batch_size, self.config.lease_seconds)
        if not tasks:
            return False
        started = time.perf_counter()
        if self.config.hold_s:
            time.sleep(self.config.hold_s)
        if self.stopping:
            # Stopped while holding the batch and before any work: give it back without spending an attempt.
            queue.release(conn, [t.id for t in tasks], self.worker_id)
            return True
        outcome = BatchOutcome()
        try:
            self._process(conn, tasks, outcome)
        except Exception as exc:  # isolate: a batch failure must not fail the good tasks in it
            if len(tasks) == 1:
                self._fail(conn, tasks[0], exc, outcome)
            else:
                for task in tasks:
                    try:
                        self._process(conn, [task], outcome)
                    except Exception as single_exc:
                        self._fail(conn, task, single_exc, outcome)
        elapsed = time.perf_counter() - started
        for key, value in vars(outcome).items():
            setattr(self.totals, key, getattr(self.totals, key) + value)
        log.info(
            json.dumps(
                {
                    "event": "batch",
                    "worker": self.worker_id,
                    "size": len(tasks),
                    **vars(outcome),
                    "ms": round(elapsed * 1000, 1),
                    "rate_per_s": round(len(tasks) / elapsed, 1) if elapsed > 0 else None,
                }
            )
        )
        return True

    def _fail(self, conn: psycopg.Connection, task: queue.ClaimedTask, exc: BaseException, out: BatchOutcome) -> None:
        delay = queue.backoff_delay(
            task.attempts + 1, base_s=self.config.backoff_base_s, max_s=self.config.backoff_max_s
        )
        error = f"{type(exc).__name__}: {exc}"
        status = queue.fail(conn, task, self.worker_id, error, delay)
        out.errors += 1
        log.warning(json.dumps({"event": "task_failed", "task": task.id, "status": status, "error": error[:300]}))

    def _embed(self, texts: list[str]) -> Any:
        marker = self.config.fail_marker
        if marker and any(marker in t for t in texts):
            raise EmbeddingError(f"text contains the injected fault marker {marker!r}")
        return self.encoder.encode(texts)

    def _process(self, conn: psycopg.Connection, tasks: list[queue.ClaimedTask], out: BatchOutcome) -> None:
        ids = [t.product_id for t in tasks if t.product_id is not None]
        products = queue.load_products(conn, ids)
        results: dict[int, str] = {}
        to_embed: dict[int, tuple[UUID, str, str]] = {}
        for task in tasks:
            product = products.get(task.product_id) if task.product_id else None
            if product is None:
                results[task.id] = "product deleted"
                continue
            text = product_text(product)
            digest = text_hash(text)
            if product["ai_text_hash"] == digest and product["ai_model"] == self.encoder.model_id:
                results[task.id] = "unchanged"
            else:
                to_embed[task.id] = (product["id"], text, digest)
                results[task.id] = "embedded"
        vectors = self._embed([text for _, text, _ in to_embed.values()]) if to_embed else None

        with conn.transaction():
            owned = queue.finish_owned(conn, self.worker_id, results)
            out.lost_lease += len(results) - len(owned)
            write_ids: list[UUID] = []
            write_rows: list[int] = []
            write_hashes: list[str] = []
            if to_embed:
                current = queue.lock_products(conn, [pid for pid, _, _ in to_embed.values()])
                for row, (task_id, (pid, _text, digest)) in enumerate(to_embed.items()):
                    if task_id not in owned:
                        continue  # fenced: our lease was taken over, the new holder writes
                    now = current.get(pid)
                    if now is None or text_hash(product_text(now)) != digest:
                        out.superseded += 1  # edited meanwhile: the trigger queued a task for the new text
                        continue
                    write_ids.append(pid)
                    write_rows.append(row)
                    write_hashes.append(digest)
            if write_ids and vectors is not None:
                queue.write_vectors(conn, write_ids, vectors[write_rows], write_hashes, self.encoder.model_id)
        out.embedded += len(write_ids)
        out.unchanged += sum(1 for t, r in results.items() if r == "unchanged" and t in owned)
        out.deleted += sum(1 for t, r in results.items() if r == "product deleted" and t in owned)


def run_worker(dsn: str, encoder: Encoder, config: WorkerConfig, on_start: Callable[[str], None] | None = None) -> int:
    worker = Worker(dsn, encoder, config)
    worker.install_signal_handlers()
    if on_start:
        on_start(worker.worker_id)
    totals = worker.run()
    return totals.errors
