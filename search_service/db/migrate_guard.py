"""`migrate` on a live database: one run at a time, and who held the lock a migration gave up waiting for.

The wait itself is bounded by lock_timeout, which migrations/env.py sets on alembic's connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, NamedTuple

import psycopg

from search_service.db.sql import statement

WATCH_INTERVAL_S = 0.2


class LockWait(NamedTuple):
    """A lock the migrating backend waits for, and the first session in its way (pg_stat_activity's words)."""

    waited_for: str  # a table, or the kind of lock (transactionid: a row another transaction wrote)
    mode: str
    pid: int
    application_name: str
    state: str
    query: str


@contextmanager
def migrate_lock(dsn: str, on_wait: Callable[[str], None] | None) -> Iterator[psycopg.Connection[Any]]:
    """Hold the database's migrate lock (waiting, and saying so, while another run holds it); yields its
    connection, idle otherwise, which the lock watch borrows."""
    with psycopg.connect(dsn, autocommit=True, application_name="plinqy-search migrate lock") as conn:
        row = conn.execute(statement("db/migrate", "try_migrate_lock").psycopg).fetchone()
        if row is None or not row[0]:
            if on_wait is not None:
                on_wait("another `plinqy-search migrate` is running on this database: waiting for it to finish")
            conn.execute(statement("db/migrate", "wait_migrate_lock").psycopg)
        yield conn


class LockWatch:
    """On a thread of its own, what the migrating backend (its pid in `attributes`, set by migrations/env.py)
    waits for, polled while the migration runs; `last` is the latest wait seen."""

    def __init__(self, conn: psycopg.Connection[Any], attributes: MutableMapping[str, Any]) -> None:
        self.conn = conn
        self.attributes = attributes
        self.last: LockWait | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="migrate-lock-watch", daemon=True)

    def __enter__(self) -> LockWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        query = statement("db/migrate", "lock_wait").psycopg
        while not self._stop.wait(WATCH_INTERVAL_S):
            pid = self.attributes.get("backend_pid")
            if pid is None:
                continue
            try:
                row = self.conn.execute(query, {"pid": pid}).fetchone()
            except psycopg.Error:  # the report loses its detail; the migration goes on
                return
            if row is not None:
                self.last = LockWait(*row)


def lock_timeout_advice(wait: LockWait | None, timeout_s: float, before: str | None, after: str | None) -> str:
    """The one line `migrate` ends with when a lock was not granted within its lock timeout."""
    if wait is None:
        what = f"a migration waited over {timeout_s:g} s for a lock another session holds (see pg_locks)"
        advice = "retry when that session ends, or stop it"
    else:
        what = (
            f"a migration waited over {timeout_s:g} s for a lock on {wait.waited_for} ({wait.mode}) held by "
            f"session pid {wait.pid} (application_name '{wait.application_name}', state '{wait.state}', "
            f"query '{wait.query}')"
        )
        advice = f"retry when that session ends, or stop it (SELECT pg_terminate_backend({wait.pid}))"
    at = f"revision {after}" if after else "no revision (no migration applied)"
    if after == before:
        stands = f"nothing of this run was applied (its migrations are one transaction): the database is still at {at}"
    else:
        stands = f"the database is now at {at}"
    return f"{what}: {stands}; {advice} and run migrate again (--lock-timeout waits longer)"
