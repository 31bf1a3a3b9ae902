"""Shared pieces of the connector end-to-end tests: stores, connections, the import and embed steps, deliveries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import asyncpg
import psycopg

from embeddings.encoder import Encoder
from embeddings.worker import Worker, WorkerConfig
from search_service.db.secretbox import SecretBox
from search_service.ingest import pipeline
from search_service.ingest.connectors.http import RetryPolicy
from search_service.ingest.connectors.sync import SyncReport, load_spec, record_rows, sync_connection
from search_service.ingest.stores import create_connection
from tests.pos_fakes.vendors import Item, ShopifyFake

FAST = RetryPolicy(attempts=6, base_delay_s=0.01, max_delay_s=5.0, timeout_s=0.3)
SECRET_KEY = "x1Yd9jgn0ZzvhkBp8v1mJm0jv5t8k1cQ0VQYt6uXo7A="  # the test app opens the secrets with it too
BOX = SecretBox(SECRET_KEY.encode())


def dsn_of(conn: psycopg.Connection) -> str:
    info = conn.info
    return f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"


def make_store(conn: psycopg.Connection, name: str, lat: float, lon: float) -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO store (name, location, currency) VALUES (%s, ST_SetSRID(ST_MakePoint(%s, %s), 4326), 'EUR') "
        "RETURNING id",
        (name, lon, lat),
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def make_connection(
    conn: psycopg.Connection,
    store: uuid.UUID,
    source: str,
    location: str,
    base_url: str,
    credentials: dict[str, str],
    secret: str | None = None,
) -> uuid.UUID:
    config = {"location": location, "account": f"{source}:{next(iter(credentials.values()))}"}
    new = create_connection(
        conn, BOX, store_id=store, source=source, secret=secret, credentials=credentials, config=config,
        external_location=location, base_url=base_url,
    )  # fmt: skip
    return new.id


def sync(conn: psycopg.Connection, connection_id: uuid.UUID, *, full: bool = False) -> SyncReport:
    return sync_connection(conn, load_spec(conn, BOX, connection_id), record_rows, full=full, policy=FAST)


def map_batches(conn: psycopg.Connection) -> None:
    """The import job's work: map every waiting batch (as `worker --only import --drain` does)."""

    async def run() -> None:
        aconn = await asyncpg.connect(dsn_of(conn))
        try:
            while (batch := await pipeline.claim_batch(aconn, "test-import", 30)) is not None:
                await pipeline.map_batch(aconn, batch, "test-import", 1000, 30)
        finally:
            await aconn.close()

    asyncio.run(run())


def embed(conn: psycopg.Connection, encoder: Encoder) -> None:
    """The embed job's work: every pending ai_task, with the real model."""
    Worker(dsn_of(conn), encoder, WorkerConfig(drain=True, poll_interval_s=0.1)).run()


def index(conn: psycopg.Connection, encoder: Encoder) -> None:
    map_batches(conn)
    embed(conn, encoder)


def deliver(client: Any, connection_id: uuid.UUID, headers: dict[str, str], body: bytes) -> str:
    """POST the delivery to `/v1/ingest/{id}` as the vendor would: "stored" (202), "duplicate" (200), or the status."""
    response = client.post(f"/v1/ingest/{connection_id}", content=body, headers=headers)
    if response.status_code == 202:
        return "stored"
    if response.status_code == 200 and response.json().get("duplicate"):
        return "duplicate"
    return str(response.status_code)


def listing(conn: psycopg.Connection, store: uuid.UUID, sku: str) -> tuple[Any, ...] | None:
    return conn.execute(
        "SELECT price::text, quantity, is_active FROM store_product WHERE store_id = %s AND sku = %s", (store, sku)
    ).fetchone()


def webhook_row_statuses(conn: psycopg.Connection, connection_id: uuid.UUID) -> list[str]:
    rows = conn.execute(
        "SELECT r.status FROM import_batch b JOIN imported_product_raw r ON r.import_batch_id = b.id "
        "WHERE b.connection_id = %s AND b.kind = 'webhook' ORDER BY b.seq, r.row_number",
        (connection_id,),
    ).fetchall()
    return [r[0] for r in rows]


def serving_shopify(items: Iterable[Item], **options: Any) -> Iterator[ShopifyFake]:
    """A fixture's body: a fake Shopify holding `items` (product 7880.., variant 6420.., inventory item 2710..)."""
    fake = ShopifyFake(**options)
    for n, item in enumerate(items):
        fake.add(item, product_id=7880 + n, variant_id=6420 + n, inventory_item_id=2710 + n)
    yield fake
    fake.server.close()
