"""`plinqy-search sync` as a store owner runs it: what it answers (exit code, last line) when a full sync's removal is
refused, when it is interrupted, when the vendor refuses the credentials or asked to wait; `connections list` too."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

import psycopg
import pytest

from search_service.db.sql import statement
from search_service.ingest.connectors.sync import SyncFailed, load_spec, record_rows, sync_connection
from tests.connector_helpers import BOX, FAST, SECRET_KEY, make_connection, make_store, map_batches, sync
from tests.pos_fakes.server import Reply
from tests.pos_fakes.vendors import ErplyFake
from tests.test_connector_sync import cli, r_connection, r_fake, state

__all__ = ["r_fake"]  # the fixture, shared with test_connector_sync


def active_skus(db: psycopg.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT sku FROM store_product WHERE is_active").fetchall()}


def suggested_command(text: str) -> list[str]:
    """The last `plinqy-search ...` a message suggests, as arguments."""
    return re.findall(r"`plinqy-search ([^`]+)`", text)[-1].split()


def test_a_refused_full_sync_removal_fails_and_says_how_to_force_it(
    db: psycopg.Connection, fresh_db_url: str, r_fake: Any
) -> None:
    """The "more than half" guard refused the removal, yet `sync --full` said "synced" and exited 0; now it exits 1
    with a last line saying nothing was removed, why, and the flag that removes them when they are really gone."""
    cid = r_connection(db, r_fake, page_size=100)
    sync(db, cid)
    map_batches(db)
    r_fake.items.clear()  # every item gone at the vendor (or a glitch answering nothing)
    out = cli(fresh_db_url, "sync", str(cid), "--full")
    last = out.stderr.strip().splitlines()[-1]
    assert out.returncode == 1, out.stderr
    assert "5 of 5 listings no longer at the vendor; not removed: more than half" in last, last
    listed = next(line for line in cli(fresh_db_url, "connections", "list").stdout.splitlines() if str(cid) in line)
    assert "failures=1" in listed and "--allow-mass-removal" in listed
    map_batches(db)
    assert len(active_skus(db)) == 5
    assert cli(fresh_db_url, "sync", str(cid), "--allow-mass-removal").returncode == 2  # only with --full
    forced = cli(fresh_db_url, *suggested_command(last))
    assert forced.returncode == 0 and "5 listing(s) gone at the vendor removed" in forced.stdout, forced.stderr
    map_batches(db)
    assert active_skus(db) == set()
    assert state(db, cid)[1] == 0


@pytest.mark.parametrize("given", [(), ("--allow-mass-removal",)])
def test_the_command_an_interrupted_full_sync_suggests_removes_what_the_vendor_deleted(
    db: psycopg.Connection, fresh_db_url: str, r_fake: Any, given: tuple[str, ...]
) -> None:
    """Ctrl-C in `sync --full` suggested a plain `sync ID`, which goes on from the cursor but never removes: a
    product deleted at the vendor stayed sellable. The suggestion is a full sync again now, and it removes it; with
    the options it was given (without --allow-mass-removal the guard refused it again)."""
    cid = r_connection(db, r_fake, page_size=1)
    sync(db, cid)
    map_batches(db)
    original = r_fake.handle

    def slow(req: Any) -> Any:
        time.sleep(0.5)
        return original(req)

    r_fake.server.handler = slow
    env = {**os.environ, "DATABASE_URL": fresh_db_url, "PLINQY_SECRET_KEY": SECRET_KEY}
    proc = subprocess.Popen([sys.executable, "-m", "search_service", "sync", str(cid), "--full", *given], env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        asked, deadline = len(r_fake.server.requests), time.monotonic() + 60
        while len(r_fake.server.requests) < asked + 3:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        r_fake.server.handler = original
    assert proc.returncode == 130 and "interrupted:" in err, err
    del r_fake.items["105"]  # deleted at the vendor without a trace (only a full pass finds it gone)
    suggested = suggested_command(err)
    assert suggested[-len(given) - 1 :] == ["--full", *given], suggested
    follow_up = cli(fresh_db_url, *suggested)
    assert follow_up.returncode == 0, follow_up.stderr
    map_batches(db)
    assert active_skus(db) == {"101", "102", "103", "104"}


def test_credentials_the_vendor_refuses_say_so_and_how_to_replace_them(
    db: psycopg.Connection, fresh_db_url: str, r_fake: Any
) -> None:
    """A wrong token failed as "VendorError: GET /API/V3/Account/4242/Item.json: HTTP 401", a wrong Erply password
    as "VendorError: Erply verifyUser: error 1051", in sync, connections list and the worker's log alike. Now one
    line says the vendor refused the credentials and which `connections update` option replaces them."""
    store = make_store(db, "R", 52.37, 4.89)
    r_id = make_connection(db, store, "lightspeed-r", "1", r_fake.server.url, {"account": "4242", "token": "wrong"})
    erply = ErplyFake()
    try:
        creds = {"client_code": "123456", "username": "api-user", "password": "not-it"}
        e_id = make_connection(db, store, "erply", "1", erply.server.url, creds)
        for cid, flag, why in ((r_id, "--token", "HTTP 401: token wrong or revoked"),
                               (e_id, "--password", "error 1051 (wrong username or password)")):  # fmt: skip
            out = cli(fresh_db_url, "sync", str(cid))
            assert out.returncode == 1, out.stderr
            last = out.stderr.strip().splitlines()[-1]
            assert "the vendor refused the credentials (" in last and why in last, last
            assert f"`plinqy-search connections update {cid} {flag}`" in last, last
            assert "VendorError" not in last
        listing = cli(fresh_db_url, "connections", "list").stdout
        for cid in (r_id, e_id):
            line = next(line for line in listing.splitlines() if line.startswith(str(cid)))
            assert "the vendor refused the credentials" in line and "connections update" in line, line
        db.execute("UPDATE ingest_connection SET consecutive_failures = 0, last_sync_at = NULL")  # due again
        worker = subprocess.run(
            [sys.executable, "-m", "search_service", "worker", "--only", "sync", "--drain"],
            env={**os.environ, "DATABASE_URL": fresh_db_url, "PLINQY_SECRET_KEY": SECRET_KEY},
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        logged = worker.stdout + worker.stderr
        assert f"`plinqy-search connections update {r_id} --token`" in logged, logged[-2000:]
        assert "the vendor refused the credentials (Erply verifyUser: error 1051" in logged
    finally:
        erply.server.close()


def test_sync_keeps_the_wait_the_vendor_asked_for_and_connections_list_shows_it(
    db: psycopg.Connection, fresh_db_url: str, r_fake: Any
) -> None:
    """After a 429 with `Retry-After: 120` a second `sync` went straight back to the vendor, was refused again and
    counted one more failure; `connections list` showed no next attempt. Now `sync` refuses (exit 1) until then,
    saying when and that --now tries anyway, and the list shows the next attempt."""
    cid = r_connection(db, r_fake, page_size=100)
    r_fake.server.flaky.every, r_fake.server.flaky.faults, r_fake.server.flaky.retry_after = 1, ("429",), "120"
    first = cli(fresh_db_url, "sync", str(cid))
    assert first.returncode == 1 and "120s" in first.stderr, first.stderr
    # it said "RateLimited: HTTP 429: the vendor asks to wait 120s": a class name, and no request named
    assert re.search(r"rate-limited by the vendor: GET /API/V3/Account/\d+/\w+\.json: HTTP 429", first.stderr)
    assert "RateLimited" not in first.stderr and "(the next sync waits for it)" in first.stderr
    asked = len(r_fake.server.requests)
    again = cli(fresh_db_url, "sync", str(cid))
    last = again.stderr.strip().splitlines()[-1]
    assert again.returncode == 1, again.stderr
    assert re.fullmatch(
        r"error: the vendor asked to wait until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(1[01]\ds\); run again then, or pass "
        r"--now to try anyway",
        last,
    ), last
    assert len(r_fake.server.requests) == asked and state(db, cid)[1] == 1  # not asked again, no failure more
    listed = next(line for line in cli(fresh_db_url, "connections", "list").stdout.splitlines() if str(cid) in line)
    not_before = time.gmtime(state(db, cid)[3]["not_before"])  # in UTC, as every time the CLI prints
    assert f"next_attempt={time.strftime('%Y-%m-%dT%H:%M', not_before)}" in listed, listed
    assert "(the vendor asked to wait" in listed
    r_fake.server.flaky.every = 0
    forced = cli(fresh_db_url, "sync", str(cid), "--now")
    assert forced.returncode == 0 and "synced" in forced.stdout, forced.stderr
    listed = next(line for line in cli(fresh_db_url, "connections", "list").stdout.splitlines() if str(cid) in line)
    assert "next_attempt" not in listed and "failures" not in listed


def test_the_vendors_asked_wait_outlives_new_credentials_and_goes_with_a_new_host(
    db: psycopg.Connection, fresh_db_url: str, r_fake: Any
) -> None:
    """`connections update ID --token <same>` after a 429's Retry-After dropped config.not_before: the next sync (and
    the worker) went straight back to the vendor and was refused again. The wait is the account's quota: new
    credentials keep it (the backoff of failures still resets); only a new host (another server) drops it."""
    cid = r_connection(db, r_fake, page_size=100)
    r_fake.server.flaky.every, r_fake.server.flaky.faults, r_fake.server.flaky.retry_after = 1, ("429",), "120"
    assert cli(fresh_db_url, "sync", str(cid)).returncode == 1
    asked, not_before = len(r_fake.server.requests), state(db, cid)[3]["not_before"]
    updated = cli(fresh_db_url, "connections", "update", str(cid), "--token", "r-token")
    assert updated.returncode == 0 and "credentials (token) changed" in updated.stdout, updated.stderr
    assert state(db, cid)[1] == 0 and state(db, cid)[3]["not_before"] == not_before  # the backoff reset, not the wait
    again = cli(fresh_db_url, "sync", str(cid))
    assert again.returncode == 1 and "the vendor asked to wait until" in again.stderr, again.stderr
    assert len(r_fake.server.requests) == asked
    listed = next(line for line in cli(fresh_db_url, "connections", "list").stdout.splitlines() if str(cid) in line)
    assert "next_attempt=" in listed and "(the vendor asked to wait" in listed, listed
    moved = cli(fresh_db_url, "connections", "update", str(cid), "--base-url", r_fake.server.url)
    assert moved.returncode == 0 and "not_before" not in state(db, cid)[3], moved.stderr
    r_fake.server.flaky.every = 0
    synced = cli(fresh_db_url, "sync", str(cid))
    assert synced.returncode == 0 and "synced" in synced.stdout, synced.stderr


def test_a_vendors_absurd_wait_is_bounded_to_a_day_and_connections_list_never_breaks(
    db: psycopg.Connection, fresh_db_url: str, r_fake: Any
) -> None:
    """`Retry-After: 1796600000` (an epoch time sent as seconds) parked the connection until 2083, and `sync` said
    "until 22:31:12" (a time of day earlier than now); a stored wait past the year 9999 (`1e12`) made every
    `connections list` end in a traceback. The wait is now a day at most (said, and logged as suspect), the
    refusal names the date when the wait ends after today, and the list shows a stored wait of any size."""
    cid = r_connection(db, r_fake, page_size=100)
    r_fake.server.flaky.every, r_fake.server.flaky.faults, r_fake.server.flaky.retry_after = 1, ("429",), "1796600000"
    first = cli(fresh_db_url, "sync", str(cid))
    assert first.returncode == 1 and "past a day, suspect: a day is waited" in first.stderr, first.stderr
    not_before = state(db, cid)[3]["not_before"]
    assert time.time() + 86000 < not_before <= time.time() + 86400
    again = cli(fresh_db_url, "sync", str(cid)).stderr.strip().splitlines()[-1]
    day = time.strftime("%Y-%m-%d", time.gmtime(not_before))
    assert re.fullmatch(rf"error: the vendor asked to wait until {day}T\d\d:\d\d:\d\dZ \(8\d{{4}}s\); .*", again), again
    db.execute("UPDATE ingest_connection SET config = config || '{\"not_before\": 1e12}'::jsonb WHERE id = %s", (cid,))
    listed = cli(fresh_db_url, "connections", "list")
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    assert re.search(r"next_attempt=999[89]-\S+Z \(the vendor asked to wait", listed.stdout), listed.stdout
    refused = cli(fresh_db_url, "sync", str(cid))
    assert refused.returncode == 1 and re.search("until 999[89]-", refused.stderr), refused.stderr


def test_a_quiet_sync_says_nothing_new_not_a_batch_for_the_worker(
    db: psycopg.Connection, fresh_db_url: str, r_fake: Any
) -> None:
    """A poll with nothing new at the vendor stores only its cursor, yet said "in 1 batch; the import worker maps
    them": a batch `imports list` never shows. It says "nothing new" now, and a poll that stored one still counts it."""
    cid = r_connection(db, r_fake, page_size=100)
    first = cli(fresh_db_url, "sync", str(cid))
    assert first.returncode == 0 and "in 1 batch " in first.stdout and "import worker" in first.stdout, first.stderr
    batches = db.execute("SELECT count(*) FROM import_batch").fetchone()
    quiet = cli(fresh_db_url, "sync", str(cid))
    assert quiet.returncode == 0, quiet.stderr
    assert "synced 0 vendor records: nothing new" in quiet.stdout and "batch" not in quiet.stdout, quiet.stdout
    assert db.execute("SELECT count(*) FROM import_batch").fetchone() == batches


def test_a_vendor_answering_404_says_which_account_or_address_to_check(
    db: psycopg.Connection, fresh_db_url: str, r_fake: Any
) -> None:
    """A vendor answering 404 for good (a wrong or removed account, a wrong --base-url) was recorded as a bare
    "VendorError: GET ...: HTTP 404", with nothing to do; now it names the connection's options to check."""
    cid = r_connection(db, r_fake)
    r_fake.server.handler = lambda req: Reply(404, {"error": "not found"})
    out = cli(fresh_db_url, "sync", str(cid))
    last = out.stderr.strip().splitlines()[-1]
    assert out.returncode == 1, out.stderr
    assert "HTTP 404" in last and "check the connection's --account and --base-url" in last, last
    assert "VendorError" not in last
    listed = next(line for line in cli(fresh_db_url, "connections", "list").stdout.splitlines() if str(cid) in line)
    assert "check the connection's --account and --base-url" in listed, listed


def start_sync(dsn: str, cid: Any, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": dsn, "PLINQY_SECRET_KEY": SECRET_KEY}
    return subprocess.Popen([sys.executable, "-m", "search_service", "sync", str(cid), *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def wait_until(done: Any, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not done():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)


def test_a_vendor_account_corrected_during_a_sync_keeps_its_reset(
    db: psycopg.Connection, fresh_db_url: str, r_fake: Any
) -> None:
    """`connections update --account` during a sync reset the cursor ("the next sync is a first one"), then the
    old account's pass saved its cursor (and rows, and `synced`) over it: the right account's catalogue below that
    cursor was never read. Its writes now apply only to the connection it read; it stops, and says so."""
    cid = r_connection(db, r_fake, page_size=1)
    original = r_fake.handle

    def slow(req: Any) -> Any:
        time.sleep(0.3)
        return original(req)

    r_fake.server.handler = slow
    proc = start_sync(fresh_db_url, cid, "--full")
    try:
        wait_until(lambda: len(r_fake.server.requests) >= 3, proc)
        updated = cli(fresh_db_url, "connections", "update", str(cid), "--account", "4243")
        assert updated.returncode == 0 and "the next sync is a first one" in updated.stdout, updated.stderr
        _out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1 and f"connection {cid} was disabled or updated during this sync" in err, err
    cursor, failures, error, config, last_sync = state(db, cid)
    assert cursor is None and last_sync is None and failures == 0 and error is None, (cursor, error)
    assert config["account"] == "lightspeed-r:4243"
    assert db.execute("SELECT count(*) FROM import_batch WHERE connection_id = %s", (cid,)).fetchone() == (0,)


@pytest.mark.parametrize("meanwhile", ["disabled", "synced"])
def test_a_sync_that_waited_for_its_account_syncs_the_connection_as_it_is_then(
    db: psycopg.Connection, fresh_db_url: str, r_fake: Any, meanwhile: str
) -> None:
    """`sync ID` waiting for its vendor account's lock went on with what it had read before waiting: a connection
    disabled meanwhile was synced in full (into a store whose POS may be another now), and a first sync another
    sync had just done was read a second time from the empty cursor. It reads the connection again once it holds
    the lock: a disabled one is refused, and a synced one goes on from the cursor the other left."""
    cid = r_connection(db, r_fake, page_size=100)
    lock = {"account_key": "lightspeed-r:4242"}
    db.execute(statement("ingest/connectors", "account_lock").psycopg, lock)  # another sync of the account runs
    proc = start_sync(fresh_db_url, cid)
    try:
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        wait_until(lambda: db.execute(waiting).fetchone() == (1,), proc)
        if meanwhile == "disabled":
            assert cli(fresh_db_url, "connections", "disable", str(cid)).returncode == 0
        else:
            sync(db, cid)  # the other sync: the first one, all of the catalogue
        db.execute(statement("ingest/connectors", "account_unlock").psycopg, lock)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    batches = db.execute("SELECT count(*) FROM import_batch WHERE connection_id = %s", (cid,)).fetchone()
    if meanwhile == "disabled":
        assert proc.returncode == 1 and f"connection {cid} was disabled during this sync" in err, err
        assert batches == (0,) and not r_fake.server.requests and state(db, cid)[4] is None
    else:
        assert proc.returncode == 0 and "nothing new" in out, (out, err)
        assert batches == (1,)  # a quiet poll from the other's cursor, not a first one again


def test_the_old_tokens_refusal_is_not_recorded_over_the_new_token(
    db: psycopg.Connection, fresh_db_url: str, r_fake: Any
) -> None:
    """A sync in flight with the old token recorded its 401 after `connections update --token` had reset the
    failures: "update them with ... --token" (just done) and a backoff for the new token. Not recorded now."""
    cid = r_connection(db, r_fake)
    in_flight = load_spec(db, BOX, cid)  # a sync under way with the old token
    r_fake.server.handler = lambda req: Reply(401, {"error": "unauthorized"})
    assert cli(fresh_db_url, "connections", "update", str(cid), "--token", "new-token").returncode == 0
    with pytest.raises(SyncFailed, match="was disabled or updated during this sync"):
        sync_connection(db, in_flight, record_rows, policy=FAST)
    _cursor, failures, error, _config, _last_sync = state(db, cid)
    assert failures == 0 and error is None, error
