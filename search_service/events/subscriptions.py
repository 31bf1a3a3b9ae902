"""Webhook subscriptions (create, change, rotate a secret, list, delete, ping) and the operators' deliveries view
and replay (asyncpg).

The API and the CLI both call these; errors are `SubscriptionError` (bad input: the API's 400) and
`SubscriptionNotFound` (404), each naming the parameter at fault.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg

from search_service.db.secretbox import SecretBox
from search_service.db.sql import statement
from search_service.events import delivery, policy, ssrf, webhook_url
from search_service.events.config import EVENT_TYPES, EventsConfig
from search_service.events.transport import make_client

log = logging.getLogger("plinqy.events")

MAX_URL_LENGTH = 2000


class SubscriptionError(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class SubscriptionValueError(SubscriptionError):
    """A value given wrongly (an event type unknown, a URL's form, nothing to change), apart from what the
    store's state or the receiver's address refuses: the command line's exit 2."""


class SubscriptionNotFound(SubscriptionError):
    pass


def _q(name: str) -> Any:
    return statement("events/webhooks", name)


async def _fetch(conn: Any, name: str, **values: Any) -> list[asyncpg.Record]:
    stmt = _q(name)
    return list(await conn.fetch(stmt.sql, *stmt.bind(**values)))


async def _one(conn: Any, name: str, **values: Any) -> asyncpg.Record | None:
    stmt = _q(name)
    return await conn.fetchrow(stmt.sql, *stmt.bind(**values))


def check_events(events: Sequence[str]) -> list[str]:
    chosen = list(dict.fromkeys(events))
    if not chosen:
        raise SubscriptionValueError("events", f"name at least one event type (or '*'): {', '.join(EVENT_TYPES)}")
    unknown = [e for e in chosen if e != "*" and e not in EVENT_TYPES]
    if unknown:
        raise SubscriptionValueError(
            "events", f"unknown event type {unknown[0]!r}; known: '*', {', '.join(EVENT_TYPES)}"
        )
    return ["*"] if "*" in chosen else chosen  # the types beside "*" said nothing more, and listed as if they did


def normalized_url(url: str) -> str:
    """The URL as it is stored and compared (events/webhook_url.py); a fragment is refused: it is never sent."""
    if len(url) > MAX_URL_LENGTH:
        raise SubscriptionValueError("url", f"at most {MAX_URL_LENGTH} characters")
    if "#" in url:
        raise SubscriptionValueError("url", "must not hold a fragment (#…): it is never sent to the receiver")
    return webhook_url.normalized(url)


async def check_url(url: str, config: EventsConfig, resolver: ssrf.Resolver = ssrf.system_resolver) -> None:
    if len(url) > MAX_URL_LENGTH:
        raise SubscriptionValueError("url", f"at most {MAX_URL_LENGTH} characters")
    netloc = ""
    with contextlib.suppress(ValueError):  # a malformed URL: ssrf.check says why
        netloc = urlsplit(url).netloc
    if "@" in netloc:  # never sent (the signature authenticates us), yet shown in every list and delivery view
        raise SubscriptionValueError("url", "must not hold a user name or password (user:password@host)")
    try:  # its form first: a URL given wrongly (the command line's exit 2), not one whose address is refused
        ssrf.parse(url, {host.lower() for host in config.allow_hosts})
    except ssrf.UnsafeUrl as exc:
        raise SubscriptionValueError("url", str(exc)) from None
    try:
        await ssrf.check(url, config.allow_hosts, resolver)
    except ssrf.UnsafeUrl as exc:
        raise SubscriptionError("url", str(exc)) from None


async def require_store(conn: Any, store_id: UUID) -> None:
    row = await _one(conn, "store_exists", store_id=store_id)
    if row is None or not row[0]:
        raise SubscriptionNotFound("store_id", "no store with this id")


@dataclass(frozen=True)
class Created:
    subscription: dict[str, Any]
    secret: str  # whsec_…, shown once


async def create(
    conn: Any,
    box: SecretBox,
    config: EventsConfig,
    store_id: UUID,
    url: str,
    events: Sequence[str],
    resolver: ssrf.Resolver = ssrf.system_resolver,
) -> Created:
    chosen = check_events(events)
    await require_store(conn, store_id)  # before the URL: an unknown store needs no DNS lookup to be refused
    url = normalized_url(url)
    await check_url(url, config, resolver)
    secret = delivery.new_secret()
    token = box.encrypt(secret).decode()
    async with conn.transaction():
        await _room_for(conn, config, store_id, url, "url")
        row = await _one(conn, "insert_subscription", store_id=store_id, url=url, events=chosen, secret=token)
    assert row is not None
    return Created(dict(row), secret)


async def _room_for(
    conn: Any,
    config: EventsConfig,
    store_id: UUID,
    url: str,
    parameter: str,
    webhook_id: UUID | None = None,
    *,
    counted: bool = True,
) -> None:
    """Whether the store may have one more active subscription (webhook_id: this one), to this URL (counted False:
    the URL only, for a disabled one that stays off). Holds the store's lock to the end of the caller's
    transaction: two concurrent adds both saw room."""
    await _one(conn, "lock_store_webhooks", store_id=store_id)
    active = [r for r in await _fetch(conn, "active_subscriptions", store_id=store_id) if r["id"] != webhook_id]
    # normalised here too: a row stored before URLs were normalised may be in another spelling
    same = next((r for r in active if webhook_url.normalized(r["url"]) == url), None)
    if same is not None:
        raise SubscriptionError(
            parameter, f"webhook {same['id']} already sends this store's events to this URL: remove it first, or "
            "add the events you want to one subscription",
        )  # fmt: skip
    if counted and len(active) >= config.max_per_store:
        raise SubscriptionError(
            parameter, f"this store has {len(active)} active webhooks, the most allowed "
            "(PLINQY_WEBHOOK_MAX_PER_STORE): remove one it no longer needs, or send more event types to one URL",
        )  # fmt: skip


async def update(
    conn: Any,
    config: EventsConfig,
    store_id: UUID | None,
    webhook_id: UUID,
    *,
    url: str | None = None,
    events: Sequence[str] | None = None,
    resolver: ssrf.Resolver = ssrf.system_resolver,
) -> dict[str, Any]:
    """Change a subscription's URL and/or events in place, with create's checks: its id, secret, `sequence`
    numbering and queued deliveries (which go to the new URL) stay. Remove and add lost all of them."""
    if url is None and events is None:
        raise SubscriptionValueError("url", "give url and/or events: nothing to change")
    chosen = None if events is None else check_events(events)
    sub = await _one(conn, "get_subscription", store_id=store_id, webhook_id=webhook_id)
    if sub is None:  # before the URL: an unknown webhook needs no DNS lookup to be refused
        raise SubscriptionNotFound("webhook_id", not_found(store_id))
    if url is not None:
        url = normalized_url(url)
        await check_url(url, config, resolver)
    async with conn.transaction():
        if url is not None:
            await _room_for(conn, config, sub["store_id"], url, "url", webhook_id, counted=sub["is_active"])
        row = await _one(conn, "update_subscription", webhook_id=webhook_id, url=url, events=chosen)
    if row is None:  # removed meanwhile
        raise SubscriptionNotFound("webhook_id", not_found(store_id))
    return dict(row)


@dataclass(frozen=True)
class Rotated:
    subscription: dict[str, Any]
    secret: str  # the new whsec_…, shown once
    previous_valid_until: datetime | None  # the old secret signs too until then; None: it did not open, dropped


async def rotate_secret(
    conn: Any, box: SecretBox, config: EventsConfig, store_id: UUID | None, webhook_id: UUID
) -> Rotated:
    """A new signing secret; the old one also signs each delivery for config.secret_grace_s, unless this key cannot
    open it (stored under another key): then it is dropped (it was kept as a previous secret that signs nothing)."""
    sub = await _one(conn, "get_subscription", store_id=store_id, webhook_id=webhook_id)
    old = sub["secret"] if sub is not None else None
    unopened = old if old is not None and box.opens_none_of([old.encode()]) else None
    token = box.encrypt(secret := delivery.new_secret()).decode()
    values = {"secret": token, "grace_s": config.secret_grace_s, "unopened": unopened}
    row = await _one(conn, "rotate_secret", store_id=store_id, webhook_id=webhook_id, **values)
    if row is None:
        raise SubscriptionNotFound("webhook_id", not_found(store_id))
    found = dict(row)
    until = found.pop("previous_secret_until")
    return Rotated(found, secret, until)


@dataclass(frozen=True)
class Enabled:
    subscription: dict[str, Any]
    switched_on: bool  # false: it was enabled already
    failed: int  # its failed deliveries, which a replay sends again
    failed_from: datetime | None  # the oldest one's event time: a replay's --since


async def enable(
    conn: Any,
    config: EventsConfig,
    store_id: UUID | None,
    webhook_id: UUID,
    resolver: ssrf.Resolver = ssrf.system_resolver,
) -> Enabled:
    """Switch a disabled subscription on again, with its secret and numbering: its failed deliveries can then be
    replayed. Its URL is checked again, and it must fit the store's limit and be the store's one to that URL."""
    sub = await _one(conn, "get_subscription", store_id=store_id, webhook_id=webhook_id)
    if sub is None:
        raise SubscriptionNotFound("webhook_id", not_found(store_id))
    public = {k: v for k, v in dict(sub).items() if k != "secret"}
    if sub["is_active"]:
        return Enabled(public, False, 0, None)
    try:
        await check_url(sub["url"], config, resolver)
    except SubscriptionError as exc:
        raise SubscriptionError("webhook_id", f"its URL is refused now: {exc.message}") from None
    async with conn.transaction():
        await _room_for(conn, config, sub["store_id"], webhook_url.normalized(sub["url"]), "webhook_id", webhook_id)
        row = await _one(conn, "enable_subscription", webhook_id=webhook_id)
    if row is None:  # removed meanwhile
        raise SubscriptionNotFound("webhook_id", not_found(store_id))
    found = dict(row)
    failed, failed_from = found.pop("failed"), found.pop("failed_from")
    return Enabled(found, True, int(failed), failed_from)


async def list_for(conn: Any, store_id: UUID | None) -> list[dict[str, Any]]:
    if store_id is not None:  # a mistyped id said "no webhooks"
        await require_store(conn, store_id)
    return [dict(r) for r in await _fetch(conn, "list_subscriptions", store_id=store_id)]


def not_found(store_id: UUID | None) -> str:  # also the API's 404 (api/events_routes.py)
    return "no webhook with this id" + ("" if store_id is None else " for this store")  # None: an admin, the CLI


async def delete(conn: Any, store_id: UUID | None, webhook_id: UUID) -> None:
    if not await _fetch(conn, "delete_subscription", store_id=store_id, webhook_id=webhook_id):
        raise SubscriptionNotFound("webhook_id", not_found(store_id))


@dataclass(frozen=True)
class PingResult:
    delivery_id: int
    message_id: str
    delivered: bool
    status_code: int | None
    error: str | None


@dataclass(frozen=True)
class PingJob:
    delivery_id: int
    message_id: str
    lock: str
    url: str
    headers: dict[str, str]
    body: str
    webhook_id: UUID


async def start_ping(conn: Any, box: SecretBox, store_id: UUID | None, webhook_id: UUID) -> PingJob:
    """Record a webhook.ping event and its delivery, held by this caller (no dispatcher sends it)."""
    # a disabled one's deliveries fail unsent, yet a ping was POSTed (a 410's receiver asked again)
    then = f" (POST …/webhooks/{webhook_id}/enable, or `webhooks enable {webhook_id}`), then ping it"
    sub = await _require_enabled(conn, store_id, webhook_id, then)
    signers = delivery.Signers(box)  # before the row: SecretBoxError left one saying "a ping in flight", unsent
    signer, previous = signers.get(sub["secret"]), signers.previous(sub["previous_secret"], webhook_id)
    lock = f"ping:{uuid.uuid4().hex[:12]}"
    row = await _one(conn, "insert_ping", store_id=sub["store_id"], webhook_id=webhook_id, lock=lock)
    assert row is not None
    body = delivery.message_body(row["type"], row["created_at"], row["payload"])
    headers = delivery.signed_headers(signer, row["message_id"], body, previous=previous)
    return PingJob(row["id"], row["message_id"], lock, sub["url"], headers, body, webhook_id)


async def send_ping(
    job: PingJob, config: EventsConfig, resolver: ssrf.Resolver = ssrf.system_resolver
) -> delivery.AttemptResult:
    """The one attempt (no database connection held meanwhile: it may take the whole timeout)."""
    async with make_client(config.timeout_s, 2) as client:
        return await delivery.attempt(client, job.url, job.headers, job.body, config.allow_hosts, resolver)


async def disable_subscription(conn: Any, webhook_id: UUID, reason: str) -> None:
    """Switch a subscription off at once (a 410 Gone), failing its waiting deliveries; logged once, with why."""
    stmt = statement("events/dispatch", "disable_subscription")
    row = await conn.fetchrow(stmt.sql, *stmt.bind(webhook_id=webhook_id, reason=reason))
    if row is not None and row["disabled"]:
        log.warning(json.dumps({"event": "subscription_disabled", "webhook": str(webhook_id), "reason": reason}))


async def finish_ping(conn: Any, job: PingJob, result: delivery.AttemptResult) -> PingResult:
    """Record the ping's result: delivered or failed (a ping is never retried); a 410 disables the subscription,
    as for any delivery."""
    decided = policy.decide(1, result.status_code, result.retry_after, (0.0,), 0.0)
    record = statement("events/dispatch", "record_results")
    await conn.execute(record.sql, *record.bind(
        worker_id=job.lock, ids=[job.delivery_id], outcomes=[decided.outcome], delays=[0.0],
        status_codes=[result.status_code], errors=[result.error], urls=[job.url], previous_attempts=[None],
    ))  # fmt: skip
    if decided.disable_reason:
        await disable_subscription(conn, job.webhook_id, decided.disable_reason)
    ok = decided.outcome == "delivered"
    return PingResult(job.delivery_id, job.message_id, ok, result.status_code, result.error)


async def deliveries(conn: Any, *, failed_only: bool, store_id: UUID | None, limit: int) -> list[dict[str, Any]]:
    if store_id is not None:
        await require_store(conn, store_id)
    rows = await _fetch(conn, "list_deliveries", failed_only=failed_only, store_id=store_id, limit=limit)
    return [dict(r) for r in rows]


async def replay(
    conn: Any,
    *,
    delivery_id: int | None = None,
    store_id: UUID | None = None,
    webhook_id: UUID | None = None,
    since: datetime | None = None,
    failed_only: bool = False,
) -> int:
    """Queue finished deliveries again (failed_only: the failed ones); returns how many. One delivery must exist
    and be finished; a webhook must exist and be enabled."""
    if delivery_id is not None:
        row = await _one(conn, "delivery_exists", delivery_id=delivery_id)  # one row whatever the id
        if row is None or row["status"] is None:  # a removed webhook's said "never made, or removed by retention"
            gone = (
                "deleted with its webhook (removing one deletes all its deliveries), or by retention "
                "(`plinqy-search prune` keeps finished deliveries 30 days by default): it cannot be sent again"
            )
            made = row is not None and row["made"]
            raise SubscriptionNotFound("delivery_id", f"no delivery {delivery_id}: {gone if made else 'never made'}")
        if row["type"] == "webhook.ping":
            raise SubscriptionError("delivery_id", f"delivery {delivery_id} is a ping: send a new one (…/test)")
        if row["status"] not in ("delivered", "failed"):
            raise SubscriptionError("delivery_id", f"delivery {delivery_id} is {row['status']}: already queued")
        if not row["is_active"]:
            why = f" ({row['disabled_reason']})" if row["disabled_reason"] else ""
            raise SubscriptionError(
                "delivery_id",
                f"delivery {delivery_id}'s webhook is disabled{why}: enable it first (`webhooks "
                f"enable {row['webhook_id']}`, or POST …/webhooks/{row['webhook_id']}/enable)",
            )
    elif store_id is not None:  # a mistyped id said "queued 0 deliveries again"
        await require_store(conn, store_id)
    if webhook_id is not None:
        await _require_enabled(conn, store_id, webhook_id)
    row = await _one(
        conn, "replay", delivery_id=delivery_id, store_id=store_id, webhook_id=webhook_id, since=since,
        failed_only=failed_only,
    )  # fmt: skip
    return int(row["n"]) if row else 0


async def _require_enabled(conn: Any, store_id: UUID | None, webhook_id: UUID, how: str = "") -> Any:
    """The subscription, refused when disabled (its deliveries would fail at once)."""
    sub = await _one(conn, "get_subscription", store_id=store_id, webhook_id=webhook_id)
    if sub is None:
        raise SubscriptionNotFound("webhook_id", not_found(store_id))
    if not sub["is_active"]:
        why = f" ({sub['disabled_reason']})" if sub["disabled_reason"] else ""
        raise SubscriptionError("webhook_id", f"webhook {webhook_id} is disabled{why}: enable it first{how}")
    return sub
