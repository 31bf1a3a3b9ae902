"""`plinqy-search webhooks ...` and `plinqy-search prune` against a real database (click's runner, real receiver)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import click
import psycopg
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet
from standardwebhooks import Webhook

from benchmarks.webhook_receiver import Receiver
from search_service.cli.commands import cli
from search_service.cli.common import Duration
from tests.events_support import seed_listing, seed_product, seed_store

KEY = Fernet.generate_key().decode()


def run(url: str, *args: str, **env: str) -> Result:
    environment = {
        "DATABASE_URL": url,
        "PLINQY_SECRET_KEY": KEY,
        "PLINQY_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
        "PLINQY_WEBHOOK_RETRY_SCHEDULE": "0,0.1",
        "PLINQY_WEBHOOK_POLL_S": "0.05",
        **env,
    }
    return CliRunner().invoke(cli, list(args), env=environment, catch_exceptions=False)


def test_add_list_deliveries_replay_remove(db: psycopg.Connection, fresh_db_url: str) -> None:
    store = seed_store(db)
    with Receiver() as receiver:
        added = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", receiver.url("/ok/cli"))
        assert added.exit_code == 0, added.output
        webhook_id = added.output.split()[1]
        assert added.output.strip().splitlines()[-1].startswith("whsec_")  # the last line alone, for `| tail -1`
        bad = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", receiver.url("/status/500/cli"))
        assert bad.exit_code == 0
        listed = run(fresh_db_url, "webhooks", "list", "--store", str(store))
        assert webhook_id in listed.output and "whsec_" not in listed.output and "enabled" in listed.output
        seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
        assert run(fresh_db_url, "webhooks", "dispatch", "--drain").exit_code == 0
        assert len(receiver.snapshot()) == 3  # one to /ok, two attempts to /status/500
    failed = run(fresh_db_url, "webhooks", "deliveries", "--failed", "--store", str(store))
    lines = failed.output.strip().splitlines()
    assert len(lines) == 1 and "\tfailed\t" in lines[0] and "code=500" in lines[0] and "HTTP 500" in lines[0]
    everything = run(fresh_db_url, "webhooks", "deliveries").output.strip().splitlines()
    assert len(everything) == 2
    delivery_id = lines[0].split("\t")[0]
    replayed = run(fresh_db_url, "webhooks", "replay", delivery_id)
    assert replayed.output.strip() == "queued 1 delivery again"
    since = run(fresh_db_url, "webhooks", "replay", "--store", str(store), "--since", "2000-01-01T00:00:00+00:00")
    assert since.output.strip() == "queued 1 delivery again"  # the other one is queued already
    nothing = run(fresh_db_url, "webhooks", "replay")
    assert nothing.exit_code == 2 and nothing.output.startswith("error: give either")  # a usage mistake
    db.execute("UPDATE store_webhook SET is_active = false, disabled_reason = 'HTTP 410 Gone'")
    db.execute("UPDATE webhook_delivery SET status = 'failed'")
    disabled = run(fresh_db_url, "webhooks", "replay", delivery_id)  # queued, then failed at once by the dispatcher
    assert disabled.exit_code == 1 and "webhook is disabled (HTTP 410 Gone)" in disabled.output
    none = run(fresh_db_url, "webhooks", "replay", "--store", str(store), "--since", "2000-01-01T00:00:00+00:00")
    assert none.output.strip() == "queued 0 deliveries again"
    missing = run(fresh_db_url, "webhooks", "replay", "999999")  # past every id given: never made
    assert missing.exit_code == 1 and "no delivery 999999: never made" in missing.output, missing.output
    assert run(fresh_db_url, "webhooks", "remove", webhook_id).exit_code == 0
    gone = run(fresh_db_url, "webhooks", "remove", webhook_id)
    assert gone.exit_code == 1 and gone.output.strip() == "error: WEBHOOK_ID: no webhook with this id"  # no store given


def test_replaying_a_removed_webhooks_delivery_says_it_went_with_its_webhook(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """`webhooks remove` deleted the delivered and failed deliveries too, where its help named the queued ones; a
    replay of one then said "never made, or removed by retention", sending the operator to `prune`."""
    store = seed_store(db)
    with Receiver() as receiver:
        added = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", receiver.url("/status/410/w2"))
        seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
        assert run(fresh_db_url, "webhooks", "dispatch", "--drain").exit_code == 0
    failed = run(fresh_db_url, "webhooks", "deliveries", "--failed").output.split("\t")[0]
    assert failed.isdecimal(), failed
    assert run(fresh_db_url, "webhooks", "remove", added.output.split()[1]).exit_code == 0
    replayed = run(fresh_db_url, "webhooks", "replay", failed)
    assert replayed.exit_code == 1, replayed.output
    assert f"no delivery {failed}: deleted with its webhook" in replayed.output, replayed.output
    assert "never made" not in replayed.output and "cannot be sent again" in replayed.output, replayed.output
    helped = " ".join(run(fresh_db_url, "webhooks", "remove", "--help").output.split())
    assert "all its deliveries: queued, delivered and failed ones" in helped, helped


def test_replay_says_what_its_argument_is(fresh_db_url: str) -> None:
    """`webhooks replay abc` said "'abc' is not a valid integer range" (click's IntRange): it names what the
    argument is now, a delivery's number, and how to replay many; still a usage mistake (exit 2)."""
    for given in ("abc", "100-200", "²", "-3"):
        refused = run(fresh_db_url, "webhooks", "replay", "--", given)
        assert refused.exit_code == 2, (given, refused.output)
        assert f"{given!r} is not a delivery id" in refused.output and "webhooks deliveries" in refused.output
        assert "integer range" not in refused.output and "--since" in refused.output
    zero = run(fresh_db_url, "webhooks", "replay", "0")
    assert zero.exit_code == 2 and "0 is not in the range of delivery ids, 1 to " in zero.output, zero.output
    missing = run(fresh_db_url, "webhooks", "replay", "424242")  # a number is still looked up
    assert missing.exit_code == 1 and "no delivery 424242: never made" in missing.output, missing.output


def test_add_refuses_unsafe_urls_in_one_line(db: psycopg.Connection, fresh_db_url: str) -> None:
    store = seed_store(db)
    result = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", "https://169.254.169.254/")
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        "error: --url: the host 169.254.169.254 is the cloud metadata address; webhooks go to public addresses only"
    ]
    webhook_id = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", "http://127.0.0.1:9/h").output
    for url in ("http://x.example/", "", "not a url"):  # given wrongly, as `--event bogus.event`: exit 2, not 1
        for command in (("add", "--store", str(store)), ("update", webhook_id.split()[1])):
            wrong = run(fresh_db_url, "webhooks", *command, "--url", url)
            assert wrong.exit_code == 2, (command, url, wrong.output)
            assert wrong.output.startswith("error: --url: only https URLs are accepted"), wrong.output
    unknown = run(fresh_db_url, "webhooks", "add", "--store", str(uuid.uuid4()), "--url", "https://x.example/")
    assert (unknown.exit_code, unknown.output) == (1, "error: --store: no store with this id\n")
    schedule = run(fresh_db_url, "webhooks", "list", PLINQY_WEBHOOK_RETRY_SCHEDULE="5,x")
    assert schedule.exit_code == 1 and "PLINQY_WEBHOOK_RETRY_SCHEDULE" in schedule.output


def _counts(conn: psycopg.Connection) -> dict[str, Any]:
    tables = ("inventory_event", "history_store_product", "search_index_queue", "webhook_delivery", "webhook_event")
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # type: ignore[index]


def test_prune_keeps_recent_rows_and_undelivered_events(db: psycopg.Connection, fresh_db_url: str) -> None:
    store = seed_store(db)
    run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", "http://127.0.0.1:9/x")
    for i in range(4):
        seed_listing(db, store, seed_product(db, f"P{i}"), f"S{i}")
    # Four listing.created events: delivered, pending, failed (old: it goes), and one delivered but recent.
    ids = [r[0] for r in db.execute("SELECT id FROM webhook_delivery ORDER BY id")]
    db.execute(
        "UPDATE webhook_delivery SET status = 'delivered', delivered_at = now() WHERE id IN (%s, %s)", (ids[0], ids[3])
    )
    db.execute("UPDATE webhook_delivery SET status = 'failed' WHERE id = %s", (ids[2],))
    old = "now() - interval '40 days'"
    db.execute(f"UPDATE webhook_delivery SET delivered_at = {old} WHERE id = %s", (ids[0],))
    db.execute(
        f"UPDATE webhook_event SET created_at = {old} "
        "WHERE id IN (SELECT event_id FROM webhook_delivery WHERE id <> %s)",
        (ids[3],),
    )
    db.execute(f"UPDATE inventory_event SET occurred_at = {old} WHERE id IN (SELECT min(id) FROM inventory_event)")
    db.execute(f"UPDATE history_store_product SET changed_at = {old}")
    db.execute(
        f"UPDATE search_index_queue SET enqueued_at = {old} WHERE id IN (SELECT max(id) FROM search_index_queue)"
    )
    before = _counts(db)
    dry = run(fresh_db_url, "prune", "--older-than", "30d", "--dry-run")
    assert "would delete 1 row(s) of inventory_event" in dry.output and "would delete 4 row(s) of history" in dry.output
    assert _counts(db) == before
    pruned = run(fresh_db_url, "prune", "--older-than", "30d")
    assert pruned.exit_code == 0, pruned.output
    after = _counts(db)
    assert {t: before[t] - after[t] for t in before} == {
        "inventory_event": 1,
        "history_store_product": 4,
        "search_index_queue": 1,
        "webhook_delivery": 2,
        "webhook_event": 2,
    }
    left = {r[0] for r in db.execute("SELECT status FROM webhook_delivery")}
    assert left == {"pending", "delivered"}  # the event on its way and the recent one stay
    assert "deleted 2 row(s) of webhook_event" in pruned.output


def test_prune_keeps_30_days_of_outgoing_events_and_takes_finished_ones_failed_too(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """Every outgoing event (~1 kB) and its deliveries stayed for ever where a delivery had failed for good, and
    `prune` needed an age. Without one it keeps 30 days; an event finished before then goes with its deliveries
    (delivered or failed), and one still pending or retrying stays whatever its age."""
    store = seed_store(db)
    for url in ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b"):  # two subscriptions: two deliveries an event
        run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", url)
    for i in range(5):
        seed_listing(db, store, seed_product(db, f"P{i}"), f"S{i}")
    events = [r[0] for r in db.execute("SELECT id FROM webhook_event WHERE type = 'listing.created' ORDER BY id")]
    db.execute("DELETE FROM webhook_event WHERE NOT (id = ANY(%s))", (events,))
    statuses = [("failed", "failed"), ("delivered", "failed"), ("delivered", "retrying"), ("pending", "failed")]
    days = [40, 31, 45, 40, 29]  # the last event is recent: failed both times, it stays
    statuses.append(("failed", "failed"))
    for event, (first, second), age in zip(events, statuses, days, strict=True):
        ids = [r[0] for r in db.execute("SELECT id FROM webhook_delivery WHERE event_id = %s ORDER BY id", (event,))]
        for delivery, status in zip(ids, (first, second), strict=True):
            db.execute(
                "UPDATE webhook_delivery SET status = %s, attempts = 3, last_attempt_at = now() - make_interval("
                "days => %s), delivered_at = CASE WHEN %s = 'delivered' THEN now() - make_interval(days => %s) END "
                "WHERE id = %s",
                (status, age, status, age, delivery),
            )
        db.execute(
            "UPDATE webhook_event SET created_at = now() - make_interval(days => %s) WHERE id = %s", (age, event)
        )
    dry = run(fresh_db_url, "prune", "--dry-run")
    assert (
        "would delete 6 row(s) of webhook_delivery" in dry.output
        and "would delete 2 row(s) of webhook_event" in dry.output
    ), dry.output
    pruned = run(fresh_db_url, "prune")
    assert pruned.exit_code == 0 and "deleted 2 row(s) of webhook_event" in pruned.output, pruned.output
    left = {r[0] for r in db.execute("SELECT id FROM webhook_event")}
    assert left == {events[2], events[3], events[4]}  # retrying, pending, recent
    kept = sorted(r[0] for r in db.execute("SELECT status FROM webhook_delivery"))
    assert kept == ["failed", "failed", "pending", "retrying"]  # the recent event's two, and those on their way
    assert "30d" in run(fresh_db_url, "prune", "--help").output


def _duration_options(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _duration_options(command, (*path, name))
        found += [((*path, name), o.opts[0]) for o in command.params if isinstance(o.type, Duration)]
    return found


def test_every_duration_option_says_its_units_m_being_minutes() -> None:
    """`prune --older-than 1m` is a minute, the default 30d: `--help` gave examples only, and 1m read as a month."""
    options = _duration_options(cli)
    assert (("prune",), "--older-than") in options and len(options) >= 3, options
    for path, option in options:
        shown = " ".join(CliRunner().invoke(cli, [*path, "--help"]).output.split())
        assert "s, m (minutes, not months), h or d" in shown, (path, option, shown)


def test_a_capital_unit_is_refused_not_read_as_minutes(db: psycopg.Connection, fresh_db_url: str) -> None:
    """`prune --older-than 6M` (a month, to most) was folded to `6m` and deleted the audit trail up to six minutes
    ago; `30D` was read as days in silence. Every duration option refuses a unit it does not list, exit 2."""
    store = seed_store(db)
    seed_listing(db, store, seed_product(db, "P"), "S")
    db.execute("UPDATE inventory_event SET occurred_at = now() - interval '1 hour'")
    db.execute("UPDATE history_store_product SET changed_at = now() - interval '1 hour'")
    before = _counts(db)
    for path, option in _duration_options(cli):
        for value, says in (("6M", "months are not a unit (m is minutes)"), ("30D", "is not a duration")):
            refused = run(fresh_db_url, *path, option, value)
            assert refused.exit_code == 2, (path, value, refused.output)
            assert says in refused.output, (path, value, refused.output)
    assert _counts(db) == before
    assert run(fresh_db_url, "prune", "--older-than", "6m").exit_code == 0  # the lowercase minute still works
    assert _counts(db)["inventory_event"] == 0


def test_prune_leaves_a_delivery_a_replay_queues_meanwhile(db: psycopg.Connection, fresh_db_url: str) -> None:
    """A replay re-queuing an old failed delivery while prune ran: the event step saw the delivery failed (the
    replay not committed), deleted the event, and its cascade waited for the replay's lock and then deleted the
    delivery the replay had just queued: never sent, though `replay` said "queued 1"."""
    store = seed_store(db)
    for url in ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b"):
        run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", url)
    seed_listing(db, store, seed_product(db, "P"), "S")
    event = db.execute("SELECT id FROM webhook_event WHERE type = 'listing.created'").fetchone()[0]
    db.execute("DELETE FROM webhook_event WHERE id <> %s", (event,))
    db.execute("UPDATE webhook_event SET created_at = now() - interval '40 days'")
    db.execute(
        "UPDATE webhook_delivery SET status = 'failed', attempts = 3, last_attempt_at = now() - interval '39 days'"
    )
    replayed = db.execute("SELECT min(id) FROM webhook_delivery").fetchone()[0]
    with psycopg.connect(fresh_db_url) as replay:  # a replay's UPDATE, not yet committed when prune starts
        replay.execute("UPDATE webhook_delivery SET status = 'pending', attempts = 0 WHERE id = %s", (replayed,))
        pruning = threading.Thread(target=run, args=(fresh_db_url, "prune"))
        pruning.start()
        time.sleep(1.0)
        replay.commit()
        pruning.join(timeout=60)
    assert not pruning.is_alive()
    statuses = dict(db.execute("SELECT id, status FROM webhook_delivery").fetchall())
    assert statuses == {replayed: "pending"}, statuses  # the old failed one went; the re-queued one stays
    assert db.execute("SELECT count(*) FROM webhook_event").fetchone()[0] == 1


def test_an_unknown_store_in_a_filter_is_named_not_an_empty_answer(fresh_db_url: str) -> None:
    """A mistyped --store said "no webhooks", "no deliveries", "queued 0 deliveries again", "no API keys"; and
    `webhooks add` for an unknown store resolved the URL's host first (a DNS query for nothing)."""
    nowhere = "00000000-0000-0000-0000-000000000000"
    commands = [
        ("webhooks", "list", "--store", nowhere),
        ("webhooks", "deliveries", "--store", nowhere),
        ("webhooks", "replay", "--store", nowhere, "--since", "2026-12-01"),
        ("keys", "list", "--store", nowhere),
        ("webhooks", "add", "--store", nowhere, "--url", "https://hooks.invalid/x"),  # .invalid: never resolves
    ]
    for command in commands:
        result = run(fresh_db_url, *command)
        assert result.exit_code == 1 and "no store with" in result.output, (command, result.output)


def test_prune_counts_the_deliveries_that_go_with_their_old_events(db: psycopg.Connection, fresh_db_url: str) -> None:
    """An old event's delivery replayed and delivered yesterday goes with its event (by cascade): the dry run and
    the prune count it (both said 0 deliveries while one went)."""
    store = seed_store(db)
    run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", "http://127.0.0.1:9/x")
    seed_listing(db, store, seed_product(db, "P"), "S")
    db.execute("UPDATE webhook_delivery SET status = 'delivered', delivered_at = now() - interval '1 day'")
    db.execute("UPDATE webhook_event SET created_at = now() - interval '40 days'")
    dry = run(fresh_db_url, "prune", "--older-than", "30d", "--dry-run")
    assert "would delete 1 row(s) of webhook_delivery" in dry.output, dry.output
    assert "would delete 1 row(s) of webhook_event" in dry.output, dry.output
    pruned = run(fresh_db_url, "prune", "--older-than", "30d")
    assert "deleted 1 row(s) of webhook_delivery" in pruned.output, pruned.output
    assert _counts(db)["webhook_delivery"] == 0 and _counts(db)["webhook_event"] == 0


def test_ids_and_times_out_of_range_are_usage_errors(db: psycopg.Connection, fresh_db_url: str) -> None:
    """Past what the database stores, they were tracebacks (bigint out of range, date value out of range)."""
    store = seed_store(db)
    huge = "99999999999999999999999"
    for command in (("webhooks", "replay", huge), ("tasks", "retry", huge)):
        result = run(fresh_db_url, *command)
        assert result.exit_code == 2 and "is not in the range" in result.output, (command, result.output)
    for since in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        result = run(fresh_db_url, "webhooks", "replay", "--store", str(store), "--since", since)
        assert result.exit_code == 2 and "between the years 1 and 9999" in result.output, result.output


def test_add_stores_the_url_normalised_and_refuses_in_one_line(db: psycopg.Connection, fresh_db_url: str) -> None:
    """`webhooks add --url HTTPS://…` was a traceback (the database's lower-case scheme check)."""
    store = seed_store(db)
    added = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", "HTTPS://1.1.1.1/x")
    assert added.exit_code == 0 and f"store {store}: https://1.1.1.1/x" in added.output, added.output
    again = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", "https://1.1.1.1:443/./x")
    assert again.exit_code == 1 and "already sends this store's events to this URL" in again.output, again.output
    fragment = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", "https://1.1.1.1/y#z")
    assert fragment.exit_code == 2 and len(fragment.output.strip().splitlines()) == 1, fragment.output
    assert fragment.output.startswith("error: --url: ") and "fragment" in fragment.output  # a malformed option
    stored = db.execute("SELECT url FROM store_webhook WHERE store_id = %s", (store,)).fetchall()
    assert stored == [("https://1.1.1.1/x",)]


def test_add_and_update_drop_spaces_around_the_url(db: psycopg.Connection, fresh_db_url: str) -> None:
    """`webhooks add --url ' https://…'` (and update) was a traceback: the database's `^https?://` check."""
    store = seed_store(db)
    added = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", " https://1.1.1.1/cli", "--event", "*")
    assert added.exit_code == 0 and f"store {store}: https://1.1.1.1/cli" in added.output, added.output
    (webhook_id,) = db.execute("SELECT id FROM store_webhook WHERE store_id = %s", (store,)).fetchone() or ()
    updated = run(fresh_db_url, "webhooks", "update", str(webhook_id), "--url", " https://1.1.1.1/cli2 ")
    assert updated.exit_code == 0, updated.output
    stored = db.execute("SELECT url FROM store_webhook WHERE store_id = %s", (store,)).fetchall()
    assert stored == [("https://1.1.1.1/cli2",)]


def test_add_refuses_past_the_stores_limit(db: psycopg.Connection, fresh_db_url: str) -> None:
    store = seed_store(db)
    for i in range(2):
        added = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", f"http://127.0.0.1:9/{i}",
                    PLINQY_WEBHOOK_MAX_PER_STORE="2")  # fmt: skip
        assert added.exit_code == 0, added.output
    third = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", "http://127.0.0.1:9/2",
                PLINQY_WEBHOOK_MAX_PER_STORE="2")  # fmt: skip
    assert third.exit_code == 1 and third.output.strip().splitlines() == [
        "error: --url: this store has 2 active webhooks, the most allowed (PLINQY_WEBHOOK_MAX_PER_STORE): remove one "
        "it no longer needs, or send more event types to one URL"
    ], third.output


def test_list_gives_failing_since_in_utc_with_z(db: psycopg.Connection, fresh_db_url: str) -> None:
    """It printed `failing since 2026-12-06 16:29:35`, no zone, where every other time the CLI prints is ISO UTC."""
    store = seed_store(db)
    added = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", "http://127.0.0.1:9/failing")
    assert added.exit_code == 0, added.output
    db.execute("UPDATE store_webhook SET failing_since = '2026-12-06T17:29:35.5+01:00'")
    listed = run(fresh_db_url, "webhooks", "list", "--store", str(store)).output.strip()
    assert listed.endswith("\tenabled\tfailing since 2026-12-06T16:29:35Z"), listed


def test_a_disabled_webhook_enabled_again_keeps_its_secret_and_numbering_and_replays(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """Disabled, the only way back was remove + add: a new secret, `sequence` from 1, and the outage's failed
    deliveries could not be replayed ("webhook is disabled")."""
    store = seed_store(db)
    off_at_once = {"PLINQY_WEBHOOK_DISABLE_AFTER_S": "0"}  # the first failure ends the (zero-length) allowance
    with Receiver() as receiver:
        added = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", receiver.url("/flaky/1/back"))
        webhook_id, secret = added.output.split()[1], added.output.strip().splitlines()[-1]
        seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
        assert run(fresh_db_url, "webhooks", "dispatch", "--drain", **off_at_once).exit_code == 0
        listed = run(fresh_db_url, "webhooks", "list", "--store", str(store)).output
        assert "disabled (deliveries failing since" in listed, listed
        delivery_id = run(fresh_db_url, "webhooks", "deliveries", "--failed").output.split("\t")[0]
        refused = run(fresh_db_url, "webhooks", "replay", delivery_id)
        assert refused.exit_code == 1 and f"webhooks enable {webhook_id}" in refused.output, refused.output
        enabled = run(fresh_db_url, "webhooks", "enable", webhook_id)
        assert enabled.exit_code == 0 and f"enabled webhook {webhook_id}" in enabled.output, enabled.output
        replay_line = enabled.output.strip().splitlines()[-1]
        assert replay_line.startswith("1 failed delivery; to send them again: "), enabled.output
        assert f"webhooks replay --webhook {webhook_id} --failed-only --since " in replay_line, enabled.output
        assert re.search(r" --since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", replay_line), replay_line  # UTC, as keys
        again = run(fresh_db_url, "webhooks", "enable", webhook_id)
        assert again.exit_code == 0 and "enabled already" in again.output
        listed = run(fresh_db_url, "webhooks", "list", "--store", str(store)).output
        assert "\tenabled" in listed and "failing since" not in listed, listed
        replayed = run(fresh_db_url, *replay_line.split("plinqy-search ", 1)[1].split())
        assert replayed.output.strip() == "queued 1 delivery again", replayed.output
        seed_listing(db, store, seed_product(db, "Rice milk"), "RM")  # its first attempt a 500 too, then 204
        assert run(fresh_db_url, "webhooks", "dispatch", "--drain").exit_code == 0
        got = receiver.snapshot()
    # the replay is the same message (sent beside the next one: their order varies)
    assert [r.headers["webhook-id"] for r in got].count(got[0].headers["webhook-id"]) >= 2, got
    messages = {r.headers["webhook-id"]: r for r in got}
    delivered = [Webhook(secret).verify(r.body, r.headers) for r in messages.values()]  # the secret kept
    assert [d["data"]["sequence"] for d in delivered] == [1, 2]  # the numbering goes on
    assert {d["data"]["webhook_id"] for d in delivered} == {webhook_id}
    assert run(fresh_db_url, "webhooks", "deliveries", "--failed").output.strip() == "no deliveries"
    unknown = run(fresh_db_url, "webhooks", "enable", "00000000-0000-0000-0000-000000000000")
    assert unknown.exit_code == 1 and unknown.output.strip() == "error: WEBHOOK_ID: no webhook with this id"


def test_the_replay_line_enable_prints_sends_only_that_webhooks_failed_deliveries(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """It printed `replay --store S --since T`, which queued every finished delivery of the store since then: the
    delivered ones, and other webhooks' (8 where one had failed)."""
    store = seed_store(db)
    with Receiver() as receiver:
        added = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", receiver.url("/ok/mine"))
        webhook_id = added.output.split()[1]
        assert (
            run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", receiver.url("/ok/other")).exit_code
            == 0
        )
        for sku in ("A", "B", "C"):
            seed_listing(db, store, seed_product(db, f"Product {sku}"), sku)
        assert run(fresh_db_url, "webhooks", "dispatch", "--drain").exit_code == 0
        assert receiver.count() == 6
        # its first delivery failed during an outage that disabled it; the other two were delivered
        db.execute("UPDATE webhook_delivery SET status = 'failed' WHERE id = "
                   "(SELECT min(id) FROM webhook_delivery WHERE webhook_id = %s)", (webhook_id,))  # fmt: skip
        db.execute("UPDATE store_webhook SET is_active = false, disabled_reason = 'HTTP 410 Gone' WHERE id = %s",
                   (webhook_id,))  # fmt: skip
        line = run(fresh_db_url, "webhooks", "enable", webhook_id).output.strip().splitlines()[-1]
        assert line.startswith("1 failed delivery; to send them again: plinqy-search webhooks replay "), line
        replayed = run(fresh_db_url, *line.split("plinqy-search ", 1)[1].split())
        assert replayed.output.strip() == "queued 1 delivery again", replayed.output
        assert run(fresh_db_url, "webhooks", "dispatch", "--drain").exit_code == 0
        again = receiver.snapshot()[6:]
    assert [r.path for r in again] == ["/ok/mine"], again
    whole = run(fresh_db_url, "webhooks", "replay", "--webhook", webhook_id, "--since", "2000-01-01T00:00:00Z")
    assert whole.output.strip() == "queued 3 deliveries again"  # without --failed-only: the delivered ones too
    for args, said in (
        (("--failed-only", "1"), "error: give either DELIVERY_ID, or --store ID and/or --webhook ID with --since"),
        (("--webhook", webhook_id), "error: give either DELIVERY_ID"),
        (("--webhook", str(store), "--since", "2000-01-01"), "error: --webhook: no webhook with this id"),
    ):
        refused = run(fresh_db_url, "webhooks", "replay", *args)
        assert refused.exit_code != 0 and refused.output.startswith(said), (args, refused.output)


def test_deliveries_show_when_each_was_tried_next_and_delivered(db: psycopg.Connection, fresh_db_url: str) -> None:
    """`webhooks deliveries` showed no times: not when a delivery was last tried, when a retrying one goes next,
    nor when one was delivered."""
    store = seed_store(db)
    with Receiver() as receiver:
        for path in ("/ok/times", "/status/500/times"):
            assert (
                run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", receiver.url(path)).exit_code == 0
            )
        seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
        later = {"PLINQY_WEBHOOK_RETRY_SCHEDULE": "0,300"}  # the failed one is retried in 5 minutes
        assert run(fresh_db_url, "webhooks", "dispatch", "--drain", **later).exit_code == 0
    lines = {line.split("\t")[1]: line for line in run(fresh_db_url, "webhooks", "deliveries").output.splitlines()}
    assert set(lines) == {"delivered", "retrying"}, lines

    def utc(when: datetime) -> str:
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    for status, last, upcoming, delivered in db.execute(
        "SELECT status, last_attempt_at, next_attempt_at, delivered_at FROM webhook_delivery"
    ):
        line = lines[status]
        assert f"\tlast_attempt={utc(last)}\t" in line, line
        if status == "retrying":
            assert f"\tnext_attempt={utc(upcoming)}\t" in line and "delivered_at" not in line, line
        else:
            assert f"\tdelivered_at={utc(delivered)}\t" in line and "next_attempt" not in line, line


def test_the_dispatchers_log_lines_carry_their_level(db: psycopg.Connection, fresh_db_url: str) -> None:
    """`webhooks dispatch` logged '<time> <logger> <message>': a WARNING could not be told from an INFO line."""
    store = seed_store(db)
    with Receiver() as receiver:
        assert run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url",
                   receiver.url("/status/500/level")).exit_code == 0  # fmt: skip
        seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
        env = {**os.environ, "DATABASE_URL": fresh_db_url, "PLINQY_SECRET_KEY": KEY,
               "PLINQY_WEBHOOK_ALLOW_HOSTS": "127.0.0.1", "PLINQY_WEBHOOK_RETRY_SCHEDULE": "0,0.1"}  # fmt: skip
        out = subprocess.run([sys.executable, "-m", "search_service", "webhooks", "dispatch", "--drain"], env=env,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert re.search(r' WARNING \[\d+\] plinqy\.events: \{"event": "delivery_failed"', out.stderr), out.stderr
    assert re.search(r' INFO \[\d+\] plinqy\.events: \{"event": "stopped"', out.stderr), out.stderr


def test_add_takes_event_types_as_update_does(db: psycopg.Connection, fresh_db_url: str) -> None:
    """`webhooks add --event stock.out,stock.back` was "unknown event type 'stock.out,stock.back'" and `--events`
    no option, where `webhooks update` (and docs/events.md) take both forms."""
    store = seed_store(db)
    with Receiver() as receiver:
        for n, form in enumerate(
            (["--event", "stock.out,stock.back"], ["--events", "stock.out", "--event", "stock.back"])
        ):
            added = run(
                fresh_db_url, "webhooks", "add", "--store", str(store), "--url", receiver.url(f"/ok/{n}"), *form
            )
            assert added.exit_code == 0, added.output
            assert "events: stock.out, stock.back" in added.output or "events: stock.back, stock.out" in added.output


def test_a_secret_is_not_stored_under_a_key_that_opens_none_of_the_others(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """A mistyped PLINQY_SECRET_KEY_FILE made a new key there, and `webhooks add` stored its secret under it without a
    word: the dispatcher holding the right key then could never sign that subscription's deliveries."""
    store = seed_store(db)
    with Receiver() as receiver:
        assert (
            run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", receiver.url("/ok/a")).exit_code == 0
        )
        other = Fernet.generate_key().decode()
        refused = run(
            fresh_db_url, "webhooks", "add", "--store", str(store), "--url", receiver.url("/ok/b"),
            PLINQY_SECRET_KEY=other,
        )  # fmt: skip
    assert refused.exit_code == 1 and "opens none of the 1 stored secrets tried" in refused.output, refused.output
    assert db.execute("SELECT count(*) FROM store_webhook WHERE store_id = %s", (store,)).fetchone() == (1,)


def test_deliveries_print_a_receivers_error_with_its_control_characters_escaped(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """A receiver's answer (its first 200 characters are the delivery's last_error) was printed raw: its ESC
    sequences cleared the operator's screen, its newline and tab added a line and a column."""
    store = seed_store(db)
    assert run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", "http://127.0.0.1:9/a").exit_code == 0
    seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
    hostile = "HTTP 500: \x1b[2J\x1b[H\x1b]0;title\x07\nforged line\tcolumn"
    db.execute("UPDATE webhook_delivery SET status = 'failed', attempts = 2, last_error = %s", (hostile,))
    shown = run(fresh_db_url, "webhooks", "deliveries").output
    assert "\x1b" not in shown and "\x07" not in shown
    [line] = shown.splitlines()
    assert line.split("\t")[-1] == "HTTP 500: \\x1b[2J\\x1b[H\\x1b]0;title\\x07\\nforged line\\tcolumn"


def test_deliveries_say_a_webhook_is_disabled_only_where_it_matters(db: psycopg.Connection, fresh_db_url: str) -> None:
    """Every line of a disabled webhook ended with `webhook disabled: …`, its delivered ones too (nothing to do there:
    only an undelivered one waits for `webhooks enable` before a replay)."""
    store = seed_store(db)
    assert run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", "http://127.0.0.1:9/a").exit_code == 0
    seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
    seed_listing(db, store, seed_product(db, "Soy milk"), "SM")
    first, second = (r[0] for r in db.execute("SELECT id FROM webhook_delivery ORDER BY id").fetchall())
    db.execute("UPDATE webhook_delivery SET status = 'delivered', attempts = 1, last_status_code = 204, "
               "delivered_at = now() WHERE id = %s", (first,))  # fmt: skip
    db.execute("UPDATE webhook_delivery SET status = 'failed', attempts = 1, last_status_code = 410, "
               "last_error = 'HTTP 410: gone' WHERE id = %s", (second,))  # fmt: skip
    db.execute("UPDATE store_webhook SET is_active = false, disabled_reason = 'the receiver answered 410 Gone'")
    lines = {int(line.split("\t")[0]): line for line in run(fresh_db_url, "webhooks", "deliveries").output.splitlines()}
    assert "disabled" not in lines[first] and lines[first].endswith("\thttp://127.0.0.1:9/a"), lines[first]
    assert lines[second].split("\t")[-2:] == ["HTTP 410: gone", "webhook disabled: the receiver answered 410 Gone"]


def test_deliveries_show_the_url_each_was_sent_to(db: psycopg.Connection, fresh_db_url: str) -> None:
    """After `webhooks update --url` every old delivery was listed with the new URL, as if the new receiver had
    answered it."""
    store = seed_store(db)
    with Receiver() as receiver:
        added = run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", receiver.url("/ok/old"))
        webhook_id = added.output.split()[1]
        product = seed_product(db, "Oat milk")
        seed_listing(db, store, product, "OM")
        assert run(fresh_db_url, "webhooks", "dispatch", "--drain").exit_code == 0
        moved = run(fresh_db_url, "webhooks", "update", webhook_id, "--url", receiver.url("/status/500/new"))
        assert moved.exit_code == 0, moved.output
        db.execute("UPDATE store_product SET quantity = 0 WHERE store_id = %s", (store,))
        assert run(fresh_db_url, "webhooks", "dispatch", "--drain").exit_code == 0
    lines = run(fresh_db_url, "webhooks", "deliveries").output.strip().splitlines()
    by_status = {line.split("\t")[1]: line for line in lines}
    assert set(by_status) == {"delivered", "failed"}, lines
    assert receiver.url("/ok/old") in by_status["delivered"] and "/new" not in by_status["delivered"], lines
    assert receiver.url("/status/500/new") in by_status["failed"], lines


def test_deliveries_say_an_attempt_is_in_flight_not_a_next_attempt_before_the_last(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    """While an attempt was under way the line showed `next_attempt=` the time it had been due, before its
    `last_attempt=` (the claim writes the latter; the former waits for the attempt's result)."""
    store = seed_store(db)
    with Receiver() as receiver:
        url = receiver.url("/slow/3/inflight")
        assert run(fresh_db_url, "webhooks", "add", "--store", str(store), "--url", url).exit_code == 0
        seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
        env = {**os.environ, "DATABASE_URL": fresh_db_url, "PLINQY_SECRET_KEY": KEY,
               "PLINQY_WEBHOOK_ALLOW_HOSTS": "127.0.0.1"}  # fmt: skip
        with subprocess.Popen([sys.executable, "-m", "search_service", "webhooks", "dispatch", "--drain"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as dispatching:  # fmt: skip
            deadline = time.monotonic() + 60
            while not receiver.count() and time.monotonic() < deadline:
                time.sleep(0.05)
            [line] = run(fresh_db_url, "webhooks", "deliveries").output.splitlines()
            assert dispatching.wait(timeout=60) == 0
    assert "\tpending\tattempts=1\t" in line and "\tnext_attempt=in flight\t" in line, line
    assert "\tlast_attempt=-\t" not in line, line
    # A lease run out (its dispatcher died mid-send): due again when it ran out, after the last attempt.
    db.execute(
        "UPDATE webhook_delivery SET status = 'retrying', last_attempt_at = now() - interval '2 minutes', "
        "next_attempt_at = now() - interval '3 minutes', locked_until = now() - interval '1 minute'"
    )
    [line] = run(fresh_db_url, "webhooks", "deliveries").output.splitlines()
    [(until,)] = db.execute("SELECT locked_until FROM webhook_delivery").fetchall()
    assert f"\tnext_attempt={until.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}\t" in line, line
