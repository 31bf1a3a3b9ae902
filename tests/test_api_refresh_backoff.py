"""The API's refreshers (store places, facet labels, suggestions) while the database refuses connections: they
logged a WARNING every ~2 s each per worker (46 and 44 lines in a 45 s outage with two workers); they back off
now, doubling to a minute, say so on the 1st, 2nd, 4th, 8th... failure, and say once when they refresh again."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx
import psycopg
import pytest

from search_service.api import refresh, runtime
from search_service.api.log_repeats import RepeatedWarning
from search_service.db.cluster import free_port
from search_service.engine.search import DEFAULT_CONFIG
from search_service.engine.vector_files import VectorCopyConfig
from search_service.settings import Settings
from tests.ingest_helpers import serve
from tests.test_api import app_settings


def _allow(admin_url: str, db: str, allowed: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS {str(allowed).lower()}')


def test_a_refresher_backs_off_while_the_database_refuses_and_says_when_it_is_back(
    fresh_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = fresh_db_url.rsplit("/", 1)[1]
    admin_url = fresh_db_url.rsplit("/", 1)[0] + "/postgres"
    settings = Settings.from_env({"DATABASE_URL": fresh_db_url, "PLINQY_VECTOR_CACHE_REFRESH_S": "0.05"})
    rt: Any = SimpleNamespace(settings=settings, engine_config=DEFAULT_CONFIG, pool=object())
    refreshed: list[float] = []

    async def note(conn: Any) -> bool:
        refreshed.append(time.monotonic())
        return len(refreshed) < 2

    async def run() -> None:
        task = asyncio.create_task(refresh.keep_fresh(rt, "the store places", note, lambda: bool(refreshed), 0.1))
        await asyncio.sleep(4.0)  # refused: tries after 0.1, 0.2, 0.4, 0.8, 1.6 s of pause (it tried every 0.15 s)
        _allow(admin_url, db, True)
        await asyncio.wait_for(task, timeout=15)

    _allow(admin_url, db, False)
    try:
        with caplog.at_level(logging.INFO, logger="search_service.api"):
            asyncio.run(run())
    finally:
        _allow(admin_url, db, True)
    lines = [r.getMessage() for r in caplog.records if "the store places" in r.getMessage()]
    failed = [line for line in lines if "failed to refresh" in line]
    assert 3 <= len(failed) <= 4, lines  # failures 1, 2, 4 (and 8 on a slow machine) of ~6
    assert "retrying in 0.1 s (failure 1 in a row)" in failed[0] and "failure 4 in a row" in failed[2], failed
    back = [r for r in caplog.records if "the store places" in r.getMessage() and "refreshed again" in r.getMessage()]
    assert [r.levelname for r in back] == ["INFO"], lines  # a recovery is no warning (the worker's db_back: INFO)
    assert len(refreshed) == 2


def test_requests_while_the_database_refuses_log_one_warning_a_minute(
    fresh_db_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """Each request that needed a new connection logged `cannot connect to the database (…)`: 200 lines a second at
    200 requests a second. One line now, the others held back and counted in the next a minute later."""
    db = fresh_db_url.rsplit("/", 1)[1]
    admin_url = fresh_db_url.rsplit("/", 1)[0] + "/postgres"
    runtime.unreachable_log = RepeatedWarning(logging.getLogger("search_service.api"))  # this process's first
    with serve(app_settings(fresh_db_url), None) as base:  # the app configures logging: to stderr
        _allow(admin_url, db, False)
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:  # the pool's connections: new ones are refused
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,))
            answers = [httpx.get(f"{base}/v1/categories", timeout=30).status_code for _ in range(20)]
        finally:
            _allow(admin_url, db, True)
    assert answers.count(503) >= 15, answers
    lines = [line for line in capfd.readouterr().err.splitlines() if "cannot connect to the database" in line]
    assert len(lines) == 1 and "ObjectNotInPrerequisiteStateError" in lines[0], lines


def test_the_vector_copy_blames_the_database_not_the_directory_when_the_database_is_away(
    fresh_db_url: str, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """During an outage the copy said `failed to load (ConnectionRefusedError: …): check
    PLINQY_VECTOR_SHARED_DIR=… (a writable directory)`: a refused connection is an OSError, taken for the
    directory's, and only a refresh had failed (the loaded copy was still served)."""
    db = fresh_db_url.rsplit("/", 1)[1]
    admin_url = fresh_db_url.rsplit("/", 1)[0] + "/postgres"
    shared = VectorCopyConfig(shared_dir=tmp_path / "shared")
    settings = dataclasses.replace(app_settings(fresh_db_url), vector_copy=shared, vector_cache_refresh_s=0.1)
    with serve(settings, None):
        _allow(admin_url, db, False)
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:  # the copy's own connection too
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,))
            deadline = time.monotonic() + 20
            while "vector copy failed" not in (err := capfd.readouterr().err):
                assert time.monotonic() < deadline, "no failed refresh logged"
                time.sleep(0.2)
        finally:
            _allow(admin_url, db, True)
    [line] = [line for line in err.splitlines() if "vector copy failed" in line][:1]
    assert "the in-memory vector copy failed to refresh: cannot reach the database (" in line, line
    assert "PLINQY_VECTOR_SHARED_DIR" not in line, line

    async def refused() -> Exception:  # nothing listens there: ConnectionRefusedError
        try:
            await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/x", timeout=5)
        except Exception as exc:
            return exc
        raise AssertionError("connected")

    said = refresh._vectors_failure(settings, False, asyncio.run(refused()))
    assert said.startswith("the in-memory vector copy failed to load: cannot reach the database (Connection"), said
    assert "PLINQY_VECTOR_SHARED_DIR" not in said
    said = refresh._vectors_failure(settings, True, PermissionError(13, "Permission denied"))
    assert said.endswith(f"check PLINQY_VECTOR_SHARED_DIR={shared.shared_dir} (a writable directory)"), said


def test_the_vector_copy_backs_off_and_says_when_it_is_back(
    fresh_db_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """The copy's loop had its own retry: a WARNING at every retry and no line once the database was back (the
    other refreshers back off, warn on the 1st, 2nd, 4th... failure and say once that they refreshed again)."""
    db = fresh_db_url.rsplit("/", 1)[1]
    admin_url = fresh_db_url.rsplit("/", 1)[0] + "/postgres"
    settings = dataclasses.replace(app_settings(fresh_db_url), vector_cache_refresh_s=0.1)
    with serve(settings, None):
        _allow(admin_url, db, False)
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:  # the copy's own connection too
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,))
            time.sleep(5)  # failures after pauses of 1, 2 s: the 3rd is not logged
        finally:
            _allow(admin_url, db, True)
        deadline, err = time.monotonic() + 30, ""
        while "the in-memory vector copy refreshed again" not in err:
            assert time.monotonic() < deadline, err[-3000:]
            time.sleep(0.2)
            err += capfd.readouterr().err
    failed = [line for line in err.splitlines() if "vector copy failed" in line]
    [back] = [line for line in err.splitlines() if "vector copy refreshed again" in line]
    in_a_row = re.search(r"after (\d+) failures in a row", back)
    assert " INFO " in back and in_a_row is not None and int(in_a_row.group(1)) >= 2, back  # 3 on an idle machine
    # warned on the 1st, 2nd, 4th... failure only, the first saying its pause
    warned = [n for n in range(1, int(in_a_row.group(1)) + 1) if n & (n - 1) == 0]
    assert len(failed) == len(warned) and "retrying in 1.0 s (failure 1 in a row)" in failed[0], failed


def test_a_stop_that_surfaces_as_another_error_still_stops_the_refresher(fresh_db_url: str) -> None:
    """`serve` stopped right after its start hung on SIGTERM: the runtime cancelled its refreshers, the vector
    copy's load was inside a transaction, the rollback raised asyncpg's `another operation is in progress` in place
    of the cancel, and the refresher took it for a failed load, retried and refreshed on; the stop awaited it for
    ever."""
    settings = Settings.from_env({"DATABASE_URL": fresh_db_url, "PLINQY_VECTOR_CACHE_REFRESH_S": "0.05"})
    rt: Any = SimpleNamespace(settings=settings, engine_config=DEFAULT_CONFIG, pool=object())
    loading = asyncio.Event()
    loads: list[int] = []

    async def load(conn: Any) -> bool:
        loads.append(1)
        loading.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError as cancelled:
            if len(loads) > 1:  # only the first: a refresher that lives on must still end the test
                raise
            # as asyncpg's rollback of a cancelled transaction answers
            raise asyncpg.InternalClientError("cannot switch to state 15; another operation is in progress") from (
                cancelled
            )
        return True

    async def run() -> None:
        task = asyncio.create_task(refresh.keep_fresh(rt, "the vector copy", load, lambda: False, 0.1))
        await asyncio.wait_for(loading.wait(), timeout=10)
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        stopped = task.done()
        task.cancel()  # a refresher that lived on: the second load lets this cancel through
        await asyncio.wait({task}, timeout=5)
        assert stopped and task.cancelled() and len(loads) == 1, loads

    asyncio.run(run())
