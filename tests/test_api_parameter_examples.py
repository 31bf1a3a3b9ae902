"""The OpenAPI's parameter examples, sent as Swagger's "try it out" sends them (each operation's together), to the
demo `make run` serves (`seed-demo`: real HTTP, real PostgreSQL): a front-end developer who tries the spec gets
answers, not an empty page or a 400 (the examples were Amsterdam's point beside Berlin's box, ids of nothing, a
query for a tap in the category Tea: every search found nothing, and all of them together were a 400)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from embeddings.worker import Worker
from embeddings.worker_config import WorkerConfig
from search_service.demo.seed import seed
from tests.test_api import app_settings, load_test_encoder, running_client


@pytest.fixture(scope="module")
def client(make_database: Callable[..., str]) -> Iterator[TestClient[Any]]:
    """The demo, the examples' category embedded (the worker's job; all 5,000 products take minutes on a CPU)."""
    url = make_database()
    seed(url, "demo", embed=False, quiet=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM ai_task WHERE product_master_id NOT IN (SELECT p.id FROM product_master p"
            " JOIN category c ON c.id = p.category_id WHERE c.name = 'Tap Repair')"
        )
    encoder = load_test_encoder()
    Worker(url, encoder, WorkerConfig(drain=True, poll_interval_s=0.1)).run()
    with running_client(app_settings(url), encoder) as c:
        yield c


def _example(parameter: dict[str, Any]) -> Any:
    examples = [e["value"] for e in (parameter.get("examples") or {}).values()]
    return examples[0] if examples else None


def examples(client: TestClient[Any], path: str) -> dict[str, tuple[str, Any]]:
    """Each parameter of `GET path`: where it goes, its example."""
    spec = client.get("/schema/openapi.json").json()
    return {p["name"]: (p["in"], _example(p)) for p in spec["paths"][path]["get"].get("parameters", [])}


def tried(client: TestClient[Any], path: str) -> Any:
    """`GET path` with every example its operation declares (a flag as its JSON text), the answer's body."""
    values = examples(client, path)
    url = path.format(**{name: value for name, (where, value) in values.items() if where == "path"})
    query = {n: str(v).lower() if isinstance(v, bool) else str(v) for n, (w, v) in values.items() if w == "query"}
    answer = client.get(url, params={n: v for n, v in query.items() if v != "None"})
    assert answer.status_code == 200, (path, answer.text)
    return answer.json()


def test_the_search_examples_sent_together_find_the_example_product_at_the_example_store(
    client: TestClient[Any],
) -> None:
    product = examples(client, "/v1/products/{product_id}/similar")["product_id"][1]
    store = examples(client, "/v1/search")["store_id"][1]
    for path in ("/v1/search", "/v1/products/{product_id}/similar"):
        results = tried(client, path)["results"]
        assert results and {s["id"] for r in results for s in r["stores"]} == {store}, (path, results)
    assert product in [r["product"]["id"] for r in tried(client, "/v1/search")["results"]]


def test_the_other_examples_find_something(client: TestClient[Any]) -> None:
    product = tried(client, "/v1/products/{product_id}")
    assert product["id"] == examples(client, "/v1/products/{product_id}")["product_id"][1]
    assert tried(client, "/v1/suggest")["suggestions"]
    assert tried(client, "/v1/stores/nearby")["stores"]
