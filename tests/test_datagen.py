"""The marketplace generator: deterministic, realistic, fast; and its bulk loader against a real database."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from search_service.demo import Scale, generate, gtin_check_digit, is_valid_gtin
from search_service.demo.geo import core_radius_km

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


def test_a_name_says_its_words_once(demo) -> None:
    # "Smoked Smoked Salmon", "Cordless 18 V Cordless Lawn Mower": a variant or material repeating a word of the
    # item, which the text rank counted twice. A size's unit may repeat one ("Coffee Pods 36 pods"), as shops write.
    repeated = []
    for p in demo.products():
        size = p.attributes.get("size", "")
        head = p.name.split(",")[0].removesuffix(size).strip()
        words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]{2,}", head)]
        if len(words) != len(set(words)):
            repeated.append(p.name)
    assert not repeated, repeated[:10]


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
    from search_service.demo.vocab import DEPARTMENTS, STORE_TYPES

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


# ---- loading into a real database ------------------------------------------------------------------------------

LOAD = Scale("load", products=400, stores=30, listings_per_store=40)


def _indexes(url: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(url) as c:
        rows = c.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename IN ('category', 'store', 'product_master', 'store_product')"
        ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def _counts(url: str) -> dict[str, int]:
    import psycopg

    tables = ("category", "store", "product_master", "store_product", "ai_task", "history_store_product")
    with psycopg.connect(url) as c:
        return {t: int(c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}  # type: ignore[index]


def test_load_copies_everything_and_restores_indexes(fresh_db_url: str) -> None:
    from search_service.demo.load import load

    market = generate(LOAD, seed=3)
    before = _indexes(fresh_db_url)
    assert any("hnsw" in d for d in before.values()) and any("gist" in d for d in before.values())
    report = load(fresh_db_url, market, quiet=True)
    assert not report.skipped
    listings = market.listings()
    counts = _counts(fresh_db_url)
    assert counts["category"] == len(market.categories)
    assert counts["store"] == len(market.stores)
    assert counts["product_master"] == market.n_products
    assert counts["store_product"] == len(listings)
    # Without vectors, the schema's trigger queues one embedding task per product; a seed writes no audit rows.
    assert counts["ai_task"] == market.n_products
    assert counts["history_store_product"] == 0
    # The very same indexes exist afterwards, with the very same definitions.
    assert _indexes(fresh_db_url) == before
    for table in ("category", "store", "product_master", "store_product"):
        assert report.tables[table]["rows"] == counts[table]
        assert report.tables[table]["rows_per_s"] > 0

    import psycopg

    with psycopg.connect(fresh_db_url) as c:
        # The audit trigger is back on; the identity sequence continues after the copied ids.
        assert c.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'trg_store_product_audit_insert'"
        ).fetchone() == ("O",)
        new_id = c.execute("INSERT INTO category (name) VALUES ('New Root') RETURNING id").fetchone()
        assert new_id is not None and new_id[0] > len(market.categories)
        c.rollback()
        # Rows round-trip: a product and a store as generated.
        p = market.product(0)
        row = c.execute(
            "SELECT name, brand, gtin, category_id, attributes FROM product_master WHERE id = %s", (p.id,)
        ).fetchone()
        assert row == (p.name, p.brand, p.gtin, p.category_id, p.attributes)
        s = market.stores[0]
        row = c.execute(
            "SELECT name, store_type, city, ST_Y(location::geometry), ST_X(location::geometry) "
            "FROM store WHERE id = %s",
            (s.id,),
        ).fetchone()
        assert row is not None and row[:3] == (s.name, s.store_type, s.city)
        assert abs(row[3] - s.lat) < 1e-6 and abs(row[4] - s.lon) < 1e-6
        oos = c.execute("SELECT avg((quantity = 0)::int) FROM store_product").fetchone()
        assert oos is not None and 0.05 < float(oos[0]) < 0.15


def test_load_with_vectors_writes_them_in_the_copy(fresh_db_url: str) -> None:
    import psycopg

    from embeddings.text import compose_text, text_hash
    from search_service.demo.load import load

    market = generate(LOAD, seed=4)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((market.n_products, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    report = load(fresh_db_url, market, vectors=vectors, model_id="test-model@1", quiet=True)
    assert report.vectors == market.n_products
    with psycopg.connect(fresh_db_url) as c:
        assert c.execute("SELECT count(*) FROM ai_task").fetchone() == (0,)
        assert c.execute(
            "SELECT count(*) FROM product_master WHERE ai_vector IS NULL OR ai_model <> 'test-model@1' "
            "OR ai_embedded_at IS NULL"
        ).fetchone() == (0,)
        p = market.product(5)
        row = c.execute("SELECT ai_vector::text, ai_text_hash FROM product_master WHERE id = %s", (p.id,)).fetchone()
        assert row is not None
        stored = np.array([float(x) for x in row[0].strip("[]").split(",")], dtype=np.float32)
        assert np.allclose(stored, vectors[5], atol=1e-6)
        text = compose_text(
            name=p.name,
            brand=p.brand,
            category_path=p.category_path,
            description=p.description,
            attributes=p.attributes,
        )
        assert row[1] == text_hash(text)


def test_seed_is_idempotent(fresh_db_url: str, tmp_path) -> None:
    from search_service.demo.seed import seed

    first = seed(fresh_db_url, LOAD, 5, embed=False, cache_dir=tmp_path, quiet=True)
    assert not first.skipped
    indexes = _indexes(fresh_db_url)
    counts = _counts(fresh_db_url)
    second = seed(fresh_db_url, LOAD, 5, embed=False, cache_dir=tmp_path, quiet=True)
    assert second.skipped
    assert _counts(fresh_db_url) == counts
    assert _indexes(fresh_db_url) == indexes


def test_vector_cache_is_reused(tmp_path) -> None:
    from search_service.demo.seed import product_vectors, vector_cache_path

    class CountingEncoder:
        """Stands in for the model to count encode calls; the vectors' content is not under test here."""

        model_id = "counting@1"
        dim = 384

        def __init__(self) -> None:
            self.calls = 0

        def encode(self, texts):
            self.calls += 1
            out = np.zeros((len(texts), 384), dtype=np.float32)
            out[:, 0] = [len(t) for t in texts]
            return out

    market = generate(Scale("cache", products=120, stores=10, listings_per_store=10), seed=9)
    enc = CountingEncoder()
    first = product_vectors(market, enc, tmp_path, quiet=True)  # type: ignore[arg-type]
    assert first.shape == (120, 384) and enc.calls >= 1
    path = vector_cache_path(tmp_path, market.scale, 9, enc.model_id)
    assert path.exists() and "seed9" in path.name and "counting" in path.name
    calls = enc.calls
    again = product_vectors(market, enc, tmp_path, quiet=True)  # type: ignore[arg-type]
    assert enc.calls == calls
    assert np.array_equal(first, again)


def _schema(url: str) -> tuple[dict[str, str], dict[str, str], str]:
    """Indexes and constraints of the public schema, and the audit trigger's state."""
    import psycopg

    with psycopg.connect(url) as c:
        cons = c.execute(
            "SELECT conrelid::regclass::text || '.' || conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace"
        ).fetchall()
        trig = c.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = 'trg_store_product_audit_insert'").fetchone()
    assert trig is not None
    return _indexes(url), {str(r[0]): str(r[1]) for r in cons}, str(trig[0])


def test_parallel_load_restores_indexes_constraints_and_trigger(fresh_db_url: str) -> None:
    from search_service.demo.load import load

    before = _schema(fresh_db_url)
    assert before[2] == "O"
    market = generate(LOAD, seed=6)
    report = load(fresh_db_url, market, quiet=True, workers=3)
    assert not report.skipped and report.constraints_readded and report.indexes_recreated
    assert _schema(fresh_db_url) == before
    counts = _counts(fresh_db_url)
    assert counts["product_master"] == market.n_products == counts["ai_task"]
    assert counts["store_product"] == len(market.listings())
    assert counts["history_store_product"] == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_failed_load_leaves_the_schema_as_it_was(fresh_db_url: str, monkeypatch, workers: int) -> None:
    import importlib

    load_mod = importlib.import_module("search_service.demo.load")  # the module; the package's `load` is the function

    def broken(*args, **kwargs):
        raise RuntimeError("listing copy failed")

    before = _schema(fresh_db_url)
    monkeypatch.setattr(load_mod, "_copy_listing_range", broken)
    with pytest.raises(RuntimeError, match="listing copy failed"):
        load_mod.load(fresh_db_url, generate(LOAD, seed=6), quiet=True, workers=workers)
    assert _schema(fresh_db_url) == before
    if workers == 1:  # one transaction: nothing stays behind
        assert _counts(fresh_db_url)["product_master"] == 0


def test_demo_presets_are_real_berlin_neighbourhoods(demo) -> None:
    from search_service.demo import DEMO_CITY, neighbourhoods
    from search_service.demo.geo import haversine_m

    assert DEMO_CITY["name"] == "Berlin"
    hoods = neighbourhoods("Berlin")
    names = {n for n, _, _ in hoods}
    assert {"Mitte", "Kreuzberg", "Prenzlauer Berg", "Neukölln", "Spandau", "Köpenick"} <= names
    for _, lat, lon in hoods:
        assert haversine_m(DEMO_CITY["lat"], DEMO_CITY["lon"], lat, lon) < 25_000
    # Stores cluster around the neighbourhoods: most Berlin stores are within 1.5 km of one.
    near = [
        min(haversine_m(s.lat, s.lon, lat, lon) for _, lat, lon in hoods) < 1500
        for s in demo.stores
        if s.home_city == "Berlin" and s.zone == "core"
    ]
    assert sum(near) > 0.6 * len(near)
    assert neighbourhoods("Nowhere") == []


def test_seeded_vectors_are_what_the_worker_would_write(fresh_db_url: str, tmp_path) -> None:
    """Real model: a seed with inline vectors leaves nothing stale for `reembed --stale` (same text, same hash,
    same model id), and the stored vectors are the encoder's vectors of the worker's text."""
    import psycopg
    from pgvector.psycopg import register_vector

    from embeddings import queue
    from embeddings.encoder import DEFAULT_CACHE_DIR, EncoderConfig, load_encoder
    from embeddings.reembed import reembed
    from embeddings.worker import product_text
    from search_service.demo.seed import seed

    encoder = load_encoder(EncoderConfig(backend="onnx", cache_dir=DEFAULT_CACHE_DIR))
    scale = Scale("embedded", products=120, stores=12, listings_per_store=20)
    report = seed(fresh_db_url, scale, 11, embed=True, encoder=encoder, cache_dir=tmp_path, quiet=True)
    assert report.vectors == 120 and report.ai_tasks == 0
    assert list((tmp_path / "vectors").glob("*.npy"))
    stale = reembed(fresh_db_url, encoder, mode="stale", cache_dir=tmp_path, progress=False)
    assert (stale.scanned, stale.written) == (120, 0)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        register_vector(conn)
        ids = [r[0] for r in conn.execute("SELECT id FROM product_master ORDER BY id LIMIT 5")]
        products = queue.load_products(conn, ids)
        stored = dict(conn.execute("SELECT id, ai_vector FROM product_master WHERE id = ANY(%s)", (ids,)).fetchall())
    for pid, product in products.items():
        expected = encoder.encode([product_text(product)])[0]
        vec = stored[pid]
        assert float(np.dot(expected, vec.to_numpy() if hasattr(vec, "to_numpy") else np.asarray(vec))) > 0.999
