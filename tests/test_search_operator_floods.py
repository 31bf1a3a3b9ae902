"""A query of many operators is answered, never a 500: websearch_to_tsquery holds a run of NOTs on a stack of 32
operators, so `q` of 33 dashes (`milk ------…`, `- - - …`) raised `tsquery stack too small` in every mode, with a
traceback logged per request, and suggest offered the dashes as typed (`------…milk`). engine/text.py bounds the
runs (`bounded_nots`) as both read `q`; what a query excludes or wants stays the same."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from embeddings.encoder import Encoder
from search_service.engine.text import exclusion_readings, query_text, spaced_sizes
from tests.test_api import CENTER, Item, app_settings, load_test_encoder, running_client, seed_catalogue

AT_CENTER = {"lat": CENTER[0], "lon": CENTER[1], "radius_m": 5000}
BBOX = {"bbox": f"{CENTER[1] - 0.05},{CENTER[0] - 0.05},{CENTER[1] + 0.05},{CENTER[0] + 0.05}"}
ITEMS = [
    Item("oat", "Oat Milk Original", "Creamy oat drink made from oats.", "Plant-based drinks"),
    Item("whole", "Whole Milk 1 L", "Fresh full-fat cow's milk.", "Milk & eggs"),
    Item("mint", "Mint Toothpaste", "Fresh mint fluoride toothpaste.", "Beauty"),
    Item("washer", "Faucet washer set", "Rubber seals for leaking faucets.", "Plumbing"),  # seed_catalogue's image
]
DASHES = "-" * 40
FLOODS = [
    DASHES, "-" * 33, f"milk {DASHES}", f"milk {DASHES}oat", f"{'-' * 33}oat", "- " * 40, "-!" * 40, "-(" * 40,
    '"' * 80, "or " * 40 + "milk", "( " * 40 + "milk", "!" * 80 + "milk", "<-> " * 40 + "milk", "-<->" * 40,
    f'"milk" {DASHES}"oat"', f"milk or {DASHES}", f"{DASHES}mi",
]  # fmt: skip
PIECES = ["-", "- ", "--", '"', "!", "(", ")", "<->", "<", "|", "&", ":", "*", " or ", "or", " ", "milk", "oat", "1l"]


@pytest.fixture(scope="module")
def client(db_url: str) -> Iterator[TestClient[Any]]:
    encoder: Encoder = load_test_encoder()
    seed_catalogue(db_url, encoder, ITEMS)
    with running_client(app_settings(db_url), encoder) as c:
        yield c


def _fuzzed(seed: int, count: int, most: int) -> list[str]:
    draw = random.Random(seed)
    return ["".join(draw.choices(PIECES, k=draw.randint(1, 120)))[:most].strip() or "-" for _ in range(count)]


def _parity(tsquery: str) -> str:
    """A tsquery's text with each run of NOTs as its parity reads it (`!` odd, `!!` even)."""
    return re.sub(r"!+", lambda run: "!" if len(run.group()) % 2 else "!!", tsquery)


def test_every_text_sent_to_websearch_parses_and_means_what_was_typed(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:

        def tsquery(config: str, text: str) -> str:
            row = conn.execute("SELECT websearch_to_tsquery(%s::regconfig, %s)::text", (config, text)).fetchone()
            assert row is not None
            return str(row[0])

        for typed in FLOODS + _fuzzed(7, 400, 256):
            q = query_text(typed)
            sized = spaced_sizes(q)
            for text in [q, *(exclusion_readings(q) or []), *([sized] if sized else [])]:
                for config in ("plinqy_simple", "plinqy_english"):
                    tsquery(config, text)  # raised `tsquery stack too small` past 32 NOTs in a run
            try:
                as_typed = tsquery("plinqy_simple", typed)
            except psycopg.errors.InternalError:
                continue
            assert _parity(tsquery("plinqy_simple", q)) == _parity(as_typed), (typed, q)


def _ok(client: TestClient[Any], path: str, **params: Any) -> dict[str, Any]:
    answer = client.get(path, params=params)
    assert answer.status_code == 200, (path, params, answer.text)
    body: dict[str, Any] = answer.json()
    return body


def test_a_flood_of_operators_is_answered_by_search_and_suggest(client: TestClient[Any]) -> None:
    scopes: list[dict[str, Any]] = [AT_CENTER, {**AT_CENTER, "facets": "category,brand,price"}]
    scopes.append({**BBOX, "sort": "price", "facets": "category,store"})
    for q in FLOODS:
        for mode in ("keyword", "hybrid", "semantic"):
            for scope in scopes:
                _ok(client, "/v1/search", q=q, mode=mode, **scope)
        offered = [s["text"] for s in _ok(client, "/v1/suggest", q=q[:100], **AT_CENTER)["suggestions"]]
        assert not [t for t in offered if "---" in t], (q, offered)  # offered `------…milk` as typed
    for q in _fuzzed(11, 60, 256):
        _ok(client, "/v1/search", q=q, mode="keyword", **AT_CENTER)
        _ok(client, "/v1/suggest", q=q[:100], **AT_CENTER)


@pytest.mark.parametrize("mode", ["keyword", "hybrid", "semantic"])
def test_a_long_run_of_minuses_excludes_as_its_parity_says(client: TestClient[Any], mode: str) -> None:
    def names(q: str) -> list[str]:
        return [r["product"]["name"] for r in _ok(client, "/v1/search", q=q, mode=mode, **AT_CENTER)["results"]]

    assert "Oat Milk Original" not in names(f"milk {'-' * 41}oat") and "Whole Milk 1 L" in names(f"milk {'-' * 41}oat")
    assert "Oat Milk Original" in names(f"milk {DASHES}oat")  # an even run cancels, as `milk --oat` does
