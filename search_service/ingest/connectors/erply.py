"""Erply: `getProducts`, `getProductStock` and `getUserOperationsLog` (deletions) by `changedSince`.

Errors arrive as HTTP 200 with `status.errorCode` ≠ 0: 1002 is the hourly quota (wait for the next hour), 1054-1056
an expired session (log in again), 1050-1052 a login refused; a per-IP 429 comes as HTTP, without Retry-After, and
lasts 10 s (waited out). Numbers may be strings. A stock record has no warehouse: it belongs to the warehouse the
request asked for. Webhooks are enriched events used only as a trigger to poll again (the poll is the source of
truth), so their data is never trusted.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from search_service.ingest.connectors.common import (
    Cursor,
    MapContext,
    Page,
    Row,
    WebhookRejected,
    WebhookResult,
    as_list,
    barcode_fields,
    compact,
    compact_json,
    fold_levels,
    hmac_sha256,
    level_fields,
    matches_any,
    merge_attributes,
    not_text,
    plain_text,
    price_text,
    truthy,
)
from search_service.ingest.connectors.erply_pass import PassState, deleted_while, settle
from search_service.ingest.connectors.http import RetryPolicy, RetryRequest, VendorError, VendorHTTP
from search_service.ingest.connectors.vendor_clocks import unix_clock
from search_service.ingest.rows import CLOCK_AHEAD_MAX
from search_service.ingest.sources import NestedTooDeeply, load_json

SOURCE = "erply"
QUOTA_EXCEEDED = 1002
IP_BLOCK_S = 10.0  # past 10 concurrent or 150 requests in 30 s per IP: HTTP 429 (no Retry-After) for 10 s
SESSION_ERRORS = frozenset({1054, 1055, 1056})
LOGIN_ERRORS = {1050: "(username or password missing)", 1051: "(wrong username or password)", 1052: "(user blocked)"}
SELLABLE_STATUSES = frozenset({"ACTIVE", "NO_LONGER_ORDERED"})
# getProducts' doc: its variations (regular products) are "the items you can sell", the matrix parent is not one
NOT_SOLD_TYPES = frozenset({"MATRIX"})
STOCK_TABLES = ("wm_inventory", "wm_sales_document", "wm_product_stock")
PRODUCT_TEXT = ("productID", "name", "brandName", "longdesc", "description", "groupName", "categoryName", "code2")


class SessionExpired(VendorError):
    pass


def default_base_url(client_code: str) -> str:
    return f"https://{client_code}.erply.com/api/"


def seconds_to_next_hour(now: float | None = None) -> float:
    now = time.time() if now is None else now
    return 3600 - now % 3600 + 1


def check_status(body: Any, response: httpx.Response) -> None:
    """Erply reports errors inside HTTP 200: turn them into retries, re-logins or failures."""
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(status, dict):
        raise RetryRequest("malformed Erply answer: no status")
    code = int(status.get("errorCode") or 0)
    if code == 0:
        return
    if code == QUOTA_EXCEEDED:
        raise RetryRequest("Erply hourly request quota used up (error 1002)", seconds_to_next_hour())
    if code in SESSION_ERRORS:
        raise SessionExpired(f"Erply session expired (error {code})", status=401)
    refused = LOGIN_ERRORS.get(code)  # the credentials, as an HTTP vendor's 401 (sync.py says what to do)
    why = f"Erply {status.get('request')}: error {code} {refused or status.get('errorField') or ''}".strip()
    raise VendorError(why, status=401 if refused else None)


def map_product(record: Mapping[str, Any], ctx: MapContext) -> Row:
    status = str(record.get("status") or "ACTIVE").upper()
    row = compact(
        {
            "op": "upsert",
            "sku": str(record["productID"]),
            "name": record.get("name") or None,
            "brand": record.get("brandName") or None,
            "description": plain_text(record.get("longdesc")) or plain_text(record.get("description")),
            "category": record.get("groupName") or record.get("categoryName") or None,
            "price": price_text(record.get("priceWithVat")),  # `price` is net of VAT
            "currency": ctx.currency,
            "is_active": status in SELLABLE_STATUSES and truthy(record.get("active", 1)),
            **unix_clock(record.get("lastModified"), "lastModified"),  # one past 9999: the row refused, naming it
            "stock_apart": True,  # its level comes apart: none on a new listing is no sender's fault
        }
    )
    row.update(barcode_fields(record.get("code2")))
    if why := not_text(record, PRODUCT_TEXT):
        row["_error"] = why  # refused with the reason (a list was stored as its Python repr)
    return merge_attributes(row, {"code": record.get("code"), "code3": record.get("code3")})


def map_stock(record: Mapping[str, Any]) -> Row | None:
    """A stock record of the warehouse the request named (the record itself does not say)."""
    level = level_fields(record.get("amountInStock"))
    if not level or record.get("productID") in (None, ""):
        return None
    # No clock: a level is as of the request, and stock polls of one account run one at a time.
    return compact({"op": "stock", "sku": str(record["productID"]), **level})


def map_deletion(record: Mapping[str, Any], ahead: int | None = None) -> Row | None:
    """A deleted product. After the vendor's clock went back (`ahead`: its clock before, see erply_pass), stamped no
    earlier than that clock, capped at the bound ingest takes (rows.CLOCK_AHEAD_MAX past ours): a listing may hold
    a stamp from the vendor's future, never one past that bound as it was mapped, before now."""
    if str(record.get("operation")) != "delete" or record.get("itemID") in (None, ""):
        return None
    stamp = record.get("timestamp")
    if ahead is not None and str(stamp).isdecimal() and int(str(stamp)) < ahead:
        stamp = min(ahead, int(time.time() + CLOCK_AHEAD_MAX.total_seconds()))
    return compact({"op": "delete", "sku": str(record["itemID"]), **unix_clock(stamp, "timestamp")})


@dataclass(frozen=True)
class _Query:
    request: str
    key: str  # cursor key of this query
    kind: str
    since_param: str = "changedSince"


STOCK_QUERY = _Query("getProductStock", "stock", "stock")
QUERIES = (
    _Query("getProducts", "products", "catalog"),
    _Query("getUserOperationsLog", "deletions", "catalog", "addedFrom"),  # its filter's name (not changedSince)
    STOCK_QUERY,
)


class Erply:
    source = SOURCE
    MAX_PAGE_SIZE = 1000  # the vendor's documented most for `recordsOnPage`: past it, pages come back shorter

    def __init__(
        self,
        *,
        client_code: str,
        ctx: MapContext,
        username: str | None = None,
        password: str | None = None,
        session_key: str | None = None,
        base_url: str | None = None,
        policy: RetryPolicy | None = None,
        page_size: int = 1000,
    ) -> None:
        self.ctx = ctx
        self.client_code = client_code
        self.username, self.password, self.session_key = username, password, session_key
        self.page_size = max(1, min(page_size, self.MAX_PAGE_SIZE))
        self.http = VendorHTTP(
            base_url or default_base_url(client_code), policy=policy, check=check_status, blocked_s=IP_BLOCK_S
        )

    def close(self) -> None:
        self.http.close()

    def _login(self) -> None:
        if not (self.username and self.password):
            raise VendorError("Erply session expired and no username/password to log in again", status=401)
        body = self._post({"request": "verifyUser", "username": self.username, "password": self.password})
        records = as_list(body.get("records")) if isinstance(body, dict) else []
        key = records[0].get("sessionKey") if records and isinstance(records[0], dict) else None
        if not key:
            raise VendorError("Erply verifyUser answered no sessionKey: check the username and password", status=401)
        self.session_key = str(key)

    def _post(self, form: dict[str, Any]) -> Any:
        body, _ = self.http.request_json("POST", "", data={"clientCode": self.client_code, **form})
        return body

    def call(self, request: str, **params: Any) -> Any:
        """One API call with the session; an expired session logs in again once."""
        if self.session_key is None:
            self._login()
        try:
            return self._post({"request": request, "sessionKey": self.session_key, **params})
        except SessionExpired:
            self._login()
            return self._post({"request": request, "sessionKey": self.session_key, **params})

    def pages(self, cursor: Cursor, *, full: bool = False) -> Iterator[Page]:
        """Products, deletions, then stock, each query with its own state; each level read rides on its product's
        upsert (common.fold_levels)."""
        cursor = dict(cursor)
        # a full pass re-reads everything that exists: no deletions log
        catalog = [q for q in QUERIES if q.kind == "catalog" and not (full and q.key == "deletions")]
        yield from fold_levels(
            cursor,
            full=full,
            catalog_key="products",
            stock_key=STOCK_QUERY.key,
            catalog=lambda: (page for query in catalog for page in self._walk(query, cursor, full)),
            stock=lambda at: self._walk(STOCK_QUERY, at, full),
        )

    def _walk(self, query: _Query, cursor: Cursor, full: bool) -> Iterator[Page]:
        """Pages of one query; mid-pass the cursor keeps its page, and `since` advances only at the pass's end, when
        the pass saw a steady set; a vendor clock gone back lowers it (erply_pass)."""
        state = PassState.load(cursor.get(query.key) if not full else None)
        moved = False  # (the deletions) a product deleted while this sync's products pass ran
        while True:
            asked_at = time.time()
            body = self.call(query.request, **self._params(query, state))
            status = body.get("status") or {}
            now = int(status.get("requestUnixTime") or time.time())
            if state.first_answer(now, asked_at):
                continue  # the vendor's clock went back: the first page again, from the lowered `since`
            records = [r for r in as_list(body.get("records")) if isinstance(r, dict)]
            if _repeated(query, state, records):
                continue  # the pass again from page 1: a record entered its set ahead of the pages read
            state.per_page = max(state.per_page, len(records))
            rows = self._map(query, records, state.ahead)
            done = self._last_page(query, status, len(records), state.page, state.per_page)
            total = status.get("recordsTotal")
            state.total, state.shifted = total, state.shifted or _fewer(total, state.total)
            moved = moved or (query.key == "deletions" and deleted_while(cursor.get("products"), records))
            cursor[query.key] = self._finished(query, state, now, full) if done else state.mid_pass()
            if done and query.key == "deletions" and (cursor.get("products") or {}).get("unsettled"):
                cursor["products"] = settle(cursor["products"], moved)
            unread = done and full and query.kind == "catalog" and state.shifted  # a record may have gone unread
            yield Page(query.kind, rows, dict(cursor), len(records), shifted=unread)
            if done:
                return
            state.page += 1

    def _params(self, query: _Query, state: PassState) -> dict[str, Any]:
        params: dict[str, Any] = {query.since_param: state.since, "recordsOnPage": self.page_size, "pageNo": state.page}
        if query.request == "getProducts":
            params["orderBy"] = "productID"  # the vendor's advice for paging: products added mid-pass come last
        if query.request == "getProductStock":
            params["warehouseID"] = self.ctx.location
        if query.request == "getUserOperationsLog":
            params["tableName"] = "products"
        return params

    def _finished(self, query: _Query, state: PassState, ended: int, full: bool) -> dict[str, Any]:
        """The cursor of a finished pass (`ended`: the vendor's clock at its last page). A full products pass with a
        deletion in its window is `shifted` too: its caller removes no listing it did not read."""
        several = query.key == "products" and state.page > 1  # one page is one answer: nothing moved under it
        if full and several and not state.shifted:  # no deletions log follows a full pass: ask it now
            state.shifted = self._deleted_between(state.started or ended, ended)
        if state.shifted:
            return state.kept()
        if full or not several:
            return state.settled()
        return state.unsettled(ended)  # settled by the deletions log, read next

    def _deleted_between(self, started: int, ended: int) -> bool:
        """Whether the deletions log's first product deleted since `started` went by `ended` (one request)."""
        body = self.call("getUserOperationsLog", tableName="products", addedFrom=started, recordsOnPage=1, pageNo=1)
        records = [r for r in as_list(body.get("records")) if isinstance(r, dict)]
        return deleted_while({"unsettled": [started, ended]}, records)

    def _last_page(self, query: _Query, status: Mapping[str, Any], count: int, page_no: int, per_page: int) -> bool:
        """Whether a pass has read its query's `recordsTotal`. A page shorter than asked is not the last one by
        itself: an account whose pages are capped below `recordsOnPage` sends short pages throughout (its last,
        partial, page is followed by an empty one). An empty page before `recordsTotal` (`per_page`: the most a
        page of the pass brought) is the vendor's glitch: the pass fails, and the next sync reads that page again
        (taken as the end, it moved `since` past the changes not read yet)."""
        total = status.get("recordsTotal")
        if total is None or not str(total).isdecimal():
            return count < self.page_size
        if count == 0:
            if (page_no - 1) * (per_page or self.page_size) < int(total):
                raise VendorError(
                    f"Erply {query.request} page {page_no} came back empty before its recordsTotal {total}: "
                    "stopped (the next sync reads it again)",
                    retryable=True,
                )
            return True
        return page_no * count >= int(total) or (page_no - 1) * self.page_size + count == int(total)

    def _map(self, query: _Query, records: list[dict[str, Any]], ahead: int | None = None) -> list[Row]:
        if query.request == "getProducts":  # a matrix parent is no listing (as a Shopify product beside its variants)
            sold = (r for r in records if str(r.get("type") or "").upper() not in NOT_SOLD_TYPES)
            return [map_product(r, self.ctx) for r in sold if r.get("productID") not in (None, "")]
        if query.request == "getUserOperationsLog":
            return [row for r in records if (row := map_deletion(r, ahead))]
        return [row for r in records if (row := map_stock(r))]


def _fewer(total: Any, before: Any) -> bool:
    """Whether a page's `recordsTotal` fell below the page before's: a record left the set mid-pass (deleted), so
    the records after it moved up a page and the first of the next page was never read. Such a pass keeps its
    `since`: the next poll reads the same set again (moved to the pass's start, that record's change was lost)."""
    return str(total).isdecimal() and str(before).isdecimal() and int(total) < int(before)


def _repeated(query: _Query, state: PassState, records: list[dict[str, Any]]) -> bool:
    """Whether the page repeats the page before (the same records' ids). A record that entered the set ahead of the
    pages read (a level changed mid-pass) pushes the page before onto this one: the pass starts again at page 1
    once, keeping `since` (its cursor, saved mid-pass, asked that page again for ever). A repeat after that fresh
    start is a vendor that ignores `pageNo` (without `recordsTotal`, a pass that never ended): the pass stops."""
    if not records:
        return False
    ids = [[r.get("productID"), r.get("itemID"), r.get("timestamp")] for r in records]
    digest = hashlib.blake2b(json.dumps(ids, default=str).encode(), digest_size=8).hexdigest()
    if digest != state.last:
        state.last = digest
        return False
    if state.restarted:
        raise VendorError(
            f"Erply {query.request} page {state.page} repeats page {state.page - 1} (pageNo ignored?) after the "
            "pass started again from page 1: stopped",
            retryable=True,
        )
    state.page, state.last, state.total, state.restarted = 1, None, None, True
    return True


@dataclass(frozen=True)
class SignatureConfig:
    message: str = "id"  # unconfirmed input of the body's `hmac`: "id" (the event id) or "items" (compact JSON)
    encoding: str = "hex"


def _signed_message(event: Mapping[str, Any], config: SignatureConfig, raw_items: str | None = None) -> bytes:
    """The bytes the `hmac` covers: the event id, or (`items`) the items as sent (`raw_items`: their text in the
    body; serialised again, `3.50` and `Café` would not be the sender's bytes)."""
    if config.message == "items":
        if raw_items is not None:
            return raw_items.encode()
        return json.dumps(event.get("items"), separators=(",", ":"), ensure_ascii=False, default=str).encode()
    return str(event.get("id") or "").encode()


def raw_member(text: str, key: str) -> str | None:
    """The text of the top-level JSON object's member `key`, exactly as written (None: absent or not an object)."""
    decoder = json.JSONDecoder()

    def skip(at: int) -> int:  # past white space
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        return at

    at = skip(0)
    if text[at : at + 1] != "{":
        return None
    at = skip(at + 1)
    while text[at : at + 1] not in ("}", ""):
        name, at = decoder.raw_decode(text, at)
        start = skip(skip(at) + 1)  # past the ':'
        _, at = decoder.raw_decode(text, start)
        if name == key:
            return text[start:at]
        at = skip(at)
        at = skip(at + (text[at : at + 1] == ","))
    return None


def sign_event(event: Mapping[str, Any], secret: str, config: SignatureConfig | None = None) -> str:
    return hmac_sha256(
        secret, _signed_message(event, config or SignatureConfig()), (config or SignatureConfig()).encoding
    )


def verify_and_parse_webhook(body: bytes, secrets: list[str], config: SignatureConfig | None = None) -> WebhookResult:
    """Check the body's `hmac`, then say what to poll again: the catalogue or the stock."""
    config = config or SignatureConfig()
    try:
        event = load_json(body, parse_float=Decimal)
    except NestedTooDeeply:
        raise WebhookRejected("the body is nested too deeply", 400) from None
    except ValueError as exc:  # load_json's NotJson: why and where (NaN, a lone surrogate: a 500 or stored as null)
        raise WebhookRejected(str(exc), 400) from None
    if not isinstance(event, dict) or not event.get("id"):
        raise WebhookRejected("not an Erply event (no id)", 400)
    raw_items = raw_member(body.decode("utf-8", "replace"), "items") if config.message == "items" else None
    # the items as sent, or their compact form (a sender may sign its compact items and send them spaced)
    forms = {raw_items, compact_json(raw_items)} if raw_items is not None else {None}
    given = str(event.get("hmac") or "")
    if not any(matches_any(given, secrets, _signed_message(event, config, form), config.encoding) for form in forms):
        raise WebhookRejected("the event's hmac does not match")
    table = str(event.get("table") or "")
    repoll = {"stock"} if table.startswith(STOCK_TABLES) else {"catalog"}
    kind = "stock" if "stock" in repoll else "catalog"
    return WebhookResult(f"erply:{event['id']}", kind, repoll=repoll, account=event.get("clientCode"))
