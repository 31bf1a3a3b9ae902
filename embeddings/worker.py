"""The embedding worker: claims ai_task batches, embeds them in one model call, writes fenced on its lease.

Safe with many workers on many hosts (SKIP LOCKED claims, leases, fenced writes) and against SIGKILL (expired
leases are reaped by any worker). SIGTERM/SIGINT stop the claiming; the batch in hand is finished (or, when the
stop arrives before its work began, released untouched), then the worker exits.

One batch: claim (one short transaction) → read the products and compose their texts → one model call for the
texts whose hash or model changed → one write transaction that locks the products, re-checks their text, marks
the tasks this worker still holds `done` (the fence) and writes the vectors of exactly those tasks.

Fault injection, for tests and chaos drills only (the CLI reads them from the environment):
- ``PLINQY_WORKER_FAIL_MARKER``: texts containing this marker fail to embed (a poison task).
- ``PLINQY_WORKER_HOLD_S``: sleep this long after each claim while holding the batch (so a test can SIGKILL or
  SIGTERM a worker that holds a lease). The sleep ends early on SIGTERM/SIGINT.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any
from uuid import UUID

import numpy as np
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
    # Lost database: wait this long (doubling up to reconnect_max_s) before connecting again.
    reconnect_base_s: float = 0.5
    reconnect_max_s: float = 30.0
    # Write batch n (its own connection and thread) while batch n+1 is claimed and embedded: the write's round
    # trips and server time hide behind the model call. benchmarks/bench_worker.py measures both modes.
    pipeline: bool = True


@dataclass
class BatchOutcome:
    embedded: int = 0
    unchanged: int = 0
    deleted: int = 0
    superseded: int = 0
    lost_lease: int = 0
    errors: int = 0

    def add(self, other: BatchOutcome) -> None:
        for key, value in vars(other).items():
            setattr(self, key, getattr(self, key) + value)


@dataclass
class PreparedBatch:
    """A claimed batch on its way: results so far, what needs a vector, the vectors, the tasks that failed."""

    tasks: dict[int, queue.ClaimedTask]
    results: dict[int, str] = field(default_factory=dict)  # task id → result ('embedded' provisionally)
    to_embed: dict[int, tuple[UUID, str, str]] = field(default_factory=dict)  # task id → (product, text, hash)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)  # task id → its vector
    failures: dict[int, BaseException] = field(default_factory=dict)  # task id → why it failed

    def subset(self, task_ids: Iterable[int]) -> PreparedBatch:
        keep = set(task_ids)
        return PreparedBatch(
            tasks={k: v for k, v in self.tasks.items() if k in keep},
            results={k: v for k, v in self.results.items() if k in keep},
            to_embed={k: v for k, v in self.to_embed.items() if k in keep},
            vectors={k: v for k, v in self.vectors.items() if k in keep},
            failures={k: v for k, v in self.failures.items() if k in keep},
        )

    def without_failures(self) -> PreparedBatch:
        return self.subset(k for k in self.tasks if k not in self.failures)


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
        self.batches = 0

    # -- lifecycle ----------------------------------------------------------------------------------------
    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        self.stopping = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.dsn, autocommit=True, application_name=f"plinqy-worker {self.worker_id}"[:63])
        register_vector(conn)
        return conn

    def run(self) -> BatchOutcome:
        """Loop until stopped (or, with drain, until nothing is due). Survives a lost database connection."""
        delay = self.config.reconnect_base_s
        while not self.stopping:
            try:
                if self._run_connected():
                    break
            except psycopg.OperationalError as exc:
                if self.config.drain:
                    raise  # a one-shot drain fails loudly; a long-running worker rides the outage out
                # The server went away (restart, failover, network). Tasks we held come back through the reaper.
                log.warning(json.dumps({"event": "db_lost", "worker": self.worker_id, "error": str(exc)[:300]}))
                self._sleep(delay)
                delay = min(delay * 2, self.config.reconnect_max_s)
        summary = {"event": "stopped", "worker": self.worker_id, "batches": self.batches, **vars(self.totals)}
        log.info(json.dumps(summary))
        return self.totals

    def _run_connected(self) -> bool:
        """The loop on one set of connections; True when the worker is done (drained or stopped)."""
        with self._connect() as conn, self._connect() as listener, self._writer() as writer:
            listener.execute("LISTEN ai_task")
            last_reap = float("-inf")
            while not self.stopping:
                # The reaper runs at each poll: expired leases of dead workers go back to the queue.
                if time.monotonic() - last_reap >= self.config.poll_interval_s:
                    reclaimed = queue.reap_expired(conn)
                    if reclaimed:
                        failed = sum(1 for _, status in reclaimed if status == "failed")
                        log.info(json.dumps({"event": "reaped", "tasks": len(reclaimed), "failed": failed}))
                    last_reap = time.monotonic()
                if self.run_once(conn, writer):
                    continue
                if writer is not None:
                    writer.wait()  # the last batch's write may hold the only due work's fate
                if self.config.drain:
                    if queue.due_count(conn) == 0:
                        return True
                    time.sleep(0.05)  # due but locked by a claim in flight elsewhere: look again shortly
                    continue
                self._wait_for_work(listener)
        return True

    @property
    def pipelined(self) -> bool:
        return self.config.pipeline

    @contextmanager
    def _writer(self) -> Iterator[_Writer | None]:
        if not self.pipelined:
            yield None
            return
        with self._connect() as write_conn:
            writer = _Writer(write_conn)
            try:
                yield writer
            finally:
                writer.close()  # a stop waits here for the batch in hand to be written

    def _wait_for_work(self, listener: psycopg.Connection) -> None:
        # Short slices keep a stop request responsive; a NOTIFY ends the wait at once, the poll bounds a lost one.
        deadline = time.monotonic() + self.config.poll_interval_s
        while not self.stopping and time.monotonic() < deadline:
            timeout = min(0.5, max(deadline - time.monotonic(), 0.0))
            if list(listener.notifies(timeout=timeout, stop_after=1)):  # exhausted: the generator lets go
                # Swallow the burst (one bulk insert NOTIFYs once, many small ones many). Not from inside the loop
                # above: a suspended notifies() generator holds the connection's lock.
                for _ in listener.notifies(timeout=0, stop_after=10_000):
                    pass
                return

    def _sleep(self, seconds: float) -> None:
        """Sleep that a stop request cuts short."""
        deadline = time.monotonic() + seconds
        while not self.stopping and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(0.1, left))

    # -- one batch ----------------------------------------------------------------------------------------
    def run_once(self, conn: psycopg.Connection, writer: _Writer | None = None) -> bool:
        """Claim and process one batch; False when nothing was due.

        With a writer, the batch's write transaction runs on the writer's connection and thread while this one
        claims and embeds the next batch (the model call is the bottleneck; the write hides behind it)."""
        if self.stopping:
            return False
        tasks = queue.claim(conn, self.worker_id, self.config.batch_size, self.config.lease_seconds)
        if not tasks:
            return False
        started = time.perf_counter()
        if self.config.hold_s:
            self._sleep(self.config.hold_s)
        if self.stopping:
            # Stopped while holding the batch and before any work: give it back without spending an attempt.
            released = queue.release(conn, [t.id for t in tasks], self.worker_id)
            log.info(json.dumps({"event": "released", "worker": self.worker_id, "tasks": released}))
            return True
        batch = self.prepare(conn, tasks)
        self.embed(batch)
        if writer is None:
            self._finish(conn, batch, started)
        else:
            writer.submit(lambda wconn: self._finish(wconn, batch, started))
        return True

    def _finish(self, conn: psycopg.Connection, batch: PreparedBatch, started: float) -> None:
        """Record the failures, write the rest (isolating a failing write), log the batch line."""
        outcome = BatchOutcome()
        for task_id, exc in batch.failures.items():
            self._fail(conn, batch.tasks[task_id], exc, outcome)
        self._commit_isolating(conn, batch.without_failures(), outcome)
        elapsed = time.perf_counter() - started
        self.totals.add(outcome)
        self.batches += 1
        log.info(
            json.dumps(
                {
                    "event": "batch",
                    "worker": self.worker_id,
                    "size": len(batch.tasks),
                    **vars(outcome),
                    "ms": round(elapsed * 1000, 1),
                    "rate_per_s": round(len(batch.tasks) / elapsed, 1) if elapsed > 0 else None,
                }
            )
        )

    def _commit_isolating(self, conn: psycopg.Connection, batch: PreparedBatch, out: BatchOutcome) -> None:
        """Write a batch; when the write fails, bisect it so one bad row never fails its neighbours."""
        if not batch.tasks:
            return
        try:
            self.commit(conn, batch, out)
        except Exception as exc:
            if conn.broken or conn.closed:
                raise  # not the tasks' fault: the run loop reconnects, the reaper returns the batch
            ids = list(batch.tasks)
            if len(ids) == 1:
                self._fail(conn, batch.tasks[ids[0]], exc, out)
                return
            mid = len(ids) // 2
            self._commit_isolating(conn, batch.subset(ids[:mid]), out)
            self._commit_isolating(conn, batch.subset(ids[mid:]), out)

    def _fail(self, conn: psycopg.Connection, task: queue.ClaimedTask, exc: BaseException, out: BatchOutcome) -> None:
        cfg = self.config
        delay = queue.backoff_delay(task.attempts + 1, base_s=cfg.backoff_base_s, max_s=cfg.backoff_max_s)
        error = f"{type(exc).__name__}: {exc}"
        status = queue.fail(conn, task, self.worker_id, error, delay)
        out.errors += 1
        log.warning(
            json.dumps(
                {
                    "event": "task_failed",
                    "task": task.id,
                    "attempt": task.attempts + 1,
                    "status": status,
                    "retry_in_s": None if status != "pending" else round(delay, 2),
                    "error": error[:300],
                }
            )
        )

    def _embed(self, texts: list[str]) -> np.ndarray:
        marker = self.config.fail_marker
        if marker and any(marker in t for t in texts):
            raise EmbeddingError(f"text contains the injected fault marker {marker!r}")
        vectors = self.encoder.encode(texts)
        if vectors.shape != (len(texts), self.encoder.dim) or not np.isfinite(vectors).all():
            raise EmbeddingError(f"the encoder returned an unusable array of shape {vectors.shape}")
        return vectors

    def embed(self, batch: PreparedBatch) -> None:
        """One model call for the whole batch; if it fails, bisect so only the texts that fail are failures.

        A single poison text in a batch of n costs about 2·log2(n) extra, ever smaller, model calls."""
        items = list(batch.to_embed.items())

        def attempt(lo: int, hi: int) -> None:
            try:
                vectors = self._embed([text for _, (_, text, _) in items[lo:hi]])
            except Exception as exc:
                if hi - lo == 1:
                    batch.failures[items[lo][0]] = exc
                    return
                mid = (lo + hi) // 2
                attempt(lo, mid)
                attempt(mid, hi)
                return
            for (task_id, _), vector in zip(items[lo:hi], vectors, strict=True):
                batch.vectors[task_id] = vector

        if items:
            attempt(0, len(items))

    def prepare(self, conn: psycopg.Connection, tasks: list[queue.ClaimedTask]) -> PreparedBatch:
        """Read the products, compose their texts; decide which need the model (hash or model changed)."""
        products = queue.load_products(conn, [t.product_id for t in tasks if t.product_id is not None])
        batch = PreparedBatch(tasks={t.id: t for t in tasks})
        for task in tasks:
            product = products.get(task.product_id) if task.product_id else None
            if product is None:
                batch.results[task.id] = "product deleted"
                continue
            text = product_text(product)
            digest = text_hash(text)
            if (
                product["has_vector"]
                and product["ai_text_hash"] == digest
                and product["ai_model"] == self.encoder.model_id
            ):
                batch.results[task.id] = "unchanged"
            else:
                batch.to_embed[task.id] = (product["id"], text, digest)
                batch.results[task.id] = "embedded"
        return batch

    def commit(self, conn: psycopg.Connection, batch: PreparedBatch, out: BatchOutcome) -> None:
        """One transaction: lock the products, re-check their text, finish the tasks we still hold (the fence),
        write the vectors of exactly those. Counters change only once it committed."""
        results = dict(batch.results)
        writes: list[tuple[int, UUID, str]] = []  # task id, product id, text hash
        local = BatchOutcome()
        with conn.transaction():
            # Durability of this commit is not needed for correctness: lost after a server crash, the tasks are
            # simply done again. Not waiting for the WAL flush keeps the write off the embedding's critical path.
            conn.execute("SET LOCAL synchronous_commit = off")
            if batch.to_embed:
                current = queue.lock_products(conn, [pid for pid, _, _ in batch.to_embed.values()])
                for task_id, (pid, _text, digest) in batch.to_embed.items():
                    now = current.get(pid)
                    if now is None:
                        results[task_id] = "product deleted"
                    elif text_hash(product_text(now)) != digest:
                        # Edited while we embedded: the edit's trigger queued a task that embeds the new text.
                        results[task_id] = "superseded"
                    else:
                        writes.append((task_id, pid, digest))
            owned = queue.finish_owned(conn, self.worker_id, results)  # the fence
            writes = [w for w in writes if w[0] in owned]
            if writes:
                queue.write_vectors(
                    conn,
                    [w[1] for w in writes],
                    np.stack([batch.vectors[w[0]] for w in writes]),
                    [w[2] for w in writes],
                    self.encoder.model_id,
                )
        local.lost_lease = len(results) - len(owned)
        local.embedded = len(writes)
        for task_id, result in results.items():
            if task_id not in owned:
                continue
            if result == "unchanged":
                local.unchanged += 1
            elif result == "product deleted":
                local.deleted += 1
            elif result == "superseded":
                local.superseded += 1
        out.add(local)

    def _process(self, conn: psycopg.Connection, tasks: list[queue.ClaimedTask], out: BatchOutcome) -> None:
        """prepare → embed → commit for claimed tasks, synchronously, on one connection."""
        batch = self.prepare(conn, tasks)
        self.embed(batch)
        for task_id, exc in batch.failures.items():
            self._fail(conn, batch.tasks[task_id], exc, out)
        self._commit_isolating(conn, batch.without_failures(), out)


class _Writer:
    """One background thread with its own connection: at most one batch write in flight.

    submit() waits for the previous write first, so a write error (a lost connection) surfaces in the loop
    within one batch, and a stop never leaves more than one batch to finish."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plinqy-writer")
        self._pending: Future[None] | None = None

    def submit(self, job: Callable[[psycopg.Connection], None]) -> None:
        self.wait()
        self._pending = self._pool.submit(job, self.conn)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def run_worker(dsn: str, encoder: Encoder, config: WorkerConfig, on_start: Callable[[str], None] | None = None) -> int:
    worker = Worker(dsn, encoder, config)
    worker.install_signal_handlers()
    if on_start:
        on_start(worker.worker_id)
    totals = worker.run()
    return totals.errors
