"""A secret key that does not open the stored webhook secrets (a mistyped PLINQY_SECRET_KEY_FILE makes a new key
there) or cannot be used at all: the dispatcher refuses to start in one line, and a delivery it cannot sign waits
(pending, no attempt counted) instead of failing for good."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from click.testing import CliRunner
from cryptography.fernet import Fernet

from benchmarks.webhook_receiver import Receiver
from search_service.cli.commands import cli
from search_service.db.secretbox import SecretBox, SecretBoxError
from search_service.events import subscriptions
from search_service.events.dispatcher import Dispatcher
from tests.events_support import (
    BOX,
    FAST,
    deliveries,
    dispatch,
    on_conn,
    seed_listing,
    seed_product,
    seed_store,
    subscribe,
)


def _env(url: str, key_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PLINQY_SECRET_KEY"}
    return {**env, "DATABASE_URL": url, "PLINQY_SECRET_KEY_FILE": str(key_file),
            "PLINQY_WEBHOOK_ALLOW_HOSTS": "127.0.0.1", "PLINQY_WEBHOOK_POLL_S": "0.05"}  # fmt: skip


def test_a_delivery_the_key_cannot_sign_waits_uncounted_and_goes_once_the_key_is_right(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    store = seed_store(db)
    with Receiver() as receiver:
        subscribe(fresh_db_url, store, receiver.url("/ok/held"))
        seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
        other_key = SecretBox(Fernet.generate_key())
        totals = asyncio.run(Dispatcher(fresh_db_url, FAST, other_key).run(drain=True))
        assert (totals.failed, totals.held) == (0, 1), totals
        [(_, status, attempts, _, _, error)] = deliveries(db)
        assert (status, attempts) == ("pending", 0) and error.startswith("cannot sign"), (status, attempts, error)
        failing = db.execute("SELECT failing_since, is_active FROM store_webhook").fetchone()
        assert failing == (None, True)  # not sent: says nothing about the receiver
        assert receiver.snapshot() == []
        db.execute("UPDATE webhook_delivery SET next_attempt_at = now()")  # the restart with the right key, sooner
        assert dispatch(fresh_db_url).delivered == 1
    assert [(r[1], r[2]) for r in deliveries(db)] == [("delivered", 1)]


def test_a_held_delivery_keeps_the_attempt_times_it_had(db: psycopg.Connection, fresh_db_url: str) -> None:
    """The claim writes the attempt times; a held one (no request sent) kept them: `webhooks deliveries` showed a
    last attempt for a delivery never sent, and its first attempt was the hold's."""
    store = seed_store(db)
    with Receiver() as receiver:
        subscribe(fresh_db_url, store, receiver.url("/ok/held"), ["listing.created"])
        for n in range(2):
            seed_listing(db, store, seed_product(db, f"Oat milk {n}"), f"OM-{n}")
        sent_once = datetime(2026, 12, 1, 10, tzinfo=UTC)  # the second was tried once before the key went wrong
        db.execute(
            "UPDATE webhook_delivery SET status = 'retrying', attempts = 1, first_attempt_at = %(t)s, "
            "last_attempt_at = %(t)s WHERE id = (SELECT max(id) FROM webhook_delivery)",
            {"t": sent_once},
        )
        totals = asyncio.run(Dispatcher(fresh_db_url, FAST, SecretBox(Fernet.generate_key())).run(drain=True))
        assert totals.held == 2, totals
        times = "SELECT attempts, first_attempt_at, last_attempt_at FROM webhook_delivery ORDER BY id"
        assert db.execute(times).fetchall() == [(0, None, None), (1, sent_once, sent_once)]
        db.execute("UPDATE webhook_delivery SET next_attempt_at = now()")  # the restart with the right key
        held_until = datetime.now(UTC)
        assert dispatch(fresh_db_url).delivered == 2
        [(_, first, last), (_, first_too, _)] = db.execute(times).fetchall()
        assert first == last and first > held_until and first_too == sent_once


def test_a_drain_ends_when_only_deliveries_it_cannot_sign_are_left(db: psycopg.Connection, fresh_db_url: str) -> None:
    """Each held delivery is due again 2 minutes later, and a drain waits for what falls due within 60 s: three held
    ones due 40 s apart kept `webhooks dispatch --drain` (and `worker --only events --drain`) re-holding them in turn
    for ever."""
    store = seed_store(db)
    with Receiver() as receiver:
        subscribe(fresh_db_url, store, receiver.url("/ok/fine"), ["listing.created"])
        held = subscribe(fresh_db_url, store, receiver.url("/ok/held"), ["listing.created"])
        restored = SecretBox(Fernet.generate_key()).encrypt(held.secret).decode()  # from another environment
        db.execute("UPDATE store_webhook SET secret = %s WHERE id = %s", (restored, held.subscription["id"]))
        for n in range(3):
            seed_listing(db, store, seed_product(db, f"Oat milk {n}"), f"OM-{n}")
        db.execute("""WITH h AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM webhook_delivery
                                 WHERE webhook_id = %s)
                      UPDATE webhook_delivery d SET next_attempt_at = now() + (h.n - 1) * interval '40 seconds'
                      FROM h WHERE h.id = d.id""", (held.subscription["id"],))  # fmt: skip
        dispatcher = Dispatcher(fresh_db_url, FAST, BOX)
        totals = asyncio.run(asyncio.wait_for(dispatcher.run(drain=True), timeout=20))
        assert (totals.delivered, totals.held, totals.failed) == (3, 1, 0), totals
        assert [r.path for r in receiver.snapshot()] == ["/ok/fine"] * 3
    waiting = db.execute("SELECT status, attempts FROM webhook_delivery WHERE webhook_id = %s",
                         (held.subscription["id"],)).fetchall()  # fmt: skip
    assert waiting == [("pending", 0)] * 3


def test_a_dispatcher_whose_key_opens_no_stored_secret_refuses_to_start(
    db: psycopg.Connection, fresh_db_url: str, tmp_path: Path
) -> None:
    store = seed_store(db)
    mistyped = tmp_path / "plinqy.kye"  # a new key is made there; the secret was stored with BOX's
    subscribe(fresh_db_url, store, "https://127.0.0.1:9/refused")
    seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
    for args in (["worker", "--only", "events", "--drain"], ["worker", "--only", "events"],
                 ["webhooks", "dispatch", "--drain"]):  # fmt: skip
        out = subprocess.run([sys.executable, "-m", "search_service", *args], env=_env(fresh_db_url, mistyped),
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 1 and len(lines) == 1, (args, out.stderr)
        assert "opens none of the 1 stored secrets tried" in lines[0] and "PLINQY_SECRET_KEY_FILE" in lines[0]
    assert [(r[1], r[2]) for r in deliveries(db)] == [("pending", 0)]


def test_an_unusable_key_file_is_refused_before_the_jobs_start(fresh_db_url: str, tmp_path: Path) -> None:
    """A directory or a malformed key: the events and sync jobs failed at their start and were restarted for ever."""
    malformed = tmp_path / "malformed.key"
    malformed.write_text("not a key\n")
    for key_file in (tmp_path, malformed):
        for only in ("events", "sync"):
            command = [sys.executable, "-m", "search_service", "worker", "--only", only]
            out = subprocess.run(command, env=_env(fresh_db_url, key_file), capture_output=True, text=True, timeout=60)
            lines = out.stderr.strip().splitlines()
            assert out.returncode == 1 and len(lines) == 1, (only, key_file, out.stderr)
            assert "PLINQY_SECRET_KEY_FILE" in lines[0], lines[0]


def test_the_dispatch_command_says_it_in_one_line_too(
    db: psycopg.Connection, fresh_db_url: str, tmp_path: Path
) -> None:
    store = seed_store(db)
    subscribe(fresh_db_url, store, "https://127.0.0.1:9/hook")  # never sent: the dispatcher does not start
    result = CliRunner().invoke(cli, ["webhooks", "dispatch", "--drain"], env=_env(fresh_db_url, tmp_path / "new.key"))
    assert result.exit_code == 1 and "opens none of" in result.output, result.output


def test_a_rotated_secret_releases_the_deliveries_held_for_it(db: psycopg.Connection, fresh_db_url: str) -> None:
    """The hold's log line and the API tell an operator to fix a subscription it cannot sign for with rotate-secret;
    its held deliveries still waited out their 2-minute hold, and a drain right after the rotation sent none."""
    store = seed_store(db)
    with Receiver() as receiver:
        created = subscribe(fresh_db_url, store, receiver.url("/ok/rotated"), ["listing.created"])
        for n in range(2):
            seed_listing(db, store, seed_product(db, f"Oat milk {n}"), f"OM-{n}")
        wrong_key = SecretBox(Fernet.generate_key())  # the secret was stored under another key
        assert asyncio.run(Dispatcher(fresh_db_url, FAST, wrong_key).run(drain=True)).held == 2
        webhook = created.subscription["id"]
        on_conn(fresh_db_url, lambda c: subscriptions.rotate_secret(c, BOX, FAST, store, webhook))
        assert dispatch(fresh_db_url).delivered == 2
        assert [d[1] for d in deliveries(db)] == ["delivered", "delivered"]


def _sealed_with_the_key_read(key_file: str) -> str:
    """ "x" encrypted with the key this process read from `key_file`, or why it read none."""
    try:
        return SecretBox.from_settings(None, Path(key_file)).encrypt("x").decode()
    except SecretBoxError as exc:
        return str(exc)


def test_processes_that_make_the_key_file_together_all_read_the_one_key(tmp_path: Path) -> None:
    """The file was created, then written: a process starting beside read it empty and said the key "is not a Fernet
    key" (a serve worker's /readyz `unusable`, `worker` exit 1), though the file was fine a moment later."""
    with multiprocessing.get_context("fork").Pool(8) as pool:
        for n in range(100):
            key_file = tmp_path / str(n) / "plinqy.key"
            sealed = pool.map(_sealed_with_the_key_read, [str(key_file)] * 8)
            assert [said for said in sealed if " " in said] == [], n  # a token has no spaces, a refusal has
            box = SecretBox(key_file.read_bytes().strip())
            assert [box.decrypt(token.encode()) for token in sealed] == ["x"] * 8  # each read the one key
            assert (key_file.stat().st_mode & 0o777, os.listdir(key_file.parent)) == (0o600, ["plinqy.key"])
