-- Store scopes other than "within radius_m of the point": a map viewport, and delivery areas.

-- name: stores_in_bbox
-- params: min_lon float8, min_lat float8, max_lon float8, max_lat float8 (min_lon > max_lon: the box crosses
--    the antimeridian)
-- Active stores whose location lies in the box, bounds included. Plain longitude/latitude comparisons (a viewport
-- is a lon/lat rectangle, not a geodesic polygon); `&&` against one envelope, or two for a box crossing the
-- antimeridian, reads the GiST index on location::geometry (migration 0008), and the exact comparisons after it
-- drop what the index's float4 boxes let through.
-- The caller reads an edge on lon -180 or 180 as both (geo_areas.BBox.meridian_both_ways: one meridian).
SELECT coalesce(array_agg(s.id ORDER BY s.id), '{}'::uuid[]) AS store_ids
FROM store s
WHERE s.is_active
  AND (s.location::geometry && ST_MakeEnvelope(:min_lon::float8, :min_lat::float8,
                                               CASE WHEN :min_lon::float8 <= :max_lon::float8 THEN :max_lon::float8
                                                    ELSE 180 END, :max_lat::float8, 4326)
       OR (:min_lon::float8 > :max_lon::float8
           AND s.location::geometry && ST_MakeEnvelope(-180, :min_lat::float8, :max_lon::float8, :max_lat::float8, 4326)))
  AND ST_Y(s.location::geometry) BETWEEN :min_lat::float8 AND :max_lat::float8
  AND CASE WHEN :min_lon::float8 <= :max_lon::float8
           THEN ST_X(s.location::geometry) BETWEEN :min_lon::float8 AND :max_lon::float8
           ELSE ST_X(s.location::geometry) >= :min_lon::float8 OR ST_X(s.location::geometry) <= :max_lon::float8 END;

-- name: store_is_active
-- params: store_id uuid
-- A global search's chosen store (the store facet's value): its listings count only while it is active.
SELECT coalesce((SELECT s.is_active FROM store s WHERE s.id = :store_id::uuid), false) AS active;

-- name: stores_delivering
-- params: lon float8, lat float8
-- Active stores that deliver to the point, however far away: within their delivery radius (geodesic, as
-- ST_DWithin on geography), or inside their delivery polygon (ST_Covers: a hole is outside, the boundary inside).
-- The radius side probes the GiST index on location with the largest radius any store has (a per-row radius
-- alone cannot use it), then checks each store's own.
WITH pt AS (SELECT ST_SetSRID(ST_MakePoint(:lon::float8, :lat::float8), 4326)::geography AS g)
SELECT coalesce(array_agg(DISTINCT x.id ORDER BY x.id), '{}'::uuid[]) AS store_ids
FROM (
    SELECT s.id FROM store s, pt
    WHERE s.is_active AND s.delivery_radius_m IS NOT NULL
      AND ST_DWithin(s.location, pt.g, (SELECT max(delivery_radius_m) FROM store)::float8)
      AND ST_DWithin(s.location, pt.g, s.delivery_radius_m::float8)
    UNION ALL
    SELECT s.id FROM store s, pt
    WHERE s.is_active AND s.delivery_area IS NOT NULL AND ST_Covers(s.delivery_area, pt.g)
) x;

-- name: check_area
-- params: geojson text (a Polygon or MultiPolygon, already checked for shape by geo_areas.parse_area),
--         judged text (the same as a MultiPolygon, each polygon with an edge across the antimeridian moved to
--         lon 0..360: geo_areas.globe_frame)
-- PostGIS's verdict on a delivery polygon as the globe reads it: valid (OGC rules: no self-intersection, holes
-- inside their shell) as drawn on the lon/lat map or, across the antimeridian, where its edges run the short way
-- (judged: on the map they run the long way round and seem to cross); when not, the reason and its place (x) in
-- the judged frame. A valid one is returned as a MultiPolygon cast to geography, as set_delivery stores it, so
-- that what the globe refuses (an edge 180 degrees long) is refused here too; `flat` is the first of the stored
-- polygons with no area on the globe (an edge from -180 to 180 has zero length there: a band round it collapses).
WITH g AS (
    SELECT ST_SetSRID(ST_GeomFromGeoJSON(:geojson::text), 4326) AS geom, ST_GeomFromGeoJSON(:judged::text) AS judged
), v AS (
    SELECT geom, judged, CASE WHEN ST_IsValid(geom) THEN true ELSE ST_IsValid(judged) END AS valid FROM g
), m AS (
    SELECT judged, valid, CASE WHEN valid THEN ST_AsGeoJSON(ST_Multi(geom)::geography) END AS multi FROM v
)
SELECT valid, multi,
       CASE WHEN NOT valid THEN ST_IsValidReason(judged) END AS reason,
       CASE WHEN NOT valid THEN ST_X((ST_IsValidDetail(judged)).location) END AS x,
       (SELECT min(d.path[1]) FROM ST_Dump(ST_GeomFromGeoJSON(multi)) d
        WHERE ST_Area(ST_SetSRID(d.geom, 4326)::geography) = 0) AS flat
FROM m;

-- name: set_delivery
-- params: store_id uuid, set_radius bool, delivery_radius_m int|null, set_area bool,
--         delivery_area text|null (GeoJSON MultiPolygon, checked)
-- Sets a store's delivery radius and/or polygon (set_*: whether to change it; NULL clears it).
UPDATE store
SET delivery_radius_m = CASE WHEN :set_radius::bool THEN :delivery_radius_m::int ELSE delivery_radius_m END,
    delivery_area = CASE WHEN NOT :set_area::bool THEN delivery_area
                         WHEN :delivery_area::text IS NULL THEN NULL
                         ELSE ST_SetSRID(ST_GeomFromGeoJSON(:delivery_area::text), 4326)::geography END
WHERE id = :store_id::uuid
RETURNING id;

-- name: stores_in_radius
-- params: lon float8, lat float8, radius_m float8, store_version bigint|null (the API's in-memory stores' version;
--         null: none held), edge_store_ids uuid[]|null (the stores the API could not place inside or outside)
-- Pickup scope: active stores within radius_m of the point (geodesic), found as search_context finds them: where
-- the stores' version in this snapshot is the API's copy's, only the edge stores are measured (a primary-key probe
-- each) and `store_ids` lists those inside; otherwise (`stores_stale`) every store in the radius (GiST on
-- store.location).
WITH pt AS (
    SELECT ST_SetSRID(ST_MakePoint(:lon::float8, :lat::float8), 4326)::geography AS g
), stale AS (
    SELECT :store_version::bigint IS NULL
        OR :store_version::bigint IS DISTINCT FROM (SELECT v.version FROM store_geo_version v) AS yes
)
SELECT (SELECT yes FROM stale) AS stores_stale, coalesce(ARRAY(
    SELECT s.id FROM store s, pt
    WHERE (SELECT yes FROM stale) AND s.is_active AND ST_DWithin(s.location, pt.g, :radius_m::float8)
    UNION ALL
    SELECT e.id FROM unnest(:edge_store_ids::uuid[]) AS e(id)
    WHERE NOT (SELECT yes FROM stale)
      AND (SELECT s.is_active AND ST_DWithin(s.location, pt.g, :radius_m::float8) FROM store s, pt WHERE s.id = e.id)
), '{}'::uuid[]) AS store_ids;
