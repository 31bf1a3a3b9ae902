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

# How shoppers name a product type, keyed by a part of a category name (lower case, split at "&" and ","): the
# paraphrase says it differently from the category text the products were embedded with.
SYNONYMS: dict[str, str] = {
    "adhesives": "glue",
    "sealants": "silicone sealant",
    "allergy": "hayfever relief",
    "hay fever": "pollen allergy",
    "arts": "art supplies",
    "crafts": "craft kit",
    "baby": "infant",
    "preschool toys": "toddler toys",
    "baby care": "stuff for the baby",
    "gear": "equipment",
    "baby food": "food for babies",
    "formula": "infant milk",
    "bags": "handbag",
    "accessories": "extras",
    "baking": "baking ingredients",
    "ball": "football",
    "racket sports": "tennis racket",
    "bath": "bubble bath",
    "shower": "shower gel",
    "batteries": "aa cells",
    "beer": "lager",
    "cider": "apple cider",
    "berries": "strawberries and blueberries",
    "bin bags": "rubbish bags",
    "food storage": "tupperware",
    "board games": "family games",
    "puzzles": "jigsaw",
    "bread": "a loaf",
    "breakfast cereals": "cornflakes or muesli",
    "building": "building blocks",
    "construction toys": "lego style bricks",
    "butter": "spread for toast",
    "cream": "double cream",
    "cables": "cords",
    "extension leads": "power strip",
    "cameras": "photo camera",
    "wearables": "smartwatch",
    "camping": "camping gear",
    "hiking": "trekking stuff",
    "canned": "tinned food",
    "jarred food": "jars of food",
    "cards": "greeting card",
    "gift wrap": "wrapping paper",
    "cat food": "food for my cat",
    "cheese": "cheddar",
    "children's books": "books for kids",
    "chocolate": "choc",
    "sweets": "candy",
    "cleaning": "household cleaner",
    "coffee": "java",
    "cold": "sniffles",
    "flu": "flu remedy",
    "compost": "potting soil",
    "plant care": "plant food",
    "computer accessories": "pc peripherals",
    "cookbooks": "recipe book",
    "cookware": "pots and pans",
    "kitchen tools": "kitchen utensils",
    "crisps": "chips",
    "snacks": "nibbles",
    "cycling": "bike gear",
    "decorating tools": "paint rollers and brushes",
    "deli": "sliced meats",
    "cooked meats": "ham",
    "deodorants": "antiperspirant",
    "digestive health": "stomach remedy",
    "dishwashing": "washing-up liquid",
    "dog food": "food for my dog",
    "dolls": "doll",
    "figures": "action figure",
    "soft toys": "cuddly toy",
    "drains": "blocked drain fix",
    "toilets": "loo",
    "eggs": "free range eggs",
    "energy": "energy drink",
    "sports drinks": "isotonic drink",
    "feeding": "baby bottles",
    "feminine care": "period products",
    "fiction": "a novel",
    "first aid": "plasters and bandages",
    "fish": "fresh fish",
    "seafood": "prawns",
    "fitness": "workout gear",
    "yoga": "yoga stuff",
    "floorcare": "vacuum cleaner",
    "frozen meals": "ready meal from the freezer",
    "pizza": "frozen pizza",
    "frozen vegetables": "frozen veg",
    "fruit": "fresh fruit",
    "garden tools": "gardening tools",
    "hair care": "hair products",
    "hand tools": "tools",
    "headphones": "earphones",
    "speakers": "bluetooth speaker",
    "health devices": "blood pressure monitor",
    "heating": "heater",
    "cooling": "electric fan",
    "herbs": "fresh herbs",
    "spices": "seasoning",
    "home textiles": "bedding and towels",
    "ice cream": "gelato",
    "irons": "clothes iron",
    "sewing": "sewing kit",
    "juices": "orange juice",
    "smoothies": "smoothie",
    "kids' clothing": "clothes for children",
    "kitchen appliances": "kitchen gadgets",
    "ladders": "step ladder",
    "workshop": "workbench",
    "lamps": "lighting",
    "torches": "flashlight",
    "laptops": "notebook computer",
    "tablets": "tablet computer",
    "laundry": "washing powder",
    "lawn mowers": "mower",
    "garden power tools": "hedge trimmer",
    "light bulbs": "bulbs",
    "make-up": "makeup",
    "nails": "nail polish",
    "meat": "fresh meat",
    "poultry": "chicken",
    "men's coats": "coat for men",
    "jackets": "jacket",
    "men's tops": "shirts for men",
    "knitwear": "jumper",
    "men's trousers": "trousers for men",
    "shorts": "summer shorts",
    "milk": "dairy milk",
    "mobile phones": "smartphone",
    "nappies": "diapers",
    "wipes": "baby wipes",
    "non-fiction": "history book",
    "notebooks": "notepad",
    "paper": "printer paper",
    "nuts": "cashews",
    "seeds": "sunflower seeds",
    "dried fruit": "raisins",
    "office": "office supplies",
    "school supplies": "stuff for school",
    "oils": "olive oil",
    "vinegars": "balsamic",
    "oral care": "toothpaste",
    "outdoor": "outdoor toys",
    "active toys": "toys for the garden",
    "outdoor living": "patio furniture",
    "bbq": "barbecue",
    "pain relief": "painkillers",
    "paint": "wall paint",
    "tissues": "kleenex",
    "pasta": "spaghetti",
    "rice": "basmati",
    "pastries": "croissants",
    "cakes": "a cake",
    "pens": "biros",
    "writing": "writing stuff",
    "personal care appliances": "hair dryer",
    "pet care": "stuff for my pet",
    "pet health": "flea treatment",
    "hygiene": "cleaning products",
    "phone accessories": "phone case",
    "pipes": "plumbing pipes",
    "fittings": "plumbing fittings",
    "plant-based alternatives": "vegan meat",
    "plant-based drinks": "oat milk",
    "plants": "houseplants",
    "power tools": "drill",
    "rolls": "bread rolls",
    "buns": "burger buns",
    "salad": "lettuce",
    "fresh herbs": "basil",
    "sauces": "ketchup",
    "condiments": "mustard",
    "screws": "screws",
    "fixings": "wall plugs",
    "shaving": "razor",
    "grooming": "beard care",
    "shoes": "footwear",
    "showers": "shower head",
    "skin care": "moisturiser",
    "small animals": "hamster supplies",
    "birds": "bird seed",
    "smart home": "smart plug",
    "security": "alarm",
    "socks": "socks",
    "underwear": "boxers",
    "soft drinks": "fizzy drinks",
    "soups": "soup",
    "ready meals": "microwave meal",
    "spirits": "gin or vodka",
    "sports nutrition": "protein powder",
    "spreads": "jam",
    "honey": "runny honey",
    "storage": "storage boxes",
    "organisation": "organiser",
    "sun care": "sunscreen",
    "swimming": "swimwear",
    "water sports": "wetsuit",
    "switches": "light switch",
    "sockets": "plug socket",
    "wiring": "electrical wire",
    "tv": "television",
    "home entertainment": "home cinema",
    "tap repair": "fix a dripping tap",
    "taps": "kitchen tap",
    "mixers": "mixer tap",
    "tea": "cuppa",
    "travel guides": "guidebook",
    "maps": "road map",
    "vegetables": "veggies",
    "video games": "games",
    "consoles": "gaming console",
    "vitamins": "multivitamins",
    "supplements": "dietary supplements",
    "water": "bottled water",
    "watering": "watering can",
    "wine": "vino",
    "women's coats": "coat for women",
    "women's tops": "blouse",
    "women's trousers": "trousers for women",
    "dresses": "dress",
    "skirts": "skirt",
    "workwear": "work clothes",
    "safety": "safety gear",
    "world foods": "international food",
    "wraps": "tortillas",
    "flatbreads": "pitta",
    "crackers": "crispbread",
    "yoghurt": "yogurt",
    "desserts": "pudding",
}
SYNONYM_SHARE = 0.85  # the rest of the paraphrases keep the category word (people type "cheese" too)

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
    """A product type in the shopper's words: one part of the leaf category (or the name's last words), usually
    replaced by a synonym."""
    if product.category_path:
        parts = [p.strip().lower() for p in re.split(r"&|,| and ", product.category_path[-1]) if p.strip()]
        thing = rng.choice(parts)
    else:
        words = re.findall(r"[A-Za-z][A-Za-z'-]+", product.name)
        thing = (" ".join(words[-2:]) if words else product.name).lower()
    if thing in SYNONYMS and rng.random() < SYNONYM_SHARE:
        thing = SYNONYMS[thing]
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
