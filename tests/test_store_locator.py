"""The stores in a radius found in memory (engine/store_locator.py): the same stores PostGIS finds, at every
distance from the radius's edge, and after every change to the stores from the very next search on.

Stores are placed with geographiclib (the WGS84 geodesic, as PostGIS measures geography) just inside and just
outside each radius: 0.5 m and 0.2 % from the edge (the band PostgreSQL decides) and 3 % (decided in memory).
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import asyncpg
import numpy as np
import psycopg
import pytest
from geographiclib.geodesic import Geodesic

from search_service.engine import geo_areas
from search_service.engine.results import SearchParams
from search_service.engine.scope import Scope, resolve_scope
from search_service.engine.store_locator import EDGE_SHARE, StoreLocator, sphere_distances_m, unit_vectors
from tests.events_support import on_conn
from tests.test_search_engine import _insert_store

GEOD = Geodesic.WGS84
CENTER = (48.8566, 2.3522)  # Paris (lat, lon)
RADII = (500.0, 2_000.0, 20_000.0, 100_000.0)
OFFSETS = (-0.03, -0.002, 0.002, 0.03)  # shares of the radius
NUDGES_M = (-0.5, 0.5)


def test_the_sphere_is_within_the_edge_band_of_the_wgs84_geodesic() -> None:
    """The bound the locator's exactness rests on, against geographiclib: every latitude, 1 m to 15,000 km."""
    rng = random.Random(7)
    worst = 0.0
    for _ in range(3000):
        lat, lon = rng.uniform(-89.9, 89.9), rng.uniform(-180, 180)
        dist = 10 ** rng.uniform(0, 7.17)
        g = GEOD.Direct(lat, lon, rng.uniform(0, 360), dist)
        sphere = sphere_distances_m(unit_vectors(np.array([g["lon2"]]), np.array([g["lat2"]])), lon, lat)[0]
        worst = max(worst, abs(sphere / g["s12"] - 1.0))
    assert worst < 0.006 < EDGE_SHARE, worst


def _place(conn: psycopg.Connection, name: str, lat: float, lon: float, active: bool = True) -> uuid.UUID:
    return _insert_store(conn.cursor(), name, lat, lon, active)


@pytest.fixture(scope="module")
def edge_stores(db_url: str) -> dict[str, Any]:
    """Stores around CENTER just inside and outside every radius, on several bearings, and two inactive ones."""
    placed: dict[str, Any] = {}
    with psycopg.connect(db_url, autocommit=True) as conn:
        for radius in RADII:
            for i, share in enumerate(OFFSETS):
                for nudge in NUDGES_M:
                    dist = radius * (1 + share) + nudge
                    g = GEOD.Direct(*CENTER, 37.0 * i + 90 * (nudge > 0), dist)
                    placed[f"{radius}/{share}/{nudge}"] = _place(conn, f"edge {dist:.1f}", g["lat2"], g["lon2"])
        g = GEOD.Direct(*CENTER, 10.0, 100.0)
        placed["inactive"] = _place(conn, "closed", g["lat2"], g["lon2"], active=False)
    return placed


async def _scope(conn: asyncpg.Connection, radius: float, stores: StoreLocator | None) -> set[Any]:
    params = SearchParams(q="x", lat=CENTER[0], lon=CENTER[1], radius_m=radius, mode="keyword")
    scope = await resolve_scope(conn, params, None, None, stores)
    return set(scope.store_ids or []) if isinstance(scope, Scope) else set()


async def _postgis(conn: asyncpg.Connection, radius: float) -> set[Any]:
    rows = await conn.fetch(
        "SELECT id FROM store WHERE is_active AND ST_DWithin(location, "
        "ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, $3)",
        CENTER[1],
        CENTER[0],
        radius,
    )
    return {r["id"] for r in rows}


def test_the_locator_finds_the_stores_postgis_finds(db_url: str, edge_stores: dict[str, Any]) -> None:
    async def body(conn: asyncpg.Connection) -> None:
        locator = StoreLocator()
        await locator.load(conn)
        assert len(locator) == len(edge_stores) - 1  # the inactive store is not held
        for radius in RADII:
            truth = await _postgis(conn, radius)
            assert await _scope(conn, radius, locator) == truth == await _scope(conn, radius, None), radius
            assert set(await geo_areas.stores_in_radius(conn, *CENTER, radius, locator)) == truth, radius  # UX path
            located = locator.locate(CENTER[1], CENTER[0], radius)
            assert located is not None
            near_edge = {edge_stores[f"{radius}/{s}/{n}"] for s in (-0.002, 0.002) for n in NUDGES_M}
            assert near_edge <= set(located.edge), radius  # PostgreSQL measured these
            assert edge_stores[f"{radius}/-0.03/-0.5"] in located.inside
            assert edge_stores[f"{radius}/0.03/0.5"] not in set(located.inside) | set(located.edge)
            assert edge_stores[f"{radius}/-0.002/-0.5"] in truth and edge_stores[f"{radius}/0.002/0.5"] not in truth
        assert edge_stores["inactive"] not in await _scope(conn, 500.0, locator)

    on_conn(db_url, body)


def test_a_change_to_the_stores_is_exact_from_the_next_search_on(fresh_db_url: str) -> None:
    """Moved, closed and new stores: a copy taken before the change is seen as stale in the search's own
    statement (the radius query answers), and a refresh reloads it only when the stores' version moved."""
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        g = GEOD.Direct(*CENTER, 0.0, 1_000.0)
        staying = _place(conn, "staying", g["lat2"], g["lon2"])
        moving = _place(conn, "moving", g["lat2"], g["lon2"])
        closing = _place(conn, "closing", g["lat2"], g["lon2"])

    async def body(conn: asyncpg.Connection) -> None:
        locator = StoreLocator()
        await locator.load(conn)
        assert await locator.refresh(conn) and locator.loads == 1  # nothing changed: not reloaded
        assert await _scope(conn, 2_000.0, locator) == {staying, moving, closing}
        far = GEOD.Direct(*CENTER, 90.0, 5_000.0)
        near = GEOD.Direct(*CENTER, 180.0, 1_500.0)
        await conn.execute(
            "UPDATE store SET location = ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography WHERE id = $3",
            far["lon2"],
            far["lat2"],
            moving,
        )
        await conn.execute("UPDATE store SET is_active = false WHERE id = $1", closing)
        opened = await conn.fetchval(
            "INSERT INTO store (name, location) VALUES ('new', "
            "ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography) RETURNING id",
            near["lon2"],
            near["lat2"],
        )
        expected = {staying, opened}
        assert await _scope(conn, 2_000.0, locator) == expected == await _postgis(conn, 2_000.0)  # stale copy
        assert set(await geo_areas.stores_in_radius(conn, *CENTER, 2_000.0, locator)) == expected
        await locator.refresh(conn)
        assert locator.loads == 2
        located = locator.locate(CENTER[1], CENTER[0], 2_000.0)
        assert located is not None and set(located.inside) == expected
        assert await _scope(conn, 2_000.0, locator) == expected
        await conn.execute("UPDATE store SET name = 'renamed' WHERE id = $1", staying)  # not a place: same version
        await locator.refresh(conn)
        assert locator.loads == 2

    on_conn(fresh_db_url, body)


def test_an_empty_store_table_loads_and_finds_nothing(fresh_db_url: str) -> None:
    async def body(conn: asyncpg.Connection) -> None:
        locator = StoreLocator()
        assert locator.locate(CENTER[1], CENTER[0], 1000.0) is None  # not loaded: search_context answers
        await locator.load(conn)
        assert locator.loaded and len(locator) == 0
        assert await _scope(conn, 5_000.0, locator) == set()

    on_conn(fresh_db_url, body)


def test_the_statements_probe_a_radius_that_holds_most_of_many_stores() -> None:
    locator = StoreLocator()
    assert not locator.radius_pays(5000)  # not loaded
    locator._ids, locator.version = np.empty(10_000, dtype=object), 1
    assert locator.radius_pays(8_116)  # 20 km at 1M products: the list would cost ~2 ms to send, ~2 to hash
    assert not locator.radius_pays(5_000)  # half the stores: a probe tries two listings for one in scope
    locator._ids = np.empty(1_000, dtype=object)
    assert locator.radius_pays(809)  # 20 km at 100k products: 0.30 ms against 0.43 with the list
    locator._ids = np.empty(400, dtype=object)
    assert not locator.radius_pays(390)  # a short list costs little


def test_an_emptied_version_row_never_lets_an_old_copy_pass(fresh_db_url: str) -> None:
    """TRUNCATE of every table (the benchmark harness's wipe) empties store_geo_version: a copy taken before is
    stale, a copy cannot load without the row, and the next store write brings it back with a number never handed
    out before, so the old copy stays stale."""
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        g = GEOD.Direct(*CENTER, 0.0, 1_000.0)
        first = _place(conn, "first", g["lat2"], g["lon2"])

    async def body(conn: asyncpg.Connection) -> None:
        old = StoreLocator()
        await old.load(conn)
        assert old.loaded and await _scope(conn, 2_000.0, old) == {first}
        await conn.execute("DELETE FROM store")
        await conn.execute("TRUNCATE store_geo_version")
        assert await _scope(conn, 2_000.0, old) == set()  # no row: stale, the radius query answers
        blank = StoreLocator()
        await blank.load(conn)
        assert not blank.loaded and blank.locate(CENTER[1], CENTER[0], 2_000.0) is None
        g = GEOD.Direct(*CENTER, 90.0, 500.0)
        second = await conn.fetchval(
            "INSERT INTO store (name, location) VALUES ('second', "
            "ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography) RETURNING id",
            g["lon2"],
            g["lat2"],
        )
        version = await conn.fetchval("SELECT version FROM store_geo_version")
        assert old.version is not None and version is not None and version > old.version
        assert await _scope(conn, 2_000.0, old) == {second}  # the old copy is still stale
        await blank.load(conn)
        assert blank.version == version and await _scope(conn, 2_000.0, blank) == {second}

    on_conn(fresh_db_url, body)
