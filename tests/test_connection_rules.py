"""The rules `connect` and `connections enable` keep for a store's POS connections, run as an operator runs them:
one enabled POS connection a store (two shared its SKUs and overwrote each other's listings), what a reconnect of a
disabled connection says, and what `connect` promises of webhooks without a signing secret."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg

from tests.connector_helpers import SECRET_KEY, make_store
from tests.test_connector_sync import cli

NOWHERE = "http://127.0.0.1:9"  # connect reads nothing from the vendor: no request is sent


def _erply(dsn: str, store: uuid.UUID, location: str) -> subprocess.CompletedProcess[str]:
    return cli(dsn, "connect", "erply", "--store", str(store), "--location", location, "--client-code", "123456",
               "--username", "api-user", "--password", "api-pass", "--base-url", NOWHERE)  # fmt: skip


def _enabled(db: psycopg.Connection, store: uuid.UUID) -> list[tuple[str, str]]:
    rows = db.execute("SELECT source, external_location FROM ingest_connection WHERE store_id = %s AND enabled "
                      "AND source <> 'webhook' ORDER BY created_at", (store,)).fetchall()  # fmt: skip
    return [(source, location) for source, location in rows]


def test_a_store_takes_one_enabled_pos_connection(db: psycopg.Connection, fresh_db_url: str) -> None:
    """A second POS connection into a store was accepted: Erply warehouses 1 and 2 (or a Shopify location and an
    R-Series shop) wrote one SKU namespace, each sync overwriting the other's listings (a stock flipping between the
    two on every poll). `connect` and `connections enable` refuse it now, naming the one enabled and what to do; a
    `webhook` connection (the store's own system) may still run beside it."""
    store = make_store(db, "E", 52.37, 4.89)
    first = _erply(fresh_db_url, store, "1")
    assert first.returncode == 0, first.stderr
    first_id = first.stdout.split()[1]
    second = _erply(fresh_db_url, store, "2")
    assert second.returncode == 1, second.stdout
    message = second.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    assert f"already has an enabled POS connection, {first_id} (erply location 1)" in message, message
    assert f"`plinqy-search connections disable {first_id}`" in message and "a store of its own" in message
    shopify = cli(fresh_db_url, "connect", "shopify", "--store", str(store), "--location", "3001", "--shop",
                  "s.myshopify.com", "--token", "t", "--secret", "s", "--base-url", NOWHERE)  # fmt: skip
    assert shopify.returncode == 1 and first_id in shopify.stderr, shopify.stderr
    webhook = cli(fresh_db_url, "connect", "webhook", "--store", str(store))
    assert webhook.returncode == 0, webhook.stderr
    assert _enabled(db, store) == [("erply", "1")]
    other = make_store(db, "E2", 52.37, 4.89)  # the other location as a store of its own
    assert _erply(fresh_db_url, other, "2").returncode == 0
    # disabled first, the store takes another; the first is then refused on `enable`, the second named
    assert cli(fresh_db_url, "connections", "disable", first_id).returncode == 0
    r_series = cli(fresh_db_url, "connect", "lightspeed-r", "--store", str(store), "--location", "1", "--account",
                   "4242", "--token", "r", "--base-url", NOWHERE)  # fmt: skip
    assert r_series.returncode == 0, r_series.stderr
    r_id = r_series.stdout.split()[1]
    enable = cli(fresh_db_url, "connections", "enable", first_id)
    assert enable.returncode == 1 and f"{r_id} (lightspeed-r location 1)" in enable.stderr, enable.stderr
    assert _enabled(db, store) == [("lightspeed-r", "1")]
    assert cli(fresh_db_url, "connections", "enable", r_id).returncode == 0  # enabled already: itself is no other
    assert cli(fresh_db_url, "connections", "disable", r_id).returncode == 0
    assert cli(fresh_db_url, "connections", "enable", first_id).returncode == 0
    assert _enabled(db, store) == [("erply", "1")]
    unknown = cli(fresh_db_url, "connections", "enable", str(uuid.uuid4()))
    assert unknown.returncode == 1 and "no connection" in unknown.stderr


def test_two_connects_at_once_into_one_store_make_one_connection(db: psycopg.Connection, fresh_db_url: str) -> None:
    """Each checks for another enabled POS connection under the store's lock: both at once cannot both pass."""
    store = make_store(db, "E", 52.37, 4.89)
    args = [sys.executable, "-m", "search_service", "connect", "erply", "--store", str(store), "--client-code",
            "123456", "--username", "api-user", "--password", "api-pass", "--base-url", NOWHERE]  # fmt: skip
    env = {**os.environ, "DATABASE_URL": fresh_db_url, "PLINQY_SECRET_KEY": SECRET_KEY}
    runs = [subprocess.Popen([*args, "--location", location], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for location in ("1", "2")]  # fmt: skip
    codes = sorted(run.wait(timeout=180) for run in runs)
    assert codes == [0, 1] and len(_enabled(db, store)) == 1, [run.communicate() for run in runs]
