-- seed-demo's delivery areas.

-- name: seed_delivery_areas
-- params: none
-- Deterministic, from each store's id: about a third deliver within a radius of 3-12 km, about one in seven within
-- a polygon (a hexagon of ~6 km around the store, with a 1 km hole at its centre for one in three of those), the
-- rest only offer pickup.
WITH pick AS (
    SELECT s.id, s.location, abs(hashtext(s.id::text)) AS h FROM store s
)
UPDATE store s
SET delivery_radius_m = CASE WHEN mod(pick.h, 3) = 0 THEN 3000 + mod(pick.h / 3, 10) * 1000 END,
    delivery_area = CASE WHEN mod(pick.h, 7) = 1 THEN (
        SELECT ST_Multi(CASE WHEN mod(pick.h, 3) = 1
                             THEN ST_Difference(hex.g, ST_Buffer(pick.location, 1000)::geometry)
                             ELSE hex.g END)::geography
        FROM (SELECT ST_MakePolygon(ST_MakeLine(array_agg(
                         ST_Project(pick.location, 6000, radians(a))::geometry ORDER BY a))) AS g
              FROM (SELECT generate_series(0, 360, 60) AS a) angles) hex
    ) END
FROM pick
WHERE s.id = pick.id;
