"""The POS webhooks in ingest's source registry (`POST /v1/ingest/{connection_id}`): verify, then parse.

A handler has no database, so what a delivery asks for beyond rows travels in its delivery id, which ingest
stores (`ingest_delivery`) for dedup anyway: ids starting `trigger:` ask the connection's next sync to run now
and say what to read again (an X-Series product's stock, an Erply change). Rows (X-Series products, Shopify
products and levels) are mapped like any batch, newest wins. A Shopify product deleted names no listing: the
delivery's `resolve` step finds its listings at intake (through the links a poll recorded, one index probe, or
for a product created since the last poll the raw rows of the webhooks that brought it) and stores a `delete`
row for each, so the listings leave search as soon as the import job maps the delivery; a product not known yet
becomes a trigger for the next sync. A Shopify level of a SKU the store has no listing of yet (its product's
delivery still to come) becomes a trigger too: the sync reads the product and its level; that product's own
delivery takes the level delivered before it, so its listing is created with it. A product's delivery records its
links as a poll does, and deletes the listings of the variants it no longer holds (connectors/links.py).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any
from urllib.parse import parse_qs

from search_service.db.secretbox import SecretBox
from search_service.db.sql import statement
from search_service.ingest.connectors import erply, lightspeed_x, shopify
from search_service.ingest.connectors.common import MapContext, Row, WebhookRejected, WebhookResult, compact
from search_service.ingest.connectors.links import link_params, removal_params, removal_rows, unique
from search_service.ingest.sent_values import as_sent
from search_service.ingest.sources import (
    Delivery,
    IncomingRequest,
    PayloadError,
    SignatureError,
    register_source,
)
from search_service.ingest.stores import Connection

TRIGGER = "trigger:"


def _secrets(connection: Connection, box: SecretBox) -> list[str]:
    if connection.secret_enc is None:
        raise SignatureError("this connection has no signing secret (connect it with --secret)")
    return box.decrypt(connection.secret_enc).split()  # several, space-separated, during a rotation


def _ctx(connection: Connection) -> MapContext:
    return MapContext(location=str(connection.config.get("location") or ""))


def _delivery(result: WebhookResult, *, resolved: bool = False) -> Delivery:
    """Rows go to the pipeline; a re-read request or an unresolved delete becomes a trigger delivery id."""
    if (result.deleted_parents or result.needs_listing or result.levels_first or result.links) and not resolved:
        return Delivery(result.delivery_id, result.rows, "webhook", resolve=functools.partial(_resolve, result))
    wants = sorted(result.repoll) + [f"delete={p}" for p in result.deleted_parents]
    if wants:  # "trigger:stock=p-9|delete=123 <the vendor's delivery id>"
        return Delivery(f"{TRIGGER}{'|'.join(wants)} {result.delivery_id}", result.rows, "webhook")
    return Delivery(result.delivery_id, result.rows, "webhook")


async def _resolve(result: WebhookResult, conn: Any, connection: Connection) -> Delivery:
    """A deleted product's listings, each as a `delete` row (not sellable, history kept); the parents nothing is
    known of yet stay a trigger for the next sync. A level of a SKU the store has no listing of yet also becomes a
    trigger: its row is rejected (no listing) when mapped before its product, and the sync reads both again."""
    repoll = set(result.repoll) | {f"level={sku}" for sku in await _unlisted(conn, connection, result.needs_listing)}
    rows = await _with_delivered_levels(conn, connection, result) + await _relinked(conn, connection, result)
    unresolved: list[str] = []
    for parent in result.deleted_parents:
        found: list[str] = []
        # The poll's links (an index probe) first; the raw rows of earlier webhooks (a scan of the connection's
        # webhook batches) only for a product created since the last poll.
        for name in ("linked_skus_of_parent", "skus_of_parent"):
            stmt = statement("ingest/connectors", name)
            got = await conn.fetch(stmt.sql, *stmt.bind(connection_id=connection.id, parent_id=parent))
            found = sorted(r[0] for r in got)
            if found:
                break
        rows += [compact({"op": "delete", "sku": sku, "updated_at": result.event_time}) for sku in found]
        if not found:
            unresolved.append(parent)
    return _delivery(dataclasses.replace(result, rows=rows, deleted_parents=unresolved, repoll=repoll), resolved=True)


async def _relinked(conn: Any, connection: Connection, result: WebhookResult) -> list[Row]:
    """A product delivery's links recorded (a later delivery or delete finds its listings by them, as a poll's), and
    a `delete` row for each variant linked to a product read whole that it no longer holds (connectors/links.py)."""
    if not (links := unique(result.links)):
        return []
    removed: list[Row] = []
    if params := removal_params(connection.id, connection.store_id, links):
        stmt = statement("ingest/connectors", "removed_variants")
        removed = removal_rows(links, await conn.fetch(stmt.sql, *stmt.bind(**params)))
    stmt = statement("ingest/connectors", "save_links")
    await conn.execute(stmt.sql, *stmt.bind(**link_params(connection.id, links)))
    return removed


async def _with_delivered_levels(conn: Any, connection: Connection, result: WebhookResult) -> list[Row]:
    """The rows, a new product's upserts with the level delivered before them (Shopify does not order its
    deliveries; that level's row found no listing): created at 0, the listing went out as `listing.created` at 0
    and then `stock.back` once the sync the level triggered read it again. The level's clock goes with it. Without
    one, a variant's own `inventory_quantity` where the shop has one location (shopify_totals)."""
    unlisted = await _unlisted(conn, connection, result.levels_first)
    if not unlisted:
        return list(result.rows)
    stmt = statement("ingest/connectors", "delivered_levels")
    got = await conn.fetch(stmt.sql, *stmt.bind(connection_id=connection.id, skus=unlisted))
    levels = {r["sku"]: compact({"quantity": int(r["quantity"]), "quantity_sent": r["quantity_sent"],
                                 "version": int(r["version"]) if r["version"] else None}) for r in got}  # fmt: skip
    totals = {sku: result.totals[sku] for sku in unlisted if sku not in levels and sku in result.totals}
    if totals and await _one_location(conn, connection):  # else no level: one delivered first is our location's
        levels.update(totals)
    return [
        {**row, **levels[row["sku"]]} if row.get("op") == "upsert" and row.get("sku") in levels else row
        for row in result.rows
    ]


async def _one_location(conn: Any, connection: Connection) -> bool:
    """Whether the connection's last poll counted one location at the vendor (Shopify's `locations/count.json`, in
    its cursor): a variant's `inventory_quantity`, summed over the shop's locations, is then our location's level."""
    stmt = statement("ingest/connectors", "one_location")
    got = await conn.fetch(stmt.sql, *stmt.bind(connection_id=connection.id))
    return bool(got and got[0]["one"])


async def _unlisted(conn: Any, connection: Connection, skus: list[str]) -> list[str]:
    """The SKUs the connection's store has no listing of (one index probe each; a delivery names one, most none)."""
    if not skus:
        return []
    stmt = statement("ingest/connectors", "listed_skus")
    listed = {r[0] for r in await conn.fetch(stmt.sql, *stmt.bind(store_id=connection.store_id, skus=skus))}
    return [sku for sku in skus if sku not in listed]


def _same_account(connection: Connection, named: Any, where: str) -> None:
    """A delivery naming another vendor account than the connection's (config `account`, `shopify:NAME.myshopify.com`)
    is refused: an app's secret signs every shop's deliveries, so another shop's would write its catalogue here.
    One that names none is taken (the name is not signed: this stops a misrouted delivery, not a forged one)."""
    account = str(connection.config.get("account") or "").partition(":")[2].lower()
    given = str(named).strip().lower() if isinstance(named, str | int) else ""
    if given and account and given != account:
        raise SignatureError(f"{where} is {as_sent(named, 100)}, not this connection's account {account!r}")


def _reject(exc: WebhookRejected) -> Exception:
    if exc.status == 401:
        return SignatureError(str(exc))
    return PayloadError(str(exc))


def lightspeed_x_handler(request: IncomingRequest, connection: Connection, box: SecretBox) -> Delivery:
    config = lightspeed_x.SignatureConfig(
        encoding=str(connection.config.get("signature_encoding", "hex")),
        message=str(connection.config.get("signature_message", "raw")),
    )
    try:
        lightspeed_x.verify_webhook(request.headers, request.body, _secrets(connection, box), config)
        form = parse_qs(request.body.decode("utf-8", "replace"))
        _same_account(connection, (form.get("domain_prefix") or [""])[0], "the form field domain_prefix")
        return _delivery(lightspeed_x.parse_webhook(request.headers, request.body, _ctx(connection)))
    except WebhookRejected as exc:
        raise _reject(exc) from None


def erply_handler(request: IncomingRequest, connection: Connection, box: SecretBox) -> Delivery:
    config = erply.SignatureConfig(
        message=str(connection.config.get("signature_message", "id")),
        encoding=str(connection.config.get("signature_encoding", "hex")),
    )
    try:
        result = erply.verify_and_parse_webhook(request.body, _secrets(connection, box), config)
        _same_account(connection, result.account, "the event's clientCode")
        return _delivery(result)
    except WebhookRejected as exc:
        raise _reject(exc) from None


def shopify_handler(request: IncomingRequest, connection: Connection, box: SecretBox) -> Delivery:
    try:
        shopify.verify_webhook(request.headers, request.body, _secrets(connection, box))
        _same_account(connection, request.headers.get("x-shopify-shop-domain"), "X-Shopify-Shop-Domain")
        return _delivery(shopify.parse_webhook(request.headers, request.body, _ctx(connection)))
    except WebhookRejected as exc:
        raise _reject(exc) from None


register_source("lightspeed-x", lightspeed_x_handler)
register_source("erply", erply_handler)
register_source("shopify", shopify_handler)
