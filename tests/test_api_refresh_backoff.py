"""The API's refreshers (store places, facet labels, suggestions) while the database refuses connections: they
logged a WARNING every ~2 s each per worker (46 and 44 lines in a 45 s outage with two workers); they back off
now, doubling to a minute, say so on the 1st, 2nd, 4th, 8th... failure, and say once when they refresh again."""

from __future__ import annotations

import asyncio
import logging
import time
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from search_service.api import refresh
from search_service.engine.search import DEFAULT_CONFIG
from search_service.settings import Settings


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
