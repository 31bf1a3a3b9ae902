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

-- name: update_connection_secrets
-- params: connection_id uuid, secret_enc bytea|null, credentials_enc bytea|null, base_url text|null,
--    vendor_host bool, due_again bool, drop_wait bool, account text|null, signature text
-- New secret(s), credentials or host for a connection (NULL: kept; `vendor_host`: back to the vendor's own);
-- `signature` (a JSON object, '{}' for none) replaces those webhook signature settings in its config.
-- `due_again` (new credentials or host): a failing connection is due at once, its backoff was for the old ones.
-- The vendor's asked wait (not_before) is the account's quota: only `drop_wait` (another host or account) drops it.
-- A new `account` (the config's `account`: the sync lock's key, what webhooks are checked against) starts over
-- with a first sync: another account's cursor means nothing, and its no-levels warning was of the other one.
UPDATE ingest_connection
SET secret_enc = coalesce(:secret_enc, secret_enc),
    credentials_enc = coalesce(:credentials_enc, credentials_enc),
    base_url = CASE WHEN :vendor_host::bool THEN NULL ELSE coalesce(:base_url, base_url) END,
    consecutive_failures = CASE WHEN :due_again::bool THEN 0 ELSE consecutive_failures END,
    cursor = CASE WHEN :account::text IS NULL THEN cursor END,
    last_sync_at = CASE WHEN :account::text IS NULL THEN last_sync_at END,
    config = (CASE WHEN :drop_wait::bool THEN config - 'not_before' ELSE config END)
        - CASE WHEN :account::text IS NULL THEN '{}'::text[] ELSE '{no_levels}'::text[] END
        || CASE WHEN :account::text IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('account', :account::text) END
        || :signature::jsonb
WHERE id = :connection_id
RETURNING id, source, store_id;

-- name: same_location_connection
-- params: store_id uuid, source text, external_location text
-- A POS connection of the store to this vendor location already: a second one polled the same stock twice.
SELECT id, enabled FROM ingest_connection
WHERE store_id = :store_id AND source = :source AND external_location = :external_location
ORDER BY enabled DESC, created_at
LIMIT 1;

-- name: lock_store
-- params: store_id uuid
-- Held to the transaction's end: two `connect`s or `connections enable`s into one store run one after the other,
-- so each one's check for another enabled POS connection sees the other's.
SELECT id FROM store WHERE id = :store_id FOR NO KEY UPDATE;

-- name: enabled_pos_connection
-- params: store_id uuid, sources text[], other_than uuid|null
-- Another enabled POS connection of the store: two write one SKU namespace and overwrite each other's listings.
SELECT id, source, external_location FROM ingest_connection
WHERE store_id = :store_id AND enabled AND source = ANY(:sources::text[]) AND id IS DISTINCT FROM :other_than::uuid
ORDER BY created_at, id
LIMIT 1;
