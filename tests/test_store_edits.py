"""A store's edits over real HTTP and the CLI: delivery areas as the globe reads them (PostGIS's refusals, the
antimeridian; areas checked against geographiclib), text trimmed, an empty PATCH."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
import pytest
from geographiclib.geodesic import Geodesic

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


def _geodesic_area(*rings: list[list[float]]) -> float:
    """geographiclib's area of a polygon (m², WGS 84): the shell's less its holes'."""
    areas = []
    for ring in rings:
        polygon = Geodesic.WGS84.Polygon()
        for lon, lat in ring[:-1]:
            polygon.AddPoint(lat, lon)
        areas.append(abs(polygon.Compute(False, True)[2]))
    return areas[0] - sum(areas[1:])


def _stored(conn: psycopg.Connection, store: str, lon: float, lat: float) -> tuple[float, bool]:
    """The stored area's size (m²) and whether it covers the point (as stores_delivering reads it)."""
    row = conn.execute(
        "SELECT ST_Area(delivery_area), ST_Covers(delivery_area, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)"
        " FROM store WHERE id = %s",
        (lon, lat, store),
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_a_band_from_lon_minus_180_to_180_is_refused_as_it_has_no_area_on_the_globe(
    base: str, conn: psycopg.Connection, admin: dict[str, str]
) -> None:
    """-180 and 180 are one meridian on the globe: an edge between them has zero length, so a band drawn with
    corners only there collapsed to a line once stored as a geography. It was a 200 storing an area of 0 m² that
    delivered nowhere, not even to the store's own place."""
    store = _create(base, admin, lat=0, lon=10).json()["id"]
    url = f"{base}/v1/stores/{store}"
    for south, north in ((-60, 60), (-10, 10), (-20, -15), (-89, 89)):
        band = [[-180, south], [180, south], [180, north], [-180, north], [-180, south]]
        refused = httpx.patch(url, json={"delivery_area": {"type": "Polygon", "coordinates": [band]}}, headers=admin)
        assert refused.status_code == 400, refused.text
        parameter, message = _error(refused)
        assert parameter == "delivery_area" and "has no extent on the globe" in message, message
        assert "an edge from -180 to 180 has zero length" in message and "put corners between its ends" in message
    square = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]  # inside the band on the map: PostGIS said "Too few points"
    for n, polygons in enumerate(([[square], [band]], [[band], [square]])):
        multi = {"type": "MultiPolygon", "coordinates": polygons}
        refused = httpx.patch(url, json={"delivery_area": multi}, headers=admin)
        assert refused.status_code == 400 and _error(refused) == (
            "delivery_area",
            f"polygon {1 - n} has no extent on the globe (no area once stored as a geography): an edge from -180 to "
            f"180 (polygon {1 - n}) has zero length, as both are one meridian; put corners between its ends",
        ), refused.text
    assert conn.execute("SELECT delivery_area IS NULL FROM store WHERE id = %s", (store,)).fetchone() == (True,)
    lons = (-180, -90, 0, 90, 180)  # the same band with corners between its ends: stored as drawn
    ring = [[x, -60] for x in lons] + [[x, 60] for x in reversed(lons)] + [[-180, -60]]
    kept = httpx.patch(url, json={"delivery_area": {"type": "Polygon", "coordinates": [ring]}}, headers=admin)
    assert kept.status_code == 200, kept.text
    area, covers_home = _stored(conn, store, 10, 0)
    assert covers_home and area == pytest.approx(_geodesic_area(ring), rel=1e-6)


def test_an_area_valid_on_the_globe_across_the_antimeridian_is_stored(
    base: str, conn: psycopg.Connection, admin: dict[str, str]
) -> None:
    """Validity was judged on the lon/lat map, where edges across 180 degrees run the long way round: a hole
    straddling 180 degrees, or a concave corner, "crossed" them, a 400 "Self-intersection[-175 -19]" where nothing
    crosses on the globe. A shape invalid on the globe is still refused, its place said as the map writes it."""
    store = _create(base, admin, lat=-17.5, lon=179.9).json()["id"]
    url = f"{base}/v1/stores/{store}"
    box = [[175, -20], [-175, -20], [-175, -15], [175, -15], [175, -20]]
    hole = [[179, -19], [179, -18], [-179, -18], [-179, -19], [179, -19]]
    concave = [[178, -20], [-178, -20], [-178, -16], [179, -18], [178, -16], [178, -20]]
    inside, outside = [(179.8, -16.0), (-179.8, -19.5)], [(180.0, -18.5), (-179.5, -18.5), (170.0, -17.0)]
    for rings, points_in, points_out in (
        ([box, hole], inside, outside),
        ([concave], [(179.0, -19.0), (-178.5, -17.0)], [(179.0, -17.0), (-177.0, -18.0)]),
    ):
        stored = httpx.patch(url, json={"delivery_area": {"type": "Polygon", "coordinates": rings}}, headers=admin)
        assert stored.status_code == 200, stored.text
        for lon, lat in points_in + points_out:
            area, covers = _stored(conn, store, lon, lat)
            assert covers == ((lon, lat) in points_in), (rings, lon, lat)
        assert area == pytest.approx(_geodesic_area(*rings), rel=1e-6)
    bowtie = [[179, 0], [-179, 1], [-179, 0], [179, 1], [179, 0]]  # crosses itself on the globe too, at 180
    refused = httpx.patch(url, json={"delivery_area": {"type": "Polygon", "coordinates": [bowtie]}}, headers=admin)
    assert refused.status_code == 400, refused.text
    assert _error(refused) == ("delivery_area", "is not a valid polygon: Self-intersection[180 0.5]")
    wide = [[179.5, -19], [179.5, -18], [-170, -18], [-170, -19], [179.5, -19]]  # a hole out of its shell
    refused = httpx.patch(url, json={"delivery_area": {"type": "Polygon", "coordinates": [box, wide]}}, headers=admin)
    assert _error(refused) == ("delivery_area", "is not a valid polygon: Self-intersection[-175 -19]"), refused.text


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
    for sent in ("gb\n", " GB", "GB "):  # the spec's pattern refused these, which the server took (and takes)
        patched = httpx.patch(url, json={"country_code": sent}, headers=admin)
        assert patched.status_code == 200 and patched.json()["country_code"] == "GB", (sent, patched.text)
    spaced = httpx.patch(url, json={"country_code": "G B"}, headers=admin)
    assert spaced.status_code == 400 and _error(spaced)[0] == "country_code", spaced.text
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


def test_a_store_patch_bumps_the_stores_version_only_when_it_moves_or_activates_it(
    base: str, conn: psycopg.Connection, admin: dict[str, str]
) -> None:
    """Every PATCH with a field bumped `store_geo_version` (the trigger fired `UPDATE OF location, is_active` as
    the statement names them, whatever their values), so a phone or website change made every API process reload
    its stores' places; one repeating the store's values also moved its `updated_at`."""
    store = _create(base, admin, phone="+49 30 1").json()
    url = f"{base}/v1/stores/{store['id']}"

    def version() -> int:
        return conn.execute("SELECT version FROM store_geo_version").fetchone()[0]  # type: ignore[index]

    before = version()
    phone = httpx.patch(url, json={"phone": "+49 30 2", "website": "https://shop.example"}, headers=admin).json()
    assert phone["phone"] == "+49 30 2" and phone["updated_at"] > store["updated_at"] and version() == before
    same = {"name": "Eck", "lat": 52.5, "lon": 13.4, "is_active": True, "phone": "+49 30 2", "delivery_radius_m": None}
    for _ in range(2):
        repeated = httpx.patch(url, json=same, headers=admin)
        assert repeated.status_code == 200 and repeated.json() == phone, repeated.text
    assert version() == before
    assert httpx.patch(url, json={"delivery_radius_m": 3000}, headers=admin).json()["updated_at"] > phone["updated_at"]
    assert version() == before  # delivery is read from the row per search, not from the places held
    moved = httpx.patch(url, json={"lat": 52.6, "lon": 13.4}, headers=admin)
    assert moved.status_code == 200 and version() == before + 1, moved.text
    closed = httpx.patch(url, json={"is_active": False, "website": "https://shop.example"}, headers=admin)
    assert closed.json()["is_active"] is False and version() == before + 2, closed.text


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


def test_a_write_to_an_inactive_stores_listing_says_search_does_not_show_it(
    base: str, conn: psycopg.Connection, admin: dict[str, str]
) -> None:
    """Deactivating a store hides it from shoppers only (its keys and webhooks keep working, as documented), but a
    write to its listings was answered 200 "mapped" with notes null: nothing told the writer search shows none."""
    store = _create(base, admin).json()["id"]
    key, url = bearer(store_key(conn, uuid.UUID(store), "listings:write")), f"{base}/v1/stores/{store}"
    listing = {"name": "Kava root powder", "price": "12.50", "quantity": 3}
    assert httpx.put(f"{url}/listings/FJ-1", json=listing, headers=key).json()["notes"] is None
    assert httpx.patch(url, json={"is_active": False}, headers=admin).json()["is_active"] is False
    said = "the store is inactive: the listing is stored, but not shown in search until the store is active again"
    patched = httpx.patch(f"{url}/listings/FJ-1", json={"quantity": 11, "price": 13}, headers=key)
    created = httpx.put(f"{url}/listings/FJ-2", json={**listing, "price": "1.005"}, headers=key)
    batch = httpx.post(f"{url}/listings/batch", json={"items": [{"sku": "FJ-3", **listing}]}, headers=key)
    for answer in (patched.json(), created.json(), batch.json()["results"][0]):
        assert answer["status"] == "mapped" and said in answer["notes"], answer
    assert created.json()["notes"].startswith("price '1.005' read as 1.005, rounded"), created.text  # its notes kept
    assert conn.execute("SELECT quantity FROM store_product WHERE store_id = %s AND sku = 'FJ-1'", (store,)).fetchone()
    assert httpx.patch(url, json={"is_active": True}, headers=admin).status_code == 200
    again = httpx.patch(f"{url}/listings/FJ-1", json={"quantity": 12}, headers=key)
    assert again.json()["status"] == "mapped" and again.json()["notes"] is None, again.text
