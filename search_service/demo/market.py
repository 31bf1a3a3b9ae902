"""Deterministic generation of a local-commerce marketplace: categories, products, stores and listings.

Everything follows from (scale, seed). Products are planned up front as numpy arrays (which leaf, item, variant,
size, brand, price, popularity) and turned into strings only when iterated, in chunks; listings are generated
store by store from a generator seeded by (seed, store index), so any chunking yields the same rows.
"""

from __future__ import annotations

import math
import re
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache

import numpy as np

from . import geo, vocab
from .gtin import GS1_PREFIXES, gtin13_bodies, gtin13_strings

OUT_OF_STOCK_SHARE = 0.10
INACTIVE_LISTING_SHARE = 0.02
INACTIVE_STORE_SHARE = 0.03
PRICE_SPREAD = 0.15  # store prices within ±15% of the product's base price
ZIPF_EXPONENT = 0.85
# Sub-brands for catalogues bigger than a leaf's name combinations (the large scale).
PRODUCT_LINES = (
    "Select", "Essentials", "Classic", "Premium", "Plus", "Signature", "Everyday", "Pro", "Original", "Prime",
    "Home", "Studio", "Max", "Heritage", "Urban", "Nature", "Smart", "Family", "Expert", "Lite",
)  # fmt: skip


@dataclass(frozen=True)
class Scale:
    """How big a marketplace to generate. `cities`: ("Name,CC", share of stores) pairs, the first the densest.
    Give the listings either per store (`listings_per_store`) or in total (`listings`, about that many)."""

    name: str
    products: int
    stores: int
    listings_per_store: float = 0.0
    cities: tuple[tuple[str, float], ...] = (("Berlin,DE", 1.0),)
    listings: int = 0

    def __post_init__(self) -> None:
        if self.products <= 0 or self.stores <= 0:
            raise ValueError("a scale needs products and stores")
        if self.listings_per_store <= 0:
            if self.listings <= 0:
                raise ValueError("give listings_per_store or listings")
            object.__setattr__(self, "listings_per_store", self.listings / self.stores)
        if self.listings <= 0:
            object.__setattr__(self, "listings", round(self.stores * self.listings_per_store))

    @property
    def target_listings(self) -> int:
        return round(self.stores * self.listings_per_store)


SCALES: dict[str, Scale] = {
    "demo": Scale("demo", products=5_000, stores=150, listings_per_store=400),
    "small": Scale(
        "small",
        products=100_000,
        stores=1_000,
        listings_per_store=1_000,
        cities=(
            ("Berlin,DE", 0.6),
            ("Hamburg,DE", 0.12),
            ("Munich,DE", 0.1),
            ("London,GB", 0.1),
            ("Amsterdam,NL", 0.08),
        ),
    ),
    "large": Scale(
        "large",
        products=1_000_000,
        stores=10_000,
        listings_per_store=1_000,
        cities=(
            ("Berlin,DE", 0.3),
            ("London,GB", 0.14),
            ("Paris,FR", 0.12),
            ("New York City,US", 0.12),
            ("Hamburg,DE", 0.08),
            ("Munich,DE", 0.07),
            ("Vienna,AT", 0.06),
            ("Amsterdam,NL", 0.06),
            ("Cologne,DE", 0.05),
        ),
    ),
}


def get_scale(name: str) -> Scale:
    try:
        return SCALES[name]
    except KeyError:
        raise ValueError(f"unknown scale {name!r}: choose one of {', '.join(SCALES)}") from None


@dataclass(frozen=True)
class Category:
    id: int
    parent_id: int | None
    name: str
    slug: str
    position: int
    path: tuple[str, ...]
    department: int  # index into vocab.DEPARTMENTS


@dataclass(frozen=True)
class Store:
    id: uuid.UUID
    name: str
    store_type: str
    city: str
    country_code: str
    address: str
    lat: float
    lon: float
    is_active: bool
    currency: str
    home_city: str  # the city the store was placed around (its `city` may be a nearby town)
    distance_m: float  # from that city's centre
    zone: str  # core, suburbs, outskirts


@dataclass(slots=True)
class Product:
    id: uuid.UUID
    name: str
    brand: str
    description: str
    category_id: int
    gtin: str
    attributes: dict[str, str]
    category_path: tuple[str, ...]
    base_price: float  # EUR


@dataclass
class ListingChunk:
    """Listings of a run of stores, column-wise. `store_idx`/`product_idx` index Marketplace.stores/products."""

    id_bytes: np.ndarray  # (n, 16) uint8, UUIDv4 layout
    store_idx: np.ndarray  # int32
    product_idx: np.ndarray  # int32
    price: np.ndarray  # float64, 2 decimals, in the store's currency
    quantity: np.ndarray  # int32
    is_active: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.store_idx)

    @staticmethod
    def concat(chunks: list[ListingChunk]) -> ListingChunk:
        if not chunks:
            return ListingChunk(
                np.zeros((0, 16), np.uint8),
                np.zeros(0, np.int32),
                np.zeros(0, np.int32),
                np.zeros(0),
                np.zeros(0, np.int32),
                np.zeros(0, bool),
            )
        return ListingChunk(
            np.concatenate([c.id_bytes for c in chunks]),
            np.concatenate([c.store_idx for c in chunks]),
            np.concatenate([c.product_idx for c in chunks]),
            np.concatenate([c.price for c in chunks]),
            np.concatenate([c.quantity for c in chunks]),
            np.concatenate([c.is_active for c in chunks]),
        )


def uuid4_bytes(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 16) random UUIDv4s from `rng`: version and variant bits set as RFC 4122 requires."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return raw


def charm_price(p: np.ndarray, fx: float = 1.0) -> np.ndarray:
    """Shelf prices: 0.45, 2.49, 12.99, 149.99; whole units for currencies with large unit values."""
    p = np.asarray(p, dtype=np.float64)
    if fx >= 20:
        return np.maximum(np.round(p, -1) - 1, 9.0)
    # Nearest shelf price (never more than ~6% off): cents below 1, then x.x9, x.99 and xx5.99 / xx9.99 steps.
    out = np.where(
        p < 1,
        np.round(p, 2),
        np.where(
            p < 10, np.round(p * 10) / 10 - 0.01, np.where(p < 100, np.round(p) - 0.01, np.round(p / 5) * 5 - 0.01)
        ),
    )
    return np.round(np.maximum(out, 0.19), 2)


_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "è": "e", "'": ""})
    return _SLUG.sub("-", text.lower().translate(table)).strip("-")


@dataclass(frozen=True)
class _LeafInfo:
    leaf: vocab.Leaf
    department: int
    category_id: int
    path: tuple[str, ...]
    brands: tuple[str, ...]
    item_counts: np.ndarray  # combinations per item
    item_offsets: np.ndarray  # cumulative, len(items) + 1


def _variants(leaf: vocab.Leaf, item: vocab.Item) -> tuple[str, ...]:
    return item.variants if item.variants is not None else leaf.variants


def _sizes(leaf: vocab.Leaf, item: vocab.Item) -> tuple[str, ...]:
    return item.sizes if item.sizes is not None else leaf.sizes


def build_categories() -> tuple[list[Category], list[_LeafInfo]]:
    cats: list[Category] = []
    leaves: list[_LeafInfo] = []

    def add(name: str, parent: Category | None, position: int, dept: int) -> Category:
        path = (*parent.path, name) if parent else (name,)
        cat = Category(
            len(cats) + 1, parent.id if parent else None, name, slugify("-".join(path)), position, path, dept
        )
        cats.append(cat)
        return cat

    def add_leaf(lf: vocab.Leaf, parent: Category, position: int, dept_i: int, dept: vocab.Department) -> None:
        cat = add(lf.name, parent, position, dept_i)
        brands = lf.brands or dept.brands
        counts = np.array(
            [
                len(_variants(lf, it)) * len(_sizes(lf, it)) * len(lf.colours) * len(lf.materials) * len(brands)
                for it in lf.items
            ],
            dtype=np.int64,
        )
        offsets = np.concatenate([[0], np.cumsum(counts)])
        leaves.append(_LeafInfo(lf, dept_i, cat.id, cat.path, brands, counts, offsets))

    for d_i, dept in enumerate(vocab.DEPARTMENTS):
        top = add(dept.name, None, d_i, d_i)
        for c_i, child in enumerate(dept.children):
            if isinstance(child, vocab.Group):
                mid = add(child.name, top, c_i, d_i)
                for l_i, lf in enumerate(child.leaves):
                    add_leaf(lf, mid, l_i, d_i, dept)
            else:
                add_leaf(child, top, c_i, d_i, dept)
    return cats, leaves


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts


@dataclass
class _ProductPlan:
    leaf: np.ndarray
    item: np.ndarray
    variant: np.ndarray
    size: np.ndarray
    colour: np.ndarray
    material: np.ndarray
    brand: np.ndarray
    style: np.ndarray  # uint32 picks description sentences
    base_price: np.ndarray  # EUR
    weight: np.ndarray  # listing popularity (Zipf over a random rank; anchors first)
    department: np.ndarray
    id_bytes: np.ndarray
    gtin_body: np.ndarray


def _plan_products(n: int, leaves: list[_LeafInfo], rng: np.random.Generator) -> _ProductPlan:
    by_name = {li.leaf.name: i for i, li in enumerate(leaves)}
    rows: dict[str, list[np.ndarray]] = {
        k: [] for k in ("leaf", "item", "variant", "size", "colour", "material", "brand")
    }

    def emit(
        leaf_i: int,
        item: np.ndarray,
        var: np.ndarray,
        size: np.ndarray,
        col: np.ndarray,
        mat: np.ndarray,
        brand: np.ndarray,
    ) -> None:
        rows["leaf"].append(np.full(len(item), leaf_i, dtype=np.int32))
        for key, arr in (
            ("item", item),
            ("variant", var),
            ("size", size),
            ("colour", col),
            ("material", mat),
            ("brand", brand),
        ):
            rows[key].append(arr.astype(np.int32))

    # Anchors: the products demos and tests count on, whenever the catalogue has room for them.
    anchors = vocab.ANCHORS if n >= 2 * len(vocab.ANCHORS) else ()
    for a in anchors:
        li = leaves[by_name[a.leaf]]
        lf = li.leaf
        it_i = next(i for i, it in enumerate(lf.items) if it.name == a.item)
        it = lf.items[it_i]
        v_i = _variants(lf, it).index(a.variant)
        s_i = _sizes(lf, it).index(a.size)
        emit(
            by_name[a.leaf],
            np.array([it_i]),
            np.array([v_i]),
            np.array([s_i]),
            rng.integers(0, len(lf.colours), 1),
            rng.integers(0, len(lf.materials), 1),
            rng.integers(0, len(li.brands), 1),
        )
    n_anchor = len(anchors)

    # The rest, spread over leaves by department weight, then leaf weight x sqrt(items).
    dept_w = np.array([d.weight for d in vocab.DEPARTMENTS])
    leaf_dept = np.array([li.department for li in leaves])
    raw = np.array([li.leaf.weight * math.sqrt(len(li.leaf.items)) for li in leaves])
    dept_sum = np.bincount(leaf_dept, weights=raw)
    leaf_w = dept_w[leaf_dept] * raw / dept_sum[leaf_dept]
    counts = _largest_remainder(n - n_anchor, leaf_w)
    for leaf_i, (li, k) in enumerate(zip(leaves, counts, strict=True)):
        if k == 0:
            continue
        total = int(li.item_offsets[-1])
        # Distinct combinations while the leaf has them (so names rarely repeat), then repeats.
        combo = rng.choice(total, size=min(int(k), total), replace=False)
        line = np.zeros(len(combo), dtype=np.int64)
        if k > total:
            # More products than combinations: further rounds come from the brands' product lines
            # ("Kabelwerk Pro", "Bellavita Select"), so big catalogues stay mostly distinct too.
            rounds = -(-int(k) // total)
            extra = np.concatenate([rng.permutation(total) for _ in range(rounds - 1)])[: int(k) - total]
            combo = np.concatenate([combo, extra])
            line = np.minimum(np.arange(int(k)) // total, len(PRODUCT_LINES))
        item = np.searchsorted(li.item_offsets, combo, side="right") - 1
        rest = combo - li.item_offsets[item]
        nb, nm, nc = len(li.brands), len(li.leaf.materials), len(li.leaf.colours)
        brand = rest % nb + nb * line  # product line folded into the brand index
        rest //= nb
        mat = rest % nm
        rest //= nm
        col = rest % nc
        rest //= nc
        nsz = np.array([len(_sizes(li.leaf, it)) for it in li.leaf.items])[item]
        size = rest % nsz
        var = rest // nsz
        emit(leaf_i, item, var, size, col, mat, brand)

    cols = {k: np.concatenate(v) for k, v in rows.items()}
    # Shuffle the non-anchor rows so chunks mix departments.
    order = np.concatenate([np.arange(n_anchor), n_anchor + rng.permutation(n - n_anchor)])
    cols = {k: v[order] for k, v in cols.items()}

    dept = leaf_dept[cols["leaf"]].astype(np.int16)
    lo = np.array([li.leaf.price[0] for li in leaves])[cols["leaf"]]
    hi = np.array([li.leaf.price[1] for li in leaves])[cols["leaf"]]
    base = np.exp(rng.uniform(np.log(lo), np.log(np.maximum(lo, hi * 0.6))))
    # Larger quantities cost more; clothing and shoe sizes do not.
    scales = np.array([_size_scales(li.leaf, it) for li in leaves for it in li.leaf.items])
    first_item = np.cumsum([0] + [len(li.leaf.items) for li in leaves])[:-1]
    scaled = scales[first_item[cols["leaf"]] + cols["item"]]
    base = base * np.where(scaled, 1.3 ** np.minimum(cols["size"], 4), 1.0)
    base = charm_price(np.minimum(base, hi * 1.5))

    rank = np.concatenate([np.arange(n_anchor), n_anchor + rng.permutation(n - n_anchor)])
    listing_f = np.array([d.listing_factor for d in vocab.DEPARTMENTS])[dept]
    weight = listing_f / (rank + 10.0) ** ZIPF_EXPONENT

    brand_names = [
        leaves[lf_i].brands[b % len(leaves[lf_i].brands)]
        for lf_i, b in zip(cols["leaf"].tolist(), cols["brand"].tolist(), strict=True)
    ]
    all_prefixes = np.array([p for cc in sorted(GS1_PREFIXES) for p in GS1_PREFIXES[cc]])
    prefixes = np.array([all_prefixes[zlib.crc32(b.encode()) % len(all_prefixes)] for b in brand_names])
    return _ProductPlan(
        leaf=cols["leaf"],
        item=cols["item"],
        variant=cols["variant"],
        size=cols["size"],
        colour=cols["colour"],
        material=cols["material"],
        brand=cols["brand"],
        style=rng.integers(0, 2**31, n, dtype=np.int64),
        base_price=base,
        weight=weight,
        department=dept,
        id_bytes=uuid4_bytes(rng, n),
        gtin_body=gtin13_bodies(n, prefixes, int(rng.integers(0, 10**9))),
    )


_FIT_SIZE = re.compile(
    r"^(XXS|XS|S|M|L|XL|XXL|EU \d+|W\d+ L\d+|\d+/\d+|Size \d+|Small|Medium|Large|Single|Double|King|\d+\")$"
)


def _size_scales(leaf: vocab.Leaf, item: vocab.Item) -> bool:
    """Whether an item's sizes are quantities (1 L, 20 pack: price grows) or fits (M, EU 42: price does not)."""
    sizes = [s for s in _sizes(leaf, item) if s]
    return bool(sizes) and not any(_FIT_SIZE.match(s) for s in sizes)


@lru_cache(maxsize=200_000)
def _join_name(variant: str, material: str, item: str) -> str:
    prefix, suffix = ("", variant[1:]) if variant.startswith("+") else (variant, "")
    head, _, tail = item.partition(" ")
    # "Women's Organic Cotton T-Shirt", not "Organic Cotton Women's T-Shirt".
    if material and tail and (head.endswith("'s") or head.endswith("s'")):
        core = f"{head} {material} {tail}"
    else:
        core = f"{material} {item}" if material else item
    return " ".join(p for p in (prefix, core, suffix) if p)


@cache
def _sentence_pool(department: int, has_size: bool) -> tuple[str, ...]:
    return tuple(s for s in vocab.DEPARTMENTS[department].sentences if "{size}" not in s or has_size)


@lru_cache(maxsize=100_000)
def _sentence(template: str, brand: str, size: str, item: str) -> str:
    return template.format(brand=brand, size=size, item=item.lower()) if "{" in template else template


class Marketplace:
    """A generated marketplace. Products are materialised on demand (`product`, `iter_products`), listings per
    store run (`iter_listings`); categories and stores are plain lists."""

    def __init__(self, scale: Scale, seed: int) -> None:
        self.scale = scale
        self.seed = seed
        self.categories, self._leaves = build_categories()
        self.plan = _plan_products(scale.products, self._leaves, np.random.default_rng([seed, 1]))
        self.cities = [geo.find_city(spec) for spec, _ in scale.cities]
        self.stores = self._make_stores(np.random.default_rng([seed, 2]))
        self._store_types = {t.key: t for t in vocab.STORE_TYPES}
        self._dept_index = {d.name: i for i, d in enumerate(vocab.DEPARTMENTS)}
        self._listing_setup(np.random.default_rng([seed, 3]))

    # ---- products -------------------------------------------------------------------------------------------
    @property
    def n_products(self) -> int:
        return len(self.plan.leaf)

    @cached_property
    def product_uuids(self) -> list[uuid.UUID]:
        raw = self.plan.id_bytes.tobytes()
        return [uuid.UUID(bytes=raw[16 * i : 16 * i + 16]) for i in range(self.n_products)]

    def products(self, start: int = 0, stop: int | None = None) -> list[Product]:
        stop = self.n_products if stop is None else min(stop, self.n_products)
        if stop <= start:
            return []
        p = self.plan
        gtins = gtin13_strings(p.gtin_body[start:stop])
        ids = p.id_bytes[start:stop].tobytes()
        out: list[Product] = []
        cols = (
            p.leaf[start:stop].tolist(),
            p.item[start:stop].tolist(),
            p.variant[start:stop].tolist(),
            p.size[start:stop].tolist(),
            p.colour[start:stop].tolist(),
            p.material[start:stop].tolist(),
            p.brand[start:stop].tolist(),
            p.style[start:stop].tolist(),
            p.base_price[start:stop].tolist(),
        )
        for j, (lf_i, it_i, v_i, s_i, c_i, m_i, b_i, style, price) in enumerate(zip(*cols, strict=True)):
            li = self._leaves[lf_i]
            lf = li.leaf
            item = lf.items[it_i]
            variant = _variants(lf, item)[v_i]
            size = _sizes(lf, item)[s_i]
            colour = lf.colours[c_i]
            material = lf.materials[m_i]
            line, b_i = divmod(b_i, len(li.brands))
            brand = f"{li.brands[b_i]} {PRODUCT_LINES[line - 1]}" if line else li.brands[b_i]
            name = _join_name(variant, material, item.name)
            if colour:
                name = f"{name}, {colour}"
            if size:
                name = f"{name}, {size}" if colour else f"{name} {size}"
            attrs: dict[str, str] = {}
            if variant:
                attrs[lf.variant_key] = variant.lstrip("+")
            if size:
                attrs["size"] = size
            if colour:
                attrs["colour"] = colour
            if material:
                attrs["material"] = material
            out.append(
                Product(
                    id=uuid.UUID(bytes=ids[16 * j : 16 * j + 16]),
                    name=name,
                    brand=brand,
                    description=self._describe(li, item.name, brand, variant, size, colour, material, style),
                    category_id=li.category_id,
                    gtin=gtins[j],
                    attributes=attrs,
                    category_path=li.path,
                    base_price=price,
                )
            )
        return out

    def product(self, i: int) -> Product:
        return self.products(i, i + 1)[0]

    def iter_products(self, chunk: int = 20_000) -> Iterator[list[Product]]:
        for start in range(0, self.n_products, chunk):
            yield self.products(start, start + chunk)

    def _describe(
        self, li: _LeafInfo, item: str, brand: str, variant: str, size: str, colour: str, material: str, style: int
    ) -> str:
        parts: list[str] = []
        if li.leaf.about:
            parts.append(li.leaf.about[style % len(li.leaf.about)])
        pool = _sentence_pool(li.department, bool(size))
        first = (style >> 4) % len(pool)
        second = (first + 1 + (style >> 9) % max(1, len(pool) - 1)) % len(pool)
        for pick in (first,) if first == second else (first, second):
            parts.append(_sentence(pool[pick], brand, size, item))
        detail = " ".join(w for w in (colour.lower() if colour else "", material.lower() if material else "") if w)
        if detail and (style >> 14) % 2 == 0:
            parts.append(f"Shown here in {detail}.")
        return " ".join(parts)

    # ---- stores ---------------------------------------------------------------------------------------------
    def _make_stores(self, rng: np.random.Generator) -> list[Store]:
        shares = np.array([s for _, s in self.scale.cities], dtype=np.float64)
        per_city = _largest_remainder(self.scale.stores, shares)
        types = vocab.STORE_TYPES
        type_share = np.array([vocab.STORE_TYPE_SHARE[t.key] for t in types])
        stores: list[Store] = []
        for city, n in zip(self.cities, per_city.tolist(), strict=True):
            if n == 0:
                continue
            lat, lon, dist, zone = geo.place_stores(city, n, rng, vocab.NEIGHBOURHOODS.get(city.name, ()))
            places, towns = geo.place_names(city, lat, lon, dist, vocab.NEIGHBOURHOODS.get(city.name, ()))
            german = city.country_code in ("DE", "AT", "CH")
            streets = vocab.STREETS.get(city.country_code, vocab.STREETS_DEFAULT)
            active = rng.random(n) >= INACTIVE_STORE_SHARE
            for i in range(n):
                z = int(zone[i])
                p = type_share * np.array([t.zone_weights[z] for t in types])
                st = types[int(rng.choice(len(types), p=p / p.sum()))]
                names = [t for t in st.names if german or not t.startswith("de:")]
                template = names[int(rng.integers(0, len(names)))].removeprefix("de:")
                name = template.format(place=places[i], city=city.name).replace(f"{city.name} {city.name}", city.name)
                street = streets[int(rng.integers(0, len(streets)))]
                number = int(rng.integers(1, 180))
                address = (
                    f"{number} {street}"
                    if city.country_code in ("GB", "US", "FR", "IE", "CA")
                    else f"{street} {number}"
                )
                stores.append(
                    Store(
                        id=uuid.UUID(bytes=uuid4_bytes(rng, 1)[0].tobytes()),
                        name=name,
                        store_type=st.key,
                        city=towns[i],
                        country_code=city.country_code,
                        address=address,
                        lat=round(float(lat[i]), 6),
                        lon=round(float(lon[i]), 6),
                        is_active=bool(active[i]),
                        currency=city.currency,
                        home_city=city.name,
                        distance_m=float(dist[i]),
                        zone=geo.ZONES[z],
                    )
                )
        return stores

    # ---- listings -------------------------------------------------------------------------------------------
    def _listing_setup(self, rng: np.random.Generator) -> None:
        """Per store type: the products it may carry (by popularity) and the cumulative weights to sample them;
        per store: its listing count; per product: a home store, so every product is listed somewhere."""
        plan = self.plan
        self._carry: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for t in vocab.STORE_TYPES:
            depts = np.array([self._dept_index[d] for d in t.departments])
            idx = np.flatnonzero(np.isin(plan.department, depts)).astype(np.int32)
            self._carry[t.key] = (idx, np.cumsum(plan.weight[idx]))
        factors = np.array([self._store_types[s.store_type].listing_factor for s in self.stores])
        noise = rng.lognormal(0.0, 0.35, len(self.stores))
        raw = factors * noise
        wanted = raw / max(raw.mean(), 1e-9) * self.scale.listings_per_store if len(raw) else raw
        avail = np.array([len(self._carry[s.store_type][0]) for s in self.stores])
        self.listing_counts = np.minimum(np.round(wanted), np.floor(avail * 0.85)).astype(np.int64)
        # Home stores: each product is listed by at least one store that carries its department.
        n_dept = len(vocab.DEPARTMENTS)
        carriers: list[np.ndarray] = []
        for d in range(n_dept):
            name = vocab.DEPARTMENTS[d].name
            carriers.append(
                np.array(
                    [i for i, s in enumerate(self.stores) if name in self._store_types[s.store_type].departments],
                    dtype=np.int64,
                )
            )
        home = np.full(self.n_products, -1, dtype=np.int64)
        for d in range(n_dept):
            members = np.flatnonzero(plan.department == d)
            if len(carriers[d]) and len(members):
                home[members] = carriers[d][rng.integers(0, len(carriers[d]), len(members))]
        order = np.argsort(home, kind="stable")
        self._home_order = order.astype(np.int32)
        self._home_bounds = np.searchsorted(home[order], np.arange(len(self.stores) + 1))

    def _store_listings(self, s: int) -> ListingChunk:
        store = self.stores[s]
        rng = np.random.default_rng([self.seed, 4, s])
        idx, cum = self._carry[store.store_type]
        k = int(self.listing_counts[s])
        chosen = np.zeros(0, dtype=np.int32)
        if k > 0 and len(idx):
            total = float(cum[-1])
            m = int(k * 1.3) + 16
            uniq: np.ndarray = np.zeros(0, dtype=np.int64)
            for _ in range(12):
                # Sorted keys make searchsorted walk the cumulative weights once instead of m random probes.
                draws = np.searchsorted(cum, np.sort(rng.random(m)) * total, side="right")
                uniq = np.union1d(uniq, np.minimum(draws, len(idx) - 1))
                if len(uniq) >= k:
                    break
                m *= 2
            if len(uniq) > k:
                uniq = uniq[np.sort(rng.choice(len(uniq), k, replace=False))]
            chosen = idx[uniq]
        home = self._home_order[self._home_bounds[s] : self._home_bounds[s + 1]]
        products = np.union1d(chosen, home).astype(np.int32)
        n = len(products)
        fx = geo.FX_PER_EUR.get(store.currency, 1.0)
        price = charm_price(
            self.plan.base_price[products] * fx * rng.uniform(1 - PRICE_SPREAD, 1 + PRICE_SPREAD, n), fx
        )
        qty = np.minimum(rng.geometric(0.07, n), 400).astype(np.int32)
        qty[rng.random(n) < OUT_OF_STOCK_SHARE] = 0
        active = rng.random(n) >= INACTIVE_LISTING_SHARE
        return ListingChunk(uuid4_bytes(rng, n), np.full(n, s, dtype=np.int32), products, price, qty, active)

    def iter_listings(self, stores_per_chunk: int = 100) -> Iterator[ListingChunk]:
        for start in range(0, len(self.stores), stores_per_chunk):
            stop = min(start + stores_per_chunk, len(self.stores))
            yield ListingChunk.concat([self._store_listings(s) for s in range(start, stop)])

    def listings(self) -> ListingChunk:
        return ListingChunk.concat(list(self.iter_listings()))

    @property
    def expected_listings(self) -> int:
        """About how many listings iterating will give (the home-store top-up adds a few)."""
        return int(self.listing_counts.sum())


def generate(scale: Scale | str, seed: int) -> Marketplace:
    """The marketplace for (scale, seed): the same arguments always give the same data."""
    return Marketplace(get_scale(scale) if isinstance(scale, str) else scale, seed)
