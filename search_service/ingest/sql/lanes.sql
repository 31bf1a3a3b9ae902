-- A big batch mapped in lanes: its pending rows split into contiguous row ranges, each range mapped chunk by chunk
-- in its own transactions on its own connection, the lanes at once (one store's mapping in one backend tops out
-- near 6k rows/s here; two backends on two cores map ~1.7x as many). Only a batch whose rows cannot meet in two
-- lanes: no SKU and no GTIN twice among its pending rows (lanes_plan), so that every decision a lane takes stays
-- the one a single mapper would take, whatever the other lane does meanwhile.
--
-- Fencing without the batch's row lock (two lanes cannot both hold it: each would wait for the other's commit):
-- a lane takes the store's advisory lock SHARED (another mapper of the store, a listing PUT or a worker that took
-- the batch over, takes it exclusive and waits for the lane's transaction), checks that the batch is still ours
-- when it starts (lane_fence) and again in the statement that saves its rows (batches.sql's save_results, which
-- also extends the lease): no row there means the batch was taken over, and the lane's chunk rolls back.

-- name: lanes_plan
-- params: batch_id uuid, lanes int
-- The pending rows, whether they are independent (SKUs and GTINs compared coarser than validation compares them:
-- whitespace and case out of a SKU, every non-digit and leading zero out of a GTIN; two rows validation would find
-- equal are equal here too), and the row numbers that end each lane but the last.
WITH pending AS (
    SELECT row_number, lower(regexp_replace(payload->>'sku', '\s', '', 'g')) AS sku,
           nullif(ltrim(regexp_replace(payload->>'gtin', '[^0-9]', '', 'g'), '0'), '') AS gtin
    FROM imported_product_raw
    WHERE import_batch_id = :batch_id AND status = 'pending'
)
SELECT count(*) AS pending,
       count(sku) = count(*) AND count(DISTINCT sku) = count(*) AND count(DISTINCT gtin) = count(gtin) AS independent,
       percentile_disc(ARRAY(SELECT k::float8 / :lanes FROM generate_series(1, :lanes - 1) AS k))
           WITHIN GROUP (ORDER BY row_number) AS lane_ends
FROM pending;

-- name: lane_fence
-- params: batch_id uuid, worker_id text
-- Starts a lane chunk's transaction: the batch is still ours, the store's lock taken shared, async commit and key
-- checks planned once (as the sequential fence: a server crash leaves the rows pending, mapped again to the same
-- state).
SELECT b.store_id, b.source, s.currency, s.is_active AS store_active,
       pg_advisory_xact_lock_shared(hashtextextended(b.store_id::text, 20261203)) AS locked,
       set_config('synchronous_commit', 'off', true) AS async_commit,
       set_config('plan_cache_mode', 'auto', true) AS key_checks_planned_once
FROM import_batch b JOIN store s ON s.id = b.store_id
WHERE b.id = :batch_id AND b.locked_by = :worker_id AND b.status = 'processing';

-- name: lane_rows
-- params: batch_id uuid, after int, upto int, limit int
SELECT id, row_number, payload FROM imported_product_raw
WHERE import_batch_id = :batch_id AND status = 'pending' AND row_number > :after AND row_number <= :upto
ORDER BY row_number
LIMIT :limit;
