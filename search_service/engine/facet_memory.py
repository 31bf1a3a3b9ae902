"""`facet_set` from the in-memory product labels: the same page, totals and counts as the SQL statement's.

PostgreSQL reads only the set's qualifying listings in scope (`facet_listings`: position, price in cents, store
distance; no product row) and the labels of the set's products the copy may not have yet (`facet_labels.py`);
filters, orders and counts are numpy's. The category, brand and price facets and all three sorts; the store
facet needs every listing's store, and goes to the SQL statement (`faceted_page` chooses).

As in SQL: a product passes when it is active, in the chosen category subtree, of the chosen brand (as PostgreSQL
compares it: plinqy_fold, case and accents folded), and has a listing in scope at the chosen store in the price
range; a facet counts the products that pass every filter but its own (the chosen store is no facet here: its filter
applies to every listing read); categories roll up the tree; a price bucket counts the products with a listing in
it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any
from uuid import UUID

import numpy as np

from search_service.db.sql import statement
from search_service.engine.facet_distance import certified_distances
from search_service.engine.facet_labels import NO_BRAND, NO_CATEGORY, ProductLabels
from search_service.engine.facet_stock import StockBuckets
from search_service.engine.facet_stores import store_counts
from search_service.engine.facets import (
    FACET_VALUES,
    NARROW_STORES,
    PRICE_EDGES,
    CategoryCount,
    FacetedPage,
    FacetFilters,
    Facets,
    PriceBucket,
    Sort,
    ValueCount,
    check_request,
    facet_set,
    price_bucket,
)
from search_service.engine.keyindex import keys_of
from search_service.engine.store_locator import StoreLocator
from search_service.engine.text import fold_accents

MEMORY_FACETS = frozenset(("category", "brand", "price"))
STOCK_FACETS = MEMORY_FACETS | {"store"}  # the listing buckets count stores too (facet_stores.py)
LISTING = np.dtype([("pos", ">i4"), ("cents", ">i8"), ("distance", ">f8")])
EDGE_CENTS = np.array([int(edge * 100) for edge in PRICE_EDGES], dtype=np.int64)
NO_PRICE = np.iinfo(np.int64).max
NO_FILTERS = FacetFilters()


async def faceted_page(
    conn: Any,
    labels: ProductLabels | None,
    product_ids: Sequence[UUID],
    stock: StockBuckets | None = None,
    keys: np.ndarray | None = None,
    places: StoreLocator | None = None,
    **kw: Any,
) -> FacetedPage:
    """`facet_set` in memory when the labels are loaded and the facets asked for allow it (with the listings from
    `stock` when loaded, for the products in stock without a price range in the relevance order, or by distance
    with `places`, the stores' places in memory; the store facet is counted only there), else in SQL. `keys`:
    `product_ids` as keyindex keys, when the ranking has them (spares turning the ids back into keys)."""
    facets = kw.get("facets", ())
    if labels is not None and labels.loaded and STOCK_FACETS.issuperset(facets):
        filters = kw.get("filters", NO_FILTERS)
        sort = kw.get("sort", "relevance")
        if (
            stock is not None
            and stock.loaded
            and (sort == "relevance" or (sort == "distance" and places is not None and places.loaded))
            and kw.get("in_stock", True)
            and filters.min_price is None
            and filters.max_price is None
        ):
            page = await facet_set_from_stock(conn, labels, stock, product_ids, keys=keys, places=places, **kw)
            if page is not None:
                return page
        if MEMORY_FACETS.issuperset(facets):
            return await facet_set_in_memory(conn, labels, product_ids, **kw)
    return await facet_set(conn, product_ids, **kw)


class _Set:
    """The set's products (by position) and their qualifying listings, as arrays."""

    def __init__(
        self, n: int, labels: ProductLabels, rows: np.ndarray, row: Any, ids: Sequence[UUID], listings: np.ndarray
    ) -> None:
        held = rows >= 0
        self.category = np.full(n, NO_CATEGORY, dtype=np.int64)
        self.brand = np.full(n, NO_BRAND, dtype=np.int32)
        self.active = np.zeros(n, dtype=bool)
        self.category[held] = labels.category[rows[held]]
        self.brand[held] = labels.brand[rows[held]]
        self.active[held] = labels.active[rows[held]]
        if row["label_ids"]:  # stamped since the copy's snapshot, or not held: the statement's rows win
            position = {pid: i for i, pid in enumerate(ids)}
            for pid, category, brand, active in zip(
                row["label_ids"], row["label_categories"], row["label_brands"], row["label_actives"], strict=True
            ):
                i = position[pid]
                self.category[i] = NO_CATEGORY if category is None else category
                self.brand[i] = labels.brand_code(brand)
                self.active[i] = active
        self.pos = listings["pos"].astype(np.int64) - 1
        self.cents = listings["cents"].astype(np.int64)
        self.distance = listings["distance"].astype(np.float64)


def _cents(low: Decimal | None, high: Decimal | None) -> tuple[int, int]:
    """The price range in whole cents: prices have two decimals, so price >= low iff cents >= ceil(low * 100)."""
    return (
        -1 if low is None else math.ceil(low * 100),
        NO_PRICE if high is None else math.floor(high * 100),
    )


def _category_counts(labels: ProductLabels, category: np.ndarray) -> list[CategoryCount]:
    leaves, counts = np.unique(category[category != NO_CATEGORY], return_counts=True)
    totals: dict[int, int] = {}
    for leaf, count in zip(leaves.tolist(), counts.tolist(), strict=True):
        for ancestor in labels.ancestors(leaf):
            totals[ancestor] = totals.get(ancestor, 0) + count
    ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [CategoryCount(i, labels.categories[i].name, labels.categories[i].parent_id, n) for i, n in ordered]


def _brand_counts(labels: ProductLabels, brand: np.ndarray, chosen: set[int]) -> list[ValueCount]:
    """One value a brand as its filter reads it (lower(), accents folded: SQL's plinqy_fold), named by the spelling
    most of its products have (ties: code point order, the cluster's C.UTF-8 collation), as facets.sql's
    brand_counts: the most frequent, and the chosen brand (`chosen`: its spellings' codes) past them."""
    codes, counts = np.unique(brand[brand != NO_BRAND], return_counts=True)
    spellings: dict[str, list[tuple[int, str]]] = {}
    chosen_keys = set()
    for code, n in zip(codes.tolist(), counts.tolist(), strict=True):
        spelling = labels.brands[code]
        key = fold_accents(labels.lower_brands.get(code, spelling.lower()))
        spellings.setdefault(key, []).append((-n, spelling))
        if code in chosen:
            chosen_keys.add(key)
    values = [(min(group)[1], -sum(n for n, _ in group), key) for key, group in spellings.items()]
    values.sort(key=lambda item: (-item[1], item[0]))
    return [ValueCount(v, n) for i, (v, n, key) in enumerate(values) if i < FACET_VALUES or key in chosen_keys]


def _chosen_brands(labels: ProductLabels, row: Any, filters: FacetFilters) -> set[int]:
    """The codes of the chosen brand's spellings in the set (the statement's `chosen_brands`)."""
    return set() if filters.brand is None else {labels.brand_code(b) for b in row["chosen_brands"]}


def _price_counts(pos: np.ndarray, cents: np.ndarray, n: int) -> list[PriceBucket]:
    bucket = np.searchsorted(EDGE_CENTS, cents, side="right")  # as width_bucket numbers them, from 1
    pairs = np.unique(bucket * n + pos)  # each product once per bucket
    found, counts = np.unique(pairs // n, return_counts=True)
    return [PriceBucket(*price_bucket(int(b)), int(c)) for b, c in zip(found, counts, strict=True)]


def _order(hits: np.ndarray, s: _Set, price_ok: np.ndarray, sort: Sort) -> np.ndarray:
    """Positions of the hits in the chosen order; ties keep the relevance order (stable sorts)."""
    positions = np.flatnonzero(hits)
    if sort == "relevance":
        return positions
    if sort == "price":
        key = np.full(len(hits), NO_PRICE, dtype=np.int64)
        np.minimum.at(key, s.pos[price_ok], s.cents[price_ok])
        return positions[np.argsort(key[positions], kind="stable")]
    nearest = np.full(len(hits), np.inf)
    np.fmin.at(nearest, s.pos[price_ok], s.distance[price_ok])
    return positions[np.argsort(nearest[positions], kind="stable")]


def _label_args(labels: ProductLabels, ids: list[UUID], rows: np.ndarray, brand: str | None) -> dict[str, Any]:
    """The `fresh_labels` fragment's arguments: what the labels may miss of the set, and the set's brands."""
    held = rows[rows >= 0]
    set_brands = [labels.brands[c] for c in np.unique(labels.brand[held]).tolist() if c != NO_BRAND] if brand else []
    unknown_ids = [ids[i] for i in np.flatnonzero(rows < 0).tolist()]
    return {"since": labels.since, "unknown_ids": unknown_ids, "set_brands": set_brands, "facet_brand": brand}


async def _read(
    conn: Any, labels: ProductLabels, ids: list[UUID], rows: np.ndarray, brand: str | None, **bind: Any
) -> Any:
    stmt = statement("engine/facets", "facet_listings")
    return await conn.fetchrow(
        stmt.sql,
        *stmt.bind(product_ids=ids, narrow_stores=NARROW_STORES, **_label_args(labels, ids, rows, brand), **bind),
    )


async def facet_set_from_stock(
    conn: Any,
    labels: ProductLabels,
    stock: StockBuckets,
    product_ids: Sequence[UUID],
    *,
    store_ids: Sequence[UUID] | None,
    filters: FacetFilters = NO_FILTERS,
    facets: Sequence[str] = (),
    offset: int = 0,
    limit: int = 20,
    keys: np.ndarray | None = None,
    sort: Sort = "relevance",
    point: tuple[float, float] | None = None,
    places: StoreLocator | None = None,
    **relevance: Any,
) -> FacetedPage | None:
    """`facet_set_in_memory` (and the store facet: facet_stores.py) for the products in stock without a price range,
    in the relevance order or by distance (with `places`, the stores' places in memory: facet_distance.py), the set's
    listings in scope from `stock` (facet_stock.py): one statement (`facet_fresh`) brings the buckets and the labels
    up to this request's snapshot. best_price stays empty (buckets, not prices). None: the buckets could not be
    brought up to date, or a store has no place in memory (the caller reads the listings in SQL)."""
    check_request(facets, sort, point)
    if not STOCK_FACETS.issuperset(facets):
        raise ValueError(f"the facets counted from the buckets are {sorted(STOCK_FACETS)}")
    if filters.min_price is not None or filters.max_price is not None:
        return None  # the buckets hold price ranges, not prices
    ids = list(product_ids)
    keys = keys_of(ids) if keys is None or len(keys) != len(ids) else keys
    rows = labels.rows_of_keys(keys)
    stmt = statement("engine/facets", "facet_fresh")
    base = stock.snapshot
    bind = {"product_ids": ids, "global": store_ids is None, **_label_args(labels, ids, rows, filters.brand)}
    row = await conn.fetchrow(stmt.sql, *stmt.bind(**bind, **stock.read_args()))
    if not stock.apply(base, row):
        return None
    in_scope, chosen = _in_scope(stock, keys, store_ids, row, filters)
    pos, bucket, codes = (column[chosen] for column in in_scope)
    listings = np.zeros(len(pos), dtype=LISTING)
    listings["pos"], listings["cents"], listings["distance"] = pos + 1, EDGE_CENTS[bucket - 1], np.nan
    s = _Set(len(ids), labels, rows, row, ids, listings)
    if not set(np.unique(s.category).tolist()) <= {NO_CATEGORY, *labels.categories}:
        await labels.load_categories(conn)  # a category newer than the copy's tree
    if sort == "distance" and not await _by_distance(conn, labels, stock, s, row, codes, filters, point, places,
                                                     offset + limit):  # fmt: skip
        return None
    page = replace(_page(labels, s, row, ids, filters, facets, sort, offset, limit), best_price={})
    return page if "store" not in facets else await _with_stores(conn, labels, stock, s, row, in_scope, filters, page)


def _in_scope(
    stock: StockBuckets, keys: np.ndarray, store_ids: Sequence[UUID] | None, row: Any, filters: FacetFilters
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """The set's listings in stock in scope (product position, price bucket, store code), the store filter not
    applied (the store facet counts without it), and which of them it keeps."""
    scope = stock.store_mask(None if store_ids is None else list(store_ids), row["inactive_stores"] or ())
    in_scope = stock.in_scope_at(keys, scope)
    if filters.store_id is None:
        return in_scope, np.ones(len(in_scope[0]), dtype=bool)
    return in_scope, stock.store_mask([filters.store_id])[in_scope[2]]


async def _with_stores(
    conn: Any,
    labels: ProductLabels,
    stock: StockBuckets,
    s: _Set,
    row: Any,
    in_scope: tuple[np.ndarray, np.ndarray, np.ndarray],
    filters: FacetFilters,
    page: FacetedPage,
) -> FacetedPage:
    """The page with the store facet, counted over the set's listings in scope (`in_scope`: without the store
    filter), their products passing the other filters (facet_stores.py)."""
    outcome = _hits(labels, s, row, len(s.active), filters)
    counted = (s.active & outcome[1] & outcome[2])[in_scope[0]]
    chosen = None if filters.store_id is None else stock.store_code.get(filters.store_id)
    counts = await store_counts(conn, stock.store_order.of(stock.store_code), in_scope[2], counted, chosen)
    return replace(page, facets=replace(page.facets, store=counts))


async def _by_distance(
    conn: Any,
    labels: ProductLabels,
    stock: StockBuckets,
    s: _Set,
    row: Any,
    codes: np.ndarray,
    filters: FacetFilters,
    point: tuple[float, float] | None,
    places: StoreLocator | None,
    window: int,
) -> bool:
    """The set's listing distances for sort=distance, certified for its first `window` hits (facet_distance.py).
    False: no places in memory for them (the caller reads the listings in SQL)."""
    if places is None or point is None or not places.loaded:
        return False
    hits = _hits(labels, s, row, len(s.active), filters)[0]
    where = stock.places.of(stock.store_order.of(stock.store_code), places)
    distance = await certified_distances(conn, where, point, s.pos, codes, hits, window)
    if distance is None:
        return False
    s.distance = distance
    return True


async def facet_set_in_memory(
    conn: Any,
    labels: ProductLabels,
    product_ids: Sequence[UUID],
    *,
    store_ids: Sequence[UUID] | None,
    in_stock: bool = True,
    point: tuple[float, float] | None = None,
    filters: FacetFilters = NO_FILTERS,
    facets: Sequence[str] = (),
    sort: Sort = "relevance",
    offset: int = 0,
    limit: int = 20,
) -> FacetedPage:
    """`facets.facet_set` (same arguments and result), counted in memory; the store facet is not counted here."""
    check_request(facets, sort, point)
    if not MEMORY_FACETS.issuperset(facets):
        raise ValueError(f"the in-memory facets are {sorted(MEMORY_FACETS)}")
    ids = list(product_ids)
    rows = labels.rows_of(ids)
    row = await _read(
        conn, labels, ids, rows, filters.brand,
        store_ids=None if store_ids is None else list(store_ids), in_stock=in_stock, store_id=filters.store_id,
        distances=sort == "distance", lon=None if point is None else point[1], lat=None if point is None else point[0],
    )  # fmt: skip
    s = _Set(len(ids), labels, rows, row, ids, np.frombuffer(row["listings"], dtype=LISTING))
    if not set(np.unique(s.category).tolist()) <= {NO_CATEGORY, *labels.categories}:
        await labels.load_categories(conn)  # a category newer than the copy's tree
    return _page(labels, s, row, ids, filters, facets, sort, offset, limit)


def _hits(
    labels: ProductLabels, s: _Set, row: Any, n: int, filters: FacetFilters
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(hits, category ok, brand ok, listed, price ok by listing): which products of the set the filters keep."""
    cat_ok = np.ones(n, dtype=bool) if filters.category_ids is None else np.isin(s.category, filters.category_ids)
    brand_ok = np.ones(n, dtype=bool)
    if filters.brand is not None:
        chosen = [labels.brand_code(b) for b in row["chosen_brands"]]
        brand_ok = np.isin(s.brand, chosen)
    low, high = _cents(filters.min_price, filters.max_price)
    price_ok = (s.cents >= low) & (s.cents <= high)
    listed = np.zeros(n, dtype=bool)
    listed[s.pos[price_ok]] = True
    return s.active & cat_ok & brand_ok & listed, cat_ok, brand_ok, listed, price_ok


def _page(
    labels: ProductLabels,
    s: _Set,
    row: Any,
    ids: list[UUID],
    filters: FacetFilters,
    facets: Sequence[str],
    sort: Sort,
    offset: int,
    limit: int,
) -> FacetedPage:
    n = len(ids)
    hits, cat_ok, brand_ok, listed, price_ok = _hits(labels, s, row, n, filters)
    order = _order(hits, s, price_ok, sort)
    page = order[offset : offset + limit]
    best = np.full(n, NO_PRICE, dtype=np.int64)
    np.minimum.at(best, s.pos[price_ok], s.cents[price_ok])
    nearest = np.full(n, np.nan)
    if sort == "distance":
        np.fmin.at(nearest, s.pos[price_ok], s.distance[price_ok])
    wanted = set(facets)
    priced = (s.active & cat_ok & brand_ok)[s.pos]
    return FacetedPage(
        total=int(hits.sum()),
        ids=[ids[i] for i in page.tolist()],
        best_price={ids[i]: Decimal(int(best[i])) / 100 for i in page.tolist()},
        nearest_m={ids[i]: float(nearest[i]) for i in page.tolist() if not math.isnan(nearest[i])},
        facets=Facets(
            category=_category_counts(labels, s.category[s.active & brand_ok & listed])
            if "category" in wanted
            else None,
            brand=_brand_counts(labels, s.brand[s.active & cat_ok & listed], _chosen_brands(labels, row, filters))
            if "brand" in wanted
            else None,
            price=_price_counts(s.pos[priced], s.cents[priced], n) if "price" in wanted else None,
        ),
    )
