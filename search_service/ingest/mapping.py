"""Apply a chunk of raw rows to products and listings: validate in Python, write set-based (a few statements per
chunk, whatever its size). Runs inside the caller's transaction, under the store's advisory lock.
Matching (per upsert row): a valid GTIN links to the product with that GTIN (`gtin`); otherwise the store's
listing of the SKU keeps its product (`sku`), and a retired SKU's row without one takes back the product it had
(its listing deleted, under the SKU that took it over: `sku`); otherwise a new product is created (`created`,
embedded later by the worker through the product trigger). Only a product no other store lists has its text
rewritten (the fields a row would change on another are noted). A round that finds a GTIN it gives a product taken
by another transaction meanwhile is mapped again, matching that product. Newest wins: a row older (updated_at,
version or catalog_version) than what its listing holds ends `stale` and changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from search_service.controlchars import escape_control_chars
from search_service.db.sql import statement
from search_service.errortext import first_line
from search_service.ingest.categories import Categories
from search_service.ingest.clocks import NOTHING_CHANGED, is_stale
from search_service.ingest.currencies import minor_units
from search_service.ingest.gtins import gtin14
from search_service.ingest.kept_text import note_kept_text
from search_service.ingest.listed_as import listed_otherwise, retired_and_listed
from search_service.ingest.round_writes import GtinTaken, Plan, RowResult, insert_products, update_products
from search_service.ingest.rounds import apply_repeating, rounds_of
from search_service.ingest.rows import (
    LEVEL_APPLIED,
    Rejected,
    ValidRow,
    keep_level,
    level_alone,
    listing_values,
    price_in,
    validate,
)
from search_service.ingest.stores import note_store_inactive
from search_service.ingest.threads import rows_off_loop

log = logging.getLogger(__name__)


async def _run(conn: Any, name: str, **params: Any) -> list[Any]:
    return list(await conn.fetch((stmt := statement("ingest/mapping", name)).sql, *stmt.bind(**params)))


async def apply_rows(
    conn: Any, store_id: UUID, currency: str, items: Sequence[tuple[int, Any]], *, store_active: bool = True,
    programs: Collection[int] = (),
) -> dict[int, RowResult]:  # fmt: skip
    """Map (key, payload) items; returns each key's result. The caller holds the store lock and the transaction.
    `programs`: the keys of rows a POS connector wrote (rows.validate's `by_people` False)."""
    results = await apply_repeating(conn, items, lambda run: _apply_in_rounds(conn, store_id, currency, run, programs))
    if not store_active:  # its fence read the store: search shows no listing of an inactive one
        note_store_inactive(results.values())
    return results


async def _apply_in_rounds(
    conn: Any, store_id: UUID, currency: str, items: Sequence[tuple[int, Any]], programs: Collection[int]
) -> dict[int, RowResult]:
    wanted = any(isinstance(p, dict) and p.get("category") not in (None, "") for _, p in items)
    categories = await Categories.load(conn) if wanted else Categories([])  # a stock update reads no tree
    results: dict[int, RowResult] = {}
    for round_items in rounds_of(items):
        pending = list(round_items)
        while pending:  # rows deferred behind an earlier row of another SKU go again once it is written
            try:  # a savepoint: a row the database refuses is then rejected alone
                got = await _apply_round_again_if_raced(conn, store_id, currency, pending, categories, programs)
            except REFUSED_VALUES:
                got = await _apply_one_by_one(conn, store_id, currency, pending, categories, programs)
            results.update({key: result for key, result in got.items() if result is not DEFERRED})
            pending = [item for item in pending if got.get(item[0]) is DEFERRED]  # never the first: progress
    return results


GTIN_RACE_TRIES = 3


async def _apply_round_again_if_raced(
    conn: Any, store_id: UUID, currency: str, items: Sequence[tuple[int, Any]], categories: Categories,
    programs: Collection[int],
) -> dict[int, RowResult]:  # fmt: skip
    """The round in a savepoint, mapped again when a GTIN it gives a product was taken meanwhile: the new lookup
    sees the other product, and the rows match it (`gtin`) as they would have a moment later (a 500, or the GTIN
    dropped without a note)."""
    for attempt in range(1, GTIN_RACE_TRIES + 1):
        try:
            async with conn.transaction():
                return await _apply_round(conn, store_id, currency, items, categories, programs)
        except GtinTaken:
            if attempt == GTIN_RACE_TRIES:
                raise
            log.info("a GTIN was taken by another write meanwhile; mapping the round again")
    raise AssertionError("unreachable")


# A row whose decision waits for an earlier row of its round with another SKU (that row may move a GTIN off its
# product, or takes the product the row names): the rows of a batch apply as if sent one by one.
DEFERRED = RowResult("deferred", None)

# The database refusing a row's value (out of its type's range, a check): that row is rejected, not its batch
# (five crashes, then failed, the store's later writes held behind it). Validation should have caught it first.
REFUSED_VALUES = (asyncpg.DataError, asyncpg.CheckViolationError)


async def _apply_one_by_one(
    conn: Any, store_id: UUID, currency: str, items: Sequence[tuple[int, Any]], categories: Categories,
    programs: Collection[int],
) -> dict[int, RowResult]:  # fmt: skip
    results: dict[int, RowResult] = {}
    for key, payload in items:
        try:
            results.update(
                await _apply_round_again_if_raced(conn, store_id, currency, [(key, payload)], categories, programs)
            )
        except REFUSED_VALUES as exc:
            reason = first_line(exc)
            log.warning("a row the database refused was rejected: %s", escape_control_chars(reason))  # its value
            results[key] = RowResult("rejected", f"the database refused this row's values: {reason[:300]}")
            if level_alone(payload) is not None:  # its vendor level applies alone, as for a reason of validation
                with contextlib.suppress(*REFUSED_VALUES):
                    again = [(key, {**payload, "_error": results[key].error})]
                    results.update(
                        await _apply_round_again_if_raced(conn, store_id, currency, again, categories, programs)
                    )
    return results


async def _apply_round(
    conn: Any, store_id: UUID, currency: str, items: Sequence[tuple[int, Any]], categories: Categories,
    programs: Collection[int],
) -> dict[int, RowResult]:  # fmt: skip
    results, valid, alone = await rows_off_loop(len(items), _validated, items, programs)
    if not valid:
        return results
    looks = await _run(
        conn, "lookup", store_id=store_id, skus=[r.sku for _, r in valid], gtins=[r.gtin for _, r in valid]
    )
    plan = Plan()
    await rows_off_loop(len(valid), _decide_round, items, valid, looks, (currency, categories, plan), results, alone)
    await _write(conn, store_id, plan, results, valid)
    for key, refused in alone.items():  # still rejected for the rest of it, saying whether its level applied
        applied = results[key].status == "mapped"
        results[key] = RowResult("rejected", f"{refused.error}{LEVEL_APPLIED}" if applied else refused.error)
    return results


Validated = tuple[dict[int, RowResult], list[tuple[int, ValidRow]], dict[int, RowResult]]


def _validated(items: Sequence[tuple[int, Any]], programs: Collection[int]) -> Validated:
    """A round's rows validated: the rejected ones' results, the valid rows, and the refused upserts whose vendor
    level applies alone (rows.level_alone; among the valid rows as their level)."""
    results: dict[int, RowResult] = {}
    valid: list[tuple[int, ValidRow]] = []
    alone: dict[int, RowResult] = {}
    for key, payload in items:
        try:
            valid.append((key, validate(payload, by_people=key not in programs)))
        except Rejected as exc:
            results[key] = RowResult("rejected", str(exc))
            if (level := level_alone(payload)) is not None:
                alone[key] = results[key]
                valid.append((key, level))
    return results, valid, alone


def _decide_round(
    items: Sequence[tuple[int, Any]], valid: list[tuple[int, ValidRow]], looks: Sequence[Any],
    context: tuple[str, Categories, Plan], results: dict[int, RowResult], alone: dict[int, RowResult],
) -> None:  # fmt: skip
    """Each valid row's result (`_decide`) into `results`, its writes into the plan; a row refused as mapped whose
    vendor level applies alone is decided again as its level (into `alone` and `valid`)."""
    currency, categories, plan = context
    payloads = dict(items)
    claimed: dict[UUID, str] = {}  # product → the SKU of this round that takes it
    earlier: set[str] = set()  # the SKUs of this round's rows before this one
    for index, ((key, row), look) in enumerate(zip(valid, looks, strict=True)):
        results[key] = _decide(row, look, currency, categories, plan, claimed, earlier)
        if results[key].status == "rejected" and key not in alone and (level := level_alone(payloads[key])):
            alone[key], valid[index] = results[key], (key, level)  # refused as mapped (its GTIN listed as another
            results[key] = _decide(level, look, currency, categories, plan, claimed, earlier)  # SKU): level alone
        earlier.add(row.sku)


def _decide(
    row: ValidRow, look: Any, currency: str, categories: Categories, plan: Plan, claimed: dict[UUID, str],
    earlier: set[str],
) -> RowResult:  # fmt: skip
    held_currency = (look["listing_currency"] or "").strip()  # "" for a new listing
    by_sku = "sku" if row.op == "upsert" and look["listing_id"] is not None else None  # stale, or its level alone
    if is_stale(row, look):  # its listing and product named still (they answered null)
        return RowResult("stale", NOTHING_CHANGED, by_sku, look["listing_product"])
    if row.currency is None and minor_units(held_currency or currency) != minor_units(None):
        # Its price was read as 2 decimals: the listing's or store's currency has other minor units (a yen none, a
        # dinar 3: its note says so). One of 2 rounds and notes it as validation did: nothing to do again.
        try:
            price_in(row, held_currency or currency)
        except Rejected as exc:
            return RowResult("rejected", str(exc))
    if row.op != "upsert":
        if look["listing_id"] is None:  # a delete of what is not here is done (a POS's first sync sends its deleted)
            outcome = "stale" if row.op == "delete" else "rejected"
            return RowResult(outcome, f"no listing with sku {row.sku!r} in this store")
        if row.op == "stock" and row.currency and row.currency != held_currency:  # its price would read as held's
            return RowResult("rejected", f"currency {row.currency}: a stock change keeps the listing's "
                             f"({held_currency}); change the currency with an upsert")  # fmt: skip
        (plan.stock if row.op == "stock" else plan.deletes).append(row)
        return RowResult("mapped", None, by_sku, look["listing_product"])
    category_id = categories.resolve(row)
    keep_level(row, look["listing_id"] is not None, look["listing_quantity"])  # none sent: the listing's, or 0
    chosen = _product_for(row, look, category_id, plan, earlier)
    if isinstance(chosen, RowResult):
        return chosen
    product, matched_by = chosen
    if claimed.get(product, row.sku) != row.sku:
        return DEFERRED  # an earlier row of the round takes it: decided after it is written, as one by one
    claimed[product] = row.sku
    _plan_product(row, look, product, matched_by, category_id, plan)
    # An upsert without a currency keeps the listing's, as one without a level keeps its level; a new one the store's.
    plan.listings.append((row, product, row.currency or held_currency or currency))
    return RowResult("mapped", None, matched_by, product)


def _plan_product(
    row: ValidRow, look: Any, product: UUID, matched_by: str, category_id: int | None, plan: Plan
) -> None:
    """The store's SKU-less or deleted listing of the product takes this SKU; the store's own product (no other
    store sells it) takes the row's text, a taken-over one's too (it was written only when the row came again);
    another keeps its own, and the row's note says which of its fields were not applied."""
    sole = look["listing_id"] is not None and look["sole_listing"] and look["listing_product"] == product
    if matched_by == "gtin" and look["gtin_listed"] and look["gtin_listed_as"] != row.sku:
        plan.adopt.append((row.sku, product))
        if look["gtin_listed_as"] is not None:
            row.notes.append(f"took over this store's deleted listing of the product (sku {look['gtin_listed_as']!r})")
            sole = bool(look["gtin_sole"])
    elif matched_by == "sku" and look["listing_id"] is None:  # a retired SKU takes its product back (_product_for)
        plan.adopt.append((row.sku, product))
        if look["retired_listed_as"] is not None:
            row.notes.append(
                f"took back this store's deleted listing of its product (sku {look['retired_listed_as']!r})"
            )
        sole = bool(look["retired_sole"])
    if sole:
        plan.product_updates.append((product, row, category_id))
    elif matched_by != "created":  # a new product has the row's text
        plan.kept_text.append((product, row, category_id))


def _product_for(
    row: ValidRow, look: Any, category_id: int | None, plan: Plan, earlier: set[str]
) -> tuple[UUID, str] | RowResult:
    """The product an upsert's listing goes to and how it was matched, or the row's outcome when it cannot go."""
    if row.gtin and look["gtin_product"] is not None:
        if look["gtin_listed_as"] in earlier and look["gtin_listed_as"] != row.sku:
            return DEFERRED  # an earlier row of that SKU may move it off this GTIN: decided after it is written
        if (done := retired_and_listed(row, look)) is not None:
            return RowResult("stale", done)
        if (refused := listed_otherwise(row, look)) is not None:
            return RowResult("rejected", refused)
        return look["gtin_product"], "gtin"
    if look["listing_id"] is not None and not _names_another_product(row, look):
        if row.gtin and row.gtin in plan.new_by_gtin:
            return DEFERRED  # an earlier row of the round gives a product this GTIN: matched to it once written
        _gtin_of_listing(row, look)
        if row.gtin:  # its product takes the GTIN: a later row of the round with it waits for this one
            plan.new_by_gtin[row.gtin] = look["listing_product"]
        return look["listing_product"], "sku"
    if look["listing_id"] is None and (former := look["retired_product"]) is not None:  # a retired SKU, no GTIN
        if look["retired_listed_as"] in earlier:
            return DEFERRED  # that row may take it off sale: decided after it is written, as one by one
        if not look["retired_listing_active"]:  # its earlier product, as a deleted listing's SKU keeps its own
            return former, "sku"
    if not row.name:
        return RowResult("rejected", "name is required for a new sku")
    return _new_product(row, category_id, plan, look["listing_product"])


def _names_another_product(row: ValidRow, look: Any) -> bool:
    """A new GTIN for a listing whose product is another article (it has another GTIN, or other stores sell it):
    the listing moves to a new product of that GTIN (the GTIN was ignored: a kettle's product kept selling the
    toaster a store re-coded). Without a name there is nothing to make the product of: the GTIN is noted instead."""
    if not row.gtin or not row.name:
        return False
    held = look["listing_gtin"]
    return (held is not None and gtin14(held) != row.gtin) or (held is None and not look["sole_listing"])


def _gtin_of_listing(row: ValidRow, look: Any) -> None:
    """A valid GTIN no product holds, for a listing found by SKU: its product takes it when it is the store's own
    and has none (it was dropped without a word, so two stores' copies of one article never met); else noted."""
    if not row.gtin or (look["listing_gtin"] is not None and gtin14(look["listing_gtin"]) == row.gtin):
        row.gtin = None  # nothing to change
    elif look["listing_gtin"] is not None:
        row.notes.append(f"gtin {row.gtin} ignored: this listing's product has gtin {look['listing_gtin']}")
        row.gtin = None
    elif not look["sole_listing"]:
        row.notes.append(f"gtin {row.gtin} ignored: other stores list this listing's product too")
        row.gtin = None


def _new_product(row: ValidRow, category_id: int | None, plan: Plan, former: UUID | None) -> tuple[UUID, str]:
    """`former`: the product of the row's listing, which its new GTIN moves to this one (None: a new SKU)."""
    if row.gtin and row.gtin in plan.new_by_gtin:  # two new SKUs of one round with one new GTIN: the first's
        return plan.new_by_gtin[row.gtin], "gtin"
    product = uuid.uuid4()
    plan.new_products.append((product, row, category_id))
    if former is not None:
        plan.former[product] = former
    if row.gtin:
        plan.new_by_gtin[row.gtin] = product
    return product, "created"


async def _write(
    conn: Any, store_id: UUID, plan: Plan, results: dict[int, RowResult], valid: list[tuple[int, ValidRow]]
) -> None:
    if plan.new_products:
        await insert_products(conn, plan, results, valid)
    changed: set[str] = set()  # the SKUs whose rows wrote something (each statement returns those it wrote)
    if plan.product_updates:
        updated = await update_products(conn, plan)
        changed.update(row.sku for product, row, _ in plan.product_updates if product in updated)
    if plan.kept_text:
        await note_kept_text(conn, store_id, plan.kept_text)
    if plan.adopt:
        adopted = set(plan.adopt)
        listings = [item for item in plan.listings if (item[0].sku, item[1]) in adopted]
        changed.update(r["sku"] for r in await _run(conn, "adopt_listings", **listing_values(store_id, listings)))
    if plan.listings:
        changed.update(r["sku"] for r in await _run(conn, "upsert_listings", **listing_values(store_id, plan.listings)))
    if changes := plan.stock + plan.deletes:
        written = await _run(
            conn, "update_stock", store_id=store_id, skus=[r.sku for r in changes],
            quantities=[r.quantity for r in changes], prices=[r.price for r in changes],
            deactivate=[r.op == "delete" for r in changes], updated_ats=[r.updated_at for r in changes],
            versions=[r.version for r in changes], catalog_versions=[r.catalog_version for r in changes],
        )  # fmt: skip
        changed.update(r["sku"] for r in written)
    for key, row in valid:
        result = results[key]
        if result is not DEFERRED and result.status == "mapped":
            result.changed = row.sku in changed  # an unchanged write writes nothing: its row says so
            if row.notes and result.error is None:
                result.error = "; ".join(row.notes)
