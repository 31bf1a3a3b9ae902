"""One claimed batch: read and compose the texts, one model call (bisected on failure), one fenced write.

`BatchSteps` is the per-batch half of the `Worker` (embeddings/worker.py): it needs the worker's encoder, config,
id and counters, and nothing of its loop, connections or signals.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import numpy as np
import psycopg

from embeddings import queue
from embeddings.encoder import Encoder
from embeddings.outage import is_database_outage
from embeddings.text import compose_text, text_hash
from embeddings.worker_config import WorkerConfig

log = logging.getLogger("plinqy.worker")
NO_KNOWN_TOKEN = "no token the model knows"  # the task's result when its text gets no vector


@dataclass
class BatchOutcome:
    embedded: int = 0
    unchanged: int = 0
    deleted: int = 0
    superseded: int = 0
    requeued: int = 0  # edited while embedded and no task of the edit's: back to the queue for the new text
    lost_lease: int = 0
    errors: int = 0
    failed: int = 0  # of the errors, tasks that ended `failed` (their last attempt)
    no_vector: int = 0  # text the model reads as [UNK] only: written without a vector (NO_KNOWN_TOKEN)

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
    no_vector: set[int] = field(default_factory=set)  # tasks of to_embed whose text the model knows no word of

    def subset(self, task_ids: Iterable[int]) -> PreparedBatch:
        keep = set(task_ids)
        return PreparedBatch(
            tasks={k: v for k, v in self.tasks.items() if k in keep},
            results={k: v for k, v in self.results.items() if k in keep},
            to_embed={k: v for k, v in self.to_embed.items() if k in keep},
            vectors={k: v for k, v in self.vectors.items() if k in keep},
            failures={k: v for k, v in self.failures.items() if k in keep},
            no_vector=self.no_vector & keep,
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


def is_current(product: dict[str, Any], digest: str, known: bool, model_id: str) -> bool:
    """Whether what is stored is this text's embedding by this model: its vector, or none for a text the model
    knows no token of (written so with the text's hash, it is not read again until the text or the model changes)."""
    return product["ai_text_hash"] == digest and product["ai_model"] == model_id and product["has_vector"] == known


class EmbeddingError(RuntimeError):
    pass


class BatchSteps:
    """prepare → embed → commit of one batch, with failure isolation; mixed into `Worker`."""

    encoder: Encoder
    config: WorkerConfig
    worker_id: str
    totals: BatchOutcome
    batches: int

    def _finish(self, conn: psycopg.Connection, batch: PreparedBatch, started: float) -> None:
        """Record the failures, write the rest (isolating a failing write), log the batch line."""
        outcome = BatchOutcome()
        for task_id, exc in batch.failures.items():
            self._fail(conn, batch.tasks[task_id], exc, outcome)
        self._commit_isolating(conn, batch.without_failures(), outcome)
        self._database_answered()
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

    def _database_answered(self) -> None:
        """A batch was written or nothing was due: an outage, if any, is over (the worker says so once)."""

    def _commit_isolating(self, conn: psycopg.Connection, batch: PreparedBatch, out: BatchOutcome) -> None:
        """Write a batch; when the write fails, bisect it so one bad row never fails its neighbours."""
        if not batch.tasks:
            return
        try:
            self.commit(conn, batch, out)
        except Exception as exc:
            if conn.broken or conn.closed or is_database_outage(exc):
                raise  # not the tasks' fault: the run loop pauses, then gives the batch back untouched
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
        status = queue.fail(conn, task, task.holder, error, delay)
        out.errors += 1
        out.failed += status == "failed"
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
        items = [item for item in batch.to_embed.items() if item[0] not in batch.no_vector]

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
        """Read the products, compose their texts; decide which need the model (hash or model changed), and which
        get no vector (no token the model knows)."""
        products = queue.load_products(conn, [t.product_id for t in tasks if t.product_id is not None])
        batch = PreparedBatch(tasks={t.id: t for t in tasks})
        live = [(t, products[t.product_id]) for t in tasks if t.product_id is not None and t.product_id in products]
        texts = [product_text(product) for _, product in live]
        for (task, product), text, known in zip(live, texts, self.encoder.has_known_token(texts), strict=True):
            digest = text_hash(text)
            if not task.force and is_current(product, digest, known, self.encoder.model_id):
                batch.results[task.id] = "unchanged"
                continue
            batch.to_embed[task.id] = (product["id"], text, digest)
            batch.results[task.id] = "embedded" if known else NO_KNOWN_TOKEN
            if not known:  # no vector: it would sit next to every other such text's (docs/engine.md)
                batch.no_vector.add(task.id)
        for task in tasks:
            batch.results.setdefault(task.id, "product deleted")
        return batch

    def commit(self, conn: psycopg.Connection, batch: PreparedBatch, out: BatchOutcome) -> None:
        """One transaction: lock the products, re-check their text, finish the tasks we still hold (the fence),
        write the vectors of exactly those. Counters change only once it committed."""
        results = dict(batch.results)
        writes: list[tuple[int, UUID, str]] = []  # task id, product id, text hash
        changed: list[int] = []  # tasks whose product was edited while we embedded
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
                        # Edited while we embedded: back to the queue for the new text, or done when the edit
                        # queued a task of its own (an edit while this task was still pending queued none).
                        changed.append(task_id)
                        del results[task_id]
                    else:
                        writes.append((task_id, pid, digest))
            holder = next(iter(batch.tasks.values())).holder  # one claim per batch
            owned = queue.finish_owned(conn, holder, results)  # the fence
            requeued = queue.requeue_changed(conn, changed, holder) if changed else {}
            writes = [w for w in writes if w[0] in owned and w[0] not in batch.no_vector]
            blanks = [t for t in owned if results.get(t) == NO_KNOWN_TOKEN]  # not deleted, not edited meanwhile
            self._write(conn, batch, writes, blanks)
        local.lost_lease = len(results) - len(owned) + len(changed) - len(requeued)
        local.superseded = sum(1 for status in requeued.values() if status == "done")  # the others: queued again
        local.requeued = len(requeued) - local.superseded
        local.embedded = len(writes)
        local.no_vector = len(blanks)
        for task_id, result in results.items():
            if task_id not in owned:
                continue
            if result == "unchanged":
                local.unchanged += 1
            elif result == "product deleted":
                local.deleted += 1
        out.add(local)

    def _write(
        self, conn: psycopg.Connection, batch: PreparedBatch, writes: list[tuple[int, UUID, str]], blanks: list[int]
    ) -> None:
        """The vectors of `writes`, and no vector (with the text's hash and the model) for the `blanks`."""
        model_id = self.encoder.model_id
        if writes:
            vectors = np.stack([batch.vectors[w[0]] for w in writes])
            queue.write_vectors(conn, [w[1] for w in writes], vectors, [w[2] for w in writes], model_id)
        if blanks:
            queue.write_no_vectors(
                conn, [batch.to_embed[t][0] for t in blanks], [batch.to_embed[t][2] for t in blanks], model_id
            )
        if writes or blanks:
            task_ids = [w[0] for w in writes] + blanks
            queue.close_failed_of(conn, task_ids, [batch.to_embed[t][0] for t in task_ids])

    def _process(self, conn: psycopg.Connection, tasks: list[queue.ClaimedTask], out: BatchOutcome) -> None:
        """prepare → embed → commit for claimed tasks, synchronously, on one connection."""
        batch = self.prepare(conn, tasks)
        self.embed(batch)
        for task_id, exc in batch.failures.items():
            self._fail(conn, batch.tasks[task_id], exc, out)
        self._commit_isolating(conn, batch.without_failures(), out)
