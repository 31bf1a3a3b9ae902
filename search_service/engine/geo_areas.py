"""Store scopes: map viewports (bbox), delivery areas, and the validation of a delivery polygon.

A delivery area is a GeoJSON Polygon or MultiPolygon (lon/lat, WGS 84). `parse_area` checks its shape in Python
(types, coordinate pairs in range, rings of at least four positions that end where they start; an altitude is
dropped); `check_area` then asks PostGIS whether it is valid (no self-intersection, holes inside their shell) as the
globe reads it (across the antimeridian, where its edges run: `globe_frame`) and returns it as a MultiPolygon,
refusing too what PostGIS refuses as a geography (an edge 180 degrees of longitude long, whose shortest path on the
Earth is no one line) and a polygon with no area as that geography (corners only on lon -180 and 180). Both raise
`InvalidArea`, whose message says what is wrong; the HTTP layer answers 400 naming `delivery_area`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any
from uuid import UUID

import asyncpg

from search_service.db.sql import statement
from search_service.engine.store_locator import NOT_LOCATED, StoreLocator

MAX_AREA_POSITIONS = 10_000
DELIVERY_RADIUS_M = (1, 1_000_000)  # the range of a store's delivery radius, in metres


class InvalidArea(ValueError):
    """A delivery polygon that is not valid GeoJSON, or not a valid polygon."""


class InvalidBBox(ValueError):
    """A bbox that is malformed or out of range."""


@dataclass(frozen=True)
class BBox:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    @property
    def crosses_antimeridian(self) -> bool:
        return self.min_lon > self.max_lon

    def meridian_both_ways(self) -> BBox:
        """The box as stores_in_bbox reads it: lon -180 and 180 are one meridian, so an edge on it holds a store
        stored at either value (that edge moved to the other value makes the box one across the antimeridian)."""
        if self.min_lon == -180 and self.max_lon != 180:
            return replace(self, min_lon=180.0)
        if self.max_lon == 180 and self.min_lon != -180:
            return replace(self, max_lon=-180.0)
        return self

    def contains(self, lon: float, lat: float) -> bool:
        """The same rule as stores_in_bbox (bounds included)."""
        box = self.meridian_both_ways()
        if not box.min_lat <= lat <= box.max_lat:
            return False
        if box.crosses_antimeridian:
            return lon >= box.min_lon or lon <= box.max_lon
        return box.min_lon <= lon <= box.max_lon


def parse_bbox(raw: str) -> BBox:
    """`min_lon,min_lat,max_lon,max_lat`. A min_lon above max_lon is a box across the antimeridian (as in
    GeoJSON, RFC 7946 §5.2); a min_lat above max_lat is an error."""
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) != 4:
        raise InvalidBBox("must be four numbers: min_lon,min_lat,max_lon,max_lat")
    try:
        min_lon, min_lat, max_lon, max_lat = (float(p) for p in parts)
    except ValueError:
        raise InvalidBBox("must be four numbers: min_lon,min_lat,max_lon,max_lat") from None
    for name, value, bound in (
        ("min_lon", min_lon, 180.0),
        ("max_lon", max_lon, 180.0),
        ("min_lat", min_lat, 90.0),
        ("max_lat", max_lat, 90.0),
    ):
        if not math.isfinite(value) or abs(value) > bound:
            raise InvalidBBox(f"{name} must be between -{bound:g} and {bound:g}")
    if min_lat > max_lat:
        raise InvalidBBox("min_lat must not exceed max_lat")
    return BBox(min_lon, min_lat, max_lon, max_lat)


def _position(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) not in (2, 3):
        raise InvalidArea(f"{where}: a position is [lon, lat]")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise InvalidArea(f"{where}: a position holds numbers")
    lon, lat = float(value[0]), float(value[1])
    if not (math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
        raise InvalidArea(f"{where}: [lon, lat] must be within [-180, 180] x [-90, 90]")
    return lon, lat


def _flat_polygon(rings: Any, where: str) -> list[list[tuple[float, float]]]:
    """The polygon's rings as [lon, lat] positions: an altitude (RFC 7946 allows a third number) is dropped, as the
    delivery area is a 2D geography (PostGIS refused a Z polygon, and a ring closed in lon/lat only)."""
    if not isinstance(rings, list) or not rings:
        raise InvalidArea(f"{where}: a polygon is a non-empty list of linear rings")
    flat = []
    for i, ring in enumerate(rings):
        here = f"{where} ring {i}"
        if not isinstance(ring, list) or len(ring) < 4:
            raise InvalidArea(f"{here}: a linear ring has at least four positions")
        positions = [_position(p, here) for p in ring]
        if positions[0] != positions[-1]:
            raise InvalidArea(f"{here}: a linear ring must end at the position it starts at (closed)")
        flat.append(positions)
    return flat


def parse_area(value: str | dict[str, Any]) -> dict[str, Any]:
    """The GeoJSON object, its shape checked (not yet its validity: see `check_area`)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidArea("is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidArea("must be a GeoJSON Polygon or MultiPolygon object")
    kind, coordinates = value.get("type"), value.get("coordinates")
    if kind == "Polygon":
        polygons = [_flat_polygon(coordinates, "polygon")]
    elif kind == "MultiPolygon":
        if not isinstance(coordinates, list) or not coordinates:
            raise InvalidArea("a MultiPolygon is a non-empty list of polygons")
        polygons = [_flat_polygon(poly, f"polygon {i}") for i, poly in enumerate(coordinates)]
    else:
        raise InvalidArea(f"type must be Polygon or MultiPolygon, not {kind!r}")
    if sum(len(ring) for rings in polygons for ring in rings) > MAX_AREA_POSITIONS:
        raise InvalidArea(f"at most {MAX_AREA_POSITIONS} positions")
    return {"type": kind, "coordinates": polygons[0] if kind == "Polygon" else polygons}


@contextmanager
def _postgis_refusals() -> Iterator[None]:
    """PostGIS's refusal of an area (a data exception, or its internal error XX000: `Antipodal (180 degrees long)
    edge detected!`) as InvalidArea; any other database error stays one."""
    try:
        yield
    except (asyncpg.DataError, asyncpg.InternalServerError) as exc:
        if isinstance(exc, asyncpg.InternalServerError) and exc.sqlstate != "XX000":
            raise  # XX001/XX002: data or an index corrupted, nothing the area did
        reason = str(exc)
        if "Antipodal" in reason:
            reason += " (an edge spans 180 degrees of longitude: put a corner between its ends)"
        raise InvalidArea(f"is not a valid polygon on the globe: {reason}") from None


def _edges(rings: list[list[list[float]]]) -> Iterator[tuple[float, float]]:
    """Each edge's two longitudes."""
    for ring in rings:
        yield from ((a[0], b[0]) for a, b in pairwise(ring))


def globe_frame(area: dict[str, Any]) -> dict[str, Any]:
    """The area as a MultiPolygon where its edges run as on the globe: a polygon with an edge over 180 degrees of
    longitude on the map crosses the antimeridian the short way, so its western longitudes move past 180 (on the
    map such a polygon runs the long way round, where a hole or a concave corner seems to cross its other edges)."""
    polygons = [area["coordinates"]] if area["type"] == "Polygon" else area["coordinates"]
    judged = []
    for rings in polygons:
        if any(abs(a - b) > 180 for a, b in _edges(rings)):
            rings = [[[lon + 360 if lon < 0 else lon, lat] for lon, lat in ring] for ring in rings]
        judged.append(rings)
    return {"type": "MultiPolygon", "coordinates": judged}


def _zero_edge_polygon(area: dict[str, Any]) -> int | None:
    """The index of the first polygon with an edge from -180 to 180 (one meridian: on the globe the edge has zero
    length), or None."""
    polygons = [area["coordinates"]] if area["type"] == "Polygon" else area["coordinates"]
    return next((i for i, rings in enumerate(polygons) if any(abs(a - b) == 360 for a, b in _edges(rings))), None)


def _zero_edge(area: dict[str, Any]) -> str:
    """What is wrong with the polygon that has an edge from -180 to 180, or ''."""
    if (i := _zero_edge_polygon(area)) is None:
        return ""
    which = "" if area["type"] == "Polygon" else f" (polygon {i})"
    return f"an edge from -180 to 180{which} has zero length, as both are one meridian; put corners between its ends"


def _flat_reason(area: dict[str, Any], index: int) -> str:
    """Why polygon `index` (1-based) of the stored MultiPolygon has no area on the globe."""
    which = "" if area["type"] == "Polygon" else f"polygon {index - 1} "
    zero_edge = _zero_edge(area)
    return f"{which}has no extent on the globe (no area once stored as a geography)" + (
        f": {zero_edge}" if zero_edge else ""
    )


async def check_area(conn: Any, value: str | dict[str, Any]) -> str:
    """The area as a GeoJSON MultiPolygon text ready for `set_delivery`, or InvalidArea (asyncpg connection):
    judged as the globe reads it (edges across the antimeridian run the short way), with area as stored."""
    area = parse_area(value)
    stmt = statement("engine/geo_scope", "check_area")
    with _postgis_refusals():
        row = await conn.fetchrow(stmt.sql, *stmt.bind(geojson=json.dumps(area), judged=json.dumps(globe_frame(area))))
    if not row["valid"]:
        reason, x = str(row["reason"]), row["x"]
        if x is not None and x > 180:  # a place east of 180 in the judged frame: said as the map writes it
            reason = re.sub(r"\[\S+ ", f"[{x - 360:.15g} ", reason, count=1)
        collapsed = _zero_edge_polygon(area)
        if collapsed is not None and reason.startswith("Too few points"):  # its ring round the globe, in `judged`
            raise InvalidArea(_flat_reason(area, collapsed + 1))  # (a MultiPolygon whose other polygon it overlaps)
        zero_edge = _zero_edge(area)
        raise InvalidArea(f"is not a valid polygon: {reason}" + (f" ({zero_edge})" if zero_edge else ""))
    if row["flat"] is not None:
        raise InvalidArea(_flat_reason(area, row["flat"]))
    return str(row["multi"])


async def set_delivery(
    conn: Any,
    store_id: UUID,
    radius_m: int | None,
    area: str | dict[str, Any] | None,
    *,
    set_radius: bool = True,
    set_area: bool = True,
) -> bool:
    """Check and store a store's delivery radius and/or polygon (None clears one; `set_*=False` keeps it);
    False when there is no such store."""
    lowest, highest = DELIVERY_RADIUS_M
    if set_radius and radius_m is not None and not lowest <= radius_m <= highest:
        raise InvalidArea(f"delivery_radius_m must be between {lowest} and {highest} metres")
    multi = None if area is None or not set_area else await check_area(conn, area)
    stmt = statement("engine/geo_scope", "set_delivery")
    args = stmt.bind(
        store_id=store_id, set_radius=set_radius, delivery_radius_m=radius_m, set_area=set_area, delivery_area=multi
    )
    with _postgis_refusals():  # the same text cast again: refused, had its 9 decimals made an edge antipodal
        return await conn.fetchrow(stmt.sql, *args) is not None


async def stores_in_bbox(conn: Any, bbox: BBox) -> list[UUID]:
    box = bbox.meridian_both_ways()  # a store at lon 180 is in a box from -180, and one at -180 in a box to 180
    stmt = statement("engine/geo_scope", "stores_in_bbox")
    ids = await conn.fetchval(
        stmt.sql, *stmt.bind(min_lon=box.min_lon, min_lat=box.min_lat, max_lon=box.max_lon, max_lat=box.max_lat)
    )
    return list(ids)


async def stores_delivering(conn: Any, lat: float, lon: float) -> list[UUID]:
    stmt = statement("engine/geo_scope", "stores_delivering")
    return list(await conn.fetchval(stmt.sql, *stmt.bind(lon=lon, lat=lat)))


async def stores_in_radius(
    conn: Any, lat: float, lon: float, radius_m: float, stores: StoreLocator | None = None
) -> list[UUID]:
    """The active stores within radius_m; with `stores` loaded, placed in memory (PostgreSQL measures the edge)."""
    located = None if stores is None else stores.locate(lon, lat, float(radius_m))
    stmt = statement("engine/geo_scope", "stores_in_radius")
    args = stmt.bind(
        lon=lon,
        lat=lat,
        radius_m=float(radius_m),
        **(NOT_LOCATED if located is None else located.args),
    )
    row = await conn.fetchrow(stmt.sql, *args)
    measured = list(row["store_ids"])
    return measured if located is None else located.stores(measured, row["stores_stale"])


async def store_scope(
    conn: Any,
    *,
    lat: float | None,
    lon: float | None,
    radius_m: float,
    bbox: BBox | None,
    fulfilment: str = "pickup",
    stores: StoreLocator | None = None,
) -> list[UUID] | None:
    """The stores a search may use; None: any active store (no point, no box). pickup: the radius around the
    point, or the box when given; delivery: the stores whose delivery area holds the point; any: both. `stores`: the
    stores' places in memory (store_locator.py), which find the radius's stores."""
    point = lat is not None and lon is not None
    if fulfilment != "pickup" and not point:
        raise ValueError(f"fulfilment={fulfilment} needs lat and lon")
    pickup: list[UUID] | None = None
    if bbox is not None:
        pickup = await stores_in_bbox(conn, bbox)
    elif point:
        assert lat is not None and lon is not None
        pickup = await stores_in_radius(conn, lat, lon, radius_m, stores)
    if fulfilment == "pickup":
        return pickup
    assert lat is not None and lon is not None
    delivering = await stores_delivering(conn, lat, lon)
    if fulfilment == "delivery":
        return delivering
    return sorted(set(pickup or []) | set(delivering))


async def chosen_store_scope(conn: Any, store_ids: list[UUID] | None, store_id: UUID | None) -> list[UUID] | None:
    """The stores a result set is ranked over when the store facet's value is chosen: that store alone, when the
    scope holds it (else none), so that every product it has that matches is in the set (ranked over the whole
    scope, the set held only those of its products among the scope's most relevant, 1000 deep)."""
    if store_id is None:
        return store_ids
    if store_ids is not None:
        return [store_id] if store_id in store_ids else []
    stmt = statement("engine/geo_scope", "store_is_active")
    return [store_id] if await conn.fetchval(stmt.sql, *stmt.bind(store_id=store_id)) else []
