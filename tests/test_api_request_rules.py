"""The request side of the write API against its OpenAPI spec, over real HTTP and PostgreSQL: what the spec's request
schemas take, the server takes, and what they refuse, the server answers with a 400 naming the field."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from tests.ingest_helpers import bearer, store_key


def error_of(response: httpx.Response) -> tuple[Any, str]:
    body = response.json()["error"]
    return body["parameter"], body["message"]


def _new_store(base: str, admin: str) -> str:
    created = httpx.post(f"{base}/v1/stores", json={"name": "Laden", "lat": 52.5, "lon": 13.4}, headers=bearer(admin))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_a_delivery_area_with_altitudes_is_stored_in_two_dimensions(base: str, conn: psycopg.Connection) -> None:
    admin = store_key(conn, None)
    store = _new_store(base, admin)
    url, auth = f"{base}/v1/stores/{store}", bearer(admin)
    with_z = [[[13.3, 52.4, 1], [13.5, 52.4, 1], [13.5, 52.6, 1], [13.3, 52.4, 1]]]
    one_z = [[[13.3, 52.4], [13.5, 52.4, 30.5], [13.5, 52.6], [13.3, 52.4]]]
    # closed in lon/lat, not in altitude: a ring that ends where it starts on the map
    open_in_z = [[[13.3, 52.4, 1], [13.5, 52.4, 1], [13.5, 52.6, 1], [13.3, 52.4, 2]]]
    areas = [
        {"type": "Polygon", "coordinates": with_z},
        {"type": "MultiPolygon", "coordinates": [with_z]},
        {"type": "Polygon", "coordinates": one_z},
        {"type": "MultiPolygon", "coordinates": [open_in_z]},
    ]
    for area in areas:
        patched = httpx.patch(url, json={"delivery_area": area}, headers=auth)
        assert patched.status_code == 200, (area, patched.text)
        answered = patched.json()["delivery_area"]
        assert answered["type"] == "MultiPolygon"
        assert all(len(p) == 2 for poly in answered["coordinates"] for ring in poly for p in ring), answered
        row = conn.execute(
            "SELECT ST_NDims(delivery_area::geometry), ST_Covers(delivery_area, ST_MakePoint(13.45, 52.45)::geography)"
            " FROM store WHERE id = %s",
            (store,),
        ).fetchone()
        assert row == (2, True), (area, row)
    four_numbers = {"type": "Polygon", "coordinates": [[[*p[:2], 1, 2] for p in with_z[0]]]}
    four = httpx.patch(url, json={"delivery_area": four_numbers}, headers=auth)
    assert four.status_code == 400 and error_of(four)[0] == "delivery_area", four.text
    # a store is created without an area (POST takes none): a clear 400, no 500
    posted = httpx.post(
        f"{base}/v1/stores",
        json={"name": "Z", "lat": 52.5, "lon": 13.4, "delivery_area": areas[0]},
        headers=auth,
    )
    assert posted.status_code == 400 and error_of(posted)[0] == "delivery_area", posted.text
