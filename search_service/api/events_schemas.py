"""Request and response bodies of the webhook endpoints (msgspec structs: also their OpenAPI schema), with examples."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from search_service.api.error_specs import AUTH_ERRORS, JSON_ONLY, WRITE_ERRORS, bad_input, bad_uuid
from search_service.api.openapi_fixes import ExampleWithNulls
from search_service.api.schemas import ErrorBody
from search_service.events.config import EventType
from search_service.events.subscriptions import not_found

_STORE = "0b7e9f5c-3d2a-4e61-8c4b-9a1d2e3f4a5b"
_WEBHOOK = "5d2c8e4a-1f3b-4a6d-9e8c-7b6a5f4e3d2c"


class WebhookCreate(msgspec.Struct, forbid_unknown_fields=True):
    url: str
    events: list[str]


class WebhookUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """The fields to change; absent or null: kept (at least one is needed)."""

    url: str | None = None
    events: list[str] | None = None


class WebhookOut(msgspec.Struct):
    id: UUID
    store_id: UUID
    url: str
    events: list[Literal[EventType, "*"]]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime


class WebhookCreated(msgspec.Struct):
    id: UUID
    store_id: UUID
    url: str
    events: list[Literal[EventType, "*"]]
    secret: str  # whsec_…, shown once
    created_at: datetime
    enabled: bool = True  # the list's fields too: a new subscription is on, with no failures yet
    disabled_reason: str | None = None
    failing_since: datetime | None = None


class WebhookRotated(WebhookOut):
    """The subscription as listed, with its new secret."""

    secret: str  # the new whsec_…, shown once
    # until then each delivery is signed with the old secret too; null: the old one did not open, and was dropped
    previous_secret_valid_until: datetime | None


class WebhookList(msgspec.Struct):
    webhooks: list[WebhookOut]


class PingOut(msgspec.Struct):
    delivered: bool
    delivery_id: int
    webhook_id: UUID  # the subscription pinged, as everywhere else
    message_id: str  # the message's webhook-id header (msg_…), as the receiver saw it
    status_code: int | None
    error: str | None


def webhook_out(row: dict[str, Any]) -> WebhookOut:
    return WebhookOut(
        id=row["id"],
        store_id=row["store_id"],
        url=row["url"],
        events=list(row["events"]),
        enabled=row["is_active"],
        disabled_reason=row["disabled_reason"],
        failing_since=row["failing_since"],
        created_at=row["created_at"],
    )


CREATE_EXAMPLE = Example(
    summary="stock events to one receiver",
    value={"url": "https://hooks.example.com/plinqy", "events": ["stock.out", "stock.back", "price.changed"]},
)
_CREATED = {
    "id": _WEBHOOK,
    "store_id": _STORE,
    "url": "https://hooks.example.com/plinqy",
    "events": ["stock.out", "stock.back", "price.changed"],
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "created_at": "2026-12-03T07:00:00Z",
}
_LISTED = {k: v for k, v in _CREATED.items() if k != "secret"} | {
    "enabled": True,
    "disabled_reason": None,
    "failing_since": None,
}


def _spec(model: type, status: int, value: object, description: str) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(
            model,
            description=description,
            examples=[ExampleWithNulls(summary="example", value=value)],  # disabled_reason: null, shown
            generate_examples=False,
        )
    }


def _error(status: int, parameter: str | None, message: str, description: str) -> dict[int, ResponseSpec]:
    return _spec(ErrorBody, status, {"error": {"parameter": parameter, "message": message}}, description)


BAD_URL = _error(
    400,
    "url",
    "the host 169.254.169.254 is the cloud metadata address; webhooks go to public addresses only",
    "Invalid input; `parameter` names it. URLs must be https and resolve to public addresses only.",
)
NO_STORE = _error(404, "store_id", "no store with this id", "No such store.")
NO_WEBHOOK = _error(404, "webhook_id", not_found(UUID(_STORE)), "No such webhook in this store (or another store's).")

# Every operation here also answers bad input, the key's refusals and a database busy or away, as the write API.
WRITE_REFUSALS = {**AUTH_ERRORS, 503: WRITE_ERRORS[503]}
# a malformed id in the path, in the words of every path's id (path_params.py)
STORE_PATH = {**bad_input(bad_uuid("store_id")), **WRITE_REFUSALS}
WEBHOOK_PATH = {**bad_input(bad_uuid("store_id"), bad_uuid("webhook_id")), **WRITE_REFUSALS}
# a new secret is not stored under a key that opens none of the stored ones (`webhooks add` refuses it too)
WRONG_KEY = _error(
    503,
    None,
    "the server's secret key (its PLINQY_SECRET_KEY_FILE) opens none of the 3 stored secrets tried, so a secret "
    "stored under it could not be read back: nothing was stored. An operator must fix the key (see /readyz)",
    "The database is busy or away (see Retry-After), or the server's secret key opens none of a few stored secrets "
    "(connections' and webhooks'): then no Retry-After, nothing is stored, and the message names the variable the "
    "key came from (a secret under that key would split the stored ones across two keys).",
)
CREATE_RESPONSES = {
    **STORE_PATH,
    **_spec(
        WebhookCreated,
        201,
        _CREATED,
        "Created. `secret` (whsec_…) signs every delivery; it is shown only now. No `Location`: a webhook has no "
        "URL to GET (the store's list shows it); its `id` addresses `DELETE`, `…/test` and `…/enable`.",
    ),
    **BAD_URL,
    **NO_STORE,
    **JSON_ONLY,
    **WRONG_KEY,
}
LIST_RESPONSES = {
    **STORE_PATH,
    **_spec(WebhookList, 200, {"webhooks": [_LISTED]}, "The store's webhooks (no secrets)."),
    **NO_STORE,
}
DELETE_RESPONSES = {**WEBHOOK_PATH, **NO_WEBHOOK}
PING_RESPONSES = {
    **WEBHOOK_PATH,
    **_spec(
        PingOut,
        200,
        {
            "delivered": True,
            "delivery_id": 42,
            "webhook_id": _CREATED["id"],
            "message_id": "msg_42_3f1c2a9e8b7d4c6f9a0b1c2d3e4f5a6b",
            "status_code": 204,
            "error": None,
        },
        "The ping was sent once (no retries); `delivered` says whether the receiver answered 2xx.",
    ),
    **_error(
        400,
        "webhook_id",
        "webhook 7a1e… is disabled (the receiver answered 410 Gone): enable it first (POST …/webhooks/7a1e…/enable, "
        "or `webhooks enable 7a1e…`), then ping it",
        "Invalid input (`parameter` names it): a webhook_id that is not a UUID, or a disabled webhook (nothing is "
        "sent to it).",
    ),
    **NO_WEBHOOK,
    **_error(
        503,
        None,
        "the server's key cannot open this webhook's signing secret (its PLINQY_SECRET_KEY_FILE is not the key the "
        "secret was stored with): nothing was sent. An operator must fix the key, or rotate the secret (POST "
        "…/webhooks/7a1e…/rotate-secret) and give the receiver the new one",
        "The database is busy or away (see Retry-After), or the server's key cannot open this webhook's signing "
        "secret: then no Retry-After (retrying cannot help until the key is fixed or the secret rotated), and "
        "nothing is sent or recorded.",
    ),
}
ENABLE_RESPONSES = {
    **WRITE_REFUSALS,
    **_spec(WebhookOut, 200, _LISTED, "Enabled (or enabled already): the webhook as listed."),
    **_error(
        400,
        "webhook_id",
        "webhook 7a1e… already sends this store's events to this URL: remove it first, or add the events you "
        "want to one subscription",
        "Invalid input (`parameter` names it): a webhook_id that is not a UUID, or a webhook that cannot be "
        "enabled: another active webhook of the store has its URL, the store has PLINQY_WEBHOOK_MAX_PER_STORE "
        "active webhooks, or its URL is refused now.",
    ),
    **NO_WEBHOOK,
}
UPDATE_EXAMPLE = Example(
    summary="a new URL and more events",
    value={"url": "https://hooks.example.com/plinqy/v2", "events": ["stock.out", "stock.back", "listing.deleted"]},
)
UPDATE_RESPONSES = {
    **WRITE_REFUSALS,
    **_spec(WebhookOut, 200, _LISTED, "Changed: the webhook as listed (same id, secret and `sequence` numbering)."),
    **_error(
        400,
        "url",
        "webhook 7a1e… already sends this store's events to this URL: remove it first, or add the events you "
        "want to one subscription",
        "Invalid input (`parameter` names it): a webhook_id that is not a UUID, neither `url` nor `events` given, "
        "an unknown event type, or a URL refused as at creation (not https or not public, a fragment, a user name, "
        "another active webhook of the store has it).",
    ),
    **NO_WEBHOOK,
    **JSON_ONLY,
}
ROTATE_RESPONSES = {
    **WEBHOOK_PATH,
    **_spec(
        WebhookRotated,
        200,
        _LISTED
        | {
            "secret": "whsec_Q2hhbmdlZCBzZWNyZXQgZm9yIHRoZSBleGFtcGxlIQ==",
            "previous_secret_valid_until": "2026-12-04T07:00:00Z",
        },
        "Rotated. `secret` (whsec_…) is the new signing secret, shown only now; until "
        "`previous_secret_valid_until` each delivery carries both signatures (`webhook-signature: v1,<new> "
        "v1,<old>`), so a receiver verifies with either secret while it switches over. `null`: the old secret does "
        "not open with the server's key (stored under another): it could sign nothing and was dropped, the new one "
        "signs alone from now on.",
    ),
    **NO_WEBHOOK,
    **WRONG_KEY,
}
