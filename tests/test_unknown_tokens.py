"""Texts the model reads as [UNK] only (`😀`, `🥑🥑🥑`, `抹茶` for MiniLM's vocabulary): every one embedded to about
the same vector, near every query holding an emoji or an unknown script, so semantic `coffee ☕` ranked `😀` first
and `🍎 apple` put `😀` and `🥑🥑🥑` before the apples. Such a product now gets no vector (keyword-only), its task
done with the result 'no token the model knows', and such a query is ranked by its words (keyword mode)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from embeddings.batch import NO_KNOWN_TOKEN
from embeddings.encoder import Encoder
from embeddings.reembed import reembed
from embeddings.text import text_hash
from embeddings.worker import Worker, WorkerConfig
from tests.test_api import CENTER, Item, app_settings, load_test_encoder, running_client, seed_catalogue

AT_CENTER = {"lat": CENTER[0], "lon": CENTER[1], "radius_m": 5000}
ITEMS = [
    Item("coffee", "Ground coffee", "Medium roast arabica coffee, 500 g.", "Pantry"),
    Item("beans", "Espresso coffee beans", "Whole beans for espresso.", "Pantry"),
    Item("apples", "Gala Apples", "Sweet crisp apples, 1 kg.", "Food"),
    Item("bread", "Sourdough bread", "Fresh sourdough loaf.", "Bakery"),
    Item("milk", "Semi-skimmed milk 1 L", "Fresh cow's milk.", "Milk & eggs"),
    Item("washer", "Faucet washer set", "Rubber seals for leaking faucets.", "Plumbing"),  # seed_catalogue's image
]
UNKNOWN_ONLY = ["😀", "🥑🥑🥑", "抹茶"]  # names alone: no brand, category or description to read


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_test_encoder()


@pytest.fixture(scope="module")
def seeded(db_url: str, encoder: Encoder) -> str:
    """The catalogue, and the unknown-only products listed at its store, embedded by the worker from their tasks."""
    seeded = seed_catalogue(db_url, encoder, ITEMS)
    with psycopg.connect(db_url, autocommit=True) as conn:
        for name in UNKNOWN_ONLY:  # ai_vector NULL: the insert trigger queues each one's task
            row = conn.execute("INSERT INTO product_master (name) VALUES (%s) RETURNING id", (name,)).fetchone()
            assert row is not None
            conn.execute(
                "INSERT INTO store_product (store_id, product_master_id, price, currency, quantity) "
                "VALUES (%s, %s, 1.99, 'EUR', 5)",
                (seeded.stores["near"], row[0]),
            )
    totals = Worker(db_url, encoder, WorkerConfig(drain=True)).run()
    assert (totals.errors, totals.lost_lease) == (0, 0), totals
    return db_url


@pytest.fixture(scope="module")
def client(seeded: str, encoder: Encoder) -> Iterator[TestClient[Any]]:
    with running_client(app_settings(seeded), encoder) as c:
        yield c


def _search(client: TestClient[Any], q: str, mode: str) -> dict[str, Any]:
    answer = client.get("/v1/search", params={**AT_CENTER, "q": q, "mode": mode, "limit": 10})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _names(body: dict[str, Any]) -> list[str]:
    return [r["product"]["name"] for r in body["results"]]


def test_the_vocabulary_tells_texts_of_unknown_tokens_only(encoder: Encoder) -> None:
    texts = [*UNKNOWN_ONLY, "", "!!! ...", "coffee ☕", "🍎 apple", "Молоко", "日本", "😀. Category: Snacks"]
    assert encoder.has_known_token(texts) == [False] * 5 + [True] * 5
    # an ASCII letter or digit answers without tokenizing when it is inside what the model reads: past 256 word
    # pieces of emoji (each its own [UNK], spaced) the text is read as unknown only
    unread = " ".join(["😀"] * 300) + " coffee"
    assert encoder.has_known_token([unread, "😀 " * 200 + "x", "１２３", "ß"]) == [False, True, False, True]


def test_a_product_of_unknown_tokens_only_gets_no_vector_and_a_done_task(seeded: str, encoder: Encoder) -> None:
    with psycopg.connect(seeded, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT p.name, p.ai_vector IS NULL, p.ai_text_hash, p.ai_model, p.ai_embedded_at, t.status, t.result "
            "FROM product_master p JOIN ai_task t ON t.product_master_id = p.id WHERE p.name = ANY(%s)",
            (UNKNOWN_ONLY,),
        ).fetchall()
        assert sorted(r[0] for r in rows) == sorted(UNKNOWN_ONLY)
        for name, no_vector, digest, model, stamp, status, result in rows:
            assert (no_vector, status, result) == (True, "done", NO_KNOWN_TOKEN), name
            # read with this model: the worker and `reembed` leave it until its text or the model changes
            assert (digest, model, stamp) == (text_hash(name), encoder.model_id, None), name
        # a task queued again (an edit that leaves the text, a manual requeue) finds it current: no write
        conn.execute("INSERT INTO ai_task (product_master_id) SELECT id FROM product_master WHERE name = '😀'")
        totals = Worker(seeded, encoder, WorkerConfig(drain=True)).run()
        assert (totals.unchanged, totals.embedded, totals.no_vector) == (1, 0, 0), totals
        # an edit that gives it a word the model knows embeds it
        conn.execute("UPDATE product_master SET name = '😀 smiley mug' WHERE name = '😀'")
        totals = Worker(seeded, encoder, WorkerConfig(drain=True)).run()
        assert (totals.embedded, totals.no_vector) == (1, 0), totals
        conn.execute("UPDATE product_master SET name = '😀' WHERE name = '😀 smiley mug'")  # and back: none again
        totals = Worker(seeded, encoder, WorkerConfig(drain=True)).run()
        assert (totals.embedded, totals.no_vector) == (0, 1), totals
        vector = conn.execute("SELECT ai_vector IS NULL, ai_embedded_at FROM product_master WHERE name = '😀'")
        assert vector.fetchone() == (True, None)


def test_reembed_leaves_them_without_a_vector_and_a_limited_rerun_goes_on(
    seeded: str, encoder: Encoder, tmp_path: Path
) -> None:
    # none of them is missing a vector it could have: `--missing` selects nothing, with --limit or without
    for limit in (1, None):
        report = reembed(seeded, encoder, mode="missing", limit=limit, cache_dir=tmp_path, progress=False)
        assert (report.selected, report.written, report.enqueued) == (0, 0, 0), report
    # a vector written before this rule (the worker gave them one) is taken away by `--stale`
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute(
            "UPDATE product_master SET ai_vector = (SELECT ai_vector FROM product_master WHERE name = 'Gala Apples') "
            "WHERE name = '🥑🥑🥑'"
        )
        stale = reembed(seeded, encoder, mode="stale", cache_dir=tmp_path, progress=False)
        assert stale.no_vector == 1, stale  # (the catalogue's own products were seeded without a text hash)
        assert conn.execute("SELECT count(*) FROM product_master WHERE ai_vector IS NULL").fetchone() == (3,)
    # `--all --limit 2`: each rerun goes on past the last one's products; the three without a vector are skipped
    runs = [reembed(seeded, encoder, mode="all", limit=2, cache_dir=tmp_path, progress=False) for _ in range(4)]
    assert [r.written for r in runs] == [2, 2, 2, 0] and not any(r.no_vector for r in runs), runs


def test_a_query_the_model_knows_no_token_of_is_ranked_by_its_words(client: TestClient[Any]) -> None:
    for mode in ("semantic", "hybrid"):
        body = _search(client, "😀", mode)
        assert body["strategy"] == "keyword", (mode, body)  # no vector side: it would rank by the [UNK] vector
        assert set(_names(body)) <= {"😀"}, (mode, body)
    # an unknown token beside known words is harmless: no product of unknown tokens only has a vector to rank
    for mode in ("semantic", "hybrid"):
        coffee = _names(_search(client, "coffee ☕", mode))
        assert coffee[:2] in (["Ground coffee", "Espresso coffee beans"], ["Espresso coffee beans", "Ground coffee"])
        assert not set(coffee) & set(UNKNOWN_ONLY), (mode, coffee)
        apples = _names(_search(client, "🍎 apple", mode))
        assert apples[0] == "Gala Apples" and not set(apples) & set(UNKNOWN_ONLY), (mode, apples)
