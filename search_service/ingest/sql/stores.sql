-- Stores and ingest connections, written by admins (API) and operators (CLI).

-- name: insert_store
-- params: name text, lat float8, lon float8, address text|null, city text|null, postal_code text|null,
--    country_code text|null, store_type text|null, currency text, phone text|null, website text|null
INSERT INTO store (name, location, address, city, postal_code, country_code, store_type, currency, phone, website)
VALUES (:name, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, NULLIF(:address, ''), NULLIF(:city, ''),
        NULLIF(:postal_code, ''), NULLIF(:country_code, ''), NULLIF(:store_type, ''), :currency, NULLIF(:phone, ''),
        NULLIF(:website, ''))
RETURNING id;

-- name: update_store
-- params: store_id uuid, name text|null, lat float8|null, lon float8|null, address text|null, city text|null,
--    postal_code text|null, country_code text|null, store_type text|null, currency text|null, phone text|null,
--    website text|null, is_active bool|null (NULL everywhere: keep; '' clears an optional text field)
UPDATE store
SET name = coalesce(:name, name),
    location = CASE WHEN :lat::float8 IS NOT NULL AND :lon::float8 IS NOT NULL
                    THEN ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography ELSE location END,
    address = NULLIF(coalesce(:address, address), ''), city = NULLIF(coalesce(:city, city), ''),
    postal_code = NULLIF(coalesce(:postal_code, postal_code), ''),
    country_code = NULLIF(coalesce(:country_code, country_code), ''),
    store_type = NULLIF(coalesce(:store_type, store_type), ''), currency = coalesce(:currency, currency),
    phone = NULLIF(coalesce(:phone, phone), ''), website = NULLIF(coalesce(:website, website), ''),
    is_active = coalesce(:is_active, is_active)
WHERE id = :store_id
RETURNING id;

-- name: store_detail
-- params: store_id uuid
SELECT id, name, ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lon, address, city, postal_code,
       country_code, store_type, currency, phone, website, is_active, created_at, updated_at,
       delivery_radius_m, ST_AsGeoJSON(delivery_area) AS delivery_area
FROM store WHERE id = :store_id;

-- name: insert_connection
-- params: store_id uuid, source text, secret_enc bytea|null, credentials_enc bytea|null, config jsonb,
--    external_location text|null, base_url text|null
INSERT INTO ingest_connection (store_id, source, secret_enc, credentials_enc, config, external_location, base_url)
VALUES (:store_id, :source, :secret_enc, :credentials_enc, :config::jsonb, :external_location, :base_url)
RETURNING id;

-- name: connection
-- params: connection_id uuid
SELECT id, store_id, source, secret_enc, credentials_enc, config, enabled FROM ingest_connection
WHERE id = :connection_id;
