"""Rotating the secret key (MultiFernet): PLINQY_SECRET_KEY (or the key file) holds the new key first and the old
ones after it, every one opens and the first encrypts; `secrets rotate` encrypts every stored secret again under the
first (webhook and POS connections' signing secrets, vendor credentials, subscriptions' secrets and the ones a
rotation replaced), after which the old key can go. The secrets themselves never change: a rotated subscription's
deliveries verify with the secret `webhooks add` printed."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet
from standardwebhooks import Webhook

from benchmarks.webhook_receiver import Receiver
from search_service.cli.commands import cli
from search_service.db.secretbox import SecretBox, SecretBoxError, SecretKeyUnusable
from search_service.events.dispatcher import Dispatcher
from tests.events_support import FAST, seed_listing, seed_product, seed_store

OLD, NEW, UNKNOWN = (Fernet.generate_key().decode() for _ in range(3))
NOWHERE = "http://127.0.0.1:9"  # connect reads nothing from the vendor
# Every encrypted column, read back as bytes (store_webhook keeps the token's text).
TOKENS = """SELECT 'ingest_connection', id, 'secret_enc', secret_enc FROM ingest_connection WHERE secret_enc IS NOT NULL
UNION ALL SELECT 'ingest_connection', id, 'credentials_enc', credentials_enc FROM ingest_connection
          WHERE credentials_enc IS NOT NULL
UNION ALL SELECT 'store_webhook', id, 'secret', convert_to(secret, 'UTF8') FROM store_webhook WHERE secret IS NOT NULL
UNION ALL SELECT 'store_webhook', id, 'previous_secret', convert_to(previous_secret, 'UTF8') FROM store_webhook
          WHERE previous_secret IS NOT NULL"""


def run(url: str, key: str, *args: str) -> Result:
    env = {"DATABASE_URL": url, "PLINQY_SECRET_KEY": key, "PLINQY_WEBHOOK_ALLOW_HOSTS": "127.0.0.1"}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def tokens(db: psycopg.Connection) -> dict[tuple[str, Any, str], bytes]:
    return {(table, row_id, column): bytes(token) for table, row_id, column, token in db.execute(TOKENS)}


def opened(box: SecretBox, stored: dict[tuple[str, Any, str], bytes]) -> dict[tuple[str, Any, str], str]:
    return {place: box.decrypt(token) for place, token in stored.items()}


def seed_secrets(db: psycopg.Connection, url: str, receiver: Receiver, stores: int = 2) -> dict[uuid.UUID, str]:
    """Per store, through the CLI under OLD: a subscription (its secret returned), a `webhook` connection and an
    Erply one (credentials); the first subscription's secret rotated, so that it has a previous secret too."""
    secrets = {}
    for n in range(stores):
        store = seed_store(db, f"Store {n}")
        added = run(url, OLD, "webhooks", "add", "--store", str(store), "--url", receiver.url(f"/ok/{n}"))
        assert added.exit_code == 0, added.output
        webhook_id = uuid.UUID(added.output.split()[1])
        secrets[webhook_id] = added.output.strip().splitlines()[-1]
        assert run(url, OLD, "connect", "webhook", "--store", str(store)).exit_code == 0
        erply = run(url, OLD, "connect", "erply", "--store", str(store), "--location", "1", "--client-code", "123456",
                    "--username", "api-user", "--password", f"pass-{n}", "--base-url", NOWHERE)  # fmt: skip
        assert erply.exit_code == 0, erply.output
    first = next(iter(secrets))
    rotated = run(url, OLD, "webhooks", "rotate-secret", str(first))
    assert rotated.exit_code == 0, rotated.output
    secrets[first] = rotated.output.strip().splitlines()[-1]
    return secrets


def test_several_keys_open_the_secrets_of_each_and_the_first_encrypts(tmp_path: Path) -> None:
    under_old, under_new = SecretBox(OLD.encode()).encrypt("old's"), SecretBox(NEW.encode()).encrypt("new's")
    key_file = tmp_path / "plinqy.key"
    key_file.write_text(f"{NEW}\n{OLD}\n")  # the file: one a line (commas too)
    for box in (SecretBox(f"{NEW},{OLD}".encode()), SecretBox(f" {NEW} , {OLD}, ".encode()),
                SecretBox.from_settings(None, key_file)):  # fmt: skip
        assert box.key_count == 2
        assert (box.decrypt(under_old), box.decrypt(under_new)) == ("old's", "new's")
        sealed = box.encrypt("fresh")
        assert SecretBox(NEW.encode()).decrypt(sealed) == "fresh" and box.under_first_key(sealed)
        with pytest.raises(SecretBoxError):
            SecretBox(OLD.encode()).decrypt(sealed)
        rotated = box.rotate(under_old)
        assert rotated != under_old and SecretBox(NEW.encode()).decrypt(rotated) == "old's"
    assert SecretBox(NEW.encode()).key_count == 1  # one key, as before


def test_a_malformed_key_in_the_list_is_refused_naming_its_place_never_its_text(
    fresh_db_url: str, tmp_path: Path
) -> None:
    with pytest.raises(SecretKeyUnusable, match=r"^key 2 of the 3 in PLINQY_SECRET_KEY is not a Fernet key"):
        SecretBox(f"{NEW},not-a-key-at-all,{OLD}".encode())
    with pytest.raises(SecretKeyUnusable, match=r"^PLINQY_SECRET_KEY is not a Fernet key"):  # one: as it was
        SecretBox(b"not-a-key-at-all")
    refused = run(fresh_db_url, f"{NEW},not-a-key-at-all", "secrets", "rotate")
    lines = refused.output.strip().splitlines()
    assert refused.exit_code == 1 and len(lines) == 1, refused.output
    assert "key 2 of the 2 in PLINQY_SECRET_KEY is not a Fernet key" in lines[0] and "not-a-key" not in lines[0]
    key_file = tmp_path / "plinqy.key"
    key_file.write_text(f"{NEW}\nnot-a-key-at-all\n")
    env = {"DATABASE_URL": fresh_db_url, "PLINQY_SECRET_KEY_FILE": str(key_file)}
    by_file = CliRunner().invoke(cli, ["secrets", "rotate"], env=env)
    assert by_file.exit_code == 1 and f"key 2 of the 2 in the key file {key_file}" in by_file.output, by_file.output
    assert "PLINQY_SECRET_KEY_FILE" in by_file.output and "not-a-key" not in by_file.output


def test_rotate_reencrypts_every_secret_under_the_new_key_and_a_second_run_rewrites_nothing(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    with Receiver() as receiver:
        secrets = seed_secrets(db, fresh_db_url, receiver)
        before = tokens(db)
        plain = opened(SecretBox(OLD.encode()), before)
        assert len(plain) == 2 * 2 + 2 + 1  # connections' secrets and credentials, subscriptions', one previous
        done = run(fresh_db_url, f"{NEW},{OLD}", "secrets", "rotate", "--batch-size", "3")
        assert done.exit_code == 0, done.output
        assert done.output.splitlines() == [
            "ingest_connection: 4 row(s), 4 secret(s) encrypted again under the first key, 0 already under it",
            "store_webhook: 2 row(s), 3 secret(s) encrypted again under the first key, 0 already under it",
        ]
        after = tokens(db)
        assert after.keys() == before.keys() and not set(after.values()) & set(before.values())
        assert opened(SecretBox(NEW.encode()), after) == plain  # the new key alone opens them: the same secrets
        again = run(fresh_db_url, NEW, "secrets", "rotate")  # the old key dropped already
        assert again.exit_code == 0, again.output
        assert "ingest_connection: 4 row(s), 0 secret(s) encrypted again under the first key, 4 already" in again.output
        assert "store_webhook: 2 row(s), 0 secret(s) encrypted again under the first key, 3 already" in again.output
        assert "holds one key" in again.output and tokens(db) == after  # nothing rewritten
        for n, store in enumerate(r[0] for r in db.execute("SELECT id FROM store ORDER BY name")):
            seed_listing(db, store, seed_product(db, f"Oat milk {n}"), f"OM-{n}")
        totals = asyncio.run(Dispatcher(fresh_db_url, FAST, SecretBox(NEW.encode())).run(drain=True))
        assert (totals.delivered, totals.held, totals.failed) == (2, 0, 0), totals
        got = receiver.snapshot()
    by_path = {r.path: r for r in got}
    for n, secret in enumerate(secrets.values()):  # the secret printed by `add` (or `rotate-secret`) verifies
        assert Webhook(secret).verify(by_path[f"/ok/{n}"].body, by_path[f"/ok/{n}"].headers)["type"]


def test_a_secret_no_key_opens_stops_the_rotation_and_its_batch_is_not_written(
    db: psycopg.Connection, fresh_db_url: str
) -> None:
    with Receiver() as receiver:
        secrets = seed_secrets(db, fresh_db_url, receiver, stores=3)
    stray = list(secrets)[1]  # restored from another environment: under a key given to none
    stray_token = SecretBox(UNKNOWN.encode()).encrypt(secrets[stray]).decode()
    db.execute("UPDATE store_webhook SET secret = %s WHERE id = %s", (stray_token, stray))
    before = tokens(db)
    refused = run(fresh_db_url, f"{NEW},{OLD}", "secrets", "rotate")  # one batch a table (200 rows)
    lines = refused.output.strip().splitlines()
    assert refused.exit_code == 1 and len(lines) == 1, refused.output
    assert f"store_webhook row {stray}'s secret" in lines[0] and "none of the 2 key(s)" in lines[0], lines[0]
    assert "run again" in lines[0] and secrets[stray] not in lines[0] and stray_token not in lines[0]
    after = tokens(db)
    webhooks = [place for place in before if place[0] == "store_webhook"]
    assert [after[p] for p in webhooks] == [before[p] for p in webhooks]  # its batch: nothing written
    connections = [place for place in before if place[0] == "ingest_connection"]
    assert all(SecretBox(NEW.encode()).under_first_key(after[p]) for p in connections)  # the table before: done
    db.execute("UPDATE store_webhook SET secret = %s WHERE id = %s",
               (SecretBox(OLD.encode()).encrypt(secrets[stray]).decode(), stray))  # fmt: skip
    resumed = run(fresh_db_url, f"{NEW},{OLD}", "secrets", "rotate")
    assert resumed.exit_code == 0 and "ingest_connection: 6 row(s), 0 secret(s)" in resumed.output, resumed.output
    assert "store_webhook: 3 row(s), 4 secret(s) encrypted again" in resumed.output, resumed.output
