"""Shared by the ingest test modules: a real uvicorn server in a thread, keys, stores, signed deliveries, drains."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psycopg
import uvicorn
from standardwebhooks import Webhook

from embeddings.encoder import Encoder
from search_service.api.app import create_app
from search_service.db.cluster import free_port
from search_service.ingest import pipeline
from search_service.ingest.keys import create_key
from search_service.ingest.stores import StoreFields, create_connection, create_store
from search_service.settings import Settings
from tests.test_api import READY_TIMEOUT_S, app_settings


def ingest_settings(db_url: str, tmp: Path, **ingest: Any) -> Settings:
    settings = app_settings(db_url, secret_key_file=tmp / "plinqy.key")
    if ingest:
        settings = dataclasses.replace(settings, ingest=dataclasses.replace(settings.ingest, **ingest))
    return settings


@contextmanager
def serve(
    settings: Settings, encoder: Encoder | None, extra_routes: Sequence[Any] = (), *, until_ready: bool = True
) -> Iterator[str]:
    """The app in a real uvicorn server on a free port; yields its base URL once /readyz is 200 (any answer, for a
    server that is not to be ready). `extra_routes`: handlers a test adds (one that raises, to see what the app does
    with an unexpected error)."""
    port = free_port()
    app = create_app(settings, encoder=encoder)
    for route in extra_routes:
        app.register(route)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="plinqy-ingest-api", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline, last = time.monotonic() + READY_TIMEOUT_S, "no answer"
    while True:
        try:
            ready = httpx.get(f"{url}/readyz", timeout=5)
            if ready.status_code == 200 or not until_ready:
                break
            last = ready.text
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"the API never became ready: {last}"
        time.sleep(0.2)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def new_store(conn: psycopg.Connection, lat: float = 52.52, lon: float = 13.405, currency: str = "EUR") -> uuid.UUID:
    return create_store(conn, StoreFields(name=f"Store {uuid.uuid4().hex[:6]}", lat=lat, lon=lon, currency=currency))


def store_key(conn: psycopg.Connection, store_id: uuid.UUID | None, *scopes: str) -> str:
    return create_key(conn, store_id=store_id, scopes=list(scopes)).key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def webhook_connection(conn: psycopg.Connection, settings: Settings, store_id: uuid.UUID) -> tuple[uuid.UUID, str]:
    new = create_connection(conn, settings.secret_box(), store_id=store_id, source="webhook")
    assert new.secret is not None
    return new.id, new.secret


def signed(secret: str, body: bytes, msg_id: str | None = None, at: datetime | None = None) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, at, body)  # byte for byte: a body that is not UTF-8 too
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def drain_imports(dsn: str, worker_id: str = "test-drain") -> None:
    """Map every waiting batch here (what `worker --only import --drain` does, in-process)."""

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            while (batch := await pipeline.claim_batch(conn, worker_id, 30)) is not None:
                await pipeline.map_batch(conn, batch, worker_id, 5000, 30)
        finally:
            await conn.close()

    asyncio.run(run())


OPENAPI_METHODS = ("get", "put", "post", "patch", "delete")


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """An OpenAPI document's operations: (path, method, operation)."""
    for path, item in spec["paths"].items():
        for method in OPENAPI_METHODS:
            if method in item:
                yield path, method, item[method]
