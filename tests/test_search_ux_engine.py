"""`engine.ux.ux_search` end to end on the catalogue of test_search_ux: the result set facets count (keyword: every
match; semantic: the top PLINQY_FACET_DEPTH by similarity), fulfilment scopes and `delivers`, viewports, explain."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import psycopg
import pytest
from pgvector.asyncpg import register_vector
from pgvector.psycopg import register_vector as register_vector_psycopg

from search_service.engine import facet_vectors, geo_areas, store_locator
from search_service.engine.candidates import CandidateSets
from search_service.engine.facet_labels import ProductLabels
from search_service.engine.facet_stock import StockBuckets
from search_service.engine.facets import FACETS, FacetConfig, FacetFilters
from search_service.engine.scope import Scope
from search_service.engine.search import DEFAULT_CONFIG, EngineConfig, SearchParams, search
from search_service.engine.store_locator import StoreLocator
from search_service.engine.ux import UxParams, needs_ux, ux_search
from search_service.engine.vectors import VectorCache
from tests.test_search_ux import (
    CENTER,
    Catalogue,
    _call,
    _destination,
    _got,
    _near,
    _oracle,
    _qualifying,
    _seed,
    run,
)


def seeded_with_vectors(url: str, seed: int = 7, vector_seed: int = 3) -> Catalogue:
    """test_search_ux's catalogue, each product with a random unit vector."""
    import random

    with psycopg.connect(url, autocommit=True) as conn:
        catalogue = _seed(conn, random.Random(seed))
        register_vector_psycopg(conn)
        rng = np.random.default_rng(vector_seed)
        for pid in catalogue.products:
            v = rng.normal(size=384).astype(np.float32)
            conn.execute("UPDATE product_master SET ai_vector = %s WHERE id = %s", (v / np.linalg.norm(v), pid))
    catalogue.url = url
    return catalogue


@pytest.fixture(scope="module")
def cat(db_url: str) -> Iterator[Catalogue]:
    yield seeded_with_vectors(db_url)


async def _ux(
    url: str, params: SearchParams, ux: UxParams, vector: Any = None, depth: int = 1000, copy: bool = False,
    sets: bool = True, config: EngineConfig = DEFAULT_CONFIG, stores: bool = False, stock: bool = False,
    shared: Path | None = None, labels: bool = False, floor: float = 0.0,
) -> Any:  # fmt: skip
    conn = await asyncpg.connect(url)
    await register_vector(conn)
    try:
        locator = None
        if stores:  # the stores in memory: a radius holding most of them is probed, not sent (radius_probe)
            locator = StoreLocator()
            await locator.load(conn)
        buckets = None
        if stock:  # the listings in stock by product: a wide set's listed products from memory
            buckets = StockBuckets()
            await buckets.load(conn)
        held = None
        if labels:  # the API's in-memory product labels: facet_memory counts, and the inactive products are known
            held = ProductLabels()
            await held.load(conn)
        vectors = None  # the similarities of random vectors are noise: no floor for a sort (FacetConfig(depth, 0))
        if copy:  # the API's in-memory vector copy: the facet set comes from facet_vectors
            vectors = VectorCache(shared_dir=shared)  # shared: float16 rows, as `serve` maps them
            await vectors.load(conn)
            vectors.candidates.stale = not sets  # without the candidate sets, SQL lists the products in scope
        return await ux_search(
            conn, params, vector, ux, config=config, facet_config=FacetConfig(depth, floor, -1.0), vectors=vectors,
            stores=locator, stock=buckets, labels=held,
        )  # fmt: skip
    finally:
        await conn.close()


def _matches(cat: Catalogue, word: str) -> list[uuid.UUID]:
    return [p for p, (name, _b, _c) in cat.products.items() if word in name.lower().split()]


def test_needs_ux_only_for_the_new_parameters() -> None:
    plain = SearchParams(q="x")
    assert not needs_ux(UxParams(), plain)
    assert needs_ux(UxParams(facets=("brand",)), plain) and needs_ux(UxParams(sort="price"), plain)
    assert needs_ux(UxParams(fulfilment="delivery"), plain) and needs_ux(UxParams(), SearchParams(q="x", brand="A"))


def _probe_every_radius(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every radius counts as holding most stores (store_locator.radius_pays); the statements bound with the radius
    to probe, by name."""
    monkeypatch.setattr(store_locator, "RADIUS_PROBE_MIN_STORES", 1)
    monkeypatch.setattr(store_locator, "RADIUS_PROBE_MIN_SHARE", 0.0)
    probed: list[str] = []
    bind = Scope.bind

    def spy(self: Scope, stmt: Any, **own: Any) -> tuple[Any, ...]:
        if self.near is not None and "near_radius_m" in stmt.params:
            probed.append(stmt.name)
        return bind(self, stmt, **own)

    monkeypatch.setattr(Scope, "bind", spy)
    return probed


@pytest.mark.parametrize("near", [False, True])
def test_keyword_facets_count_every_match_in_scope(cat: Catalogue, near: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also with the radius probed per listing (near), as a radius holding most stores is."""
    probed = _probe_every_radius(monkeypatch) if near else []
    params = SearchParams(q="drill", lat=CENTER[0], lon=CENTER[1], radius_m=20_000, mode="keyword", limit=100)
    got = run(_ux(cat.url, params, UxParams(facets=FACETS), stores=near))
    assert ("rank_keyword" in probed) is near
    scope = _near(cat, 20_000)
    want = _oracle(cat, _matches(cat, "drill"), scope, FacetFilters())
    assert got.total == len(want["results"]) > 5
    assert {h.product.id for h in got.results} == want["results"]
    assert _got(got) == want["counts"]


def test_a_common_word_in_keyword_facets_is_counted_in_scope(cat: Catalogue) -> None:
    """`drill` past the keyword cap (3 here; typo tolerance off, whose looser matches are capped apart): the set is
    ranked in scope on the candidate sets, so every match there is counted, near a point and in a viewport (the
    catalogue's first 3 matches were)."""
    config = replace(DEFAULT_CONFIG, keyword_cap=3, typo_tolerance=False)
    near = SearchParams(q="drill", lat=CENTER[0], lon=CENTER[1], radius_m=20_000, mode="keyword", limit=100)
    box = geo_areas.parse_bbox("13.2,52.4,13.6,52.6")
    inside = {s for s, (lat, lon, a) in cat.stores.items() if a and box.contains(lon, lat)}
    for params, ux, scope in (
        (near, UxParams(facets=FACETS), _near(cat, 20_000)),
        (replace(near, lat=None, lon=None), UxParams(facets=FACETS, bbox=box), inside),
    ):
        got = run(_ux(cat.url, params, ux, copy=True, config=config))
        want = _oracle(cat, _matches(cat, "drill"), scope, FacetFilters())
        assert got.total == len(want["results"]) > 5, ux
        assert {h.product.id for h in got.results} == want["results"] and _got(got) == want["counts"], ux


@pytest.mark.parametrize("mode", ["keyword", "semantic"])
def test_a_chosen_store_shows_every_product_it_has(cat: Catalogue, mode: str) -> None:
    """The set is ranked over the chosen store (it held only those of its products among the scope's 1000 most
    relevant: 5 here), the other facets count it, and the store facet still counts every store in scope."""
    scope = _near(cat, 20_000)
    drills = _matches(cat, "drill")
    store = max(scope, key=lambda s: sum(1 for t, p, _price in _qualifying(cat, scope) if t == s and p in drills))
    params = SearchParams(q="drill", lat=CENTER[0], lon=CENTER[1], radius_m=20_000, mode=mode, limit=100)
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384) if mode == "semantic" else None
    every = run(_ux(cat.url, params, UxParams(facets=FACETS), vector, depth=5))
    got = run(_ux(cat.url, params, UxParams(facets=FACETS, store_id=store), vector, depth=5))
    sold = {p for t, p, _price in _qualifying(cat, scope) if t == store}
    if mode == "keyword":
        sold &= set(drills)
    ids = [h.product.id for h in got.results]
    if mode == "keyword":  # a keyword set is every match, whatever the depth: every drill the store has
        assert len(sold) > 5 and set(ids) == sold
    else:
        assert len(sold) > 5 and len(ids) == 5 and set(ids) <= sold  # the store's 5 best
        assert not set(ids) <= {h.product.id for h in every.results}, "only the scope's 5 best that it has"
    assert got.facets.store == every.facets.store


@pytest.mark.parametrize("ux", [UxParams(sort="price"), UxParams(sort="distance"), UxParams()])
def test_a_sorted_semantic_set_ranks_with_its_filters(cat: Catalogue, ux: UxParams) -> None:
    """A sort or a brand without facets: the set is the brand's 5 most similar products, not those among the
    scope's 5 most similar (the in-memory facet set left the filter to facet_set, which kept 1 of 5 or none)."""
    scope = _near(cat, 20_000)
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
    params = SearchParams(q="", lat=CENTER[0], lon=CENTER[1], radius_m=20_000, mode="semantic", limit=100)
    chosen = replace(params, brand="Bolt")
    got = run(_ux(cat.url, chosen, ux, vector, depth=5, copy=True))
    plain = run(_ux(cat.url, params, UxParams(sort="price"), vector, depth=5, copy=True))
    bolts = {p for _s, p, _price in _qualifying(cat, scope) if cat.products[p][1] == "Bolt"}
    assert len(bolts) > 5 and len(got.results) == 5 and {h.product.id for h in got.results} <= bolts
    assert not {h.product.id for h in got.results} <= {h.product.id for h in plain.results}
    best = run(_call(cat.url, _most_similar, sorted(bolts), vector, 5))  # the naive plan
    got_ids = [h.product.id for h in got.results]
    assert (sorted(got_ids) if ux.sort != "relevance" else got_ids) == (
        sorted(best) if ux.sort != "relevance" else best
    )


async def _most_similar(conn: asyncpg.Connection, ids: list[uuid.UUID], vector: np.ndarray, k: int) -> list[uuid.UUID]:
    await register_vector(conn)
    rows = await conn.fetch(
        "SELECT id FROM product_master WHERE id = ANY($1) ORDER BY ai_vector <=> $2, id LIMIT $3", ids, vector, k
    )
    return [r["id"] for r in rows]


def test_a_global_set_holds_only_products_in_stock_somewhere(cat: Catalogue) -> None:
    """Its depth counted products in stock nowhere, which facet_set then dropped (a total under the depth, and
    the cheapest product could be left out): ranked among those an active store has in stock, as the naive plan."""
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
    params = SearchParams(q="", mode="semantic", limit=100)
    got = run(_ux(cat.url, params, UxParams(facets=("brand",)), vector, depth=40, copy=True, stock=True))
    stocked = sorted({p for _s, p, _price in _qualifying(cat, None)})
    assert len(stocked) < len(cat.products)  # some products are in stock nowhere
    best = run(_call(cat.url, _most_similar, stocked, vector, 40))
    assert [h.product.id for h in got.results] == best[:40] and got.total == 40


@pytest.mark.parametrize(("radius_m", "sets"), [(None, True), (20_000.0, True), (20_000.0, False)])
def test_a_set_skips_inactive_products_and_stays_full(fresh_db_url: str, radius_m: float | None, sets: bool) -> None:
    """Products deactivated but still in stock counted toward the set's depth, and facet_set then dropped them: a
    total of depth - 3, the set's last places missing. The in-memory ranking skips what the labels hold inactive
    (global with the listing buckets, the candidate sets' union, the listed products gathered in SQL)."""
    cat = seeded_with_vectors(fresh_db_url, 11, 4)
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
    near = {} if radius_m is None else {"lat": CENTER[0], "lon": CENTER[1], "radius_m": radius_m}
    params = SearchParams(q="", mode="semantic", limit=100, **near)
    stocked = sorted({p for _s, p, _price in _qualifying(cat, None if radius_m is None else _near(cat, radius_m))})
    best = run(_call(fresh_db_url, _most_similar, stocked, vector, 43))
    off = [best[0], best[7], best[39]]
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute("UPDATE product_master SET is_active = false WHERE id = ANY(%s)", (off,))
    ux = UxParams(facets=("brand",))
    got = run(_ux(fresh_db_url, params, ux, vector, 40, True, sets=sets, stock=True, labels=True))
    assert len(stocked) > 43 and got.capped
    assert [h.product.id for h in got.results] == [p for p in best if p not in off] and got.total == 40


def test_facets_of_a_chosen_store_or_category_out_of_scope_count_the_scope(cat: Catalogue) -> None:
    """No result, and each facet counts the set without its own filter (the store facet every store in scope, the
    category facet every category), as an unknown brand or a price range with no product leaves them."""
    params = SearchParams(q="drill", lat=CENTER[0], lon=CENTER[1], radius_m=2_000, mode="keyword", limit=100)
    far = next(s for s in sorted(cat.stores) if cat.stores[s][2] and s not in _near(cat, 2_000))
    every = run(_ux(cat.url, params, UxParams(facets=FACETS)))
    store = run(_ux(cat.url, params, UxParams(facets=FACETS, store_id=far)))
    assert store.results == [] and store.facets.store == every.facets.store and every.facets.store
    category = run(_ux(cat.url, replace(params, category_id=987_654), UxParams(facets=FACETS)))
    assert category.results == [] and category.facets.category == every.facets.category and every.facets.category


@pytest.mark.parametrize(("radius_m", "mode"), [(20_000.0, "semantic"), (None, "semantic"), (20_000.0, "hybrid")])
def test_a_faceted_semantic_page_is_the_plain_searchs(
    cat: Catalogue, radius_m: float | None, mode: str, tmp_path: Path
) -> None:
    """The facet set ranks on the copy's float16 rows; products closer than their error are ordered by
    PostgreSQL's own similarity, as the plain search orders them (pages differed where two were that close)."""
    rng = np.random.default_rng(11)
    geo = {"lat": CENTER[0], "lon": CENTER[1], "radius_m": radius_m} if radius_m else {}
    q = "drill" if mode == "hybrid" else ""
    params = SearchParams(q=q, mode=mode, limit=100, **geo)  # type: ignore[arg-type]
    for _ in range(3):
        vector = rng.normal(size=384).astype(np.float32)
        faceted = run(_ux(cat.url, params, UxParams(facets=("brand",)), vector, copy=True, shared=tmp_path))
        plain = run(_plain(cat.url, params, vector))
        assert [h.product.id for h in faceted.results] == [h.product.id for h in plain.results]
        assert [h.score for h in faceted.results] == [h.score for h in plain.results]  # PostgreSQL's, both


def test_a_product_at_the_sort_floor_is_kept_or_cut_alike_with_facets_and_with_a_price_range(
    cat: Catalogue, tmp_path: Path
) -> None:
    """The set of a sort by price ranked on the copy's float16 rows, anchored on the copy's best; with a price range
    the engine's plans ranked it in PostgreSQL's scores, anchored on PostgreSQL's best. A product between the two
    floors was counted in its price bucket and cut by the range (`Milch` by price: 7 counted, 6 listed). The floor
    here is set between the two for the product the copy favours most."""
    params = SearchParams(q="", mode="semantic", limit=1000, lat=CENTER[0], lon=CENTER[1], radius_m=20_000)
    vector = np.random.default_rng(17).normal(size=384).astype(np.float32)
    every = run(_ux(cat.url, params, UxParams(sort="price", explain=True), vector, copy=True, shared=tmp_path))
    copy = {h.product.id: every.explain[h.product.id].vector_similarity for h in every.results}
    with psycopg.connect(cat.url) as conn:
        register_vector_psycopg(conn)
        rows = conn.execute(
            "SELECT id, 1 - (ai_vector <=> %s) FROM product_master WHERE id = ANY(%s)", (vector, list(copy))
        ).fetchall()
    exact = {pid: float(similarity) for pid, similarity in rows}
    best, best_copy = max(exact.values()), max(copy.values())
    at = max(copy, key=lambda pid: copy[pid] / best_copy - exact[pid] / best)
    assert exact[at] / best < copy[at] / best_copy  # the copy keeps it at a floor between the two, PostgreSQL not
    floor = (exact[at] / best + copy[at] / best_copy) / 2
    faceted = run(_ux(cat.url, params, UxParams(facets=("price",), sort="price"), vector, copy=True, shared=tmp_path,
                      floor=floor))  # fmt: skip
    ranged = run(_ux(cat.url, replace(params, min_price=Decimal(0)), UxParams(sort="price"), vector, copy=True,
                     shared=tmp_path, floor=floor))  # fmt: skip
    listed = {h.product.id for h in faceted.results}
    assert listed == {h.product.id for h in ranged.results} and 1 < len(listed) < len(copy)
    assert faceted.total == ranged.total == len(listed)
    assert at not in listed  # as PostgreSQL's scores place it


def test_a_sort_by_price_explains_and_scores_each_hit_as_relevance_does(cat: Catalogue) -> None:
    """Under a sort's floor the sides were fused after the cut: a hit's keyword rank and score were those among the
    products the floor kept (`tothpaste` by price: Sensitive Toothpaste 5th and 0.0295 by relevance, 3rd and 0.0159
    by price). A chosen brand with facets explains as the filtered search without them."""
    params = SearchParams(q="drill", mode="hybrid", limit=1000, lat=CENTER[0], lon=CENTER[1], radius_m=20_000)
    vector = np.random.default_rng(19).normal(size=384).astype(np.float32)
    for chosen in (params, replace(params, brand="Bolt")):
        relevance = run(_ux(cat.url, chosen, UxParams(facets=("brand",), explain=True), vector, floor=0.75))
        told = {h.product.id: (h.score, relevance.explain[h.product.id]) for h in relevance.results}
        for ux in (UxParams(facets=("brand",), sort="price", explain=True), UxParams(sort="price", explain=True)):
            price = run(_ux(cat.url, chosen, ux, vector, floor=0.75))
            assert 1 < len(price.results) < len(relevance.results), chosen.brand  # the floor cut some
            for h in price.results:
                assert (h.score, price.explain[h.product.id]) == told[h.product.id], (chosen.brand, ux.facets)


def test_a_hybrid_hit_explains_only_the_ranks_its_fusion_window_counted(cat: Catalogue) -> None:
    """A hit fused in a window on one side's rank alone: ranked to the page's window (relevance, no facets) the
    other side did not hold it, ranked deeper (facets, a sort) it told that side's place, which its score does not
    count (`milk`: keyword_rank null by relevance, 104 with facets or by price, the score 1/(60+65) either way)."""
    params = SearchParams(q="drill", mode="hybrid", limit=100, lat=CENTER[0], lon=CENTER[1], radius_m=25_000)
    vector = np.random.default_rng(29).normal(size=384).astype(np.float32)
    plain = run(_ux(cat.url, params, UxParams(explain=True), vector))
    told = {h.product.id: (h.score, plain.explain[h.product.id]) for h in plain.results}
    assert any(e.vector_similarity is None for _s, e in told.values())  # a hit fused on its keyword rank alone
    for ux in (UxParams(facets=("brand",), explain=True), UxParams(sort="price", explain=True)):
        result = run(_ux(cat.url, params, ux, vector))
        got = {h.product.id: (h.score, result.explain[h.product.id]) for h in result.results}
        both = got.keys() & told.keys()  # by price: the page's hits that relevance's page holds
        assert len(both) > 10 and {p: got[p] for p in both} == {p: told[p] for p in both}, ux


def _chosen(cat: Catalogue, choice: str) -> dict[str, Any]:
    """A chosen facet value as search parameters: a category (its subtree), a price range, a brand."""
    if choice == "category":
        return {"category_id": next(c for c, up in cat.parent.items() if up is None)}
    if choice == "price":
        return {"min_price": Decimal("5.00"), "max_price": Decimal("800.00")}
    return {"brand": "Bolt"}


@pytest.mark.parametrize(
    ("mode", "choice"),
    [("semantic", "category"), ("semantic", "price"), ("semantic", "brand"), ("hybrid", "category"),
     ("hybrid", "price")],
)  # fmt: skip
def test_a_chosen_value_with_facets_pages_and_scores_as_without(
    cat: Catalogue, mode: str, choice: str, tmp_path: Path
) -> None:
    """A category, price range or brand chosen with `facets`: each page, its scores and its explained similarities
    are those without facets. The set ranked on the copy's float16 rows left the page's window unsettled once a
    value was chosen: the copy's scores (0.5216504 for PostgreSQL's 0.5216603), and in hybrid the copy's order,
    where two products that close swapped places."""
    rng = np.random.default_rng(13)
    q = "drill" if mode == "hybrid" else ""
    params = SearchParams(
        q=q, mode=mode, limit=10, lat=CENTER[0], lon=CENTER[1], radius_m=25_000, **_chosen(cat, choice)
    )  # type: ignore[arg-type]
    for _ in range(3):
        vector = rng.normal(size=384).astype(np.float32)
        for offset in (0, 10):
            page = replace(params, offset=offset)
            faceted = run(
                _ux(cat.url, page, UxParams(facets=("brand",), explain=True), vector, copy=True, shared=tmp_path)
            )
            plain = run(_ux(cat.url, page, UxParams(explain=True), vector, copy=True, shared=tmp_path))
            assert len(plain.results) == 10
            assert [h.product.id for h in faceted.results] == [h.product.id for h in plain.results], offset
            assert [h.score for h in faceted.results] == [h.score for h in plain.results], offset
            for pid, explained in plain.explain.items():  # hybrid: None past the plain vector side's window
                similarity = explained.vector_similarity
                assert similarity is None or faceted.explain[pid].vector_similarity == similarity


@pytest.mark.parametrize(
    ("mode", "choice"), [("keyword", "category"), ("keyword", "price"), ("hybrid", "category"), ("hybrid", "brand")]
)
def test_a_chosen_values_keyword_rank_is_the_hits_place_among_the_results(
    cat: Catalogue, mode: str, choice: str
) -> None:
    """explain's keyword_rank is the hit's place on the keyword side among the products the search ranks, with
    `facets` as without (keyword mode: its position, whatever the sort). With facets and a chosen value it was the
    rank among every match, the chosen value left out (the 53rd result said 76th)."""
    vector = np.random.default_rng(17).normal(size=384).astype(np.float32) if mode == "hybrid" else None
    params = SearchParams(
        q="drill", mode=mode, limit=5, lat=CENTER[0], lon=CENTER[1], radius_m=25_000, **_chosen(cat, choice)
    )  # type: ignore[arg-type]
    for offset in (0, 5):
        page = replace(params, offset=offset)
        faceted = run(_ux(cat.url, page, UxParams(facets=("brand",), explain=True), vector))
        plain = run(_ux(cat.url, page, UxParams(explain=True), vector))
        ranks = [faceted.explain[h.product.id].keyword_rank for h in faceted.results]
        assert len(ranks) == 5 and ranks == [plain.explain[h.product.id].keyword_rank for h in plain.results]
        if mode == "keyword":
            assert ranks == list(range(offset + 1, offset + 6))
    if mode == "keyword":  # sorted by price: each hit's place in the relevance order
        every = replace(params, limit=100)
        relevance = run(_ux(cat.url, every, UxParams(explain=True)))
        by_price = run(_ux(cat.url, every, UxParams(facets=("brand",), sort="price", explain=True)))
        assert {p: e.keyword_rank for p, e in by_price.explain.items()} == {
            h.product.id: i for i, h in enumerate(relevance.results, start=1)
        }


def _flipped_pair(rng: np.random.Generator, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors whose similarities to `query` PostgreSQL orders one way (float4 rows, float8 sums) and the
    copy's float16 rows the other."""
    base = query + rng.normal(size=384) * 0.05
    a = (base / np.linalg.norm(base)).astype(np.float32)
    while True:
        b = a + (rng.normal(size=384) * 2e-4).astype(np.float32)
        b = (b / np.linalg.norm(b)).astype(np.float32)
        true_a, true_b = (float(np.dot(v.astype(np.float64), query)) for v in (a, b))
        copy_a, copy_b = (float(v.astype(np.float16).astype(np.float32) @ query.astype(np.float32)) for v in (a, b))
        if true_a > true_b + 1e-7 and copy_a < copy_b - 1e-7:
            return a, b


def test_a_faceted_sets_last_place_is_the_naive_plans_on_every_page(fresh_db_url: str, tmp_path: Path) -> None:
    """Two products whose float16 scores order them otherwise than PostgreSQL, at the set's last place: the set keeps
    the one PostgreSQL ranks higher on every page (float16 scores chose it unless the page reached it, so a query's
    facet counts changed from one page to another)."""
    rng = np.random.default_rng(5)
    query = rng.normal(size=384)
    query /= np.linalg.norm(query)
    a, b = _flipped_pair(rng, query)
    best = [query + rng.normal(size=384) * 0.01 for _ in range(39)]  # the set's first places, past the window
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        register_vector_psycopg(conn)
        row = conn.execute(
            "INSERT INTO store (name, location) VALUES ('S', ST_SetSRID(ST_MakePoint(%s, %s), 4326)) RETURNING id",
            (CENTER[1], CENTER[0]),
        ).fetchone()
        assert row is not None
        for vec, brand in [((v / np.linalg.norm(v)).astype(np.float32), "Top") for v in best] + [(a, "Al"), (b, "Be")]:
            pid = conn.execute(
                "INSERT INTO product_master (name, brand, ai_vector) VALUES ('p', %s, %s) RETURNING id", (brand, vec)
            ).fetchone()
            assert pid is not None
            conn.execute(
                "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity)"
                " VALUES (%s, %s, 1, 'EUR', 3)",
                (row[0], pid[0]),
            )
    params = SearchParams(q="", mode="semantic", limit=2, lat=CENTER[0], lon=CENTER[1], radius_m=1000)
    for offset in (0, 38):  # a page far from the last place (its window: 30), and one that reaches it
        page = replace(params, offset=offset)
        got = run(
            _ux(fresh_db_url, page, UxParams(facets=("brand",)), query.astype(np.float32), 40, True, shared=tmp_path)
        )
        assert {x.value: x.count for x in got.facets.brand} == {"Top": 39, "Al": 1}, offset


async def _plain(url: str, params: SearchParams, vector: np.ndarray) -> Any:
    conn = await asyncpg.connect(url)
    await register_vector(conn)
    try:
        vectors = VectorCache()
        await vectors.load(conn)
        return await search(conn, params, vector, vectors=vectors)
    finally:
        await conn.close()


def test_brand_filter_narrows_results_but_brand_counts_stay(cat: Catalogue) -> None:
    params = SearchParams(q="drill", mode="keyword", limit=100)
    every = run(_ux(cat.url, params, UxParams(facets=("brand",))))
    chosen = run(_ux(cat.url, replace(params, brand="Bolt"), UxParams(facets=("brand",))))
    assert chosen.facets.brand == every.facets.brand
    bolt = next(b.count for b in every.facets.brand if b.value == "Bolt")
    assert chosen.total == bolt == len(chosen.results)
    assert all(h.product.brand == "Bolt" for h in chosen.results)


def _no_union(self: CandidateSets, store_ids: list[uuid.UUID]) -> Any:
    raise AssertionError("the candidate sets' union was taken")


async def _no_probes(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("listed_among probed the copy's best")


WIDE = ("wide", "wide_sets", "wide_near", "wide_slices", "wide_stock")


@pytest.mark.parametrize("copy", [False, True, "gather", *WIDE])
def test_semantic_facets_cover_the_top_depth_by_similarity(
    cat: Catalogue, copy: bool | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No copy: SQL ranks; the copy: the candidate sets' products in scope, or without the sets the products
    listed_products lists, or (every scope wide) the whole copy's best probed in order; with the sets too when the
    statistics put the scope near full (their union, never taken, fails the test if it is)."""
    config = DEFAULT_CONFIG
    if copy in WIDE:  # every scope wide: the copy's best, probed
        monkeypatch.setattr(facet_vectors, "WIDE_SCOPE_STORES", 1)
    if copy == "wide_slices":  # a first slice of exactly `depth` ids: the unlisted among them need a second
        monkeypatch.setattr(facet_vectors, "WIDE_FIRST_MARGIN", 10**9)
    probed = _probe_every_radius(monkeypatch) if copy in ("wide_near", "wide_slices") else []
    if copy in ("wide_sets", "wide_stock"):  # and near full: the union does not pay
        config = replace(DEFAULT_CONFIG, count_below_share=0.0)
        monkeypatch.setattr(CandidateSets, "in_scope", _no_union)
    if copy == "wide_stock":  # the listing buckets say which of the best are listed: no probe statement
        monkeypatch.setattr(facet_vectors, "_probed", _no_probes)
    rng = np.random.default_rng(11)
    q = rng.normal(size=384).astype(np.float32)
    q /= np.linalg.norm(q)
    scope = _near(cat, 25_000)
    in_scope = sorted({p for _s, p, _price in _qualifying(cat, scope)}, key=str)
    with psycopg.connect(cat.url) as conn:
        register_vector_psycopg(conn)
        vec = {r[0]: r[1].to_numpy() for r in conn.execute("SELECT id, ai_vector FROM product_master")}
    top = sorted(in_scope, key=lambda p: (1 - float(np.dot(vec[p], q)), str(p)))[:40]
    params = SearchParams(q="x", lat=CENTER[0], lon=CENTER[1], radius_m=25_000, mode="semantic", limit=30)
    ux = UxParams(facets=FACETS, explain=True)
    sets = copy in (True, "wide_sets", "wide_stock")
    near = copy in ("wide_near", "wide_slices")
    got = run(
        _ux(cat.url, params, ux, q, 40, bool(copy), sets=sets, config=config, stores=near, stock=copy == "wide_stock")
    )
    strategies = {False: "exact", True: "facet_set", "gather": "facet_set", "wide": "wide_facet_set"}
    wide = {name: "wide_facet_set" for name in WIDE}
    assert got.strategy == {**strategies, **wide}[copy]
    assert ("listed_among" in probed) is (copy in ("wide_near", "wide_slices"))
    if copy == "wide_slices":  # some of the copy's best 40 have no listing in scope: a second slice found the rest
        assert probed.count("listed_among") == 2
    want = _oracle(cat, top, scope, FacetFilters())
    assert got.total == 40 and [h.product.id for h in got.results] == top[:30]
    assert _got(got) == want["counts"]
    for h in got.results:
        assert got.explain[h.product.id].vector_similarity == pytest.approx(
            float(np.dot(vec[h.product.id], q)), abs=1e-5
        )
    assert set(got.timings_ms) >= {"scope", "rank", "facets", "hydrate"}


def test_a_wide_hybrid_set_equals_the_union_path(cat: Catalogue, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hybrid, facets: a wide set (the copy's whole ranking, its listed best from the listing buckets) gives the
    page, total and counts the candidate sets' union gives."""
    q = np.random.default_rng(5).normal(size=384).astype(np.float32)
    q /= np.linalg.norm(q)
    params = SearchParams(q="drill", lat=CENTER[0], lon=CENTER[1], radius_m=25_000, mode="hybrid", limit=30)
    ux = UxParams(facets=FACETS)
    union = run(_ux(cat.url, params, ux, q, 40, True, stock=True))
    monkeypatch.setattr(facet_vectors, "WIDE_SCOPE_STORES", 1)
    monkeypatch.setattr(CandidateSets, "in_scope", _no_union)
    monkeypatch.setattr(facet_vectors, "_probed", _no_probes)
    wide = run(_ux(cat.url, params, ux, q, 40, True, config=replace(DEFAULT_CONFIG, count_below_share=0.0), stock=True))
    assert union.strategy == "facet_set" and wide.strategy == "wide_facet_set"
    assert [h.product.id for h in wide.results] == [h.product.id for h in union.results]
    assert wide.total == union.total > 10 and _got(wide) == _got(union)


def test_delivery_fulfilment_reaches_far_stores_and_says_delivers(cat: Catalogue) -> None:
    far_point = _destination(*CENTER, 0, 60_000)  # 60 km north: no store within 5 km
    far_store = next(s for s, (_lat, _lon, active) in cat.stores.items() if active)
    area = {"type": "Polygon", "coordinates": [[[far_point[1] - 0.1, far_point[0] - 0.1],
             [far_point[1] + 0.1, far_point[0] - 0.1], [far_point[1] + 0.1, far_point[0] + 0.1],
             [far_point[1] - 0.1, far_point[0] + 0.1], [far_point[1] - 0.1, far_point[0] - 0.1]]]}  # fmt: skip

    async def set_area(conn: asyncpg.Connection) -> None:
        await geo_areas.set_delivery(conn, far_store, None, area)

    run(_call(cat.url, set_area))
    base = SearchParams(q="drill", lat=far_point[0], lon=far_point[1], radius_m=5000, mode="keyword", limit=100)
    pickup = run(_ux(cat.url, base, UxParams(sort="price")))
    assert pickup.total == 0 and pickup.strategy == "no_stores"
    delivery = run(_ux(cat.url, base, UxParams(fulfilment="delivery")))
    stocked = {p for _s, p, _price in _qualifying(cat, {far_store})} & set(_matches(cat, "drill"))
    assert {h.product.id for h in delivery.results} == stocked and stocked
    for h in delivery.results:
        assert [s.id for s in h.stores] == [far_store]
        assert (h.product.id, far_store) in delivery.delivers


def test_price_sort_and_bbox_through_ux_search(cat: Catalogue) -> None:
    box = geo_areas.parse_bbox("13.2,52.4,13.6,52.6")
    params = SearchParams(q="drill", mode="keyword", limit=100)
    got = run(_ux(cat.url, params, UxParams(sort="price", bbox=box)))
    inside = {s for s, (lat, lon, a) in cat.stores.items() if a and box.contains(lon, lat)}
    best: dict[uuid.UUID, Decimal] = {}
    for _s, p, price in _qualifying(cat, inside):
        best[p] = min(price, best.get(p, price))
    want = [p for p in best if p in set(_matches(cat, "drill"))]
    assert {h.product.id for h in got.results} == set(want) and want
    prices = [min(s.price for s in h.stores) for h in got.results]
    assert prices == sorted(prices)


def test_a_price_sort_near_a_point_shows_each_hits_cheapest_store_first(cat: Catalogue) -> None:
    """The order follows the cheapest listing in scope; the stores shown were the nearest three, so the price the
    list is sorted by was often not on the page (a shopper saw it as unsorted)."""
    params = SearchParams(q="drill", mode="keyword", limit=100, lat=CENTER[0], lon=CENTER[1], radius_m=30_000)
    got = run(_ux(cat.url, params, UxParams(sort="price")))
    best: dict[uuid.UUID, Decimal] = {}
    for _s, p, price in _qualifying(cat, _near(cat, 30_000)):
        best[p] = min(price, best.get(p, price))
    shown = [h.stores[0].price for h in got.results]
    assert len(shown) > 5 and shown == sorted(shown) and shown == [best[h.product.id] for h in got.results]


def test_explain_reports_typo_corrections_and_exact_matches(cat: Catalogue) -> None:
    got = run(_ux(cat.url, SearchParams(q="hamer", mode="keyword", limit=50), UxParams(explain=True)))
    assert got.results
    for h in got.results:
        e = got.explain[h.product.id]
        assert e.keyword_rank is not None and e.vector_similarity is None
        if "hammer" in h.product.name.lower().split():
            assert "hamer->hammer" in e.typo_corrections
    name = next(iter(cat.products.values()))[0]
    exact = run(_ux(cat.url, SearchParams(q=name, mode="keyword", limit=5), UxParams(explain=True)))
    assert exact.results[0].product.name == name and exact.explain[exact.results[0].product.id].exact_match


@pytest.mark.parametrize("loose", [0.0, 0.03, 0.3])
def test_a_facet_sets_best_rows_are_the_exact_best(loose: float) -> None:
    """`Ranking.best` (a facet set's rows) certifies the best `depth` from upper bounds (exact, or loose by up to
    `loose`), of the whole matrix and of a subset of its rows: the same as sorting every exact similarity."""
    from search_service.engine.ranking import Ranking

    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(5000, 16)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    q = matrix[0] + rng.normal(size=16).astype(np.float32)
    q /= np.linalg.norm(q)
    exact = matrix @ q
    subset = np.sort(rng.choice(5000, 1200, replace=False))
    whole = Ranking(matrix, q, exact + rng.uniform(0, loose, size=5000).astype(np.float32))
    for ranking, rows in ((whole, np.arange(5000)), (whole.restricted(subset), subset)):
        for depth in (1, 100, 1000):
            got_rows, similarity = ranking.best(depth)
            best = got_rows[np.argsort(-similarity, kind="stable")[:depth]]
            want = rows[np.argsort(-exact[rows], kind="stable")[:depth]]
            assert set(best.tolist()) == set(want.tolist())
            assert np.allclose(similarity, exact[got_rows], atol=1e-6)


@pytest.mark.parametrize("mode", ["hybrid", "semantic"])
def test_a_set_that_reached_its_depth_says_it_was_capped(cat: Catalogue, mode: str) -> None:
    """A set cut at its depth counted only its first products: the page said "5 of 5" where more matched. It says
    so now (`capped`), and a set that ended before its depth does not."""
    params = SearchParams(q="drill", lat=CENTER[0], lon=CENTER[1], radius_m=20_000, mode=mode, limit=100)
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
    matching = len(_qualifying(cat, _near(cat, 20_000)))
    cut = run(_ux(cat.url, params, UxParams(facets=FACETS), vector, depth=5))
    whole = run(_ux(cat.url, params, UxParams(facets=FACETS), vector, depth=1000))
    assert matching > 5 and cut.total == 5 and cut.capped
    assert whole.total is not None and 5 < whole.total < 1000 and not whole.capped
    window = run(_ux(cat.url, params, UxParams(bbox=geo_areas.parse_bbox("13.2,52.4,13.6,52.6")), vector))
    assert not window.capped  # ranked only as deep as the page's window: no whole set to cap


@pytest.mark.parametrize(("mode", "copy"), [("semantic", False), ("hybrid", False), ("semantic", True)])
def test_a_set_is_capped_only_when_more_matched_than_its_depth(cat: Catalogue, mode: str, copy: bool) -> None:
    """`total_capped` said true when exactly PLINQY_FACET_DEPTH products matched (the set was full, not cut): the
    set is ranked one past its depth, and capped only when that one exists. `copy`: the in-memory facet set."""
    params = SearchParams(q="drill", lat=CENTER[0], lon=CENTER[1], radius_m=20_000, mode=mode, limit=100)
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
    every = run(_ux(cat.url, params, UxParams(facets=FACETS), vector, depth=1000, copy=copy))
    assert every.total is not None and 10 < every.total < 1000 and not every.capped
    for depth, capped in ((every.total - 1, True), (every.total, False), (every.total + 1, False)):
        got = run(_ux(cat.url, params, UxParams(facets=FACETS), vector, depth=depth, copy=copy))
        assert (got.total, got.capped) == (min(depth, every.total), capped), depth
        ordered = run(_ux(cat.url, params, UxParams(sort="price"), vector, depth=depth, copy=copy))
        assert (ordered.total, ordered.capped) == (min(depth, every.total), capped), depth
    # a category that does not exist matches nothing past the depth either: it said "0 of 1,000+"
    unknown = replace(params, category_id=999_999)
    nothing = run(_ux(cat.url, unknown, UxParams(facets=FACETS), vector, depth=every.total - 1, copy=copy))
    assert (nothing.total, nothing.capped) == (0, False)
    # nor does a chosen store outside the scope: with facets it said "0 of 1,000+" by relevance, false by price
    away = next(s for s, (_lat, _lon, active) in sorted(cat.stores.items()) if active and s not in _near(cat, 20_000))
    for chosen in (UxParams(facets=FACETS, store_id=away), UxParams(facets=FACETS, sort="price", store_id=away)):
        nothing = run(_ux(cat.url, params, chosen, vector, depth=every.total - 1, copy=copy))
        assert (nothing.total, nothing.capped, nothing.results) == (0, False, []), chosen.sort


def test_a_keyword_set_is_every_match_whatever_the_facet_depth(cat: Catalogue) -> None:
    """PLINQY_FACET_DEPTH bounds the semantic and hybrid sets (every product has a similarity); a keyword set is
    every match in scope, up to the keyword side's own caps (docs/search-features.md, "The result set"). At depth
    10 the keyword facets counted, and sort=price ordered, the first 10 matches only."""
    params = SearchParams(q="drill", lat=CENTER[0], lon=CENTER[1], radius_m=20_000, mode="keyword", limit=100)
    in_scope = {p for _s, p, _price in _qualifying(cat, _near(cat, 20_000))}
    matching = set(_matches(cat, "drill")) & in_scope
    faceted = run(_ux(cat.url, params, UxParams(facets=FACETS), depth=10))
    by_price = run(_ux(cat.url, params, UxParams(sort="price"), depth=10))
    assert len(matching) > 10
    assert faceted.total == len(matching) and not faceted.capped
    assert sum(c.count for c in faceted.facets.price) >= len(matching)
    assert {h.product.id for h in by_price.results} == matching and by_price.total == len(matching)
    small = replace(DEFAULT_CONFIG, keyword_cap=5, keyword_rank_cap=5)  # the keyword side's caps cut it: it says so
    assert run(_ux(cat.url, params, UxParams(facets=FACETS), depth=10, config=small)).capped
