"""End to end: a store and its key, a CSV import, the worker (import then embed), the products found by a search
near the store; a signed webhook sets one listing's stock to 0 and it leaves the results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.ingest_helpers import bearer, ingest_settings, serve, signed, store_key, webhook_connection
from tests.test_api import load_test_encoder

pytestmark = pytest.mark.slow
PROJECT_ROOT = Path(__file__).resolve().parent.parent
BERLIN = (52.4986, 13.4030)


def run_worker(dsn: str, key_file: Path, *args: str) -> None:
    """The worker on the server's secret key: it refuses to start on one that opens none of the stored secrets."""
    proc = subprocess.run(
        [sys.executable, "-m", "search_service", "worker", "--drain", *args],
        env={**os.environ, "DATABASE_URL": dsn, "PLINQY_SECRET_KEY_FILE": str(key_file)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def eventually(check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.3)


def test_import_search_webhook_stock_zero(fresh_db_url: str, tmp_path: Path) -> None:
    settings = ingest_settings(fresh_db_url, tmp_path)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        admin = store_key(conn, None)
    with serve(settings, load_test_encoder()) as base:
        body = {"name": "Kiez Laden", "lat": BERLIN[0], "lon": BERLIN[1], "city": "Berlin", "country_code": "DE"}
        store = httpx.post(f"{base}/v1/stores", json=body, headers=bearer(admin)).json()["id"]
        with psycopg.connect(fresh_db_url, autocommit=True) as conn:
            key = store_key(conn, store, "listings:write")
            connection, secret = webhook_connection(conn, settings, store)
        csv_bytes = (PROJECT_ROOT / "examples" / "products.csv").read_bytes()
        accepted = httpx.post(
            f"{base}/v1/stores/{store}/imports", content=csv_bytes, headers={**bearer(key), "content-type": "text/csv"}
        )
        assert accepted.status_code == 202, accepted.text
        run_worker(fresh_db_url, tmp_path / "plinqy.key")  # import, then embed the products it created
        status = httpx.get(f"{base}/v1/imports/{accepted.json()['batch_id']}", headers=bearer(key)).json()
        assert (status["status"], status["mapped_rows"]) == ("completed", 20)

        def tube_hits() -> list[str]:
            params = {"q": "inner tube for a bike tyre", "lat": BERLIN[0], "lon": BERLIN[1], "radius_m": 2000}
            results = httpx.get(f"{base}/v1/search", params={**params, "mode": "semantic"}).json()["results"]
            return [r["product"]["name"] for r in results if any(s["id"] == store for s in r["stores"])]

        hits = eventually(tube_hits)
        assert hits[0] == "Fahrradschlauch 28 Zoll"
        stock = json.dumps({"type": "stock.set", "data": {"sku": "KB-005", "quantity": 0}}).encode()
        delivered = httpx.post(f"{base}/v1/ingest/{connection}", content=stock, headers=signed(secret, stock))
        assert delivered.status_code == 202, delivered.text
        run_worker(fresh_db_url, tmp_path / "plinqy.key", "--only", "import")
        eventually(lambda: "Fahrradschlauch 28 Zoll" not in tube_hits())
        assert "Flickzeug Set" in tube_hits()  # the store's other bicycle item is still there
