"""Changing a webhook in place: its URL and events (PATCH, `webhooks update`) and its secret (rotate-secret),
keeping its id, numbering and queued retries; over HTTP and the CLI, with a real receiver and dispatcher."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from litestar.testing import TestClient
from standardwebhooks import Webhook, WebhookVerificationError

from benchmarks.webhook_receiver import Received, Receiver
from search_service.cli.commands import cli
from search_service.db.secretbox import SecretBox
from search_service.events.dispatcher import Dispatcher
from search_service.ingest.keys import create_key
from tests.events_support import FAST, seed_listing, seed_product, seed_store
from tests.test_api import app_settings, load_test_encoder, running_client

KEY = Fernet.generate_key().decode()
BOX = SecretBox(KEY.encode())
LATER = replace(FAST, retry_schedule=(0.0, 100.0))  # a failed first attempt is retried in 100 s: a drain stops


@pytest.fixture(scope="module")
def client(db_url: str) -> Iterator[TestClient[Any]]:
    settings = app_settings(db_url, secret_key=KEY, events=FAST)
    with running_client(settings, load_test_encoder()) as c:
        yield c


def _store(db_url: str, name: str) -> tuple[uuid.UUID, dict[str, str]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = seed_store(conn, name)
        key = create_key(conn, store_id=store, scopes=("webhooks:write",)).key
    return store, {"Authorization": f"Bearer {key}"}


def _listing(db_url: str, store: uuid.UUID, sku: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_listing(conn, store, seed_product(conn, f"Product {sku}"), sku)


def _dispatch(db_url: str, config: Any = FAST) -> None:
    asyncio.run(Dispatcher(db_url, config, BOX).run(drain=True))


def _data(received: Received) -> dict[str, Any]:
    return dict(json.loads(received.body)["data"])


def test_a_webhook_is_changed_in_place_keeping_its_numbering_and_retries(client: TestClient[Any], db_url: str) -> None:
    """Only remove + add existed: the pending retry was dropped and `sequence` restarted at 1."""
    store, auth = _store(db_url, "Moves its receiver")
    base = f"/v1/stores/{store}/webhooks"
    with Receiver() as receiver:
        hook = client.post(base, json={"url": receiver.url("/status/500/old"), "events": ["listing.created"]},
                           headers=auth).json()  # fmt: skip
        _listing(db_url, store, "A")
        _dispatch(db_url, LATER)  # attempt 1 fails: retrying
        changed = client.patch(
            f"{base}/{hook['id']}", json={"url": receiver.url("/ok/new/./in?"), "events": ["*"]}, headers=auth
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["id"] == hook["id"] and changed.json()["url"] == receiver.url("/ok/new/in")
        assert changed.json()["events"] == ["*"]
        both = client.patch(f"{base}/{hook['id']}", json={"events": ["*", "stock.out", "*"]}, headers=auth)
        assert both.status_code == 200 and both.json()["events"] == ["*"], both.text  # was ["*", "stock.out"]
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("UPDATE webhook_delivery SET next_attempt_at = now() WHERE status = 'retrying'")
        _listing(db_url, store, "B")
        _dispatch(db_url)
        got = [r for r in receiver.snapshot() if r.path == "/ok/new/in"]
    assert sorted(_data(r)["sequence"] for r in got) == [1, 2]  # the retry kept, the numbering going on
    assert all(Webhook(hook["secret"]).verify(r.body, r.headers) for r in got)  # the same secret
    assert [w["id"] for w in client.get(base, headers=auth).json()["webhooks"]] == [hook["id"]]


def test_a_change_is_checked_as_a_new_webhook_is(client: TestClient[Any], db_url: str) -> None:
    store, auth = _store(db_url, "Checked changes")
    base = f"/v1/stores/{store}/webhooks"
    first = client.post(base, json={"url": "http://127.0.0.1:9/one", "events": ["*"]}, headers=auth).json()
    second = client.post(base, json={"url": "http://127.0.0.1:9/two", "events": ["*"]}, headers=auth).json()
    path = f"{base}/{first['id']}"
    for body, parameter, words in (
        ({"url": "http://127.0.0.1:9/x/../two"}, "url", second["id"]),  # another active webhook's URL, spelt otherwise
        ({"url": "https://10.0.0.1/x"}, "url", "private"),
        ({"url": "http://127.0.0.1:9/x#f"}, "url", "fragment"),
        ({"events": ["stock.gone"]}, "events", "unknown event type"),
        ({"events": []}, "events", "at least one"),
        ({}, "url", "nothing to change"),
        ({"url": "http://127.0.0.1:9/x", "secret": "mine"}, None, "secret"),
    ):
        refused = client.patch(path, json=body, headers=auth)
        assert refused.status_code == 400, (body, refused.text)
        error = refused.json()["error"]
        assert (parameter is None or error["parameter"] == parameter) and words in error["message"], (body, error)
    missing = client.patch(f"{base}/{uuid.uuid4()}", json={"events": ["*"]}, headers=auth)
    assert missing.status_code == 404 and missing.json()["error"]["parameter"] == "webhook_id"
    same = client.patch(path, json={"url": "http://127.0.0.1:9/one"}, headers=auth)  # its own URL: no clash
    assert same.status_code == 200, same.text
    assert client.patch(path, json={"events": ["*"]}).status_code == 401
    _, other_auth = _store(db_url, "Not theirs")
    assert client.patch(path, json={"events": ["*"]}, headers=other_auth).status_code == 403


def _signatures(received: Received) -> list[str]:
    return received.headers["webhook-signature"].split(" ")


def test_a_rotated_secret_and_the_old_one_both_verify_until_the_grace_ends(
    client: TestClient[Any], db_url: str
) -> None:
    """Rotating meant remove + add: queued deliveries lost, numbering restarted, no overlap for the receiver."""
    store, auth = _store(db_url, "Rotates its secret")
    base = f"/v1/stores/{store}/webhooks"
    with Receiver() as receiver:
        hook = client.post(base, json={"url": receiver.url("/ok/rot"), "events": ["*"]}, headers=auth).json()
        rotated = client.post(f"{base}/{hook['id']}/rotate-secret", headers=auth)
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new.startswith("whsec_") and new != hook["secret"] and rotated.json()["id"] == hook["id"]
        assert rotated.json()["previous_secret_valid_until"] > hook["created_at"]
        _listing(db_url, store, "A")
        _dispatch(db_url)
        ping = client.post(f"{base}/{hook['id']}/test", headers=auth)
        assert ping.json()["delivered"] is True, ping.text
        with psycopg.connect(db_url, autocommit=True) as conn:
            stored = conn.execute("SELECT secret, previous_secret FROM store_webhook WHERE id = %s", (hook["id"],))
            tokens = stored.fetchone()
            assert tokens is not None and "whsec_" not in str(tokens)  # both encrypted
            assert BOX.decrypt(tokens[1].encode()) == hook["secret"]
            conn.execute("UPDATE store_webhook SET previous_secret_until = now() - interval '1 second'")
        _listing(db_url, store, "B")
        _dispatch(db_url)
        during, after = receiver.snapshot()[:2], receiver.snapshot()[2:]
    assert len(during) == 2 and len(after) == 1
    for received in during:  # a delivery and a ping, each signed with both
        assert len(_signatures(received)) == 2, received.headers
        for secret in (new, hook["secret"]):
            assert Webhook(secret).verify(received.body, received.headers)
    assert len(_signatures(after[0])) == 1 and Webhook(new).verify(after[0].body, after[0].headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(after[0].body, after[0].headers)
    assert [_data(r)["sequence"] for r in (during[0], after[0])] == [1, 2]
    assert client.post(f"{base}/{hook['id']}/rotate-secret").status_code == 401
    missing = client.post(f"{base}/{uuid.uuid4()}/rotate-secret", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"]["parameter"] == "webhook_id"


def _store_secret_under_another_key(db_url: str, webhook_id: str, secret: str, column: str = "secret") -> None:
    """As after a restore or a key mix-up: the key still opens the other webhooks' secrets, not this one."""
    token = SecretBox(Fernet.generate_key()).encrypt(secret).decode()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"UPDATE store_webhook SET {column} = %s WHERE id = %s", (token, webhook_id))


def _stored_previous(db_url: str, webhook_id: str) -> tuple[Any, ...] | None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        query = "SELECT previous_secret, previous_secret_until FROM store_webhook WHERE id = %s"
        return conn.execute(query, (webhook_id,)).fetchone()


def test_a_rotation_drops_a_secret_the_key_cannot_open_and_says_so(client: TestClient[Any], db_url: str) -> None:
    """A secret stored under another key was kept as the previous one for the grace period, a dead entry that signs
    nothing, and the answer promised both secrets would sign until then."""
    store, auth = _store(db_url, "Rotates away a dead secret")
    base = f"/v1/stores/{store}/webhooks"
    live = {"url": "https://127.0.0.1:9/live", "events": ["*"]}  # the key opens it: the key is right, not this one
    assert client.post(base, json=live, headers=auth).status_code == 201
    hook = client.post(base, json={"url": "https://127.0.0.1:9/dead", "events": ["*"]}, headers=auth).json()
    _store_secret_under_another_key(db_url, hook["id"], hook["secret"])
    rotated = client.post(f"{base}/{hook['id']}/rotate-secret", headers=auth)
    assert rotated.status_code == 200 and rotated.json()["previous_secret_valid_until"] is None, rotated.text
    assert _stored_previous(db_url, hook["id"]) == (None, None)
    again = client.post(f"{base}/{hook['id']}/rotate-secret", headers=auth).json()  # the live one is kept
    assert again["previous_secret_valid_until"] is not None and _stored_previous(db_url, hook["id"])[0] is not None
    _store_secret_under_another_key(db_url, hook["id"], again["secret"])
    said = _cli(db_url, "webhooks", "rotate-secret", hook["id"])
    assert said.exit_code == 0 and said.output.splitlines()[0] == (
        f"webhook {hook['id']}: the replaced secret does not open with PLINQY_SECRET_KEY (stored under another key): "
        "dropped; deliveries are signed with the new secret only"
    ), said.output
    assert said.output.strip().splitlines()[-1].startswith("whsec_")
    assert _stored_previous(db_url, hook["id"]) == (None, None)


def test_a_key_that_opens_no_stored_secret_stores_no_new_one_over_http(client: TestClient[Any], db_url: str) -> None:
    """A mistyped PLINQY_SECRET_KEY_FILE (a new key there), which `webhooks add` refuses: the API stored a new
    webhook's secret under it, a rotation dropped the secret the right key opens, and the secret so stored then made
    the wrong key read as right (/readyz `ok`, the CLI's refusals gone)."""
    store, auth = _store(db_url, "Refuses a wrong key")
    base = f"/v1/stores/{store}/webhooks"
    hook = client.post(base, json={"url": "https://127.0.0.1:9/kept", "events": ["*"]}, headers=auth).json()
    wrong = app_settings(db_url, secret_key=Fernet.generate_key().decode(), events=FAST)
    with running_client(wrong, load_test_encoder()) as other:
        new = {"url": "https://127.0.0.1:9/wrong", "events": ["*"]}
        for path, body in ((base, new), (f"{base}/{hook['id']}/rotate-secret", None)):
            answer = other.post(path, json=body, headers=auth)
            assert answer.status_code == 503 and "retry-after" not in answer.headers, (path, answer.text)
            message = answer.json()["error"]["message"]
            assert "(its PLINQY_SECRET_KEY) opens none of" in message and "nothing was stored" in message, message
        assert other.get("/readyz").json()["checks"]["secret_key"] == "wrong"
    with psycopg.connect(db_url, autocommit=True) as conn:
        query = "SELECT secret, previous_secret FROM store_webhook WHERE store_id = %s"
        [(secret, previous)] = conn.execute(query, (store,)).fetchall()
    assert BOX.decrypt(secret.encode()) == hook["secret"] and previous is None  # untouched, under the right key


def test_a_previous_secret_the_key_cannot_open_is_skipped_and_the_new_one_signs(
    client: TestClient[Any], db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Rotated, then the old secret stops opening (the key changed within the grace period): the old one held every
    delivery (pending, uncounted) for a day, though the new secret, which the receiver was just given, signs them."""
    store, auth = _store(db_url, "Rotates an unopenable secret")
    base = f"/v1/stores/{store}/webhooks"
    with Receiver() as receiver:
        hook = client.post(base, json={"url": receiver.url("/ok/unopenable"), "events": ["*"]}, headers=auth).json()
        new = client.post(f"{base}/{hook['id']}/rotate-secret", headers=auth).json()["secret"]
        _store_secret_under_another_key(db_url, hook["id"], hook["secret"], column="previous_secret")
        _listing(db_url, store, "U1")
        _listing(db_url, store, "U2")
        with caplog.at_level(logging.WARNING, logger="plinqy.events"):
            _dispatch(db_url)
        said = [json.loads(r.message) for r in caplog.records if "previous_secret_skipped" in r.message]
        ping = client.post(f"{base}/{hook['id']}/test", headers=auth)
        assert ping.status_code == 200 and ping.json()["delivered"] is True, ping.text
        received = receiver.snapshot()
    assert len(received) == 3  # two listings and the ping, each signed with the new secret alone
    for r in received:
        assert len(_signatures(r)) == 1 and Webhook(new).verify(r.body, r.headers), r.headers
    assert [(s["webhook"], s["signed_with"]) for s in said] == [(hook["id"], "the current secret alone")]  # once
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute("SELECT status, attempts FROM webhook_delivery WHERE webhook_id = %s", (hook["id"],))
        assert sorted(rows.fetchall()) == [("delivered", 1)] * 3


def test_a_ping_whose_secret_does_not_open_records_nothing_and_names_the_secret(
    client: TestClient[Any], db_url: str
) -> None:
    """It answered "this connection's stored secret … retry later" with Retry-After: 1 (an inbound connection's words,
    and a retry cannot help), and each try left a failed delivery saying "a ping in flight" that was never sent."""
    store, auth = _store(db_url, "Pings an unopenable secret")
    base = f"/v1/stores/{store}/webhooks"
    with Receiver() as receiver:
        hook = client.post(base, json={"url": receiver.url("/ok/unpinged"), "events": ["*"]}, headers=auth).json()
        _store_secret_under_another_key(db_url, hook["id"], hook["secret"])
        for _ in range(2):
            ping = client.post(f"{base}/{hook['id']}/test", headers=auth)
            assert ping.status_code == 503 and "retry-after" not in ping.headers, (ping.headers, ping.text)
            message = ping.json()["error"]["message"]
            assert "this webhook's signing secret" in message and "PLINQY_SECRET_KEY" in message, message
            assert "connection" not in message and "an operator must fix the key" in message.lower(), message
        assert receiver.snapshot() == []
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute("SELECT count(*) FROM webhook_delivery WHERE webhook_id = %s", (hook["id"],)).fetchone()
        assert rows == (0,)


def test_openapi_documents_update_and_rotation(client: TestClient[Any]) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    update = paths["/v1/stores/{store_id}/webhooks/{webhook_id}"]["patch"]
    assert {"200", "400", "404"} <= set(update["responses"]) and "sequence" in update["description"]
    rotate = paths["/v1/stores/{store_id}/webhooks/{webhook_id}/rotate-secret"]["post"]
    assert {"200", "404"} <= set(rotate["responses"]) and "PLINQY_WEBHOOK_SECRET_GRACE_S" in rotate["description"]
    assert "v1,<new> v1,<old>" in rotate["description"]


def _cli(url: str, *args: str, **env: str) -> Any:
    environment = {"DATABASE_URL": url, "PLINQY_SECRET_KEY": KEY, "PLINQY_WEBHOOK_ALLOW_HOSTS": "127.0.0.1", **env}
    return CliRunner().invoke(cli, list(args), env=environment, catch_exceptions=False)


def test_update_and_rotate_secret_from_the_cli(db_url: str) -> None:
    store, _ = _store(db_url, "From the shell")
    added = _cli(db_url, "webhooks", "add", "--store", str(store), "--url", "http://127.0.0.1:9/cli")
    webhook_id = added.output.split()[1]
    updated = _cli(db_url, "webhooks", "update", webhook_id, "--url", "HTTP://127.0.0.1:9/cli2",
                   "--events", "stock.out,stock.back")  # fmt: skip
    assert updated.exit_code == 0, updated.output
    assert updated.output.splitlines() == [
        f"updated webhook {webhook_id}: http://127.0.0.1:9/cli2",
        "events: stock.out, stock.back",
    ]
    bad = _cli(db_url, "webhooks", "update", webhook_id, "--url", "https://192.168.1.1/x")
    assert bad.exit_code == 1 and bad.output.startswith("error: --url: ") and "private" in bad.output
    nothing = _cli(db_url, "webhooks", "update", webhook_id)  # called wrongly: exit 2, as click's usage errors
    assert (nothing.exit_code, nothing.output.strip()) == (2, "error: --url: give url and/or events: nothing to change")
    unknown_type = _cli(db_url, "webhooks", "update", webhook_id, "--events", "stock.gone")
    assert unknown_type.exit_code == 2, unknown_type.output
    assert unknown_type.output.startswith("error: --event: unknown event type 'stock.gone'"), unknown_type.output
    rotated = _cli(db_url, "webhooks", "rotate-secret", webhook_id)
    assert rotated.exit_code == 0, rotated.output
    secret = rotated.output.strip().splitlines()[-1]
    assert secret.startswith("whsec_") and "signed with both secrets until" in rotated.output
    assert re.search(r"until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, then", rotated.output), rotated.output  # UTC, as keys
    missing = _cli(db_url, "webhooks", "rotate-secret", str(uuid.uuid4()))
    assert missing.exit_code == 1 and missing.output.strip() == "error: WEBHOOK_ID: no webhook with this id"
