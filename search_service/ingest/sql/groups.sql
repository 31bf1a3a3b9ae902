-- Small batches of one store (webhook deliveries, mostly) mapped together: the worker that holds a store's head
-- batch also takes the store's next waiting small batches, in order, and maps them all in ONE transaction (one
-- fence, one lookup, one write per table, one save), instead of a transaction, a claim and a set of trigger runs
-- per delivery. Each batch still ends completed with its own counters, and its rows their own outcomes.

-- name: claim_followers
-- params: store_id uuid, after_seq bigint, worker_id text, lease_s float8, max_batches int, max_rows int
-- The store's waiting batches after the head this worker holds, in order, as long as their rows add up to at most
-- max_rows and none is held by a live lease. Nobody else claims them meanwhile: claim_batch only takes a store's
-- head. Batches of a killed worker (status processing, lease lapsed) are taken over like pending ones.
WITH next AS (
    SELECT id, sum(total_rows) OVER w AS rows_through,
           bool_or(status = 'processing' AND locked_until >= now()) OVER w AS held_through
    FROM (SELECT id, seq, total_rows, status, locked_until FROM import_batch
          WHERE store_id = :store_id AND status IN ('pending', 'processing') AND seq > :after_seq
            AND seq < coalesce((SELECT min(r.seq) FROM import_batch r  -- not past an upload still arriving
                                WHERE r.status = 'receiving' AND r.locked_until > now() AND r.store_id = :store_id
                                  AND r.seq > :after_seq),
                               9223372036854775807)
          ORDER BY seq LIMIT :max_batches) waiting
    WINDOW w AS (ORDER BY seq)
)
UPDATE import_batch b
SET status = 'processing', locked_by = :worker_id, locked_until = now() + make_interval(secs => :lease_s),
    started_at = coalesce(b.started_at, now()), attempts = b.attempts + 1
FROM next
WHERE b.id = next.id AND next.rows_through <= :max_rows AND NOT coalesce(next.held_through, false)
RETURNING b.id, b.seq, b.total_rows;

-- name: fence_group
-- params: batch_ids uuid[], worker_id text, lease_s float8
-- fence (batches.sql) for a group: every batch still ours (held = how many), the store lock, async commit, key
-- checks planned once, the embedding priority: its best batch's (one statement writes the group's products, so a
-- delivery mapped with a small sync page lifts the page's tasks too, at most a chunk's rows, rather than wait).
WITH ours AS (
    UPDATE import_batch SET locked_until = now() + make_interval(secs => :lease_s)
    WHERE id = ANY (:batch_ids::uuid[]) AND locked_by = :worker_id AND status = 'processing'
    RETURNING store_id, kind, total_rows
)
SELECT (SELECT count(*) FROM ours) AS held, s.id AS store_id, s.currency, s.is_active AS store_active,
       pg_advisory_xact_lock(hashtextextended(s.id::text, 20261203)) AS locked,
       set_config('synchronous_commit', 'off', true) AS async_commit,
       set_config('plan_cache_mode', 'auto', true) AS key_checks_planned_once,
       set_config('plinqy.embed_priority', (SELECT max(ai_task_batch_priority(kind, total_rows)) FROM ours)::text,
                  true) AS embed_priority
FROM store s WHERE s.id = (SELECT store_id FROM ours LIMIT 1);

-- name: mark_duplicates_group
-- params: batch_ids uuid[]
-- mark_duplicates (batches.sql), batch by batch: a SKU repeated in one file or vendor page; returns the count per
-- batch.
WITH rows AS (
    SELECT r.id, r.import_batch_id, r.row_number, r.status, btrim(r.payload->>'sku') AS sku,
           coalesce(r.payload->>'op', 'upsert') AS op
    FROM imported_product_raw r JOIN import_batch b ON b.id = r.import_batch_id AND b.kind IN ('csv', 'sync')
    WHERE r.import_batch_id = ANY (:batch_ids::uuid[]) AND r.status <> 'rejected'
      AND nullif(btrim(r.payload->>'sku'), '') IS NOT NULL  -- no SKU: rejected as such, not a duplicate
), ranked AS (
    SELECT id, status, row_number,
           max(row_number) FILTER (WHERE op IN ('upsert', 'delete'))
               OVER (PARTITION BY import_batch_id, sku) AS last_replacing,
           max(row_number) OVER (PARTITION BY import_batch_id, sku, op) AS last_same_op
    FROM rows
), replaced AS (
    SELECT id, CASE WHEN last_replacing > row_number THEN last_replacing ELSE last_same_op END AS by_row
    FROM ranked
    WHERE status = 'pending' AND (row_number < last_replacing OR row_number < last_same_op)
), marked AS (
    UPDATE imported_product_raw r
    SET status = 'duplicate', replaced_by_row = replaced.by_row,
        error = 'replaced by row ' || replaced.by_row
                || ', a later row of the same sku: the last one wins (even when it is rejected)'
    FROM replaced
    WHERE r.id = replaced.id
    RETURNING r.import_batch_id
)
SELECT import_batch_id, count(*) AS duplicates FROM marked GROUP BY import_batch_id;

-- name: pending_rows_group
-- params: batch_ids uuid[]
-- The group's rows in the order they came: batch by batch (seq), row by row.
SELECT r.id, r.import_batch_id, b.source, r.payload
FROM imported_product_raw r JOIN import_batch b ON b.id = r.import_batch_id
WHERE r.import_batch_id = ANY (:batch_ids::uuid[]) AND r.status = 'pending'
ORDER BY b.seq, r.row_number;

-- name: save_group_results
-- params: ids bigint[], statuses text[], errors text[], matched_by text[], products uuid[], batch_ids uuid[],
--    mapped int[], stale int[], duplicate int[], rejected int[], unchanged int[]
-- save_results (batches.sql) for a group: the rows' outcomes, and every batch's counters, completed, its lease
-- let go, in one statement.
WITH saved AS (
    UPDATE imported_product_raw r
    SET status = v.status, error = v.error, matched_by = v.matched_by, matched_product_id = v.product
    FROM unnest(:ids::bigint[], :statuses::text[], :errors::text[], :matched_by::text[], :products::uuid[])
         AS v(id, status, error, matched_by, product)
    WHERE r.id = v.id AND r.status = 'pending'
    RETURNING 1
)
UPDATE import_batch b
SET mapped_rows = b.mapped_rows + c.mapped, stale_rows = b.stale_rows + c.stale,
    duplicate_rows = b.duplicate_rows + c.duplicate, error_rows = b.error_rows + c.rejected,
    unchanged_rows = b.unchanged_rows + c.unchanged,
    processed_rows = b.processed_rows + c.mapped + c.stale + c.duplicate + c.rejected,
    status = 'completed', finished_at = now(), locked_by = NULL, locked_until = NULL
FROM unnest(:batch_ids::uuid[], :mapped::int[], :stale::int[], :duplicate::int[], :rejected::int[],
            :unchanged::int[])
     AS c(id, mapped, stale, duplicate, rejected, unchanged)
WHERE b.id = c.id AND (SELECT count(*) FROM saved) >= 0
RETURNING b.id;
