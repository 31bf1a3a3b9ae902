"""Syncs that fail: recorded on the connection, cursor progress kept, backoff, the worker's sync job never crashes;
and the CLI as an operator runs it (connect, connections list/disable, sync), credentials never shown again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from search_service.db.sql import statement
from search_service.ingest.connectors import erply as erply_module
from search_service.ingest.connectors.config import ConnectorsConfig
from search_service.ingest.connectors.job import run_sync_loop
from search_service.ingest.connectors.sync import SyncFailed
from tests.connector_helpers import BOX, SECRET_KEY, make_connection, make_store, map_batches, sync
from tests.pos_fakes.vendors import ErplyFake, Item, LightspeedRFake, LightspeedXFake

ITEMS = [Item(f"{n}", f"Item {n}", "1.00", n) for n in range(101, 106)]


@pytest.fixture
def r_fake() -> Iterator[LightspeedRFake]:
    fake = LightspeedRFake()
    fake.bucket = (0.0, 100_000)
    for item in ITEMS:
        fake.add(item)
    fake.clock.now += timedelta(minutes=2)  # the catalogue stamped before a poll's overlap (PASS_OVERLAP_S)
    yield fake
    fake.server.close()


def state(db: psycopg.Connection, cid: uuid.UUID) -> tuple[Any, ...]:
    row = db.execute(
        "SELECT cursor, consecutive_failures, last_error, config, last_sync_at FROM ingest_connection WHERE id = %s",
        (cid,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def r_connection(db: psycopg.Connection, fake: LightspeedRFake, page_size: int = 1) -> uuid.UUID:
    store = make_store(db, "R", 52.37, 4.89)
    cid = make_connection(db, store, "lightspeed-r", "1", fake.server.url, {"account": "4242", "token": "r-token"})
    db.execute("UPDATE ingest_connection SET config = config || %s::jsonb WHERE id = %s",
               (f'{{"page_size": {page_size}}}', cid))  # fmt: skip
    return cid


def test_a_vendor_down_mid_sync_keeps_the_stored_pages_and_resumes(db: psycopg.Connection, r_fake: Any) -> None:
    cid = r_connection(db, r_fake)
    original = r_fake.handle
    calls = {"n": 0}

    def dies_after_four(req: Any) -> Any:
        calls["n"] += 1
        return original(req) if calls["n"] <= 4 else r_fake.server._fault_reply("500")

    r_fake.server.handler = dies_after_four
    with pytest.raises(SyncFailed, match="HTTP 500"):
        sync(db, cid)
    cursor, failures, error, _config, last_sync = state(db, cid)
    assert failures == 1 and "HTTP 500" in error and last_sync is None
    # four pages stored (101; 101 again from its own stamp on, then inside that stamp by id, both dropped; then
    # 102), the cursor at the last one read
    assert cursor["item_ts"] == r_fake.items["102"]["timeStamp"]
    due = statement("ingest/connectors", "due_connections").psycopg
    for retry_base_s, expected in ((3600.0, []), (0.001, [cid])):  # backed off, then due again
        params = {"interval_s": 3600, "retry_base_s": retry_base_s, "sources": ["lightspeed-r"]}
        assert [r[0] for r in db.execute(due, params).fetchall()] == expected
    r_fake.server.handler = original
    sync(db, cid)
    map_batches(db)
    skus = {r[0] for r in db.execute("SELECT sku FROM store_product").fetchall()}
    assert skus == {i.key for i in ITEMS}
    _cursor, failures, error, _config, last_sync = state(db, cid)
    assert failures == 0 and last_sync is not None
    resumed = [r.query.get("timeStamp") for r in r_fake.server.requests[calls["n"] :] if r.path.endswith("Item.json")]
    assert resumed[0] == f">=,{r_fake.items['102']['timeStamp']}"  # it did not start over


def test_quota_error_waits_until_the_vendor_says_and_the_job_carries_on(
    db: psycopg.Connection, r_fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(erply_module, "seconds_to_next_hour", lambda now=None: 1800.0)  # whatever the clock says
    erply = ErplyFake()
    try:
        erply.add(ITEMS[0])
        erply.quota_errors = 10**6  # error 1002 on every call
        store = make_store(db, "E", 52.0, 4.0)
        creds = {"client_code": "123456", "username": "api-user", "password": "api-pass"}
        bad = make_connection(db, store, "erply", "1", erply.server.url, creds)
        good = r_connection(db, r_fake, page_size=100)
        config = ConnectorsConfig(sync_interval_s=3600, retry_base_s=0.1, http_attempts=2, http_timeout_s=1)
        report = run_sync_loop(db.info.dsn, BOX, config, drain=True)
        assert (report.synced, report.failed) == (1, 1)
        _cursor, failures, error, config_after, _ = state(db, bad)
        assert failures == 1 and "1002" in error and config_after["not_before"] > time.time() + 60
        due = statement("ingest/connectors", "due_connections").psycopg
        params = {"interval_s": 3600, "retry_base_s": 0.1, "sources": ["erply", "lightspeed-r"]}
        time.sleep(0.2)
        assert [r[0] for r in db.execute(due, params).fetchall()] == []  # the erply one waits for the hour
        assert state(db, good)[1] == 0
    finally:
        erply.server.close()


@pytest.mark.parametrize(("max_page", "page_size", "items"), [(1000, 5000, 1200), (7, 1000, 20)])
def test_pages_shorter_than_asked_still_read_every_record(
    db: psycopg.Connection, max_page: int, page_size: int, items: int
) -> None:
    """Erply sends at most 1,000 records a page (an account may cap lower): with `page_size` 5,000 in a
    connection's config, the first page's 1,000 read as the last (shorter than asked) and the other 200 products
    were never synced; `recordsTotal` says how many the pass has to read."""
    erply = ErplyFake()
    erply.max_page = max_page
    try:
        for n in range(items):
            erply.add(Item(f"{n + 1}", f"Item {n}", "1.00", 1))
        store = make_store(db, "E", 52.0, 4.0)
        creds = {"client_code": "123456", "username": "api-user", "password": "api-pass"}
        cid = make_connection(db, store, "erply", "1", erply.server.url, creds)
        db.execute("UPDATE ingest_connection SET config = config || %s::jsonb WHERE id = %s",
                   (f'{{"page_size": {page_size}}}', cid))  # fmt: skip
        sync(db, cid)
        skus = db.execute(
            "SELECT count(DISTINCT r.payload->>'sku') FROM imported_product_raw r "
            "JOIN import_batch b ON b.id = r.import_batch_id WHERE b.store_id = %s AND r.payload->>'op' = 'upsert'",
            (store,),
        ).fetchone()
        assert skus == (items,)
    finally:
        erply.server.close()


def cli(dsn: str, *args: str, **more_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": dsn, "PLINQY_SECRET_KEY": SECRET_KEY, "PLINQY_SYNC_HTTP_ATTEMPTS": "2"}
    env.pop("PLINQY_PUBLIC_BASE_URL", None)
    env.update(more_env)
    return subprocess.run([sys.executable, "-m", "search_service", *args], env=env, capture_output=True, text=True,
                          timeout=180)  # fmt: skip


@pytest.mark.slow
def test_cli_connect_list_sync_disable(db: psycopg.Connection, fresh_db_url: str, r_fake: Any) -> None:
    store = make_store(db, "R", 52.37, 4.89)
    out = cli(fresh_db_url, "connect", "lightspeed-r", "--store", str(store), "--location", "1",
              "--base-url", r_fake.server.url, "--account", "4242", "--token", "r-token")  # fmt: skip
    assert out.returncode == 0, out.stderr
    cid = out.stdout.split()[1]
    assert "r-token" not in out.stdout + out.stderr and "webhook URL" not in out.stdout
    stores = [str(make_store(db, f"S{n}", 52.37, 4.89)) for n in range(4)]  # one enabled POS connection a store
    shopify = ("connect", "shopify", "--store", stores[0], "--location", "24826418", "--shop", "s.myshopify.com",
               "--token", "shpat_x", "--secret", "app-secret")  # fmt: skip
    out = cli(fresh_db_url, *shopify)  # no public base URL: the path, and how to make it a URL
    assert out.returncode == 0 and "webhook URL: POST /v1/ingest/" in out.stdout
    assert "PLINQY_PUBLIC_BASE_URL" in out.stderr
    assert "shpat_x" not in out.stdout and "app-secret" not in out.stdout
    shopify = tuple({"24826418": "24826419", stores[0]: stores[1]}.get(arg, arg) for arg in shopify)
    out = cli(fresh_db_url, *shopify, PLINQY_PUBLIC_BASE_URL="https://search.example.com/plinqy/")
    shop_id = out.stdout.split()[1]
    assert f"webhook URL: POST https://search.example.com/plinqy/v1/ingest/{shop_id} " in out.stdout, out.stdout
    assert "PLINQY_PUBLIC_BASE_URL" not in out.stderr
    out = cli(fresh_db_url, *shopify, PLINQY_PUBLIC_BASE_URL="search.example.com")
    assert out.returncode == 1 and "PLINQY_PUBLIC_BASE_URL" in out.stderr
    out = cli(fresh_db_url, "connect", "lightspeed-x", "--store", stores[2], "--location", "outlet-1",
              "--domain-prefix", "shop", "--token", "x-token", "--secret", "x-secret",
              "--signature-encoding", "base64", "--signature-message", "payload")  # fmt: skip
    assert out.returncode == 0, out.stderr
    config = db.execute("SELECT config FROM ingest_connection WHERE id = %s", (out.stdout.split()[1],)).fetchone()
    assert config is not None and (config[0]["signature_encoding"], config[0]["signature_message"]) == (
        "base64", "payload")  # fmt: skip
    bad = cli(fresh_db_url, "connect", "erply", "--store", str(store), "--location", "1", "--client-code", "1",
              "--session-key", "k", "--signature-message", "body")  # fmt: skip
    assert bad.returncode == 2 and "--signature-message" in bad.stderr
    no_url = cli(fresh_db_url, "connect", "lightspeed-r", "--store", str(store), "--location", "1",
                 "--base-url", "notaurl", "--account", "4242", "--token", "r-token")  # fmt: skip
    assert no_url.returncode == 2 and "--base-url 'notaurl' is not an http(s) address" in no_url.stderr
    # values that went into the vendor's address or could never work were accepted (exit 0)
    r_args = ("connect", "lightspeed-r", "--store", str(store), "--token", "r-token")
    refusals = [
        ((*r_args, "--location", "1", "--account", "4242", "--base-url", "http://127.0.0.1:99999"),
         "--base-url 'http://127.0.0.1:99999' has no usable port: give one from 1 to 65535"),
        ((*r_args, "--location", " ", "--account", "4242"), "--location is empty"),
        ((*r_args, "--location", "1", "--account", "42/../x"), "is not the R-Series account ID"),
        (("connect", "shopify", "--store", str(store), "--location", "1", "--token", "t",
          "--shop", "s.myshopify.com", "--secret", "a b c"), "two space-separated"),  # R-Series takes no secret
        (("connect", "shopify", "--store", str(store), "--location", "1", "--token", "t", "--shop", "evil.com/x"),
         "--shop 'evil.com/x' is not NAME.myshopify.com"),
        (("connect", "lightspeed-x", "--store", str(store), "--location", "1", "--token", "t",
          "--domain-prefix", "bad prefix/../"), "is not NAME of NAME.retail.lightspeed.app"),
        (("connect", "erply", "--store", str(store), "--location", "1", "--client-code", "x.evil",
          "--session-key", "k"), "is not the Erply account number"),
        (("connect", "shopify", "--store", str(store), "--location", "1", "--token", "t",
          "--shop", "\u017fhop.myshopify.com"), "is not NAME.myshopify.com"),  # a long s matched [a-z] with re.I
        ((*r_args[:-1], "t\nX-Evil: 1", "--location", "1", "--account", "4242"), "--token holds a control character"),
    ]  # fmt: skip
    for args, message in refusals:
        refused = cli(fresh_db_url, *args)
        assert refused.returncode == 2 and message in refused.stderr, (args, refused.stderr)
    upper = cli(fresh_db_url, "connect", "shopify", "--store", stores[3], "--location", " 24826417 ", "--token",
                "t", "--shop", "Gifts.MyShopify.com")  # fmt: skip
    assert upper.returncode == 0, upper.stderr
    stored = db.execute("SELECT config->>'account', external_location FROM ingest_connection WHERE id = %s",
                        (upper.stdout.split()[1],)).fetchone()  # fmt: skip
    assert stored == ("shopify:gifts.myshopify.com", "24826417")  # one account (its sync lock), a location as sent
    out = cli(fresh_db_url, "sync", cid)
    assert out.returncode == 0, out.stderr
    # 5 items + 10 item-shops (5 summary rows of shopID "0", 5 repeating the levels the items carried): 5 rows;
    # the tqdm bar on stderr
    assert "synced 15 vendor records into 5 rows" in out.stdout and "15 items" not in out.stderr  # no bar: no tty
    r_fake.server.flaky.every, r_fake.server.flaky.faults = 1, ("500",)
    out = cli(fresh_db_url, "sync", cid, "--full")
    # one line (README): the sync's own log line said the same failure again above it, bare, as the CLI sets no log
    [said] = out.stderr.strip().splitlines()
    assert out.returncode == 1 and said.startswith("error: sync failed (1 in a row; recorded on the connection"), said
    listing = cli(fresh_db_url, "connections", "list").stdout
    line = next(line for line in listing.splitlines() if line.startswith(cid))
    assert "failures=1" in line and "HTTP 500" in line and "r-token" not in listing
    assert cli(fresh_db_url, "connections", "disable", cid).returncode == 0
    assert "disabled" in next(line for line in cli(fresh_db_url, "connections", "list").stdout.splitlines()
                              if line.startswith(cid))  # fmt: skip
    refused = cli(fresh_db_url, "sync", cid)  # it polled a disabled connection with its stored token
    assert refused.returncode == 1 and "is disabled: `connections enable` it first" in refused.stderr
    assert cli(fresh_db_url, "connections", "enable", cid).returncode == 0
    assert "\tenabled\t" in next(line for line in cli(fresh_db_url, "connections", "list").stdout.splitlines()
                                 if line.startswith(cid))  # fmt: skip
    out = cli(fresh_db_url, "connect", "erply", "--store", str(store), "--location", "1", "--client-code", "1")
    assert out.returncode == 2 and out.stderr.strip() == "error: erply needs --username, --password"


@pytest.mark.slow
def test_worker_sync_job_drains(db: psycopg.Connection, fresh_db_url: str, r_fake: Any) -> None:
    cid = r_connection(db, r_fake, page_size=100)
    out = subprocess.run(
        [sys.executable, "-m", "search_service", "worker", "--only", "sync,import", "--drain"],
        env={**os.environ, "DATABASE_URL": fresh_db_url, "PLINQY_SECRET_KEY": SECRET_KEY},
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert state(db, cid)[4] is not None
    assert db.execute("SELECT count(*) FROM store_product WHERE quantity > 0").fetchone() == (5,)


def test_full_sync_removes_what_the_vendor_no_longer_has_but_never_empties_a_store(
    db: psycopg.Connection, r_fake: Any
) -> None:
    cid = r_connection(db, r_fake, page_size=100)
    sync(db, cid)
    map_batches(db)
    del r_fake.items["105"]  # gone at the vendor without a trace (no archival)
    assert sync(db, cid).removed == 0  # an incremental sync cannot tell
    assert sync(db, cid, full=True).removed == 1
    map_batches(db)
    active = dict(db.execute("SELECT sku, is_active FROM store_product").fetchall())
    assert active == {"101": True, "102": True, "103": True, "104": True, "105": False}
    for key in ("101", "102", "103"):
        del r_fake.items[key]
    report = sync(db, cid, full=True)  # 3 of the 4 active would go: refused, recorded
    assert report.removed == 0
    _cursor, failures, error, _config, _ = state(db, cid)
    assert failures == 1 and "3 of 4 listings" in error and "not removed" in error
    map_batches(db)
    assert db.execute("SELECT count(*) FROM store_product WHERE is_active").fetchone() == (4,)
    r_fake.items.clear()  # the vendor answers nothing at all: every listing would go (it was recorded a success)
    assert sync(db, cid, full=True).removed == 0
    _cursor, failures, error, _config, _ = state(db, cid)
    assert failures == 2 and "4 of 4 listings" in error and "not removed" in error


def test_a_stopped_sync_ends_after_the_stored_batch_and_stays_due(db: psycopg.Connection, r_fake: Any) -> None:
    import threading

    from search_service.ingest.connectors.sync import load_spec, record_rows, sync_connection

    cid = r_connection(db, r_fake)
    stop = threading.Event()
    stop.set()  # SIGTERM arrived: finish the batch in hand
    report = sync_connection(db, load_spec(db, BOX, cid), record_rows, batch_rows=1, stop=stop)
    assert report.interrupted and report.pages == 1
    cursor, failures, _error, _config, last_sync = state(db, cid)
    assert cursor["item_ts"] == r_fake.items["101"]["timeStamp"] and failures == 0 and last_sync is None
    due = statement("ingest/connectors", "due_connections").psycopg
    params = {"interval_s": 3600, "retry_base_s": 30, "sources": ["lightspeed-r"]}
    assert [r[0] for r in db.execute(due, params).fetchall()] == [cid]


def test_cli_sync_waits_for_the_accounts_running_sync(db: psycopg.Connection, fresh_db_url: str, r_fake: Any) -> None:
    """One sync at a time per vendor account: the worker's job tried the lock, `plinqy-search sync` ignored it."""
    store = make_store(db, "R", 52.37, 4.89)
    cid = make_connection(db, store, "lightspeed-r", "1", r_fake.server.url, {"account": "4242", "token": "r-token"})
    account = db.execute("SELECT config->>'account' FROM ingest_connection WHERE id = %s", (cid,)).fetchone()[0]
    db.execute("SELECT pg_advisory_lock(hashtext('plinqy-sync:' || %s))", (account,))  # a sync is running
    env = {**os.environ, "DATABASE_URL": fresh_db_url, "PLINQY_SECRET_KEY": SECRET_KEY}
    waiting = subprocess.Popen([sys.executable, "-m", "search_service", "sync", str(cid)], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 60  # start-up alone took 4.5 s on a loaded machine: wait for its lock wait
        while not db.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone()[0]:
            assert time.monotonic() < deadline and waiting.poll() is None, waiting.poll()
            time.sleep(0.1)
        time.sleep(0.5)  # were it not waiting for the lock, it would poll the vendor meanwhile
        assert waiting.poll() is None and r_fake.server.requests == []
    finally:
        db.execute("SELECT pg_advisory_unlock(hashtext('plinqy-sync:' || %s))", (account,))
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert "another sync of this vendor account is running: waiting for it" in err and "synced" in out
    assert r_fake.server.requests


def test_ctrl_c_during_cli_sync_stops_after_the_batch_in_hand(
    db: psycopg.Connection, fresh_db_url: str, r_fake: Any
) -> None:
    """Ctrl-C dropped the pages read and said only "Aborted!"; now the sync stops after the batch in hand,
    stored with its cursor, and says so (exit 130); the next sync goes on from there."""
    cid = r_connection(db, r_fake)
    original = r_fake.handle

    def slow(req: Any) -> Any:
        time.sleep(0.7)
        return original(req)

    r_fake.server.handler = slow
    env = {**os.environ, "DATABASE_URL": fresh_db_url, "PLINQY_SECRET_KEY": SECRET_KEY}
    proc = subprocess.Popen([sys.executable, "-m", "search_service", "sync", str(cid)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    while len(r_fake.server.requests) < 2:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    r_fake.server.handler = original
    assert proc.returncode == 130, err
    assert "interrupted:" in err and "with their cursor" in err and "Traceback" not in err
    cursor, failures, _error, _config, last_sync = state(db, cid)
    assert cursor and failures == 0 and last_sync is None  # progress kept, the pass not finished
    stored = db.execute("SELECT count(*) FROM imported_product_raw").fetchone()
    assert stored is not None and stored[0] > 0
    listed = next(line for line in cli(fresh_db_url, "connections", "list").stdout.splitlines() if str(cid) in line)
    assert f"synced=never (a first sync stored {stored[0]} items, unfinished" in listed  # it said "never" alone
    r_fake.server.handler = slow  # a second Ctrl-C aborts at once, not after the vendor's read in flight
    again = subprocess.Popen([sys.executable, "-m", "search_service", "sync", str(cid)], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    asked = len(r_fake.server.requests)
    while len(r_fake.server.requests) < asked + 1:
        assert time.monotonic() < deadline + 60 and again.poll() is None
        time.sleep(0.05)
    again.send_signal(signal.SIGINT)
    time.sleep(0.2)
    again.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _out, err = again.communicate(timeout=60)
    r_fake.server.handler = original
    assert again.returncode == 130 and "aborted:" in err and time.monotonic() - sent < 3, err
    finished = cli(fresh_db_url, "sync", str(cid))
    assert finished.returncode == 0, finished.stderr


def test_ctrl_c_during_a_first_syncs_stock_pass_stops_at_once(db: psycopg.Connection, fresh_db_url: str) -> None:
    """A first sync reads the vendor's stock levels before its first page (minutes on a big shop): Ctrl-C was
    honoured only after that pass. Now it stops during it, stores nothing and leaves the pass unfinished."""
    fake = LightspeedXFake()
    for n in range(40):
        fake.add(Item(f"x-{n}", f"Item {n}", "1.00", n))
    original = fake.handle

    def slow(req: Any) -> Any:
        time.sleep(0.25)
        return original(req)

    fake.server.handler = slow
    store = make_store(db, "X", 52.37, 4.89)
    cid = make_connection(
        db, store, "lightspeed-x", "outlet-1", fake.server.url, {"domain_prefix": "s", "token": "x-token"}
    )
    db.execute("UPDATE ingest_connection SET config = config || '{\"page_size\": 1}'::jsonb WHERE id = %s", (cid,))
    env = {**os.environ, "DATABASE_URL": fresh_db_url, "PLINQY_SECRET_KEY": SECRET_KEY}
    proc = subprocess.Popen([sys.executable, "-m", "search_service", "sync", str(cid)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(fake.server.requests) < 3:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        assert all(r.path == "/api/2.0/inventory" for r in fake.server.requests)  # in the stock pass (40 pages)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and time.monotonic() - sent < 4, err
        assert "interrupted: 0 vendor records stored in 0 batches" in err and "Traceback" not in err
        assert len(fake.server.requests) < 30
        cursor, failures, _error, _config, last_sync = state(db, cid)
        assert not cursor and failures == 0 and last_sync is None  # nothing stored, the pass not finished
        assert db.execute("SELECT count(*) FROM imported_product_raw").fetchone() == (0,)
    finally:
        proc.kill()
        fake.server.handler = original
        fake.server.close()
