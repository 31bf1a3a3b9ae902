"""The worker's jobs ride out a lost database: the sync job's connection terminated (pg_terminate_backend), and a
database that refuses new connections (ALLOW_CONNECTIONS false) for a while; each logs db_lost and goes on."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import asyncpg
import psycopg
import pytest

from search_service.events.dispatcher import Dispatcher
from search_service.ingest.config import IngestConfig
from search_service.ingest.worker import ImportWorker, ImportWorkerOptions
from tests.connector_helpers import SECRET_KEY
from tests.events_support import BOX, FAST

pytestmark = pytest.mark.slow
SYNC_BACKENDS = "SELECT pid FROM pg_stat_activity WHERE application_name = 'plinqy-sync' AND datname = %s"


def _sync_pids(admin: psycopg.Connection, dbname: str) -> set[int]:
    return {row[0] for row in admin.execute(SYNC_BACKENDS, (dbname,)).fetchall()}


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_the_sync_job_reconnects_in_place_after_pg_terminate_backend(pg_admin_url: str, fresh_db_url: str) -> None:
    """The job died with an AdminShutdown traceback and the supervisor restarted it a second later."""
    dbname = fresh_db_url.rsplit("/", 1)[1]
    env = {**os.environ, "DATABASE_URL": fresh_db_url, "PLINQY_SECRET_KEY": SECRET_KEY, "PLINQY_SYNC_CHECK_S": "0.1"}
    proc = subprocess.Popen([sys.executable, "-m", "search_service", "worker", "--only", "sync"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            _wait_for(lambda: bool(_sync_pids(admin, dbname)), 60, "the sync job never connected")
            first = _sync_pids(admin, dbname)
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", (list(first),))
            _wait_for(lambda: bool(_sync_pids(admin, dbname) - first), 10, "the sync job did not reconnect")
            time.sleep(0.5)  # still polling on the new connection
            assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert err.count('"event": "db_lost"') == 1, err[-2000:]
    assert re.search(r' WARNING \[\d+\] plinqy\.sync: \{"event": "db_lost"', err), err[-2000:]  # the level, to grep for
    assert "job sync exited" not in err and "Traceback" not in err, err[-2000:]


async def _through_a_refusal(admin_url: str, dbname: str, run: Awaitable[object], stop: Callable[[], None]) -> None:
    """The database refuses connections as the job starts, then accepts them again: the job must be still running
    and connect. Stops the job then."""
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        task = asyncio.ensure_future(run)
        await asyncio.sleep(1.0)
        assert not task.done(), task.exception() if task.done() else None
        await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        for _ in range(200):  # the pause before a reconnect has doubled to 0.8 s at most
            if await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", dbname):
                break
            assert not task.done(), task.exception() if task.done() else None
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the job never connected after the refusal")
        stop()
        await asyncio.wait_for(task, 30)
    finally:
        await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        await admin.close()


@pytest.mark.parametrize("job", ["events", "import"])
def test_a_database_refusing_connections_is_waited_out(
    job: str, pg_admin_url: str, fresh_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """ObjectNotInPrerequisiteState at connect was no lost connection: the job crashed with a traceback. The job
    says so on its 1st, 2nd, 4th... try (a line a try: ~6 a minute a job for an outage's whole length) and, once
    back, says that once (it never did)."""
    caplog.set_level(logging.INFO)
    dbname = fresh_db_url.rsplit("/", 1)[1]
    if job == "events":
        dispatcher = Dispatcher(fresh_db_url, FAST, BOX)
        asyncio.run(_through_a_refusal(pg_admin_url, dbname, dispatcher.run(), dispatcher.request_stop))
    else:

        async def main() -> None:
            worker = ImportWorker(fresh_db_url, IngestConfig(), ImportWorkerOptions(poll_interval_s=0.2))
            await _through_a_refusal(pg_admin_url, dbname, worker.run(), worker.stop.set)

        asyncio.run(main())
    lost = [json.loads(r.getMessage()) for r in caplog.records if '"db_lost"' in r.getMessage()]
    assert lost and all("not currently accepting connections" in m["error"] for m in lost), caplog.text
    back = [json.loads(r.getMessage()) for r in caplog.records if '"db_back"' in r.getMessage()]
    assert len(back) == 1 and back[0]["after_tries"] >= 2, caplog.text  # a second at 0.2, 0.4... s
    assert [m["tries"] for m in lost] == [n for n in (1, 2, 4, 8, 16) if n <= back[0]["after_tries"]], caplog.text
