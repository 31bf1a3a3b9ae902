-- The catalogue reads behind the API's non-search endpoints and its readiness check (asyncpg).
-- Search itself lives in search.sql.

-- name: stores_nearby
-- params: lat float8, lon float8, radius_m float8, limit int, offset int
-- ST_DWithin on geography uses the GiST index on store.location; distances are on the spheroid (metres). One row
-- with a NULL id and the count when the page is past the last store: `total` is said whatever the offset.
WITH here AS (
    SELECT ST_SetSRID(ST_MakePoint(:lon::float8, :lat::float8), 4326)::geography AS point
), inside AS MATERIALIZED (
    SELECT s.id, s.name, s.store_type, s.address, s.city, s.postal_code, s.country_code,
           ST_Y(s.location::geometry) AS lat,
           ST_X(s.location::geometry) AS lon,
           ST_Distance(s.location, here.point) AS distance_m
    FROM store s, here
    WHERE s.is_active
      AND ST_DWithin(s.location, here.point, :radius_m::float8)
), page AS (
    SELECT * FROM inside ORDER BY distance_m, id LIMIT :limit::int OFFSET :offset::int
)
SELECT (SELECT count(*) FROM inside) AS total, page.*
FROM (SELECT 1) AS one LEFT JOIN page ON true
ORDER BY page.distance_m, page.id;

-- name: product_by_id
-- params: product_id uuid
-- One round trip: the product, its category path (root first) and its images as JSON text.
-- The depth guard stops a (corrupt) parent cycle from recursing forever.
WITH RECURSIVE path AS (
    SELECT c.id, c.parent_id, c.name, c.slug, 0 AS depth
    FROM category c
    JOIN product_master p ON p.category_id = c.id
    WHERE p.id = :product_id::uuid
    UNION ALL
    SELECT c.id, c.parent_id, c.name, c.slug, path.depth + 1
    FROM category c
    JOIN path ON c.id = path.parent_id
    WHERE path.depth < 64
)
SELECT p.id,
       p.name,
       p.brand,
       p.description,
       p.category_id,
       p.gtin,
       p.attributes::text AS attributes,
       coalesce(
           (SELECT jsonb_agg(jsonb_build_object('id', path.id, 'name', path.name, 'slug', path.slug)
                             ORDER BY path.depth DESC)
            FROM path),
           '[]'::jsonb
       )::text AS category_path,
       coalesce(
           (SELECT jsonb_agg(jsonb_build_object('id', i.id, 'url', i.url, 'alt_text', i.alt_text,
                                                'position', i.position, 'is_primary', i.is_primary)
                             ORDER BY i.is_primary DESC, i.position, i.id)
            FROM product_image i
            WHERE i.product_master_id = p.id),
           '[]'::jsonb
       )::text AS images
FROM product_master p
WHERE p.id = :product_id::uuid
  AND p.is_active;

-- name: categories
-- params: none
-- The whole tree is small (hundreds of rows); it is assembled into a nested tree by the caller.
SELECT c.id, c.parent_id, c.name, c.slug, c.position
FROM category c
ORDER BY c.position, c.name, c.id;

-- name: some_stored_secrets
-- params: none
-- A few secrets stored encrypted (connections' signing secrets or credentials, subscriptions' signing secrets),
-- any ones: readiness checks that the secret key opens at least one of them (they are stored with the one key).
(SELECT secret_enc AS token FROM ingest_connection WHERE secret_enc IS NOT NULL LIMIT 4)
UNION ALL (SELECT credentials_enc FROM ingest_connection WHERE credentials_enc IS NOT NULL LIMIT 4)
UNION ALL (SELECT convert_to(secret, 'UTF8') FROM store_webhook WHERE secret IS NOT NULL LIMIT 4);

-- name: bound_statements
-- params: timeout_ms text
-- Inside readiness's transaction: its statements' timeout, what is left of its time limit after the wait for a
-- connection (the server cancels them, and the connection stays usable).
SELECT set_config('statement_timeout', :timeout_ms, true);

-- name: migration_revisions
-- params: none
-- The migration revision the database is at (alembic keeps exactly one row).
SELECT version_num FROM alembic_version;

-- name: vector_count
-- params: none
-- How many vectors a full load of the in-memory copy would hold (index-only scan on
-- ix_product_master_ai_embedded_at), checked against PLINQY_VECTOR_CACHE_MAX before loading.
SELECT count(*) FROM product_master WHERE ai_embedded_at IS NOT NULL;

-- name: active_product_count
-- params: none
-- The catalogue's size, checked once against PLINQY_SUGGEST_INDEX_MAX before the suggestion index is built
-- (index-only scan on the partial ix_product_master_active_labels).
SELECT count(*) FROM product_master WHERE is_active;
