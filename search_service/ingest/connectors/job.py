"""The worker's `sync` job: polls every enabled POS connection that is due, one at a time per vendor account.

Due: never synced, asked for by a webhook, or `PLINQY_SYNC_INTERVAL_S` passed since the last success; after a
failure, an exponential backoff from `PLINQY_SYNC_RETRY_BASE_S` (and any wait the vendor asked for). A session
advisory lock per vendor account keeps two worker processes off one account (its rate limit is shared). A failing
connection is recorded and skipped; nothing a vendor does ends the job.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg

from search_service.db.secretbox import SecretBox
from search_service.ingest.connectors.config import ConnectorsConfig
from search_service.ingest.connectors.factory import SOURCES
from search_service.ingest.connectors.sync import (
    Recorder,
    SyncFailed,
    UnknownConnection,
    _sql,
    load_spec,
    record_failure,
    record_rows,
    sync_connection,
)

log = logging.getLogger("plinqy.sync")


@dataclass
class JobReport:
    synced: int = 0
    failed: int = 0
    skipped_locked: int = 0
    failures: list[str] = field(default_factory=list)


@contextlib.contextmanager
def account_locked(conn: Any, account: str, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the vendor account's sync lock (the one `sync_once` tries), waiting for it when another sync has it."""
    if not conn.execute(_sql("try_account_lock"), {"account_key": account}).fetchone()[0]:
        if on_wait is not None:
            on_wait()
        conn.execute(_sql("account_lock"), {"account_key": account})
    try:
        yield
    finally:
        conn.execute(_sql("account_unlock"), {"account_key": account})


def sync_once(
    conn: Any,
    box: SecretBox,
    connection_id: UUID,
    config: ConnectorsConfig,
    recorder: Recorder,
    report: JobReport,
    stop: threading.Event | None = None,
) -> None:
    """One due connection: lock its account, sync, record; never raises for a vendor's or a data problem."""
    try:
        spec = load_spec(conn, box, connection_id)
    except UnknownConnection:
        return
    except Exception as exc:  # undecryptable credentials and the like: recorded, not fatal
        record_failure(conn, connection_id, f"{type(exc).__name__}: {exc}")
        report.failed += 1
        return
    if not conn.execute(_sql("try_account_lock"), {"account_key": spec.account}).fetchone()[0]:
        report.skipped_locked += 1
        return
    try:
        result = sync_connection(conn, spec, recorder, policy=config.policy(), stop=stop)
        report.synced += 1
        log.info("synced connection %s: %d read, %d rows in %.1fs", spec.id, result.read, result.rows, result.seconds)
    except SyncFailed as exc:
        report.failed += 1
        report.failures.append(f"{spec.id}: {exc}")
    except Exception as exc:  # a bug must not end the job: record it on the connection and go on
        log.exception("sync of connection %s crashed", spec.id)
        record_failure(conn, spec.id, f"internal error: {type(exc).__name__}: {exc}")
        report.failed += 1
    finally:
        conn.execute(_sql("account_unlock"), {"account_key": spec.account})


def run_sync_loop(
    dsn: str,
    box: SecretBox,
    config: ConnectorsConfig,
    *,
    drain: bool = False,
    stop: threading.Event | None = None,
    recorder: Recorder = record_rows,
) -> JobReport:
    """Poll due connections until stopped; with `drain`, sync each due connection once and return."""
    stop = stop or threading.Event()
    report, attempted = JobReport(), set()
    params = {"interval_s": config.sync_interval_s, "retry_base_s": config.retry_base_s, "sources": list(SOURCES)}
    with psycopg.connect(dsn, autocommit=True, application_name="plinqy-sync") as conn:
        while not stop.is_set():
            due = [row[0] for row in conn.execute(_sql("due_connections"), params).fetchall()]
            if drain:
                due = [cid for cid in due if cid not in attempted]
                if not due:
                    break
            for connection_id in due:
                if stop.is_set():
                    break
                attempted.add(connection_id)
                sync_once(conn, box, connection_id, config, recorder, report, stop)
            if not drain:
                stop.wait(config.check_s)
    return report
