"""Suggestions for every scope from memory (engine/suggest_index.py, engine/suggest_scope.py): the same completions
as the statement plans, and fresh after a stock change, a product change or a store closing.

The catalogue is test_search_ux.py's (names of WORDS, five brands, a category tree, 34 stores). The oracle is the
statement: its narrow plan (every radius scope narrow) for radius scopes, its walk for the global one.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import asyncpg
import psycopg
import pytest

from search_service.db.sql import statement
from search_service.engine import suggest as suggest_module
from search_service.engine import suggest_index as suggest_index_module
from search_service.engine.candidates import CandidateSets
from search_service.engine.facet_labels import ProductLabels
from search_service.engine.geo_areas import BBox
from search_service.engine.suggest import (
    Suggestion,
    SuggestParams,
    keep_typed_text,
    merge,
    split_prefix,
    suggest,
)
from search_service.engine.suggest_index import SuggestIndex
from search_service.engine.suggest_scope import suggest_in_memory
from search_service.engine.suggest_spelling import spelled
from search_service.engine.suggest_typed import lower_as_sql
from search_service.engine.text import caseless, fold_accents
from tests.test_api import AT_CENTER, app_settings, load_test_encoder, running_client, seed_catalogue
from tests.test_search_ux import CENTER, Catalogue, _call, _near, _seed, run

PREFIXES = ("d", "dr", "Ha", "la", "drill d", "saw ", "bo", "acme", "tools", "l", "x", "h", "power", "lamp 1")
RADII = (300, 800, 3_000, 20_000, 60_000)


@pytest.fixture(scope="module")
def cat(db_url: str) -> Iterator[Catalogue]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        catalogue = _seed(conn, random.Random(24))
    catalogue.url = db_url
    yield catalogue


async def _loaded(conn: asyncpg.Connection) -> tuple[SuggestIndex, CandidateSets]:
    index, sets = SuggestIndex(), CandidateSets()
    await index.load(conn)
    await sets.load(conn)
    assert index.loaded and sets.loaded
    return index, sets


async def _from_memory(
    conn: asyncpg.Connection, index: SuggestIndex, sets: CandidateSets, params: SuggestParams
) -> list[Suggestion]:
    """The in-memory answer itself (the test fails if it would fall back to the statement), with its words spelt
    and the typed text kept as `suggest` does."""
    geo = params.lat is not None
    scope = {"lon": params.lon if geo else None, "lat": params.lat if geo else None, "radius_m": params.radius_m}
    typed = split_prefix(params.q)
    rows = await suggest_in_memory(conn, index, sets, typed, scope, params.limit)
    assert rows is not None, params
    rows = spelled(rows, typed[1])
    return merge(keep_typed_text(rows, *typed), params.limit)


def test_every_scope_from_memory_equals_the_statement(cat: Catalogue, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(suggest_module, "NARROW_STORES", 100_000)  # every radius scope: the exact narrow plan

    async def compare(conn: asyncpg.Connection) -> int:
        index, sets = await _loaded(conn)
        found = 0
        for prefix in PREFIXES:
            for metres in (None, *RADII):
                point = (None, None) if metres is None else CENTER
                for limit in (10, 3):
                    params = SuggestParams(prefix, point[0], point[1], float(metres or 5000), limit)
                    want = await suggest(conn, params)
                    assert await _from_memory(conn, index, sets, params) == want, (prefix, metres, limit)
                    assert await suggest(conn, params, None, index, sets) == want
                    found += len(want)
        return found

    assert run(_call(cat.url, compare)) > 300


# (min_lon, min_lat, max_lon, max_lat): around CENTER, small and wide; across the antimeridian (the FIJI stores);
# and one holding no store
BOXES = ((13.39, 52.54, 13.43, 52.555), (13.1, 52.3, 13.7, 52.7), (179.9, -17.0, -179.9, -16.0), (0.0, 0.0, 0.1, 0.1))


def _stocked_in(cat: Catalogue, box: BBox) -> set[str]:
    """The products in stock at an active store inside the box (the oracle of a bbox's product completions)."""
    inside = {s for s, (lat, lon, active) in cat.stores.items() if active and box.contains(lon, lat)}
    return {str(p) for store, p, _price, quantity, active in cat.listings if store in inside and quantity and active}


def test_a_bbox_is_suggested_alike_by_every_path(cat: Catalogue, monkeypatch: pytest.MonkeyPatch) -> None:
    """`/v1/suggest` refused search's `bbox`; now every path scopes by its stores (geo_areas.stores_in_bbox): the
    index, the labels and the walk give only products stocked in the box, the first two what the narrow plan gives."""
    answers = memory_answers(monkeypatch)

    async def compare(conn: asyncpg.Connection) -> int:
        labels = ProductLabels()
        await labels.load(conn)
        index, sets = await _loaded(conn)
        found = 0
        for box in (BBox(*b) for b in BOXES):
            stocked = _stocked_in(cat, box)
            for prefix in PREFIXES:
                params = SuggestParams(prefix, *CENTER, 5000.0, 10, bbox=box)  # lat/lon beside it: the box scopes
                monkeypatch.setattr(suggest_module, "NARROW_STORES", 100_000)  # every box: the exact narrow plan
                want = await suggest(conn, params)
                before = len(answers)
                assert await suggest(conn, params, None, index, sets) == want, (box, prefix)
                assert answers[before:] == ([True] if stocked else []), (box, prefix)  # no store: none asked
                assert await suggest(conn, params, labels) == want, (box, prefix)
                monkeypatch.setattr(suggest_module, "NARROW_STORES", 0)
                walked = await suggest(conn, params)
                for got in (want, walked):
                    assert {s.ref for s in got if s.kind == "product"} <= stocked, (box, prefix)
                found += len(want)
        return found

    assert run(_call(cat.url, compare)) > 100


def _first_in_stock(conn: psycopg.Connection, store: uuid.UUID) -> tuple[uuid.UUID, str]:
    row = conn.execute(
        "SELECT p.id, p.name FROM store_product sp JOIN product_master p ON p.id = sp.product_master_id "
        "WHERE sp.store_id = %s AND sp.is_active AND sp.quantity > 0 AND p.is_active ORDER BY p.name LIMIT 1",
        (store,),
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_a_stock_change_a_product_change_and_a_closed_store_show_in_the_next_suggestion(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        cat = _seed(sync, random.Random(5))
        store = sorted(_near(cat, 20_000))[0]
        lat, lon = cat.stores[store][:2]
        product, name = _first_in_stock(sync, store)

    async def scenario(conn: asyncpg.Connection) -> None:
        index, sets = await _loaded(conn)
        near = SuggestParams(name, lat, lon, 50.0, 10)  # this store alone
        everywhere = SuggestParams(name, None, None, 5000.0, 10)

        async def check(params: SuggestParams) -> list[Any]:
            got = await _from_memory(conn, index, sets, params)
            assert got == await suggest(conn, params), params
            return [s.ref for s in got if s.kind == "product"]

        assert str(product) in await check(near)
        with psycopg.connect(fresh_db_url, autocommit=True) as sync:
            sync.execute("UPDATE store_product SET quantity = 0 WHERE product_master_id = %s", (product,))
            assert str(product) not in await check(near)
            assert str(product) not in await check(everywhere)
            sync.execute("UPDATE store_product SET quantity = 4 WHERE product_master_id = %s", (product,))
            assert str(product) in await check(near)
            sync.execute("UPDATE product_master SET name = 'Zyx renamed widget' WHERE id = %s", (product,))  # overlay
            renamed = SuggestParams("zyx", lat, lon, 50.0, 10)
            assert await check(renamed) == [str(product)]
            two_words = SuggestParams("zyx ren", lat, lon, 50.0, 10)  # the overlay's words and lexemes
            await check(two_words)
            assert ("query", "zyx renamed") in [(s.kind, s.text) for s in await suggest(conn, two_words)]
            assert str(product) not in await check(near)
            sync.execute("UPDATE product_master SET is_active = false WHERE id = %s", (product,))
            assert await check(renamed) == []
            sync.execute(
                "INSERT INTO product_master (name, brand) VALUES ('Zyx new', 'Zyxco') RETURNING id"
            )  # new, in no store: no completion
            assert await check(SuggestParams("zyx", None, None, 5000.0, 10)) == []
            sync.execute("UPDATE store SET is_active = false")  # every store closed: nothing in scope globally
            assert await _from_memory(conn, index, sets, SuggestParams("d", None, None, 5000.0, 10)) == []
        assert sets.applied_changes > 0 and index.rebuild_due is False

    run(_call(fresh_db_url, scenario))


def test_vectors_written_leave_the_index_whole(fresh_db_url: str) -> None:
    """An embedding backlog drained (every product's vector written, more than the rebuild's threshold) changes
    no product's text: the index answers from memory, with no overlay and no rebuild due (migration 0022)."""
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        _seed(sync, random.Random(7))

    async def scenario(conn: asyncpg.Connection) -> None:
        index, sets = await _loaded(conn)
        written = await conn.execute(
            "UPDATE product_master SET ai_vector = array_fill(0.1, ARRAY[384])::vector, ai_model = 'next', "
            "ai_embedded_at = now()"
        )
        assert int(written.split()[-1]) > index.rebuild_after
        params = SuggestParams("d", None, None, 5000.0, 10)
        assert await _from_memory(conn, index, sets, params) == await suggest(conn, params)
        assert index.rebuild_due is False

    run(_call(fresh_db_url, scenario))


def test_the_index_falls_back_and_rebuilds_when_the_category_table_changes(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the gap after the last build has passed (REBUILD_GAP times its time), not before. The index's clock is
    the test's: the gap of a small build is milliseconds, which a loaded machine spent between two statements (a
    clean-clone CI at load ~10 saw the "too soon" refresh rebuild)."""
    clock = [1000.0]
    monkeypatch.setattr(
        suggest_index_module, "time", SimpleNamespace(perf_counter=time.perf_counter, monotonic=lambda: clock[0])
    )
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        _seed(sync, random.Random(6))

    async def scenario(conn: asyncpg.Connection) -> None:
        index, sets = await _loaded(conn)
        params = SuggestParams("t", None, None, 5000.0, 10)
        assert await _from_memory(conn, index, sets, params)
        await conn.execute("UPDATE category SET name = 'Tooling' WHERE name = 'Tools'")
        geo = {"lon": None, "lat": None, "radius_m": 5000.0}
        assert await suggest_in_memory(conn, index, sets, split_prefix("t"), geo, 10) is None
        assert index.rebuild_due
        generation, gap = index.generation, index.next_build_at - clock[0]
        assert gap > 0  # REBUILD_GAP times the build's own time
        clock[0] += gap * 0.99
        await index.refresh(conn)  # too soon after the build (REBUILD_GAP): the statements answer meanwhile
        assert index.generation == generation and index.rebuild_due
        assert await suggest_in_memory(conn, index, sets, split_prefix("t"), geo, 10) is None
        clock[0] = index.next_build_at  # the gap has passed
        await index.refresh(conn)
        assert index.generation == generation + 1 and not index.rebuild_due
        got = await _from_memory(conn, index, sets, params)
        assert "Tooling" in [s.text for s in got] and got == await suggest(conn, params)

    run(_call(fresh_db_url, scenario))


def memory_answers(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each suggestion from now on came from memory (True) or took the statements (False)."""
    answers: list[bool] = []
    from_memory = suggest_module.suggest_in_memory

    async def counted(*args: Any) -> Any:
        rows = await from_memory(*args)
        answers.append(rows is not None)
        return rows

    monkeypatch.setattr(suggest_module, "suggest_in_memory", counted)
    return answers


def test_the_api_answers_from_the_index_and_sees_a_stock_change_at_once(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = load_test_encoder()
    seeded = seed_catalogue(fresh_db_url, encoder)
    answers = memory_answers(monkeypatch)

    def oat_refs(client: Any) -> list[str]:
        response = client.get("/v1/suggest", params={"q": "Oat", **AT_CENTER, "radius_m": 5000})
        assert response.status_code == 200, response.text
        return [s["ref"] for s in response.json()["suggestions"] if s["kind"] == "product"]

    with running_client(app_settings(fresh_db_url), encoder) as client:
        deadline = time.monotonic() + 60
        while not (answers and answers[-1]):  # the index builds in the background after start-up
            assert time.monotonic() < deadline, "the suggestion index never answered"
            oat_refs(client)
            time.sleep(0.2)
        oat = str(seeded.products["oat"])
        assert oat in oat_refs(client)
        with psycopg.connect(fresh_db_url, autocommit=True) as sync:
            sync.execute("UPDATE store_product SET quantity = 0 WHERE product_master_id = %s", (oat,))
            assert oat not in oat_refs(client)
            sync.execute("UPDATE store_product SET quantity = 2 WHERE product_master_id = %s", (oat,))
            assert oat in oat_refs(client)
        assert answers[-3:] == [True, True, True]
        assert client.get("/readyz").json()["checks"]["suggestions"] == "ok"


def test_a_catalogue_over_the_index_limit_is_suggested_by_the_statements(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = load_test_encoder()
    seeded = seed_catalogue(fresh_db_url, encoder)
    answers = memory_answers(monkeypatch)
    settings = app_settings(fresh_db_url, suggest_index_max=1)  # the catalogue holds more than one product
    with running_client(settings, encoder) as client:
        runtime = client.app.state["runtime"]
        (task,) = [t for t in runtime.tasks if t.get_name() == "plinqy-suggestion-index"]
        deadline = time.monotonic() + 30
        while not task.done():  # the limit ends the index's task instead of building it
            assert time.monotonic() < deadline, "the suggestion index's task never checked the limit"
            time.sleep(0.2)
        assert task.exception() is None and not runtime.suggestions.loaded
        assert client.get("/readyz").json()["checks"]["suggestions"] == "off"
        response = client.get("/v1/suggest", params={"q": "Oat", **AT_CENTER, "radius_m": 5000})
        assert response.status_code == 200, response.text
        refs = [s["ref"] for s in response.json()["suggestions"] if s["kind"] == "product"]
        assert str(seeded.products["oat"]) in refs
        assert answers and not any(answers)  # every suggestion took the statements


def test_a_build_leaves_the_event_loop_answering(fresh_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index is built off the event loop (a build of 300k products takes ~0.4 s): a build made slow on
    purpose does not stop a coroutine ticking every millisecond, and the index it swaps in is whole."""
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        _seed(sync, random.Random(9))
    built = suggest_index_module._built

    def slow_build(*args: Any) -> dict[str, Any]:
        time.sleep(0.4)
        return built(*args)

    monkeypatch.setattr(suggest_index_module, "_built", slow_build)

    async def scenario(conn: asyncpg.Connection) -> None:
        gaps: list[float] = []
        loading = True

        async def ticker() -> None:
            last = time.perf_counter()
            while loading:
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticks = asyncio.ensure_future(ticker())
        index, sets = await _loaded(conn)
        loading = False
        await ticks
        assert len(gaps) > 100 and max(gaps) < 0.2, (len(gaps), max(gaps))
        params = SuggestParams("d", None, None, 5000.0, 10)
        assert await _from_memory(conn, index, sets, params) == await suggest(conn, params)

    run(_call(fresh_db_url, scenario))


async def _by_every_path(
    conn: asyncpg.Connection,
    memory: tuple[ProductLabels, SuggestIndex, CandidateSets],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    want: dict[str, list[str]],
) -> None:
    """Each prefix's completions of `kind` are `want`'s, near CENTER and globally, by every path: the index, the
    walk, the narrow plan (radius scopes) and the labels."""
    labels, index, sets = memory
    for q, names in want.items():
        for point, metres in ((CENTER, 1000.0), ((None, None), 5000.0)):
            params = SuggestParams(q, point[0], point[1], metres, 10)
            answers = {"index": await _from_memory(conn, index, sets, params)}
            for narrow in (0, 10_000):  # the walk, then the narrow plan (radius scopes) and the labels
                monkeypatch.setattr(suggest_module, "NARROW_STORES", narrow)
                answers[f"sql {narrow}"] = await suggest(conn, params)
                answers[f"labels {narrow}"] = await suggest(conn, params, labels)
            for way, got in answers.items():
                assert [s.text for s in got if s.kind == kind] == names, (q, point, way)


async def _after_snapshots(
    conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch, kind: str, want: dict[str, list[str]], change: str = ""
) -> None:
    """`_by_every_path` over labels, an index and candidate sets loaded now, with `change` made after the snapshots
    (the index's overlay and the labels' newer rows then answer for it)."""
    labels = ProductLabels()
    await labels.load(conn)
    index, sets = await _loaded(conn)
    if change:
        await conn.execute(change)
    await _by_every_path(conn, (labels, index, sets), monkeypatch, kind, want)


def _stocked_at_center(url: str, products: list[tuple[str, str | None, int | None]]) -> None:
    """A store at CENTER with these products (name, brand, category_id) in stock."""
    with psycopg.connect(url, autocommit=True) as sync:
        store = sync.execute(
            "INSERT INTO store (name, location) VALUES ('Corner store', ST_SetSRID(ST_MakePoint(%s, %s), 4326))"
            " RETURNING id",
            (CENTER[1], CENTER[0]),
        ).fetchone()[0]  # type: ignore[index]
        for name, brand, category in products:
            sync.execute(
                "WITH p AS (INSERT INTO product_master (name, brand, category_id) VALUES (%s, %s, %s) RETURNING id)"
                " INSERT INTO store_product (store_id, product_master_id, price, currency, quantity)"
                " SELECT %s, id, 1, 'EUR', 3 FROM p",
                (name, brand, category, store),
            )


def test_a_brand_is_suggested_once_whatever_its_accents_by_every_path(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Château Belair` and `Chateau Belair` were two brands for `ch`, and `chat` never completed `Château Belair`:
    the brand completions grouped and matched lower(brand), where the brand filter folds accents too (migration
    0038). Every path (the walk, the narrow plan, the labels, the index and its overlay) now gives one brand, its
    smallest spelling, for the prefix typed with or without accents."""
    brands = ["Château Belair", "Château Belair", "Chateau Belair", "Chatelain", "Łowicz"]
    _stocked_at_center(fresh_db_url, [(f"Grenvox wine {n}", brand, None) for n, brand in enumerate(brands)])
    typed = {"ch": ["Chateau Belair", "Chatelain"], "chât": ["Chateau Belair", "Chatelain"],
             "CHÂTEAU b": ["Chateau Belair"], "lo": ["Łowicz"], "ŁOW": ["Łowicz"]}  # fmt: skip
    run(_call(fresh_db_url, _after_snapshots, monkeypatch, "brand", typed))
    renamed = "UPDATE product_master SET brand = 'CHATEAU BELAIR' WHERE brand = 'Chatelain'"  # the smallest spelling
    after = {"chat": ["CHATEAU BELAIR"], "château b": ["CHATEAU BELAIR"], "chateaub": []}
    run(_call(fresh_db_url, _after_snapshots, monkeypatch, "brand", after, renamed))


def test_a_category_is_completed_whatever_the_accents_typed_by_every_path(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`éle` gave the brand `Elektra` but no category, where `ele` gave `Electrical & Lighting` first: categories
    were keyed and matched by lower(name), brands by plinqy_fold. Every path (the walk, the narrow plan, the labels,
    the index) now folds both the category's name and the prefix, as for brands."""
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        names = ["Electrical & Lighting", "Électroménager", "Plant-Based Drinks", "Öle"]
        added = [sync.execute("INSERT INTO category (name) VALUES (%s) RETURNING id", (c,)).fetchone() for c in names]
        ids = [row[0] for row in added if row is not None]
    _stocked_at_center(fresh_db_url, [(f"Grenvox item {n}", "Zorblat", c) for n, c in enumerate(ids)])
    typed = {"ele": ["Electrical & Lighting", "Électroménager"], "éle": ["Electrical & Lighting", "Électroménager"],
             "ÉLEC": ["Electrical & Lighting", "Électroménager"], "plä": ["Plant-Based Drinks"], "Ö": ["Öle"],
             "ole": ["Öle"], "élé": ["Electrical & Lighting", "Électroménager"]}  # fmt: skip

    async def categories(conn: asyncpg.Connection) -> None:
        labels = ProductLabels()
        await labels.load(conn)
        await labels.load_categories(conn)
        index, sets = await _loaded(conn)
        await _by_every_path(conn, (labels, index, sets), monkeypatch, "category", typed)

    run(_call(fresh_db_url, categories))


def test_a_word_completion_is_spelt_as_the_products_write_it_by_every_path(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vocabulary holds words with their accents folded (migration 0035), and every path offered that form:
    `crè` completed to `creme`, `pât` to `pate`, `ros` to `rose`, `weiß` to `weissbrot`, and the brand `Kinderglück`
    came twice, once as the word `kindergluck`. A word completion is now spelt as the name of a product in scope
    holding it writes it, and a word that only a brand spells is shown once, as the brand."""
    names = ["Zorblax Crème Fraîche 250 g", "Zorblax Pâté de Campagne", "Zorblax Rosé Wine", "Weißbrot Zorblax 500 g",
             "Zorblax Pasta 500 g"]  # fmt: skip
    _stocked_at_center(fresh_db_url, [(name, None, None) for name in names] + [("Zorblax Lolly", "Kinderglück", None)])
    typed = {"crè": ["crème"], "CREME fr": ["creme fraîche"], "zorblax cr": ["zorblax crème"],
             "pât": ["pâté"], "pa": ["pasta", "pâté"], "pate": ["pâté"], "ros": ["rosé"], "rosé": ["rosé"],
             "weiß": ["weißbrot"], "weiss": ["weißbrot"], "kinderg": [],
             "zorblax 500 g wei": ["zorblax 500 g weißbrot"]}  # fmt: skip
    run(_call(fresh_db_url, _after_snapshots, monkeypatch, "query", typed))
    run(_call(fresh_db_url, _after_snapshots, monkeypatch, "brand", {"kinderg": ["Kinderglück"]}))
    renamed = "UPDATE product_master SET name = 'Zorblax Crème Brûlée' WHERE name = 'Zorblax Pasta 500 g'"
    after = {"brû": ["brûlée"], "crè": ["crème"], "pa": ["pâté"]}  # a product changed since: the overlay spells it
    run(_call(fresh_db_url, _after_snapshots, monkeypatch, "query", after, renamed))


def test_a_word_after_a_glued_size_is_completed_by_every_path(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`1l haf` completed nothing where `1 l haf` gave `1 l hafer`: the words before the last were read as typed,
    `1l` a word no name writing `1 L` holds, where search reads them with the size spaced (`text.spaced_sizes`) and
    finds the product. Every path now reads them so, and the completion keeps the text as typed."""
    names = ["Zorblax Hafer Drink 1 L", "Weizenmehl Type 405 500 g", "Vollmilch Zorblax 2 l"]
    _stocked_at_center(fresh_db_url, [(name, None, None) for name in names])
    typed = {"1l haf": ["1l hafer"], "1 l haf": ["1 l hafer"], "500g weiz": ["500g weizenmehl"],
             "2L voll": ["2l vollmilch"], "2l haf": [], "zorblax 1l dr": ["zorblax 1l drink"]}  # fmt: skip
    run(_call(fresh_db_url, _after_snapshots, monkeypatch, "query", typed))


def test_a_word_after_a_decimal_size_is_completed_by_every_path(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`1.5l pea`, `1,5l pea`, `1.5 l pea` and `4.0ah bat` completed nothing though search finds the product: the
    words before the last were split at the point (`1 5 l`), where the product's words hold `1.5`. Every path now
    keeps the decimal size one word, as PostgreSQL reads it; a comma typed apart stays two words, as search reads it."""
    names = ["Peach Flavoured Water 1.5 L", "Heat Gun with 2 x 4.0 Ah Batteries", "Zorblax Wasser 1,5 L"]
    _stocked_at_center(fresh_db_url, [(name, None, None) for name in names])
    typed = {"1.5 l pea": ["1.5 l peach"], "1.5l pea": ["1.5l peach"], "1,5l pea": ["1,5l peach"],
             "4.0ah bat": ["4.0ah batteries"], "4.0 ah bat": ["4.0 ah batteries"], "1,5 l zor": ["1,5 l zorblax"],
             "1.5 l zor": [], "1 l pea": []}  # fmt: skip
    run(_call(fresh_db_url, _after_snapshots, monkeypatch, "query", typed))


def test_a_word_after_a_size_a_name_glues_is_completed_by_every_path(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`1l haf` did not complete `Hafermilch Barista 1l`, which search for `1l hafermilch` finds: the earlier words
    were read with their sizes spaced only (`1 l`), which a name gluing it lacks. Every path (and the exclusions'
    check) now reads them either way, as search reads `q`; typed spaced, a glued name is none, as in search."""
    names = ["Hafermilch Barista 1l", "Zorblax Hafer Drink 1 L", "Klebeband Rot 19mm"]
    _stocked_at_center(fresh_db_url, [(name, None, None) for name in names])
    typed = {"1l haf": ["1l hafer", "1l hafermilch"], "1 l haf": ["1 l hafer"], "19MM kle": ["19mm klebeband"],
             "klebeband 19mm ro": ["klebeband 19mm rot"], "19 mm kle": []}  # fmt: skip
    run(_call(fresh_db_url, _after_snapshots, monkeypatch, "query", typed))

    async def excluding(conn: asyncpg.Connection) -> list[str]:  # suggest_excluded reads the head either way too
        got = await suggest(conn, SuggestParams("1l -zorblax haf", *CENTER, 1000.0, 10))
        return [s.text for s in got if s.kind == "query"]

    assert run(_call(fresh_db_url, excluding)) == ["1l -zorblax hafermilch"]
    renamed = "UPDATE product_master SET name = 'Klebeband Blau 19mm' WHERE name = 'Klebeband Rot 19mm'"
    after = {"19mm bl": ["19mm blau"], "klebeband 19mm ro": []}
    run(_call(fresh_db_url, _after_snapshots, monkeypatch, "query", after, renamed))


def test_a_name_spacing_a_size_typed_glued_is_completed_by_every_path(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`22mm ptfe th` completed no name, where `22 mm ptfe th` gave `22 mm PTFE Thread Seal Tape 12 m`, which search
    for `22mm ptfe thread` finds: a name completed the prefix as typed only. Every path now also completes it with
    its sizes spaced (`suggest_typed.name_prefixes`), the names of both readings in their order."""
    names = ["22 mm PTFE Thread Seal Tape 12 m", "6 x 1 l Wasser", "6x1l Saft", "PTFE Band 12mm"]
    _stocked_at_center(fresh_db_url, [(name, None, None) for name in names])
    typed = {"22mm ptfe th": [names[0]], "22MM PTFE": [names[0]], "22 mm ptfe th": [names[0]], "22mm": [names[0]],
             "6x1l": [names[1], names[2]], "6 x 1 l": [names[1]], "ptfe band 12mm": [names[3]],
             "ptfe band 12 mm": [], "22mm ptfe x": []}  # fmt: skip
    run(_call(fresh_db_url, _after_snapshots, monkeypatch, "product", typed))
    renamed = "UPDATE product_master SET name = '6 x 1 l Apfelsaft' WHERE name = '6x1l Saft'"
    after = {"6x1l": ["6 x 1 l Apfelsaft", names[1]], "6x1l s": []}
    run(_call(fresh_db_url, _after_snapshots, monkeypatch, "product", after, renamed))


def test_a_name_typed_in_capitals_is_completed_by_every_path(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`KIRMIZI E` and `STRASSENKREIDE B` completed no name, where `Kırmızı e` and `Straßenkreide b` did: the prefix
    was lowered (`kirmizi`, `strassenkreide`) and compared with lower(name), which keeps `ı` and `ß`. Every path
    (the walk, the narrow plan, the labels, the index and its overlay) now compares both caseless (plinqy_caseless,
    migration 0055); accents still count (`STUCK` is not `Stück`)."""
    names = ["Kırmızı Elma", "Kirsche Rot", "Işık Lamba LED", "Straßenkreide Bunt 12 Stück"]
    _stocked_at_center(fresh_db_url, [(name, None, None) for name in names])
    typed = {"KIRMIZI E": [names[0]], "kırmızı e": [names[0]], "KIR": [names[0], names[1]], "Kır": [names[0], names[1]],
             "IŞIK L": [names[2]], "Işık L": [names[2]], "STRASSENKREIDE B": [names[3]], "STRASSENK": [names[3]],
             "straßenk": [names[3]], "STRAẞENK": [names[3]], "STRASSENKREIDE BUNT 12 STÜCK": [names[3]],
             "STRASSENKREIDE BUNT 12 STUCK": []}  # fmt: skip
    run(_call(fresh_db_url, _after_snapshots, monkeypatch, "product", typed))
    renamed = "UPDATE product_master SET name = 'Işıklı Fener' WHERE name = 'Işık Lamba LED'"
    after = {"IŞIKL": ["Işıklı Fener"], "ISIKL": [], "IŞIK L": []}
    run(_call(fresh_db_url, _after_snapshots, monkeypatch, "product", after, renamed))


def test_the_name_walk_reads_the_caseless_prefix_index(fresh_db_url: str) -> None:
    """Migration 0055 keys the name walk's prefix btree on plinqy_caseless(name), which the walk reads, and the
    Python fold of a prefix (text.caseless of lower_as_sql) is PostgreSQL's."""
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        sync.execute(
            "INSERT INTO product_master (name) SELECT (ARRAY['Kırmızı ', 'Straße ', 'Işık ', 'Kiwi '])[g % 4 + 1] || g"
            " FROM generate_series(1, 5000) g"
        )
        sync.execute("ANALYZE product_master")
        texts = ["KIRMIZI", "Kırmızı", "Işık", "İstanbul", "STRASSE", "Straße", "STRAẞE", "ΟΔΟΣ", "Crème"]
        folded = sync.execute("SELECT array_agg(plinqy_caseless(t) ORDER BY n) FROM unnest(%s::text[])"
                              " WITH ORDINALITY AS u(t, n)", (texts,)).fetchone()[0]  # type: ignore[index]  # fmt: skip
    assert [caseless(lower_as_sql(t)) for t in texts] == folded
    assert folded[:7] == ["kirmizi", "kirmizi", "işik", "istanbul", "strasse", "strasse", "strasse"]
    prefix, head, last = split_prefix("KIRMIZI 1")
    walk = statement("engine/suggest", "suggest").bind(
        prefixes=[caseless(prefix)], brand_prefix=fold_accents(prefix), head=head, glued_head=None, last_word=last,
        lon=None, lat=None, radius_m=5000.0, lim=10, walk_cap=suggest_module.WALK_CAP,
        probe_cap=suggest_module.PROBE_CAP, narrow_stores=suggest_module.NARROW_STORES, near=False, store_ids=None,
    )  # fmt: skip

    async def plan(conn: asyncpg.Connection) -> list[str]:
        async with conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")  # as suggest() plans it
            raw = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + statement("engine/suggest", "suggest").sql,
                                      *walk)  # fmt: skip
        return _index_scans(json.loads(raw)[0]["Plan"])

    assert "ix_product_master_name_prefix" in run(_call(fresh_db_url, plan))


def _index_scans(plan: dict[str, Any]) -> list[str]:
    """The indexes an EXPLAIN (JSON) plan's nodes read, one entry a node."""
    here = [plan["Index Name"]] if "Index Name" in plan else []
    return here + [name for child in plan.get("Plans", []) for name in _index_scans(child)]


def test_one_folded_brand_index_serves_the_filter_and_the_completions(fresh_db_url: str) -> None:
    """Migration 0039: `plinqy_fold(brand) text_pattern_ops` replaces the filter's btree (0038) and the walk's
    lower(brand) one (0009); the brand filter's probe and the completions' walk and probes each read it."""
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        sync.execute(
            "INSERT INTO product_master (name, brand) SELECT 'Plan probe ' || g,"
            " (ARRAY['Château', 'Chateau', 'Łowicz', 'Bolt'])[g % 4 + 1] || ' ' || (g % 500)"
            " FROM generate_series(1, 5000) g"
        )
        sync.execute("ANALYZE product_master")
        brand_indexes = sync.execute(  # indexes keyed on the brand (others only carry it: INCLUDE)
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'product_master'"
            " AND split_part(indexdef, ' INCLUDE ', 1) LIKE '%brand%'"
        ).fetchall()
    assert [name for name, _definition in brand_indexes] == ["ix_product_master_brand_folded_prefix"], brand_indexes
    passing = statement("engine/search", "products_passing")
    suggesting = statement("engine/suggest", "suggest")
    prefix, head, last = split_prefix("chât")
    walk = suggesting.bind(
        prefixes=[prefix], brand_prefix=fold_accents(prefix), head=head, glued_head=None, last_word=last, lon=None,
        lat=None, radius_m=5000.0, lim=10, walk_cap=suggest_module.WALK_CAP, probe_cap=suggest_module.PROBE_CAP,
        narrow_stores=suggest_module.NARROW_STORES, near=False, store_ids=None,
    )  # fmt: skip

    async def plans(conn: asyncpg.Connection) -> list[list[str]]:
        out = []
        by_brand = passing.bind(category_ids=None, exclude_id=None, brand="CHATEAU 7", excluding=None)
        for stmt, values in ((passing, by_brand), (suggesting, walk)):
            async with conn.transaction():
                await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")  # as suggest() plans it
                raw = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + stmt.sql, *values)
            out.append(_index_scans(json.loads(raw)[0]["Plan"]))
        return out

    filtered, walked = run(_call(fresh_db_url, plans))
    assert filtered == ["ix_product_master_brand_folded_prefix"], filtered
    # the walk's first key, each next key, and each key's products
    assert walked.count("ix_product_master_brand_folded_prefix") == 3, str(walked)


async def _through_suggest(
    conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch, q: str
) -> dict[str, list[Suggestion]]:
    """`suggest`'s answers to `q`, near CENTER and globally, by every path: the index, the walk, the narrow plan
    (radius scopes) and the labels, each through `suggest` itself (its checks of the prefix included)."""
    labels = ProductLabels()
    await labels.load(conn)
    await labels.load_categories(conn)
    index, sets = await _loaded(conn)
    answers = {}
    for point, metres in ((CENTER, 1000.0), ((None, None), 5000.0)):
        params = SuggestParams(q, point[0], point[1], metres, 10)
        answers[f"index {metres}"] = await suggest(conn, params, None, index, sets)
        for narrow in (0, 10_000):
            monkeypatch.setattr(suggest_module, "NARROW_STORES", narrow)
            answers[f"sql {narrow} {metres}"] = await suggest(conn, params)
            answers[f"labels {narrow} {metres}"] = await suggest(conn, params, labels)
    return answers


def test_no_path_suggests_a_text_the_search_refuses(fresh_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Names and brands stored with an ESC, a BEL or a C1 control (as rows were before ingest made them spaces),
    and a name past search's 256 characters, were suggested, and the search the page ran with the pick was a 400
    (`q`/`brand` must not contain control characters). No path offers them; their clean neighbours stay."""
    long_name = "Zqxbar Long" + " word" * 60
    products = [("Zqxbar\x1b[1m Deluxe\x07 Tee", None), ("Zqxbar Plain Tee", None), (long_name, None),
                ("Zqxbar Brandprobe", "Zqx\x07Brand"), ("Zqxbar Other", "Zqxclean"),
                ("Oat \x9b Milk", None)]  # fmt: skip
    _stocked_at_center(fresh_db_url, [(name, brand, None) for name, brand in products])

    async def offered(conn: asyncpg.Connection, q: str) -> dict[str, list[tuple[str, str]]]:
        return {
            way: [(s.kind, s.text) for s in got if s.kind in ("product", "brand")]  # word completions are typed text
            for way, got in (await _through_suggest(conn, monkeypatch, q)).items()
        }

    clean = [("brand", "Zqxclean"), ("product", "Zqxbar Brandprobe"), ("product", "Zqxbar Other"),
             ("product", "Zqxbar Plain Tee")]  # fmt: skip
    for q, want in (("zqx", clean), ("oat", []), ("zqxbar l", [])):
        for way, got in run(_call(fresh_db_url, offered, q)).items():
            assert sorted(got) == want, (q, way, got)


def test_a_prefix_of_combining_marks_alone_suggests_nothing_by_every_path(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`q` = U+0301 (a dead key's accent typed alone), U+034F or U+20DD gave ten categories and brands in alphabetical
    order: the prefix was not blank, but folding its accents left "", which every label starts with. Such a prefix is
    wordless, as `suggest` says, and gives none (as `/v1/search` finds nothing); a mark after a letter still folds."""
    with psycopg.connect(fresh_db_url, autocommit=True) as sync:
        added = sync.execute("INSERT INTO category (name) VALUES ('Grenvox Goods') RETURNING id").fetchone()
    assert added is not None
    _stocked_at_center(fresh_db_url, [("Grenvox Tee", "Alpenmilch", added[0]), ("Bolt Drill", "Bolt", added[0])])

    async def answers(conn: asyncpg.Connection, q: str) -> dict[str, list[Suggestion]]:
        return await _through_suggest(conn, monkeypatch, q)

    for q in ("\u0301", "\u034f", "\u0301\u0301", "\u20dd", " \u0301 "):
        for way, got in run(_call(fresh_db_url, answers, q)).items():
            assert got == [], (q, way, got)
    for way, got in run(_call(fresh_db_url, answers, "g\u0301")).items():
        assert ("category", "Grenvox Goods") in [(s.kind, s.text) for s in got], (way, got)
