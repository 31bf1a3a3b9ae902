-- Retention of the append-only tables (psycopg). Each table is pruned in id windows, one short transaction each, up
-- to the highest id when the prune started. Deliveries go first (finished ones: delivered, or failed for good), then
-- events none of whose deliveries is still pending or retrying: an event still on its way is never pruned.

-- fragment: inventory_event_old
-- params: cutoff timestamptz
occurred_at < :cutoff::timestamptz

-- fragment: history_store_product_old
-- params: cutoff timestamptz
changed_at < :cutoff::timestamptz

-- fragment: search_index_queue_old
-- params: cutoff timestamptz
enqueued_at < :cutoff::timestamptz

-- fragment: webhook_delivery_old
-- params: cutoff timestamptz
-- Finished before the cutoff (a failed one: its last attempt, or when it was given up unsent). Also a recent one of
-- an old event that goes (a replay delivered or failed lately): it would go by cascade, uncounted.
status IN ('delivered', 'failed') AND (
    coalesce(delivered_at, last_attempt_at, created_at) < :cutoff::timestamptz
    OR EXISTS (
        SELECT 1 FROM webhook_event e
        WHERE e.id = t.event_id AND e.created_at < :cutoff::timestamptz
        AND NOT EXISTS (
            SELECT 1 FROM webhook_delivery d WHERE d.event_id = e.id AND d.status IN ('pending', 'retrying')
        )
    )
)

-- fragment: webhook_event_old
-- params: cutoff timestamptz
created_at < :cutoff::timestamptz
AND NOT EXISTS (SELECT 1 FROM webhook_delivery d WHERE d.event_id = t.id AND d.status IN ('pending', 'retrying'))

-- name: upto_inventory_event
-- params: none
SELECT coalesce(max(id), 0) FROM inventory_event;

-- name: upto_history_store_product
-- params: none
SELECT coalesce(max(id), 0) FROM history_store_product;

-- name: upto_search_index_queue
-- params: none
SELECT coalesce(max(id), 0) FROM search_index_queue;

-- name: upto_webhook_delivery
-- params: none
SELECT coalesce(max(id), 0) FROM webhook_delivery;

-- name: upto_webhook_event
-- params: none
SELECT coalesce(max(id), 0) FROM webhook_event;

-- name: count_inventory_event
-- params: cutoff timestamptz, upto bigint
SELECT count(*) FROM inventory_event t WHERE t.id <= :upto AND {{ inventory_event_old }};

-- name: count_history_store_product
-- params: cutoff timestamptz, upto bigint
SELECT count(*) FROM history_store_product t WHERE t.id <= :upto AND {{ history_store_product_old }};

-- name: count_search_index_queue
-- params: cutoff timestamptz, upto bigint
SELECT count(*) FROM search_index_queue t WHERE t.id <= :upto AND {{ search_index_queue_old }};

-- name: count_webhook_delivery
-- params: cutoff timestamptz, upto bigint
SELECT count(*) FROM webhook_delivery t WHERE t.id <= :upto AND {{ webhook_delivery_old }};

-- name: count_webhook_event
-- params: cutoff timestamptz, upto bigint
-- Counted before the deliveries go, so events whose deliveries the same prune removes are not in it.
SELECT count(*) FROM webhook_event t WHERE t.id <= :upto AND {{ webhook_event_old }};

-- name: prune_inventory_event
-- params: cutoff timestamptz, after_id bigint, upto bigint, window int
WITH doomed AS (
    SELECT id FROM inventory_event t
    WHERE t.id > :after_id AND t.id <= :upto AND {{ inventory_event_old }}
    ORDER BY t.id LIMIT :window
), gone AS (DELETE FROM inventory_event x USING doomed WHERE x.id = doomed.id RETURNING x.id)
SELECT (SELECT max(id) FROM doomed), count(*) FROM gone;

-- name: prune_history_store_product
-- params: cutoff timestamptz, after_id bigint, upto bigint, window int
WITH doomed AS (
    SELECT id FROM history_store_product t
    WHERE t.id > :after_id AND t.id <= :upto AND {{ history_store_product_old }}
    ORDER BY t.id LIMIT :window
), gone AS (DELETE FROM history_store_product x USING doomed WHERE x.id = doomed.id RETURNING x.id)
SELECT (SELECT max(id) FROM doomed), count(*) FROM gone;

-- name: prune_search_index_queue
-- params: cutoff timestamptz, after_id bigint, upto bigint, window int
WITH doomed AS (
    SELECT id FROM search_index_queue t
    WHERE t.id > :after_id AND t.id <= :upto AND {{ search_index_queue_old }}
    ORDER BY t.id LIMIT :window
), gone AS (DELETE FROM search_index_queue x USING doomed WHERE x.id = doomed.id RETURNING x.id)
SELECT (SELECT max(id) FROM doomed), count(*) FROM gone;

-- name: prune_webhook_delivery
-- params: cutoff timestamptz, after_id bigint, upto bigint, window int
-- Rows a replay re-queued between the count and this window are no longer finished: the lock re-checks.
WITH doomed AS (
    SELECT id FROM webhook_delivery t
    WHERE t.id > :after_id AND t.id <= :upto AND {{ webhook_delivery_old }}
    ORDER BY t.id LIMIT :window
    FOR UPDATE SKIP LOCKED
), gone AS (DELETE FROM webhook_delivery x USING doomed WHERE x.id = doomed.id RETURNING x.id)
SELECT (SELECT max(id) FROM doomed), count(*) FROM gone;

-- name: prune_webhook_event
-- params: cutoff timestamptz, after_id bigint, upto bigint, window int
-- Run after prune_webhook_delivery, which took every finished delivery of an old event: an event that still has one
-- keeps it. A replay re-queuing one (uncommitted, so skipped by SKIP LOCKED there) was otherwise seen failed here,
-- and the event's cascade waited for the replay's lock, then deleted the delivery it had just queued.
WITH doomed AS (
    SELECT id FROM webhook_event t
    WHERE t.id > :after_id AND t.id <= :upto AND {{ webhook_event_old }}
      AND NOT EXISTS (SELECT 1 FROM webhook_delivery d WHERE d.event_id = t.id)
    ORDER BY t.id LIMIT :window
    FOR UPDATE SKIP LOCKED
), gone AS (DELETE FROM webhook_event x USING doomed WHERE x.id = doomed.id RETURNING x.id)
SELECT (SELECT max(id) FROM doomed), count(*) FROM gone;

-- name: cutoff
-- params: older_than_s float8
SELECT now() - make_interval(secs => :older_than_s);
