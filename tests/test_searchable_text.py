"""Product text and what shoppers type, made alike (search_service/engine/text.py): full-width letters and digits,
ligatures, soft hyphens, zero-width spaces and right-to-left marks around a brand each kept a product from the
words a shopper types, and a brand's facet value from its own filter."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

import httpx
import psycopg

from search_service.db import migrate
from search_service.engine.text import fold_accents, searchable, trim_invisible
from tests.ingest_helpers import bearer, drain_imports, new_store, store_key

NEAR = {"lat": 52.52, "lon": 13.405, "radius_m": 1000}


def test_searchable_folds_widths_and_ligatures_and_drops_invisible_characters() -> None:
    assert searchable("ＡＢＣ　Ｃｏｌａ　５００ｍｌ") == "ABC Cola 500ml"
    assert searchable("ﬁne ﬂour") == "fine flour"
    assert searchable("Super\u00admarket\u200bbrot\ufeff") == "Supermarketbrot"
    assert searchable("\u200fRTL\u200e ") == "RTL"
    assert searchable("Nutella™ 2 m² ½") == "Nutella™ 2 m² ½"  # what NFKC would change is kept
    joined = "👩\u200d👩\u200d👧 می\u200cخواهم"
    assert searchable(joined) == joined  # the zero-width joiners mean something
    assert searchable("\u3164\u115f\u1160Kim\u3164chi\u2800\uffa0") == "Kim\u3164chi"  # blank fillers: the ends
    format_chars = [chr(c) for c in range(0x10000) if unicodedata.category(chr(c)) == "Cf"]
    assert [ch for ch in format_chars if trim_invisible(f"{ch}x{ch}") != "x"] == []  # the list holds Unicode's Cf


def _search(base: str, **params: Any) -> list[dict[str, Any]]:
    answer = httpx.get(f"{base}/v1/search", params={**NEAR, "mode": "keyword", **params})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["results"])


def test_text_from_the_world_is_found_by_the_words_a_shopper_types(base: str, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, store := new_store(conn), "listings:write")
    items = [
        {"sku": "FW-1", "name": "ＡＢＣ　Ｃｏｌａ　５００ｍｌ", "price": 1, "quantity": 3},
        {"sku": "SH-1", "name": "Super\u00admarket\u00adbrot", "price": 2, "quantity": 3},
        {"sku": "RL-1", "name": "\u200fשוקולד\u200f chocolate", "brand": "\u200fRTL", "price": 3, "quantity": 3},
        {"sku": "LG-1", "name": "Zephyrine ﬁne ﬂour", "price": 4, "quantity": 3},
    ]
    written = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json={"items": items}, headers=bearer(key))
    assert [r["status"] for r in written.json()["results"]] == ["mapped"] * 4, written.text
    assert [r["product"]["name"] for r in _search(base, q="cola 500ml")][:1] == ["ABC Cola 500ml"]
    assert [r["product"]["name"] for r in _search(base, q="supermarketbrot")] == ["Supermarketbrot"]
    assert [r["product"]["name"] for r in _search(base, q="Ｚｅｐｈｙｒｉｎｅ ﬂour")] == ["Zephyrine fine flour"]
    assert [r["product"]["name"] for r in _search(base, q="choco\u00adlate", brand="RTL")] == ["שוקולד\u200f chocolate"]
    faceted = httpx.get(f"{base}/v1/search", params={**NEAR, "q": "chocolate", "facets": "brand"}).json()
    assert {"value": "RTL", "count": 1} in faceted["facets"]["brand"]  # the value its own filter matches
    prefix = httpx.get(f"{base}/v1/suggest", params={"q": "שו", **NEAR}).json()
    assert "שוקולד\u200f chocolate" in [s["text"] for s in prefix["suggestions"]], prefix  # inner marks kept


def test_suggest_reads_typographic_apostrophes_and_hyphens_as_search_does(base: str, db_url: str) -> None:
    """`/v1/suggest` compares prefixes as text: `goat’s` (iOS and macOS type `’`), `goat´s` or `goatʼs` completed
    nothing that `goat's` did, and `lactose‐fr` (U+2010) lost `Lactose-Free`; search found them (its parser splits
    words at either). Both read `q` alike (text.query_text): apostrophe-likes as `'`, a dash inside a word as `-`."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, store := new_store(conn), "listings:write")
    names = ["Quimbly's Goat Milk 1 L", "Quimbly Lactose-Free Oat Drink"]
    items = [{"sku": f"AP-{n}", "name": name, "price": 2, "quantity": 3} for n, name in enumerate(names)]
    written = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json={"items": items}, headers=bearer(key))
    assert [r["status"] for r in written.json()["results"]] == ["mapped"] * 2, written.text

    def products(typed: str) -> list[str]:
        answer = httpx.get(f"{base}/v1/suggest", params={"q": typed, **NEAR})
        assert answer.status_code == 200, answer.text
        return [s["text"] for s in answer.json()["suggestions"] if s["kind"] == "product"]

    for mark in ("'", "\u2019", "\u2018", "`", "\u00b4", "\u02bc"):
        assert products(f"quimbly{mark}s") == [names[0]], mark
        assert products(f"quimbly{mark}s go") == [names[0]], mark
        assert [r["product"]["name"] for r in _search(base, q=f"quimbly{mark}s goat")] == [names[0]], mark
    for dash in ("-", "\u2010", "\u2011", "\u2013", "\u2212"):
        assert products(f"quimbly lactose{dash}fr") == [names[1]], dash
        assert [r["product"]["name"] for r in _search(base, q=f"lactose{dash}free quimbly")] == [names[1]], dash
    # a dash before a word is no `-` (websearch's NOT): `quimbly –goat` excludes nothing
    assert names[0] in [r["product"]["name"] for r in _search(base, q="quimbly \u2013goat")]


def test_the_migration_rewrites_text_stored_before(make_database: Callable[..., str]) -> None:
    url = make_database()
    migrate.downgrade(url, "0032")
    with psycopg.connect(url, autocommit=True) as conn:
        product = conn.execute(
            "INSERT INTO product_master (name, brand, description) VALUES (%s, %s, %s) RETURNING id",
            ("choco\u00adlate ＢＡＲ", "\u200fRTL", "Cafe\u0301 plain"),  # decomposed, as SQL may write it
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("UPDATE ai_task SET status = 'done' WHERE product_master_id = %s", (product,))
    migrate.upgrade(url)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT name, brand, description FROM product_master WHERE id = %s", (product,)).fetchone()
        queued = conn.execute(
            "SELECT count(*) FROM ai_task WHERE product_master_id = %s AND status = 'pending'", (product,)
        ).fetchone()
    assert row == ("chocolate BAR", "RTL", "Café plain")
    assert queued == (1,)  # its text changed: embedded again


def test_lengths_are_checked_as_sent_for_filters_and_as_stored_for_listings(base: str, db_url: str) -> None:
    """A ligature is two or three letters spelled out: a 72-character brand of them was stored 212 long, and the
    brand filter (at most 200, counted after folding) then refused its own facet value and its spelling as sent."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, store := new_store(conn), "listings:write")
    url = f"{base}/v1/stores/{store}/listings"
    long_brand = "Ma" + "\ufb03" * 70  # 72 as sent, 212 spelled out
    refused = httpx.put(f"{url}/LG-2", json={"name": "Lig", "brand": long_brand, "price": 1, "quantity": 1},
                        headers=bearer(key))  # fmt: skip
    assert refused.status_code == 400 and "brand is longer than 200 characters once" in refused.text, refused.text
    fits = "Ma" + "\ufb03" * 66  # 68 as sent, 200 spelled out: stored, and its own filter
    stored = httpx.put(f"{url}/LG-3", json={"name": "Ligature brand", "brand": fits, "price": 1, "quantity": 1},
                       headers=bearer(key))  # fmt: skip
    assert stored.status_code == 200, stored.text
    for brand in (fits, searchable(fits)):
        found = _search(base, q="ligature brand", brand=brand)
        assert [r["product"]["brand"] for r in found] == [searchable(fits)], brand
    ligatures_q = httpx.get(f"{base}/v1/search", params={**NEAR, "q": "\ufb03" * 256, "mode": "keyword"})
    assert ligatures_q.status_code == 200, ligatures_q.text  # 256 as the schema counts them


def test_decomposed_text_counts_as_the_composed_text_stored_and_searched(base: str, db_url: str) -> None:
    """macOS and PDFs paste `é` as `e` + U+0301: a 400-letter name was refused as "longer than 500 characters" (and a
    150-letter brand, by a write, a CSV and the brand filter) though stored composed, 400 long."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, store := new_store(conn), "listings:write")
    url, name, brand = f"{base}/v1/stores/{store}/listings", "Nfdname " + "e\u0301" * 400, "Nfd " + "e\u0301" * 150
    put = httpx.put(f"{url}/NFD-1", json={"name": name, "brand": brand, "price": 1, "quantity": 1}, headers=bearer(key))
    assert put.status_code == 200, put.text
    over = httpx.put(f"{url}/NFD-2", json={"name": "e\u0301" * 501, "price": 1, "quantity": 1}, headers=bearer(key))
    assert over.status_code == 400 and "name is longer than 500 characters" in over.text, over.text
    upload = f"sku,name,brand,price,quantity\nNFD-3,{name},{brand},1,1\n"
    headers = {**bearer(key), "content-type": "text/csv"}
    assert httpx.post(f"{base}/v1/stores/{store}/imports", content=upload.encode(), headers=headers).status_code == 202
    drain_imports(db_url)
    for sku in ("NFD-1", "NFD-3"):  # stored composed: 408 long
        read = httpx.get(f"{url}/{sku}", headers=bearer(key))
        assert read.status_code == 200 and read.json()["title"] == "Nfdname " + "é" * 400, read.text
    found = _search(base, q="nfdname", brand=brand)  # 154 long
    assert [r["product"]["brand"] for r in found] == ["Nfd " + "é" * 150] * 2, found


def test_accents_fold_in_python_as_postgresql_folds_them(db_url: str) -> None:
    """The suggestion's last word is folded in Python (engine/text.py) and compared with words PostgreSQL folded
    (plinqy_simple, migration 0035): the two must agree on every character the rules know."""
    rules = [chr(c) for c in fold_accents.__globals__["_UNACCENT"]]
    with psycopg.connect(db_url) as conn:
        each = "SELECT array_agg(unaccent(c) ORDER BY n) FROM unnest(%s::text[]) WITH ORDINALITY AS u(c, n)"
        folded = conn.execute(each, (rules,)).fetchone()[0]  # type: ignore[index]
        words = conn.execute("SELECT to_tsvector('plinqy_simple', 'Pâté Straße İznik Ærø crème2')::text").fetchone()
    assert [fold_accents(c) for c in rules] == folded and len(rules) > 1500
    assert words == ("'aero':4 'creme2':5 'iznik':3 'pate':1 'strasse':2",)


def test_words_match_whatever_their_accents(base: str, db_url: str) -> None:
    """`creme brulee`, `pate` or `istanbul` found nothing named `Crème Brûlée`, `Pâté`, `İstanbul` in keyword
    mode (typo tolerance corrects one edit, and not in short words); names keep their accents."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, store := new_store(conn), "listings:write")
    names = ["Crème Brûlée Quorvex", "Pâté Quorvex", "İstanbul Simit Quorvex", "Straßenkreide Quorvex"]
    items = [{"sku": f"AC-{n}", "name": name, "price": 2, "quantity": 3} for n, name in enumerate(names)]
    written = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json={"items": items}, headers=bearer(key))
    assert [r["status"] for r in written.json()["results"]] == ["mapped"] * 4, written.text
    for typed, name in (
        ("creme brulee quorvex", names[0]), ("crème brûlée quorvex", names[0]), ("pate quorvex", names[1]),
        ("ISTANBUL simit quorvex", names[2]), ("istanbul quorvex", names[2]), ("strassenkreide", names[3]),
    ):  # fmt: skip
        assert [r["product"]["name"] for r in _search(base, q=typed)] == [name], typed
    for typed in ("quorvex pât", "quorvex pat"):  # the word as the product writes it (it was the folded `pate`)
        completions = httpx.get(f"{base}/v1/suggest", params={"q": typed, **NEAR}).json()["suggestions"]
        assert {"kind": "query", "text": "quorvex pâté"} in [{k: s[k] for k in ("kind", "text")} for s in completions]


def test_the_migration_folds_the_words_stored_before(make_database: Callable[..., str]) -> None:
    url = make_database()
    migrate.downgrade(url, "0034")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO product_master (name) VALUES ('Zorblax Pâté')")
    migrate.upgrade(url)
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT name FROM product_master WHERE search_tsv @@ websearch_to_tsquery('plinqy_simple', 'zorblax pate')"
        ).fetchall()
        terms = conn.execute("SELECT term FROM search_term WHERE term IN ('pate', 'pâté') ORDER BY term").fetchall()
    assert found == [("Zorblax Pâté",)] and terms == [("pate",)]
    migrate.downgrade(url, "0034")  # and back: the words as typed again
    with psycopg.connect(url) as conn:
        terms = conn.execute("SELECT term FROM search_term WHERE term IN ('pate', 'pâté') ORDER BY term").fetchall()
    assert terms == [("pâté",)]


def test_an_exact_name_or_brand_matches_whatever_its_accents(base: str, db_url: str) -> None:
    """`creme brulee` ranked "Creme Brulee Torch for Creme Brulee" above a product named Crème Brûlée, with
    exact_match false: the exact flag compared the names as typed, accents and all."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, store := new_store(conn), "listings:write")
    names = ["Crème Brûlée Vélmoz", "Creme Brulee Velmoz Torch for Creme Brulee Velmoz", "Pâté Zinthar",
             "Pate Zinthar Spreading Knife for Pate Zinthar", "Zinthar Jam Velmoz"]  # fmt: skip
    items = [{"sku": f"EX-{n}", "name": name, "price": 2, "quantity": 3} for n, name in enumerate(names)]
    items[-1]["brand"] = "Łowiçz"
    written = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json={"items": items}, headers=bearer(key))
    assert [r["status"] for r in written.json()["results"]] == ["mapped"] * 5, written.text
    for mode in ("keyword", "hybrid"):
        for typed, name in (
            ("creme brulee velmoz", names[0]), ("CRÈME brûlée velmoz", names[0]), ("pate zinthar", names[2]),
            ("lowicz", names[4]),
        ):  # fmt: skip
            first = _search(base, q=typed, mode=mode, explain="true")[0]
            assert (first["product"]["name"], first["explain"]["exact_match"]) == (name, True), (mode, typed)


def test_brands_fold_in_python_as_postgresql_folds_them(db_url: str) -> None:
    """A brand facet groups by plinqy_fold (migration 0038) in SQL, and by fold_accents of PostgreSQL's lower() in
    memory (engine/facet_memory.py): the two must agree on every character the rules know, in either case."""
    rules = [chr(c) for c in fold_accents.__globals__["_UNACCENT"]]
    texts = rules + [c.upper() for c in rules] + ["Château Belair", "ŁOWICZ", "İstanbul", "STRAẞE"]
    with psycopg.connect(db_url) as conn:
        each = "SELECT array_agg(lower(c) ORDER BY n), array_agg(plinqy_fold(c) ORDER BY n) FROM unnest(%s::text[])"
        lowered, folded = conn.execute(each + " WITH ORDINALITY AS u(c, n)", (texts,)).fetchone()  # type: ignore[misc]
    assert [fold_accents(c) for c in lowered] == folded
    assert folded[-4:] == ["chateau belair", "lowicz", "istanbul", "strasse"]


def test_a_brand_is_one_brand_whatever_its_accents(base: str, db_url: str) -> None:
    """`Château Belair` and `Chateau Belair` were two facet values, `brand=Chateau Belair` found the plain one only
    and `brand=lowicz` nothing of Łowicz."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, store := new_store(conn), "listings:write")
    brands = ["Château Belair", "Château Belair", "Chateau Belair", "Łowicz"]
    items = [{"sku": f"BR-{n}", "name": f"Grenvox Wine {n}", "brand": b, "price": 2, "quantity": 3}
             for n, b in enumerate(brands)]  # fmt: skip
    written = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json={"items": items}, headers=bearer(key))
    assert [r["status"] for r in written.json()["results"]] == ["mapped"] * 4, written.text
    for mode in ("keyword", "hybrid"):
        faceted = httpx.get(f"{base}/v1/search", params={**NEAR, "q": "grenvox", "mode": mode, "facets": "brand"})
        assert faceted.status_code == 200, faceted.text
        values = {v["value"]: v["count"] for v in faceted.json()["facets"]["brand"]}
        assert values == {"Château Belair": 3, "Łowicz": 1}, (mode, values)
        for brand, want in (("Chateau Belair", 3), ("CHÂTEAU BELAIR", 3), ("lowicz", 1)):
            assert len(_search(base, q="grenvox", mode=mode, brand=brand)) == want, (mode, brand)
    # a suggested brand too: one brand for `ch` (it was two), found by `chat` without its accent, shown as its
    # smallest spelling, which its filter finds
    for typed, want in (("ch", ["Chateau Belair"]), ("chat", ["Chateau Belair"]), ("CHÂTEAU B", ["Chateau Belair"]),
                        ("lo", ["Łowicz"])):  # fmt: skip
        answer = httpx.get(f"{base}/v1/suggest", params={"q": typed, **NEAR})
        assert answer.status_code == 200, answer.text
        assert [s["text"] for s in answer.json()["suggestions"] if s["kind"] == "brand"] == want, (typed, answer.text)
