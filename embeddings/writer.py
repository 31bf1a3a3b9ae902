"""The pipelined write: batch n is written on its own connection and thread while batch n+1 is embedded."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg


class BatchWriter:
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
