"""The embedding worker: claims ai_task batches, embeds them in one model call, writes fenced on its lease.

Safe with many workers on many hosts (SKIP LOCKED claims, leases, fenced writes) and against SIGKILL (expired
leases are reaped by any worker). Each claim has its own holder (`<worker id>#<n>`, locked_by), which every fence
compares; a heartbeat thread renews the leases of the claims in hand (embeddings/lease.py), and a worker never
reaps its own, so a batch slower than its lease is neither reaped nor charged an attempt.
SIGTERM/SIGINT stop the claiming; the batch in hand is finished (or, when the
stop arrives before its work began, released untouched), then the worker exits.

One batch: claim (one short transaction) → read the products and compose their texts → one model call for the
texts whose hash or model changed → one write transaction that locks the products, re-checks their text, marks
the tasks this worker still holds `done` (the fence) and writes the vectors of exactly those tasks.

Fault injection, for tests and chaos drills only (the CLI reads them from the environment):
- ``PLINQY_WORKER_FAIL_MARKER``: texts containing this marker fail to embed (a poison task).
- ``PLINQY_WORKER_HOLD_S``: sleep this long after each claim while holding the batch (so a test can SIGKILL or
  SIGTERM a worker that holds a lease). The sleep ends early on SIGTERM/SIGINT.

Modules: this one is the loop (connections, LISTEN, reaper, signals, stop); embeddings/batch.py the steps of one
batch; embeddings/writer.py the pipelined write; embeddings/worker_config.py the settings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import psycopg
from pgvector.psycopg import register_vector

from embeddings import queue
from embeddings.batch import BatchOutcome, BatchSteps, EmbeddingError, PreparedBatch, product_text
from embeddings.encoder import Encoder
from embeddings.lease import Claims, Heartbeat
from embeddings.outage import is_database_outage
from embeddings.worker_config import WorkerConfig
from embeddings.writer import BatchWriter

# Re-exported: callers import these from here.
__all__ = [
    "BatchOutcome",
    "EmbeddingError",
    "PreparedBatch",
    "Worker",
    "WorkerConfig",
    "make_worker_id",
    "product_text",
    "run_worker",
]

log = logging.getLogger("plinqy.worker")


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker(BatchSteps):
    def __init__(self, dsn: str, encoder: Encoder, config: WorkerConfig, worker_id: str | None = None) -> None:
        self.dsn = dsn
        self.encoder = encoder
        self.config = config
        self.worker_id = worker_id or make_worker_id()
        self.claims = Claims(self.worker_id)  # each claim's holder, and those in hand (renewed, never self-reaped)
        self.stopping = False
        self.totals = BatchOutcome()
        self.batches = 0
        self._lost_tries = 0  # failed tries in a row to reach the database (db_lost, db_back)
        self._said_backing_off = False  # a drain waiting out a backoff says so once
        self._interrupted: dict[str, list[int]] = {}  # claims an outage cut short: given back once it answers

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
        """Loop until stopped (or, with drain, until nothing is due). Rides out an outage of the database: a lost
        connection, or an error of the database as a whole (embeddings/outage.py), which charges no attempt."""
        while not self.stopping:
            try:
                if self._run_connected():
                    break
            except psycopg.Error as exc:
                if not (isinstance(exc, psycopg.OperationalError) or is_database_outage(exc)):
                    raise
                if self.config.drain:
                    self._give_back_interrupted_on_a_new_connection()
                    raise  # a one-shot drain fails loudly; a long-running worker rides the outage out
                # The claims it cut short are given back untouched once the database answers again.
                self._lost_tries += 1
                if self._lost_tries & (self._lost_tries - 1) == 0:  # the 1st, 2nd, 4th...: a dozen lines an hour
                    error = f"{type(exc).__name__}: {str(exc)[:300]}"
                    log.warning(json.dumps({"event": "db_lost", "worker": self.worker_id, "tries": self._lost_tries,
                                            "error": error}))  # fmt: skip
                cfg = self.config
                self._sleep(min(cfg.reconnect_base_s * 2 ** (self._lost_tries - 1), cfg.reconnect_max_s))
        summary = {"event": "stopped", "worker": self.worker_id, "batches": self.batches, **vars(self.totals)}
        log.info(json.dumps(summary))
        return self.totals

    def _run_connected(self) -> bool:
        """The loop on one set of connections; True when the worker is done (drained or stopped)."""
        heartbeat = Heartbeat(self._connect, self.claims, self.config.lease_seconds)
        with self._connect() as conn, self._connect() as listener, self._writer() as writer, heartbeat:
            self._give_back_interrupted(conn)
            listener.execute("LISTEN ai_task")
            last_reap = float("-inf")
            while not self.stopping:
                # The reaper runs at each poll: expired leases of dead workers go back to the queue.
                if time.monotonic() - last_reap >= self.config.poll_interval_s:
                    reclaimed = queue.reap_expired(conn, keep=self.claims.held())
                    if reclaimed:
                        failed = sum(1 for _, status in reclaimed if status == "failed")
                        self.totals.failed += failed
                        log.info(json.dumps({"event": "reaped", "tasks": len(reclaimed), "failed": failed}))
                    last_reap = time.monotonic()
                if self.run_once(conn, writer):
                    continue
                if writer is not None:
                    writer.wait()  # the last batch's write may hold the only due work's fate
                self._database_answered()
                if self.config.drain:
                    if not self._drain_waits(conn):
                        return True
                    continue
                self._wait_for_work(listener)
        return True

    def _drain_waits(self, conn: psycopg.Connection) -> bool:
        """Whether a drain has work left; waits a while for it: a task's backoff (bounded by the schedule), or a
        lease held elsewhere (reaped above once it lapses, then claimed)."""
        unfinished, next_due_in_s = queue.drain_state(conn, keep=self.claims.held())
        if not unfinished:
            return False
        if next_due_in_s is not None and next_due_in_s > 0 and not self._said_backing_off:
            self._said_backing_off = True
            log.info(json.dumps({"event": "waiting", "worker": self.worker_id, "due_in_s": round(next_due_in_s, 1),
                                 "why": "a failed attempt's backoff: retried when it is over"}))  # fmt: skip
        self._sleep(min(max(next_due_in_s or 0.0, 0.05), self.config.poll_interval_s))
        return True

    def _database_answered(self) -> None:
        if self._lost_tries:  # back after an outage: said once (db_lost said the 1st, 2nd, 4th... try)
            log.info(json.dumps({"event": "db_back", "worker": self.worker_id, "after_tries": self._lost_tries}))
            self._lost_tries = 0

    def _interrupt(self, holder: str, task_ids: list[int], exc: BaseException) -> bool:
        """Keep a claim an outage cut short in hand (its lease renewed, never self-reaped) to give it back."""
        if not task_ids or not is_database_outage(exc):
            return False
        self._interrupted[holder] = task_ids
        return True

    def _give_back_interrupted(self, conn: psycopg.Connection) -> None:
        """The claims an outage cut short go back to the queue untouched: no attempt spent."""
        for holder, task_ids in list(self._interrupted.items()):
            queue.release(conn, task_ids, holder)
            del self._interrupted[holder]
            self.claims.done(holder)

    def _give_back_interrupted_on_a_new_connection(self) -> None:
        if self._interrupted:
            with contextlib.suppress(psycopg.Error), self._connect() as conn:  # else the reaper returns them
                self._give_back_interrupted(conn)

    @property
    def pipelined(self) -> bool:
        return self.config.pipeline

    @contextmanager
    def _writer(self) -> Iterator[BatchWriter | None]:
        if not self.pipelined:
            yield None
            return
        with self._connect() as write_conn:
            writer = BatchWriter(write_conn)
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

    # -- one batch (its steps, prepare → embed → commit: embeddings/batch.py) ------------------------------
    def run_once(self, conn: psycopg.Connection, writer: BatchWriter | None = None) -> bool:
        """Claim and process one batch; False when nothing was due.

        With a writer, the batch's write transaction runs on the writer's connection and thread while this one
        claims and embeds the next batch (the model call is the bottleneck; the write hides behind it)."""
        if self.stopping:
            return False
        holder = self.claims.new()  # in hand (the heartbeat renews it) until written or given back
        handed_to_writer = interrupted = False
        tasks: list[queue.ClaimedTask] = []
        try:
            tasks = queue.claim(conn, holder, self.config.batch_size, self.config.lease_seconds)
            if not tasks:
                return False
            started = time.perf_counter()
            if self.config.hold_s:
                self._sleep(self.config.hold_s)
            if self.stopping:
                # Stopped while holding the batch and before any work: give it back without spending an attempt.
                released = queue.release(conn, [t.id for t in tasks], holder)
                log.info(json.dumps({"event": "released", "worker": self.worker_id, "tasks": released}))
                return True
            batch = self.prepare(conn, tasks)
            self.embed(batch)
            if writer is None:
                self._finish(conn, batch, started)
            else:
                writer.submit(lambda wconn: self._finish_claim(wconn, batch, started, holder))
                handed_to_writer = True
            return True
        except psycopg.Error as exc:  # this batch's, or from submit() the last one's
            interrupted = self._interrupt(holder, [t.id for t in tasks], exc)
            raise
        finally:
            if not handed_to_writer and not interrupted:  # no longer in hand: its lease runs out, it is reaped
                self.claims.done(holder)

    def _finish_claim(self, conn: psycopg.Connection, batch: PreparedBatch, started: float, holder: str) -> None:
        interrupted = False
        try:
            self._finish(conn, batch, started)
        except psycopg.Error as exc:
            interrupted = self._interrupt(holder, list(batch.tasks), exc)
            raise
        finally:
            if not interrupted:
                self.claims.done(holder)


def run_worker(dsn: str, encoder: Encoder, config: WorkerConfig, on_start: Callable[[str], None] | None = None) -> int:
    worker = Worker(dsn, encoder, config)
    worker.install_signal_handlers()
    if on_start:
        on_start(worker.worker_id)
    totals = worker.run()
    return totals.failed
