"""The dispatcher against real PostgreSQL and a real HTTP receiver on 127.0.0.1: signing, retries, 410, 429,
redirects, a slow receiver beside a fast one, replay, lease fencing."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import quote

import psycopg
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from benchmarks.webhook_receiver import Receiver
from search_service.db.cluster import free_port
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


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _mine(receiver: Receiver, marker: str) -> list:  # type: ignore[type-arg]
    return [r for r in receiver.snapshot() if marker in r.path]


def test_delivered_signed_and_verifiable_by_the_receiver(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver
) -> None:
    store = seed_store(db)
    sub = subscribe(fresh_db_url, store, receiver.url("/ok/signed"), ["listing.created", "stock.changed"])
    assert sub.secret.startswith("whsec_")
    listing = seed_listing(db, store, seed_product(db, "Tap washer set"), "TW-12")
    db.execute("UPDATE store_product SET quantity = 9 WHERE id = %s", (listing,))
    totals = dispatch(fresh_db_url)
    assert totals.delivered == 2 and totals.failed == 0
    got = _mine(receiver, "/ok/signed")
    verifier = Webhook(sub.secret)
    # verify raises on a bad signature; deliveries are sent concurrently, so a receiver orders them by sequence
    bodies = sorted((verifier.verify(r.body, r.headers) for r in got), key=lambda b: b["data"]["sequence"])
    assert [b["type"] for b in bodies] == ["listing.created", "stock.changed"]
    assert bodies[1]["data"]["new"]["quantity"] == 9
    # The subscription's own numbers (its listing.updated in between is not one of its types): no gap.
    assert [(b["data"]["sequence"], b["data"]["store_sequence"]) for b in bodies] == [(1, 1), (2, 3)]
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(got[0].body, got[0].headers)
    assert [r[1] for r in deliveries(db)] == ["delivered", "delivered"]
    stored = db.execute("SELECT secret FROM store_webhook").fetchone()[0]
    assert sub.secret not in stored and BOX.decrypt(stored.encode()) == sub.secret


def test_retries_follow_the_schedule_with_the_same_webhook_id(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver
) -> None:
    store = seed_store(db)
    subscribe(fresh_db_url, store, receiver.url("/flaky/2/retry"), ["listing.created"])
    seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
    totals = dispatch(fresh_db_url, replace(FAST, retry_schedule=(0.0, 0.3, 0.6, 5.0)))
    assert totals.delivered == 1 and totals.retrying == 2
    got = _mine(receiver, "/flaky/2/retry")
    assert len(got) == 3 and len({r.webhook_id for r in got}) == 1
    gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
    assert 0.3 <= gaps[0] < 2.0 and 0.6 <= gaps[1] < 2.5
    assert deliveries(db)[0][1:4] == ("delivered", 3, 204)


def test_failed_after_the_last_retry_and_listed_as_failed(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver
) -> None:
    store = seed_store(db)
    subscribe(fresh_db_url, store, receiver.url("/status/500/dead"), ["listing.created"])
    seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
    totals = dispatch(fresh_db_url)
    assert (totals.failed, totals.retrying) == (1, 2)
    assert len(_mine(receiver, "/status/500/dead")) == 3  # the schedule has three entries
    failed = on_conn(fresh_db_url, lambda c: subscriptions.deliveries(c, failed_only=True, store_id=store, limit=10))
    assert len(failed) == 1 and failed[0]["last_status_code"] == 500 and "HTTP 500" in failed[0]["last_error"]
    failing_since = db.execute("SELECT failing_since, is_active FROM store_webhook").fetchone()
    assert failing_since[0] is not None and failing_since[1] is True


def test_a_delivery_that_gives_up_logs_one_warning_naming_the_host_not_the_query(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver answering 500 to every attempt: the delivery ended `failed` with nothing in the log about it."""
    store = seed_store(db)
    sub = subscribe(fresh_db_url, store, receiver.url("/status/500/giveup?token=s3cret"), ["listing.created"])
    seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
    with caplog.at_level("WARNING", logger="plinqy.events"):
        dispatch(fresh_db_url)
    records = [r for r in caplog.records if "delivery_failed" in r.getMessage()]
    assert len(records) == 1 and records[0].levelname == "WARNING", caplog.text
    lines = [json.loads(r.getMessage()) for r in records]
    host = receiver.url("/").split("/")[2]
    assert lines[0]["webhook"] == str(sub.subscription["id"]) and lines[0]["host"] == host
    assert (lines[0]["attempts"], lines[0]["status_code"]) == (3, 500) and "HTTP 500" in lines[0]["error"]
    assert "s3cret" not in caplog.text


def test_an_answer_dripped_past_the_timeout_is_a_timeout(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver
) -> None:
    """httpx's timeout bounds each read: a receiver sending a byte every 0.2 s held one send for minutes (past the
    lease: sent twice at once). The whole exchange is bounded now."""
    store = seed_store(db)
    subscribe(fresh_db_url, store, receiver.url("/drip/6/slowly"), ["listing.created"])
    seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
    config = replace(FAST, timeout_s=1.0, retry_schedule=(0.0,))
    started = time.monotonic()
    totals = dispatch(fresh_db_url, config)
    assert time.monotonic() - started < 4 and totals.failed == 1
    (row,) = deliveries(db)
    assert row[1] == "failed" and "timed out" in row[5], row


def test_a_subscription_failing_for_the_disable_period_is_disabled(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver
) -> None:
    store = seed_store(db)
    subscribe(fresh_db_url, store, receiver.url("/status/500/long"), ["listing.created"])
    db.execute("UPDATE store_webhook SET failing_since = now() - interval '25 hours'")
    seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
    dispatch(fresh_db_url, replace(FAST, retry_schedule=(0.0, 0.2, 0.2, 0.2, 0.2)))
    row = db.execute("SELECT is_active, disabled_reason FROM store_webhook").fetchone()
    assert row[0] is False and row[1].startswith("deliveries failing since")
    assert len(_mine(receiver, "/status/500/long")) == 1  # disabled at once: the retries are not sent
    assert deliveries(db)[0][1] == "failed"


def test_410_disables_the_subscription_at_once(db: psycopg.Connection, fresh_db_url: str, receiver: Receiver) -> None:
    store = seed_store(db)
    subscribe(fresh_db_url, store, receiver.url("/status/410/gone"), ["listing.created"])
    product = seed_product(db, "Oat milk")
    seed_listing(db, store, product, "A")
    dispatch(fresh_db_url)
    assert db.execute("SELECT is_active, disabled_reason FROM store_webhook").fetchone() == (
        False,
        "the receiver answered 410 Gone",
    )
    seed_listing(db, store, seed_product(db, "Soy milk"), "B")  # a disabled subscription gets no more events
    assert dispatch(fresh_db_url).delivered == 0
    assert len(_mine(receiver, "/status/410/gone")) == 1
    assert [r[1] for r in deliveries(db)] == ["failed"]


def test_429_retry_after_is_honoured(db: psycopg.Connection, fresh_db_url: str, receiver: Receiver) -> None:
    store = seed_store(db)
    subscribe(fresh_db_url, store, receiver.url("/status/429/busy?retry_after=1"), ["listing.created"])
    seed_listing(db, store, seed_product(db, "Oat milk"), "A")
    dispatch(fresh_db_url, replace(FAST, retry_schedule=(0.0, 0.05)))
    got = _mine(receiver, "/status/429/busy")
    assert len(got) == 2 and got[1].at - got[0].at >= 1.0  # the schedule said 0.05 s; Retry-After said 1 s


def test_a_redirect_is_a_failure_and_not_followed(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver
) -> None:
    store = seed_store(db)
    subscribe(fresh_db_url, store, receiver.url("/status/302/moved"), ["listing.created"])
    seed_listing(db, store, seed_product(db, "Oat milk"), "A")
    totals = dispatch(fresh_db_url, replace(FAST, retry_schedule=(0.0,)))
    assert totals.failed == 1
    row = deliveries(db)[0]
    assert row[3] == 302 and "redirect" in row[5] and "not followed" in row[5]
    assert len(_mine(receiver, "/status/302/moved")) == 1  # the Location (127.0.0.1:9) was never asked


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("https://login.example.com:8443/sso/callback?token=s3cret", "https://login.example.com:8443"),
        ("/session/expired?token=s3cret", "http://127.0.0.1:{port}"),  # relative: the receiver's own origin
        ("https://[2001:db8::1]/s3cret", "https://[2001:db8::1]"),
        ("https://hooks.example.com\\s3cret/sso/?token=s3cret", "https://hooks.example.com"),  # `\` is `/` (WHATWG)
    ],
)
def test_a_redirects_path_and_query_stay_out_of_last_error_and_the_log(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver, caplog: pytest.LogCaptureFixture,
    location: str, shown: str,
) -> None:  # fmt: skip
    """The whole Location (path and query, a token in it) landed in last_error and the delivery_failed line, where
    docs/events.md promises the host and port only."""
    store = seed_store(db)
    subscribe(fresh_db_url, store, receiver.url(f"/status/302/sso?location={quote(location, safe='')}"))
    seed_listing(db, store, seed_product(db, "Oat milk"), "A")
    with caplog.at_level("WARNING", logger="plinqy.events"):
        assert dispatch(fresh_db_url, replace(FAST, retry_schedule=(0.0,))).failed == 1
    error = deliveries(db)[0][5]
    assert error == (
        f"HTTP 302: a redirect (to {shown.format(port=receiver.port)}) is a failure; redirects are not followed"
    )
    logged = [r.getMessage() for r in caplog.records if "delivery_failed" in r.getMessage()]
    assert len(logged) == 1 and "s3cret" not in logged[0] and "/sso/" not in logged[0], logged


_UNREADABLE = "HTTP 302: a redirect to an unreadable Location is a"


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/status/300/bare?location=", "HTTP 300: a redirect without a Location header is a failure"),
        ("/status/302/bad?location=http%3A%2F%2F%5B%3A%3A1", _UNREADABLE),
        # urlsplit kept these in the hostname, shown: no host holds a `;` or a `%`
        ("/status/302/semi?location=" + quote("https://h.example.com;token=s3cret/x", safe=""), _UNREADABLE),
        ("/status/302/pct?location=" + quote("https://h.example.com%2F%3Ftoken%3Ds3cret/", safe=""), _UNREADABLE),
    ],
)
def test_a_redirect_without_a_readable_location_says_so(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver, path: str, said: str
) -> None:
    """A 3xx without a Location (or with one no host can be read from) said `a redirect (to ?) is a failure`; one with
    `;` or `%` in its authority showed it (`to https://h.example.com;token=s3cret`)."""
    store = seed_store(db)
    subscribe(fresh_db_url, store, receiver.url(path), ["listing.created"])
    seed_listing(db, store, seed_product(db, "Oat milk"), "A")
    assert dispatch(fresh_db_url, replace(FAST, retry_schedule=(0.0,))).failed == 1
    error = deliveries(db)[0][5]
    assert error.startswith(said) and error.endswith("; redirects are not followed"), error


def test_a_slow_receiver_does_not_delay_a_fast_one(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver
) -> None:
    store = seed_store(db)
    subscribe(fresh_db_url, store, receiver.url("/slow/1.5/s"), ["stock.changed"])
    subscribe(fresh_db_url, store, receiver.url("/ok/fast"), ["stock.changed"])
    listing = seed_listing(db, store, seed_product(db, "Oat milk"), "A")
    config = replace(FAST, concurrency=8, per_webhook=2, timeout_s=5.0)
    started = time.time()
    for q in range(1, 41):  # 40 events each: the slow one needs ~30 s at 2 in flight, the fast one well under 1 s
        db.execute("UPDATE store_product SET quantity = %s WHERE id = %s", (q, listing))

    async def run() -> None:
        dispatcher = Dispatcher(fresh_db_url, config, BOX)
        task = asyncio.create_task(dispatcher.run())
        deadline = time.monotonic() + 15
        while len(_mine(receiver, "/ok/fast")) < 40 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        dispatcher.request_stop()
        await task

    asyncio.run(run())
    fast = _mine(receiver, "/ok/fast")
    slow = _mine(receiver, "/slow/1.5/s")
    assert len(fast) == 40 and max(r.at for r in fast) - started < 5.0
    assert len(slow) < 40  # it was still working through its share


def test_replay_sends_again_with_the_same_webhook_id(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver
) -> None:
    store = seed_store(db)
    subscribe(fresh_db_url, store, receiver.url("/ok/replay"), ["listing.created"])
    seed_listing(db, store, seed_product(db, "Oat milk"), "A")
    seed_listing(db, store, seed_product(db, "Soy milk"), "B")
    dispatch(fresh_db_url)
    first, first_message = db.execute("SELECT id, message_id FROM webhook_delivery ORDER BY id LIMIT 1").fetchone()
    assert on_conn(fresh_db_url, lambda c: subscriptions.replay(c, delivery_id=first)) == 1
    with pytest.raises(subscriptions.SubscriptionError, match="already queued"):
        on_conn(fresh_db_url, lambda c: subscriptions.replay(c, delivery_id=first))
    dispatch(fresh_db_url)
    got = _mine(receiver, "/ok/replay")
    assert len(got) == 3 and got[2].webhook_id == first_message and len({r.webhook_id for r in got}) == 2
    since = db.execute("SELECT min(created_at) FROM webhook_event").fetchone()[0]
    assert on_conn(fresh_db_url, lambda c: subscriptions.replay(c, store_id=store, since=since)) == 2
    dispatch(fresh_db_url)
    assert len(_mine(receiver, "/ok/replay")) == 5


def test_a_dispatcher_whose_lease_was_taken_over_writes_nothing(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver
) -> None:
    store = seed_store(db)
    subscribe(fresh_db_url, store, receiver.url("/slow/0.5/lease"), ["listing.created"])
    seed_listing(db, store, seed_product(db, "Oat milk"), "A")

    async def run() -> None:
        dispatcher = Dispatcher(fresh_db_url, FAST, BOX)
        task = asyncio.create_task(dispatcher.run())
        while not _mine(receiver, "/slow/0.5/lease"):
            await asyncio.sleep(0.02)
        db.execute("UPDATE webhook_delivery SET locked_by = 'someone-else'")  # its lease expired and was retaken
        await asyncio.sleep(0.8)
        dispatcher.request_stop()
        totals = await task
        assert totals.lost_lease == 1 and totals.delivered == 0

    asyncio.run(run())
    assert db.execute("SELECT status, locked_by FROM webhook_delivery").fetchone() == ("pending", "someone-else")


def test_ping_is_sent_once_and_recorded(db: psycopg.Connection, fresh_db_url: str, receiver: Receiver) -> None:
    store = seed_store(db)
    sub = subscribe(fresh_db_url, store, receiver.url("/ok/ping"), ["stock.out"])
    webhook_id = sub.subscription["id"]

    async def ping(conn):  # type: ignore[no-untyped-def]
        job = await subscriptions.start_ping(conn, BOX, store, webhook_id)
        result = await subscriptions.send_ping(job, FAST)
        return await subscriptions.finish_ping(conn, job, result)

    outcome = on_conn(fresh_db_url, ping)
    assert outcome.delivered and outcome.status_code == 204
    got = _mine(receiver, "/ok/ping")
    assert len(got) == 1 and Webhook(sub.secret).verify(got[0].body, got[0].headers)["type"] == "webhook.ping"
    assert json.loads(got[0].body)["data"]["webhook_id"] == str(webhook_id)
    assert deliveries(db) == [("webhook.ping", "delivered", 1, 204, outcome.message_id, None)]
    assert dispatch(fresh_db_url).delivered == 0  # no dispatcher sends it again
    # One subscription's ping is not one of the store's numbered events: the other subscribers would see a gap.
    assert "sequence" not in json.loads(got[0].body)["data"]
    assert db.execute("SELECT count(*) FROM webhook_store_seq WHERE store_id = %s", (store,)).fetchone() == (0,)
    db.execute(
        "UPDATE store_product SET quantity = 0 WHERE id = %s", (seed_listing(db, store, seed_product(db, "X"), "X"),)
    )
    numbered = db.execute("SELECT seq, payload->'sequence' FROM webhook_event WHERE type <> 'webhook.ping'").fetchall()
    assert numbered == [(n, n) for n in range(1, len(numbered) + 1)] and len(numbered) >= 2  # created, then out


def test_a_receiver_that_was_down_gets_everything_when_it_returns(db: psycopg.Connection, fresh_db_url: str) -> None:
    """The outage is scaled down with the schedule: refused connections for ~1.5 s, then the receiver is back."""
    port = free_port()
    store = seed_store(db)
    subscribe(fresh_db_url, store, f"http://127.0.0.1:{port}/ok/back", ["stock.changed"])
    listing = seed_listing(db, store, seed_product(db, "Oat milk"), "A")
    for q in range(1, 21):
        db.execute("UPDATE store_product SET quantity = %s WHERE id = %s", (q, listing))
    config = replace(FAST, retry_schedule=(0.0, 0.3, 0.6, 1.2, 2.4, 4.8))

    async def run() -> Receiver:
        dispatcher = Dispatcher(fresh_db_url, config, BOX)
        task = asyncio.create_task(dispatcher.run(drain=True))
        await asyncio.sleep(1.5)
        assert db.execute("SELECT count(*) FROM webhook_delivery WHERE status = 'retrying'").fetchone() == (20,)
        receiver = Receiver(port=port).start()
        await task
        return receiver

    receiver = asyncio.run(run())
    try:
        assert len({r.webhook_id for r in receiver.snapshot()}) == 20
    finally:
        receiver.stop()
    assert {r[1] for r in deliveries(db)} == {"delivered"}
    assert all(r[2] >= 2 for r in deliveries(db))  # each needed a retry after the outage


def test_a_ping_whose_sender_died_is_not_sent_again_and_a_410_disables(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver
) -> None:
    """A ping's row was an ordinary pending delivery: once its holder's minute lapsed (the API killed mid-send)
    the dispatcher sent it again and retried it for a day. A 410 answered to a ping did not disable anything."""
    store = seed_store(db)
    sub = subscribe(fresh_db_url, store, receiver.url("/ok/orphan"), ["stock.out"])
    job = on_conn(fresh_db_url, lambda c: subscriptions.start_ping(c, BOX, store, sub.subscription["id"]))
    db.execute("UPDATE webhook_delivery SET locked_until = now() - interval '1 second' WHERE id = %s",
               (job.delivery_id,))  # fmt: skip
    assert dispatch(fresh_db_url).delivered == 0 and _mine(receiver, "/ok/orphan") == []
    status, error = db.execute("SELECT status, last_error FROM webhook_delivery WHERE id = %s",
                               (job.delivery_id,)).fetchone()  # fmt: skip
    assert status == "failed" and "ping in flight" in error
    gone = subscribe(fresh_db_url, store, receiver.url("/status/410/ping"), ["stock.out"])

    async def ping(conn):  # type: ignore[no-untyped-def]
        job = await subscriptions.start_ping(conn, BOX, store, gone.subscription["id"])
        return await subscriptions.finish_ping(conn, job, await subscriptions.send_ping(job, FAST))

    assert on_conn(fresh_db_url, ping).status_code == 410
    row = db.execute("SELECT is_active, disabled_reason FROM store_webhook WHERE id = %s",
                     (gone.subscription["id"],)).fetchone()  # fmt: skip
    assert row == (False, "the receiver answered 410 Gone")


def test_a_disabled_subscriptions_late_failures_neither_count_nor_disable_it_again(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Results of sends in flight when a 410 came: each batch of them logged `subscription_disabled` again (without
    a reason) and counted a failure on the disabled subscription."""
    store = seed_store(db)
    sub = subscribe(fresh_db_url, store, receiver.url("/status/410/late"), ["listing.created"])
    product = seed_product(db, "Oat milk")
    for n in range(6):
        seed_listing(db, store, product if n == 0 else seed_product(db, f"Thing {n}"), f"L{n}")
    with caplog.at_level("WARNING", logger="plinqy.events"):
        dispatch(fresh_db_url)
    disabled = [r for r in caplog.records if "subscription_disabled" in r.getMessage()]
    assert len(disabled) == 1 and "410" in disabled[0].getMessage()
    count = db.execute("SELECT failure_count, is_active FROM store_webhook WHERE id = %s",
                       (sub.subscription["id"],)).fetchone()  # fmt: skip
    assert count is not None and count[1] is False and count[0] <= 6


def test_each_subscription_numbers_its_deliveries_without_gaps(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver
) -> None:
    """A subscriber of some types got the store's event numbers: gaps wherever another type was, so it could not
    notice a lost delivery. Each subscription numbers its own, in the store's order, under concurrent writes."""
    store = seed_store(db)
    some = subscribe(fresh_db_url, store, receiver.url("/ok/some"), ["stock.out", "stock.back"])
    every = subscribe(fresh_db_url, store, receiver.url("/ok/every"))
    listings = [seed_listing(db, store, seed_product(db, f"Thing {n}"), f"T{n}", quantity=2) for n in range(4)]

    def flip(listing: object) -> None:
        with psycopg.connect(fresh_db_url, autocommit=True) as conn:
            for quantity in (0, 3, 0, 5):
                conn.execute("UPDATE store_product SET quantity = %s WHERE id = %s", (quantity, listing))

    threads = [threading.Thread(target=flip, args=(listing,)) for listing in listings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    dispatch(fresh_db_url)
    for sub, marker in ((some, "/ok/some"), (every, "/ok/every")):
        datas = [Webhook(sub.secret).verify(r.body, r.headers)["data"] for r in _mine(receiver, marker)]
        by_number = sorted(datas, key=lambda d: d["sequence"])
        assert [d["sequence"] for d in by_number] == list(range(1, len(datas) + 1))
        stores = [d["store_sequence"] for d in by_number]
        assert stores == sorted(stores) and len(set(stores)) == len(stores)  # the store's order
    assert len(_mine(receiver, "/ok/some")) == 16  # 4 listings × (out, back, out, back)


def test_replay_never_sends_a_ping_again_and_one_url_has_one_subscription(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver
) -> None:
    """`webhooks replay --store --since` re-queued pings (one in flight too), which a dispatcher then sent again;
    two active subscriptions of a store to one URL sent each event twice under one webhook-id with two counters."""
    store = seed_store(db)
    sub = subscribe(fresh_db_url, store, receiver.url("/ok/replayed"), ["listing.created"])
    job = on_conn(fresh_db_url, lambda c: subscriptions.start_ping(c, BOX, store, sub.subscription["id"]))
    seed_listing(db, store, seed_product(db, "Oat milk"), "OM")
    dispatch(fresh_db_url)
    since = db.execute("SELECT min(created_at) FROM webhook_event").fetchone()[0]
    again = on_conn(fresh_db_url, lambda c: subscriptions.replay(c, store_id=store, since=since))
    assert again == 1  # the listing's delivery, not the ping (in flight here)
    with pytest.raises(subscriptions.SubscriptionError, match="is a ping"):
        on_conn(fresh_db_url, lambda c: subscriptions.replay(c, delivery_id=job.delivery_id))
    dispatch(fresh_db_url)
    bodies = [json.loads(r.body) for r in _mine(receiver, "/ok/replayed")]
    assert [b["type"] for b in bodies] == ["listing.created", "listing.created"]
    assert bodies[0]["data"]["webhook_id"] == str(sub.subscription["id"])
    with pytest.raises(subscriptions.SubscriptionError, match="already sends this store's events to this URL"):
        subscribe(fresh_db_url, store, receiver.url("/ok/replayed"), ["stock.out"])


def test_every_delivery_matches_the_openapi_webhooks_schema(
    db: psycopg.Connection, fresh_db_url: str, receiver: Receiver
) -> None:
    """The delivery body was described only in docs/events.md: the OpenAPI's 3.1 `webhooks` now give its schema,
    checked here against real deliveries of every kind (listing, stock, price, deleted, import, ping)."""
    import jsonschema_rs

    from search_service.api.app import create_app
    from search_service.settings import Settings

    spec = create_app(Settings.from_env({"DATABASE_URL": fresh_db_url})).openapi_schema.to_schema()
    assert set(spec["webhooks"]) == {*subscriptions.EVENT_TYPES, "webhook.ping"}
    validator = jsonschema_rs.validator_for(
        {"$ref": "#/components/schemas/WebhookDelivery", "components": spec["components"]}
    )
    store = seed_store(db)
    sub = subscribe(fresh_db_url, store, receiver.url("/ok/schema"), ["*"])
    listing = seed_listing(db, store, seed_product(db, "Tap washer set", "8710000000017"), "TW-12")
    db.execute("UPDATE store_product SET quantity = 0, price = 3 WHERE id = %s", (listing,))
    db.execute("UPDATE store_product SET quantity = 4 WHERE id = %s", (listing,))
    other = seed_product(db, "Tap washer set, re-coded", "8710000000024")
    db.execute("UPDATE store_product SET product_master_id = %s WHERE id = %s", (other, listing))  # a GTIN move
    db.execute("DELETE FROM store_product WHERE id = %s", (listing,))
    db.execute("INSERT INTO import_batch (store_id, source, kind, status) VALUES (%s, 'csv', 'csv', 'completed')",
               (store,))  # fmt: skip

    async def ping(conn):  # type: ignore[no-untyped-def]
        job = await subscriptions.start_ping(conn, BOX, store, sub.subscription["id"])
        return await subscriptions.finish_ping(conn, job, await subscriptions.send_ping(job, FAST))

    assert dispatch(fresh_db_url).failed == 0 and on_conn(fresh_db_url, ping).delivered
    bodies = [json.loads(r.body) for r in _mine(receiver, "/ok/schema")]
    kinds = {b["type"] for b in bodies}
    assert {"listing.created", "listing.deleted", "stock.out", "stock.back", "price.changed", "import.completed",
            "webhook.ping"} <= kinds, kinds  # fmt: skip
    for body in bodies:
        errors = [str(e) for e in validator.iter_errors(body)]
        assert errors == [], (body["type"], errors)
    # every field of a snapshot is documented (title and the source's clocks were sent, in no schema)
    sent = {key for b in bodies for side in ("old", "new") for key in b["data"].get(side) or {}}
    documented = spec["components"]["schemas"]["ListingSnapshot"]["properties"]
    assert sent == set(documented), sent ^ set(documented)
    # a listing moved to another product said so nowhere: `old` and `new` were alike (migration 0031)
    moves = [b["data"] for b in bodies if b["type"] == "listing.updated"
             and b["data"]["old"]["product_id"] != b["data"]["new"]["product_id"]]  # fmt: skip
    assert [m["new"]["product_id"] for m in moves] == [str(other)] and moves[0]["product"]["id"] == str(other)
