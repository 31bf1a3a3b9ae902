"""The keyword side's order as a shopper reads it: a word typed in the plural finds the products named with it
first. A stem that is also the word (`tomato`) stood in a name twice (its simple and its english parts), so for
`tomatoes` every "Tomato …" (0.2) outranked every "… Tomatoes" (0.1): Vine Tomatoes came 17th in hybrid."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from tests.ingest_helpers import bearer, new_store, store_key

NEAR = {"lat": 52.52, "lon": 13.405, "radius_m": 1000}


def _names(base: str, q: str, mode: str) -> list[str]:
    answer = httpx.get(f"{base}/v1/search", params={**NEAR, "q": q, "mode": mode, "limit": 10})
    assert answer.status_code == 200, answer.text
    return [r["product"]["name"] for r in answer.json()["results"]]


def test_the_words_as_typed_rank_above_their_stem_alone(base: str, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, store := new_store(conn), "listings:write")
    names = ["Zorvex Tomato Juice", "Zorvex Tomato Sauce", "Zorvex Vine Tomatoes", "Zorvex Cherry Tomatoes"]
    items: list[dict[str, Any]] = [
        {"sku": f"T-{n}", "name": name, "price": 2, "quantity": 3} for n, name in enumerate(names)
    ]
    written = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json={"items": items}, headers=bearer(key))
    assert [r["status"] for r in written.json()["results"]] == ["mapped"] * 4, written.text
    plural = _names(base, "zorvex tomatoes", "keyword")
    assert set(plural[:2]) == {"Zorvex Vine Tomatoes", "Zorvex Cherry Tomatoes"} and len(plural) == 4, plural
    singular = _names(base, "zorvex tomato", "keyword")
    assert set(singular[:2]) == {"Zorvex Tomato Juice", "Zorvex Tomato Sauce"} and len(singular) == 4, singular


def _write(base: str, db_url: str, prefix: str, names: list[str]) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = store_key(conn, store := new_store(conn), "listings:write")
    items: list[dict[str, Any]] = [
        {"sku": f"{prefix}-{n}", "name": name, "price": 2, "quantity": 3} for n, name in enumerate(names)
    ]
    written = httpx.post(f"{base}/v1/stores/{store}/listings/batch", json={"items": items}, headers=bearer(key))
    assert [r["status"] for r in written.json()["results"]] == ["mapped"] * len(names), written.text


def _explained(base: str, q: str) -> dict[str, list[str]]:
    params = {**NEAR, "q": q, "mode": "keyword", "limit": 10, "explain": "true"}
    answer = httpx.get(f"{base}/v1/search", params=params)
    assert answer.status_code == 200, answer.text
    return {r["product"]["name"]: r["explain"]["typo_corrections"] for r in answer.json()["results"]}


def test_a_typo_is_corrected_within_an_edit_distance_bound_by_its_length(base: str, db_url: str) -> None:
    # `flavor` passed the trigram threshold (0.3) for `flask` and `flash`, three edits away; `parac` for `parasol`
    slips = {
        "choclate": "Milk Chocolate Bar",
        "bananna": "Organic Banana Bunch",
        "shampo": "Herbal Shampoo",
        "paracetemol": "Paracetamol Tablets",
        "ibuprofin": "Ibuprofen Gel",
        "toothbrsh": "Electric Toothbrush",
    }
    distant = ["Vacuum Flask", "USB Flash Drive", "Chocolate Flask Gift Set", "Beach Parasol"]
    _write(base, db_url, "E", [*slips.values(), *distant])
    for slip, name in slips.items():
        assert name in _names(base, slip, "keyword"), slip
    assert _names(base, "flavor", "keyword") == []
    assert _names(base, "parac", "keyword") == []
    assert "Vacuum Flask" not in _names(base, "flavor", "hybrid")
    # explain's corrections are the keyword side's: `flavor` is dropped (no known word near enough), not `flask`
    explained = _explained(base, "choclate flavor")
    assert explained["Chocolate Flask Gift Set"] == ["choclate->chocolate"], explained
    assert explained["Milk Chocolate Bar"] == ["choclate->chocolate"], explained
