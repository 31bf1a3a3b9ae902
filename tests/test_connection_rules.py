"""The rules `connect` and `connections enable` keep for a store's POS connections, run as an operator runs them:
one enabled POS connection a store (two shared its SKUs and overwrote each other's listings), what a reconnect of a
disabled connection says, and what `connect` promises of webhooks without a signing secret."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

import click
import httpx
import psycopg
import pytest

from search_service.ingest.connection_edits import ConnectionUpdate, update_connection
from search_service.ingest.connectors.sync import SyncReport, _note_levels, load_spec
from tests.connector_helpers import BOX, SECRET_KEY, make_connection, make_store, serving_shopify
from tests.ingest_helpers import serve
from tests.pos_fakes.vendors import ErplyFake, LightspeedRFake
from tests.test_api import app_settings
from tests.test_connector_e2e import _shopify
from tests.test_connector_sync import ITEMS, cli

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


def test_reconnecting_a_disabled_connection_says_enable_turns_it_back_on(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """The same `connect` again after `connections disable ID` said only "change its credentials or secret with
    `connections update ID`": nothing told the owner the connection was disabled or how to turn it back on."""
    store = make_store(db, "E", 52.37, 4.89)
    made = _erply(fresh_db_url, store, "1")
    assert made.returncode == 0, made.stderr
    cid = made.stdout.split()[1]
    enabled = _erply(fresh_db_url, store, "1")
    assert enabled.returncode == 1 and "disabled" not in enabled.stderr, enabled.stderr
    assert f"change its credentials or secret with `plinqy-search connections update {cid}`" in enabled.stderr
    assert cli(fresh_db_url, "connections", "disable", cid).returncode == 0
    again = _erply(fresh_db_url, store, "1")
    assert again.returncode == 1 and len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert f"to erply location 1, disabled: `plinqy-search connections enable {cid}` turns it back on" in (
        again.stderr
    ), again.stderr
    assert f"`plinqy-search connections update {cid}` changes its credentials or secret" in again.stderr
    assert cli(fresh_db_url, "connections", "enable", cid).returncode == 0  # as it says
    assert db.execute("SELECT count(*) FROM ingest_connection").fetchone() == (1,)


def test_reconnecting_a_disabled_connection_names_the_enabled_one_to_disable_first(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """With another POS connection of the store enabled, the refusal said "`connections enable ID` turns it back
    on", and that enable was then refused: the advice names the enabled one and says to disable it first."""
    store = make_store(db, "E", 52.37, 4.89)
    made = _erply(fresh_db_url, store, "1")
    assert made.returncode == 0, made.stderr
    cid = made.stdout.split()[1]
    assert cli(fresh_db_url, "connections", "disable", cid).returncode == 0
    r_series = cli(fresh_db_url, "connect", "lightspeed-r", "--store", str(store), "--location", "1", "--account",
                   "4242", "--token", "r", "--base-url", NOWHERE)  # fmt: skip
    assert r_series.returncode == 0, r_series.stderr
    r_id = r_series.stdout.split()[1]
    again = _erply(fresh_db_url, store, "1")
    assert again.returncode == 1 and len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert f"the store's POS connection {r_id} (lightspeed-r location 1) is enabled" in again.stderr, again.stderr
    assert (
        f"disable it first (`plinqy-search connections disable {r_id}`), then `plinqy-search connections "
        f"enable {cid}` turns this one back on" in again.stderr
    ), again.stderr
    assert cli(fresh_db_url, "connections", "disable", r_id).returncode == 0  # as it says
    assert cli(fresh_db_url, "connections", "enable", cid).returncode == 0
    assert _enabled(db, store) == [("erply", "1")]


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


def _line(dsn: str, cid: str) -> str:
    return next(line for line in cli(dsn, "connections", "list").stdout.splitlines() if line.startswith(cid))


def test_a_location_that_reads_no_stock_level_warns_until_one_is_read(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """A vendor location that does not exist (Shopify 11111, R-Series shop 99, Erply warehouse 77) synced
    "successfully" with the whole catalogue at stock 0, nothing found by search and nothing said. A first or full
    sync that reads items and no level at all says so on its last line, and `connections list` shows it until a
    sync reads a level; the items are stored all the same."""
    shopify = next(serving_shopify(ITEMS))
    r_series, erply = LightspeedRFake(), ErplyFake()
    r_series.bucket = (0.0, 100_000)
    for item in ITEMS:
        r_series.add(item)
        erply.add(item)
    r_series.clock.now += timedelta(minutes=2)
    try:
        connects = [
            ("shopify", "11111", shopify.server.url, ("--shop", "s.myshopify.com", "--token", "shpat_test")),
            ("lightspeed-r", "99", r_series.server.url, ("--account", "4242", "--token", "r-token")),
            ("erply", "77", erply.server.url, ("--client-code", "123456", "--username", "api-user", "--password",
                                               "api-pass")),
            ("shopify", "24826418", shopify.server.url, ("--shop", "s.myshopify.com", "--token", "shpat_test")),
        ]  # fmt: skip
        made = []
        for n, (source, location, url, creds) in enumerate(connects):
            store = str(make_store(db, f"S{n}", 52.37, 4.89))
            out = cli(fresh_db_url, "connect", source, "--store", store, "--location", location, "--base-url", url,
                      *creds)  # fmt: skip
            assert out.returncode == 0, out.stderr
            made.append(out.stdout.split()[1])
        for cid, (source, location, _url, _creds) in zip(made[:3], connects, strict=False):
            synced = cli(fresh_db_url, "sync", cid)
            assert synced.returncode == 0 and "synced" in synced.stdout, synced.stderr
            last = synced.stderr.strip().splitlines()[-1]
            assert last.startswith(f"warning: {source} location {location} returned no stock levels for any of 5 "
                                   f"items: check the location id"), last  # fmt: skip
            assert f"`plinqy-search connections disable {cid}`" in last
            assert "warning=" in _line(fresh_db_url, cid)
        right = cli(fresh_db_url, "sync", made[3])  # the shop's real location: its levels read, nothing said
        assert (
            right.returncode == 0 and "warning" not in right.stderr and "warning=" not in _line(fresh_db_url, made[3])
        )
        again = cli(fresh_db_url, "sync", made[0])  # an incremental poll reads changes only: no new judgement
        assert again.returncode == 0 and "warning" not in again.stderr and "warning=" in _line(fresh_db_url, made[0])
        full = cli(fresh_db_url, "sync", made[0], "--full")
        assert full.returncode == 0 and "warning: shopify location 11111" in full.stderr, full.stderr
        for level in shopify.levels.values():  # the location stocks them now: the next sync reads a level
            level.update(location_id=11111, updated_at=shopify.clock.tick().isoformat())
        cleared = cli(fresh_db_url, "sync", made[0])
        assert cleared.returncode == 0 and "warning" not in cleared.stderr, cleared.stderr
        assert "warning=" not in _line(fresh_db_url, made[0])
        items = db.execute("SELECT count(*) FROM import_batch WHERE connection_id = %s", (made[1],)).fetchone()
        assert items is not None and items[0] >= 1  # stored all the same
    finally:
        for fake in (shopify, r_series, erply):
            fake.server.close()


def _deliver_until(base: str, cid: str, status: int, within_s: float = 15) -> int:
    """A signed Shopify products/update, sent until it is answered `status` (the API caches a connection ~5 s)."""
    variant = {"id": 2, "product_id": 1, "sku": "M-1", "price": "4.00", "inventory_item_id": 3,
               "updated_at": "2026-01-05T10:00:00Z"}  # fmt: skip
    body = {"id": 1, "title": "Mug", "status": "active", "updated_at": "2026-01-05T10:00:00Z", "variants": [variant]}
    deadline = time.monotonic() + within_s
    while True:
        headers, raw = _shopify(body, "products/update", f"ev-{time.monotonic()}", secret="app-secret")
        got = httpx.post(f"{base}/v1/ingest/{cid}", content=raw, headers=headers).status_code
        if got == status or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def test_connect_without_a_secret_says_its_webhooks_are_answered_404(db: psycopg.Connection, fresh_db_url: str) -> None:
    """`connect shopify|erply|lightspeed-x` without --secret printed a webhook URL "signed with --secret" and said
    deliveries would be refused 401 until a secret was set, but such a connection's deliveries are answered 404 as
    an unknown id. It prints no URL now and says how to set one; `connections update --secret` then prints it."""
    store = make_store(db, "S", 52.37, 4.89)
    public = {"PLINQY_PUBLIC_BASE_URL": "https://search.example.com"}
    made = cli(fresh_db_url, "connect", "shopify", "--store", str(store), "--location", "556", "--shop",
               "s.myshopify.com", "--token", "t", "--base-url", NOWHERE, **public)  # fmt: skip
    assert made.returncode == 0, made.stderr
    cid = made.stdout.split()[1]
    assert "webhook URL" not in made.stdout + made.stderr and "401" not in made.stderr, made.stdout
    assert (f"no --secret: the connection is polled only; webhooks are answered 404 until you set one with "
            f"`plinqy-search connections update {cid} --secret`") in made.stderr, made.stderr  # fmt: skip
    settings = dataclasses.replace(app_settings(fresh_db_url), secret_key=SECRET_KEY)
    with serve(settings, None) as base:
        assert _deliver_until(base, cid, 404) == 404
        updated = cli(fresh_db_url, "connections", "update", cid, "--secret", "app-secret", **public)
        assert updated.returncode == 0, updated.stderr
        assert f"webhook URL: POST https://search.example.com/v1/ingest/{cid} " in updated.stdout, updated.stdout
        assert _deliver_until(base, cid, 202, within_s=0) == 202  # at once: the cached 404's connection read again


def test_ctrl_c_at_a_hidden_secret_prompt_is_interrupted_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--token` given alone asks for it on a terminal; Ctrl-C there printed click's "Aborted!" and exited 1 (a
    failure) where every other Ctrl-C says `interrupted`, exit 130. click.prompt turns the KeyboardInterrupt into
    its Abort, as it does here (a pseudo-terminal's SIGINT reached the child in some runs of the suite only)."""
    from search_service.cli import connectors

    def ctrl_c(*_args: object, **_kwargs: object) -> str:
        raise click.exceptions.Abort()

    monkeypatch.setattr(connectors.sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(connectors.click, "prompt", ctrl_c)
    with pytest.raises(SystemExit) as stopped:
        connectors._read_secret("--token", "PLINQY_POS_TOKEN")
    assert stopped.value.code == 130 and capsys.readouterr().err == "interrupted\n"


def test_a_pass_of_a_connection_changed_since_it_read_neither_warns_nor_clears(db: psycopg.Connection) -> None:
    """The no-levels warning was written whatever happened to the connection while the pass ran, where the sync's
    other writes (cursor, success) compare it with what the pass read: a first pass of the old account, finished
    after `connections update` moved the connection to another account, warned about the new one's location (and
    an old pass that read levels cleared a warning about the new one). Both now stand only for the connection the
    pass read."""
    store = make_store(db, "S", 52.37, 4.89)
    creds = {"shop": "a.myshopify.com", "token": "shpat_a"}
    cid = make_connection(db, store, "shopify", "11111", "http://127.0.0.1:9", creds)
    no_levels = SyncReport(items=5)
    read_before = load_spec(db, BOX, cid)
    update_connection(db, BOX, cid, ConnectionUpdate(credentials={"shop": "b.myshopify.com"}))  # another account
    _note_levels(db, read_before, no_levels, full=True)
    assert no_levels.warning is None and "no_levels" not in _config(db, cid)
    _note_levels(db, load_spec(db, BOX, cid), no_levels, full=True)  # the connection as it is: it warns
    assert no_levels.warning is not None and "no_levels" in _config(db, cid)
    read_before = load_spec(db, BOX, cid)
    update_connection(db, BOX, cid, ConnectionUpdate(credentials={"token": "shpat_b"}))
    _note_levels(db, read_before, SyncReport(items=5, levels=5), full=False)
    assert "no_levels" in _config(db, cid)  # read with the old token: the warning stands
    _note_levels(db, load_spec(db, BOX, cid), SyncReport(items=5, levels=5), full=False)
    assert "no_levels" not in _config(db, cid)


def _config(db: psycopg.Connection, cid: uuid.UUID) -> dict[str, Any]:
    row = db.execute("SELECT config FROM ingest_connection WHERE id = %s", (cid,)).fetchone()
    assert row is not None
    return dict(row[0])
