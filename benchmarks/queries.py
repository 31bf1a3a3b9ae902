"""The benchmark query set: what shoppers type, and where they stand when they type it.

Texts come from templates that are *not* the product texts (the embedded text is name + brand + category +
attributes + description; a query that repeated it would make recall look better than it is):

- ``need``        a need in the shopper's words, no product named ("something for a headache");
- ``paraphrase``  a category or product type said differently ("where can I get plant milk near me");
- ``brand``       a brand, alone or with a product type;
- ``exact_name``  a product's name as printed on the pack;
- ``gtin``        a barcode, as a scanner app would send it;
- ``typo``        a product name with one or two keyboard slips.

Locations are where people live: a city centre, a suburb or the outskirts. With the data generator's
marketplace they are its cities' centres and neighbourhoods; otherwise they are derived from where the
stores are (the median store position, and rings around it at store-distance quantiles).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

# Share of each kind in the set (sums to 1).
KIND_WEIGHTS: dict[str, float] = {
    "need": 0.2,
    "paraphrase": 0.25,
    "brand": 0.15,
    "exact_name": 0.15,
    "gtin": 0.1,
    "typo": 0.15,
}
# Share of each kind of place (people live mostly outside the very centre).
PLACE_WEIGHTS: dict[str, float] = {"centre": 0.35, "suburb": 0.45, "outskirts": 0.2}

NEEDS: tuple[str, ...] = (
    "something for a headache",
    "cold and flu relief",
    "something to help me sleep",
    "plasters for a cut finger",
    "cream for dry skin",
    "sunscreen for the beach",
    "gift for a six year old",
    "birthday present for my mum",
    "snacks for a party tonight",
    "ingredients for pancakes",
    "what do I need to bake bread",
    "breakfast for the kids",
    "gluten free lunch",
    "vegan protein for after the gym",
    "food for my cat",
    "treats for a puppy",
    "nappies for a newborn",
    "coffee for my espresso machine",
    "a bottle of red wine for dinner",
    "charger for my phone",
    "batteries for the tv remote",
    "a bulb for the living room lamp",
    "fix a leaking tap",
    "stuff to clean the oven",
    "get rid of ants in the kitchen",
    "notebook and pens for school",
    "something warm to wear in winter",
    "shoes for running",
    "flowers for an anniversary",
    "healthy snack for work",
    "drinks for a barbecue",
    "tools to hang a picture",
    "keep my plants alive",
    "something to read on holiday",
    "hangover cure",
    "allergy tablets",
    "toothpaste for sensitive teeth",
    "shampoo for curly hair",
    "a cheap dinner for two",
    "baby food",
)

PARAPHRASE_TEMPLATES: tuple[str, ...] = (
    "where can I buy {thing}",
    "{thing} near me",
    "looking for {thing}",
    "need some {thing} today",
    "good {thing} nearby",
    "cheap {thing}",
    "any shop with {thing} in stock",
    "best {thing} around here",
    "{thing} open now",
    "I want to get {thing}",
)

BRAND_TEMPLATES: tuple[str, ...] = (
    "{brand}",
    "{brand} {thing}",
    "{brand} products",
    "anything from {brand}",
)

# Plain-word stand-ins for category words, so paraphrases do not repeat the category text verbatim.
SYNONYMS: dict[str, str] = {
    "milk": "dairy drink",
    "plant-based": "vegan",
    "bread": "loaf",
    "bakery": "baked goods",
    "beverages": "drinks",
    "drinks": "beverages",
    "snacks": "nibbles",
    "confectionery": "sweets",
    "chocolate": "choc",
    "coffee": "java",
    "tea": "cuppa",
    "pain relief": "painkillers",
    "painkillers": "pain relief",
    "vitamins": "supplements",
    "pet": "animal",
    "dog": "puppy",
    "cat": "kitty",
    "toys": "playthings",
    "electronics": "gadgets",
    "cleaning": "household cleaner",
    "detergent": "washing powder",
    "shampoo": "hair wash",
    "skincare": "skin care",
    "cosmetics": "makeup",
    "hardware": "diy tools",
    "garden": "gardening",
    "fruit": "fresh fruit",
    "vegetables": "veggies",
    "cheese": "fromage",
    "wine": "vino",
    "beer": "lager",
    "books": "reading",
    "stationery": "office supplies",
    "baby": "infant",
    "clothing": "clothes",
    "shoes": "footwear",
    "sports": "fitness",
}

# QWERTY neighbours for substitution typos.
_KEYBOARD = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_KEYBOARD):
    for _c, _ch in enumerate(_row):
        near = [_row[j] for j in (_c - 1, _c + 1) if 0 <= j < len(_row)]
        for _rr in (_r - 1, _r + 1):
            if 0 <= _rr < len(_KEYBOARD) and _c < len(_KEYBOARD[_rr]):
                near.append(_KEYBOARD[_rr][_c])
        _NEIGHBOURS[_ch] = "".join(near)


@dataclass(frozen=True)
class ProductRef:
    """What the query templates may use of a product (never its description or composed text)."""

    name: str
    brand: str | None
    gtin: str | None
    category_path: tuple[str, ...]


@dataclass(frozen=True)
class Place:
    kind: str  # centre | suburb | outskirts
    city: str
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Query:
    id: int
    kind: str
    text: str
    place: Place

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["place"] = asdict(self.place)
        return d


# --------------------------------------------------------------------------------------------------------
# Texts


def typo(text: str, rng: random.Random, edits: int = 1) -> str:
    """`text` with `edits` keyboard slips (swap, drop, double or neighbour key) inside words of 4+ letters."""
    chars = list(text)
    for _ in range(edits):
        spots = [i for i in range(1, len(chars) - 1) if chars[i].isalpha() and chars[i - 1].isalpha()]
        if not spots:
            break
        i = rng.choice(spots)
        op = rng.choice(("swap", "drop", "double", "near"))
        if op == "swap" and chars[i + 1].isalpha():
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        elif op == "drop":
            del chars[i]
        elif op == "double":
            chars.insert(i, chars[i])
        else:
            low = chars[i].lower()
            if _NEIGHBOURS.get(low):
                chars[i] = rng.choice(_NEIGHBOURS[low])
            else:
                del chars[i]
    out = "".join(chars)
    return out if out != text else text[:-1] if len(text) > 3 else text + text[-1]


def _thing(product: ProductRef, rng: random.Random) -> str:
    """A product type in plain words: the leaf category (or the name's last words), with synonyms applied."""
    if product.category_path:
        base = product.category_path[-1]
    else:
        words = re.findall(r"[A-Za-z][A-Za-z'-]+", product.name)
        base = " ".join(words[-2:]) if words else product.name
    thing = base.lower().replace("&", "and")
    for word, synonym in SYNONYMS.items():
        if re.search(rf"\b{re.escape(word)}\b", thing) and rng.random() < 0.7:
            thing = re.sub(rf"\b{re.escape(word)}\b", synonym, thing)
            break
    return thing


def make_text(kind: str, product: ProductRef, rng: random.Random) -> str:
    if kind == "need":
        return rng.choice(NEEDS)
    if kind == "paraphrase":
        return rng.choice(PARAPHRASE_TEMPLATES).format(thing=_thing(product, rng))
    if kind == "brand":
        if not product.brand:
            return rng.choice(PARAPHRASE_TEMPLATES).format(thing=_thing(product, rng))
        return rng.choice(BRAND_TEMPLATES).format(brand=product.brand, thing=_thing(product, rng))
    if kind == "exact_name":
        return product.name
    if kind == "gtin":
        return product.gtin or product.name
    if kind == "typo":
        return typo(product.name, rng, edits=1 if len(product.name) < 12 else 2)
    raise ValueError(f"unknown query kind {kind!r}")


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys], k=1)[0]


def build_queries(
    products: Sequence[ProductRef],
    places: Sequence[Place],
    n: int,
    seed: int = 42,
    kind_weights: dict[str, float] | None = None,
) -> list[Query]:
    """`n` queries: a kind drawn by weight, a product to take words from, a place of that kind's weight."""
    if not products or not places:
        raise ValueError("the query set needs products and places")
    rng = random.Random(seed)
    weights = kind_weights or KIND_WEIGHTS
    by_kind: dict[str, list[Place]] = {}
    for place in places:
        by_kind.setdefault(place.kind, []).append(place)
    place_weights = {k: w for k, w in PLACE_WEIGHTS.items() if by_kind.get(k)}
    out: list[Query] = []
    for i in range(n):
        kind = _weighted(rng, weights)
        product = rng.choice(list(products))
        text = make_text(kind, product, rng).strip()[:256] or product.name
        place = rng.choice(by_kind[_weighted(rng, place_weights)])
        out.append(Query(id=i, kind=kind, text=text, place=place))
    return out


# --------------------------------------------------------------------------------------------------------
# Reading the catalogue and the map


CATALOGUE_SQL = """
WITH RECURSIVE path(id, names) AS (
    SELECT c.id, ARRAY[c.name] FROM category c WHERE c.parent_id IS NULL
    UNION ALL
    SELECT c.id, path.names || c.name FROM category c JOIN path ON c.parent_id = path.id
)
SELECT p.name, p.brand, p.gtin, coalesce(path.names, '{}'::text[]) AS category_path
FROM product_master p LEFT JOIN path ON path.id = p.category_id
WHERE p.is_active AND p.ai_vector IS NOT NULL
ORDER BY md5(p.id::text || %(seed)s)
LIMIT %(n)s
"""


def sample_products(conn: psycopg.Connection[Any], n: int, seed: int) -> list[ProductRef]:
    rows = conn.execute(CATALOGUE_SQL, {"seed": str(seed), "n": n}).fetchall()
    return [ProductRef(name=r[0], brand=r[1], gtin=r[2], category_path=tuple(r[3] or ())) for r in rows]


def offset_point(lat: float, lon: float, distance_m: float, bearing_rad: float) -> tuple[float, float]:
    north = distance_m * math.cos(bearing_rad)
    east = distance_m * math.sin(bearing_rad)
    dlat = north / 111_320.0
    dlon = east / (111_320.0 * max(math.cos(math.radians(lat)), 1e-6))
    return lat + dlat, (lon + dlon + 180.0) % 360.0 - 180.0


def places_from_stores(conn: psycopg.Connection[Any], seed: int, per_kind: int = 12) -> list[Place]:
    """Places without the generator's map: per city (or once, without store.city), the median store position is
    the centre; suburbs and outskirts lie at the 40–75% and 85–97% quantiles of the stores' distances from it."""
    rng = random.Random(seed)
    cities = conn.execute(
        "SELECT coalesce(city, ''), count(*),"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY ST_Y(location::geometry)),"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY ST_X(location::geometry))"
        " FROM store WHERE is_active GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
    ).fetchall()
    places: list[Place] = []
    for city, _count, lat, lon in cities:
        dists = [
            float(r[0])
            for r in conn.execute(
                "SELECT ST_Distance(location, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) AS d"
                " FROM store WHERE is_active AND coalesce(city, '') = %s"
                " AND ST_DWithin(location, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, 50000)"
                " ORDER BY d",
                (lon, lat, city, lon, lat),
            ).fetchall()
        ]
        if not dists:
            continue
        label = city or "map"

        def q(f: float, dists: list[float] = dists) -> float:
            return dists[min(int(f * len(dists)), len(dists) - 1)]

        rings = {"centre": (0.0, max(q(0.05), 300.0)), "suburb": (q(0.4), q(0.75)), "outskirts": (q(0.85), q(0.97))}
        for kind, (lo, hi) in rings.items():
            for j in range(per_kind):
                d = rng.uniform(lo, max(hi, lo + 1.0))
                plat, plon = offset_point(float(lat), float(lon), d, rng.uniform(0, 2 * math.pi))
                places.append(Place(kind=kind, city=label, name=f"{label} {kind} {j}", lat=plat, lon=plon))
    return places
