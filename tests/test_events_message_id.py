"""One event to two subscriptions is two messages, each with its own webhook-id (migration 0042): they shared
`msg_<event id>`, so a receiver (or a dedupe store) serving both dropped the second as a duplicate."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import psycopg
from standardwebhooks import Webhook

from benchmarks.webhook_receiver import Receiver
from search_service.db import migrate
from tests.events_support import FAST, dispatch, seed_listing, seed_product, seed_store, subscribe


def test_each_subscription_of_an_event_gets_its_own_webhook_id_kept_across_retries(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    store = seed_store(db)
    with Receiver() as receiver:
        a = subscribe(fresh_db_url, store, receiver.url("/flaky/1/a"), ["listing.created"])
        b = subscribe(fresh_db_url, store, receiver.url("/ok/b"), ["listing.created"])
        seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
        dispatch(fresh_db_url, replace(FAST, retry_schedule=(0.0, 0.1)))
        got = receiver.snapshot()
    to_a = [r for r in got if r.path == "/flaky/1/a"]
    [to_b] = [r for r in got if r.path == "/ok/b"]
    assert len(to_a) == 2 and to_a[0].webhook_id == to_a[1].webhook_id  # a retry keeps its id
    assert to_a[0].webhook_id != to_b.webhook_id
    event = db.execute("SELECT id FROM webhook_event").fetchone()[0]
    for sub, request in ((a, to_a[1]), (b, to_b)):
        assert request.webhook_id == f"msg_{event}_{sub.subscription['id'].hex}"
        assert Webhook(sub.secret).verify(request.body, request.headers)["data"]["webhook_id"] == str(
            sub.subscription["id"]
        )
    stored = db.execute("SELECT message_id FROM webhook_delivery ORDER BY id").fetchall()
    assert sorted(m for (m,) in stored) == sorted([to_a[0].webhook_id, to_b.webhook_id])
    assert [json.loads(r.body)["data"]["sequence"] for r in (to_a[0], to_b)] == [1, 1]


def test_a_delivery_queued_before_the_migration_keeps_its_webhook_id(make_database: Callable[..., str]) -> None:
    """Its retries and replays must carry the id the receiver may have seen already."""
    url = make_database()
    migrate.downgrade(url, "0041")
    with psycopg.connect(url, autocommit=True) as conn:
        store = seed_store(conn)
        sub = subscribe(url, store, "http://127.0.0.1:9/x", ["listing.created"])
        seed_listing(conn, store, seed_product(conn, "Oat milk"), "A")
        old_event = conn.execute("SELECT id FROM webhook_event").fetchone()[0]
        migrate.upgrade(url)
        seed_listing(conn, store, seed_product(conn, "Soy milk"), "B")
        new_event = conn.execute("SELECT max(id) FROM webhook_event").fetchone()[0]
        ids = conn.execute("SELECT message_id FROM webhook_delivery ORDER BY id").fetchall()
    assert ids == [(f"msg_{old_event}",), (f"msg_{new_event}_{sub.subscription['id'].hex}",)]
