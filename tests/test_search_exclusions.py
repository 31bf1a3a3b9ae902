"""`-word` and `-"a phrase"` in every mode, over the API with the real model: only the keyword side applied them, so
hybrid and semantic search ranked the excluded products back in (`milk -oat`: the oat milks), and the text embedded
held `-oat`, near oat milk. And a query with an exclusion lost its compound words (`tooth paste -mint`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from embeddings.encoder import Encoder
from search_service.engine.text import query_words
from tests.test_api import CENTER, Item, app_settings, load_test_encoder, running_client, seed_catalogue

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
