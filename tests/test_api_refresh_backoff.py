"""The API's refreshers (store places, facet labels, suggestions) while the database refuses connections: they
logged a WARNING every ~2 s each per worker (46 and 44 lines in a 45 s outage with two workers); they back off
now, doubling to a minute, say so on the 1st, 2nd, 4th, 8th... failure, and say once when they refresh again."""

from __future__ import annotations

import asyncio
import logging
import time
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg
import pytest

from search_service.api import refresh, runtime
from search_service.api.log_repeats import RepeatedWarning
from search_service.engine.search import DEFAULT_CONFIG
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
        with caplog.at_level(logging.WARNING, logger="search_service.api"):
            asyncio.run(run())
    finally:
        _allow(admin_url, db, True)
    lines = [r.getMessage() for r in caplog.records if "the store places" in r.getMessage()]
    failed = [line for line in lines if "failed to refresh" in line]
    assert 3 <= len(failed) <= 4, lines  # failures 1, 2, 4 (and 8 on a slow machine) of ~6
    assert "retrying in 0.1 s (failure 1 in a row)" in failed[0] and "failure 4 in a row" in failed[2], failed
    assert len([line for line in lines if "refreshed again after" in line]) == 1, lines
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
