"""Each vendor quirk, with the vendor's own shape (shared/reference/pos-payloads.md), through the mappers."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import time
import uuid
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from search_service.ingest.connectors import erply, lightspeed_r, lightspeed_x, shopify
from search_service.ingest.connectors import webhooks as pos_webhooks
from search_service.ingest.connectors.common import (
    MAX_LEVEL,
    MapContext,
    WebhookRejected,
    gtin_or_none,
    hmac_sha256,
    price_text,
    stock_level,
)
from search_service.ingest.connectors.http import parse_retry_after
from search_service.ingest.rows import Rejected, validate
from search_service.ingest.sources import IncomingRequest, SignatureError
from search_service.ingest.stores import Connection
from tests.connector_helpers import BOX

R_ITEM = json.loads("""{"itemID":"118248","systemSku":"210000118248","defaultCost":"1.90","tax":"true",
  "archived":"false",
  "itemType":"default","description":"Barista Oat Drink 1L","upc":"","ean":"5901234123457",
  "customSku":"OAT-BAR-1L","manufacturerSku":"OT-1000","timeStamp":"2025-06-18T18:30:09+00:00",
  "categoryID":"12","manufacturerID":"7",
  "Prices":{"ItemPrice":[{"amount":"3.49","useTypeID":"1","useType":"Default"},
                         {"amount":"3.99","useTypeID":"2","useType":"MSRP"}]},
  "ItemShops":{"ItemShop":[
    {"itemShopID":"745048","qoh":"24","sellable":"24","timeStamp":"2025-06-18T18:31:40+00:00","itemID":"118248","shopID":"1"},
    {"itemShopID":"745047","qoh":"24","sellable":"24","timeStamp":"2025-06-18T18:31:40+00:00","itemID":"118248","shopID":"0"}]}}""")
SHOP1 = MapContext(location="1")


def test_r_series_item_maps_strings_to_numbers_and_the_default_price() -> None:
    row = lightspeed_r.map_item(R_ITEM, SHOP1)
    assert row["sku"] == "118248" and row["price"] == "3.49" and row["quantity"] == 24
    assert row["version"] == 1750271500000  # the level's clock: its ItemShop's timeStamp, as a stock row has it
    assert row["gtin"] == "5901234123457" and row["is_active"] is True
    assert row["attributes"]["custom_sku"] == "OAT-BAR-1L"


def test_r_series_single_children_come_as_objects() -> None:
    item = dict(R_ITEM, Prices={"ItemPrice": {"amount": "2.10", "useTypeID": "1", "useType": "Default"}})
    item["ItemShops"] = {"ItemShop": {"itemShopID": "9", "qoh": "7", "itemID": "118248", "shopID": "1"}}
    row = lightspeed_r.map_item(item, SHOP1)
    assert (row["price"], row["quantity"]) == ("2.10", 7)


def test_r_series_summary_row_and_other_shops_are_skipped_negative_qoh_is_zero() -> None:
    summary, mine = R_ITEM["ItemShops"]["ItemShop"][1], R_ITEM["ItemShops"]["ItemShop"][0]
    assert lightspeed_r.map_item_shop(summary, MapContext(location="0")) is None
    assert lightspeed_r.map_item_shop(mine, MapContext(location="2")) is None
    assert lightspeed_r.map_item_shop(dict(mine, qoh="-3"), SHOP1) == {
        "op": "stock",
        "sku": "118248",
        "quantity": 0,
        "version": 1750271500000,  # the stock clock: the ItemShop's timeStamp in ms
    }


def test_r_series_missing_barcode_and_archived_item() -> None:
    row = lightspeed_r.map_item(dict(R_ITEM, ean="", upc="", archived="true"), SHOP1)
    assert "gtin" not in row and "barcode" not in row.get("attributes", {})
    assert row["is_active"] is False


def test_a_barcode_that_is_not_a_gtin_is_kept_but_never_matched() -> None:
    assert gtin_or_none("5901234123457") == "5901234123457"
    assert gtin_or_none("5901234123458") is None  # wrong check digit
    row = lightspeed_r.map_item(dict(R_ITEM, ean="1234_pink"), SHOP1)
    assert "gtin" not in row and row["attributes"]["barcode"] == "1234_pink"


@pytest.mark.parametrize("name", lightspeed_x.LEVEL_FIELDS)
def test_x_series_reads_all_three_level_field_names(name: str) -> None:
    record = {"id": "i", "outlet_id": "o1", "product_id": "p1", name: 24, "version": 2398817047}
    assert lightspeed_x.map_inventory(record, MapContext("o1")) == {
        "op": "stock",
        "sku": "p1",
        "quantity": 24,
        "version": 2398817047,
    }
    assert lightspeed_x.map_inventory(record, MapContext("o2")) is None


X_WEBHOOK = {
    "id": "add3ff78-587e-11e3-a29a-bc305bf5da20",
    "handle": "barista-oat",
    "type": "Plant milk",
    "name": "Barista Oat Drink",
    "description": "<p>Foams like dairy.</p>",
    "sku": "OAT-BAR-1L",
    "brand_name": "Oatly",
    "supply_price": "1.90",
    "price": 3.03,
    "tax": 0.46,
    "tax_name": "VAT",
    "inventory": [{"outlet_id": "02f399e9", "outlet_name": "Main Outlet", "count": "24.00000"}],
    "updated_at": "2025-06-18 18:30:09",
    "deleted_at": "",
}


def _x_delivery(payload: dict, topic: str = "product.update", secret: str = "x-secret") -> tuple[dict, bytes]:
    body = urlencode({"type": topic, "domain_prefix": "shop", "payload": json.dumps(payload)}).encode()
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-signature": f"signature={sig},algorithm=HMAC-SHA256"}, body


def test_x_series_webhook_is_form_encoded_with_price_plus_tax_and_its_level_read_again() -> None:
    """The payload's `count` has no stock clock: a delivery retried late would set an older level over the newer one
    the inventory's `version` ordered, so the product's inventory is read again instead."""
    headers, body = _x_delivery(X_WEBHOOK)
    lightspeed_x.verify_webhook(headers, body, ["x-secret"], lightspeed_x.SignatureConfig())
    result = lightspeed_x.parse_webhook(headers, body, MapContext("02f399e9"))
    (row,) = result.rows
    assert row["price"] == "3.49" and "quantity" not in row and row["description"] == "Foams like dairy."
    assert result.repoll == {f"stock={X_WEBHOOK['id']}"}
    assert row["updated_at"] == "2025-06-18T18:30:09+00:00" and row["is_active"] is True
    assert result.delivery_id == lightspeed_x.parse_webhook(headers, body, MapContext("x")).delivery_id
    for flag, active in ((None, True), (False, False), ("0", False), (True, True)):
        headers, body = _x_delivery({**X_WEBHOOK, "active": flag})
        assert lightspeed_x.parse_webhook(headers, body, MapContext("x")).rows[0]["is_active"] is active, flag


def test_a_hex_signature_in_upper_case_and_a_level_past_what_a_listing_holds() -> None:
    _, body = _x_delivery(X_WEBHOOK)
    sig = hmac.new(b"x-secret", body, hashlib.sha256).hexdigest().upper()
    upper = {"x-signature": f"signature={sig},algorithm=HMAC-SHA256"}
    lightspeed_x.verify_webhook(upper, body, ["x-secret"], lightspeed_x.SignatureConfig())  # refused before
    huge = [stock_level(v) for v in ("1e12", "2147483648", "1e999999", "-3", "24.00000")]
    assert huge == [MAX_LEVEL, MAX_LEVEL, MAX_LEVEL, 0, 24]  # 1e12 rejected the whole item, its name and price too


def test_x_series_wrong_signature_and_other_encodings() -> None:
    headers, body = _x_delivery(X_WEBHOOK, secret="someone-else")
    with pytest.raises(WebhookRejected) as info:
        lightspeed_x.verify_webhook(headers, body, ["x-secret"], lightspeed_x.SignatureConfig())
    assert info.value.status == 401
    payload = json.dumps(X_WEBHOOK)
    body = urlencode({"type": "product.update", "payload": payload}).encode()
    sig = base64.b64encode(hmac.new(b"k", payload.encode(), hashlib.sha256).digest()).decode()
    config = lightspeed_x.SignatureConfig(encoding="base64", message="payload")
    lightspeed_x.verify_webhook({"x-signature": f"signature={sig},algorithm=HMAC-SHA256"}, body, ["k"], config)


def test_x_series_inventory_update_only_triggers_a_stock_read() -> None:
    headers, body = _x_delivery({"product_id": "p-9", "count": "junk"}, topic="inventory.update")
    result = lightspeed_x.parse_webhook(headers, body, MapContext("o"))
    assert result.rows == [] and result.repoll == {"stock=p-9"}


def test_retry_after_as_seconds_and_as_an_http_date() -> None:
    assert parse_retry_after("2") == 2.0 and parse_retry_after("1.5") == 1.5
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= (parse_retry_after(date, now=now) or 0) <= 31
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


ERPLY_PRODUCT = {
    "productID": "1041",
    "type": "PRODUCT",
    "status": "ACTIVE",
    "active": "1",
    "name": "Barista Oat Drink 1L",
    "code": "OAT-BAR-1L",
    "code2": "5901234123457",
    "code3": None,
    "groupName": "Plant milk",
    "brandName": "Oatly",
    "price": "2.86",
    "priceWithVat": "3.49",
    "longdesc": "Foams like dairy.",
    "lastModified": "1750271409",
}


def test_erply_string_numbers_and_the_price_with_vat() -> None:
    row = erply.map_product(ERPLY_PRODUCT, MapContext("1"))
    assert row["sku"] == "1041" and row["price"] == "3.49" and row["is_active"] is True
    assert row["updated_at"] == "2025-06-18T18:30:09+00:00"
    assert erply.map_product(dict(ERPLY_PRODUCT, status="ARCHIVED"), MapContext("1"))["is_active"] is False
    assert erply.map_stock({"productID": 1041, "amountInStock": "24"}) == {
        "op": "stock",
        "sku": "1041",
        "quantity": 24,
    }
    assert erply.map_stock({"productID": 1041, "amountInStock": -2.5})["quantity"] == 0


def test_erply_webhook_hmac_and_what_it_triggers() -> None:
    event = {
        "id": "6284e24920ab9a8b363344dd",
        "clientCode": "123456",
        "table": "wm_inventory_registration",
        "action": "update",
        "eventCount": 1,
        "items": [{"rowId": 1041, "data": {"productID": 1041}}],
    }
    event["hmac"] = hmac_sha256("e-secret", event["id"].encode())
    result = erply.verify_and_parse_webhook(json.dumps(event).encode(), ["e-secret"])
    assert result.repoll == {"stock"} and result.delivery_id == "erply:6284e24920ab9a8b363344dd"
    product_event = dict(event, table="wm_product", hmac=event["hmac"])
    assert erply.verify_and_parse_webhook(json.dumps(product_event).encode(), ["e-secret"]).repoll == {"catalog"}
    with pytest.raises(WebhookRejected):
        erply.verify_and_parse_webhook(json.dumps(dict(event, hmac="00")).encode(), ["e-secret"])


def test_erply_items_signature_covers_the_items_as_sent() -> None:
    """`--signature-message items`: the hmac of the items' own bytes (or their compact form); parsed and serialised
    again, `3.50` became "3.50" and `Café` `Caf\\u00e9`, so no sender's signature could match."""
    items = '[{"rowId": 801, "data": {"productID": 801, "price": 3.50, "name": "Café"}}]'
    config = erply.SignatureConfig(message="items")
    for signed_text in (items, erply.compact_json(items)):
        mac = hmac_sha256("e-secret", signed_text.encode())
        body = f'{{"id": "ev-9", "table": "wm_product", "items": {items}, "hmac": "{mac}"}}'.encode()
        assert erply.verify_and_parse_webhook(body, ["e-secret"], config).repoll == {"catalog"}
        with pytest.raises(WebhookRejected):
            erply.verify_and_parse_webhook(body.replace(b"3.50", b"3.51"), ["e-secret"], config)


def _connection(source: str, secret: str, **config: str) -> Connection:
    return Connection(uuid.uuid4(), uuid.uuid4(), source, BOX.encrypt(secret), None, {"location": "1", **config}, True)


def test_the_connection_config_chooses_the_unconfirmed_signature_details() -> None:
    """`connect … --signature-encoding/--signature-message` (stored in the config) reach the verification."""
    event = {"id": "ev-7", "table": "wm_product", "items": [{"rowId": 1, "data": {"productID": 1}}]}
    items = json.dumps(event["items"], separators=(",", ":")).encode()
    signed = dict(event, hmac=base64.b64encode(hmac.new(b"e-secret", items, hashlib.sha256).digest()).decode())
    request = IncomingRequest(json.dumps(signed).encode(), {})
    chosen = _connection("erply", "e-secret", signature_message="items", signature_encoding="base64")
    assert pos_webhooks.erply_handler(request, chosen, BOX).delivery_id.startswith("trigger:catalog")
    with pytest.raises(SignatureError):  # the defaults (hex of the event id) refuse the same delivery
        pos_webhooks.erply_handler(request, _connection("erply", "e-secret"), BOX)
    payload = json.dumps(X_WEBHOOK)
    body = urlencode({"type": "product.update", "payload": payload}).encode()
    sig = base64.b64encode(hmac.new(b"x-secret", payload.encode(), hashlib.sha256).digest()).decode()
    x_request = IncomingRequest(body, {"x-signature": f"signature={sig},algorithm=HMAC-SHA256"})
    x_chosen = _connection("lightspeed-x", "x-secret", signature_encoding="base64", signature_message="payload")
    assert len(pos_webhooks.lightspeed_x_handler(x_request, x_chosen, BOX).rows) == 1
    with pytest.raises(SignatureError):
        pos_webhooks.lightspeed_x_handler(x_request, _connection("lightspeed-x", "x-secret"), BOX)


SHOPIFY_PRODUCT = b"""{"id":788032119674292922,"title":"Barista Oat Drink 1L","body_html":"<p>Foams like dairy.</p>",
 "vendor":"Oatly","product_type":"Plant milk","status":"active","updated_at":"2025-06-18T14:30:09-04:00",
 "variants":[{"id":642667041472713922,"product_id":788032119674292922,"title":"Default Title","sku":"OAT-BAR-1L",
   "barcode":"1234_pink","price":"3.49","inventory_item_id":271878346596884015,"inventory_quantity":24,
   "inventory_management":"shopify","updated_at":"2025-06-18T14:30:09-04:00"}]}"""


def _shopify_headers(body: bytes, topic: str, secret: str = "new-secret", event: str = "ev-1") -> dict[str, str]:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {"x-shopify-topic": topic, "x-shopify-hmac-sha256": digest, "x-shopify-event-id": event}


def test_shopify_ids_beyond_2_53_stay_exact_and_free_text_barcode() -> None:
    headers = _shopify_headers(SHOPIFY_PRODUCT, "products/update")
    result = shopify.parse_webhook(headers, SHOPIFY_PRODUCT, MapContext("24826418"))
    (row,) = result.rows
    assert row["sku"] == "271878346596884015"
    assert int(float(271878346596884015)) != 271878346596884015  # what a float parser would have made of it
    assert row["attributes"]["variant_id"] == "642667041472713922"
    assert row["attributes"]["product_id"] == "788032119674292922"
    assert "gtin" not in row and row["attributes"]["barcode"] == "1234_pink"
    assert result.links[0].parent_id == "788032119674292922"
    assert result.delivery_id == "shopify:ev-1:products/update"


def test_shopify_null_available_is_untracked_and_counts_as_zero() -> None:
    level = {
        "inventory_item_id": 271878346596884015,
        "location_id": 24826418,
        "available": None,
        "updated_at": "2025-06-18T14:31:02-04:00",
    }
    assert shopify.map_inventory_level(level, MapContext("24826418"))["quantity"] == 0
    assert shopify.map_inventory_level(dict(level, available=5), MapContext("24826418"))["quantity"] == 5
    assert shopify.map_inventory_level(level, MapContext("1")) is None


def test_shopify_both_secrets_are_valid_during_a_rotation_and_a_wrong_one_is_401() -> None:
    for secret in ("old-secret", "new-secret"):
        shopify.verify_webhook(
            _shopify_headers(SHOPIFY_PRODUCT, "products/update", secret), SHOPIFY_PRODUCT, ["new-secret", "old-secret"]
        )
    with pytest.raises(WebhookRejected) as info:
        shopify.verify_webhook(
            _shopify_headers(SHOPIFY_PRODUCT, "products/update", "stolen"),
            SHOPIFY_PRODUCT,
            ["new-secret", "old-secret"],
        )
    assert info.value.status == 401
    tampered = SHOPIFY_PRODUCT.replace(b"3.49", b"0.01")
    with pytest.raises(WebhookRejected):
        shopify.verify_webhook(_shopify_headers(SHOPIFY_PRODUCT, "products/update"), tampered, ["new-secret"])


def test_a_vendors_price_text_that_is_no_plain_number_goes_to_ingest_as_sent() -> None:
    """Erply's `priceWithVat: "5,49"` was dropped (no plain number), and the row refused as "price is required",
    its name change with it: ingest reads the decimal comma, and names a price it cannot read."""
    assert [price_text(v) for v in ("5,49", " abc ", "", "  ", None, {"amount": 1})] == ["5,49", "abc"] + [None] * 4
    assert validate({"op": "upsert", "sku": "1026", "name": "Renamed", "price": price_text("5,49")}).price == Decimal(
        "5.49"
    )
    with pytest.raises(Rejected, match="price 'abc'"):
        validate({"op": "upsert", "sku": "1026", "name": "Renamed", "price": price_text("abc")})


def test_a_vendors_price_past_cents_goes_to_ingest_which_rounds_it_half_up() -> None:
    """Rounded half to even here (2.345 → 2.34, 10.005 → 10.00), then half up without a note: the price goes as
    sent (written out), and ingest rounds it half up and notes it."""
    sent = [price_text(v) for v in ("2.345", "10.005", 2.345, 3.4999999999999996, "2.344", 1e-7, "1e-999999")]
    assert sent == ["2.345", "10.005", "2.345", "3.4999999999999996", "2.344", "0.0000001", "1E-999999"]
    prices = [validate({"op": "upsert", "sku": "1", "price": price}).price for price in sent[:6]]
    assert prices == [Decimal(p) for p in ("2.35", "10.01", "2.35", "3.50", "2.34", "0.00")]
    with pytest.raises(Rejected, match="scientific notation"):  # a megabyte written out
        validate({"op": "upsert", "sku": "1", "price": sent[6]})
