"""HTTP routes of the outbound webhooks: subscribe, list, change, rotate a secret, unsubscribe, enable, ping (events/
does the work)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import Body

from search_service.api import events_schemas as S
from search_service.api.auth import key_scope, require_store_key
from search_service.api.bodies import json_body
from search_service.api.errors import Unavailable
from search_service.api.params import BadParameter, NotFound
from search_service.api.path_params import StoreId, WebhookId
from search_service.api.runtime import Runtime
from search_service.db.secretbox import SecretBox, SecretBoxError
from search_service.engine import catalog
from search_service.events import subscriptions

_BASE = "/v1/stores/{store_id:uuid}/webhooks"
_TAGS = ["webhooks"]
_EVENTS_DOC = (
    "Needs the store's API key (or an admin key) with the webhooks:write scope. "
    "Event types: listing.created, listing.updated, listing.deleted, stock.changed, stock.out (quantity reaches 0), "
    "stock.back (from 0 to more), price.changed, import.completed, import.failed, or '*' for all (stored as "
    "['*'] alone; a type named twice is stored once). Deliveries are "
    "signed per Standard Webhooks (headers webhook-id, webhook-timestamp, webhook-signature) with the secret "
    "returned at creation; they are retried on the Standard Webhooks schedule, and a 410 answer disables the "
    "webhook."
)


_UNOPENED = (
    "the server's key cannot open this webhook's signing secret (its {setting} is not the key the secret was stored "
    "with): nothing was sent. An operator must fix the key, or rotate the secret (POST …/webhooks/{id}/rotate-secret) "
    "and give the receiver the new one"
)


_WRONG_KEY = (
    "the server's secret key (its {setting}) opens none of the {tried} stored secrets tried, so a secret stored "
    "under it could not be read back: nothing was stored. An operator must fix the key (see /readyz)"
)


async def _box_for_a_new_secret(rt: Runtime, conn: Any) -> SecretBox:
    """The key, refused (503, no Retry-After) when it opens none of the stored secrets /readyz tries, as the CLI
    refuses it: a mistyped key file stored webhooks' secrets under a new key, and then read as the right key."""
    box = rt.settings.secret_box()
    if tried := box.opens_none_of(await catalog.some_stored_secrets(conn)):
        raise Unavailable("secret_key", _WRONG_KEY.format(setting=box.setting, tried=tried), retry=False)
    return box


async def _require_webhook(conn: Any, store_id: UUID, webhook_id: UUID) -> None:
    """An unknown or another store's webhook is a 404 before the key is asked anything, as the other routes say."""
    if all(w["id"] != webhook_id for w in await subscriptions.list_for(conn, store_id)):
        raise NotFound("webhook_id", subscriptions.not_found(store_id))


def _raise_as_http(exc: subscriptions.SubscriptionError) -> None:
    if isinstance(exc, subscriptions.SubscriptionNotFound):
        raise NotFound(exc.parameter, exc.message) from None
    raise BadParameter(exc.parameter, exc.message) from None


@post(
    _BASE,
    guards=[require_store_key("webhooks:write"), json_body],
    security=key_scope("webhooks:write"),
    summary="Subscribe a URL to the store's events",
    description="The URL must be https and resolve to a public address (checked now and at every delivery). "
    "It is stored normalised (spaces around it dropped, scheme and host lower case, default port, dot segments and "
    "unreserved percent-escapes resolved, an empty query dropped; a fragment is refused); a store has one active "
    "webhook a URL, and at most PLINQY_WEBHOOK_MAX_PER_STORE (25) active webhooks (400 naming `url` past it). "
    + _EVENTS_DOC,
    tags=_TAGS,
    status_code=201,
    responses=S.CREATE_RESPONSES,
)
async def create_webhook(
    rt: NamedDependency[Runtime],
    store_id: StoreId,
    data: Annotated[S.WebhookCreate, Body(examples=[S.CREATE_EXAMPLE])],
) -> S.WebhookCreated:
    try:
        async with rt.connection() as conn:
            box = await _box_for_a_new_secret(rt, conn)
            created = await subscriptions.create(conn, box, rt.settings.events, store_id, data.url, data.events)
    except subscriptions.SubscriptionError as exc:
        _raise_as_http(exc)
        raise
    row = created.subscription
    return S.WebhookCreated(
        id=row["id"],
        store_id=row["store_id"],
        url=row["url"],
        events=list(row["events"]),
        secret=created.secret,
        created_at=row["created_at"],
    )


@get(
    _BASE,
    guards=[require_store_key("webhooks:write")],
    security=key_scope("webhooks:write"),
    summary="The store's webhooks",
    description="Each with its state: `enabled` false and `disabled_reason` when a 410 or 24 hours of failures "
    "switched it off (`POST …/{webhook_id}/enable` switches it on again). Secrets are never shown again. "
    "Needs the store's key (webhooks:write).",
    tags=_TAGS,
    responses=S.LIST_RESPONSES,
)
async def list_webhooks(rt: NamedDependency[Runtime], store_id: StoreId) -> S.WebhookList:
    try:
        async with rt.connection() as conn:
            await subscriptions.require_store(conn, store_id)
            rows = await subscriptions.list_for(conn, store_id)
    except subscriptions.SubscriptionError as exc:
        _raise_as_http(exc)
        raise
    return S.WebhookList([S.webhook_out(r) for r in rows])


@patch(
    _BASE + "/{webhook_id:uuid}",
    guards=[require_store_key("webhooks:write"), json_body],
    security=key_scope("webhooks:write"),
    summary="Change a webhook's URL or events",
    description="`url` and `events`, each optional (at least one), with the checks of a new webhook: a URL must be "
    "https and public, is stored normalised, and must not be another active webhook's of the store; events as at "
    "creation. The webhook keeps its id, secret and `sequence` numbering, and its queued deliveries and retries "
    "(sent to the new URL); a change of events applies to events from now on. Needs the store's key "
    "(webhooks:write).",
    tags=_TAGS,
    status_code=200,
    responses=S.UPDATE_RESPONSES,
)
async def update_webhook(
    rt: NamedDependency[Runtime],
    store_id: StoreId,
    webhook_id: WebhookId,
    data: Annotated[S.WebhookUpdate, Body(examples=[S.UPDATE_EXAMPLE])],
) -> S.WebhookOut:
    try:
        async with rt.connection() as conn:
            row = await subscriptions.update(
                conn, rt.settings.events, store_id, webhook_id, url=data.url, events=data.events
            )
    except subscriptions.SubscriptionError as exc:
        _raise_as_http(exc)
        raise
    return S.webhook_out(row)


@post(
    _BASE + "/{webhook_id:uuid}/rotate-secret",
    guards=[require_store_key("webhooks:write")],
    security=key_scope("webhooks:write"),
    summary="Rotate a webhook's signing secret",
    description="A new secret, shown once. The old one stays valid for PLINQY_WEBHOOK_SECRET_GRACE_S (24 hours): "
    "meanwhile each delivery is signed with both (`webhook-signature: v1,<new> v1,<old>`, as Standard Webhooks "
    "allows), so the receiver can switch at its own pace; then with the new one only. A second rotation within "
    "that time drops the oldest secret. Needs the store's key (webhooks:write).",
    tags=_TAGS,
    status_code=200,
    responses=S.ROTATE_RESPONSES,
)
async def rotate_webhook_secret(
    rt: NamedDependency[Runtime], store_id: StoreId, webhook_id: WebhookId
) -> S.WebhookRotated:
    try:
        async with rt.connection() as conn:
            await _require_webhook(conn, store_id, webhook_id)
            box = await _box_for_a_new_secret(rt, conn)
            rotated = await subscriptions.rotate_secret(conn, box, rt.settings.events, store_id, webhook_id)
    except subscriptions.SubscriptionError as exc:
        _raise_as_http(exc)
        raise
    out = S.webhook_out(rotated.subscription)
    return S.WebhookRotated(
        **msgspec.structs.asdict(out), secret=rotated.secret, previous_secret_valid_until=rotated.previous_valid_until
    )


@delete(
    _BASE + "/{webhook_id:uuid}",
    guards=[require_store_key("webhooks:write")],
    security=key_scope("webhooks:write"),
    summary="Remove a webhook",
    description="All its deliveries go with it, queued, delivered and failed (none can be replayed after). "
    "Needs the store's key (webhooks:write).",
    tags=_TAGS,
    status_code=204,
    responses=S.DELETE_RESPONSES,
)
async def delete_webhook(rt: NamedDependency[Runtime], store_id: StoreId, webhook_id: WebhookId) -> None:
    try:
        async with rt.connection() as conn:
            await subscriptions.delete(conn, store_id, webhook_id)
    except subscriptions.SubscriptionError as exc:
        _raise_as_http(exc)


@post(
    _BASE + "/{webhook_id:uuid}/test",
    guards=[require_store_key("webhooks:write")],
    security=key_scope("webhooks:write"),
    summary="Send a test ping",
    description="Sends a signed `webhook.ping` event now, once, and says how the receiver answered. "
    "Recorded among the deliveries. A disabled webhook is not pinged: 400 naming `webhook_id`; enable it first "
    "(`…/enable`), then ping it. A webhook whose signing secret the server's key cannot open is not pinged either: "
    "503 without Retry-After, nothing recorded. Needs the store's key (webhooks:write).",
    tags=_TAGS,
    status_code=200,
    responses=S.PING_RESPONSES,
)
async def ping_webhook(rt: NamedDependency[Runtime], store_id: StoreId, webhook_id: WebhookId) -> Response[Any]:
    settings = rt.settings
    box = settings.secret_box()  # a key that cannot be used at all: errors.py's 503 says so
    try:
        async with rt.connection() as conn:
            job = await subscriptions.start_ping(conn, box, store_id, webhook_id)
    except subscriptions.SubscriptionError as exc:
        _raise_as_http(exc)
        raise
    except SecretBoxError as exc:  # no Retry-After: only an operator's key, or a new secret, makes it open
        raise Unavailable("secret_key", _UNOPENED.format(setting=exc.setting, id=webhook_id), retry=False) from None
    result = await subscriptions.send_ping(job, settings.events)  # no connection held while it waits
    async with rt.connection() as conn:
        outcome = await subscriptions.finish_ping(conn, job, result)
    body = S.PingOut(
        outcome.delivered, outcome.delivery_id, webhook_id, outcome.message_id, outcome.status_code, outcome.error
    )
    return Response(body, status_code=200)


@post(
    _BASE + "/{webhook_id:uuid}/enable",
    guards=[require_store_key("webhooks:write")],
    security=key_scope("webhooks:write"),
    summary="Enable a disabled webhook again",
    description="Switches a webhook that a 410 or a day of failures disabled back on, with the same secret and "
    "`sequence` numbering; `disabled_reason` and `failing_since` are cleared. Its URL is checked again, and it "
    "must be the store's one active webhook to that URL and fit PLINQY_WEBHOOK_MAX_PER_STORE (else 400 naming "
    "`webhook_id`). An enabled webhook is answered as it is. The deliveries that failed meanwhile are not sent "
    "again by this: an operator replays them (`plinqy-search webhooks replay --webhook ID --failed-only --since "
    "TIME`). Needs the store's key (webhooks:write).",
    tags=_TAGS,
    status_code=200,
    responses=S.ENABLE_RESPONSES,
)
async def enable_webhook(rt: NamedDependency[Runtime], store_id: StoreId, webhook_id: WebhookId) -> S.WebhookOut:
    try:
        async with rt.connection() as conn:
            enabled = await subscriptions.enable(conn, rt.settings.events, store_id, webhook_id)
    except subscriptions.SubscriptionError as exc:
        _raise_as_http(exc)
        raise
    return S.webhook_out(enabled.subscription)


EVENTS_ROUTES = [
    create_webhook,
    list_webhooks,
    update_webhook,
    rotate_webhook_secret,
    delete_webhook,
    ping_webhook,
    enable_webhook,
]
