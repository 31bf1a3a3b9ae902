"""The marketplace generator: deterministic, realistic, fast; and its bulk loader against a real database."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from benchmarks.datagen import Scale, generate, gtin_check_digit, is_valid_gtin
from benchmarks.datagen.geo import core_radius_km

TINY = Scale("tiny", products=600, stores=60, listings_per_store=80)


@pytest.fixture(scope="module")
def tiny():
    return generate(TINY, seed=7)


@pytest.fixture(scope="module")
def demo():
    return generate("demo", seed=42)


def test_same_seed_same_data(tiny) -> None:
    again = generate(TINY, seed=7)
    assert again.categories == tiny.categories
    assert again.stores == tiny.stores
    assert again.products() == tiny.products()
    a, b = tiny.listings(), again.listings()
    for col in ("id_bytes", "store_idx", "product_idx", "price", "quantity", "is_active"):
        assert np.array_equal(getattr(a, col), getattr(b, col)), col


def test_chunking_does_not_change_data(tiny) -> None:
    whole = tiny.listings()
    pieces = [c for c in tiny.iter_listings(stores_per_chunk=7)]
    assert np.array_equal(np.concatenate([c.product_idx for c in pieces]), whole.product_idx)
    assert np.array_equal(np.concatenate([c.price for c in pieces]), whole.price)
    assert [p for chunk in tiny.iter_products(chunk=77) for p in chunk] == tiny.products()


def test_other_seed_other_data(tiny) -> None:
    other = generate(TINY, seed=8)
    assert [p.id for p in other.products()] != [p.id for p in tiny.products()]
    assert [s.id for s in other.stores] != [s.id for s in tiny.stores]


def test_gtin_check_digit_known_codes() -> None:
    assert gtin_check_digit("400638133393") == 1  # 4006381333931
    assert gtin_check_digit("501234567890") == 0
    assert is_valid_gtin("4006381333931")
    assert is_valid_gtin("036000291452")  # UPC-A
    assert is_valid_gtin("96385074")  # EAN-8
    assert not is_valid_gtin("4006381333932")
    assert not is_valid_gtin("40063813339a")
    assert not is_valid_gtin("123")


def test_gtins_are_valid_and_unique(demo) -> None:
    gtins = [p.gtin for p in demo.products()]
    assert all(len(g) == 13 and is_valid_gtin(g) for g in gtins)
    assert len(set(gtins)) == len(gtins)


def test_category_tree_shape(demo) -> None:
    cats = demo.categories
    assert 150 <= len(cats) <= 300
    ids = {c.id for c in cats}
    assert len(ids) == len(cats)
    roots = [c for c in cats if c.parent_id is None]
    assert 15 <= len(roots) <= 30
    assert all(c.parent_id is None or c.parent_id in ids for c in cats)
    # Parents come before children (a COPY in list order satisfies the foreign key).
    seen: set[int] = set()
    for c in cats:
        assert c.parent_id is None or c.parent_id in seen
        seen.add(c.id)
    names = {c.name for c in roots}
    for wanted in (
        "Grocery",
        "Fresh Produce",
        "Pharmacy & Health",
        "Plumbing",
        "Electrical & Lighting",
        "Pets",
        "Garden",
    ):
        assert wanted in names
    # Sibling names are unique (uq_category_parent_id_name), and every product sits on a leaf.
    assert len({(c.parent_id, c.name) for c in cats}) == len(cats)
    parents = {c.parent_id for c in cats}
    assert all(p.category_id not in parents for p in demo.products())
    assert max(len(c.path) for c in cats) == 3


def test_names_read_like_listings(demo) -> None:
    products = demo.products()
    bad = re.compile(r"lorem|ipsum|dolor sit|product \d+|item \d+|\{|\}|\bNone\b|  ", re.IGNORECASE)
    for p in products:
        assert not bad.search(p.name), p.name
        assert not bad.search(p.description), p.description
        assert p.name == p.name.strip() and p.brand and len(p.description) > 30
        assert not p.name.startswith(("+", ",", " ")) and not p.name.endswith(",")
    # The (name, brand, size) combinations mostly differ, and names are varied.
    combos = Counter((p.name, p.brand, p.attributes.get("size")) for p in products)
    assert sum(n - 1 for n in combos.values()) < 0.01 * len(products)
    assert len({p.name for p in products}) > 0.7 * len(products)


def test_demo_has_the_products_tests_rely_on(demo) -> None:
    by_leaf: dict[str, list[str]] = {}
    for p in demo.products():
        by_leaf.setdefault(p.category_path[-1], []).append(p.name)
    names = " | ".join(p.name for p in demo.products()).lower()
    assert "tap washer" in names and "faucet repair kit" in names
    assert "oat drink" in names and "oat milk" in names
    assert "paracetamol" in names and "ibuprofen" in names
    assert any("Tap Washer" in n for n in by_leaf["Tap Repair"])
    assert any("Oat" in n for n in by_leaf["Plant-Based Drinks"])
    # They are popular: listed by several stores.
    listings = demo.listings()
    counts = np.bincount(listings.product_idx, minlength=demo.n_products)
    for i, p in enumerate(demo.products()[:10]):
        assert counts[i] >= 3, p.name


def test_store_density_falls_with_distance(demo) -> None:
    stores = demo.stores
    assert len(stores) == 150
    dist_km = np.array([s.distance_m for s in stores]) / 1000
    core = core_radius_km(demo.cities[0].population)
    inner = (dist_km < core).sum() / (np.pi * core**2)
    ring = ((dist_km >= core) & (dist_km < 3 * core)).sum() / (np.pi * ((3 * core) ** 2 - core**2))
    outer = ((dist_km >= 20) & (dist_km < 60)).sum() / (np.pi * (60**2 - 20**2))
    assert inner > 3 * ring > 0
    assert ring > outer > 0
    assert np.median(dist_km) < 8
    assert dist_km.max() < 62
    # Real coordinates: Berlin's centre is near 52.52 N, 13.40 E.
    assert abs(np.median([s.lat for s in stores]) - 52.52) < 0.05
    assert abs(np.median([s.lon for s in stores]) - 13.40) < 0.08


def test_stores_are_believable(demo) -> None:
    stores = demo.stores
    types = Counter(s.store_type for s in stores)
    assert len(types) >= 8
    assert all(re.fullmatch(r"[A-Z]{2}", s.country_code) for s in stores)
    assert all(s.currency == "EUR" for s in stores)
    assert all(re.search(r"\d", s.address) for s in stores)
    assert not any("{" in s.name for s in stores)
    # Neighbourhood names near the centre, nearby towns further out.
    joined = " ".join(s.name for s in stores)
    assert sum(nb in joined for nb in ("Mitte", "Kreuzberg", "Neukölln", "Prenzlauer Berg", "Friedrichshain")) >= 2
    assert len({s.name for s in stores}) > 0.8 * len(stores)
    assert 0.9 < np.mean([s.is_active for s in stores]) < 1.0


def test_store_types_carry_their_departments(demo) -> None:
    from benchmarks.datagen.vocab import DEPARTMENTS, STORE_TYPES

    carries = {t.key: set(t.departments) for t in STORE_TYPES}
    listings = demo.listings()
    depts = demo.plan.department[listings.product_idx]
    for s_idx, d in zip(listings.store_idx.tolist(), depts.tolist(), strict=True):
        assert DEPARTMENTS[d].name in carries[demo.stores[s_idx].store_type]


def test_listing_statistics(demo) -> None:
    listings = demo.listings()
    n = len(listings)
    assert 0.9 * demo.scale.target_listings < n < 1.2 * demo.scale.target_listings
    assert 0.08 < (listings.quantity == 0).mean() < 0.12
    assert 0.005 < (~listings.is_active).mean() < 0.05
    assert (listings.price > 0).all()
    assert np.allclose(listings.price, np.round(listings.price, 2))
    # One listing per (store, product); ids unique.
    pairs = listings.store_idx.astype(np.int64) * demo.n_products + listings.product_idx
    assert len(np.unique(pairs)) == n
    assert len({bytes(r) for r in listings.id_bytes}) == n
    # Prices stay within ±15% of the base price (plus shelf-price rounding).
    base = demo.plan.base_price[listings.product_idx]
    ratio = listings.price / base
    assert ratio.min() > 0.78 and ratio.max() < 1.22
    # Every product is listed somewhere; popularity is Zipf-like (heavy head, long tail).
    counts = np.bincount(listings.product_idx, minlength=demo.n_products)
    assert (counts > 0).all()
    rank = np.argsort(-demo.plan.weight)
    top = counts[rank[: len(rank) // 10]].mean()
    bottom = counts[rank[len(rank) // 2 :]].mean()
    assert top > 3 * bottom


def test_multi_city_currencies() -> None:
    scale = Scale(
        "two", products=300, stores=40, listings_per_store=30, cities=(("Berlin,DE", 0.7), ("London,GB", 0.3))
    )
    m = generate(scale, seed=1)
    by_city = Counter((s.home_city, s.currency, s.country_code) for s in m.stores)
    assert by_city[("Berlin", "EUR", "DE")] == 28
    assert by_city[("London", "GBP", "GB")] == 12
    assert not any(s.name.startswith(("Späti", "Apotheke", "Bäckerei")) for s in m.stores if s.country_code == "GB")
