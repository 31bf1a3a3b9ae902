"""sort=distance over a set's listings held in memory (facet_stock.py): the page a read of the set's listings with
each store's distance gives (facet_listings), without that read (1M products, 20 km: ~31 ms of a ~85 ms request).

The stores' places are held in memory (store_locator.py) as points on the mean-radius sphere, whose distances are
within EDGE_SHARE (1 %) plus EDGE_M of the WGS84 ones PostgreSQL measures (ST_Distance on geography; the locator's
tests check the bound against geographiclib). So a product whose nearest store lies m away on the sphere lies
between low = m (1 - EDGE_SHARE) - EDGE_M and high = m (1 + EDGE_SHARE) + EDGE_M away. With U the `window`-th
smallest `high` among the hits (window = offset + limit), at least `window` hits lie within U, so a hit whose `low`
exceeds U is not among the first `window`: only the others can be on the page. PostgreSQL measures, for those, the
stores that can be their nearest (each store whose `low` is within the product's `high`), with the very expression
facet_listings uses; they are ordered by those exact distances, and every other hit after them at its `low`. The
first `window` positions, ties in the relevance order, are then the ones the read gives (tests compare both).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from search_service.db.sql import statement
from search_service.engine.facet_stock import StorePlaces
from search_service.engine.store_locator import EDGE_M, EDGE_SHARE, sphere_distances_m


async def certified_distances(
    conn: Any,
    places: StorePlaces,
    point: tuple[float, float],
    pos: np.ndarray,
    codes: np.ndarray,
    hits: np.ndarray,
    window: int,
) -> np.ndarray | None:
    """Per listing (`pos`: its product's position, `codes`: its store's code), a distance whose minimum per
    product is that product's exact nearest-store distance wherever it can be among the first `window` hits, and
    its lower bound elsewhere (module docstring). None: a listing's store has no place in memory (a store newer
    than the locator's copy): the caller reads the listings."""
    lat, lon = point
    if np.any(codes >= len(places.points)):
        return None
    points = places.points[codes]
    if np.isnan(points).any():
        return None
    sphere = sphere_distances_m(points, lon, lat) if len(points) else np.zeros(0)
    nearest = np.full(len(hits), np.inf)
    np.minimum.at(nearest, pos, sphere)
    low, high = nearest * (1.0 - EDGE_SHARE) - EDGE_M, nearest * (1.0 + EDGE_SHARE) + EDGE_M
    out = low[pos]
    ends = np.sort(high[hits])
    if len(ends) == 0:
        return out
    bound = ends[min(window, len(ends)) - 1]
    maybe = hits & (low <= bound)
    measure = maybe[pos] & (sphere * (1.0 - EDGE_SHARE) - EDGE_M <= high[pos])
    wanted = np.unique(codes[measure])
    stmt = statement("engine/facets", "store_distances")
    row = await conn.fetchrow(stmt.sql, *stmt.bind(store_ids=places.ids[wanted].tolist(), lon=lon, lat=lat))
    if row["version"] != places.version:  # a store moved since the places were read: their bounds do not hold
        return None
    exact = np.full(len(places.points), np.inf)
    code_of = {store_id: code for store_id, code in zip(places.ids[wanted].tolist(), wanted.tolist(), strict=True)}
    for store_id, distance in zip(row["ids"], row["distances"], strict=True):
        exact[code_of[store_id]] = distance
    out[maybe[pos]] = np.inf  # a candidate's other stores cannot be its nearest
    out[measure] = exact[codes[measure]]
    return out
