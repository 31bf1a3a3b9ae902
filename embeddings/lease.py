"""The worker's heartbeat: renews the leases of the claims it has in hand while their model call and write run.

Without it a batch that outlasted its lease was reaped while still being worked on (by another worker, or by its
own at its next poll), claimed again and embedded twice, each reap costing an attempt toward the dead letter. A
lease now runs out only when its worker stops renewing it: dead, or stuck for a whole lease.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

import psycopg

from embeddings import queue

log = logging.getLogger("plinqy.worker")


class Claims:
    """The holders (claim ids) a worker has in hand: claimed, not yet finished or released."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self._count = 0
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def new(self) -> str:
        """The next claim's holder: the worker's id and the claim's number, so fences tell claims apart."""
        with self._lock:
            self._count += 1
            holder = f"{self.worker_id}#{self._count}"
            self._held.add(holder)
            return holder

    def done(self, holder: str) -> None:
        with self._lock:
            self._held.discard(holder)

    def held(self) -> list[str]:
        with self._lock:
            return sorted(self._held)


class Heartbeat:
    """A thread with a connection of its own renewing the leases in hand every third of a lease."""

    def __init__(self, connect: Callable[[], psycopg.Connection], claims: Claims, lease_seconds: float) -> None:
        self._connect = connect
        self._claims = claims
        self._lease_s = lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="plinqy-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        try:
            while not self._stop.wait(self._lease_s / 3):
                holders = self._claims.held()
                if not holders:
                    continue
                try:
                    if conn is None or conn.closed:
                        conn = self._connect()
                    queue.renew_leases(conn, holders, self._lease_s)
                except psycopg.Error as exc:  # the next beat reconnects; the worker's loop sees an outage too
                    log.warning(json.dumps({"event": "heartbeat_failed", "error": str(exc)[:300]}))
                    if conn is not None:
                        conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()
