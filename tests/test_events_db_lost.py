"""The dispatcher while its database connections are terminated (pg_terminate_backend) with sends in flight: it
reconnects, writes the results it holds on the new connection, and nothing is sent twice."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import replace

import asyncpg
import psycopg
import pytest

from benchmarks.webhook_receiver import Receiver
from search_service.events.dispatcher import Dispatcher
from tests.events_support import BOX, FAST, seed_store, subscribe

pytestmark = pytest.mark.slow
DELIVERIES = 3000
# The dispatcher's backends (the probe that found these ended every backend of the database, the test's own too).
DISPATCHERS = "FROM pg_stat_activity WHERE application_name LIKE 'plinqy-events%'"
TERMINATE = f"SELECT count(pg_terminate_backend(pid)) {DISPATCHERS}"
CONNECTED = f"SELECT count(*) {DISPATCHERS}"


def seed_listings(conn: psycopg.Connection, store: object, count: int) -> None:
    """`count` listings in one statement: a listing.created delivery each."""
    conn.execute(
        "WITH p AS (INSERT INTO product_master (name) SELECT 'Item ' || g FROM generate_series(1, %s) g "
        "RETURNING id, name) "
        "INSERT INTO store_product (store_id, product_master_id, sku, price, currency, quantity) "
        "SELECT %s, id, 'sku-' || name, 2.5, 'EUR', 3 FROM p",
        (count, store),
    )


async def _delivered(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM webhook_delivery WHERE status = 'delivered'"))


async def _terminate_while_sending(
    dsn: str, dispatcher: Dispatcher, running: asyncio.Task[object], terminations: int
) -> int:
    """While deliveries are in flight, terminate the dispatcher's backends each time it has connected again, then
    wait for the rest to be delivered. Returns the terminations that hit a backend."""
    hit = 0
    watcher = await asyncpg.connect(dsn)
    try:
        while await _delivered(watcher) < 50 and not running.done():
            await asyncio.sleep(0.01)
        while hit < terminations and await _delivered(watcher) < DELIVERIES and not running.done():
            while not await watcher.fetchval(CONNECTED) and not running.done():  # terminated again once back
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)
            hit += 1 if await watcher.fetchval(TERMINATE) else 0
        for _ in range(600):
            if await _delivered(watcher) == DELIVERIES or running.done():
                break
            await asyncio.sleep(0.05)
    finally:
        dispatcher.request_stop()
        await watcher.close()
    return hit


def test_connections_terminated_mid_sending_are_reopened_and_nothing_is_sent_twice(
    db: psycopg.Connection, fresh_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Terminated again and again: each time the results in hand are written on the new connection (fenced on
    the same lease), and the pause before reconnecting starts small again once connected."""
    caplog.set_level(logging.WARNING, logger="plinqy.events")
    with Receiver() as receiver:
        store = seed_store(db)
        subscribe(fresh_db_url, store, receiver.url("/slow/0.02/dblost"), ["listing.created"])
        seed_listings(db, store, DELIVERIES)
        dispatcher = Dispatcher(fresh_db_url, replace(FAST, lease_s=60.0, poll_interval_s=0.05), BOX)

        async def main() -> int:
            running = asyncio.create_task(dispatcher.run())
            hit = await _terminate_while_sending(fresh_db_url, dispatcher, running, terminations=12)
            await running
            return hit

        started = time.monotonic()
        hit = asyncio.run(main())
        took = time.monotonic() - started
        sent = Counter(r.webhook_id for r in receiver.snapshot())
    assert hit == 12
    assert took < 25, took  # each reconnect within a second: the pause once doubled for good (10 s each)
    statuses = dict(db.execute("SELECT status, count(*) FROM webhook_delivery GROUP BY status").fetchall())
    assert statuses == {"delivered": DELIVERIES}
    assert len(sent) == DELIVERIES and max(sent.values()) == 1, sent.most_common(3)
    assert dispatcher.totals.delivered + dispatcher.totals.lost_lease == DELIVERIES  # a reply lost after commit
    assert "db_lost" in caplog.text


def test_a_connection_terminated_while_idle_does_not_crash_the_dispatcher(
    db: psycopg.Connection, fresh_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's FATAL on an idle connection leaves asyncpg mid-error until it reads the socket's end; a query
    sent in between raised InternalClientError ('cannot switch to state 12; another operation (2) is in
    progress'), which was no lost connection to the dispatcher: it crashed (its worker child died, its results in
    hand lost). Made certain here: the loop is held while the backend ends, and the dispatcher woken at once."""
    caplog.set_level(logging.WARNING, logger="plinqy.events")
    with Receiver() as receiver:
        store = seed_store(db)
        subscribe(fresh_db_url, store, receiver.url("/ok/idle"), ["listing.created"])
        dispatcher = Dispatcher(fresh_db_url, replace(FAST, poll_interval_s=5.0), BOX)

        async def main() -> None:
            running = asyncio.create_task(dispatcher.run())
            while not db.execute(CONNECTED).fetchone()[0]:  # type: ignore[index]
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # idle, listening
            assert db.execute(TERMINATE).fetchone() == (1,)
            time.sleep(0.3)  # the loop held: the FATAL and the socket's end both arrive meanwhile
            dispatcher._wake.set()  # what a finishing send or a NOTIFY does
            await asyncio.sleep(0.5)
            assert not running.done(), running.exception()
            seed_listings(db, store, 3)  # delivered on the new connection
            for _ in range(200):
                if len(receiver.snapshot()) == 3:
                    break
                await asyncio.sleep(0.05)
            dispatcher.request_stop()
            await running

        asyncio.run(main())
        sent = Counter(r.webhook_id for r in receiver.snapshot())
    assert len(sent) == 3 and max(sent.values()) == 1
    assert "db_lost" in caplog.text
