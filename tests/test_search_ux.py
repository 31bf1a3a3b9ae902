"""Search features against a real PostgreSQL: facet counts, sorts, map viewports, delivery areas, suggestions.

A hand-made catalogue (a category tree, brands, stores around Berlin at random distances, stores either side of the
antimeridian, listings with random prices and stock, an inactive store). Oracles are plain Python over the rows
read back from the database; distances are geographiclib's (WGS84 geodesics).
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import psycopg
import pytest
from geographiclib.geodesic import Geodesic

from search_service.db.sql import statement
from search_service.engine import facet_memory, geo_areas, store_locator
from search_service.engine import facets as facets_module
from search_service.engine import suggest as suggest_module
from search_service.engine.facet_labels import ProductLabels
from search_service.engine.facet_memory import facet_set_in_memory
from search_service.engine.facets import FACETS, PRICE_EDGES, FacetFilters, facet_set, price_bucket
from search_service.engine.hydrate import hydrate
from search_service.engine.results import SearchParams
from search_service.engine.scope import Scope
from search_service.engine.store_locator import StoreLocator
from search_service.engine.suggest import SuggestParams, merge, split_prefix, suggest

T = TypeVar("T")
GEOD = Geodesic.WGS84
CENTER = (52.52, 13.405)  # lat, lon
FIJI = (-16.5, 179.95)
BRANDS = ["Acme", "Bolt", "Crafty", "Dynamo", "Everest", None]
WORDS = ["drill", "hammer", "driver", "saw", "glue", "tape", "paint", "brush", "ladder", "lamp"]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@dataclass
class Catalogue:
    url: str
    stores: dict[uuid.UUID, tuple[float, float, bool]]  # id -> (lat, lon, active)
    products: dict[uuid.UUID, tuple[str, str | None, int]]  # id -> (name, brand, category_id)
    listings: list[tuple[uuid.UUID, uuid.UUID, Decimal, int, bool]]  # store, product, price, quantity, active
    parent: dict[int, int | None]


def _destination(lat: float, lon: float, bearing: float, metres: float) -> tuple[float, float]:
    g = GEOD.Direct(lat, lon, bearing, metres)
    return g["lat2"], g["lon2"]


def _seed(conn: psycopg.Connection, rng: random.Random) -> Catalogue:
    parent: dict[int, int | None] = {}
    for name, up in [("Tools", None), ("Power Tools", "Tools"), ("Hand Tools", "Tools"), ("Home", None),
                     ("Lighting", "Home"), ("Desk Lamps", "Lighting")]:  # fmt: skip
        row = conn.execute(
            "INSERT INTO category (name, parent_id) VALUES (%s, (SELECT id FROM category WHERE name = %s)) "
            "RETURNING id, parent_id",
            (name, up),
        ).fetchone()
        assert row is not None
        parent[row[0]] = row[1]
    stores: dict[uuid.UUID, tuple[float, float, bool]] = {}
    spots = [_destination(*CENTER, rng.uniform(0, 360), rng.uniform(100, 30_000)) for _ in range(30)]
    spots += [(FIJI[0] + rng.uniform(-0.2, 0.2), lon) for lon in (179.9, 179.99, -179.95, -179.8)]
    for i, (lat, lon) in enumerate(spots):
        active = i != 3
        sid = uuid.uuid4()
        conn.execute(
            "INSERT INTO store (id, name, location, is_active) VALUES (%s, %s, "
            "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s)",
            (sid, f"Store {i}", lon, lat, active),
        )
        stores[sid] = (lat, lon, active)
    products: dict[uuid.UUID, tuple[str, str | None, int]] = {}
    for i in range(240):
        pid = uuid.uuid4()
        name = f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {i}"
        brand, cat = rng.choice(BRANDS), rng.choice(list(parent))
        conn.execute(
            "INSERT INTO product_master (id, name, brand, category_id) VALUES (%s, %s, %s, %s)",
            (pid, name, brand, cat),
        )
        products[pid] = (name, brand, cat)
    listings = []
    prices = [Decimal("4.99"), Decimal("5.00"), Decimal("9.99"), Decimal("10.00"), Decimal("1000.00")]
    for sid in stores:
        for pid in rng.sample(list(products), 25):
            price = rng.choice(prices) if rng.random() < 0.2 else Decimal(rng.randint(50, 150_000)) / 100
            qty, active = rng.choice([0, 1, 3, 7]), rng.random() > 0.05
            conn.execute(
                "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity, is_active) "
                "VALUES (%s, %s, %s, 'EUR', %s, %s)",
                (sid, pid, price, qty, active),
            )
            listings.append((sid, pid, price, qty, active))
    return Catalogue("", stores, products, listings, parent)


@pytest.fixture(scope="module")
def cat(db_url: str) -> Iterator[Catalogue]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        catalogue = _seed(conn, random.Random(24))
    catalogue.url = db_url
    yield catalogue


async def _call(url: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await fn(conn, *args, **kwargs)
    finally:
        await conn.close()


# --- oracle
def _subtree(cat: Catalogue, root: int) -> set[int]:
    out = {root}
    while True:
        more = {c for c, p in cat.parent.items() if p in out} - out
        if not more:
            return out
        out |= more


def _ancestors(cat: Catalogue, cid: int) -> list[int]:
    chain: list[int] = []
    current: int | None = cid
    while current is not None:
        chain.append(current)
        current = cat.parent[current]
    return chain


def _qualifying(cat: Catalogue, scope: set[uuid.UUID] | None) -> list[tuple[uuid.UUID, uuid.UUID, Decimal]]:
    return [
        (s, p, price)
        for s, p, price, qty, active in cat.listings
        if active and qty > 0 and cat.stores[s][2] and (scope is None or s in scope)
    ]


def _oracle(cat: Catalogue, ids: list[uuid.UUID], scope: set[uuid.UUID] | None, f: FacetFilters) -> dict[str, Any]:
    listing = _qualifying(cat, scope)
    chosen_cats = set(f.category_ids) if f.category_ids is not None else None

    def passes(pid: uuid.UUID, skip: str) -> bool:
        _name, brand, category = cat.products[pid]
        if skip != "category" and chosen_cats is not None and category not in chosen_cats:
            return False
        return skip == "brand" or f.brand is None or brand == f.brand

    def listing_ok(price: Decimal, store: uuid.UUID, skip: str) -> bool:
        store_ok = skip == "store" or f.store_id is None or store == f.store_id
        price_ok = skip == "price" or (
            (f.min_price is None or price >= f.min_price) and (f.max_price is None or price <= f.max_price)
        )
        return store_ok and price_ok

    def products_with(skip: str, extra: Any = lambda s, price: True) -> set[uuid.UUID]:
        return {p for s, p, price in listing if p in ids and passes(p, skip) and listing_ok(price, s, skip)
                and extra(s, price)}  # fmt: skip

    counts: dict[str, dict[Any, int]] = {k: {} for k in FACETS}
    for pid in products_with("category"):
        for anc in _ancestors(cat, cat.products[pid][2]):
            counts["category"][anc] = counts["category"].get(anc, 0) + 1
    for pid in products_with("brand"):
        brand = cat.products[pid][1]
        if brand is not None:
            counts["brand"][brand] = counts["brand"].get(brand, 0) + 1
    for sid in {s for s, _p, _price in listing}:
        n = len(products_with("store", lambda s, price, sid=sid: s == sid))
        if n:
            counts["store"][sid] = n
    for b in range(1, len(PRICE_EDGES) + 1):
        low, high = price_bucket(b)
        in_bucket = lambda s, price, low=low, high=high: low <= price and (high is None or price <= high)  # noqa: E731
        n = len(products_with("price", in_bucket))
        if n:
            counts["price"][(low, high)] = n
    return {"counts": counts, "results": products_with("")}


def _got(page: Any) -> dict[str, dict[Any, int]]:
    f = page.facets
    got = {
        "category": None if f.category is None else {c.id: c.count for c in f.category},
        "brand": None if f.brand is None else {b.value: b.count for b in f.brand},
        "store": None if f.store is None else {s.id: s.count for s in f.store},
        "price": None if f.price is None else {(p.min, p.max): p.count for p in f.price},
    }
    return {k: v for k, v in got.items() if v is not None}


def _near(cat: Catalogue, metres: float) -> set[uuid.UUID]:
    return {s for s, (lat, lon, active) in cat.stores.items()
            if active and GEOD.Inverse(CENTER[0], CENTER[1], lat, lon)["s12"] <= metres}  # fmt: skip


def _choices(cat: Catalogue, ids: list[uuid.UUID], scope: set[uuid.UUID]) -> list[FacetFilters]:
    tools = next(c for c, p in cat.parent.items() if p is None)
    some_store = sorted(scope)[0]
    return [
        FacetFilters(),
        FacetFilters(category_ids=sorted(_subtree(cat, tools))),
        FacetFilters(brand="Bolt"),
        FacetFilters(store_id=some_store),
        FacetFilters(min_price=Decimal("5.00"), max_price=Decimal("9.99")),
        FacetFilters(
            brand="Acme",
            min_price=Decimal("10.00"),
            max_price=Decimal("19.99"),
            category_ids=sorted(_subtree(cat, tools)),
        ),
    ]


# --- facets
async def in_memory(conn: asyncpg.Connection, ids: list[uuid.UUID], **kwargs: Any) -> Any:
    """facet_set counted from freshly loaded in-memory labels (facet_memory.py)."""
    labels = ProductLabels()
    await labels.load(conn)
    return await facet_set_in_memory(conn, labels, ids, **kwargs)


@pytest.mark.parametrize("memory", [False, True])
@pytest.mark.parametrize("narrow", [False, True])
@pytest.mark.parametrize("choice", range(6))
def test_facet_counts_equal_the_oracle_with_and_without_a_chosen_value(
    cat: Catalogue, choice: int, narrow: bool, memory: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if narrow:  # the listings read store by store, as for scopes of a few stores
        monkeypatch.setattr(facets_module, "NARROW_STORES", 10_000)
        monkeypatch.setattr(facet_memory, "NARROW_STORES", 10_000)
    ids = sorted(cat.products, key=str)[:200]  # a result set: 200 of the 240 products
    scope = _near(cat, 20_000)
    filters = _choices(cat, ids, scope)[choice]
    wanted = tuple(f for f in FACETS if f != "store") if memory else FACETS  # the store facet is SQL's
    call = (in_memory,) if memory else (facet_set,)
    page = run(_call(cat.url, *call, ids, store_ids=sorted(scope), facets=wanted, filters=filters, limit=500))
    want = _oracle(cat, ids, scope, filters)
    got = _got(page)
    assert got == {k: v for k, v in want["counts"].items() if k in wanted}
    assert page.total == len(want["results"]) and set(page.ids) == want["results"]
    assert page.total > 0 or choice == 5


def test_a_facet_count_is_the_number_of_results_choosing_it_gives(cat: Catalogue) -> None:
    ids = list(cat.products)
    page = run(_call(cat.url, facet_set, ids, store_ids=None, facets=FACETS))
    assert page.facets.brand and page.facets.price and page.facets.category
    for b in page.facets.brand:
        chosen = run(_call(cat.url, facet_set, ids, store_ids=None, filters=FacetFilters(brand=b.value)))
        assert chosen.total == b.count
    for p in page.facets.price:
        f = FacetFilters(min_price=p.min, max_price=p.max)
        chosen = run(_call(cat.url, facet_set, ids, store_ids=None, filters=f))
        assert chosen.total == p.count
    for c in page.facets.category:
        f = FacetFilters(category_ids=sorted(_subtree(cat, c.id)))
        assert run(_call(cat.url, facet_set, ids, store_ids=None, filters=f)).total == c.count


def test_unknown_facet_or_sort_is_refused(cat: Catalogue) -> None:
    with pytest.raises(ValueError, match="unknown facets"):
        run(_call(cat.url, facet_set, [], store_ids=None, facets=["colour"]))
    with pytest.raises(ValueError, match="unknown sort"):
        run(_call(cat.url, facet_set, [], store_ids=None, sort="popularity"))
    with pytest.raises(ValueError, match="needs lat and lon"):
        run(_call(cat.url, facet_set, [], store_ids=None, sort="distance"))


# --- sorts
@pytest.mark.parametrize("memory", [False, True])
def test_sort_by_price_is_ascending_and_stable(cat: Catalogue, memory: bool) -> None:
    ids = sorted(cat.products, key=str)
    scope = _near(cat, 15_000)
    call = in_memory if memory else facet_set
    page = run(_call(cat.url, call, ids, store_ids=sorted(scope), sort="price", limit=500))
    best: dict[uuid.UUID, Decimal] = {}
    for _s, p, price in _qualifying(cat, scope):
        best[p] = min(price, best.get(p, price))
    assert page.ids == sorted(best, key=lambda p: (best[p], ids.index(p)))  # ties keep the relevance order
    assert [page.best_price[p] for p in page.ids] == sorted(best.values())


@pytest.mark.parametrize("memory", [False, True])
def test_sort_by_distance_is_ascending_and_agrees_with_geographiclib(cat: Catalogue, memory: bool) -> None:
    ids = sorted(cat.products, key=str)
    scope = _near(cat, 25_000)
    call = in_memory if memory else facet_set
    page = run(_call(cat.url, call, ids, store_ids=sorted(scope), sort="distance", point=CENTER, limit=500))
    nearest: dict[uuid.UUID, float] = {}
    for s, p, _price in _qualifying(cat, scope):
        d = GEOD.Inverse(CENTER[0], CENTER[1], *cat.stores[s][:2])["s12"]
        nearest[p] = min(d, nearest.get(p, d))
    assert set(page.ids) == set(nearest) and len(page.ids) > 50
    got = [page.nearest_m[p] for p in page.ids]
    assert got == sorted(got)
    for p in page.ids:
        assert page.nearest_m[p] == pytest.approx(nearest[p], rel=1e-3)


# --- map viewport
BOXES = [
    "13.2,52.4,13.6,52.6",
    "13.405,52.52,13.9,52.9",
    "179.9,-17,-179.9,-16",  # across the antimeridian
    "179.95,-17,-179.5,-16",
    "170,-20,180,-10",
    "-180,-90,180,90",
]


@pytest.mark.parametrize("raw", BOXES)
def test_bbox_scope_is_exactly_the_stores_inside_and_the_products_they_stock(cat: Catalogue, raw: str) -> None:
    box = geo_areas.parse_bbox(raw)
    got = run(_call(cat.url, geo_areas.stores_in_bbox, box))
    want = {s for s, (lat, lon, active) in cat.stores.items() if active and box.contains(lon, lat)}
    assert set(got) == want
    page = run(_call(cat.url, facet_set, list(cat.products), store_ids=got, limit=1000))
    assert set(page.ids) == {p for _s, p, _price in _qualifying(cat, want)}
    if box.crosses_antimeridian:
        assert want and any(cat.stores[s][1] > 0 for s in want) and any(cat.stores[s][1] < 0 for s in want)


def test_a_box_with_an_edge_on_the_antimeridian_holds_stores_stored_at_180_or_minus_180(fresh_db_url: str) -> None:
    # -180 and 180 are one meridian, bounds are included: a store at either is in a box from -180 and a box to 180
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        at = {}
        for lon in (180.0, -180.0, 179.5, -179.5):
            row = conn.execute(
                "INSERT INTO store (name, location) VALUES ('s', ST_SetSRID(ST_MakePoint(%s, 89.9), 4326)::geography)"
                " RETURNING id, ST_X(location::geometry)",
                (lon,),
            ).fetchone()
            assert row is not None and row[1] == lon  # stored as given
            at[lon] = row[0]
    edge = {at[180.0], at[-180.0]}
    for raw, inside in (
        ("-180,89.85,-179,90", edge | {at[-179.5]}),
        ("179,89.85,180,90", edge | {at[179.5]}),
        ("-180,89.85,-180,90", edge),
        ("180,89.85,180,90", edge),
        ("179,89.85,-180,90", edge | {at[179.5]}),  # across the antimeridian, to its edge
        ("-180,89.85,180,90", set(at.values())),
        ("-179.9,89.85,179.9,90", {at[-179.5], at[179.5]}),
    ):
        box = geo_areas.parse_bbox(raw)
        assert set(run(_call(fresh_db_url, geo_areas.stores_in_bbox, box))) == inside, raw
        assert {sid for lon, sid in at.items() if box.contains(lon, 89.9)} == inside, raw


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("1,2,3", "four numbers"),
        ("a,b,c,d", "four numbers"),
        ("0,10,1,5", "min_lat must not exceed max_lat"),
        ("0,0,181,1", "max_lon must be between"),
        ("0,-91,1,1", "min_lat must be between"),
    ],
)
def test_malformed_bbox_is_refused_with_a_message(raw: str, message: str) -> None:
    with pytest.raises(geo_areas.InvalidBBox, match=message):
        geo_areas.parse_bbox(raw)


# --- delivery areas
def _square(lat: float, lon: float, half_deg: float) -> list[list[float]]:
    return [[lon - half_deg, lat - half_deg], [lon + half_deg, lat - half_deg], [lon + half_deg, lat + half_deg],
            [lon - half_deg, lat + half_deg], [lon - half_deg, lat - half_deg]]  # fmt: skip


def test_delivery_radius_and_polygon_with_a_hole(fresh_db_url: str) -> None:
    home = (48.137, 11.575)  # Munich: no other store near
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        ids = []
        for km, radius in ((8, 10_000), (8, 5_000), (300, None)):
            lat, lon = _destination(*home, 90, km * 1000)
            row = conn.execute(
                "INSERT INTO store (name, location, delivery_radius_m) VALUES "
                "('s', ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s) RETURNING id",
                (lon, lat, radius),
            ).fetchone()
            assert row is not None
            ids.append(row[0])
    near10, _near5, far = ids  # near5 delivers within 5 km only: not to home, 8 km away
    ring = _square(*home, 0.5)
    hole = _square(*home, 0.05)

    async def scenario(conn: asyncpg.Connection) -> None:
        assert await geo_areas.set_delivery(conn, far, None, {"type": "Polygon", "coordinates": [ring, hole]})
        assert set(await geo_areas.stores_delivering(conn, *home)) == {near10}  # home is in the hole
        outside_hole = (home[0] + 0.2, home[1])
        assert set(await geo_areas.stores_delivering(conn, *outside_hole)) == {far}
        # a hit's stores say whether they deliver (hydrate): the hole is outside the polygon, 8 km beyond 5 km
        product = await conn.fetchval("INSERT INTO product_master (name) VALUES ('Paddle') RETURNING id")
        for store in ids:
            await conn.execute(
                "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity)"
                " VALUES ($1, $2, 1.00, 'EUR', 1)",
                store,
                product,
            )
        for point, delivering in ((home, {near10}), (outside_hole, {far}), (None, set())):
            at = {} if point is None else {"lat": point[0], "lon": point[1]}
            (hit,) = await hydrate(conn, Scope(None, None, SearchParams(q="paddle", **at)), [product], {product: 1.0})
            assert len(hit.stores) == 3 and {s.id for s in hit.stores if s.delivers} == delivering
        scope = await geo_areas.store_scope(conn, lat=home[0], lon=home[1], radius_m=5000, bbox=None, fulfilment="any")
        assert scope == [near10]
        await geo_areas.set_delivery(conn, far, None, {"type": "Polygon", "coordinates": [ring]})
        assert set(await geo_areas.stores_delivering(conn, *home)) == {near10, far}

    run(_call(fresh_db_url, scenario))


@pytest.mark.parametrize(
    ("area", "message"),
    [
        ("{not json", "not valid JSON"),
        ({"type": "Point", "coordinates": [1, 2]}, "Polygon or MultiPolygon"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}, "at least four positions"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "closed"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, "x"], [0, 0]]]}, "numbers"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [1, 1], [0, 0]]]}, "within"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}, "Self-intersection"),
    ],
)
def test_invalid_delivery_area_is_refused_with_a_message(fresh_db_url: str, area: Any, message: str) -> None:
    with pytest.raises(geo_areas.InvalidArea, match=message):
        run(_call(fresh_db_url, geo_areas.check_area, area))


# --- suggestions
def test_split_prefix() -> None:
    assert split_prefix("  Cordless  DR") == ("cordless dr", "cordless", "dr")
    assert split_prefix("cordless ") == ("cordless", "", "cordless")
    assert split_prefix("...") == ("...", "", "")


@pytest.mark.parametrize("typed", ["İZNİK Tile", "ΟΔΟΣ", "Straße ÀÉÎ", "ǅemal", "ΣΟΦΟΣ οδος"])
def test_a_prefix_is_lowered_as_postgresql_lowers_names(fresh_db_url: str, typed: str) -> None:
    """`İ` and a word-final `Σ` are lowered by Python otherwise (a name typed as stored suggested nothing)."""
    with psycopg.connect(fresh_db_url) as conn:
        row = conn.execute("SELECT lower(%s)", (typed,)).fetchone()
    assert row is not None and split_prefix(typed)[0] == row[0]


def test_merge_reserves_places_and_drops_repeats() -> None:
    rows = [{"kind": "product", "label": f"Drill {i}", "ref": str(i), "ord": i} for i in range(12)]
    rows += [{"kind": "brand", "label": "Drillco", "ref": "Drillco", "ord": 1},
             {"kind": "product", "label": "drill 0", "ref": "x", "ord": 99}]  # fmt: skip
    got = merge(rows, 5)
    assert [s.text for s in got] == ["Drillco", "Drill 0", "Drill 1", "Drill 2", "Drill 3"]


def test_merge_drops_a_name_or_completion_that_repeats_a_brand_or_category() -> None:
    """`alpenm` gave the brand `Alpenmilch` and the completion `alpenmilch`; `bread` the category and `bread`."""
    rows = [{"kind": "brand", "label": "Alpenmilch", "ref": "Alpenmilch", "ord": 1},
            {"kind": "category", "label": "Bread", "ref": "7", "ord": 1},
            {"kind": "query", "label": "alpenmilch", "ref": None, "ord": 1},
            {"kind": "query", "label": "bread", "ref": None, "ord": 2},
            {"kind": "product", "label": "Alpenmilch Whole Milk", "ref": "p1", "ord": 1}]  # fmt: skip
    assert [(s.kind, s.text) for s in merge(rows, 10)] == [
        ("category", "Bread"), ("brand", "Alpenmilch"), ("product", "Alpenmilch Whole Milk")]  # fmt: skip
    # a brand past the reserved places repeated a product's name (`Zqxcc`) and a completion (`zqxdd`)
    rows = [{"kind": "brand", "label": name, "ref": name, "ord": i} for i, name in enumerate(("Zqxaa", "Zqxbb", "Zqxcc",
                                                                                           "Zqxdd"))]  # fmt: skip
    rows += [{"kind": "product", "label": "Zqxcc", "ref": "p", "ord": 1},
             {"kind": "query", "label": "zqxdd", "ref": None, "ord": 1}]  # fmt: skip
    texts = [s.text.lower() for s in merge(rows, 10)]
    assert sorted(texts) == ["zqxaa", "zqxbb", "zqxcc", "zqxdd"]


def test_merge_fills_past_the_reserved_places_with_products_first() -> None:
    """A short prefix (`a`) matched many categories and brands: they filled every place, no product was left."""
    rows = [{"kind": kind, "label": f"{kind} {i}", "ref": str(i), "ord": i}
            for kind in ("category", "brand", "product", "query") for i in range(10)]  # fmt: skip
    got = merge(rows, 10)
    assert [s.kind for s in got] == ["category"] * 2 + ["brand"] * 2 + ["product"] * 6
    assert [s.kind for s in merge([r for r in rows if r["kind"] != "product"], 10)] == (
        ["category"] * 2 + ["brand"] * 2 + ["query"] * 6
    )


SUGGEST_CASES = [("d", None), ("dr", 20_000), ("ha", 3_000), ("la", 800), ("drill d", None)]


@pytest.mark.parametrize(("prefix", "metres"), SUGGEST_CASES)
def test_suggestions_complete_the_prefix_and_are_in_stock_in_scope(
    cat: Catalogue, prefix: str, metres: float | None
) -> None:
    point = (None, None) if metres is None else CENTER
    params = SuggestParams(q=prefix, lat=point[0], lon=point[1], radius_m=metres or 5000, limit=10)
    got = run(_call(cat.url, suggest, params))
    scope = None if metres is None else _near(cat, metres)
    stocked = {p for _s, p, _price in _qualifying(cat, scope)}
    assert len(got) <= 10
    for s in got:
        assert s.text.lower().startswith(prefix.lower()) or s.kind != "product"
        if s.kind == "product":
            assert uuid.UUID(s.ref) in stocked
        elif s.kind == "brand":
            assert any(cat.products[p][1] == s.text for p in stocked)
        elif s.kind == "category":
            assert any(int(s.ref) in _ancestors(cat, cat.products[p][2]) for p in stocked)
        else:
            words = s.text.lower().split()
            assert any(set(words) <= set(cat.products[p][0].lower().split()) for p in stocked)
    want_names = sorted({cat.products[p][0] for p in stocked if cat.products[p][0].lower().startswith(prefix)})
    got_names = [s.text for s in got if s.kind == "product"]
    assert got_names == want_names[: len(got_names)]
    assert got or not want_names


@pytest.mark.parametrize("narrow_stores", [3, 10_000])
def test_suggestions_from_the_in_memory_labels_equal_the_sql_plans(
    cat: Catalogue, narrow_stores: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Narrow scopes answered from memory (suggest_memory.py) give what the statement's narrow plan gives; wider
    ones fall back to the statement. 10,000: every scope narrow."""
    monkeypatch.setattr(suggest_module, "NARROW_STORES", narrow_stores)
    cases = [(p, m) for p in ("d", "dr", "Ha", "la", "drill d", "saw ", "bo", "acme", "tools", "l", "x") for m in
             (300, 800, 3_000, 20_000)]  # fmt: skip

    async def compare(conn: asyncpg.Connection) -> int:
        labels = ProductLabels()
        await labels.load(conn)
        found = 0
        for prefix, metres in cases:
            params = SuggestParams(q=prefix, lat=CENTER[0], lon=CENTER[1], radius_m=metres, limit=10)
            want = await suggest(conn, params)
            assert await suggest(conn, params, labels) == want, (prefix, metres)
            found += len(want)
        return found

    assert run(_call(cat.url, compare)) > 50


def test_the_walk_breaks_ties_as_the_narrow_plan_does(fresh_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two products of one name (the first by id is suggested) and three spellings of a brand (the smallest in
    scope): the walk (every scope wide) answered the other product and the first spelling it probed."""
    sid, ids = uuid.uuid4(), sorted(uuid.uuid4() for _ in range(5))
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO store (id, name, location) VALUES (%s, 'Twin store', ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
            (sid, CENTER[1], CENTER[0]),
        )
        rows = [(ids[4], "Twin Cable", "Tekno"), (ids[0], "Twin Cable", "tekno"), (ids[2], "Twin Lamp", "TEKNO"),
                (ids[1], "Twin Lamp B", "Tekno"), (ids[3], "Twine", "teKno")]  # fmt: skip
        for pid, name, brand in rows:
            conn.execute("INSERT INTO product_master (id, name, brand) VALUES (%s, %s, %s)", (pid, name, brand))
            conn.execute(
                "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity)"
                " VALUES (%s, %s, 1, 'EUR', 3)",
                (sid, pid),
            )

    async def both(conn: asyncpg.Connection, prefix: str) -> list[Any]:
        params = SuggestParams(q=prefix, lat=CENTER[0], lon=CENTER[1], radius_m=1000, limit=10)
        out = []
        for narrow in (10_000, 0):  # every scope narrow, then every scope walked
            monkeypatch.setattr(suggest_module, "NARROW_STORES", narrow)
            out.append(await suggest(conn, params))
        return out

    for prefix in ("twin c", "te", "tw"):
        narrow, walked = run(_call(fresh_db_url, both, prefix))
        assert walked == narrow and narrow, prefix
    narrow, _ = run(_call(fresh_db_url, both, "te"))
    assert [s.text for s in narrow if s.kind == "brand"] == ["TEKNO"]
    narrow, _ = run(_call(fresh_db_url, both, "twin c"))
    assert [s.ref for s in narrow if s.kind == "product"] == [str(ids[0])]


def test_the_suggest_statement_probing_the_radius_gives_what_listing_its_stores_gives(
    cat: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A radius holding most stores (store_locator.radius_pays, forced here for every radius) is measured per listing
    probed instead of its stores listed: the same completions for every walked scope (more than NARROW_STORES)."""
    monkeypatch.setattr(store_locator, "RADIUS_PROBE_MIN_STORES", 1)
    monkeypatch.setattr(store_locator, "RADIUS_PROBE_MIN_SHARE", 0.0)
    radii = [m for m in (3_000, 8_000, 20_000, 40_000) if len(_near(cat, m)) > suggest_module.NARROW_STORES]
    prefixes = ("d", "dr", "Ha", "la", "drill d", "bo", "acme", "tools", "l", "x")
    fetch, probed = suggest_module._fetch, []

    async def recorded(*args: Any) -> Any:
        probed.append(args[-1])  # near
        return await fetch(*args)

    monkeypatch.setattr(suggest_module, "_fetch", recorded)

    async def compare(conn: asyncpg.Connection) -> int:
        stores = StoreLocator()
        await stores.load(conn)
        found = 0
        for prefix, metres in [(p, m) for p in prefixes for m in radii]:
            params = SuggestParams(q=prefix, lat=CENTER[0], lon=CENTER[1], radius_m=metres, limit=10)
            listed = await suggest(conn, params)
            assert await suggest(conn, params, stores=stores) == listed, (prefix, metres)
            found += len(listed)
        return found

    assert len(radii) >= 2 and run(_call(cat.url, compare)) > 30
    assert probed.count(True) == probed.count(False) == len(prefixes) * len(radii)


def _executed_scans(plan: dict[str, Any], relation: str) -> int:
    """Nodes of an EXPLAIN ANALYZE (JSON) plan that read `relation` and ran at least once."""
    here = int(plan.get("Relation Name") == relation and plan.get("Actual Loops", 0) > 0)
    return here + sum(_executed_scans(child, relation) for child in plan.get("Plans", []))


@pytest.mark.parametrize("metres", [800, 20_000])
def test_the_suggest_statement_finds_the_stores_in_scope_once(cat: Catalogue, metres: float) -> None:
    """The scope's stores are read once a statement: pulled up into the CTE that tests them, the store scan ran
    once per use of its result (three times; at 1M products and 10k stores 17 of 18 ms at 20 km)."""
    stmt = statement("engine/suggest", "suggest")
    prefix, head, last = split_prefix("dr")
    values = stmt.bind(
        prefixes=[prefix], brand_prefix=prefix, head=head, glued_head=None, last_word=last, lon=CENTER[1],
        lat=CENTER[0], radius_m=float(metres), lim=10, walk_cap=suggest_module.WALK_CAP,
        probe_cap=suggest_module.PROBE_CAP, narrow_stores=suggest_module.NARROW_STORES, near=False, store_ids=None,
    )  # fmt: skip

    async def explain(conn: asyncpg.Connection) -> dict[str, Any]:
        async with conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            raw = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + stmt.sql, *values)
        return dict(json.loads(raw)[0]["Plan"])

    assert _executed_scans(run(_call(cat.url, explain)), "store") == 1


def test_seed_demo_gives_stores_delivery_radii_and_polygons(fresh_db_url: str) -> None:
    from search_service.demo.seed import seed

    seed(fresh_db_url, "demo", embed=False, quiet=True)
    with psycopg.connect(fresh_db_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(delivery_radius_m), count(delivery_area), "
            "count(*) FILTER (WHERE ST_NumInteriorRings(ST_GeometryN(delivery_area::geometry, 1)) > 0), "
            "bool_and(delivery_area IS NULL OR ST_IsValid(delivery_area::geometry)) FROM store"
        ).fetchone()
        assert row is not None
        stores, radii, areas, holed, valid = row
        assert 0 < radii < stores and 0 < areas < stores and 0 < holed < areas and valid
        lat, lon, sid = conn.execute(
            "SELECT ST_Y(location::geometry), ST_X(location::geometry), id FROM store "
            "WHERE delivery_area IS NOT NULL AND ST_NumInteriorRings(ST_GeometryN(delivery_area::geometry, 1)) > 0 "
            "AND is_active AND delivery_radius_m IS NULL LIMIT 1"
        ).fetchone()
    at_store = run(_call(fresh_db_url, geo_areas.stores_delivering, lat, lon))
    assert sid not in at_store  # the store itself sits in its polygon's hole
    north = _destination(lat, lon, 0, 3000)
    assert sid in run(_call(fresh_db_url, geo_areas.stores_delivering, *north))
