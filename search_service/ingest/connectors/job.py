"""The worker's `sync` job: polls every enabled POS connection that is due, one at a time per vendor account.

Due: never synced, asked for by a webhook, or `PLINQY_SYNC_INTERVAL_S` passed since the last success; after a
failure, an exponential backoff from `PLINQY_SYNC_RETRY_BASE_S` (and any wait the vendor asked for). A session
advisory lock per vendor account keeps two worker processes off one account (its rate limit is shared). A failing
connection is recorded and skipped; nothing a vendor does ends the job. A lost database connection (a restart,
`pg_terminate_backend`, a database refusing connections) is re-opened in place (`db_lost` logged; after 0.2 s, the
pause doubling up to 10 s while the server stays away); a `--drain` fails with the error.
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

from search_service.db.faults import Outage
from search_service.db.secretbox import SecretBox
from search_service.ingest.connectors.config import ConnectorsConfig
from search_service.ingest.connectors.factory import SOURCES
from search_service.ingest.connectors.sync import (
    ConnectionChanged,
    Recorder,
    SyncFailed,
    UnknownConnection,
    _sql,
    load_spec,
    record_failure,
    record_rows,
    reread_spec,
    sync_connection,
)

log = logging.getLogger("plinqy.sync")
RECONNECT_FIRST_S, RECONNECT_MAX_S = 0.2, 10.0  # the pause before re-opening a lost connection, doubling


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
        result = sync_connection(conn, reread_spec(conn, box, spec), recorder, policy=config.policy(), stop=stop)
        report.synced += 1
        counts = (result.read, result.rows, result.seconds)
        if result.interrupted:  # stopped (SIGTERM): it said `synced`, though the pass was cut (before a byte, maybe)
            log.info(
                "sync of connection %s stopped, to resume from its cursor: %d read, %d rows in %.1fs", spec.id, *counts
            )
        else:
            log.info("synced connection %s: %d read, %d rows in %.1fs", spec.id, *counts)
    except ConnectionChanged as exc:  # disabled or updated meanwhile: not a failure of the connection as it is
        log.info("%s", exc)
    except SyncFailed as exc:
        report.failed += 1
        report.failures.append(f"{spec.id}: {exc}")
    except Exception as exc:  # a bug must not end the job: record it on the connection and go on
        if conn.closed:  # the connection died, not the sync: the loop re-opens it
            raise
        log.exception("sync of connection %s crashed", spec.id)
        record_failure(conn, spec.id, f"internal error: {type(exc).__name__}: {exc}")
        report.failed += 1
    finally:
        if not conn.closed:  # a lost connection took its session lock with it
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
    report, attempted = JobReport(), set[UUID]()
    delay, outage = RECONNECT_FIRST_S, Outage(log, job="sync")
    while not stop.is_set():
        conn: psycopg.Connection[Any] | None = None
        try:
            with psycopg.connect(dsn, autocommit=True, application_name="plinqy-sync") as conn:
                delay = RECONNECT_FIRST_S  # the pause grows while the server stays away, not over the job's life
                outage.connected()
                _poll(conn, box, config, recorder, report, attempted, drain, stop)
            break
        except psycopg.OperationalError as exc:
            # Lost: refused at connect, or the connection is gone. A statement's error on a live one is a real one.
            if drain or (conn is not None and not conn.broken):
                raise
            outage.lost(exc)
            stop.wait(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)
    return report


def _poll(
    conn: Any,
    box: SecretBox,
    config: ConnectorsConfig,
    recorder: Recorder,
    report: JobReport,
    attempted: set[UUID],
    drain: bool,
    stop: threading.Event,
) -> None:
    params = {"interval_s": config.sync_interval_s, "retry_base_s": config.retry_base_s, "sources": list(SOURCES)}
    while not stop.is_set():
        due = [row[0] for row in conn.execute(_sql("due_connections"), params).fetchall()]
        if drain:
            due = [cid for cid in due if cid not in attempted]
            if not due:
                return
        for connection_id in due:
            if stop.is_set():
                return
            attempted.add(connection_id)
            sync_once(conn, box, connection_id, config, recorder, report, stop)
        if not drain:
            stop.wait(config.check_s)
