"""Removing a webhook subscription while the store writes: the write never fails, and has no delivery for it."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx
import psycopg

from tests.events_support import subscribe
from tests.ingest_helpers import bearer, new_store, store_key


def _wait_for_lock_waiter(conn: psycopg.Connection, deadline_s: float = 10.0) -> None:
    """Until a backend of this database waits on a lock (the write, blocked by the open delete)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
        if row is not None and row[0] > 0:
            return
        time.sleep(0.05)
    raise AssertionError("the write never waited for the delete")


def _during_delete(db_url: str, webhook_id: object, write: Callable[[], httpx.Response]) -> httpx.Response:
    """`write` sent while the subscription's DELETE is open (not committed), answered after it commits."""
    with psycopg.connect(db_url, autocommit=True) as watcher, psycopg.connect(db_url) as remover:
        assert remover.execute("DELETE FROM store_webhook WHERE id = %s", (webhook_id,)).rowcount == 1
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(write)
            _wait_for_lock_waiter(watcher)
            remover.commit()
            return answer.result(timeout=30)


def test_a_write_while_its_subscription_is_removed_succeeds_without_a_delivery_for_it(base: str, db_url: str) -> None:
    """The fan-out read the subscription, then wrote its counter and delivery: a DELETE committed in between broke
    the foreign key and the PATCH answered 500, its quantity unchanged."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = new_store(conn)
        key = store_key(conn, store, "listings:write")
    url = f"{base}/v1/stores/{store}/listings/{quote('R-1', safe='')}"
    body = {"name": "Rope", "price": "3.00", "quantity": 5}
    assert httpx.put(url, json=body, headers=bearer(key)).status_code == 200
    going = subscribe(db_url, store, "http://127.0.0.1:9/going").subscription["id"]
    staying = subscribe(db_url, store, "http://127.0.0.1:9/staying").subscription["id"]
    patched = _during_delete(db_url, going, lambda: httpx.patch(url, json={"quantity": 2}, headers=bearer(key)))
    assert patched.status_code == 200, patched.text
    assert patched.json()["listing"]["quantity"] == 2
    batch = {"items": [{"sku": "R-1", **body, "quantity": 0}]}
    batch_url = f"{base}/v1/stores/{store}/listings/batch"
    gone = subscribe(db_url, store, "http://127.0.0.1:9/gone").subscription["id"]
    batched = _during_delete(db_url, gone, lambda: httpx.post(batch_url, json=batch, headers=bearer(key)))
    assert batched.status_code == 200, batched.text
    with psycopg.connect(db_url) as conn:
        level = conn.execute("SELECT quantity FROM store_product WHERE store_id = %s", (store,)).fetchone()
        assert level == (0,)
        failed = conn.execute(
            "SELECT count(*) FROM import_batch WHERE store_id = %s AND status <> 'completed'", (store,)
        ).fetchone()
        assert failed == (0,)
        delivered = conn.execute(
            "SELECT DISTINCT d.webhook_id FROM webhook_delivery d JOIN webhook_event e ON e.id = d.event_id "
            "WHERE e.store_id = %s AND e.type = 'stock.out'",
            (store,),
        ).fetchall()
    assert delivered == [(staying,)]  # the removed ones got none
