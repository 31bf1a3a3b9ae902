"""Batch re-embedding of whole catalogues: keyset walk, bulk COPY writes, resumable, with a progress bar.

Resuming: `--missing` and `--stale` select only unfinished products, so a second run continues by construction.
`--all` records its start time in a checkpoint file (one per database, model and `--via-queue` or not); a rerun
re-embeds only products embedded before that time, and says so (`on_resume`); `restart` drops the checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator
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

from embeddings.batch import is_current, product_text
from embeddings.encoder import Encoder
from embeddings.queue import PRODUCT_KEYS
from embeddings.sqlblocks import load_statements
from embeddings.text import text_hash

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
    selected: int = 0  # products found to need a vector (what --limit counts)
    no_vector: int = 0  # of those, texts with no token the model knows: written without one (not with --via-queue)
    seconds: float = 0.0
    resumed_from: datetime | None = None  # the start of the interrupted or limited `--all` run this one goes on
    left: int = 0  # the products the mode selected as the run began (resumed: not re-embedded since that start)

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


def database_identity(conn: psycopg.Connection) -> str:
    """The database as the server names it (cluster and oid), however the URL spells it (`localhost`, options).
    A role denied pg_control_system() gets the address and port the connection reached, and the database name."""
    try:
        return str(conn.execute(_sql("database_identity")).fetchone()[0])  # type: ignore[index]
    except psycopg.errors.InsufficientPrivilege:
        return f"{conn.info.hostaddr or conn.info.host}:{conn.info.port}/{conn.info.dbname}"


class Checkpoint:
    """Start time of an interrupted `--all` run, kept per database, model, and `--via-queue` or not: a run that only
    queued tasks does not scope one that embeds here."""

    def __init__(self, cache_dir: Path, database: str, model_id: str, *, via_queue: bool) -> None:
        how = "queue" if via_queue else "here"
        key = hashlib.sha256(f"{database}|{model_id}|{how}".encode()).hexdigest()[:16]
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


KEYS = (*PRODUCT_KEYS, "updated_at", "ai_embedded_at")  # the worker's product columns, plus the edit guard's stamps


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


# product id, text, text hash, updated_at and ai_embedded_at as read, whether the model knows a token of the text
Todo = list[tuple[UUID, str, str, datetime, datetime | None, bool]]


def _write_batch(conn: psycopg.Connection, todo: Todo, vectors: list[np.ndarray | None], model_id: str) -> int:
    """COPY the batch into the session's staging table, then one UPDATE … FROM: one transaction per batch."""
    with conn.transaction(), conn.cursor() as cur:
        columns = "id, vec, hash, seen, seen_embedded"
        with cur.copy(f"COPY reembed_staging ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["uuid", "vector", "text", "timestamptz", "timestamptz"])
            for (pid, _text, digest, seen, seen_embedded, _known), vec in zip(todo, vectors, strict=True):
                copy.write_row((pid, vec, digest, seen, seen_embedded))
        cur.execute(_sql("apply_staging"), {"model": model_id})
        return cur.rowcount


def _prepare(
    conn: psycopg.Connection, write_conn: psycopg.Connection, encoder: Encoder, cache_dir: Path, via_queue: bool
) -> Checkpoint:
    """Both connections ready for vectors, the model's dimension checked, the staging table made; the checkpoint
    an `--all` run keeps."""
    register_vector(conn)
    register_vector(write_conn)
    check_dimension(conn, encoder)
    write_conn.execute(_sql("create_staging"))
    return Checkpoint(cache_dir, database_identity(conn), encoder.model_id, via_queue=via_queue)


def _resume_point(
    conn: psycopg.Connection, mode: Mode, checkpoint: Checkpoint, report: ReembedReport, restart: bool
) -> datetime | None:
    """`--all` re-embeds what was updated before its start: an interrupted run's start (unless `restart`), else the
    server's now."""
    if mode != "all":
        return None
    before = None if restart else checkpoint.load()
    if before is not None:
        report.resumed_from = before
    else:
        before = conn.execute(_sql("server_now")).fetchone()[0]  # type: ignore[index]
        checkpoint.save(before)
    return before


def _total(conn: psycopg.Connection, mode: Mode, before: datetime | None, limit: int | None) -> tuple[int, int]:
    """The products to walk, and the progress bar's total: as many, or the limit (`stale` cannot tell which need
    work before it reads them)."""
    total = int(conn.execute(_sql("count_products"), {"mode": mode, "before": before}).fetchone()[0])  # type: ignore[index]
    return total, total if limit is None or mode == "stale" else min(total, limit)


def _selected(
    batches: Iterator[list[dict[str, Any]]], mode: Mode, encoder: Encoder, limit: int | None, report: ReembedReport,
    via_queue: bool,
) -> Iterator[tuple[list[dict[str, Any]], Todo]]:  # fmt: skip
    """Each batch with its products that need a vector, until `limit` of them were handled: re-embedded, or newly
    queued (with --via-queue a product already queued does not count). Counting the products read instead, a
    rerun of `--stale --limit N` read the same first N, current ones, and never got further."""
    for batch in batches:
        handled = report.enqueued if via_queue else report.selected
        if limit is not None and handled >= limit:
            return
        todo, read = _todo(batch, mode, encoder), len(batch)
        if limit is not None and len(todo) > limit - handled:  # read as far as the last product taken
            todo = todo[: limit - handled]
            read = 1 + next((i for i, p in enumerate(batch) if todo and p["id"] == todo[-1][0]), -1)
        report.scanned += read
        report.selected += len(todo)
        yield batch, todo


def _todo(batch: list[dict[str, Any]], mode: Mode, encoder: Encoder) -> Todo:
    """The products of a batch that need a vector, or no vector (a text with no token the model knows). `stale`
    and `missing` skip those whose text and model are current; every mode skips a text already written without a
    vector by this model (as `is_current` says): read again, it would get none again, and a rerun of `--limit N`
    would take the same N each time."""
    todo: Todo = []
    texts = [product_text(product) for product in batch]
    for product, text, known in zip(batch, texts, encoder.has_known_token(texts), strict=True):
        digest = text_hash(text)
        if is_current(product, digest, known, encoder.model_id) and (mode != "all" or not known):
            continue
        todo.append((product["id"], text, digest, product["updated_at"], product["ai_embedded_at"], known))
    return todo


def _vectors(encoder: Encoder, todo: Todo) -> list[np.ndarray | None]:
    """The vectors of the texts the model knows a token of; None for the others (written without a vector)."""
    known = [i for i, item in enumerate(todo) if item[5]]
    vectors: list[np.ndarray | None] = [None] * len(todo)
    for i, vector in zip(known, encoder.encode([todo[i][1] for i in known]), strict=True):
        vectors[i] = vector
    return vectors


def _enqueue(conn: psycopg.Connection, todo: Todo, mode: Mode) -> int:
    kind = "reembed_product" if mode == "all" else "embed_product"  # --all: embedded even when current
    with conn.transaction():
        params = {"ids": [t[0] for t in todo], "priority": -1, "kind": kind}
        added = conn.execute(_sql("enqueue"), params).fetchall()
        if added:
            conn.execute(_sql("notify"))
    return len(added)


class _OneWrite:
    """At most one batch write in flight, on the writer connection and thread."""

    def __init__(self, pool: ThreadPoolExecutor, conn: psycopg.Connection) -> None:
        self.pool = pool
        self.conn = conn
        self.pending: Future[int] | None = None

    def collect(self) -> int:
        """Rows written by the write in flight (waits for it); 0 when none."""
        if self.pending is None:
            return 0
        done, self.pending = self.pending, None
        return done.result()

    def submit(self, todo: Todo, vectors: list[np.ndarray | None], model_id: str) -> int:
        """Wait for the previous write (its rows are returned), then start this one."""
        written = self.collect()
        self.pending = self.pool.submit(_write_batch, self.conn, todo, vectors, model_id)
        return written

    def settle(self) -> int:
        """On the way out (Ctrl-C included): the batch being written commits (or rolls back) as a whole."""
        if self.pending is not None:
            with contextlib.suppress(Exception):
                return self.pending.result()
        return 0


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
    restart: bool = False,
    on_resume: Callable[[ReembedReport], None] | None = None,
) -> ReembedReport:
    """Walk the catalogue and (re-)embed what `mode` selects. Interrupting it (Ctrl-C) is safe at any point: every
    batch is one transaction, and a rerun skips finished work (`--all`: `on_resume` is told, before the walk;
    `restart` starts it over). Batch n is written on a second connection while batch n+1 is embedded."""
    report = ReembedReport(mode=mode)
    started = time.perf_counter()
    with (
        psycopg.connect(dsn, autocommit=True, application_name="plinqy-reembed") as conn,
        psycopg.connect(dsn, autocommit=True, application_name="plinqy-reembed-writer") as write_conn,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="plinqy-reembed-writer") as pool,
    ):
        checkpoint = _prepare(conn, write_conn, encoder, cache_dir, via_queue)
        before = _resume_point(conn, mode, checkpoint, report, restart)
        report.left, total = _total(conn, mode, before, limit)
        if report.resumed_from is not None and on_resume is not None:
            on_resume(report)
        bar = tqdm(total=total, unit=" products", desc=f"reembed --{mode}", disable=not progress, smoothing=0.1)
        writes = _OneWrite(pool, write_conn)
        try:
            walk = _batches(conn, mode, batch_size, before)
            for _batch, todo in _selected(walk, mode, encoder, limit, report, via_queue):
                if todo and via_queue:
                    report.enqueued += _enqueue(conn, todo, mode)
                elif todo:
                    vectors = _vectors(encoder, todo)
                    report.no_vector += sum(1 for v in vectors if v is None)
                    report.written += writes.submit(todo, vectors, encoder.model_id)
                bar.update(report.scanned - bar.n)  # the products read: with --limit, part of the last batch
                bar.set_postfix(written=report.written, enqueued=report.enqueued, refresh=False)
            report.written += writes.collect()
        finally:
            report.written += writes.settle()
            bar.set_postfix(written=report.written, enqueued=report.enqueued, refresh=False)  # the last write's too
            bar.close()
            report.seconds = time.perf_counter() - started
        if mode == "all" and (limit is None or report.selected < limit):  # walked to the end
            checkpoint.clear()
    return report
