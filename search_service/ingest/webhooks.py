"""The `webhook` source: Standard Webhooks deliveries (webhook-id, webhook-timestamp, webhook-signature),
verified with the `standardwebhooks` package on the raw bytes, against the connection's secret(s).

Body: {"type": "listing.upsert" | "listing.delete" | "stock.set", "data": {...}} or
{"type": "listings.upsert", "data": [{...}, ...]}. `data` is in the pipeline's row shape; the type says each row's
`op`: a row that names another op is rejected saying so (it was read as the type's, a stock row as an upsert), and
so is a row with a field no row takes (`ROW_FIELDS`: the listing batch's items'), naming it. A body with a key
given twice in an object, or a field beside `type`, `data` and `timestamp`, is refused (400), naming it; so is a body
that is no object, and a `data` missing or of the wrong shape for its type.
"""

from __future__ import annotations

import functools
from typing import Any

from standardwebhooks import Webhook

from search_service.db.secretbox import SecretBox
from search_service.ingest.json_faults import NotJson
from search_service.ingest.sent_values import as_json
from search_service.ingest.sources import (
    Delivery,
    IncomingRequest,
    MediaTypeError,
    NestedTooDeeply,
    PayloadError,
    SignatureError,
    load_json,
    register_source,
)
from search_service.ingest.stores import Connection

EVENT_OPS = {"listing.upsert": "upsert", "listing.delete": "delete", "stock.set": "stock", "listings.upsert": "upsert"}
# What a row of a delivery takes: the listing batch's items' fields (`op`: its type's, or left out).
ROW_FIELDS = ("sku", "op", "gtin", "name", "brand", "description", "category", "price", "currency", "quantity",
              "is_active", "attributes", "updated_at", "version")  # fmt: skip
# A delivery's own fields: Standard Webhooks' envelope (its `timestamp` is taken, not read: the header's is signed).
MESSAGE_FIELDS = ("type", "data", "timestamp")
TAKES = "a delivery takes type, data and timestamp (not read)"
_EACH_ROW = {"upsert": "an upsert", "delete": "a delete", "stock": "a stock change"}
MAX_ITEMS = 1000
# Its answers (401, 400, 415), as the OpenAPI shows them too (api/error_specs.py).
BAD_SIGNATURE = "the webhook signature is missing, wrong, or its timestamp is more than 5 minutes off"
JSON_ONLY = "a webhook body must be application/json"


@functools.lru_cache(maxsize=1024)
def _verifiers(box: SecretBox, secret_enc: bytes) -> tuple[Webhook, ...]:
    """A connection's secrets (several, space-separated, while one is rotated), decrypted once per process: per
    delivery, the decryption cost more than the signature check. Keyed by the ciphertext, so a rotated secret is
    a new entry."""
    verifiers = []
    for secret in box.decrypt(secret_enc).split():
        try:
            verifiers.append(Webhook(secret))
        except Exception:  # a malformed secret verifies nothing (as before: 401)
            continue
    return tuple(verifiers)


def _verify(request: IncomingRequest, verifiers: tuple[Webhook, ...]) -> None:
    headers = dict(request.headers)
    for verifier in verifiers:
        try:
            verifier.verify(request.body, headers, json_parse=False)
            return
        except Exception:  # a malformed header or signature is as bad as a wrong one: 401
            continue
    raise SignatureError(BAD_SIGNATURE)


MAX_WEBHOOK_ID = 256


def parse_body(body: bytes) -> list[dict[str, Any]]:
    try:
        # a key given twice is refused: readers differ on which counts (json.loads: the last `type`, a delete)
        message = load_json(body)
    except NestedTooDeeply:
        raise PayloadError("the body is nested too deeply to be a listing") from None
    except NotJson as exc:  # why and where, as the write API says it; NaN or a lone surrogate named by field
        raise PayloadError(exc.message, exc.path or "body") from None
    if not isinstance(message, dict):  # an array, null, 5: it was told "type must be one of …"
        raise PayloadError(f"the body must be a JSON object with type and data, not {_json_kind(message)}", "body")
    if message.get("type") not in EVENT_OPS:
        raise PayloadError(f"type must be one of {', '.join(EVENT_OPS)}", "type")
    if unknown := [key for key in message if key not in MESSAGE_FIELDS]:  # as a row's unknown field is
        raise PayloadError(f"unknown field {as_json(unknown[0])}: {TAKES}", unknown[0][:40])
    kind = message["type"]
    return [_row(item, EVENT_OPS[kind], kind) for item in _items(kind, message.get("data"))]


def _items(kind: str, data: Any) -> list[dict[str, Any]]:
    """The delivery's listings: `data` one object, or a list of them for listings.upsert; refused saying which
    (a missing `data`, or a list for one listing, was told "each listing in data must be an object")."""
    several = kind == "listings.upsert"
    wanted = f"a list of 1 to {MAX_ITEMS} listings (objects)" if several else f"an object (one listing) for {kind}"
    if data is None:
        raise PayloadError(f"data is required: {wanted}", "data")
    if not several:
        if isinstance(data, dict):
            return [data]
        more = ""
        if isinstance(data, list):
            more = (
                "; send several as listings.upsert" if kind == "listing.upsert" else "; send one delivery per listing"
            )
        raise PayloadError(f"data must be {wanted}, not {_json_kind(data)}{more}", "data")
    if not isinstance(data, list) or not data or len(data) > MAX_ITEMS:
        raise PayloadError(f"data must be {wanted}", "data")
    if not all(isinstance(item, dict) for item in data):
        raise PayloadError("each listing in data must be an object", "data")
    return data


_JSON_KINDS = {list: "an array", str: "a string", bool: "true or false", int: "a number", float: "a number"}


def _json_kind(value: Any) -> str:
    return "null" if value is None else _JSON_KINDS.get(type(value), "an object")


def _row(item: dict[str, Any], op: str, kind: str) -> dict[str, Any]:
    """A delivery's item as a row of its type's op; rejected alone (`_error`) for another op, or a field no row
    takes (`quantiy`: its listing was made with no stock, `mapped`), as the listing endpoints refuse both."""
    # `_raw` and `_error` are the pipeline's own keys (a source's original cells, its reading error): kept out of
    # the row (a sender setting them chose its rejection reason or failed its batch's errors CSV), and named.
    row = {**{k: v for k, v in item.items() if not str(k).startswith("_")}, "op": op}
    if item.get("op", op) != op:
        row["op"], row["_error"] = item["op"], _op_not_read(kind, item["op"])
    elif unknown := [key for key in item if key not in ROW_FIELDS]:
        row["_error"] = f"unknown field {as_json(unknown[0])}: a row takes {', '.join(ROW_FIELDS)}"
    return row


def _op_not_read(kind: str, sent: Any) -> str:
    op = EVENT_OPS[kind]
    if sent is None or (isinstance(sent, str) and sent.strip().lower() == op):  # `null`, `"Stock"`: not another op
        return f"op must be exactly {as_json(op)} (or left out) in a {kind} delivery, not {as_json(sent)}"
    return (
        f"op {as_json(sent)} is not read in a {kind} delivery, whose every row is {_EACH_ROW[op]}: "
        "send a stock change as stock.set, a delete as listing.delete, or write rows of mixed ops to "
        "POST /v1/stores/{store_id}/listings/batch"
    )


def verify_and_parse(request: IncomingRequest, connection: Connection, box: SecretBox) -> Delivery:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise MediaTypeError(JSON_ONLY, "content-type")
    if connection.secret_enc is None:
        raise SignatureError("this connection has no signing secret")
    if len(request.headers.get("webhook-id", "")) > MAX_WEBHOOK_ID:  # the dedup key's index holds ~2,700 bytes
        raise PayloadError(f"webhook-id must be at most {MAX_WEBHOOK_ID} characters", "webhook-id")
    _verify(request, _verifiers(box, connection.secret_enc))
    return Delivery(request.headers.get("webhook-id"), parse_body(request.body))


register_source("webhook", verify_and_parse)
