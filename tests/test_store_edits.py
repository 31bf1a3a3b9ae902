"""A store's edits over real HTTP and the CLI: delivery areas PostGIS refuses, text trimmed, an empty PATCH."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
import pytest

from tests.ingest_helpers import bearer, store_key
from tests.test_ingest_cli import cli


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


def test_store_text_is_trimmed_as_listing_text_is(
    base: str, db_url: str, conn: psycopg.Connection, admin: dict[str, str]
) -> None:
    """Surrounding whitespace and invisible format characters were stored as sent: a name of a zero-width space
    was accepted while '   ' was refused, a BOM stayed, and ' ' set an optional field that '' clears."""
    padded = {"name": "\ufeff  Padded Store  ", "postal_code": "  ", "address": " ", "store_type": "GROCERY ",
              "city": "\u200bBerlin\u00a0", "country_code": " de ", "website": " https://shop.example "}  # fmt: skip
    created = _create(base, admin, **padded)
    assert created.status_code == 201, created.text
    store = created.json()
    assert (store["name"], store["postal_code"], store["address"], store["store_type"]) == (
        "Padded Store", None, None, "GROCERY"
    )  # fmt: skip
    assert (store["city"], store["country_code"], store["website"]) == ("Berlin", "DE", "https://shop.example")
    url = f"{base}/v1/stores/{store['id']}"
    for invisible in ("\u200b", "\ufeff", " \u200b\u00a0 "):
        refused = httpx.patch(url, json={"name": invisible}, headers=admin)
        assert refused.status_code == 400 and _error(refused) == ("name", "must not be empty"), refused.text
        assert _create(base, admin, name=invisible).status_code == 400
    cleared = httpx.patch(url, json={"city": " ", "store_type": "\u200b"}, headers=admin)
    assert (cleared.json()["city"], cleared.json()["store_type"]) == (None, None), cleared.text
    out = cli(db_url, "stores", "create", "--name", " \u200bCLI Laden ", "--lat", "1", "--lon", "1", "--address", " ")
    assert out.returncode == 0, out.stderr
    row = conn.execute("SELECT name, address FROM store WHERE id = %s", (uuid.UUID(out.stdout.strip()),)).fetchone()
    assert row == ("CLI Laden", None)
    blank = cli(db_url, "stores", "create", "--name", "\u200b", "--lat", "1", "--lon", "1")
    assert (blank.returncode, blank.stderr.strip()) == (2, "error: --name: must not be empty"), blank.stderr


def test_an_empty_store_patch_writes_nothing(base: str, conn: psycopg.Connection, admin: dict[str, str]) -> None:
    """`{}` (or only nulls) ran the UPDATE: it bumped updated_at, and its `SET location = ...` the stores' version
    (`store_geo_version`), so every API process reloaded its stores' places."""
    store = _create(base, admin).json()
    url = f"{base}/v1/stores/{store['id']}"

    def version() -> int:
        return conn.execute("SELECT version FROM store_geo_version").fetchone()[0]  # type: ignore[index]

    before = version()
    for nothing in ({}, {"name": None, "lat": None, "lon": None, "is_active": None, "city": None}):
        answered = httpx.patch(url, json=nothing, headers=admin)
        assert answered.status_code == 200 and answered.json() == store, answered.text
    assert version() == before
    missing = httpx.patch(f"{base}/v1/stores/{uuid.uuid4()}", json={}, headers=admin)
    assert missing.status_code == 404 and _error(missing)[0] == "store_id"
    renamed = httpx.patch(url, json={"name": "Neu"}, headers=admin)
    assert renamed.json()["name"] == "Neu" and renamed.json()["updated_at"] > store["updated_at"]


FILLERS = ("\u3164", "\u2800", "\uffa0", "\u115f\u1160", " \u3164\u200b ")  # Hangul fillers, the braille blank


def test_a_name_of_blank_fillers_is_empty(base: str, conn: psycopg.Connection, admin: dict[str, str]) -> None:
    """Letters and symbols that render as nothing (U+3164 HANGUL FILLER, U+2800 BRAILLE PATTERN BLANK) were a store's
    or a new product's whole name: a shopper saw a result with none. They are trimmed as a zero-width space is."""
    store = _create(base, admin).json()["id"]
    key = bearer(store_key(conn, uuid.UUID(store), "listings:write"))
    for n, blank in enumerate(FILLERS):
        patched = httpx.patch(f"{base}/v1/stores/{store}", json={"name": blank}, headers=admin)
        for refused in (_create(base, admin, name=blank), patched):
            assert refused.status_code == 400 and _error(refused) == ("name", "must not be empty"), refused.text
        listing = {"name": blank, "price": "1", "quantity": 1}
        put = httpx.put(f"{base}/v1/stores/{store}/listings/BL-{n}", json=listing, headers=key)
        assert put.status_code == 400 and _error(put)[0] == "name", put.text
    kept = _create(base, admin, name="\u3164 \ud55c\uc785 \u2800")  # trimmed at the ends only
    assert kept.status_code == 201 and kept.json()["name"] == "\ud55c\uc785", kept.text
