"""Deterministic generation of a local-commerce marketplace: categories, products, stores and listings.

Everything follows from (scale, seed). Products are planned up front as numpy arrays (which leaf, item, variant,
size, brand, price, popularity) and turned into strings only when iterated, in chunks; listings are generated
store by store from a generator seeded by (seed, store index), so any chunking yields the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from . import geo, vocab
from .catalog import build_categories, slugify
from .draws import charm_price, largest_remainder, uuid4_bytes
from .gtin import gtin13_strings
from .naming import make_product
from .plan import plan_products
from .records import Category, ListingChunk, Product, Store

# Re-exported: the package and the loader import these from here.
__all__ = [
    "SCALES",
    "Category",
    "ListingChunk",
    "Marketplace",
    "Product",
    "Scale",
    "Store",
    "charm_price",
    "generate",
    "get_scale",
    "slugify",
    "uuid4_bytes",
]


OUT_OF_STOCK_SHARE = 0.10
INACTIVE_LISTING_SHARE = 0.02
INACTIVE_STORE_SHARE = 0.03
PRICE_SPREAD = 0.15  # store prices within ±15% of the product's base price


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


class Marketplace:
    """A generated marketplace. Products are materialised on demand (`product`, `iter_products`), listings per
    store run (`iter_listings`); categories and stores are plain lists."""

    def __init__(self, scale: Scale, seed: int) -> None:
        self.scale = scale
        self.seed = seed
        self.categories, self._leaves = build_categories()
        self.plan = plan_products(scale.products, self._leaves, np.random.default_rng([seed, 1]))
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
        cols = (
            p.leaf[start:stop].tolist(),
            p.item[start:stop].tolist(),
            p.variant[start:stop].tolist(),
            p.size[start:stop].tolist(),
            p.colour[start:stop].tolist(),
            p.material[start:stop].tolist(),
            p.brand[start:stop].tolist(),
        )
        styles = p.style[start:stop].tolist()
        prices = p.base_price[start:stop].tolist()
        return [
            make_product(
                self._leaves[lf_i],
                picks,
                styles[j],
                prices[j],
                uuid.UUID(bytes=ids[16 * j : 16 * j + 16]),
                gtins[j],
            )
            for j, (lf_i, *picks) in enumerate(zip(*cols, strict=True))
        ]

    def product(self, i: int) -> Product:
        return self.products(i, i + 1)[0]

    def iter_products(self, chunk: int = 20_000) -> Iterator[list[Product]]:
        for start in range(0, self.n_products, chunk):
            yield self.products(start, start + chunk)

    # ---- stores ---------------------------------------------------------------------------------------------
    def _make_stores(self, rng: np.random.Generator) -> list[Store]:
        shares = np.array([s for _, s in self.scale.cities], dtype=np.float64)
        per_city = largest_remainder(self.scale.stores, shares)
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
