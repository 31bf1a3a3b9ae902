-- name: insert_connection
-- params: store_id uuid, source text, external_location text, base_url text|null, secret_enc bytea|null,
--    credentials_enc bytea, config jsonb
-- A POS connection starts enabled with no cursor: its first sync reads everything.
INSERT INTO ingest_connection (store_id, source, external_location, base_url, secret_enc, credentials_enc, config)
VALUES (:store_id, :source, :external_location, :base_url, :secret_enc, :credentials_enc, :config)
RETURNING id

-- name: get_connection
-- params: connection_id uuid
-- Everything a sync needs, with the store's currency (no POS sends one).
SELECT c.id, c.store_id, c.source, c.external_location, c.base_url, c.secret_enc, c.credentials_enc, c.config,
       coalesce(c.cursor, '{}'::jsonb) AS cursor, c.enabled, c.consecutive_failures, s.currency
FROM ingest_connection c JOIN store s ON s.id = c.store_id
WHERE c.id = :connection_id

-- name: list_connections
-- params: interval_s float8, retry_base_s float8
-- The operator's view: state, the last failure and a location that read no stock levels, never a secret. A first
-- sync that stored pages and has not finished (under way, or killed: the next resumes from its cursor) counts the items it stored, from its batches.
-- A failing or waiting connection's next attempt: the later of its backoff and the vendor's asked wait, as
-- due_connections reckons them (a webhook's or an update's due_now skips the backoff, never the vendor's wait).
SELECT c.id, c.store_id, c.source, c.external_location, c.enabled, c.last_sync_at, c.consecutive_failures,
       c.last_error, c.last_error_at,
       CASE WHEN c.last_sync_at IS NULL AND c.cursor IS NOT NULL
            THEN (SELECT coalesce(sum(b.total_rows), 0) FROM import_batch b WHERE b.connection_id = c.id) END
           AS first_sync_rows,
       c.config->>'no_levels' AS no_levels,
       CASE WHEN c.enabled AND n.at > now() THEN n.at END AS next_attempt,
       n.at = n.vendor_wait AS vendor_asked
FROM ingest_connection c
CROSS JOIN LATERAL (
    SELECT greatest(w.vendor_wait, w.backoff) AS at, w.vendor_wait
    -- at most 9999-01-01: psycopg loads no later year (a wait stored before the client bounded it)
    FROM (SELECT CASE WHEN c.config ->> 'not_before' IS NOT NULL
                      THEN to_timestamp(least((c.config ->> 'not_before')::float8, 253370764800)) END AS vendor_wait,
                 CASE WHEN c.consecutive_failures > 0 AND NOT coalesce((c.config ->> 'due_now')::boolean, false)
                      THEN c.last_error_at + make_interval(secs => least(
                          4 * :interval_s, :retry_base_s * power(2, least(c.consecutive_failures - 1, 20)))) END
                     AS backoff) w
) n
ORDER BY c.created_at, c.id

-- name: disable_connection
-- params: connection_id uuid
UPDATE ingest_connection SET enabled = false WHERE id = :connection_id RETURNING id

-- name: enable_connection
-- params: connection_id uuid
UPDATE ingest_connection SET enabled = true WHERE id = :connection_id RETURNING id

-- name: save_cursor
-- params: connection_id uuid, cursor jsonb, stamp bytea|null, base_url text|null
-- Runs in the transaction that stored the page's rows: the cursor never runs ahead of what is stored. Only while
-- the connection is as the sync read it (a compare-and-set): enabled, the same credentials (stored encrypted anew by
-- every update: `stamp`) and host. Else nothing (no row): the sync rolls the page back and stops, and a
-- `connections update`'s cursor reset (another account) or a `connections disable` stands.
UPDATE ingest_connection SET cursor = :cursor
WHERE id = :connection_id
  AND enabled AND credentials_enc IS NOT DISTINCT FROM :stamp AND base_url IS NOT DISTINCT FROM :base_url
RETURNING id

-- name: record_sync_success
-- params: connection_id uuid, stamp bytea|null, base_url text|null
-- Only while the connection is as the sync read it (see save_cursor).
UPDATE ingest_connection
SET last_sync_at = now(), consecutive_failures = 0, config = config - 'due_now' - 'not_before'
WHERE id = :connection_id
  AND enabled AND credentials_enc IS NOT DISTINCT FROM :stamp AND base_url IS NOT DISTINCT FROM :base_url
RETURNING id

-- name: note_no_levels
-- params: connection_id uuid, warning text, full bool, stamp bytea|null, base_url text|null
-- A first or full pass that read items and not one stock level at its location (a location id the vendor does not
-- know reads as every item out of stock): kept in the config, shown by `connections list` until a sync reads one.
-- Only while the connection is as the sync read it (see save_cursor): a pass of the old account's credentials,
-- finished after `connections update` moved the connection to another account, must not warn about the new one.
UPDATE ingest_connection SET config = config || jsonb_build_object('no_levels', :warning::text)
WHERE id = :connection_id AND (:full::bool OR last_sync_at IS NULL)
  AND enabled AND credentials_enc IS NOT DISTINCT FROM :stamp AND base_url IS NOT DISTINCT FROM :base_url
RETURNING id

-- name: clear_no_levels
-- params: connection_id uuid, stamp bytea|null, base_url text|null
-- Only while the connection is as the sync read it (see save_cursor).
UPDATE ingest_connection SET config = config - 'no_levels'
WHERE id = :connection_id
  AND enabled AND credentials_enc IS NOT DISTINCT FROM :stamp AND base_url IS NOT DISTINCT FROM :base_url

-- name: record_sync_failure
-- params: connection_id uuid, error text, not_before float8|null (unix seconds a vendor asked us to wait for),
--    guarded bool, stamp bytea|null, base_url text|null
-- The failure stays visible (connections list) until a sync succeeds; the cursor is untouched. `guarded`: a sync's
-- failure, recorded only while the connection is as the sync read it (see save_cursor): a 401 of the old token
-- after `connections update --token` is not the new one's.
UPDATE ingest_connection
SET last_error = :error, last_error_at = now(), consecutive_failures = consecutive_failures + 1,
    config = CASE WHEN :not_before::float8 IS NULL THEN config - 'not_before'
                  ELSE config || jsonb_build_object('not_before', :not_before::float8) END
WHERE id = :connection_id AND (NOT :guarded::bool
    OR enabled AND credentials_enc IS NOT DISTINCT FROM :stamp AND base_url IS NOT DISTINCT FROM :base_url)
RETURNING consecutive_failures

-- name: due_connections
-- params: interval_s float8, retry_base_s float8, sources text[]
-- Due: never synced, asked for by a webhook (a trigger delivery past the cursor's mark), or its interval passed;
-- after failures, an exponential backoff (retry_base_s doubling, capped at 4 intervals) and any wait the vendor
-- asked for.
SELECT c.id, c.source, coalesce(c.config ->> 'account', c.id::text) AS account
FROM ingest_connection c
WHERE c.enabled AND c.source = ANY(:sources)
  AND coalesce((c.config ->> 'not_before')::float8, 0) <= extract(epoch FROM now())
  AND (
    c.last_sync_at IS NULL AND c.consecutive_failures = 0
    OR coalesce((c.config ->> 'due_now')::boolean, false)
    OR EXISTS (SELECT 1 FROM ingest_delivery d
               WHERE d.connection_id = c.id AND d.delivery_id LIKE 'trigger:%'
                 AND d.id > coalesce((c.cursor ->> 'delivery_mark')::bigint, 0))
    OR (c.consecutive_failures = 0 AND c.last_sync_at < now() - make_interval(secs => :interval_s))
    OR (c.consecutive_failures > 0 AND c.last_error_at < now() - make_interval(secs => least(
        4 * :interval_s, :retry_base_s * power(2, least(c.consecutive_failures - 1, 20))))))
ORDER BY c.last_sync_at NULLS FIRST, c.id

-- name: request_repoll
-- params: connection_id uuid, stock_ids jsonb (a JSON array of vendor product ids whose stock to read again)
-- A webhook that only says "something changed": the next sync runs now and reads these products' stock.
UPDATE ingest_connection
SET config = config || '{"due_now": true}'::jsonb,
    cursor = jsonb_set(coalesce(cursor, '{}'::jsonb), '{repoll_stock}',
                       coalesce(cursor -> 'repoll_stock', '[]'::jsonb) || :stock_ids)
WHERE id = :connection_id

-- name: save_links
-- params: connection_id uuid, external_ids text[], parent_ids text[], skus text[]
-- Vendor ids that later messages name instead of the listing's SKU (a Shopify product's variants).
INSERT INTO ingest_connector_link (connection_id, external_id, parent_id, sku)
SELECT :connection_id, e, p, s FROM unnest(:external_ids::text[], :parent_ids::text[], :skus::text[]) AS t(e, p, s)
ON CONFLICT (connection_id, external_id) DO UPDATE SET parent_id = excluded.parent_id, sku = excluded.sku

-- name: removed_variants
-- params: connection_id uuid, store_id uuid, parent_ids text[], kept text[]
-- The linked SKUs of products read whole that their record no longer holds (variants deleted at the vendor:
-- connectors/links.py) whose listing is on sale: one already off sale gets no second delete from later records.
-- A listing not there yet is deleted only while an upsert of it waits to be mapped (its product's batch, before
-- this one: deleted after it); a variant never listed (its row refused) got a `delete` from every later record of
-- its product, each `stale`. The wait is probed only for such a link (rare), through the store's unfinished
-- batches (ix_import_batch_claim). `kept` as an anti-join: `NOT (external_id = ANY(:kept))` went through the array
-- for each link under a generic plan (5,000 products a page: 0.7 s against 0.02 s).
SELECT l.parent_id, l.sku
FROM ingest_connector_link l
LEFT JOIN store_product sp ON sp.store_id = :store_id AND sp.sku = l.sku
WHERE l.connection_id = :connection_id AND l.parent_id = ANY(:parent_ids::text[])
  AND NOT EXISTS (SELECT 1 FROM unnest(:kept::text[]) AS k(id) WHERE k.id = l.external_id)
  AND (sp.is_active OR sp.id IS NULL AND EXISTS (
      SELECT 1 FROM import_batch b JOIN imported_product_raw r ON r.import_batch_id = b.id
      WHERE b.store_id = :store_id AND b.status IN ('pending', 'processing') AND b.connection_id = :connection_id
        AND r.status = 'pending' AND r.payload ->> 'op' = 'upsert' AND r.payload ->> 'sku' = l.sku))

-- name: linked_skus_of_parent
-- params: connection_id uuid, parent_id text
-- The links a poll recorded (in the transaction of its rows): one index probe, what a delete webhook tries first.
SELECT sku FROM ingest_connector_link WHERE connection_id = :connection_id AND parent_id = :parent_id

-- name: skus_of_parent
-- params: connection_id uuid, parent_id text
-- The links a poll recorded (in the transaction of its rows), and, for a product not polled yet, the raw rows of
-- the webhooks that carried it (pruned with their batches).
SELECT sku FROM ingest_connector_link WHERE connection_id = :connection_id AND parent_id = :parent_id
UNION
SELECT r.payload ->> 'sku'
FROM import_batch b JOIN imported_product_raw r ON r.import_batch_id = b.id
WHERE b.connection_id = :connection_id AND b.kind = 'webhook'
  AND r.payload -> 'attributes' ->> 'product_id' = :parent_id AND r.payload ->> 'op' = 'upsert'

-- name: delivered_levels
-- params: connection_id uuid, skus text[]
-- The newest level (by its clock) the connection's webhooks delivered of each SKU (a scan of its webhook batches,
-- pruned with them), read at intake of a product delivery for the SKUs the store has no listing of: Shopify may
-- deliver a new variant's level before its product, and the product's listing is created with it.
SELECT DISTINCT ON (r.payload ->> 'sku') r.payload ->> 'sku' AS sku, r.payload ->> 'quantity' AS quantity,
       r.payload ->> 'quantity_sent' AS quantity_sent, r.payload ->> 'version' AS version
FROM import_batch b JOIN imported_product_raw r ON r.import_batch_id = b.id
WHERE b.connection_id = :connection_id AND b.kind = 'webhook' AND r.payload ->> 'op' = 'stock'
  AND r.payload ->> 'sku' = ANY(:skus::text[])
  AND r.payload ->> 'quantity' IS NOT NULL AND r.payload ->> '_error' IS NULL  -- a refused level: none
ORDER BY r.payload ->> 'sku', (r.payload ->> 'version')::numeric DESC NULLS LAST, b.seq DESC, r.row_number DESC

-- name: one_location
-- params: connection_id uuid
-- Whether the connection's last poll counted one location at the vendor (Shopify `locations/count.json`, kept in its
-- cursor): a new variant's `inventory_quantity`, summed over the shop's locations, is then its level here.
SELECT coalesce(cursor -> 'locations' = '1'::jsonb, false) AS one FROM ingest_connection WHERE id = :connection_id

-- name: listed_skus
-- params: store_id uuid, skus text[]
-- Which of these SKUs the store has a listing of (a Shopify level's, at intake: see connectors/webhooks.py).
SELECT sku FROM store_product WHERE store_id = :store_id AND sku = ANY(:skus::text[])

-- name: pending_triggers
-- params: connection_id uuid, mark bigint
-- Webhook deliveries that asked for a re-read (see connectors/webhooks.py), oldest first.
SELECT id, delivery_id FROM ingest_delivery
WHERE connection_id = :connection_id AND id > :mark AND delivery_id LIKE 'trigger:%'
ORDER BY id

-- name: try_account_lock
-- params: account_key text
-- One sync at a time per vendor account, across worker processes (released at the session's unlock).
SELECT pg_try_advisory_lock(hashtext('plinqy-sync:' || :account_key))

-- name: account_lock
-- params: account_key text
-- The same lock, waited for (`plinqy-search sync`: an operator's sync runs after the worker's, never beside it).
SELECT pg_advisory_lock(hashtext('plinqy-sync:' || :account_key))

-- name: account_unlock
-- params: account_key text
SELECT pg_advisory_unlock(hashtext('plinqy-sync:' || :account_key))

-- name: vanished_listings
-- params: connection_id uuid, store_id uuid, seen text[]
-- After a complete full sync: the store's active listings this connection once delivered (its raw rows) that the
-- vendor no longer returns. Pruned raw rows only hide candidates, so nothing is ever removed by mistake.
SELECT sp.sku,
       (SELECT count(*) FROM store_product a WHERE a.store_id = :store_id AND a.is_active) AS active
FROM store_product sp
WHERE sp.store_id = :store_id AND sp.is_active AND sp.sku IS NOT NULL AND NOT (sp.sku = ANY(:seen::text[]))
  AND sp.sku IN (SELECT r.payload ->> 'sku'
                 FROM import_batch b JOIN imported_product_raw r ON r.import_batch_id = b.id
                 WHERE b.connection_id = :connection_id)
