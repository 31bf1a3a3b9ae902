"""A connection's secret, credentials and host change in place (`connections update`): a leaked webhook secret or
vendor token needed a new connection (a new URL at the vendor, a first sync again, the old one still polling), and
`connect` again made a second connection to the same vendor location. Secrets can come from the environment."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.connector_helpers import BOX, SECRET_KEY, make_store
from tests.ingest_helpers import serve, signed
from tests.pos_fakes.vendors import Item, LightspeedRFake
from tests.test_api import app_settings
from tests.test_connector_sync import cli


@pytest.fixture
def db(fresh_db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        yield conn


def test_a_vendor_token_is_replaced_in_place_from_the_environment(db: psycopg.Connection, fresh_db_url: str) -> None:
    fake = LightspeedRFake(token="new-token")
    fake.bucket = (0.0, 100_000)
    fake.add(Item("101", "Item 101", "1.00", 3))
    store = make_store(db, "R", 52.37, 4.89)
    try:
        made = cli(fresh_db_url, "connect", "lightspeed-r", "--store", str(store), "--location", "1",
                   "--base-url", fake.server.url, "--account", "4242", "--token",
                   PLINQY_POS_TOKEN="old-token")  # fmt: skip
        assert made.returncode == 0, made.stderr
        cid = made.stdout.split()[1]
        assert cli(fresh_db_url, "sync", cid).returncode == 1  # the vendor refuses the old token: recorded
        again = cli(fresh_db_url, "connect", "lightspeed-r", "--store", str(store), "--location", "1",
                    "--base-url", fake.server.url, "--account", "4242", "--token", "new-token")  # fmt: skip
        assert again.returncode == 1 and f"connections update {cid}" in again.stderr, again.stderr
        # a variable left exported is read only for an option named: it rewrote the secret of a token update
        updated = cli(fresh_db_url, "connections", "update", cid, "--token", PLINQY_POS_TOKEN="new-token",
                      PLINQY_CONNECTION_SECRET="stale-secret")  # fmt: skip
        assert updated.returncode == 0, updated.stderr
        assert "credentials (token) changed" in updated.stdout and "new-token" not in updated.stdout + updated.stderr
        assert "signing secret" not in updated.stdout
        failures = db.execute("SELECT consecutive_failures FROM ingest_connection WHERE id = %s", (cid,)).fetchone()
        assert failures == (0,)  # due again at once: the backoff was for the old token
        synced = cli(fresh_db_url, "sync", cid)
        assert synced.returncode == 0, synced.stderr
        assert db.execute("SELECT count(*) FROM ingest_connection").fetchone() == (1,)
        nothing = cli(fresh_db_url, "connections", "update", cid)
        assert nothing.returncode == 1 and "nothing to change" in nothing.stderr
        vendor = cli(fresh_db_url, "connections", "update", cid, "--base-url", "")  # a test host no longer
        assert vendor.returncode == 0 and "the vendor's own again" in vendor.stdout, vendor.stderr
        host = db.execute("SELECT base_url FROM ingest_connection WHERE id = %s", (cid,)).fetchone()
        assert host == (None,)
    finally:
        fake.server.close()


def _deliver(base: str, cid: str, secret: str) -> int:
    body = json.dumps({"type": "stock.set", "data": {"sku": "a1", "quantity": 2}}).encode()
    return httpx.post(f"{base}/v1/ingest/{cid}", content=body, headers=signed(secret, body)).status_code


def test_a_webhook_secret_is_rotated_in_place(db: psycopg.Connection, fresh_db_url: str) -> None:
    store = make_store(db, "W", 52.37, 4.89)
    made = cli(fresh_db_url, "connect", "webhook", "--store", str(store))
    assert made.returncode == 0, made.stderr
    cid, old = made.stdout.split()[1], made.stdout.strip().splitlines()[-1]
    rotated = cli(fresh_db_url, "connections", "update", cid, "--new-webhook-secret", PLINQY_POS_TOKEN="tok")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip().splitlines()[-1]
    assert new.startswith("whsec_") and new != old and old not in rotated.stdout
    settings = dataclasses.replace(app_settings(fresh_db_url), secret_key=SECRET_KEY)
    with serve(settings, None) as base:
        assert _deliver(base, cid, new) == 202 and _deliver(base, cid, old) == 202  # both, during the rotation
        dropped = cli(fresh_db_url, "connections", "update", cid, "--secret", PLINQY_CONNECTION_SECRET=new)
        assert dropped.returncode == 0 and "signing secret changed" in dropped.stdout, dropped.stderr
        deadline = time.monotonic() + 15  # the API reads a connection again within 5 s
        while _deliver(base, cid, old) != 401:
            assert time.monotonic() < deadline, "the old secret is still accepted"
            time.sleep(0.5)
        assert _deliver(base, cid, new) == 202
    both = cli(fresh_db_url, "connections", "update", cid, "--new-webhook-secret", "--secret", new)
    assert both.returncode == 2 and "leave out --secret" in both.stderr  # the given one was dropped silently
    piped = subprocess_with_stdin(fresh_db_url, f"{new}\n", "connections", "update", cid, "--secret")
    assert piped.returncode == 0 and "signing secret changed" in piped.stdout, piped.stderr
    assert "GetPassWarning" not in piped.stderr  # a piped secret is read as such, not through getpass
    bad = cli(fresh_db_url, "connections", "update", cid, "--secret", "not-a-secret")
    assert bad.returncode == 1 and "whsec_" in bad.stderr and "not-a-secret" not in bad.stderr
    unknown = cli(fresh_db_url, "connections", "update", str(uuid.uuid4()), "--secret", new)
    assert unknown.returncode == 1 and "no connection" in unknown.stderr


def subprocess_with_stdin(dsn: str, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": dsn, "PLINQY_SECRET_KEY": SECRET_KEY}
    env.pop("PLINQY_CONNECTION_SECRET", None)
    return subprocess.run([sys.executable, "-m", "search_service", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=180)  # fmt: skip


def test_piped_secrets_go_to_the_options_in_the_order_given(db: psycopg.Connection, fresh_db_url: str) -> None:
    """`connect` read the signing secret last whatever the order typed: `--secret --token` stored each as the other."""
    store = make_store(db, "S", 52.37, 4.89)
    args = ("connect", "shopify", "--store", str(store), "--location", "556", "--shop", "probe.myshopify.com",
            "--base-url", "http://127.0.0.1:9", "--secret", "--token")  # fmt: skip
    made = subprocess_with_stdin(fresh_db_url, "SECRET3\nshpat_TOKEN3\n", *args)
    assert made.returncode == 0, made.stderr
    row = db.execute("SELECT secret_enc, credentials_enc FROM ingest_connection WHERE id = %s",
                     (made.stdout.split()[1],)).fetchone()  # fmt: skip
    assert row is not None
    assert BOX.decrypt(row[0]) == "SECRET3" and json.loads(BOX.decrypt(row[1]))["token"] == "shpat_TOKEN3"
