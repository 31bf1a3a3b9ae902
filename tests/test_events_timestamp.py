"""A delivery's `timestamp` is its event's time (the statement that made the change), the same instant as its
`data.occurred_at`, and `replay --since` compares that time: real PostgreSQL, a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg

from benchmarks.webhook_receiver import Receiver
from search_service.events import subscriptions
from tests.events_support import dispatch, on_conn, seed_product, seed_store, subscribe


def _received(receiver: Receiver, marker: str) -> list[dict[str, Any]]:
    bodies = [json.loads(r.body) for r in receiver.snapshot() if marker in r.path]
    return sorted(bodies, key=lambda b: b["data"]["sequence"])


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_timestamp_is_the_events_time_not_its_transactions_start(db: psycopg.Connection, fresh_db_url: str) -> None:
    """It was the transaction's start (now()): 70 ms before occurred_at on a PUT, one time for all the events of an
    import, a long sync's start for all of its events; and `replay --since` a received time missed its event."""
    store = seed_store(db)
    product = seed_product(db, "Tap washer set")
    with Receiver() as receiver:
        subscribe(fresh_db_url, store, receiver.url("/ok/stamp"), ["*"])
        with db.transaction():  # one write's transaction: a statement after others, then one more
            db.execute("SELECT pg_sleep(0.05)")
            db.execute(
                "INSERT INTO store_product (store_id, product_master_id, sku, price, currency, quantity) "
                "VALUES (%s, %s, 'TW-12', 2.49, 'EUR', 1)",
                (store, product),
            )
            db.execute("SELECT pg_sleep(0.05)")
            db.execute("UPDATE store_product SET quantity = 0 WHERE sku = 'TW-12'")
        assert dispatch(fresh_db_url).delivered == 4
        bodies = _received(receiver, "/ok/stamp")
    assert [b["type"] for b in bodies] == ["listing.created", "listing.updated", "stock.changed", "stock.out"]
    for body in bodies:
        assert _time(body["timestamp"]) == _time(body["data"]["occurred_at"]), body
    created, sold_out = _time(bodies[0]["timestamp"]), _time(bodies[3]["timestamp"])
    assert (sold_out - created).total_seconds() >= 0.05  # two statements, two times
    # the events from the time a receiver saw on: the update's three, not the insert before it
    since = _time(bodies[1]["timestamp"])
    again = on_conn(fresh_db_url, lambda c: subscriptions.replay(c, store_id=store, since=since))
    assert again == 3
