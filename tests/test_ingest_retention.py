"""`imports prune` as an operator runs it: old finished batches of every source go with their raw rows and
delivery records; unfinished and recent ones stay; the listings they wrote, their history and stock events stay."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from tests.ingest_helpers import (
    bearer,
    drain_imports,
    ingest_settings,
    new_store,
    serve,
    signed,
    store_key,
    webhook_connection,
)
from tests.test_ingest_cli import PROJECT_ROOT, cli

OLD = "now() - interval '40 days'"


def _count(conn: psycopg.Connection, sql: str, *params: object) -> int:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


def _counts(conn: psycopg.Connection) -> tuple[int, ...]:
    tables = ("import_batch", "imported_product_raw", "ingest_delivery", "store_product", "history_store_product",
              "inventory_event")  # fmt: skip
    return tuple(_count(conn, f"SELECT count(*) FROM {t}") for t in tables)


def test_imports_prune_deletes_old_finished_batches_and_deliveries(fresh_db_url: str, tmp_path: Path) -> None:
    settings = ingest_settings(fresh_db_url, tmp_path)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn, serve(settings, None) as base:
        store, other = new_store(conn), new_store(conn)
        key = store_key(conn, store, "listings:write")
        connection, secret = webhook_connection(conn, settings, store)

        def put(sku: str, quantity: int) -> str:
            body = {"name": "Oat drink", "price": "2.49", "quantity": quantity}
            written = httpx.put(f"{base}/v1/stores/{store}/listings/{sku}", json=body, headers=bearer(key))
            assert written.status_code in (200, 202), written.text
            return str(conn.execute("SELECT id FROM import_batch ORDER BY seq DESC LIMIT 1").fetchone()[0])  # type: ignore[index]

        def deliver(msg_id: str) -> httpx.Response:
            body = json.dumps({"type": "stock.set", "data": {"sku": "A", "quantity": 4}}).encode()
            return httpx.post(f"{base}/v1/ingest/{connection}", content=body, headers=signed(secret, body, msg_id))

        old_write = put("A", 5)
        imported = cli(fresh_db_url, "import", "csv", str(PROJECT_ROOT / "examples" / "products.csv"),
                       "--store", str(store))  # fmt: skip
        assert imported.returncode == 0, imported.stderr
        assert deliver("msg_old").status_code == 202
        drain_imports(fresh_db_url)
        conn.execute(f"UPDATE import_batch SET finished_at = {OLD}, created_at = {OLD}")
        conn.execute(f"UPDATE ingest_delivery SET received_at = {OLD}")
        insert = (
            "INSERT INTO import_batch (store_id, source, status, created_at, finished_at)"
            " VALUES (%s, 'csv', %s, %s, %s)"
        )
        long_ago = datetime.now(UTC) - timedelta(days=40)
        conn.execute(insert, (other, "failed", long_ago, long_ago))
        recent_write = put("A", 7)
        assert deliver("msg_recent").status_code == 202
        drain_imports(fresh_db_url)
        for status in ("pending", "receiving"):  # unfinished, however old: kept (after the drain: it maps pending)
            conn.execute(insert, (other, status, long_ago, None))
        old_raw = _count(conn, f"SELECT count(*) FROM imported_product_raw r JOIN import_batch b "
                         f"ON b.id = r.import_batch_id WHERE b.finished_at < {OLD} + interval '1 day'")  # fmt: skip
        before = _counts(conn)

        dry = cli(fresh_db_url, "imports", "prune", "--older-than", "30d", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert f"would delete 4 finished batch(es) with {old_raw} raw row(s), 1 delivery record(s)" in dry.stdout
        assert _counts(conn) == before

        pruned = cli(fresh_db_url, "imports", "prune", "--older-than", "30d")
        assert pruned.returncode == 0, pruned.stderr
        assert f"deleted 4 finished batch(es) with {old_raw} raw row(s), 1 delivery record(s)" in pruned.stdout
        statuses = conn.execute("SELECT status FROM import_batch ORDER BY seq").fetchall()
        assert statuses == [("completed",), ("completed",), ("pending",), ("receiving",)]
        after = _counts(conn)
        assert after[1] == before[1] - old_raw and after[2] == 1 and after[3:] == before[3:]  # listings untouched
        gone = httpx.get(f"{base}/v1/imports/{old_write}", headers=bearer(key))
        assert gone.status_code == 404 and "imports prune" in gone.json()["error"]["message"], gone.text
        assert httpx.get(f"{base}/v1/imports/{recent_write}", headers=bearer(key)).status_code == 200

        # Every finished batch now; the recent delivery record stays (a replay is caught within the tolerance).
        assert cli(fresh_db_url, "imports", "prune", "--older-than", "0s").returncode == 0
        assert conn.execute("SELECT status FROM import_batch ORDER BY seq").fetchall() == [("pending",), ("receiving",)]
        replay = deliver("msg_recent")  # its batch pruned: a null batch_id alone said nothing of why
        assert replay.status_code == 200, replay.text
        assert replay.json() == {"batch_id": None, "duplicate": True, "batch_pruned": True}, replay.text
        # The listing's history and stock events keep working after its batches went.
        put("A", 9)
        drain_imports(fresh_db_url)
        final = _counts(conn)
        assert final[4] > after[4] and final[5] > after[5]
        assert conn.execute("SELECT quantity FROM store_product WHERE store_id = %s AND sku = 'A'",
                            (store,)).fetchone() == (9,)  # fmt: skip
        assert uuid.UUID(recent_write)
