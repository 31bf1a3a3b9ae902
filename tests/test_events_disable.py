"""A subscription disabled for failing too long (PLINQY_WEBHOOK_DISABLE_AFTER_S) is handled as at a 410: its waiting
deliveries fail at once, so enabling it and running the replay line it prints sends everything it missed, in
order; a delivery failed because its subscription is off counts no attempt that was never made."""

from __future__ import annotations

import asyncio
import json
import shlex
from dataclasses import replace
from datetime import datetime

import asyncpg
import psycopg

from benchmarks.webhook_receiver import Receiver
from search_service.db.secretbox import SecretBox
from search_service.events import policy
from search_service.events.dispatcher import Dispatcher, _Result
from tests.events_support import FAST, seed_listing, seed_product, seed_store
from tests.test_events_cli import KEY, run

BOX = SecretBox(KEY.encode())  # the CLI's key: the subscriptions below are added through it


def _dispatch(dsn: str, **changes: float) -> None:
    asyncio.run(Dispatcher(dsn, replace(FAST, **changes), BOX).run(drain=True))


def _rows(db: psycopg.Connection) -> list[tuple[int, str, int]]:
    return db.execute(
        "SELECT d.sequence, d.status, d.attempts FROM webhook_delivery d "
        "JOIN webhook_event e ON e.id = d.event_id WHERE e.type <> 'webhook.ping' ORDER BY d.id"
    ).fetchall()


def test_disabled_for_failing_too_long_fails_the_waiting_deliveries_so_a_replay_sends_them_all(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    store = seed_store(db)
    with Receiver() as receiver:
        added = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--event", "stock.changed",
                    "--url", receiver.url("/status/503/c?retry_after=100000"))  # fmt: skip
        assert added.exit_code == 0, added.output
        webhook = db.execute("SELECT id FROM store_webhook").fetchone()[0]
        listing = seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
        db.execute("UPDATE store_product SET quantity = 1 WHERE id = %s", (listing,))
        _dispatch(fresh_db_url, disable_after_s=3600.0)
        assert _rows(db) == [(1, "retrying", 1)]  # its next attempt a day away (Retry-After)
        db.execute("UPDATE store_webhook SET failing_since = now() - interval '2 hours'")  # failing that long
        for q in (2, 3, 4):
            db.execute("UPDATE store_product SET quantity = %s WHERE id = %s", (q, listing))
        _dispatch(fresh_db_url, disable_after_s=3600.0)
        assert db.execute("SELECT is_active FROM store_webhook").fetchone() == (False,)
        # the one waiting for its retry failed with the others: none waits a day past the disable
        assert [(seq, status) for seq, status, _ in _rows(db)] == [(n, "failed") for n in range(1, 5)], _rows(db)
        assert _rows(db)[0][2] == 1
        error = db.execute("SELECT last_error FROM webhook_delivery ORDER BY id LIMIT 1").fetchone()[0]
        assert error.startswith("subscription disabled: deliveries failing since"), error
        sent_before = len(receiver.snapshot())
        db.execute("UPDATE store_webhook SET url = %s", (receiver.url("/ok/c"),))  # the receiver is fixed
        enabled = run(fresh_db_url, "webhooks", "enable", str(webhook))
        assert "4 failed deliveries" in enabled.output, enabled.output
        replay = enabled.output.strip().splitlines()[-1].split("plinqy-search ", 1)[1]
        assert run(fresh_db_url, *shlex.split(replay)).exit_code == 0
        _dispatch(fresh_db_url)
        got = [json.loads(r.body)["data"]["sequence"] for r in receiver.snapshot()[sent_before:]]
    assert sorted(got) == [1, 2, 3, 4], got  # nothing missed: no gap at the receiver
    assert [status for _, status, _ in _rows(db)] == ["delivered"] * 4


def test_a_disabled_subscriptions_delivery_fails_without_counting_an_attempt(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """One queued after the disable (a fan-out racing it) or left locked through it: the claim counted an attempt
    and set last_attempt_at and the write cleared the last answer's code, though no request was made."""
    store = seed_store(db)
    with Receiver() as receiver:
        added = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", receiver.url("/ok/off"))
        assert added.exit_code == 0, added.output
        seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
        tried = datetime.fromisoformat("2026-12-01T10:00:00+00:00")
        db.execute("UPDATE webhook_delivery SET status = 'retrying', attempts = 2, last_status_code = 503, "
                   "first_attempt_at = %s, last_attempt_at = %s", (tried, tried))  # fmt: skip
        db.execute("UPDATE store_webhook SET is_active = false, disabled_reason = 'the receiver answered 410 Gone'")
        _dispatch(fresh_db_url)
        assert receiver.snapshot() == []
    row = db.execute(
        "SELECT status, attempts, last_status_code, first_attempt_at, last_attempt_at, last_error FROM webhook_delivery"
    ).fetchone()
    assert row == ("failed", 2, 503, tried, tried, "subscription disabled: the receiver answered 410 Gone"), row


def test_a_send_in_flight_through_the_disable_is_not_left_waiting_for_a_retry(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """A send still in flight when its subscription was disabled: its result was written `retrying`, a day away,
    after the disable had failed the waiting ones, and enable's replay line did not send it."""
    store = seed_store(db)
    assert run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", "http://127.0.0.1:9/x").exit_code == 0
    seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
    dispatcher = Dispatcher(fresh_db_url, FAST, BOX)
    db.execute("UPDATE webhook_delivery SET locked_by = %s, locked_until = now() + interval '1 minute', attempts = 1",
               (dispatcher.id,))  # fmt: skip
    db.execute("UPDATE store_webhook SET is_active = false, disabled_reason = 'deliveries failing since then'")
    delivery, webhook = db.execute("SELECT id, webhook_id FROM webhook_delivery").fetchone()
    dispatcher._state.results = [_Result(delivery, webhook, policy.Decision("retrying", 86400.0), 503, "HTTP 503: x")]

    async def flush() -> None:
        conn = await asyncpg.connect(fresh_db_url)
        try:
            await dispatcher._flush(conn)
        finally:
            await conn.close()

    asyncio.run(flush())
    row = db.execute("SELECT status, attempts, last_status_code, last_error, locked_by FROM webhook_delivery")
    assert row.fetchone() == ("failed", 1, 503, "HTTP 503: x", None)
