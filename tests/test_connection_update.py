"""A connection's secret, credentials and host change in place (`connections update`): a leaked webhook secret or
vendor token needed a new connection (a new URL at the vendor, a first sync again, the old one still polling), and
`connect` again made a second connection to the same vendor location. Secrets can come from the environment."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psycopg

from tests.connector_helpers import BOX, SECRET_KEY, make_connection, make_store, map_batches, serving_shopify
from tests.ingest_helpers import serve, signed
from tests.pos_fakes.server import Reply
from tests.pos_fakes.vendors import Item, LightspeedRFake
from tests.test_api import app_settings
from tests.test_connector_sync import ITEMS, cli


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
        assert nothing.returncode == 2 and "nothing to change" in nothing.stderr  # called wrongly: exit 2
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
    assert bad.returncode == 2 and bad.stderr.startswith("error: --secret: ") and "whsec_" in bad.stderr
    assert "not-a-secret" not in bad.stderr
    unknown = cli(fresh_db_url, "connections", "update", str(uuid.uuid4()), "--secret", new)
    assert unknown.returncode == 1 and "no connection" in unknown.stderr


def test_a_second_rotation_keeps_the_secret_the_sender_still_signs_with(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """A second --new-webhook-secret before `--secret NEW` (the first one's output lost) kept only the newest secret:
    the sender's, the first, answered 401 at once, and the output said nothing of it. Past 3, the live secret was the
    first dropped while the output called it unconfirmed: the oldest unconfirmed one goes instead."""
    store = make_store(db, "W", 52.37, 4.89)
    made = cli(fresh_db_url, "connect", "webhook", "--store", str(store))
    assert made.returncode == 0, made.stderr
    cid, secrets, outputs = made.stdout.split()[1], [made.stdout.strip().splitlines()[-1]], []
    for _ in range(2):
        rotated = cli(fresh_db_url, "connections", "update", cid, "--new-webhook-secret")
        assert rotated.returncode == 0, rotated.stderr
        secrets.append(rotated.stdout.strip().splitlines()[-1])
        outputs.append(rotated.stdout)
    assert "the old secret is accepted too" in outputs[0] and "the 2 older secrets are accepted too" in outputs[1]
    assert "no longer accepted" not in "".join(outputs)
    settings = dataclasses.replace(app_settings(fresh_db_url), secret_key=SECRET_KEY)
    with serve(settings, None) as base:
        assert [_deliver(base, cid, secret) for secret in secrets] == [202, 202, 202]
        third = cli(fresh_db_url, "connections", "update", cid, "--new-webhook-secret")
        assert third.returncode == 0 and "the oldest unconfirmed secret is no longer accepted" in third.stdout
        assert "3 at most" in third.stdout and "the 2 older secrets are accepted too" in third.stdout
        assert "the one in use before the rotations stays accepted" in third.stdout
        secrets.append(third.stdout.strip().splitlines()[-1])
        deadline = time.monotonic() + 15  # the API reads a connection again within 5 s
        while _deliver(base, cid, secrets[1]) != 401:  # the first rotation's, never confirmed
            assert time.monotonic() < deadline, "the oldest unconfirmed secret is still accepted"
            time.sleep(0.5)
        # the live one (connect's), which the sender signs with until `--secret NEW`, stays: it was dropped first
        assert [_deliver(base, cid, secret) for secret in [secrets[0], *secrets[2:]]] == [202, 202, 202]


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


def _x_delivery(base: str, cid: str, name: str, encoding: str, message: str) -> int:
    """An X-Series product.update signed with `x-secret` the given way (hex|base64 of the raw body|payload)."""
    payload = json.dumps({"id": f"p-{name}", "name": name, "price": 1})
    body = urlencode({"type": "product.update", "payload": payload}).encode()
    digest = hmac.new(b"x-secret", body if message == "raw" else payload.encode(), hashlib.sha256).digest()
    signature = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Signature": f"signature={signature},algorithm=HMAC-SHA256"}  # fmt: skip
    return httpx.post(f"{base}/v1/ingest/{cid}", content=body, headers=headers).status_code


def test_the_webhook_signature_settings_are_changed_in_place(db: psycopg.Connection, fresh_db_url: str) -> None:
    """docs/connectors.md says a connection whose webhooks all answer 401 should try the other signature settings,
    but `connections update` had no `--signature-encoding` / `--signature-message` and a second `connect` was
    refused: the advice could not be followed. They change in place now, checked as `connect`'s, the id (the
    webhook URL) kept, and the next delivery signed the new way is taken (the API's cached connection is read
    again on a refused signature); the old way is refused."""
    store = make_store(db, "X", 52.37, 4.89)
    made = cli(fresh_db_url, "connect", "lightspeed-x", "--store", str(store), "--location", "outlet-1",
               "--domain-prefix", "shop", "--token", "tok", "--secret", "x-secret",
               "--base-url", "http://127.0.0.1:9")  # fmt: skip
    assert made.returncode == 0, made.stderr
    cid = made.stdout.split()[1]
    settings = dataclasses.replace(app_settings(fresh_db_url), secret_key=SECRET_KEY)
    with serve(settings, None) as base:
        assert _x_delivery(base, cid, "Mug", "hex", "raw") == 202
        assert _x_delivery(base, cid, "Cup", "base64", "payload") == 401  # the vendor signs this way: all refused
        updated = cli(fresh_db_url, "connections", "update", cid, "--signature-encoding", "base64",
                      "--signature-message", "payload")  # fmt: skip
        assert updated.returncode == 0, updated.stderr
        assert "signature settings (signature_encoding=base64, signature_message=payload) changed" in updated.stdout
        assert _x_delivery(base, cid, "Cup", "base64", "payload") == 202  # at once, not after the API's cache
        assert _x_delivery(base, cid, "Bowl", "hex", "raw") == 401
    config = db.execute("SELECT config FROM ingest_connection WHERE id = %s", (cid,)).fetchone()
    assert config is not None and config[0]["location"] == "outlet-1" and config[0]["signature_message"] == "payload"
    assert db.execute("SELECT count(*) FROM ingest_connection").fetchone() == (1,)
    wrong = cli(fresh_db_url, "connections", "update", cid, "--signature-message", "items")  # Erply's choice
    assert wrong.returncode == 2 and "--signature-message of a lightspeed-x connection is one of raw, payload" in (
        wrong.stderr
    ), wrong.stderr
    unknown = cli(fresh_db_url, "connections", "update", cid, "--signature-encoding", "b64")
    assert unknown.returncode == 2 and "hex" in unknown.stderr and "Traceback" not in unknown.stderr
    stores = [str(make_store(db, name, 52.37, 4.89)) for name in ("S", "E")]  # one enabled POS connection a store
    shopify = cli(fresh_db_url, "connect", "shopify", "--store", stores[0], "--location", "556",
                  "--shop", "probe.myshopify.com", "--token", "t", "--base-url", "http://127.0.0.1:9")  # fmt: skip
    assert shopify.returncode == 0, shopify.stderr
    none = cli(fresh_db_url, "connections", "update", shopify.stdout.split()[1], "--signature-encoding", "base64")
    assert none.returncode == 2 and "a shopify connection has no signature settings" in none.stderr, none.stderr
    erply = cli(fresh_db_url, "connect", "erply", "--store", stores[1], "--location", "1", "--client-code", "123456",
                "--session-key", "k", "--base-url", "http://127.0.0.1:9")  # fmt: skip
    assert erply.returncode == 0, erply.stderr
    items = cli(fresh_db_url, "connections", "update", erply.stdout.split()[1], "--signature-message", "items")
    assert items.returncode == 0 and "signature_message=items" in items.stdout, items.stderr


def test_no_secret_is_stored_under_a_key_that_opens_none_of_the_stored_ones(
    db: psycopg.Connection, fresh_db_url: str, tmp_path: Path
) -> None:
    """With a connection and no outgoing webhook, `connect webhook` under a mistyped PLINQY_SECRET_KEY_FILE made a
    new key there and stored its secret with it (the check read only webhooks' secrets, and `connect webhook` made
    none): the API, on the right key, answered its deliveries 503. Every command storing a secret now tries every
    kind of stored secret, as /readyz does; the API's 503 names the setting its key came from."""
    store = make_store(db, "K", 52.37, 4.89)
    right, mistyped = tmp_path / "right.key", tmp_path / "typo" / "secret.key"
    right.write_text(SECRET_KEY)
    made = cli(fresh_db_url, "connect", "webhook", "--store", str(store), PLINQY_SECRET_KEY="",
               PLINQY_SECRET_KEY_FILE=str(right))  # fmt: skip
    assert made.returncode == 0, made.stderr
    cid, secret = made.stdout.split()[1], made.stdout.strip().splitlines()[-1]
    for args in (("connect", "webhook", "--store", str(store)),
                 ("connections", "update", cid, "--new-webhook-secret"),
                 ("webhooks", "add", "--store", str(store), "--url", "http://127.0.0.1:9/hook")):  # fmt: skip
        refused = cli(fresh_db_url, *args, PLINQY_SECRET_KEY="", PLINQY_SECRET_KEY_FILE=str(mistyped))
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 1 and len(lines) == 1 and not refused.stdout, (args, refused.stderr)
        assert "opens none of the 1 stored secrets tried" in lines[0], lines[0]
        assert f"the key file {mistyped} (PLINQY_SECRET_KEY_FILE)" in lines[0], lines[0]
    assert db.execute("SELECT count(*) FROM ingest_connection").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM store_webhook").fetchone() == (0,)
    wrong = dataclasses.replace(app_settings(fresh_db_url), secret_key=None, secret_key_file=mistyped)
    with serve(wrong, None) as base:
        body = json.dumps({"type": "stock.set", "data": {"sku": "a1", "quantity": 2}}).encode()
        answer = httpx.post(f"{base}/v1/ingest/{cid}", content=body, headers=signed(secret, body))
    assert answer.status_code == 503, answer.text
    assert "its PLINQY_SECRET_KEY_FILE is not the key" in answer.text, answer.text


def test_an_option_the_connections_vendor_lacks_is_refused_and_changes_nothing(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """`--username` on a Shopify connection (or `--token` on Erply's, `--base-url` on a webhook one) was merged into
    its credentials, said "changed", exit 0, and reset the backoff and the vendor's asked wait."""
    stores = [str(make_store(db, name, 52.37, 4.89)) for name in ("S", "E", "W")]
    shopify = cli(fresh_db_url, "connect", "shopify", "--store", stores[0], "--location", "556",
                  "--shop", "probe.myshopify.com", "--token", "t", "--base-url", "http://127.0.0.1:9")  # fmt: skip
    erply = cli(fresh_db_url, "connect", "erply", "--store", stores[1], "--location", "1", "--client-code", "123456",
                "--session-key", "k", "--base-url", "http://127.0.0.1:9")  # fmt: skip
    webhook = cli(fresh_db_url, "connect", "webhook", "--store", stores[2])
    ids = {}
    for name, made in (("shopify", shopify), ("erply", erply), ("webhook", webhook)):
        assert made.returncode == 0, made.stderr
        ids[name] = made.stdout.split()[1]
    db.execute("UPDATE ingest_connection SET consecutive_failures = 3, last_error_at = now(), "
               "config = config || '{\"not_before\": 4102444800}'::jsonb")  # fmt: skip
    before = db.execute("SELECT id, credentials_enc, base_url, consecutive_failures, config FROM ingest_connection "
                        "ORDER BY id").fetchall()  # fmt: skip
    cases = [("shopify", ("--username", "u"), "a shopify connection has no --username"),
             ("shopify", ("--password", "p"), "a shopify connection has no --password"),
             ("shopify", ("--session-key", "k"), "a shopify connection has no --session-key"),
             ("erply", ("--token", "tok"), "an erply connection has no --token"),
             ("webhook", ("--token", "tok"), "a webhook connection has no --token"),
             ("webhook", ("--base-url", "http://127.0.0.1:9"), "a webhook connection has no --base-url")]  # fmt: skip
    for name, option, said in cases:
        refused = cli(fresh_db_url, "connections", "update", ids[name], *option)
        assert refused.returncode == 2 and said in refused.stderr, (option, refused.stderr)
        assert "changed" not in refused.stdout and "Traceback" not in refused.stderr
    after = db.execute("SELECT id, credentials_enc, base_url, consecutive_failures, config FROM ingest_connection "
                       "ORDER BY id").fetchall()  # fmt: skip
    assert after == before
    fitting = cli(fresh_db_url, "connections", "update", ids["erply"], "--username", "u", "--password", "p")
    assert fitting.returncode == 0 and "credentials (password, username) changed" in fitting.stdout, fitting.stderr


def test_a_connection_made_with_the_wrong_vendor_account_is_corrected_in_place(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """`connections update` had no --shop/--account/--client-code/--domain-prefix, and `connect` refused the same
    location again: a connection made with the wrong account could never be corrected. Now the option fitting the
    source changes the account, checked as `connect`'s, with the config's account (the sync lock, the shop webhooks
    are checked against) and a first sync: the other account's cursor means nothing."""
    fake = LightspeedRFake()
    fake.bucket = (0.0, 100_000)
    for item in ITEMS:
        fake.add(item)
    store = make_store(db, "R", 52.37, 4.89)
    try:
        made = cli(fresh_db_url, "connect", "lightspeed-r", "--store", str(store), "--location", "1",
                   "--base-url", fake.server.url, "--account", "9999", "--token", "r-token")  # fmt: skip
        assert made.returncode == 0, made.stderr
        cid = made.stdout.split()[1]
        assert cli(fresh_db_url, "sync", cid).returncode == 1  # not this vendor account
        db.execute("UPDATE ingest_connection SET cursor = '{\"mark\": \"other-account\"}', last_sync_at = now() "
                   "WHERE id = %s", (cid,))  # fmt: skip
        for option, said in ((("--shop", "s.myshopify.com"), "a lightspeed-r connection has no --shop"),
                             (("--account", "42x"), "--account '42x' is not the R-Series account ID")):  # fmt: skip
            refused = cli(fresh_db_url, "connections", "update", cid, *option)
            assert refused.returncode == 2 and said in refused.stderr, refused.stderr
        fixed = cli(fresh_db_url, "connections", "update", cid, "--account", "4242")
        assert fixed.returncode == 0 and "vendor account (now lightspeed-r:4242" in fixed.stdout, fixed.stderr
        row = db.execute("SELECT cursor, last_sync_at, config->>'account' FROM ingest_connection WHERE id = %s",
                         (cid,)).fetchone()  # fmt: skip
        assert row == (None, None, "lightspeed-r:4242")
        synced = cli(fresh_db_url, "sync", cid)
        assert synced.returncode == 0 and f"into {len(ITEMS)} rows" in synced.stdout, synced.stderr
    finally:
        fake.server.close()
    other = str(make_store(db, "S", 52.37, 4.89))
    shopify = cli(fresh_db_url, "connect", "shopify", "--store", other, "--location", "556",
                  "--shop", "wrong-shop.myshopify.com", "--token", "t", "--base-url", "http://127.0.0.1:9")  # fmt: skip
    sid = shopify.stdout.split()[1]
    bad = cli(fresh_db_url, "connections", "update", sid, "--shop", "evil.com/x")
    assert bad.returncode == 2 and "is not NAME.myshopify.com" in bad.stderr, bad.stderr
    right = cli(fresh_db_url, "connections", "update", sid, "--shop", "Right-Shop.myshopify.com")
    assert right.returncode == 0, right.stderr
    config = db.execute("SELECT config FROM ingest_connection WHERE id = %s", (sid,)).fetchone()
    assert config is not None and config[0]["account"] == "shopify:right-shop.myshopify.com"


def test_a_base_url_changed_mid_pass_restarts_the_pass_at_the_new_host(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """`--base-url` changed while a pass was mid-way kept its next-page link, to the old host, in the cursor: every
    later sync failed before a request ("the vendor's answer links to ... outside this connection's base URL"), and
    only `sync --full` cleared it. Now the stored link is dropped and the pass starts again from its `since`."""
    fakes = [serving_shopify(ITEMS) for _ in range(2)]
    old, new = (next(fake) for fake in fakes)  # a proxy, then the vendor: the same shop
    answer = old.handle
    old.server.handler = lambda req: (
        Reply(503, {"errors": "down"}) if "page_info" in req.query and "products" in req.path else answer(req)
    )
    try:
        creds = {"shop": "gifts.myshopify.com", "token": "shpat_test"}
        cid = make_connection(db, make_store(db, "Shop", 52.36, 4.88), "shopify", "24826418", old.server.url, creds)
        db.execute("UPDATE ingest_connection SET config = config || '{\"page_size\": 1}' WHERE id = %s", (cid,))
        failed = cli(fresh_db_url, "sync", str(cid))
        assert failed.returncode == 1, failed.stderr  # page 2 down: the cursor keeps its link
        cursor = db.execute("SELECT cursor FROM ingest_connection WHERE id = %s", (cid,)).fetchone()
        assert cursor is not None and cursor[0]["products"]["next"].startswith(old.server.url)
        moved = cli(fresh_db_url, "connections", "update", str(cid), "--base-url", new.server.url)
        assert moved.returncode == 0, moved.stderr
        synced = cli(fresh_db_url, "sync", str(cid))
        assert synced.returncode == 0, synced.stderr
        row = db.execute("SELECT consecutive_failures, cursor FROM ingest_connection WHERE id = %s", (cid,)).fetchone()
        assert row is not None and row[0] == 0 and "next" not in row[1]["products"]  # the pass done, at the new host
        assert any("products" in r.path for r in new.server.requests)
        map_batches(db)
        assert db.execute("SELECT count(*) FROM store_product").fetchone() == (len(ITEMS),)
    finally:
        for fake in fakes:
            next(fake, None)  # its server closed


def test_a_token_no_http_header_can_carry_is_refused_and_a_stored_one_fails_its_sync_in_one_line(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """`connect` and `connections update` took a token holding `é` or `ü` (exit 0), and every sync of it then ended
    in a traceback (`UnicodeEncodeError: 'ascii' codec`), the worker's in "internal error". Both refuse it now as
    they refuse a control character; a token stored before fails its sync in one line saying how to replace it. An
    Erply password (sent in a form, as UTF-8) may hold any letter."""
    stores = [str(make_store(db, name, 52.37, 4.89)) for name in ("S", "R", "E")]
    said = "--token holds a character that cannot be sent in an HTTP header"
    shopify = ("connect", "shopify", "--store", stores[0], "--location", "123", "--shop", "myshop.myshopify.com")
    r_series = ("connect", "lightspeed-r", "--store", stores[1], "--location", "1", "--account", "12345")
    for args in ((*shopify, "--token", "shpat_\u00fcmlaut"), (*r_series, "--token", "t\u00f6k")):
        refused = cli(fresh_db_url, *args, "--base-url", "http://127.0.0.1:9")
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr
    made = cli(fresh_db_url, *shopify, "--token", "shpat_x", "--base-url", "http://127.0.0.1:9")
    assert made.returncode == 0, made.stderr
    cid = made.stdout.split()[1]
    updated = cli(fresh_db_url, "connections", "update", cid, "--token", "shpat_caf\u00e9")
    assert updated.returncode == 2 and said in updated.stderr and "changed" not in updated.stdout, updated.stderr
    erply = cli(fresh_db_url, "connect", "erply", "--store", stores[2], "--location", "1", "--client-code",
                "123456", "--username", "api-user", "--password", "p\u00e4ssw\u00f6rt",
                "--base-url", "http://127.0.0.1:9")  # fmt: skip
    assert erply.returncode == 0, erply.stderr
    stored = make_connection(db, uuid.UUID(stores[1]), "lightspeed-r", "1", "http://127.0.0.1:9",
                             {"account": "12345", "token": "caf\u00e9"})  # fmt: skip
    synced = cli(fresh_db_url, "sync", str(stored))
    last = synced.stderr.strip().splitlines()[-1]
    assert synced.returncode == 1 and "Traceback" not in synced.stderr, synced.stderr
    assert said in last and f"update it with `plinqy-search connections update {stored} --token`" in last, last
    listed = cli(fresh_db_url, "connections", "list").stdout
    assert said in next(line for line in listed.splitlines() if line.startswith(str(stored))), listed


def test_a_base_url_with_a_user_name_or_password_is_refused_without_repeating_it(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """`--base-url http://user:hunter2pass@[::1]:9438/` said "has no usable port" (its port is valid) and quoted the
    password to stderr: the user name read as the host, the rest as its "port". `connect` and `connections update`
    now say the address must not hold a user name or password, and repeat neither."""
    store = str(make_store(db, "S", 52.37, 4.89))
    shopify = ("connect", "shopify", "--store", store, "--location", "123", "--shop", "myshop.myshopify.com",
               "--token", "shpat_x")  # fmt: skip
    said = "error: --base-url must not hold a user name or password (user:password@host)"
    for url in ("http://user:hunter2pass@[::1]:9438/", "http://u:hunter2pass@example.com/", "http://user@[::1]:9438/"):
        refused = cli(fresh_db_url, *shopify, "--base-url", url)
        assert refused.returncode == 2 and refused.stderr.strip().endswith(said), refused.stderr
        assert "hunter2pass" not in refused.stderr
    made = cli(fresh_db_url, *shopify, "--base-url", "http://[::1]:9438/")
    assert made.returncode == 0, made.stderr
    updated = cli(fresh_db_url, "connections", "update", made.stdout.split()[1], "--base-url",
                  "https://u:hunter2pass@example.com:8443/admin")  # fmt: skip
    assert updated.returncode == 2 and said in updated.stderr and "hunter2pass" not in updated.stderr, updated.stderr
    port = cli(fresh_db_url, *shopify, "--base-url", "http://127.0.0.1:99999/a@b")  # an `@` in the path: a port
    assert port.returncode == 2 and "has no usable port" in port.stderr, port.stderr
    # a query or fragment: accepted, every request went to the base path itself, the sync "succeeded" empty
    for url in ("http://[::1]:9438/?shop=x", "http://[::1]:9438/api#v2"):
        query = cli(fresh_db_url, *shopify, "--base-url", url)
        assert query.returncode == 2 and "must not hold a query or a fragment" in query.stderr, query.stderr


def test_a_lightspeed_r_connection_takes_no_webhook_secret(db: psycopg.Connection, fresh_db_url: str) -> None:
    """R-Series sends no item or stock webhooks (polled only; a delivery to its connection is a 404), yet `connect
    lightspeed-r` offered `--secret` ("the webhook signing secret") and `connections update ID --secret S` stored one
    and said "signing secret changed", exit 0: an operator was told webhooks were set up that are never taken."""
    from search_service.cli.connectors import SECRET_HELP
    from search_service.ingest.connectors.factory import PUSH_SOURCES

    assert set(SECRET_HELP) == PUSH_SOURCES  # the vendors `connect` offers --secret are those whose webhooks count
    store = make_store(db, "R", 52.37, 4.89)
    connect = ["connect", "lightspeed-r", "--store", str(store), "--location", "1", "--account", "4242"]
    connect += ["--token", "t", "--base-url", "http://127.0.0.1:9"]
    made = cli(fresh_db_url, *connect, "--secret", "s3cret")
    assert made.returncode == 2 and "lightspeed-r sends no webhooks" in made.stderr, made.stderr
    assert "--secret" not in cli(fresh_db_url, "connect", "lightspeed-r", "--help").stdout
    assert db.execute("SELECT count(*) FROM ingest_connection").fetchone() == (0,)
    made = cli(fresh_db_url, *connect)
    assert made.returncode == 0, made.stderr
    refused = cli(fresh_db_url, "connections", "update", made.stdout.split()[1], "--secret", "s3cret")
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert "a lightspeed-r connection has no --secret" in refused.stderr and "Traceback" not in refused.stderr
    assert "changed" not in refused.stdout
    assert db.execute("SELECT secret_enc FROM ingest_connection").fetchone() == (None,)


def test_a_secret_option_given_alone_without_a_value_names_its_variable(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """`--token` alone with nothing piped and PLINQY_POS_TOKEN unset said "its environment variable is unset":
    the operator was left to find which variable in the help."""
    store = make_store(db, "S", 52.37, 4.89)
    args = ("connect", "shopify", "--store", str(store), "--location", "556", "--shop", "probe.myshopify.com",
            "--base-url", "http://127.0.0.1:9", "--token")  # fmt: skip
    os.environ.pop("PLINQY_POS_TOKEN", None)
    refused = subprocess_with_stdin(fresh_db_url, "", *args)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr == (
        "error: --token given alone: no value on stdin, and PLINQY_POS_TOKEN is unset or empty: "
        "set it, pipe the value, or give --token VALUE\n"
    )
