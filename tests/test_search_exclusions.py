"""`-word` and `-"a phrase"` in every mode, over the API with the real model: only the keyword side applied them, so
hybrid and semantic search ranked the excluded products back in (`milk -oat`: the oat milks), and the text embedded
held `-oat`, near oat milk. And a query with an exclusion lost its compound words (`tooth paste -mint`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import asyncpg
import psycopg
import pytest
from litestar.testing import TestClient

from embeddings.encoder import Encoder
from search_service.engine.suggest import Suggestion, SuggestParams, suggest
from search_service.engine.text import (
    embedded_text,
    may_exclude,
    negated_operands,
    query_words,
    spaced_sizes,
    without_exclusions,
)
from tests.test_api import CENTER, Item, Listing, app_settings, load_test_encoder, running_client, seed_catalogue

AT_CENTER = {"lat": CENTER[0], "lon": CENTER[1], "radius_m": 5000}
ITEMS = [
    Item("oat1", "Oat Milk Original", "Creamy oat drink made from oats.", "Plant-based drinks"),
    Item("oat2", "Unsweetened Oat Milk", "Oat milk without added sugar.", "Plant-based drinks"),
    Item("oat3", "Barista Oat Milk", "Oat drink that foams for coffee.", "Plant-based drinks"),
    Item("whole", "Whole Milk 1 L", "Fresh full-fat cow's milk.", "Milk & eggs"),
    Item("semi", "Semi-Skimmed Milk", "Fresh cow's milk, 1.5% fat.", "Milk & eggs"),
    Item("almond", "Almond Milk", "Almond drink, unsweetened.", "Plant-based drinks"),
    Item("goat", "Goat Milk", "Fresh goat's milk.", "Milk & eggs"),
    Item("bar", "Dark Chocolate Bar", "70% cocoa dark chocolate.", "Pantry"),
    Item("spread", "Chocolate Spread", "Hazelnut and cocoa spread.", "Pantry"),
    Item("cocoa", "Hot Chocolate Powder", "Cocoa drink powder.", "Pantry"),
    Item("mint", "Mint Toothpaste", "Fresh mint fluoride toothpaste.", "Beauty"),
    Item("white", "Whitening Toothpaste", "Fluoride toothpaste for whiter teeth.", "Beauty"),
    Item("wall", "Wallpaper Paste", "Paste for hanging wallpaper.", "Household"),
    Item("washer", "Faucet washer set", "Rubber seals for leaking faucets.", "Plumbing"),  # seed_catalogue's image
    # a name and a brand that start with an exclusion typed (`milk - chocolate`, `choco - milk`): suggestion rows
    Item("flavoured", "Milk - Chocolate Flavour", "Chocolate flavoured drink.", "Milk & eggs"),
    Item("farm", "Farm Cocoa Drink", "Cocoa drink.", "Pantry", brand="Choco - Milk Farm"),
    # word completions whose only products near the point hold the word excluded (`zorblat -rye drin`); no oat
    # nor milk in the words excluded: the tests above read every Oat as an oat milk
    Item("z-flavour", "Zorblat Milk - Chocolate Flavour", "Zorblat.", "Milk & eggs"),
    Item("z-bar", "Zorblat Chocolate Bar", "Zorblat.", "Pantry"),
    Item("z-rye", "Zorblat Rye Drink", "Zorblat.", "Plant-based drinks"),
    Item("z-barista", "Zorblat Rye Barista", "Zorblat.", "Plant-based drinks"),
    Item("z-pea", "Zorblat Pea Drink", "Zorblat.", "Plant-based drinks", listings=[Listing("far", 2.5)]),
    # word completions after an apostrophe and a hyphen (`women's ja`, `all-weather ja`)
    Item("jacket", "Women's All-Weather Jacket, Red", "Waterproof.", "Household"),
]


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_test_encoder()


@pytest.fixture(scope="module")
def client(db_url: str, encoder: Encoder) -> Iterator[TestClient[Any]]:
    seed_catalogue(db_url, encoder, ITEMS)
    with running_client(app_settings(db_url), encoder) as c:
        yield c


def _search(client: TestClient[Any], **params: Any) -> dict[str, Any]:
    answer = client.get("/v1/search", params={**AT_CENTER, "limit": 10, **params})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _names(body: dict[str, Any]) -> list[str]:
    return [r["product"]["name"] for r in body["results"]]


@pytest.mark.parametrize("mode", ["semantic", "hybrid"])
def test_no_result_of_any_mode_holds_an_excluded_word(client: TestClient[Any], mode: str) -> None:
    milks = _names(_search(client, q="milk -oat", mode=mode))
    assert not [n for n in milks if "Oat" in n] and "Whole Milk 1 L" in milks, milks
    assert "Goat Milk" in milks  # a word excluded is that word: `goat` is no `oat`
    chocolate = _names(_search(client, q="chocolate -bar", mode=mode))
    assert "Dark Chocolate Bar" not in chocolate and "Chocolate Spread" in chocolate, chocolate
    phrase = _names(_search(client, q='milk -"oat milk"', mode=mode))
    assert not [n for n in phrase if "Oat" in n] and "Almond Milk" in phrase, phrase
    # the whole set behind facets, sorted by price: the same exclusion, and counts that agree with the results
    faceted = _search(client, q="milk -oat", mode=mode, limit=100, facets="category", sort="price")
    assert not [n for n in _names(faceted) if "Oat" in n] and faceted["total"] == len(faceted["results"]), faceted
    for c in faceted["facets"]["category"]:
        chosen = _search(
            client, q="milk -oat", mode=mode, limit=100, facets="category", sort="price", category_id=c["id"]
        )
        assert chosen["total"] == c["count"] and not [n for n in _names(chosen) if "Oat" in n], (c, chosen)


def test_the_text_embedded_leaves_out_the_excluded_words_and_the_operators(client: TestClient[Any]) -> None:
    def scores(q: str) -> dict[str, float]:
        return {r["product"]["name"]: r["score"] for r in _search(client, q=q, mode="semantic", limit=50)["results"]}

    plain, excluding = scores("milk"), scores("milk -oat")
    assert excluding == {name: score for name, score in plain.items() if "Oat" not in name}  # `milk` embedded
    operators = scores('"whole milk" -"oat milk" - soy')  # quotes and `-`: no words of its meaning
    assert operators == {name: score for name, score in scores("whole milk").items() if "Oat" not in name}
    # nothing left to embed: no vector side, as the keyword side finds nothing for a query that needs no word
    for mode in ("semantic", "hybrid", "keyword"):
        assert _search(client, q="-oat", mode=mode)["results"] == [], mode


def test_a_query_with_an_exclusion_keeps_its_compound_words(client: TestClient[Any]) -> None:
    assert query_words("tooth paste -mint") == ["tooth", "paste"]
    assert query_words('"tooth paste" -mint') == [] and query_words("tooth or paste -mint") == []
    names = _names(_search(client, q="tooth paste -mint", mode="keyword"))
    assert names[0] == "Whitening Toothpaste" and "Mint Toothpaste" not in names, names
    assert _names(_search(client, q="tooth paste -zq", mode="keyword"))[:2] == [
        "Mint Toothpaste",
        "Whitening Toothpaste",
    ]
    # the last word as a prefix, joined with the word before it (`toothpa*`), keeps the exclusion too
    assert set(_names(_search(client, q="tooth pa -zq", mode="keyword"))[:2]) == {
        "Mint Toothpaste",
        "Whitening Toothpaste",
    }
    assert _names(_search(client, q="tooth pa -mint", mode="keyword"))[0] == "Whitening Toothpaste"
    assert "Mint Toothpaste" not in _names(_search(client, q="tooth pa -mint", mode="keyword"))
    assert _names(_search(client, q="tooth paste -mint", mode="hybrid"))[0] == "Whitening Toothpaste"


# Forms whose `-` PostgreSQL's websearch_to_tsquery reads one way or the other: after `(`, `&`, `|`, `!`, `<` or an
# empty phrase it negates (Python's test read only a `-` after a space), inside a word or a phrase it does not, two
# cancel, and a space is what glibc's iswspace calls one (no no-break space).
READINGS = [
    *("milk -oat", "milk (-oat)", "milk&-oat", "milk|-oat", "milk!-oat", "milk<-oat>", 'milk ""-oat', "milk)-oat"),
    *("milk --oat", "milk ---oat", "milk -(-oat)", "milk - -oat", "milk -!-oat", "x-ray -soy", "milk-oat"),
    *("milk ,-oat", "milk :-oat", "milk -:oat", 'milk "-oat', '"milk -oat"', '-"oat milk" soy', 'milk "a"-oat'),
    *("-oat-milk", "milk -", "milk - oat", "milk or -oat", "milk or-oat", "-oat or milk", "milk -500ml", "-oat"),
    *('milk -""oat', "a!b -c", "milk -http://a.com/x!y", "milk -o-a-t", "oat -milk -", "milk -(oat soy)"),
    *(f"milk{space}-oat" for space in map(chr, range(0x110000)) if space.isspace()),
]
_TSQUERY_PARTS = re.compile(r"'(?:[^']|'')*'|(!+)('(?:[^']|'')*'|\((?:[^()']|'(?:[^']|'')*')*\))")


def test_python_reads_what_a_minus_excludes_as_postgresql_does(db_url: str) -> None:
    # one rule: the operands Python takes as excluded are those websearch_to_tsquery negates (an odd run of NOTs),
    # and the words it keeps (without_exclusions: the compound and prefix words, the text embedded) the others
    with psycopg.connect(db_url, autocommit=True) as conn:

        def tsquery(text: str) -> str:
            row = conn.execute("SELECT websearch_to_tsquery('plinqy_simple', %s)::text", (text,)).fetchone()
            assert row is not None
            return str(row[0])

        def lexemes(text: str) -> set[str]:
            return set(re.findall(r"'((?:[^']|'')*)'", tsquery(text)))

        for q in READINGS:
            negated, wanted = set(), set()
            for part in _TSQUERY_PARTS.finditer(tsquery(q)):
                odd = part.group(1) is not None and len(part.group(1)) % 2 == 1
                (negated if odd else wanted).update(re.findall(r"'((?:[^']|'')*)'", part.group(0)))
            ours = {w for n in negated_operands(q) if n.excluded for w in lexemes(f'"{q[n.operand : n.end]}"')}
            # (a NOT of no word, `-""oat`, `-,`, may still be taken for one: the filter then excludes nothing)
            assert ours == negated and may_exclude(q) >= bool(negated), repr(q)
            # (an `or` left last is its operator, `milk or -oat`: last_word_prefix reads it so)
            assert lexemes(without_exclusions(q).replace('"', " ")) - {"or"} == wanted - {"or"}, repr(q)
            assert lexemes(embedded_text(q)) == wanted, repr(q)


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_every_form_of_an_exclusion_is_applied_in_every_mode(client: TestClient[Any], mode: str) -> None:
    # `milk (-oat)`: keyword mode left the oat milks out, hybrid and semantic ranked 20 of them in
    for q in ("milk (-oat)", "milk&-oat", "milk|-oat", "milk!-oat", "milk<-oat>", 'milk ""-oat', "milk -(oat)"):
        names = _names(_search(client, q=q, mode=mode))
        assert names and not [n for n in names if "Oat" in n], (q, names)
        assert "Whole Milk 1 L" in names, (q, names)
    assert embedded_text("milk (-oat)") == embedded_text("milk&-oat") == "milk"


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_two_minuses_read_as_postgresql_reads_them_in_every_mode(client: TestClient[Any], mode: str) -> None:
    # `milk --oat` is websearch's 'milk' & !!'oat': oat wanted. Keyword mode answered the milks without oat (its
    # prefix read `milk -oat`), hybrid and semantic left the oat milks out; now every mode wants oat
    names = _names(_search(client, q="milk --oat", mode=mode))
    assert {"Oat Milk Original", "Unsweetened Oat Milk", "Barista Oat Milk"} <= set(names), names
    if mode == "keyword":
        assert all("Oat" in n for n in names), names


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_a_size_glued_to_its_unit_excludes_its_spaced_form(client: TestClient[Any], mode: str) -> None:
    # `milk 1l` finds `Whole Milk 1 L`; `milk -1l` kept it in every mode (only the glued `1l` was excluded)
    names = _names(_search(client, q="milk -1l", mode=mode))
    assert names and "Whole Milk 1 L" not in names, names
    assert "Whole Milk 1 L" in _names(_search(client, q="milk 1l", mode=mode))
    # quoted: the size's own quotes ended the phrase (`-""1 l""`: nothing excluded, `1` and `l` wanted)
    quoted = _names(_search(client, q='milk -"1l"', mode=mode))
    assert quoted and "Whole Milk 1 L" not in quoted, quoted


def test_a_suggestion_never_turns_an_excluded_word_into_the_word(client: TestClient[Any]) -> None:
    def texts(q: str) -> list[str]:
        answer = client.get("/v1/suggest", params={"q": q, **AT_CENTER})
        assert answer.status_code == 200, answer.text
        return [s["text"] for s in answer.json()["suggestions"]]

    # `milk -oat` suggested "milk oat", `oat -milk` "oat milk", `-oat` "oat": the excluded last word completed
    assert "milk oat" in texts("milk oa") and "oat milk" in texts("oat mi")  # the same words typed as wanted
    for q in ("milk -oat", "oat -milk", "-oat", "milk (-oat", 'milk -"oat'):
        assert texts(q) == [], (q, texts(q))
    # a word after the exclusion is completed, keeping the exclusion as typed
    completed = texts("milk -oat whol")
    assert completed and all(t.startswith("milk -oat whol") for t in completed), completed
    # nor a completion into a word the query excludes: `milk -whole whol` offered "milk -whole whole"
    assert any(t.endswith(" whole") for t in texts("milk whol")), texts("milk whol")
    assert not [t for t in texts("milk -whole whol") if t.endswith(" whole")], texts("milk -whole whol")


def test_a_word_completion_keeps_the_apostrophes_and_hyphens_typed(client: TestClient[Any]) -> None:
    """A completion keeps the text typed before its last word, as with a `-` (above): `women's ja` offered
    `women s jacket`, which the page then put in the search box and the address bar."""

    def completions(q: str) -> list[str]:
        answer = client.get("/v1/suggest", params={"q": q, **AT_CENTER})
        assert answer.status_code == 200, answer.text
        return [s["text"] for s in answer.json()["suggestions"] if s["kind"] == "query"]

    for typed, wanted in (("Women's ja", "women's jacket"), ("women's all-weather ja", "women's all-weather jacket")):
        offered = completions(typed)
        assert wanted in offered and all(t.startswith(typed.lower()) for t in offered), (typed, offered)


def test_a_suggestion_row_never_offers_what_search_excludes(client: TestClient[Any], db_url: str) -> None:
    def offered(q: str, kind: str) -> list[str]:
        answer = client.get("/v1/suggest", params={"q": q, **AT_CENTER})
        assert answer.status_code == 200, answer.text
        return [s["text"] for s in answer.json()["suggestions"] if s["kind"] == kind]

    def searched(q: str) -> list[str]:
        return _names(_search(client, q=q, mode="keyword", limit=50))

    # `milk - chocolate` offered `Milk - Chocolate Flavour`, which search leaves out; `milk - choc` excludes `choc`
    # only, which the name does not hold: offered, and found
    assert "Milk - Chocolate Flavour" not in searched("milk - chocolate")
    assert offered("milk - chocolate", "product") == [], offered("milk - chocolate", "product")
    assert offered("milk - choc", "product") == ["Milk - Chocolate Flavour"]
    assert "Milk - Chocolate Flavour" in searched("milk - choc")
    # a brand whose words hold the excluded word: search leaves out every product of it
    assert "Farm Cocoa Drink" not in searched("cocoa choco - milk") and "Farm Cocoa Drink" in searched(
        "cocoa choco - mil"
    )
    assert offered("choco - milk", "brand") == [], offered("choco - milk", "brand")
    assert offered("choco - mil", "brand") == ["Choco - Milk Farm"]
    # the statement plan (no in-memory index) drops them too
    for q, kind in (("milk - chocolate", "product"), ("choco - milk", "brand")):
        rows = asyncio.run(_suggest_from_sql(db_url, SuggestParams(q, *CENTER)))
        assert not [s for s in rows if s.kind == kind], (q, rows)
    kept = asyncio.run(_suggest_from_sql(db_url, SuggestParams("milk - choc", *CENTER)))
    assert [s.text for s in kept if s.kind == "product"] == ["Milk - Chocolate Flavour"]


def test_a_word_completion_is_offered_only_where_a_product_in_scope_survives_the_exclusion(
    client: TestClient[Any], db_url: str
) -> None:
    # `zorblat -rye drin` offered `zorblat -rye drink`, whose only product near the point is a rye drink: the
    # completion's earlier words and word were matched, not what `-` excludes (a keyword search for it: nothing)
    def offered(q: str, scope: dict[str, Any]) -> list[str]:
        answer = client.get("/v1/suggest", params={"q": q, **scope})
        assert answer.status_code == 200, answer.text
        return [s["text"] for s in answer.json()["suggestions"] if s["kind"] == "query"]

    def from_sql(q: str, scope: dict[str, Any]) -> list[str]:
        params = SuggestParams(q, scope.get("lat"), scope.get("lon"), scope.get("radius_m", 5000))
        return [s.text for s in asyncio.run(_suggest_from_sql(db_url, params)) if s.kind == "query"]

    def found(q: str, scope: dict[str, Any]) -> list[str]:
        answer = client.get("/v1/search", params={"q": q, "mode": "keyword", "limit": 50, **scope})
        assert answer.status_code == 200, answer.text
        return _names(answer.json())

    everywhere: dict[str, Any] = {}
    for scope in (AT_CENTER, everywhere):
        for way in (offered, from_sql):
            for q, wrong in (("zorblat -chocolate fla", "flavour"), ("zorblat -rye bar", "barista")):
                assert not found(f"zorblat {q.split()[1]} {wrong}", scope)
                assert f"zorblat {q.split()[1]} {wrong}" not in way(q, scope), (way.__name__, scope, q, way(q, scope))
            assert "zorblat -rye bar" in way("zorblat -rye bar", scope)  # Zorblat Chocolate Bar holds no rye
            # the pea drink is listed 30 km away only: in scope globally
            assert ("zorblat -rye drink" in way("zorblat -rye drin", scope)) == (scope is everywhere), (way, scope)
            assert bool(found("zorblat -rye drink", scope)) == (scope is everywhere)
            assert "zorblat drink" in way("zorblat drin", scope)  # the rye drink, without the exclusion


NO_BREAK_SPACES = ("\u00a0", "\u2007", "\u202f")


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_a_no_break_space_before_a_minus_is_a_space_to_search(client: TestClient[Any], mode: str) -> None:
    # websearch read `milk<NBSP>-chocolate` as one word, `-` inside it: chocolate wanted, only the chocolate milks
    plain = _names(_search(client, q="milk -chocolate", mode=mode, limit=50))
    assert plain and not [n for n in plain if "Chocolate" in n], plain
    for space in NO_BREAK_SPACES:
        assert _names(_search(client, q=f"milk{space}-chocolate", mode=mode, limit=50)) == plain, repr(space)


def test_a_no_break_space_before_a_minus_is_a_space_to_suggest(client: TestClient[Any]) -> None:
    def offered(q: str) -> list[tuple[str, str]]:
        answer = client.get("/v1/suggest", params={"q": q, **AT_CENTER})
        assert answer.status_code == 200, answer.text
        return [(s["kind"], s["text"]) for s in answer.json()["suggestions"]]

    # suggest split on it, search's exclusion did not: `milk<NBSP>- chocolate` offered `Milk - Chocolate Flavour`
    for space in NO_BREAK_SPACES:
        for typed in ("milk{}- chocolate", "milk{}-chocolate", "milk{}-oat whol", "milk{}-whole whol"):
            assert offered(typed.format(space)) == offered(typed.format(" ")), (typed, repr(space))
    assert offered("milk - choc") == [("product", "Milk - Chocolate Flavour")]  # the name is offered where not excluded


async def _suggest_from_sql(url: str, params: SuggestParams) -> list[Suggestion]:
    conn = await asyncpg.connect(url)
    try:
        return await suggest(conn, params)
    finally:
        await conn.close()


def test_a_size_inside_a_phrase_is_spaced_within_it() -> None:
    # its own quotes ended the phrase typed: `milk -"whole milk 1l"` excluded every Whole Milk and wanted `1` and `l`
    assert spaced_sizes('milk -"1l"') == 'milk -"1 l"'
    assert spaced_sizes('milk -"whole milk 1l"') == 'milk -"whole milk 1 l"'
    assert spaced_sizes('milk "1l') == 'milk "1 l'  # an unclosed quote: a phrase to the end
    assert spaced_sizes('whole milk 1l "a 500g"') == 'whole milk "1 l" "a 500 g"'
