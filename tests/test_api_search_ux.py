"""Search features over the API: /v1/search with facets, sort, bbox, fulfilment, explain, store_id; /v1/suggest; 400s
that name the parameter. The catalogue and app of test_api (real database, real model)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from geographiclib.geodesic import Geodesic
from litestar.testing import TestClient

from embeddings.encoder import Encoder
from tests.test_api import AT_CENTER, CENTER, Seeded, app_settings, load_test_encoder, running_client, seed_catalogue

GEOD = Geodesic.WGS84


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_test_encoder()


@pytest.fixture(scope="module")
def seeded(db_url: str, encoder: Encoder) -> Seeded:
    seeded = seed_catalogue(db_url, encoder)
    with psycopg.connect(db_url, autocommit=True) as conn:  # "far" (30 km south) delivers within 40 km
        conn.execute("UPDATE store SET delivery_radius_m = 40000 WHERE id = %s", (seeded.stores["far"],))
    return seeded


@pytest.fixture(scope="module")
def client(db_url: str, seeded: Seeded, encoder: Encoder) -> Iterator[TestClient[Any]]:
    with running_client(app_settings(db_url), encoder) as c:
        yield c


def get(client: TestClient[Any], path: str = "/v1/search", **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def bad(client: TestClient[Any], parameter: str, path: str = "/v1/search", **params: Any) -> str:
    response = client.get(path, params=params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["parameter"] == parameter, error
    return str(error["message"])


def test_plain_search_is_unchanged_and_stores_say_delivers(client: TestClient[Any], seeded: Seeded) -> None:
    body = get(client, q="milk", **AT_CENTER)
    assert "facets" not in body and "explain" not in body and "total" not in body and "total_capped" not in body
    assert all(s["delivers"] is False for r in body["results"] for s in r["stores"])
    # "far" is 30 km away and delivers within 40 km: with a 40 km radius its listings say so, the others do not
    wide = get(client, q="paddle", **AT_CENTER, radius_m=40000)
    flags = {s["id"]: s["delivers"] for r in wide["results"] for s in r["stores"]}
    assert flags.get(str(seeded.stores["far"])) is True
    assert get(client, q="paddle")["results"][0]["stores"][0]["delivers"] is False  # no point


@pytest.mark.parametrize("mode", ["keyword", "hybrid", "semantic"])
def test_facets_are_counts_of_what_choosing_them_gives(client: TestClient[Any], mode: str) -> None:
    base = {"q": "food", "mode": mode, "limit": 100, **AT_CENTER, "radius_m": 40000}
    body = get(client, **base, facets="category,brand,price,store")
    base["facets"] = "price"  # a chosen value comes with facets, over the same result set
    facets = body["facets"]
    assert set(facets) == {"category", "brand", "price", "store"} and facets["store"]
    assert body["total"] == len(body["results"]) and body["total_capped"] is False  # the whole set: under 1000
    for b in facets["brand"]:
        assert get(client, **base, brand=b["value"])["total"] == b["count"]
    for s in facets["store"]:
        assert get(client, **base, store_id=s["id"])["total"] == s["count"]
    for p in facets["price"]:
        price = {"min_price": p["min"]} | ({"max_price": p["max"]} if p["max"] is not None else {})
        assert get(client, **base, **price)["total"] == p["count"]
    for c in facets["category"]:
        assert get(client, **base, category_id=c["id"])["total"] == c["count"]


def _ranked(body: dict[str, Any]) -> list[tuple[str, float]]:
    return [(r["product"]["id"], round(r["score"], 12)) for r in body["results"]]


@pytest.mark.parametrize("q", ["seals", "food", "milk", "pain relief"])
def test_facets_keep_the_hybrid_order_of_a_chosen_category_or_price(client: TestClient[Any], q: str) -> None:
    """Asking for facets changes neither a hybrid page's order nor its scores under a chosen category, price range
    or brand: facet_set filtered a ranking fused over every product (RRF of unfiltered ranks), so on the demo data
    `milk&category_id=23` put a product 4th with facets and 7th without, and page 2 repeated it. ("seals": a query
    whose order, not only its scores, changed here.)"""
    base: dict[str, Any] = {"q": q, "mode": "hybrid", "limit": 100, **AT_CENTER, "radius_m": 40000}
    counted = get(client, **base, facets="category,brand,price")["facets"]
    chosen: list[dict[str, Any]] = [{"category_id": c["id"]} for c in counted["category"]]
    chosen += [{"brand": b["value"]} for b in counted["brand"]]
    chosen += [
        {"min_price": p["min"]} | ({"max_price": p["max"]} if p["max"] is not None else {}) for p in counted["price"]
    ]
    chosen += [{"min_price": 1, "max_price": 5}, {"max_price": 4.99, "category_id": counted["category"][0]["id"]}]
    for values in chosen:
        plain = _ranked(get(client, **base, **values))
        assert _ranked(get(client, **base, **values, facets="category,brand,price")) == plain, values
        for offset in range(0, len(plain), 3):  # pages with facets are slices of the plain order
            page = get(client, **(base | values | {"limit": 3, "offset": offset, "facets": "price"}))
            assert _ranked(page) == plain[offset : offset + 3], (values, offset)
        by_price = base | values | {"sort": "price"}  # a tie of price keeps search's order
        assert _ranked(get(client, **by_price, facets="brand")) == _ranked(get(client, **by_price)), values


def test_sort_by_price_and_distance(client: TestClient[Any]) -> None:
    common = {"q": "something to fix a dripping tap", "mode": "hybrid", "limit": 50, **AT_CENTER, "radius_m": 40000}
    by_price = get(client, **common, sort="price")
    lowest = [min(s["price"] for s in r["stores"]) for r in by_price["results"]]
    assert lowest == sorted(lowest) and len(lowest) > 3
    by_distance = get(client, **common, sort="distance")
    nearest = [min(s["distance_m"] for s in r["stores"]) for r in by_distance["results"]]
    assert nearest == sorted(nearest)
    assert {r["product"]["id"] for r in by_distance["results"]} == {r["product"]["id"] for r in by_price["results"]}


def _names(body: dict[str, Any]) -> list[str]:
    return [r["product"]["name"] for r in body["results"]]


@pytest.mark.parametrize("mode", ["hybrid", "semantic"])
def test_a_sort_by_price_or_distance_keeps_the_relevant_products_only(client: TestClient[Any], mode: str) -> None:
    """By relevance the weak tail of a semantic set comes last; sorted by price it came first ("shampoo" opened on
    laundry detergent and milk, and nonsense listed the whole catalogue). A price or distance sort keeps the words'
    matches and the products at least 0.75 times as similar as the best in scope (ux_ranking.SortFloor)."""
    common = {"mode": mode, "limit": 50, **AT_CENTER, "radius_m": 40000}
    assert len(_names(get(client, q="shampoo", **common))) > 5  # by relevance: the whole tail
    for sort in ("price", "distance"):
        assert _names(get(client, q="shampoo", **common, sort=sort)) == ["Anti-dandruff shampoo 250 ml"]
        nonsense = get(client, q="xqzv blorp", **common, sort=sort, facets="brand")
        assert nonsense["results"] == [] and nonsense["total"] == 0 and nonsense["facets"]["brand"] == []
        # a query whose products are all weakly similar (0.27-0.34) keeps them, not the unrelated (0.19 and less)
        tap = set(_names(get(client, q="something to fix a dripping tap", **common, sort=sort)))
        assert {"PTFE thread seal tape", "Faucet washer set", "Adjustable pipe wrench"} <= tap
        assert "Kayak paddle" not in tap and "Bicycle floor pump" not in tap
    assert len(_names(get(client, q="xqzv blorp", **common))) > 5  # by relevance: nearest neighbours as before


def test_a_filtered_sort_keeps_what_the_facet_count_promised(client: TestClient[Any]) -> None:
    """The floor's anchor is the best in scope without the filters: a filtered sort (no facets: ranked among the
    products that pass) keeps what the faceted sort keeps, not the products near its own best (`shampoo` in
    Household: the detergent at 0.39 is far under the shampoo's 0.59)."""
    common = {"q": "shampoo", "mode": "hybrid", "limit": 50, **AT_CENTER, "radius_m": 40000}
    counted = get(client, **common, facets="price,category")["facets"]  # by relevance: every category of the set
    chosen: list[dict[str, Any]] = [{"category_id": c["id"]} for c in counted["category"]]
    chosen += [
        {"min_price": p["min"]} | ({"max_price": p["max"]} if p["max"] is not None else {}) for p in counted["price"]
    ]
    assert len(chosen) > 4
    for values in chosen:
        faceted = get(client, **common, **values, sort="price", facets="category")
        assert _names(get(client, **common, **values, sort="price")) == _names(faceted), values


@pytest.mark.parametrize("q", ["shampoo", "milk", "food", "something to fix a dripping tap"])
def test_a_chosen_store_keeps_what_its_sorted_count_promised(client: TestClient[Any], q: str) -> None:
    """The floor's anchor is the best in the stores in scope, not in the chosen store: a store whose best was a
    detergent listed it under `shampoo` by price (a count of 1 became 14 in the demo city), and one the sorted set
    did not count (0) listed its own best products."""
    common = {"q": q, "mode": "hybrid", "limit": 50, **AT_CENTER, "radius_m": 40000, "sort": "price"}
    every = {s["id"] for s in get(client, **common | {"sort": "relevance"}, facets="store")["facets"]["store"]}
    counted = {s["id"]: s["count"] for s in get(client, **common, facets="store")["facets"]["store"]}
    assert len(every) >= len(counted) > 0
    for store in every:
        assert len(get(client, **common, store_id=store)["results"]) == counted.get(store, 0), store
        assert get(client, **common, store_id=store, facets="brand")["total"] == counted.get(store, 0), store


def test_bbox_scope_and_delivery_fulfilment(client: TestClient[Any], seeded: Seeded) -> None:
    lat, lon = seeded.store_points["far"]
    box = f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    body = get(client, q="paddle", mode="keyword", bbox=box, limit=100)
    stores = {s["id"] for r in body["results"] for s in r["stores"]}
    assert stores == {str(seeded.stores["far"])}
    # 20 km south of the centre: no store within 5 km, but "far" (10 km further south) delivers within 40 km
    north = GEOD.Direct(CENTER[0], CENTER[1], 180, 20000)
    point = {"lat": north["lat2"], "lon": north["lon2"]}
    assert get(client, q="paddle", mode="keyword", **point)["results"] == []
    delivered = get(client, q="paddle", mode="keyword", fulfilment="delivery", **point)
    assert delivered["results"]
    for r in delivered["results"]:
        assert [s["id"] for s in r["stores"]] == [str(seeded.stores["far"])] and r["stores"][0]["delivers"]


def test_explain(client: TestClient[Any]) -> None:
    body = get(client, q="hamer", mode="hybrid", explain="true", **AT_CENTER, radius_m=40000)
    assert body["explain"]["plan"] and body["explain"]["candidates"] >= len(body["results"])
    assert {"scope", "rank", "facets", "hydrate"} <= set(body["explain"]["stage_ms"])
    hammer = next(r for r in body["results"] if "hammer" in r["product"]["name"].lower())
    assert "hamer->hammer" in hammer["explain"]["typo_corrections"]
    assert hammer["explain"]["keyword_rank"] >= 1 and hammer["explain"]["vector_similarity"] is not None
    swapped = get(client, q="hmamer", mode="keyword", explain="true", **AT_CENTER, radius_m=40000)["results"]
    assert any("hmamer->hammer" in r["explain"]["typo_corrections"] for r in swapped)  # two letters swapped


def test_explain_reports_no_typo_corrections_where_no_keyword_side_ran(client: TestClient[Any]) -> None:
    # semantic mode listed `hamer->hammer` for a hammer found by its vector alone
    body = get(client, q="claw hamer", mode="semantic", explain="true", **AT_CENTER, radius_m=40000)
    assert any("hammer" in r["product"]["name"].lower() for r in body["results"]), body["results"]
    for r in body["results"]:
        assert r["explain"]["typo_corrections"] == [] and r["explain"]["keyword_rank"] is None, r


def test_suggest(client: TestClient[Any], seeded: Seeded) -> None:
    body = get(client, "/v1/suggest", q="Oat", **AT_CENTER, radius_m=5000)
    products = [s for s in body["suggestions"] if s["kind"] == "product"]
    assert products and all(s["text"].lower().startswith("oat") for s in products)
    assert uuid.UUID(products[0]["ref"]) == seeded.products["oat"]
    far_away = get(client, "/v1/suggest", q="Oat", lat=0.0, lon=-30.0, radius_m=5000)
    assert far_away["suggestions"] == []
    assert len(get(client, "/v1/suggest", q="a", limit=3)["suggestions"]) <= 3


@pytest.mark.parametrize(
    ("params", "parameter", "message"),
    [
        ({"bbox": "1,2,3"}, "bbox", "four numbers"),
        ({"bbox": "4.8,52.4,4.9,52.3"}, "bbox", "min_lat must not exceed max_lat"),
        ({"bbox": "4.8,52.3,4.9,52.4", "radius_m": 500}, "bbox", "not both"),
        ({"facets": "colour"}, "facets", "unknown facet"),
        ({"sort": "popularity"}, "sort", "relevance, distance, price"),
        ({"sort": "distance"}, "sort", "needs lat and lon"),
        ({"fulfilment": "drone"}, "fulfilment", "pickup, delivery, any"),
        ({"fulfilment": "delivery"}, "fulfilment", "needs lat and lon"),
        ({"store_id": "nope"}, "store_id", "UUID"),
    ],
)
def test_bad_input_names_the_parameter(
    client: TestClient[Any], params: dict[str, Any], parameter: str, message: str
) -> None:
    assert message in bad(client, parameter, q="milk", mode="keyword", **params)


def test_suggest_bad_input(client: TestClient[Any]) -> None:
    bad(client, "q", "/v1/suggest", q="   ")
    bad(client, "limit", "/v1/suggest", q="oat", limit=11)
    for long in (" " + "a" * 256 + " ", "a" * 300):  # past the search's limit too: it named the search's 256
        answer = client.get("/v1/suggest", params={"q": long})
        assert answer.status_code == 400 and answer.json()["error"]["message"].endswith("at most 100 characters")


def _box(point: tuple[float, float], half: float = 0.005) -> str:
    """A bbox (min_lon,min_lat,max_lon,max_lat) around a (lat, lon) point."""
    lat, lon = point
    return f"{lon - half},{lat - half},{lon + half},{lat + half}"


def _suggested(client: TestClient[Any], kind: str = "product", **params: Any) -> list[str]:
    return [s["ref"] or s["text"] for s in get(client, "/v1/suggest", **params)["suggestions"] if s["kind"] == kind]


def test_suggest_scopes_by_a_bbox_as_the_search_does(client: TestClient[Any], seeded: Seeded) -> None:
    """A map front end sends the search's viewport to suggest too, which answered 400 (it scoped by a radius only):
    now the box is suggest's scope, its stores found as the search finds them."""
    paddle, oat = str(seeded.products["paddle"]), str(seeded.products["oat"])  # stocked at "far" / "near" only
    around_far, around_near = _box(seeded.store_points["far"]), _box(seeded.store_points["near"])
    assert paddle in _suggested(client, q="Kayak", bbox=around_far)
    search = get(client, q="kayak", mode="keyword", bbox=around_far)
    assert paddle in [r["product"]["id"] for r in search["results"]]  # the search in the same box finds it
    assert paddle not in _suggested(client, q="Kayak", bbox=around_near)
    assert oat in _suggested(client, q="Oat", bbox=around_near) and not _suggested(client, q="Oat", bbox=around_far)
    assert _suggested(client, "brand", q="Av", bbox=around_near) == ["Avena"]
    assert _suggested(client, "brand", q="Av", bbox=around_far) == []
    assert _suggested(client, "query", q="paddle ka", bbox=around_far) == ["paddle kayak"]
    assert _suggested(client, "query", q="paddle -oat ka", bbox=around_far) == ["paddle -oat kayak"]
    assert _suggested(client, "query", q="paddle ka", bbox=around_near) == []
    # as the search: lat/lon beside a box leave the box the scope (the search measures distances from them)
    assert paddle in _suggested(client, q="Kayak", bbox=around_far, **AT_CENTER)
    assert oat not in _suggested(client, q="Oat", bbox=around_far, **AT_CENTER)
    assert get(client, "/v1/suggest", q="o", bbox="0,0,0.01,0.01")["suggestions"] == []  # no store in the box


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bbox": "1,2,3"}, "four numbers"),
        ({"bbox": ""}, "four numbers"),
        ({"bbox": "4.8,52.4,4.9,52.3"}, "min_lat must not exceed max_lat"),
        ({"bbox": "181,52.3,4.9,52.4"}, "min_lon must be between"),
        ({"bbox": "4.8,52.3,4.9,52.4", "radius_m": 500}, "not both"),
        ({"bbox": "4.8,52.3,4.9,52.4", "radius_m": 500, **AT_CENTER}, "not both"),
    ],
)
def test_suggest_refuses_a_bad_bbox_as_the_search_does(
    client: TestClient[Any], params: dict[str, Any], message: str
) -> None:
    said = bad(client, "bbox", "/v1/suggest", q="oat", **params)
    assert message in said and said == bad(client, "bbox", q="oat", **params)


_NOT_SIMILAR_S = ("keyword", "hybrid", "semantic", "query", "typo", "exact-match", "relevant products")


def test_each_operation_s_parameters_describe_only_what_it_takes(client: TestClient[Any]) -> None:
    """Suggest's `bbox` scopes completions and measures no distance (search's says distances are measured from
    lat/lon); similar's `explain`, `facets` and `sort` spoke of keyword ranks, typo corrections, modes and the query,
    where similar has no `q` and no `mode`."""
    spec = client.get("/schema/openapi.json").json()
    suggest = {p["name"]: p["description"] for p in spec["paths"]["/v1/suggest"]["get"]["parameters"]}
    assert "not with `bbox`" in suggest["radius_m"] and "distance" not in suggest["bbox"].lower(), suggest
    assert "bbox" in spec["paths"]["/v1/suggest"]["get"]["description"]
    similar_path = spec["paths"]["/v1/products/{product_id}/similar"]["get"]
    similar = {p["name"]: p["description"] for p in similar_path["parameters"]}
    wrong = {n: text for n, text in similar.items() for word in _NOT_SIMILAR_S if word in text.lower()}
    assert not wrong, wrong
    assert "vector similarity" in similar["explain"] and "PLINQY_FACET_DEPTH" in similar["facets"]
    search = {p["name"]: p["description"] for p in spec["paths"]["/v1/search"]["get"]["parameters"]}
    assert "keyword rank" in search["explain"] and "keyword mode" in search["facets"] and "bbox" in search["radius_m"]


def test_openapi_documents_the_new_parameters(client: TestClient[Any]) -> None:
    spec = client.get("/schema/openapi.json").json()
    search = {p["name"]: p for p in spec["paths"]["/v1/search"]["get"]["parameters"]}
    assert {"facets", "sort", "bbox", "fulfilment", "explain", "store_id"} <= set(search)
    assert "PLINQY_FACET_DEPTH" in search["facets"]["description"]
    assert "/v1/suggest" in spec["paths"]
    response = spec["components"]["schemas"]["SearchResponse"]["properties"]
    assert "PLINQY_FACET_DEPTH" in json.dumps(response["total_capped"])


def _similar(seeded: Seeded) -> str:
    return f"/v1/products/{seeded.products['oat']}/similar"


def test_similar_takes_facets_sorts_and_explain(client: TestClient[Any], seeded: Seeded) -> None:
    path, me = _similar(seeded), str(seeded.products["oat"])
    base = {"limit": 100, **AT_CENTER, "radius_m": 40000}
    plain = get(client, path, **base)
    body = get(client, path, **base, facets="category,brand,price,store")
    assert {r["product"]["id"] for r in body["results"]} == {r["product"]["id"] for r in plain["results"]}
    assert me not in {r["product"]["id"] for r in body["results"]} and body["total"] == len(body["results"])
    facets = body["facets"]
    assert facets["brand"] and facets["price"] and facets["category"] and facets["store"]
    for b in facets["brand"]:
        assert get(client, path, **base, facets="price", brand=b["value"])["total"] == b["count"]
    for p in facets["price"]:
        price = {"min_price": p["min"]} | ({"max_price": p["max"]} if p["max"] is not None else {})
        assert get(client, path, **base, facets="brand", **price)["total"] == p["count"]
    by_price = get(client, path, **base, sort="price")
    lowest = [min(s["price"] for s in r["stores"]) for r in by_price["results"]]
    assert lowest == sorted(lowest) and len(lowest) >= 2  # the most similar (ux_ranking.SortFloor), not all 20
    assert len(lowest) < len(plain["results"]) and _names(by_price) == _names(plain)[: len(lowest)]
    nearest = [min(s["distance_m"] for s in r["stores"]) for r in get(client, path, **base, sort="distance")["results"]]
    assert nearest == sorted(nearest)
    explained = get(client, path, **base, explain="true")
    assert {"scope", "rank", "facets", "hydrate"} <= set(explained["explain"]["stage_ms"])
    for r in explained["results"]:
        assert r["explain"]["vector_similarity"] is not None and r["explain"]["keyword_rank"] is None


def test_similar_takes_bbox_and_delivery(client: TestClient[Any], seeded: Seeded) -> None:
    path = _similar(seeded)
    lat, lon = seeded.store_points["far"]
    box = f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    boxed = get(client, path, bbox=box, limit=100)
    assert boxed["results"] and {s["id"] for r in boxed["results"] for s in r["stores"]} == {str(seeded.stores["far"])}
    north = GEOD.Direct(CENTER[0], CENTER[1], 180, 20000)
    point = {"lat": north["lat2"], "lon": north["lon2"]}
    assert get(client, path, **point)["results"] == []
    delivered = get(client, path, fulfilment="delivery", **point)
    assert delivered["results"]
    for r in delivered["results"]:
        assert [s["id"] for s in r["stores"]] == [str(seeded.stores["far"])] and r["stores"][0]["delivers"]


@pytest.mark.parametrize(
    ("params", "parameter", "message"),
    [
        ({"bbox": "1,2,3"}, "bbox", "four numbers"),
        ({"bbox": "4.8,52.3,4.9,52.4", "radius_m": 500}, "bbox", "not both"),
        ({"facets": "colour"}, "facets", "unknown facet"),
        ({"sort": "distance"}, "sort", "needs lat and lon"),
        ({"fulfilment": "delivery"}, "fulfilment", "needs lat and lon"),
        ({"store_id": "nope"}, "store_id", "UUID"),
        ({"explain": "perhaps"}, "explain", ""),
    ],
)
def test_similar_bad_input_names_the_parameter(
    client: TestClient[Any], seeded: Seeded, params: dict[str, Any], parameter: str, message: str
) -> None:
    assert message in bad(client, parameter, _similar(seeded), **params)


def test_similar_refuses_a_query_and_a_mode_it_would_not_rank_by(client: TestClient[Any], seeded: Seeded) -> None:
    """Similar ranks by the product's vector; a `q` or `mode` sent to it (search's) was dropped without a word."""
    for params in ({"q": "milk"}, {"mode": "keyword"}, {"q": ""}, {"q": "milk", "mode": "hybrid", "sort": "price"}):
        parameter = "q" if "q" in params else "mode"
        message = bad(client, parameter, _similar(seeded), **params)
        assert "is not taken by similar" in message and "/v1/search" in message, message
    spec = client.get("/schema/openapi.json").json()
    assert "a `q` or a `mode` is refused" in spec["paths"]["/v1/products/{product_id}/similar"]["get"]["description"]
    assert get(client, _similar(seeded), **AT_CENTER)["results"]


def test_openapi_documents_the_similar_parameters(client: TestClient[Any]) -> None:
    spec = client.get("/schema/openapi.json").json()
    similar = {p["name"]: p for p in spec["paths"]["/v1/products/{product_id}/similar"]["get"]["parameters"]}
    assert {"facets", "sort", "bbox", "fulfilment", "explain", "store_id", "lat", "radius_m"} <= set(similar)
    assert "PLINQY_FACET_DEPTH" in similar["facets"]["description"]


def test_similar_with_the_search_features_of_an_unknown_product_is_404(client: TestClient[Any]) -> None:
    response = client.get(f"/v1/products/{uuid.uuid4()}/similar", params={"facets": "brand", "sort": "price"})
    assert response.status_code == 404, response.text
    assert response.json()["error"]["parameter"] == "product_id"
