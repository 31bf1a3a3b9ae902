"""A receiver's answer the database cannot store as it came (a NUL character): the delivery fails and is retried as
any other, and no other result is lost. The NUL crashed the dispatcher's write of the whole batch, so every
restart sent the batch again and crashed again."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from urllib.parse import quote

import asyncpg
import psycopg
from cryptography.fernet import Fernet

from benchmarks.webhook_receiver import Receiver
from search_service.db.secretbox import SecretBox
from search_service.events import policy, subscriptions
from search_service.events.dispatcher import Dispatcher, _Result
from tests.events_support import BOX, FAST, deliveries, on_conn, seed_listing, seed_product, seed_store

KEY = Fernet.generate_key().decode()
HOSTILE = "boom\x1b[2J\nX\tY\r\x00end"


def _subscribe(dsn: str, store: object, url: str, events: list[str]) -> None:
    box = SecretBox(KEY.encode())
    on_conn(dsn, lambda c: subscriptions.create(c, box, FAST, store, url, events))  # type: ignore[arg-type]


def test_a_nul_in_one_receivers_answer_fails_only_its_delivery(db: psycopg.Connection, fresh_db_url: str) -> None:
    store = seed_store(db)
    with Receiver() as receiver:
        _subscribe(fresh_db_url, store, receiver.url("/ok/a"), ["*"])
        _subscribe(fresh_db_url, store, receiver.url(f"/status/500/b?body={quote(HOSTILE)}"), ["stock.changed"])
        listing = seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
        db.execute("UPDATE store_product SET quantity = 9 WHERE id = %s", (listing,))
        env = {**os.environ, "DATABASE_URL": fresh_db_url, "PLINQY_SECRET_KEY": KEY,
               "PLINQY_WEBHOOK_ALLOW_HOSTS": "127.0.0.1", "PLINQY_WEBHOOK_POLL_S": "0.05",
               "PLINQY_WEBHOOK_RETRY_SCHEDULE": "0,0.1"}  # fmt: skip
        out = subprocess.run([sys.executable, "-m", "search_service", "worker", "--only", "events", "--drain"],
                             env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        got = receiver.snapshot()
    assert out.returncode == 0, out.stderr[-3000:]
    to_a = [r.webhook_id for r in got if r.path == "/ok/a"]
    assert len(to_a) == 3 and len(set(to_a)) == 3  # created, updated, stock.changed: each sent once
    assert len([r for r in got if r.path == "/status/500/b"]) == 2  # the schedule's two attempts
    rows = db.execute(
        "SELECT w.url LIKE '%/ok/a', d.status, d.attempts, d.last_error FROM webhook_delivery d "
        "JOIN store_webhook w ON w.id = d.webhook_id ORDER BY d.id"
    ).fetchall()
    assert sorted(r[:3] for r in rows if r[0]) == [(True, "delivered", 1)] * 3, rows
    [b] = [r for r in rows if not r[0]]
    assert b[1:] == ("failed", 2, "HTTP 500: boom\x1b[2J\nX\tY\r\\x00end"), b  # the CLI escapes the rest as it shows it


def test_a_result_the_database_refuses_is_failed_and_the_others_are_written(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """Whatever else a result may carry that text cannot hold: that delivery fails, saying why; the batch's other
    results are written (they were all kept in hand and the dispatcher crashed, again at each restart)."""
    store = seed_store(db)
    on_conn(fresh_db_url, lambda c: subscriptions.create(c, BOX, FAST, store, "http://127.0.0.1:9/x", ["*"]))
    seed_listing(db, store, seed_product(db, "Oat milk"), "A")
    seed_listing(db, store, seed_product(db, "Soy milk"), "B")
    dispatcher = Dispatcher(fresh_db_url, FAST, BOX)
    db.execute("UPDATE webhook_delivery SET locked_by = %s, locked_until = now() + interval '1 minute', attempts = 1",
               (dispatcher.id,))  # fmt: skip
    ids = [r[0] for r in db.execute("SELECT id, webhook_id FROM webhook_delivery ORDER BY id").fetchall()]
    webhook = db.execute("SELECT id FROM store_webhook").fetchone()[0]
    dispatcher._state.results = [
        _Result(ids[0], webhook, policy.Decision("retrying", 60.0), 500, "HTTP 500: a\x00b"),
        _Result(ids[1], webhook, policy.Decision("delivered"), 204, None),
    ]

    async def flush() -> None:
        conn = await asyncpg.connect(fresh_db_url)
        try:
            await dispatcher._flush(conn)
        finally:
            await conn.close()

    asyncio.run(flush())
    assert dispatcher._state.results == [] and (dispatcher.totals.failed, dispatcher.totals.delivered) == (1, 1)
    rows = db.execute("SELECT status, last_status_code, last_error, locked_by FROM webhook_delivery ORDER BY id")
    refused, fine = rows.fetchall()
    assert refused[:2] == ("failed", 500) and refused[3] is None, refused
    assert refused[2].startswith("its result could not be stored: invalid byte sequence"), refused
    assert fine == ("delivered", 204, None, None)
    assert [r[1] for r in deliveries(db)] == ["failed", "delivered"]
