-- The ai_task queue (named `:name` parameters, run through psycopg). A task is `pending` → `running` (leased by one worker) →
-- `done` | back to `pending` with backoff | `failed` (dead letter after max_attempts).
-- "One pending task per product" is a partial unique index: every path that returns a task to `pending` first
-- asks ai_task_other_pending() (a SQL function of the migration) and, if so, finishes as 'superseded' instead.

-- name: claim_batch
-- params: worker_id text, batch_size int, lease_seconds float8
-- worker_id is the claim's holder: the worker's id and the claim's number (embeddings/worker.py), so every fence
-- below (locked_by = :worker_id) tells this claim from the same worker's earlier or later one.
-- Due pending tasks, best priority then oldest first (ix_ai_task_claim), skipping rows other workers hold.
-- force: a `reembed --all --via-queue` task, embedded even when the product's text and model are current.
WITH due AS (
    SELECT id
    FROM ai_task
    WHERE status = 'pending' AND run_after <= now()
    ORDER BY priority DESC, run_after, id
    LIMIT :batch_size
    FOR UPDATE SKIP LOCKED
)
UPDATE ai_task t
SET status = 'running',
    locked_by = :worker_id,
    locked_until = now() + make_interval(secs => :lease_seconds)
FROM due
WHERE t.id = due.id
RETURNING t.id, t.product_master_id, t.attempts, t.max_attempts, t.kind = 'reembed_product' AS force;

-- name: load_products
-- params: ids uuid[]
-- What the text to embed is made of, with the category path root → leaf.
SELECT p.id, p.name, p.brand, p.description, p.attributes, p.ai_model, p.ai_text_hash,
       category_path(p.category_id) AS category_path, p.ai_vector IS NOT NULL AS has_vector
FROM product_master p
WHERE p.id = ANY(:ids::uuid[]);

-- name: lock_products
-- params: ids uuid[]
-- Inside the write transaction: the current text, locked, so a concurrent edit cannot slip between the
-- check and the write.
SELECT p.id, p.name, p.brand, p.description, p.attributes,
       category_path(p.category_id) AS category_path
FROM product_master p
WHERE p.id = ANY(:ids::uuid[])
ORDER BY p.id
FOR UPDATE OF p;

-- name: finish_owned
-- params: task_ids bigint[], results text[], worker_id text
-- The fence: only tasks this claim still holds are finished; the caller writes vectors for those alone.
-- A lease that ran out but was not reaped is still ours: nobody else can hold the task until the reaper
-- returns it to pending, and the reaper skips rows this UPDATE has locked. A task reaped and claimed again
-- (by any worker, this one included) has another holder: the stale claim's write does not pass.
UPDATE ai_task t
SET status = 'done', result = r.result, finished_at = now(), locked_by = NULL, locked_until = NULL
FROM unnest(:task_ids::bigint[], :results::text[]) AS r(id, result)
WHERE t.id = r.id AND t.status = 'running' AND t.locked_by = :worker_id
RETURNING t.id, t.product_master_id;

-- name: write_vectors
-- params: ids uuid[], vectors vector[], hashes text[], model text
UPDATE product_master p
SET ai_vector = v.vec, ai_text_hash = v.hash, ai_model = :model, ai_embedded_at = now()
FROM unnest(:ids::uuid[], :vectors::vector[], :hashes::text[]) AS v(id, vec, hash)
WHERE p.id = v.id;

-- name: close_failed_of
-- params: task_ids bigint[], product_ids uuid[]
-- In the write transaction: a dead letter of a product these tasks have just embedded is moot; it is closed
-- ('superseded', done: `tasks prune` deletes it in time), else `tasks failed` and the stats kept alerting on it.
UPDATE ai_task t
SET status = 'done', result = 'superseded: embedded by task ' || w.task_id
FROM unnest(:task_ids::bigint[], :product_ids::uuid[]) AS w(task_id, product_id)
WHERE t.product_master_id = w.product_id AND t.status = 'failed' AND t.id < w.task_id;

-- name: write_no_vectors
-- params: ids uuid[], hashes text[], model text
-- A text the model reads as [UNK] only gets no vector (docs/engine.md). The hash and model say it was read, so
-- the worker and `reembed` skip it until the text or the model changes; no vector, no stamp (migration 0002).
UPDATE product_master p
SET ai_vector = NULL, ai_text_hash = v.hash, ai_model = :model, ai_embedded_at = NULL
FROM unnest(:ids::uuid[], :hashes::text[]) AS v(id, hash)
WHERE p.id = v.id;

-- name: fail_task
-- params: task_id bigint, worker_id text, error text, delay_s float8
-- attempts + 1; back to pending after the backoff delay, or failed (dead letter) at max_attempts.
UPDATE ai_task t
SET attempts = t.attempts + 1,
    status = CASE
        WHEN t.attempts + 1 >= t.max_attempts THEN 'failed'
        WHEN ai_task_other_pending(t.product_master_id, t.id) THEN 'done'
        ELSE 'pending' END,
    result = CASE
        WHEN t.attempts + 1 >= t.max_attempts THEN 'failed after ' || (t.attempts + 1) || ' attempts'
        WHEN ai_task_other_pending(t.product_master_id, t.id) THEN 'superseded'
        ELSE NULL END,
    finished_at = CASE WHEN t.attempts + 1 >= t.max_attempts THEN now() END,
    last_error = left(:error, 2000),
    run_after = now() + make_interval(secs => :delay_s),
    locked_by = NULL,
    locked_until = NULL
WHERE t.id = :task_id AND t.status = 'running' AND t.locked_by = :worker_id
RETURNING t.status, t.attempts;

-- name: release_owned
-- params: task_ids bigint[], worker_id text
-- Graceful shutdown: give unfinished tasks back untouched (no attempt is spent).
UPDATE ai_task t
SET status = CASE WHEN ai_task_other_pending(t.product_master_id, t.id) THEN 'done' ELSE 'pending' END,
    result = CASE WHEN ai_task_other_pending(t.product_master_id, t.id) THEN 'superseded' END,
    locked_by = NULL, locked_until = NULL
WHERE t.id = ANY(:task_ids::bigint[]) AND t.status = 'running' AND t.locked_by = :worker_id
RETURNING t.id, t.status;

-- name: renew_leases
-- params: holders text[], lease_seconds float8
-- The heartbeat: a worker extends the leases of the claims it has in hand (being embedded or written).
UPDATE ai_task
SET locked_until = now() + make_interval(secs => :lease_seconds)
WHERE status = 'running' AND locked_by = ANY(:holders::text[]);

-- name: reap_expired
-- params: keep text[]
-- Leases that ran out belong to dead or stuck workers (a live one renews them): the attempt counts, the task goes
-- back to the queue (or to failed at max_attempts). `keep`: the reaping worker's own claims in hand, never reaped
-- by it. One expired task per product at a time keeps the pending index satisfied.
WITH locked AS (
    SELECT id, product_master_id
    FROM ai_task
    WHERE status = 'running' AND locked_until < now() AND locked_by <> ALL(:keep::text[])
    FOR UPDATE SKIP LOCKED
), expired AS (
    SELECT DISTINCT ON (coalesce(product_master_id::text, id::text)) id
    FROM locked
    ORDER BY coalesce(product_master_id::text, id::text), id
)
UPDATE ai_task t
SET attempts = t.attempts + 1,
    status = CASE
        WHEN t.attempts + 1 >= t.max_attempts THEN 'failed'
        WHEN ai_task_other_pending(t.product_master_id, t.id) THEN 'done'
        ELSE 'pending' END,
    result = CASE
        WHEN t.attempts + 1 >= t.max_attempts THEN 'failed after ' || (t.attempts + 1) || ' attempts'
        WHEN ai_task_other_pending(t.product_master_id, t.id) THEN 'superseded'
        ELSE NULL END,
    finished_at = CASE WHEN t.attempts + 1 >= t.max_attempts THEN now() END,
    last_error = 'lease expired (held by ' || coalesce(t.locked_by, '?') || ')',
    run_after = now(),
    locked_by = NULL,
    locked_until = NULL
FROM expired
WHERE t.id = expired.id
RETURNING t.id, t.status;

-- name: drain_state
-- params: keep text[]
-- What a drain still has to do: the pending tasks, due or waiting out a failed attempt's backoff (bounded by the
-- schedule; skipped, the drain ended with them unembedded), and those other holders have running (a killed
-- worker's come back through the reaper once their lease lapses). `keep`: its own. With the seconds until the
-- next pending task is due (<= 0: one is due now; NULL: none pending).
SELECT count(*) AS unfinished,
       extract(epoch FROM min(run_after) FILTER (WHERE status = 'pending') - now()) AS next_due_in_s
FROM ai_task
WHERE status = 'pending' OR (status = 'running' AND locked_by <> ALL(:keep::text[]));

-- name: stats
-- params: (none)
-- Counts by status; of the pending tasks, those due and those waiting out a failed attempt's backoff. A pending
-- task's age counts from run_after: when it was queued, requeued (`tasks retry`, the reaper) or its backoff ended,
-- not from its creation (a task retried just now read as old as its first failure).
SELECT s.status, count(t.id) AS n,
       count(t.id) FILTER (WHERE t.status = 'pending' AND t.run_after <= now()) AS due,
       extract(epoch FROM now() - min(t.run_after) FILTER (WHERE t.status = 'pending' AND t.run_after <= now())) AS oldest_due_s,
       extract(epoch FROM min(t.run_after) FILTER (WHERE t.status = 'pending' AND t.run_after > now()) - now()) AS next_due_in_s
FROM unnest(ARRAY['pending', 'running', 'done', 'failed']) AS s(status)
LEFT JOIN ai_task t ON t.status = s.status
GROUP BY s.status
ORDER BY array_position(ARRAY['pending', 'running', 'done', 'failed'], s.status);

-- name: list_failed
-- params: limit int
SELECT id, product_master_id, attempts, max_attempts, last_error, finished_at
FROM ai_task WHERE status = 'failed' ORDER BY id DESC LIMIT :limit;

-- name: task_statuses
-- params: ids bigint[]
-- The status of each of these tasks that exists (what `tasks retry` says of the ids it did not requeue).
SELECT id, status FROM ai_task WHERE id = ANY(:ids::bigint[]);

-- name: retry_failed
-- params: ids bigint[] (NULL: every failed task)
-- Requeue dead letters with fresh attempts; a product that already has a pending task keeps that one.
WITH candidates AS (
    SELECT DISTINCT ON (coalesce(product_master_id::text, id::text)) id
    FROM ai_task t
    WHERE t.status = 'failed' AND (:ids::bigint[] IS NULL OR t.id = ANY(:ids::bigint[]))
      AND NOT EXISTS (SELECT 1 FROM ai_task o WHERE o.product_master_id = t.product_master_id
                      AND o.status = 'pending')
    ORDER BY coalesce(product_master_id::text, id::text), id DESC
)
UPDATE ai_task t
SET status = 'pending', attempts = 0, run_after = now(), finished_at = NULL, result = NULL
FROM candidates
WHERE t.id = candidates.id
RETURNING t.id;

-- name: notify
-- params: (none)
SELECT pg_notify('ai_task', '');

-- name: prune_cutoff
-- params: older_than_s float8
-- Retention: the one cutoff a whole prune works to (fixed at its start), and the table's highest id then, so
-- tasks finishing during the prune are left for the next one.
SELECT now() - make_interval(secs => :older_than_s) AS cutoff, coalesce(max(id), 0) AS upto FROM ai_task;

-- name: prunable_count
-- params: cutoff timestamptz, upto bigint
-- Retention: how many tasks a prune to `cutoff` deletes (--dry-run, and the progress bar's total).
SELECT count(*) FROM ai_task
WHERE id <= :upto AND status = 'done' AND coalesce(finished_at, updated_at) < :cutoff;

-- name: prune_done
-- params: after_id bigint, upto bigint, cutoff timestamptz, window int
-- Retention: delete the done tasks that finished before `cutoff` among the next `window` ids after `after_id`
-- (a keyset walk over the primary key: each short transaction reads on from the last, never rescanning the
-- table). A superseded task is done without finished_at; its last update is when it ended. Pending, running
-- and failed tasks are never deleted: failed ones are the dead letters `tasks failed` lists.
WITH slice AS (
    SELECT id FROM ai_task WHERE id > :after_id AND id <= :upto ORDER BY id LIMIT :window
), gone AS (
    DELETE FROM ai_task t
    USING slice
    WHERE t.id = slice.id AND t.status = 'done' AND coalesce(t.finished_at, t.updated_at) < :cutoff
    RETURNING t.id
)
SELECT (SELECT max(id) FROM slice) AS last_id, (SELECT count(*) FROM gone) AS deleted;
