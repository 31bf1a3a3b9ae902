-- The raw-first pipeline's batches: stored whole in one transaction, then mapped by workers under a lease.

-- name: name_batch_file
-- params: batch_id uuid, file_name text
-- An upload's file name, known once its multipart body has arrived (the batch is opened before, to be aborted if
-- the upload breaks off).
UPDATE import_batch SET file_name = left(:file_name::text, 255) WHERE id = :batch_id::uuid;

-- name: insert_batch
-- params: store_id uuid, source text, kind text, status text, connection_id uuid|null, delivery_id text|null,
--    file_name text|null, locked_by text|null (an inline mapper holds its own batch from the start), lease_s float8,
--    upload_lease_s float8|null (an upload's heartbeat lease, set in the same statement: see beat_upload)
INSERT INTO import_batch (store_id, source, kind, status, connection_id, delivery_id, file_name, locked_by,
                          locked_until, started_at)
VALUES (:store_id, :source, :kind, :status, :connection_id, :delivery_id, :file_name, :locked_by,
        CASE WHEN :locked_by::text IS NOT NULL THEN now() + make_interval(secs => :lease_s)
             WHEN :upload_lease_s::float8 IS NOT NULL THEN now() + make_interval(secs => :upload_lease_s) END,
        CASE WHEN :locked_by::text IS NOT NULL THEN now() END)
RETURNING id;

-- name: insert_delivery
-- params: connection_id uuid, delivery_id text
-- A delivery id is stored once: a replay finds it and changes nothing.
INSERT INTO ingest_delivery (connection_id, delivery_id) VALUES (:connection_id, :delivery_id)
ON CONFLICT (connection_id, delivery_id) DO NOTHING
RETURNING id;

-- name: delivery_batch
-- params: connection_id uuid, delivery_id text
SELECT import_batch_id FROM ingest_delivery WHERE connection_id = :connection_id AND delivery_id = :delivery_id;

-- name: link_delivery
-- params: delivery_row bigint, batch_id uuid
UPDATE ingest_delivery SET import_batch_id = :batch_id WHERE id = :delivery_row;

-- name: record_small
-- params: batch_id uuid (chosen by the caller), store_id uuid, source text, kind text, connection_id uuid|null,
--    delivery_id text|null, numbers int[], payloads jsonb[], raws jsonb[], statuses text[], errors text[],
--    total_rows int, rejected_rows int
-- A small batch (a webhook delivery, a listing write) stored whole in ONE statement: the delivery id (a replay
-- inserts nothing at all: stored = 0), the batch, its rows, and the workers' wake-up. Its foreign-key checks run at
-- the statement's end, in its own (autocommit) transaction: planned once there too (see fence).
WITH delivery AS (
    INSERT INTO ingest_delivery (connection_id, delivery_id, import_batch_id)
    SELECT :connection_id, :delivery_id, :batch_id
    WHERE :delivery_id::text IS NOT NULL AND :connection_id::uuid IS NOT NULL
    ON CONFLICT (connection_id, delivery_id) DO NOTHING
    RETURNING id
), batch AS (
    INSERT INTO import_batch (id, store_id, source, kind, status, connection_id, delivery_id, total_rows,
                              processed_rows, error_rows, finished_at)
    SELECT :batch_id, :store_id, :source, :kind,
           CASE WHEN :total_rows::int = :rejected_rows::int THEN 'completed' ELSE 'pending' END,
           :connection_id, :delivery_id, :total_rows::int, :rejected_rows::int, :rejected_rows::int,
           CASE WHEN :total_rows::int = :rejected_rows::int THEN now() END
    WHERE :delivery_id::text IS NULL OR :connection_id::uuid IS NULL OR EXISTS (SELECT 1 FROM delivery)
    RETURNING id
), rows AS (
    INSERT INTO imported_product_raw (import_batch_id, row_number, payload, raw, status, error)
    SELECT b.id, r.n, r.payload, r.raw, r.status, r.error
    FROM batch b,
         unnest(:numbers::int[], :payloads::jsonb[], :raws::jsonb[], :statuses::text[], :errors::text[])
         AS r(n, payload, raw, status, error)
    RETURNING 1
)
SELECT (SELECT count(*) FROM batch) AS stored, (SELECT count(*) FROM rows) AS row_count,
       (SELECT pg_notify('ingest_batch', '') FROM batch) AS notified,
       set_config('plan_cache_mode', 'auto', true) AS key_checks_planned_once;

-- name: insert_rows
-- params: batch_id uuid, numbers int[], payloads jsonb[], raws jsonb[], statuses text[], errors text[]
-- Small batches (webhooks, listing writes); large ones are COPYed (copy_rows).
INSERT INTO imported_product_raw (import_batch_id, row_number, payload, raw, status, error)
SELECT :batch_id, r.n, r.payload, r.raw, r.status, r.error
FROM unnest(:numbers::int[], :payloads::jsonb[], :raws::jsonb[], :statuses::text[], :errors::text[])
     AS r(n, payload, raw, status, error);

-- name: copy_rows
-- params: none
COPY imported_product_raw (import_batch_id, row_number, payload, raw, status, error) FROM STDIN;

-- name: finish_receiving
-- params: batch_id uuid, total_rows int, rejected_rows int
-- The batch is whole: counts set, and it waits for a worker (or completes at once when nothing is left to map).
UPDATE import_batch
SET total_rows = :total_rows::int, processed_rows = :rejected_rows::int, error_rows = :rejected_rows::int,
    status = CASE WHEN status = 'processing' THEN status
                  WHEN :total_rows::int = :rejected_rows::int THEN 'completed' ELSE 'pending' END,
    finished_at = CASE WHEN status <> 'processing' AND :total_rows::int = :rejected_rows::int THEN now() END,
    locked_until = CASE WHEN status = 'receiving' THEN NULL ELSE locked_until END  -- its upload's heartbeat ends
WHERE id = :batch_id AND status IN ('receiving', 'pending', 'processing')
RETURNING status;

-- name: notify
-- params: none
SELECT pg_notify('ingest_batch', '');

-- name: abort_batch
-- params: batch_id uuid, reason text
-- An upload that never arrived whole: nothing of it is applied.
UPDATE import_batch SET status = 'aborted', error = :reason, finished_at = now()
WHERE id = :batch_id AND status = 'receiving';

-- name: discard_batch
-- params: batch_id uuid
-- An upload refused once its multipart body told its charset, none of it read: refused as the body's own charset
-- is, before any batch (an `aborted` one was left behind).
DELETE FROM import_batch WHERE id = :batch_id AND status = 'receiving';

-- name: abort_stale_uploads
-- params: older_than_s float8
-- Uploads left `receiving` by an API process (or an `import csv`) that stopped while receiving them (a client that
-- hangs up is aborted by the API itself): aborted once older than any upload takes, or once the API's heartbeat on it lapsed (it
-- holds the store's later batches back: beat_upload), nothing of them applied. ix_import_batch_receiving.
UPDATE import_batch
SET status = 'aborted', finished_at = now(),
    error = 'the upload never arrived whole ('
            || CASE WHEN locked_by LIKE 'cli-import:%' THEN 'the import csv command storing it stopped'
                    ELSE 'the server receiving it stopped' END
            || '); send it again'
WHERE status = 'receiving'
  AND (created_at < now() - make_interval(secs => :older_than_s) OR locked_until < now())
RETURNING id;

-- name: beat_upload
-- params: batch_id uuid, lease_s float8
-- An upload's heartbeat while its bytes arrive: a `receiving` batch with a live one holds its store's later batches
-- back (a store's batches are mapped in order, an upload's place is where it began); one whose beat lapsed (its API
-- process died) holds nothing and is aborted (abort_stale_uploads).
UPDATE import_batch SET locked_until = now() + make_interval(secs => :lease_s)
WHERE id = :batch_id AND status = 'receiving';

-- name: store_of
-- params: store_id uuid
SELECT id, currency FROM store WHERE id = :store_id;

-- name: claim_batch
-- params: worker_id text, lease_s float8, max_rows bigint
-- The oldest waiting batch that heads its store's queue (a store's batches are mapped in order: only its oldest
-- pending or processing batch may be taken, and none behind an upload still arriving: a CSV has no clock, so a
-- till's level written meanwhile was set back by the file), skipping batches other workers hold; a lapsed lease
-- (a killed worker) is taken over. The heads come from a skip scan of ix_import_batch_claim, one probe per store: asking
-- each waiting batch whether an older one exists cost O(waiting²) (43 ms a claim with 1,000 webhook
-- deliveries waiting, while the intake kept adding more). max_rows (NULL: any): only a head of at most that many rows,
-- for the import job's claim loop kept free of big batches (worker.py: LoopShare).
WITH RECURSIVE heads AS (
    (SELECT id, store_id, seq FROM import_batch
     WHERE status IN ('pending', 'processing') ORDER BY store_id, seq LIMIT 1)
    UNION ALL
    SELECT next.id, next.store_id, next.seq
    FROM heads h CROSS JOIN LATERAL (
        SELECT id, store_id, seq FROM import_batch
        WHERE status IN ('pending', 'processing') AND store_id > h.store_id
        ORDER BY store_id, seq LIMIT 1
    ) next
), candidate AS (
    SELECT b.id
    FROM import_batch b
    WHERE b.id = ANY (ARRAY(SELECT id FROM heads)) AND b.status IN ('pending', 'processing') AND (b.locked_until IS NULL OR b.locked_until < now())
      AND NOT EXISTS (SELECT 1 FROM import_batch r  -- an earlier upload still arriving (ix_import_batch_receiving)
                      WHERE r.status = 'receiving' AND r.locked_until > now() AND r.store_id = b.store_id
                        AND r.seq < b.seq)
      AND (:max_rows::bigint IS NULL OR b.total_rows <= :max_rows::bigint)
    ORDER BY b.seq
    LIMIT 1
    FOR UPDATE OF b SKIP LOCKED
)
UPDATE import_batch b
SET status = 'processing', locked_by = :worker_id, locked_until = now() + make_interval(secs => :lease_s),
    started_at = coalesce(b.started_at, now()), attempts = b.attempts + 1
FROM candidate
WHERE b.id = candidate.id
RETURNING b.id, b.store_id, b.total_rows, b.seq;

-- name: earlier_work
-- params: store_id uuid
-- Whether a listing write must queue behind the store's batches (a store's batches are mapped in order): one
-- arriving, waiting or being mapped. (A listing write mapping inline is never seen so: it is recorded and mapped
-- in one transaction, and such writes take the store's lock in turn, as they arrive.)
-- Two probes, one partial index each (a till's store holds a batch per write: an OR scanned them all).
SELECT EXISTS (SELECT 1 FROM import_batch  -- ix_import_batch_claim
               WHERE store_id = :store_id AND status IN ('pending', 'processing'))
    OR EXISTS (SELECT 1 FROM import_batch  -- ix_import_batch_receiving
               WHERE status = 'receiving' AND locked_until > now() AND store_id = :store_id) AS queued;

-- name: synchronous_commit
-- params: none
-- Back on for the rest of the transaction (a chunk's fence turns it off: its rows could be mapped again).
SELECT set_config('synchronous_commit', 'on', true);

-- name: store_wait
-- params: wait text (e.g. '5s')
-- Before a listing write takes the store's lock (store_lock): the wait is bounded by lock_timeout alone, not by the
-- statement timeout, which is sized for a search and counted the wait too (the last of 4 clients' full batches
-- waited past 2 s for the others: 503). Returns the timeouts in force, for store_lock to put back.
SELECT before.work_timeout, before.work_lock_timeout, set_config('statement_timeout', '0', true) AS wait_unbounded,
       set_config('lock_timeout', :wait, true) AS wait_bound
FROM (SELECT current_setting('statement_timeout') AS work_timeout,
             current_setting('lock_timeout') AS work_lock_timeout OFFSET 0) AS before;

-- name: store_lock
-- params: store_id uuid, work_timeout text, work_lock_timeout text
-- The store's lock (the chunk's fence takes it again at no cost), then the write's work bounded as before: both
-- timeouts back (evaluated in order, after the lock is held).
SELECT pg_advisory_xact_lock(hashtextextended(:store_id::uuid::text, 20261203)) AS locked,
       set_config('lock_timeout', :work_lock_timeout, true) AS wait_over,
       set_config('statement_timeout', :work_timeout, true) AS work_bound;

-- name: drain_state
-- params: worker_ids text[]
-- What a drain still has to map: the batches due, and those a worker or `import csv` holds (a killed one's lease
-- lapses, then the drain takes the batch over; skipped, the drain ended with them unfinished); a crashed batch's
-- pause (no holder) is not waited out. With them the lease that lapses first of a holder outside this job (worker_ids:
-- its claim loops), for the drain's log.
SELECT c.unfinished, h.id, h.locked_by, h.locked_until
FROM (
    SELECT count(*) AS unfinished FROM import_batch
    WHERE status IN ('pending', 'processing')
      AND (locked_until IS NULL OR locked_until < now() OR locked_by IS NOT NULL)
) c
LEFT JOIN LATERAL (
    SELECT id, locked_by, locked_until FROM import_batch
    WHERE status IN ('pending', 'processing') AND locked_by <> ALL (:worker_ids::text[]) AND locked_until >= now()
    ORDER BY locked_until LIMIT 1
) h ON true;

-- name: fence
-- params: batch_id uuid, worker_id text, lease_s float8
-- Starts each chunk's transaction in one round trip: the batch is still ours (the row lock keeps it so until
-- commit) and its lease is extended; the store's lock is taken (one mapper per store: newest-wins decisions stay
-- valid); the commit will not wait for the WAL flush (lost in a server crash, the rows are pending again and are
-- mapped again to the same state). No row: another worker took the batch over; the chunk rolls back.
-- `plan_cache_mode` back to `auto` for the transaction: the API's connections force custom plans (engine/session.py),
-- and a foreign key's check is a cached query that is then planned again for every row it checks (a 100k-row COPY
-- of raw rows cost 2.0 instead of 1.0 s of the backend's CPU; mapping inserts check four keys a row).
-- `plinqy.embed_priority`: the priority the product triggers queue the chunk's embedding tasks at (migration 0051:
-- a listing write or a small delivery before a CSV's or a sync's backlog).
WITH ours AS (
    UPDATE import_batch SET locked_until = now() + make_interval(secs => :lease_s)
    WHERE id = :batch_id AND locked_by = :worker_id AND status = 'processing'
    RETURNING store_id, total_rows, kind, source
)
SELECT ours.store_id, ours.total_rows, ours.source, s.currency, s.is_active AS store_active,
       pg_advisory_xact_lock(hashtextextended(ours.store_id::text, 20261203)) AS locked,
       set_config('synchronous_commit', 'off', true) AS async_commit,
       set_config('plan_cache_mode', 'auto', true) AS key_checks_planned_once,
       set_config('plinqy.embed_priority', ai_task_batch_priority(ours.kind, ours.total_rows)::text, true)
           AS embed_priority
FROM ours JOIN store s ON s.id = ours.store_id;

-- name: mark_duplicates
-- params: batch_id uuid
-- Duplicate SKUs within a file or a vendor's page (kinds csv, sync): the last row wins; an earlier row that a later
-- one replaces (a later upsert or delete, or the same op) ends `duplicate`. A stock row after an upsert is not a
-- duplicate: both apply, in order. The items of a listing batch or a delivery are writes each answered alone:
-- they apply in order, as if sent one by one (marked, an earlier item was dropped for a later one that was then
-- rejected or stale). SKUs compare as mapped, past surrounding spaces. Window maxima over one sort, not a join.
WITH rows AS (
    SELECT id, row_number, status, btrim(payload->>'sku') AS sku, coalesce(payload->>'op', 'upsert') AS op
    FROM imported_product_raw
    WHERE import_batch_id = :batch_id AND status <> 'rejected'
      AND (SELECT kind FROM import_batch WHERE id = :batch_id) IN ('csv', 'sync')
      AND nullif(btrim(payload->>'sku'), '') IS NOT NULL  -- no SKU: rejected as such, not a duplicate
), ranked AS (
    SELECT id, status, row_number,
           max(row_number) FILTER (WHERE op IN ('upsert', 'delete')) OVER (PARTITION BY sku) AS last_replacing,
           max(row_number) OVER (PARTITION BY sku, op) AS last_same_op
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
    RETURNING r.id
)
SELECT count(*) FROM marked;

-- name: pending_rows
-- params: batch_id uuid, limit int
SELECT id, row_number, payload FROM imported_product_raw
WHERE import_batch_id = :batch_id AND status = 'pending'
ORDER BY row_number
LIMIT :limit;

-- name: set_row_results
-- params: ids bigint[], statuses text[], errors text[], matched_by text[], products uuid[]
UPDATE imported_product_raw r
SET status = v.status, error = v.error, matched_by = v.matched_by, matched_product_id = v.product
FROM unnest(:ids::bigint[], :statuses::text[], :errors::text[], :matched_by::text[], :products::uuid[])
     AS v(id, status, error, matched_by, product)
WHERE r.id = v.id AND r.status = 'pending';

-- name: save_results
-- params: batch_id uuid, worker_id text, lease_s float8, ids bigint[], statuses text[], errors text[],
--    matched_by text[], products uuid[], mapped int, stale int, duplicate int, rejected int,
--    unchanged int (of mapped: wrote nothing), last bool (true: no pending row is left after these)
-- A chunk's row outcomes and the batch's counters in one statement (they move together, so totals always add up),
-- only while the batch is still ours (no row returned: the caller rolls the chunk back; a lane holds no row lock
-- on the batch until here, lanes.sql); the lease is extended, or, by the last chunk, let go with the batch
-- completed.
WITH saved AS (
    UPDATE imported_product_raw r
    SET status = v.status, error = v.error, matched_by = v.matched_by, matched_product_id = v.product
    FROM unnest(:ids::bigint[], :statuses::text[], :errors::text[], :matched_by::text[], :products::uuid[])
         AS v(id, status, error, matched_by, product)
    WHERE r.id = v.id AND r.status = 'pending'
    RETURNING 1
)
UPDATE import_batch
SET mapped_rows = mapped_rows + :mapped, stale_rows = stale_rows + :stale,
    duplicate_rows = duplicate_rows + :duplicate, error_rows = error_rows + :rejected,
    unchanged_rows = unchanged_rows + :unchanged,
    processed_rows = processed_rows + :mapped + :stale + :duplicate + :rejected,
    status = CASE WHEN :last THEN 'completed' ELSE status END,
    finished_at = CASE WHEN :last THEN now() ELSE finished_at END,
    locked_by = CASE WHEN :last THEN NULL ELSE locked_by END,
    locked_until = CASE WHEN :last THEN NULL ELSE now() + make_interval(secs => :lease_s) END
WHERE id = :batch_id AND locked_by = :worker_id AND status = 'processing' AND (SELECT count(*) FROM saved) >= 0
RETURNING status;

-- name: complete_batch
-- params: batch_id uuid, worker_id text
-- Every row has ended: done, and the lease let go.
UPDATE import_batch b
SET status = 'completed', finished_at = now(), locked_by = NULL, locked_until = NULL
WHERE b.id = :batch_id AND b.locked_by = :worker_id AND b.status = 'processing'
  AND NOT EXISTS (SELECT 1 FROM imported_product_raw r WHERE r.import_batch_id = b.id AND r.status = 'pending')
RETURNING b.id;

-- name: release_batch
-- params: batch_id uuid, worker_id text
-- Graceful stop: the batch goes back to the queue at once, pending (no lease: "processing" told the API and
-- `imports list` a worker mapped it, …/errors "retry in 2 s" for as long as none ran), its finished chunks kept
-- (processed_rows; the next claim maps its pending rows). Nothing of it mapped (a failed group's batches behind the
-- one that failed: worker.py _one_by_one), it is never started either: no started_at.
UPDATE import_batch
SET locked_by = NULL, locked_until = NULL, status = 'pending',
    started_at = CASE WHEN processed_rows = 0 THEN NULL ELSE started_at END
WHERE id = :batch_id AND locked_by = :worker_id AND status = 'processing';

-- name: release_worker_batches
-- params: worker_id text
-- `import csv` interrupted, or a worker's lost connection: every batch it holds (its own, and a store's earlier one
-- it was mapping first) goes back to the queue at once, pending as release_batch leaves it, its finished chunks kept.
UPDATE import_batch SET locked_by = NULL, locked_until = NULL, status = 'pending'
WHERE locked_by = :worker_id AND status = 'processing';

-- name: batch_crashed
-- params: batch_id uuid, worker_id text, error text, max_attempts int, pause_s float8
-- Mapping this batch raised (a bug, or a row the database refuses): its error is kept and it is tried again after a
-- pause growing with its failures; at max_attempts failures it is failed (its rows stay stored, `import.failed`
-- tells the store), so one poisoned batch neither crashes the job at every claim nor holds its store's later
-- batches for ever. Failures, not claims: a takeover after a killed worker is no failure (migration 0028).
UPDATE import_batch
SET mapping_failures = mapping_failures + 1,
    status = CASE WHEN mapping_failures + 1 >= :max_attempts::int THEN 'failed' ELSE status END,
    error = left(CASE WHEN mapping_failures + 1 >= :max_attempts::int
                      THEN 'mapping failed ' || (mapping_failures + 1) || ' times, now given up: '
                      ELSE 'mapping failed: ' END
                 || :error::text, 2000),
    finished_at = CASE WHEN mapping_failures + 1 >= :max_attempts::int THEN now() ELSE finished_at END,
    locked_by = NULL,
    locked_until = CASE WHEN mapping_failures + 1 >= :max_attempts::int THEN NULL
                        ELSE now() + make_interval(secs => :pause_s::float8 * (mapping_failures + 1)) END
WHERE id = :batch_id::uuid AND locked_by = :worker_id::text
RETURNING status;

-- name: batch_status
-- params: batch_id uuid
-- retry_in_s: while the pause after a failed mapping runs (batch_crashed: no holder, `locked_until` then), the
-- seconds until it is tried again (NULL otherwise); by the database's clock, as the claims read it.
-- held_*: the store's first unfinished batch before this one (ix_import_batch_claim), while it waits out such a
-- pause: nobody maps this one meanwhile (a store's batches are mapped in order); it read "processing", retry in 2 s.
SELECT b.id, b.store_id, b.source, b.kind, b.status, b.total_rows, b.processed_rows, b.mapped_rows, b.stale_rows,
       b.duplicate_rows, b.error_rows, b.unchanged_rows, b.total_rows - b.processed_rows AS unprocessed_rows, b.error,
       b.file_name, b.created_at, b.started_at, b.finished_at, b.rows_pruned_at, b.locked_by, b.locked_until,
       b.mapping_failures,
       CASE WHEN b.status = 'processing' AND b.locked_by IS NULL AND b.locked_until > now()
            THEN ceil(extract(epoch FROM b.locked_until - now()))::int END AS retry_in_s,
       h.id AS held_by, h.error AS held_error, h.mapping_failures AS held_failures, h.locked_until AS held_until,
       ceil(extract(epoch FROM h.locked_until - now()))::int AS held_retry_in_s
FROM import_batch b
LEFT JOIN LATERAL (
    SELECT e.id, e.status, e.error, e.mapping_failures, e.locked_by, e.locked_until FROM import_batch e
    WHERE e.store_id = b.store_id AND e.seq < b.seq AND e.status IN ('pending', 'processing')
    ORDER BY e.seq LIMIT 1
) h ON b.status IN ('pending', 'processing') AND h.status = 'processing' AND h.locked_by IS NULL
   AND h.locked_until > now()
WHERE b.id = :batch_id;

-- name: store_batches
-- params: store_id uuid, before bigint, source text, limit int
-- A store's batches, newest first, a page at a time: those below `before` (the last seq of the page before; NULL:
-- from the newest), of one source or all (NULL), on ix_import_batch_store_seq. With a source, the index is read
-- newest first until the page fills: a rare source among a till's many writes reads further.
SELECT id, store_id, source, kind, status, total_rows, processed_rows, mapped_rows, stale_rows, duplicate_rows,
       error_rows, unchanged_rows, total_rows - processed_rows AS unprocessed_rows, error, file_name, created_at,
       started_at, finished_at, rows_pruned_at, seq
FROM import_batch
WHERE store_id = :store_id AND seq < coalesce(:before::bigint, 9223372036854775807)
  AND (:source::text IS NULL OR source = :source::text)
ORDER BY seq DESC
LIMIT :limit::int;

-- name: recent_batches
-- params: store_id uuid|null, statuses text[]|null, limit int
-- `imports list`: batches newest first, of one store (ix_import_batch_store_seq) or of all (a scan: an operator's
-- command), of some statuses or all, with the lease of those being mapped.
SELECT id, store_id, source, kind, status, total_rows, mapped_rows, stale_rows, duplicate_rows, error_rows, error,
       file_name, created_at, finished_at, locked_by, locked_until, mapping_failures, rows_pruned_at, unchanged_rows,
       total_rows - processed_rows AS unprocessed_rows
FROM import_batch
WHERE (:store_id::uuid IS NULL OR store_id = :store_id::uuid)
  AND (:statuses::text[] IS NULL OR status = ANY(:statuses::text[]))
ORDER BY seq DESC
LIMIT :limit::int;

-- name: batch_rows
-- params: batch_id uuid
SELECT row_number, status, error, matched_by, matched_product_id, payload->>'sku' AS sku
FROM imported_product_raw WHERE import_batch_id = :batch_id ORDER BY row_number;

-- name: batch_errors
-- params: batch_id uuid, after int, limit int
-- A page of a batch's rows not applied, those past row `after` (0: from the first): those rejected, the stale
-- (nothing to do: older than the listing, a retired SKU's row sent again; no output named them: migration 0049), and
-- the duplicates (replaced by a later row of their SKU, mark_duplicates), a duplicate saying when the row that replaced
-- it (replaced_by_row) was rejected: a good row lost to a bad one left the SKU as it was, which the user learnt from
-- no output. A page at a time on ix_imported_product_raw_not_applied: half a million rows in one statement ran past
-- the API's statement timeout (503 for ever).
SELECT r.row_number, r.status,
       r.error || CASE WHEN w.status = 'rejected'
                       THEN '; row ' || w.row_number || ', which replaced it, was rejected: this sku is left as it was'
                       ELSE '' END AS error,
       r.raw, r.payload
FROM imported_product_raw r
LEFT JOIN imported_product_raw w
       ON r.status = 'duplicate' AND w.import_batch_id = r.import_batch_id
      AND w.row_number = r.replaced_by_row
WHERE r.import_batch_id = :batch_id AND r.status IN ('rejected', 'duplicate', 'stale') AND r.row_number > :after::int
ORDER BY r.row_number
LIMIT :limit::int;

-- name: batch_first_errors
-- params: batch_id uuid, status text ('rejected', 'duplicate' or 'stale'), limit int
-- The first rows of one kind that batch_errors lists (`import csv`'s summary names 20 of each): the status is
-- checked in ix_imported_product_raw_not_applied, so the rows of the other kind cost no heap read.
SELECT r.row_number, r.status,
       r.error || CASE WHEN w.status = 'rejected'
                       THEN '; row ' || w.row_number || ', which replaced it, was rejected: this sku is left as it was'
                       ELSE '' END AS error
FROM imported_product_raw r
LEFT JOIN imported_product_raw w
       ON r.status = 'duplicate' AND w.import_batch_id = r.import_batch_id
      AND w.row_number = r.replaced_by_row
WHERE r.import_batch_id = :batch_id AND r.status IN ('rejected', 'duplicate', 'stale') AND r.status = :status::text
ORDER BY r.row_number
LIMIT :limit::int;

-- name: batch_notes
-- params: batch_id uuid, after int, limit int
-- A page of a batch's mapped rows that carry notes (what was ignored or rounded: a GTIN, a category, a price's
-- cents), those past row `after`, on ix_imported_product_raw_noted.
SELECT row_number, error, raw, payload FROM imported_product_raw
WHERE import_batch_id = :batch_id AND status = 'mapped' AND error IS NOT NULL AND row_number > :after::int
ORDER BY row_number
LIMIT :limit::int;

-- name: batch_noted_rows
-- params: batch_id uuid
-- How many of a batch's mapped rows carry notes, on ix_imported_product_raw_noted, which holds such rows alone:
-- counted by scanning the batch's rows, a 1M-row batch's status took 1-4 s (503 past the API's statement timeout).
SELECT count(*) AS noted_rows FROM imported_product_raw
WHERE import_batch_id = :batch_id AND status = 'mapped' AND error IS NOT NULL;

-- name: prune_cutoffs
-- params: older_than_s float8, delivery_keep_s float8
-- Retention (`imports prune`): batches finished before `batches` go; delivery records received before `deliveries`
-- (never within delivery_keep_s: a replay is caught while a sender may still retry or the signature is fresh).
SELECT now() - make_interval(secs => :older_than_s) AS batches,
       least(now() - make_interval(secs => :older_than_s), now() - make_interval(secs => :delivery_keep_s))
           AS deliveries;

-- name: prunable_counts
-- params: batch_cutoff timestamptz, delivery_cutoff timestamptz
-- What `imports prune --dry-run` would delete: finished batches (ix_import_batch_finished_at), their raw rows, and
-- the delivery records (ix_ingest_delivery_received_at).
WITH doomed AS (
    SELECT id FROM import_batch
    WHERE status IN ('completed', 'aborted', 'failed') AND finished_at < :batch_cutoff::timestamptz
)
SELECT (SELECT count(*) FROM doomed) AS batches,
       (SELECT count(*) FROM imported_product_raw r JOIN doomed d ON r.import_batch_id = d.id) AS raw_rows,
       (SELECT count(*) FROM ingest_delivery WHERE received_at < :delivery_cutoff::timestamptz) AS deliveries;

-- name: prune_deliveries
-- params: cutoff timestamptz, window int
-- One short transaction's delivery records, oldest first; the count deleted (below `window`: none left).
WITH doomed AS (
    SELECT id FROM ingest_delivery WHERE received_at < :cutoff::timestamptz
    ORDER BY received_at LIMIT :window::int
    FOR UPDATE SKIP LOCKED
), gone AS (DELETE FROM ingest_delivery d USING doomed WHERE d.id = doomed.id RETURNING 1)
SELECT count(*) FROM gone;

-- name: prune_batches
-- params: cutoff timestamptz, after timestamptz, window int, max_rows int
-- One short transaction's finished batches, in finish order from `after` (the last chunk's end: the index is not
-- read again past the dead entries), at most `window` of them and about `max_rows` raw rows (at least one batch).
-- Their raw rows go by ON DELETE CASCADE, counted first. Only finished batches: a store's later batches wait on
-- its pending, processing and receiving ones alone (claim_this_batch), so none of these is waited on.
WITH doomed AS (
    SELECT id, total_rows, finished_at FROM import_batch
    WHERE status IN ('completed', 'aborted', 'failed') AND finished_at < :cutoff::timestamptz
      AND finished_at >= :after::timestamptz
    ORDER BY finished_at LIMIT :window::int
    FOR UPDATE SKIP LOCKED
), bounded AS (
    SELECT id, finished_at FROM (
        SELECT id, finished_at, sum(total_rows) OVER (ORDER BY finished_at, id) - total_rows AS rows_before
        FROM doomed
    ) d
    WHERE rows_before < :max_rows::int
), raw AS (
    SELECT count(*) AS n FROM imported_product_raw WHERE import_batch_id IN (SELECT id FROM bounded)
), gone AS (DELETE FROM import_batch b USING bounded WHERE b.id = bounded.id RETURNING 1)
SELECT (SELECT count(*) FROM gone) AS batches, (SELECT n FROM raw) AS raw_rows,
       (SELECT max(finished_at) FROM bounded) AS last_finished;

-- name: prune_rows
-- params: batch_ids uuid[]
-- Raw rows alone, the batches kept (what `imports prune` did before migration 0036; the API's 410 for such batches
-- is tested with it).
WITH gone AS (DELETE FROM imported_product_raw WHERE import_batch_id = ANY(:batch_ids::uuid[]) RETURNING 1),
marked AS (UPDATE import_batch SET rows_pruned_at = now() WHERE id = ANY(:batch_ids::uuid[]) RETURNING 1)
SELECT count(*) FROM gone;

-- name: claim_this_batch
-- params: batch_id uuid, worker_id text, lease_s float8
-- `import csv` maps its own batch when no worker holds it and none of its store's earlier batches is unfinished.
UPDATE import_batch b
SET status = 'processing', locked_by = :worker_id, locked_until = now() + make_interval(secs => :lease_s),
    started_at = coalesce(b.started_at, now()), attempts = b.attempts + 1
WHERE b.id = :batch_id AND b.status IN ('pending', 'processing')
  AND (b.locked_until IS NULL OR b.locked_until < now())
  AND NOT EXISTS (SELECT 1 FROM import_batch e
                  WHERE e.store_id = b.store_id AND e.seq < b.seq
                    AND (e.status IN ('pending', 'processing') OR e.status = 'receiving' AND e.locked_until > now()))
RETURNING b.id;

-- name: earlier_head
-- params: batch_id uuid
-- The first of the store's batches before this one still waiting or being mapped (what `import csv` waits for,
-- or maps itself when no worker holds it); `held`: a worker's lease on it is live, or the pause after a failed
-- mapping (no holder, `locked_until` then: batch_crashed) runs.
SELECT e.id, e.source, e.status, e.total_rows, e.locked_by, e.locked_until, e.mapping_failures, e.error,
       e.status = 'receiving' OR coalesce(e.locked_until > now(), false) AS held
FROM import_batch b
JOIN import_batch e ON e.store_id = b.store_id AND e.seq < b.seq
 AND (e.status IN ('pending', 'processing') OR e.status = 'receiving' AND e.locked_until > now())
WHERE b.id = :batch_id
ORDER BY e.seq
LIMIT 1;

-- name: bulk_write_settings
-- params: timeout text (e.g. '300s')
-- Inside a transaction: a big upload's COPY may take longer than the API's search-sized statement timeout, and its
-- foreign-key checks plan once (see fence).
SELECT set_config('statement_timeout', :timeout, true), set_config('plan_cache_mode', 'auto', true);

-- name: analyze_targets
-- params: none
-- A big import grows these tables many times over within minutes, long before autovacuum's ANALYZE: stale
-- statistics make the triggers' anti-joins (search_term) and the lookups nested loops over whole tables (measured:
-- a 100k-row import slowed chunk after chunk). Refreshed after the first chunk and every few chunks. Whole tables:
-- an ANALYZE of the joined columns only costs ~0.3 instead of ~0.7 s of CPU per 100k rows, but it does not reset
-- the tables' change counters, so autovacuum analyzes them whole soon after anyway (seen; the benchmark's CPU per
-- row showed no saving).
ANALYZE product_master, store_product, search_term, ai_task;
