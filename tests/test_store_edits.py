"""A store's edits over real HTTP: delivery areas PostGIS refuses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from search_service.settings import Settings
from tests.ingest_helpers import bearer, ingest_settings, serve, store_key


@pytest.fixture(scope="module")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return ingest_settings(db_url, tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def base(settings: Settings) -> Iterator[str]:
    with serve(settings, None) as url:
        yield url


@pytest.fixture
def admin(conn: psycopg.Connection) -> dict[str, str]:
    return bearer(store_key(conn, None))


def _create(base: str, admin: dict[str, str], **fields: Any) -> httpx.Response:
    return httpx.post(f"{base}/v1/stores", json={"name": "Eck", "lat": 52.5, "lon": 13.4, **fields}, headers=admin)


def _error(response: httpx.Response) -> tuple[Any, str]:
    body = response.json()["error"]
    return body["parameter"], body["message"]


def test_a_delivery_area_postgis_refuses_as_a_geography_is_a_400_naming_it(
    base: str, conn: psycopg.Connection, admin: dict[str, str]
) -> None:
    """An edge 180 degrees of longitude long passed ST_IsValid and failed the cast to geography with PostGIS's
    internal error XX000: a 500 "internal error"."""
    store = _create(base, admin).json()["id"]
    url = f"{base}/v1/stores/{store}"
    antipodal = [[-10, 0], [170, 0], [170, 1], [-10, 1], [-10, 0]]
    world = [[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]
    for ring in (antipodal, world):
        area = {"type": "Polygon", "coordinates": [ring]}
        refused = httpx.patch(url, json={"name": "Renamed", "delivery_area": area}, headers=admin)
        assert refused.status_code == 400, refused.text
        parameter, message = _error(refused)
        assert parameter == "delivery_area" and "Antipodal (180 degrees long) edge" in message, message
        assert "put a corner between its ends" in message
    row = conn.execute("SELECT name, delivery_area IS NULL FROM store WHERE id = %s", (store,)).fetchone()
    assert row == ("Eck", True)  # the refused PATCHes changed nothing, the name with them
    halves = [[-10, 0], [80, 0], [170, 0], [170, 1], [80, 1], [-10, 1], [-10, 0]]  # a corner between the ends
    split = httpx.patch(url, json={"delivery_area": {"type": "Polygon", "coordinates": [halves]}}, headers=admin)
    assert split.status_code == 200 and split.json()["delivery_area"]["type"] == "MultiPolygon", split.text
