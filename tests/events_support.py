"""Shared helpers of the events tests: a store with listings, subscriptions, running a dispatcher to the end."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import psycopg
from cryptography.fernet import Fernet

from search_service.db.secretbox import SecretBox
from search_service.events import subscriptions
from search_service.events.config import EventsConfig
from search_service.events.dispatcher import Dispatcher, Totals

T = TypeVar("T")

BOX = SecretBox(Fernet.generate_key())
FAST = EventsConfig(
    retry_schedule=(0.0, 0.2, 0.2),
    jitter=0.0,
    allow_hosts=frozenset({"127.0.0.1"}),
    timeout_s=2.0,
    poll_interval_s=0.05,
)


def on_conn(dsn: str, work: Callable[[Any], Awaitable[T]]) -> T:
    async def main() -> T:
        conn = await asyncpg.connect(dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(main())


def seed_store(conn: psycopg.Connection, name: str = "De Pijp Hardware") -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO store (name, location) VALUES (%s, 'SRID=4326;POINT(4.89 52.35)') RETURNING id", (name,)
    ).fetchone()
    assert row is not None
    return row[0]


def seed_product(conn: psycopg.Connection, name: str, gtin: str | None = None) -> uuid.UUID:
    row = conn.execute("INSERT INTO product_master (name, gtin) VALUES (%s, %s) RETURNING id", (name, gtin)).fetchone()
    assert row is not None
    return row[0]


def seed_listing(
    conn: psycopg.Connection, store: uuid.UUID, product: uuid.UUID, sku: str, price: float = 2.5, quantity: int = 5
) -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO store_product (store_id, product_master_id, sku, price, currency, quantity) "
        "VALUES (%s, %s, %s, %s, 'EUR', %s) RETURNING id",
        (store, product, sku, price, quantity),
    ).fetchone()
    assert row is not None
    return row[0]


def subscribe(
    dsn: str, store: uuid.UUID, url: str, events: list[str] | None = None, config: EventsConfig = FAST
) -> subscriptions.Created:
    return on_conn(dsn, lambda c: subscriptions.create(c, BOX, config, store, url, events or ["*"]))


def dispatch(dsn: str, config: EventsConfig = FAST, **kwargs: Any) -> Totals:
    """Run one dispatcher until nothing is left to attempt soon."""
    return asyncio.run(Dispatcher(dsn, config, BOX, **kwargs).run(drain=True))


def deliveries(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT e.type, d.status, d.attempts, d.last_status_code, d.message_id, d.last_error "
        "FROM webhook_delivery d JOIN webhook_event e ON e.id = d.event_id ORDER BY d.id"
    ).fetchall()
