"""Batch re-embedding of whole catalogues: keyset walk, bulk COPY writes, resumable, with a progress bar.

Resuming: `--missing` and `--stale` select only unfinished products, so a second run continues by construction.
`--all` records its start time in a checkpoint file; a rerun re-embeds only products embedded before that time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from tqdm import tqdm

from embeddings.encoder import Encoder
from embeddings.queue import PRODUCT_KEYS
from embeddings.sqlblocks import load_statements
from embeddings.text import text_hash
from embeddings.worker import product_text

SQL_PATH = Path(__file__).resolve().parent / "sql" / "reembed.sql"
Mode = Literal["missing", "stale", "all"]


class ReembedError(RuntimeError):
    """A one-line, user-facing reason re-embedding cannot run."""


@dataclass
class ReembedReport:
    mode: str
    scanned: int = 0
    written: int = 0
    enqueued: int = 0
    seconds: float = 0.0
    resumed_from: str | None = None

    @property
    def rate(self) -> float:
        return (self.written + self.enqueued) / self.seconds if self.seconds > 0 else 0.0


def _sql(name: str) -> Any:
    return load_statements(SQL_PATH)[name].psycopg


def check_dimension(conn: psycopg.Connection, encoder: Encoder) -> None:
    """Refuse a model whose vectors do not fit product_master.ai_vector (pgvector keeps the dimension as typmod)."""
    row = conn.execute(_sql("column_dimension")).fetchone()
    if row is None:
        raise ReembedError("product_master.ai_vector does not exist: run `plinqy-search migrate` first")
    column_dim = int(row[0])
    if column_dim <= 0:
        raise ReembedError("product_master.ai_vector has no fixed dimension: migrate it to vector(N) first")
    if column_dim != encoder.dim:
        raise ReembedError(
            f"the model {encoder.model_id} makes {encoder.dim}-d vectors but product_master.ai_vector is "
            f"vector({column_dim}): use a {column_dim}-d model (PLINQY_MODEL) or migrate the column first"
        )


class Checkpoint:
    """Start time of an interrupted `--all` run, kept per database so a rerun resumes it."""

    def __init__(self, cache_dir: Path, dsn: str, model_id: str) -> None:
        key = hashlib.sha256(f"{dsn}|{model_id}".encode()).hexdigest()[:16]
        self.path = cache_dir / f"reembed-all-{key}.json"

    def load(self) -> datetime | None:
        try:
            return datetime.fromisoformat(json.loads(self.path.read_text())["started_at"])
        except (OSError, ValueError, KeyError):
            return None

    def save(self, started_at: datetime) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"started_at": started_at.isoformat()}))
        tmp.replace(self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


KEYS = (*PRODUCT_KEYS, "updated_at")  # the worker's product columns, plus the edit guard's timestamp


def _batches(
    conn: psycopg.Connection, mode: Mode, batch_size: int, before: datetime | None
) -> Iterator[list[dict[str, Any]]]:
    """Keyset pages of product_master by id (never OFFSET: every page costs the same)."""
    after: UUID | None = None
    while True:
        rows = conn.execute(
            _sql("next_batch"), {"after": after, "batch_size": batch_size, "mode": mode, "before": before}
        ).fetchall()
        if not rows:
            return
        after = rows[-1][0]
        yield [dict(zip(KEYS, r, strict=True)) for r in rows]


Todo = list[tuple[UUID, str, str, datetime]]  # product id, text, text hash, updated_at as read


def _write_batch(conn: psycopg.Connection, todo: Todo, vectors: np.ndarray, model_id: str) -> int:
    """COPY the batch into the session's staging table, then one UPDATE … FROM: one transaction per batch."""
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy("COPY reembed_staging (id, vec, hash, seen) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["uuid", "vector", "text", "timestamptz"])
            for (pid, _text, digest, seen), vec in zip(todo, vectors, strict=True):
                copy.write_row((pid, vec, digest, seen))
        cur.execute(_sql("apply_staging"), {"model": model_id})
        return cur.rowcount


def reembed(
    dsn: str,
    encoder: Encoder,
    *,
    mode: Mode,
    batch_size: int = 256,
    limit: int | None = None,
    via_queue: bool = False,
    cache_dir: Path,
    progress: bool = True,
) -> ReembedReport:
    """Walk the catalogue and (re-)embed what `mode` selects. Interrupting it (Ctrl-C) is safe at any point: every
    batch is one transaction, and a rerun skips finished work. Batch n is written on a second connection while
    batch n+1 is embedded."""
    report = ReembedReport(mode=mode)
    started = time.perf_counter()
    with (
        psycopg.connect(dsn, autocommit=True, application_name="plinqy-reembed") as conn,
        psycopg.connect(dsn, autocommit=True, application_name="plinqy-reembed-writer") as write_conn,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="plinqy-reembed-writer") as pool,
    ):
        register_vector(conn)
        register_vector(write_conn)
        check_dimension(conn, encoder)
        checkpoint = Checkpoint(cache_dir, dsn, encoder.model_id)
        before: datetime | None = None
        if mode == "all":
            before = checkpoint.load()
            if before is not None:
                report.resumed_from = before.isoformat()
            else:
                before = conn.execute(_sql("server_now")).fetchone()[0]  # type: ignore[index]
                checkpoint.save(before)
        total = int(conn.execute(_sql("count_products"), {"mode": mode, "before": before}).fetchone()[0])  # type: ignore[index]
        if limit is not None:
            total = min(total, limit)
        write_conn.execute(_sql("create_staging"))
        bar = tqdm(total=total, unit="product", desc=f"reembed --{mode}", disable=not progress, smoothing=0.1)
        pending: Future[int] | None = None

        def collect() -> None:
            nonlocal pending
            if pending is not None:
                done, pending = pending, None
                report.written += done.result()

        try:
            for batch in _batches(conn, mode, batch_size, before):
                if limit is not None and report.scanned >= limit:
                    break
                if limit is not None:
                    batch = batch[: limit - report.scanned]
                report.scanned += len(batch)
                todo: Todo = []
                for product in batch:
                    text = product_text(product)
                    digest = text_hash(text)
                    if (
                        mode == "stale"
                        and product["has_vector"]
                        and product["ai_model"] == encoder.model_id
                        and product["ai_text_hash"] == digest
                    ):
                        continue
                    todo.append((product["id"], text, digest, product["updated_at"]))
                if todo and via_queue:
                    with conn.transaction():
                        added = conn.execute(_sql("enqueue"), {"ids": [t[0] for t in todo], "priority": -1}).fetchall()
                        if added:
                            conn.execute(_sql("notify"))
                    report.enqueued += len(added)
                elif todo:
                    vectors = encoder.encode([t[1] for t in todo])
                    collect()  # at most one write in flight
                    pending = pool.submit(_write_batch, write_conn, todo, vectors, encoder.model_id)
                bar.update(len(batch))
                bar.set_postfix(written=report.written, enqueued=report.enqueued, refresh=False)
            collect()
        finally:
            # Ctrl-C included: the batch being written commits (or rolls back) as a whole before we return.
            if pending is not None:
                with contextlib.suppress(Exception):
                    report.written += pending.result()
            bar.close()
            report.seconds = time.perf_counter() - started
        if mode == "all" and (limit is None or report.scanned < limit):
            checkpoint.clear()
    return report
