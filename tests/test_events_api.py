"""The webhook endpoints over HTTP, and the SSRF guard: refused URLs answer 400 saying why, before any connection."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from litestar.testing import TestClient
from standardwebhooks import Webhook

from benchmarks.webhook_receiver import Receiver
from embeddings.encoder import Encoder
from search_service.events import ssrf, subscriptions
from search_service.events.config import EventsConfig
from search_service.events.dispatcher import Dispatcher
from search_service.ingest.keys import create_key
from tests.events_support import BOX, FAST, deliveries, seed_store, subscribe
from tests.test_api import app_settings, load_test_encoder, running_client

# Each URL is refused; the message must contain the reason.
REFUSED = [
    ("http://example.com/hook", "only https"),
    ("ftp://example.com/hook", "only https"),
    ("https:///no-host", "no host"),
    ("https://hooks.example.com:0/hook", "port 0"),
    ("https://127.0.0.1/hook", "loopback"),
    ("https://2130706433/hook", "loopback"),
    ("https://0177.0.0.1/hook", "loopback"),
    ("https://127.1/hook", "loopback"),
    ("https://0x7f000001/hook", "loopback"),
    ("https://0x7f.0.0.1/hook", "loopback"),
    ("https://[::1]/hook", "loopback"),
    ("https://localhost/hook", "loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "IPv4-mapped"),
    ("https://[::ffff:169.254.169.254]/hook", "IPv4-mapped"),
    ("https://10.0.0.1/hook", "private"),
    ("https://172.16.5.4/hook", "private"),
    ("https://192.168.1.1:8443/hook", "private"),
    ("https://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("https://2852039166/latest/meta-data/", "cloud metadata"),
    ("https://0251.0376.0251.0376/latest/", "cloud metadata"),
    ("https://169.254.1.1/hook", "link-local"),
    ("https://100.64.0.1/hook", "CGNAT"),
    ("https://224.0.0.1/hook", "multicast"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://[::]/hook", "unspecified"),
    ("https://[fc00::1]/hook", "unique local"),
    ("https://[fd12:3456::1]/hook", "unique local"),
    ("https://[fe80::1]/hook", "IPv6 link-local"),
    ("https://[fec0::1]/hook", "IPv6 site-local"),  # RFC 3879: it was accepted (Python 3.11 calls it global)
    ("https://[feff::1]/hook", "IPv6 site-local"),
    ("https://240.0.0.1/hook", "reserved"),
    ("https://[64:ff9b::a00:1]/hook", "NAT64"),
    ("https://[2002:7f00:1::]/hook", "6to4"),
    ("https://192.0.0.192/hook", "Oracle Cloud Classic"),
    ("https://192.0.0.9/hook", "special-purpose"),
    ("https://192.88.99.1/hook", "6to4 relay"),
    ("https://[3fff::1]/hook", "IPv6 documentation"),  # RFC 9637: it was accepted (Python 3.11 calls it global)
    ("https://[3fff:fff:ffff::1]/hook", "IPv6 documentation"),
    ("https://[2001:db8::1]/hook", "private"),  # the first documentation prefix
    ("https://shop:s3cret@example.com/hook", "user name or password"),
    ("https://shop@example.com/hook", "user name or password"),
    ("https://8.8.8.8%00.127.0.0.1/", "control character"),  # the resolver read 8.8.8.8: 201, never delivered
    ("https://8.8.8.8%00.evil/hook", "control character"),
    ("https://8.8.8.8%20.evil/hook", "space"),
]


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_test_encoder()


@pytest.fixture(scope="module")
def key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture(scope="module")
def client(db_url: str, encoder: Encoder, key: str) -> Iterator[TestClient[Any]]:
    """The API with no allowed hosts: every address is checked."""
    settings = app_settings(db_url, secret_key=key, events=EventsConfig())
    with running_client(settings, encoder) as c:
        yield c


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every outbound connect of this process (the database's included), recorded before it happens."""
    seen: list[Any] = []
    real_connect = socket.socket.connect
    real_create = socket.create_connection

    def connect(self: socket.socket, address: Any) -> Any:
        seen.append(address)
        return real_connect(self, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(address)
        return real_create(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return seen


def _db_port(db_url: str) -> int:
    return int(db_url.rsplit(":", 1)[1].split("/", 1)[0])


@pytest.fixture(scope="module")
def store(db_url: str) -> uuid.UUID:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return seed_store(conn)


def _key(db_url: str, store: uuid.UUID | None, scopes: tuple[str, ...] = ("webhooks:write",)) -> dict[str, str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return {"Authorization": f"Bearer {create_key(conn, store_id=store, scopes=scopes).key}"}


@pytest.fixture(scope="module")
def auth(db_url: str, store: uuid.UUID) -> dict[str, str]:
    """The store's key with the webhooks scope."""
    return _key(db_url, store)


@pytest.mark.parametrize(("url", "reason"), REFUSED, ids=[u for u, _ in REFUSED])
def test_unsafe_urls_are_refused_before_any_connection(
    client: TestClient[Any],
    store: uuid.UUID,
    auth: dict[str, str],
    db_url: str,
    connects: list[Any],
    url: str,
    reason: str,
) -> None:
    response = client.post(f"/v1/stores/{store}/webhooks", json={"url": url, "events": ["stock.out"]}, headers=auth)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["parameter"] == "url" and reason in error["message"], error
    assert all(a[1] == _db_port(db_url) for a in connects if isinstance(a, tuple)), connects


def test_a_body_that_is_no_json_names_the_body(client: TestClient[Any], store: uuid.UUID, auth: dict[str, str]) -> None:
    # msgspec's "Input data was truncated" came with `parameter: null`
    headers = {**auth, "content-type": "application/json"}
    response = client.post(f"/v1/stores/{store}/webhooks", content=b'{"url": ', headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == {"parameter": "body", "message": "the body is not valid JSON: it ends too early"}


def test_table_is_large_enough() -> None:
    assert len(REFUSED) >= 25


def test_names_are_checked_on_every_answer_and_again_at_delivery(fresh_db_url: str, connects: list[Any]) -> None:
    answers = {"hooks.example.test": ["203.0.113.7"]}  # TEST-NET-3: documentation space, never public

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    with pytest.raises(ssrf.UnsafeUrl, match=r"203\.0\.113\.7"):
        asyncio.run(ssrf.check("https://hooks.example.test/x", [], resolver))
    answers["mixed.example.test"] = ["10.1.2.3", "127.0.0.1"]
    with pytest.raises(ssrf.UnsafeUrl, match="private"):
        asyncio.run(ssrf.check("https://mixed.example.test/x", [], resolver))
    # A subscription that passed its check (here: written directly) whose name now resolves to the metadata address.
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        store = seed_store(conn)
        conn.execute(
            "INSERT INTO store_webhook (store_id, url, events, secret) VALUES (%s, %s, '{*}', %s)",
            (store, "https://rebind.example.test/x", BOX.encrypt("whsec_" + "Q" * 43 + "=").decode()),
        )
        conn.execute("INSERT INTO import_batch (store_id, source, status) VALUES (%s, 'csv', 'completed')", (store,))
    answers["rebind.example.test"] = ["169.254.169.254"]
    config = EventsConfig(retry_schedule=(0.0,), poll_interval_s=0.05)
    totals = asyncio.run(Dispatcher(fresh_db_url, config, BOX, resolver=resolver).run(drain=True))
    assert totals.failed == 1
    with psycopg.connect(fresh_db_url) as conn:
        error = deliveries(conn)[0][5]
    assert "SSRF" in error and "cloud metadata" in error
    assert all(a[1] == _db_port(fresh_db_url) for a in connects if isinstance(a, tuple)), connects


@pytest.fixture(scope="module")
def local_client(db_url: str, encoder: Encoder, key: str) -> Iterator[TestClient[Any]]:
    """The API with 127.0.0.1 allowed (local development), for the receiver below."""
    settings = app_settings(db_url, secret_key=key, events=FAST)
    with running_client(settings, encoder) as c:
        yield c


def test_create_list_ping_delete(local_client: TestClient[Any], store: uuid.UUID, auth: dict[str, str]) -> None:
    base = f"/v1/stores/{store}/webhooks"
    with Receiver() as receiver:
        created = local_client.post(
            base, json={"url": receiver.url("/ok/api"), "events": ["stock.out", "stock.back"]}, headers=auth
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["secret"].startswith("whsec_") and body["events"] == ["stock.out", "stock.back"]
        listed = local_client.get(base, headers=auth).json()["webhooks"]
        assert [w["id"] for w in listed] == [body["id"]] and "secret" not in listed[0] and listed[0]["enabled"]
        assert {k: v for k, v in body.items() if k != "secret"} == listed[0]  # the created answer has the list's fields
        ping = local_client.post(f"{base}/{body['id']}/test", headers=auth)
        assert ping.status_code == 200 and ping.json()["delivered"] is True, ping.text
        got = receiver.snapshot()
        assert len(got) == 1 and Webhook(body["secret"]).verify(got[0].body, got[0].headers)["type"] == "webhook.ping"
        # the subscription as everywhere else, and the message's id as the receiver saw it
        assert ping.json()["webhook_id"] == body["id"] and ping.json()["message_id"] == got[0].headers["webhook-id"]
    assert local_client.delete(f"{base}/{body['id']}", headers=auth).status_code == 204
    assert local_client.get(base, headers=auth).json()["webhooks"] == []
    assert local_client.delete(f"{base}/{body['id']}", headers=auth).json()["error"]["parameter"] == "webhook_id"


def test_a_ping_answered_with_a_nul_is_a_failed_ping(
    local_client: TestClient[Any], store: uuid.UUID, auth: dict[str, str], db_url: str
) -> None:
    """A receiver's answer holding a NUL: the ping said 400 "a value holds a NUL character", blaming the caller,
    and its delivery stayed 'a ping in flight' under a leftover lock."""
    base = f"/v1/stores/{store}/webhooks"
    with Receiver() as receiver:
        url = receiver.url("/status/500/nul?body=" + "a%00b")
        created = local_client.post(base, json={"url": url, "events": ["stock.out"]}, headers=auth)
        assert created.status_code == 201, created.text
        ping = local_client.post(f"{base}/{created.json()['id']}/test", headers=auth)
    assert ping.status_code == 200, ping.text
    assert (ping.json()["delivered"], ping.json()["status_code"]) == (False, 500), ping.text
    assert ping.json()["error"] == "HTTP 500: a\\x00b"
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT status, last_error, locked_by FROM webhook_delivery WHERE id = %s", (ping.json()["delivery_id"],)
        ).fetchone()
    assert row == ("failed", "HTTP 500: a\\x00b", None)
    assert local_client.delete(f"{base}/{created.json()['id']}", headers=auth).status_code == 204


def test_a_disabled_webhook_is_not_pinged(
    local_client: TestClient[Any], store: uuid.UUID, auth: dict[str, str]
) -> None:
    """A 410 to a ping disabled the webhook, and a second ping was POSTed all the same (410 again), though a disabled
    webhook's deliveries fail unsent: it is refused, naming webhook_id and saying to enable it first."""
    base = f"/v1/stores/{store}/webhooks"
    with Receiver() as receiver:
        created = local_client.post(base, json={"url": receiver.url("/status/410/gone"), "events": ["*"]}, headers=auth)
        webhook_id = created.json()["id"]
        first = local_client.post(f"{base}/{webhook_id}/test", headers=auth)
        assert (first.status_code, first.json()["status_code"]) == (200, 410), first.text
        second = local_client.post(f"{base}/{webhook_id}/test", headers=auth)
        assert len(receiver.snapshot()) == 1  # the second was never sent
        assert local_client.post(f"{base}/{webhook_id}/enable", headers=auth).status_code == 200
        third = local_client.post(f"{base}/{webhook_id}/test", headers=auth)
        assert third.status_code == 200 and len(receiver.snapshot()) == 2, third.text  # enabled: pinged again
    assert second.status_code == 400, second.text
    error = second.json()["error"]
    assert error["parameter"] == "webhook_id", error
    assert error["message"].startswith(f"webhook {webhook_id} is disabled (the receiver answered 410 Gone)"), error
    assert f"/webhooks/{webhook_id}/enable" in error["message"] and "then ping it" in error["message"], error
    assert local_client.delete(f"{base}/{webhook_id}", headers=auth).status_code == 204


def test_bad_input_is_a_400_and_unknown_ids_a_404(
    local_client: TestClient[Any], store: uuid.UUID, db_url: str, auth: dict[str, str]
) -> None:
    base = f"/v1/stores/{store}/webhooks"
    bad_event = local_client.post(base, json={"url": "https://example.com/h", "events": ["stock.gone"]}, headers=auth)
    assert bad_event.status_code == 400 and bad_event.json()["error"]["parameter"] == "events"
    no_events = local_client.post(base, json={"url": "https://example.com/h", "events": []}, headers=auth)
    assert no_events.status_code == 400 and no_events.json()["error"]["parameter"] == "events"
    missing = local_client.post(base, json={"events": ["stock.out"]}, headers=auth)
    assert missing.status_code == 400 and "error" in missing.json()
    admin = _key(db_url, None)
    nowhere = f"/v1/stores/{uuid.uuid4()}/webhooks"
    no_store = local_client.post(nowhere, json={"url": "http://127.0.0.1:9/h", "events": ["*"]}, headers=admin)
    assert no_store.status_code == 404 and no_store.json()["error"]["parameter"] == "store_id"
    assert local_client.get(nowhere, headers=admin).status_code == 404
    assert local_client.post(f"{base}/{uuid.uuid4()}/test", headers=auth).status_code == 404


def test_every_webhook_endpoint_needs_the_stores_key(
    local_client: TestClient[Any], store: uuid.UUID, db_url: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        other_store = seed_store(conn, "Elsewhere")
    base = f"/v1/stores/{store}/webhooks"
    body = {"url": "http://127.0.0.1:9/h", "events": ["*"]}
    calls = [
        ("post", base),
        ("get", base),
        ("delete", f"{base}/{uuid.uuid4()}"),
        ("post", f"{base}/{uuid.uuid4()}/test"),
        ("post", f"{base}/{uuid.uuid4()}/enable"),
    ]
    for method, path in calls:
        kwargs: dict[str, Any] = {"json": body} if method == "post" else {}
        assert getattr(local_client, method)(path, **kwargs).status_code == 401
        for headers in (_key(db_url, other_store), _key(db_url, store, ("listings:write",))):
            response = getattr(local_client, method)(path, headers=headers, **kwargs)
            assert response.status_code == 403 and "error" in response.json(), response.text


def test_openapi_documents_the_webhook_endpoints(local_client: TestClient[Any]) -> None:
    spec = local_client.get("/schema/openapi.json").json()
    create = spec["paths"]["/v1/stores/{store_id}/webhooks"]["post"]
    assert "201" in create["responses"] and "400" in create["responses"]
    assert "whsec_" in str(create["responses"]["201"]) and "public address" in create["description"]
    assert "/v1/stores/{store_id}/webhooks/{webhook_id}/test" in spec["paths"]
    # Each example holds the fields its schema requires: litestar dropped the null ones (disabled_reason, …).
    for path, method, status in (
        ("/v1/stores/{store_id}/webhooks", "get", "200"),
        ("/v1/stores/{store_id}/webhooks/{webhook_id}/test", "post", "200"),
    ):
        content = spec["paths"][path][method]["responses"][status]["content"]["application/json"]
        schema = spec["components"]["schemas"][content["schema"]["$ref"].rsplit("/", 1)[1]]
        value = next(iter(content["examples"].values()))["value"]
        if "webhooks" in value:
            value, schema = value["webhooks"][0], spec["components"]["schemas"]["WebhookOut"]
        assert set(schema["required"]) <= set(value), (path, value)


def test_subscription_functions_reject_what_the_api_rejects(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        store = seed_store(conn)
    with pytest.raises(subscriptions.SubscriptionError, match="loopback"):
        subscribe(fresh_db_url, store, "https://127.1/x", config=EventsConfig())


def test_create_refuses_unknown_fields_and_a_body_not_declared_json(
    local_client: TestClient[Any], store: uuid.UUID, auth: dict[str, str]
) -> None:
    """`{"enabled": false}` was ignored (201, an enabled subscription), and a text/plain body taken as JSON."""
    base = f"/v1/stores/{store}/webhooks"
    sent = {"url": "http://127.0.0.1:9/x", "events": ["*"], "enabled": False}
    unknown = local_client.post(base, json=sent, headers=auth)
    assert unknown.status_code == 400 and "enabled" in unknown.text
    plain = local_client.post(base, content=b'{"url": "http://127.0.0.1:9/y", "events": ["*"]}',
                              headers={**auth, "Content-Type": "text/plain"})  # fmt: skip
    assert plain.status_code == 415


def test_an_upper_case_scheme_is_stored_normalised_not_a_500(
    client: TestClient[Any], local_client: TestClient[Any], db_url: str
) -> None:
    """`HTTPS://1.1.1.1/x` passed the SSRF guard and then broke the database's `^https?://` check: a 500."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = seed_store(conn, "Upper case")  # its own store: no event of the others' tests goes to 1.1.1.1
    auth = _key(db_url, store)
    base = f"/v1/stores/{store}/webhooks"
    for api, url, stored in (
        (client, "HTTPS://1.1.1.1/x", "https://1.1.1.1/x"),  # a public literal: checked, never connected to
        (local_client, "HTTP://127.0.0.1:9/y", "http://127.0.0.1:9/y"),
    ):
        created = api.post(base, json={"url": url, "events": ["stock.out"]}, headers=auth)
        assert created.status_code == 201, created.text
        assert created.json()["url"] == stored
        assert api.delete(f"{base}/{created.json()['id']}", headers=auth).status_code == 204


def test_spaces_around_a_url_are_dropped_not_a_500(client: TestClient[Any], db_url: str) -> None:
    """` https://…` passed the SSRF guard (urllib drops leading spaces), httpx read it as a relative URL and the
    database's `^https?://` check raised: a 500 on POST and PATCH. A trailing space was stored as `%20`."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = seed_store(conn, "Spaces")  # its own store: public literals, checked and never connected to
    auth = _key(db_url, store)
    base = f"/v1/stores/{store}/webhooks"
    for url, stored in (
        (" https://8.8.8.8/lead", "https://8.8.8.8/lead"),
        ("https://8.8.8.8/trail \n", "https://8.8.8.8/trail"),
        # a no-break space said "not a relative URL" before it, and was stored in the path after it (`/w%C2%A0`)
        ("\xa0https://8.8.8.8/nbsp\xa0", "https://8.8.8.8/nbsp"),
        ("\u200bhttps://8.8.8.8/zwsp\u200b\ufeff", "https://8.8.8.8/zwsp"),
    ):
        created = client.post(base, json={"url": url, "events": ["*"]}, headers=auth)
        assert created.status_code == 201 and created.json()["url"] == stored, created.text
    changed = client.patch(f"{base}/{created.json()['id']}", json={"url": "\t https://8.8.4.4/p "}, headers=auth)
    assert changed.status_code == 200 and changed.json()["url"] == "https://8.8.4.4/p", changed.text
    with pytest.raises(ssrf.UnsafeUrl, match="not a valid URL"):  # the guard reads no string two ways
        ssrf.parse(" https://8.8.8.8/lead", [])


def test_a_host_holding_a_nul_or_space_is_no_address() -> None:
    """`8.8.8.8%00.evil` was 8.8.8.8 to the guard (a C string ends at the NUL) and `8.8.8.8%00.evil` to the
    stored URL and the delivery, which then never connected. A stored one is refused before any lookup."""
    assert ssrf.numeric_address("8.8.8.8\x00.127.0.0.1") is None and ssrf.numeric_address("8.8.8.8 x") is None
    asked: list[str] = []

    async def recording(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["8.8.8.8"]

    for url in ("https://8.8.8.8%00.127.0.0.1/", "https://hooks%0a.example/", "https://8.8.8.8%09/"):
        with pytest.raises(ssrf.UnsafeUrl, match="space or control character"):
            asyncio.run(ssrf.check(url, [], recording))
    assert asked == []


def test_one_active_subscription_a_url_whatever_its_spelling(local_client: TestClient[Any], db_url: str) -> None:
    """Each spelling below got 201: the receiver got every event several times under one webhook-id."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = seed_store(conn, "Spellings")
    auth = _key(db_url, store)
    base = f"/v1/stores/{store}/webhooks"
    first = local_client.post(base, json={"url": "http://127.0.0.1:8541/all", "events": ["*"]}, headers=auth)
    assert first.status_code == 201, first.text
    for spelling in (
        "http://127.0.0.1:8541/ALL/../all",
        "http://127.0.0.1:08541/all",
        "http://127.0.0.1:8541/all?",
        "http://127.0.0.1:8541/%61ll",
        "http://127.0.0.1:8541/%2e/all",
        "HTTP://127.0.0.1:8541/all",
    ):
        again = local_client.post(base, json={"url": spelling, "events": ["*"]}, headers=auth)
        assert again.status_code == 400, (spelling, again.text)
        error = again.json()["error"]
        assert error["parameter"] == "url" and first.json()["id"] in error["message"], (spelling, error)
    fragment = local_client.post(base, json={"url": "http://127.0.0.1:8541/all#frag", "events": ["*"]}, headers=auth)
    assert fragment.status_code == 400 and fragment.json()["error"]["parameter"] == "url", fragment.text
    assert "fragment" in fragment.json()["error"]["message"]
    other = local_client.post(base, json={"url": "http://127.0.0.1:8541/All?x=%7e", "events": ["*"]}, headers=auth)
    assert other.status_code == 201 and other.json()["url"] == "http://127.0.0.1:8541/All?x=~", other.text
    assert len(local_client.get(base, headers=auth).json()["webhooks"]) == 2


def test_a_last_dot_segment_leaves_its_slash(local_client: TestClient[Any], db_url: str) -> None:
    """RFC 3986 5.2.4: `/ok/dir/sub/..` and `/ok/dir2/.` are `/ok/dir/` and `/ok/dir2/`. They were stored and posted
    as `/ok/dir` (another resource to many receivers: a redirect is a failed delivery), and the one-webhook-a-URL
    check refused `/ok/dir` and took `/ok/dir/`, the same URL."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = seed_store(conn, "Dot segments")
    auth = _key(db_url, store)
    base = f"/v1/stores/{store}/webhooks"
    with Receiver() as receiver:
        made = {}
        for given, stored in (
            ("/ok/dir/sub/..", "/ok/dir/"),
            ("/ok/dir2/.", "/ok/dir2/"),
            ("/ok/a/%2e%2E?x=1", "/ok/?x=1"),
        ):
            created = local_client.post(base, json={"url": receiver.url(given), "events": ["*"]}, headers=auth)
            assert created.status_code == 201 and created.json()["url"] == receiver.url(stored), created.text
            made[stored] = created.json()["id"]
            ping = local_client.post(f"{base}/{made[stored]}/test", headers=auth)
            assert ping.status_code == 200 and ping.json()["delivered"] is True, ping.text
        assert [r.path for r in receiver.snapshot()] == ["/ok/dir/", "/ok/dir2/", "/ok/"]  # as stored
        same = local_client.post(base, json={"url": receiver.url("/ok/dir/"), "events": ["*"]}, headers=auth)
        assert same.status_code == 400 and made["/ok/dir/"] in same.json()["error"]["message"], same.text
        other = local_client.post(base, json={"url": receiver.url("/ok/dir"), "events": ["*"]}, headers=auth)
        assert other.status_code == 201 and other.json()["url"] == receiver.url("/ok/dir"), other.text


def test_a_store_has_at_most_max_per_store_active_webhooks(client: TestClient[Any], db_url: str) -> None:
    """150 adds all got 201, and one listing change then queued a delivery to each: a traffic multiplier."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = seed_store(conn, "Many hooks")  # its own store: no event of the others' tests goes to 1.1.1.1
    auth = _key(db_url, store)
    base = f"/v1/stores/{store}/webhooks"
    cap = EventsConfig().max_per_store
    ids = []
    for i in range(cap):
        created = client.post(base, json={"url": f"https://1.1.1.1/h{i}", "events": ["*"]}, headers=auth)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    refused = client.post(base, json={"url": "https://1.1.1.1/one-more", "events": ["*"]}, headers=auth)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["parameter"] == "url" and "PLINQY_WEBHOOK_MAX_PER_STORE" in error["message"], error
    assert f"has {cap} active webhooks" in error["message"] and "remove one" in error["message"]
    with psycopg.connect(db_url, autocommit=True) as conn:  # a disabled one leaves room
        conn.execute("UPDATE store_webhook SET is_active = false WHERE id = %s", (ids[0],))
    assert client.post(base, json={"url": "https://1.1.1.1/one-more", "events": ["*"]}, headers=auth).status_code == 201
    assert len(client.get(base, headers=auth).json()["webhooks"]) == cap + 1


def test_a_disabled_webhook_is_enabled_again_over_http(local_client: TestClient[Any], db_url: str) -> None:
    """No endpoint switched a disabled webhook back on: remove + add gave a new secret and numbering."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = seed_store(conn, "Enable again")
    auth = _key(db_url, store)
    base = f"/v1/stores/{store}/webhooks"
    hook = local_client.post(base, json={"url": "http://127.0.0.1:9/back", "events": ["*"]}, headers=auth).json()
    off = "UPDATE store_webhook SET is_active = false, disabled_reason = 'HTTP 410 Gone', failing_since = now() "
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(off + "WHERE id = %s", (hook["id"],))
    assert local_client.get(base, headers=auth).json()["webhooks"][0]["enabled"] is False
    on = local_client.post(f"{base}/{hook['id']}/enable", headers=auth)
    assert on.status_code == 200, on.text
    assert on.json() == {k: v for k, v in hook.items() if k != "secret"}  # enabled, no reason, no failing streak
    assert local_client.post(f"{base}/{hook['id']}/enable", headers=auth).json() == on.json()  # enabled already
    with psycopg.connect(db_url, autocommit=True) as conn:  # disabled, and another webhook took its URL meanwhile
        conn.execute(off + "WHERE id = %s", (hook["id"],))
    other = local_client.post(base, json={"url": "http://127.0.0.1:9/back", "events": ["*"]}, headers=auth)
    assert other.status_code == 201, other.text
    clash = local_client.post(f"{base}/{hook['id']}/enable", headers=auth)
    assert clash.status_code == 400 and clash.json()["error"]["parameter"] == "webhook_id", clash.text
    assert other.json()["id"] in clash.json()["error"]["message"]
    missing = local_client.post(f"{base}/{uuid.uuid4()}/enable", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"]["parameter"] == "webhook_id"
    spec = local_client.get("/schema/openapi.json").json()["paths"][
        base.replace(str(store), "{store_id}") + "/{webhook_id}/enable"
    ]
    assert {"200", "400", "404"} <= set(spec["post"]["responses"]), spec


def test_one_subscription_an_address_in_any_spelling(client: TestClient[Any], db_url: str) -> None:
    """An IP literal in another spelling (as the SSRF guard reads it), an uncompressed IPv6, a trailing dot or a
    percent-encoded IDN got a second active subscription to one receiver (no request goes to these addresses)."""
    from search_service.events.webhook_url import normalized

    assert normalized("https://b%C3%BCcher.example./x") == normalized("https://BÜCHER.example/x")
    assert normalized("https://b%C3%BCcher.example/x") == "https://xn--bcher-kva.example/x"
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = seed_store(conn, "Addresses")
    auth = _key(db_url, store)
    base = f"/v1/stores/{store}/webhooks"
    for first, spellings in (
        ("https://8.8.8.8/p", ("https://134744072/p", "https://8.8.2056/p", "https://8.8.8.8./p")),
        (
            "https://[2001:4860:4860::8888]/p",
            ("https://[2001:4860:4860:0:0:0:0:8888]/p", "https://[2001:4860:4860::8888%25eth0]/p"),
        ),  # a zone id: one address
    ):
        created = client.post(base, json={"url": first, "events": ["*"]}, headers=auth)
        assert created.status_code == 201, created.text
        for spelling in spellings:
            again = client.post(base, json={"url": spelling, "events": ["*"]}, headers=auth)
            assert again.status_code == 400 and created.json()["id"] in again.json()["error"]["message"], spelling
    # a zone id after an IPv4 address made the guard look the host up in the DNS as a name: refused first
    from search_service.events import ssrf

    with pytest.raises(ssrf.UnsafeUrl, match="zone id"):
        ssrf.parse("https://8.8.8.8%25eth0/h", [])
    with pytest.raises(ssrf.UnsafeUrl, match="no IPv6 address"):  # IPvFuture: it was looked up in the DNS
        ssrf.parse("https://[v1.fe80::1]/x", [])
    asked: list[str] = []

    async def recording(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["8.8.8.8"]

    for url, why in (("https://[vF.abc]/", "no IPv6 address"), ("https://[fe80::1%25nosuch]/", "link-local")):
        with pytest.raises(ssrf.UnsafeUrl, match=why):  # a zone naming no interface here went to the resolver
            asyncio.run(ssrf.check(url, [], recording))
    assert asked == []  # refused before anything was looked up
    refused = client.post(base, json={"url": "https://8.8.8.8%25eth0/q", "events": ["*"]}, headers=auth)
    assert refused.status_code == 400 and "zone id" in refused.json()["error"]["message"]  # it was taken, zone dropped
