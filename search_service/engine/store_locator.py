"""The active stores' places in memory: the stores in a radius found without a radius query per search.

At 1M products / 10k stores, search_context's radius query read ~8,000 store rows and measured each on the
spheroid (ST_DWithin on geography) per search at 20 km: 6-10 ms alone, ~14 ms under load, and 2.3 ms more in
the API to decode the 8,000 ids it returned. Here each store is a unit vector; a search's great-circle distances
to all of them and the lists of ids take ~0.4 ms.

Exactness: a great-circle distance on the mean-radius sphere is within 0.6 % of the WGS84 geodesic PostGIS
measures (the ellipsoid's radii of curvature lie between 6,335 and 6,400 km; the tests check the bound against
geographiclib). So a store closer than (1 - EDGE_SHARE) x radius - EDGE_M is inside for PostGIS too, one
farther than (1 + EDGE_SHARE) x radius + EDGE_M is outside, and only the stores in between (~4 % of those in
the radius) go to PostgreSQL, which measures them with the very ST_DWithin that search_context uses
(`search_context`, `stores_in_radius`).

Freshness: migrations 0019-0020 set `store_geo_version` from a sequence (never the same number twice) in every
statement that adds, removes, moves, activates or deactivates a store. The copy keeps the version it was read at;
a search's statement compares it with the version in the search's own snapshot and, when they differ (or the row
is gone), finds the stores itself as before, so a change is exact from the very next search on; the API reloads
the copy within a second (`refresh`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from search_service.db.sql import statement

log = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_008.8  # the mean radius (IUGG)
EDGE_SHARE = 0.01  # > the sphere's 0.6 % worst case against the spheroid (module docstring)
EDGE_M = 1.0  # float rounding of the distances and of PostGIS's own tolerance, with room to spare
# A scope of at least this many stores and this share of them is probed as a radius by the statements
# (store_scope_near). 300 ids checked, list against radius: 10k stores, 20 km (8,116 in scope) 3.6 / 1.6 ms, 5 km
# (2,370) 1.8 / 3.1 ms; 1k stores, 20 km (809) 0.43 / 0.30 ms, 5 km (236) 0.38 / 0.84 ms (a probe measures
# ~1/share listings until one is in scope; the list costs its length to send and hash).
RADIUS_PROBE_MIN_STORES = 500
RADIUS_PROBE_MIN_SHARE = 0.6


def unit_vectors(lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """(n, 3) float64: each (lon, lat) in degrees as a point on the unit sphere."""
    lon, lat = np.radians(np.asarray(lons, dtype=np.float64)), np.radians(np.asarray(lats, dtype=np.float64))
    cos_lat = np.cos(lat)
    return np.column_stack([cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)])


def sphere_distances_m(points: np.ndarray, lon: float, lat: float) -> np.ndarray:
    """Great-circle distances (metres, mean-radius sphere) from (lon, lat) to each unit vector of `points`, by
    the chord: accurate at every distance (an arccos of the dot product loses metres near zero)."""
    here = unit_vectors(np.array([lon]), np.array([lat]))[0]
    chord = np.linalg.norm(points - here, axis=1)
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.minimum(chord / 2.0, 1.0))


# search_context's and stores_in_radius's arguments without a copy: PostgreSQL finds every store in the radius
NOT_LOCATED: dict[str, Any] = {"store_version": None, "edge_store_ids": None}


@dataclass(frozen=True)
class Located:
    """The stores a copy places in a radius: `inside` for sure, `edge` for PostgreSQL to measure."""

    version: int
    inside: list[Any]
    edge: list[Any]

    @property
    def args(self) -> dict[str, Any]:
        """search_context's and stores_in_radius's arguments for this copy (NOT_LOCATED without one)."""
        return {"store_version": self.version, "edge_store_ids": self.edge}

    def stores(self, measured: list[Any], stale: bool) -> list[Any]:
        """The stores in the radius, given those PostgreSQL returned: every one it found when this copy was stale
        in its snapshot, else the edge stores it measured inside, with the stores placed inside here."""
        return measured if stale else self.inside + measured


class StoreLocator:
    """The active stores' ids and places as of one `store_geo_version` (module docstring)."""

    def __init__(self) -> None:
        self.version: int | None = None  # None: not loaded (searches use search_context)
        # as asyncpg decoded them (its own UUID type encodes ~6x faster than uuid.UUID), in an object array
        self._ids = np.zeros(0, dtype=object)
        self._points = np.zeros((0, 3), dtype=np.float64)
        self.loads = 0

    @property
    def loaded(self) -> bool:
        return self.version is not None

    @property
    def points(self) -> np.ndarray:
        """(n, 3): each held store's place as a unit vector (unit_vectors), in the order of index_of_ids."""
        return self._points

    def index_of_ids(self) -> dict[Any, int]:
        """Each held store's row in `points`."""
        return {store_id: i for i, store_id in enumerate(self._ids.tolist())}

    def __len__(self) -> int:
        return len(self._ids)

    def radius_pays(self, in_scope: int) -> bool:
        """Whether the statements should probe the radius rather than receive these many stores' ids."""
        held = len(self._ids)
        return self.loaded and in_scope >= RADIUS_PROBE_MIN_STORES and in_scope >= RADIUS_PROBE_MIN_SHARE * held

    def radius_pays_at(self, lon: float, lat: float, radius_m: float) -> bool:
        """radius_pays for the stores about this radius (on the sphere: it picks a statement's form, not who is in)."""
        if self.version is None:
            return False
        return self.radius_pays(int(np.count_nonzero(sphere_distances_m(self._points, lon, lat) <= radius_m)))

    def locate(self, lon: float, lat: float, radius_m: float) -> Located | None:
        """The stores within `radius_m` of (lon, lat), split as `Located` says; None when not loaded."""
        version = self.version
        if version is None:
            return None
        ids, points = self._ids, self._points
        distances = sphere_distances_m(points, lon, lat)
        inner = radius_m * (1.0 - EDGE_SHARE) - EDGE_M
        outer = radius_m * (1.0 + EDGE_SHARE) + EDGE_M
        inside = distances <= inner
        edge = ~inside & (distances <= outer)
        return Located(version, ids[inside].tolist(), ids[edge].tolist())

    async def refresh(self, conn: Any) -> bool:
        """Reload the places when the stores' version moved (one small statement otherwise). Always True: a
        task that keeps it fresh goes on."""
        if self.version is not None:
            current = await conn.fetchval(statement("engine/search", "store_places_version").sql)
            if current == self.version:
                return True
        await self.load(conn)
        return True

    async def load(self, conn: Any) -> None:
        """Read every active store's place and the version, in one statement (one snapshot)."""
        started = time.perf_counter()
        row = await conn.fetchrow(statement("engine/search", "store_places").sql)
        if row["version"] is None:  # the row was emptied (TRUNCATE): the next store write brings it back
            self.version = None
            log.warning("store places: no store_geo_version row; searches find the stores in SQL until one is written")
            return
        points = unit_vectors(np.array(row["lons"], dtype=np.float64), np.array(row["lats"], dtype=np.float64))
        # no await from here on: a search never sees the ids of one load with the places or version of another
        ids = np.empty(len(row["ids"]), dtype=object)
        ids[:] = row["ids"]
        self._ids, self._points = ids, points.reshape(-1, 3)
        self.version = int(row["version"])
        self.loads += 1
        log.info(
            "store places: %d active stores, version %d, loaded in %.3fs",
            len(self._ids),
            self.version,
            time.perf_counter() - started,
        )
