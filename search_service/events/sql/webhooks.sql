-- Webhook subscriptions and the operators' view of deliveries (asyncpg). The secret column holds the SecretBox token
-- of the whsec_ signing secret (previous_secret: the one a rotation replaced, migration 0040); only get_subscription
-- (a ping signs with it) and the dispatcher's claim (events/dispatch) return them.

-- name: store_exists
-- params: store_id uuid
SELECT EXISTS (SELECT 1 FROM store WHERE id = :store_id::uuid);

-- name: insert_subscription
-- params: store_id uuid, url text, events text[], secret text
INSERT INTO store_webhook (store_id, url, events, secret)
VALUES (:store_id::uuid, :url::text, :events::text[], :secret::text)
RETURNING id, store_id, url, events, is_active, disabled_reason, failing_since, created_at;

-- name: lock_store_webhooks
-- params: store_id uuid
-- Serialises a store's adds (and enables, URL changes) to the end of the transaction, so its checks of one active
-- subscription a URL and of PLINQY_WEBHOOK_MAX_PER_STORE hold. NO KEY: listings' foreign-key checks (KEY SHARE)
-- still pass.
SELECT id FROM store WHERE id = :store_id::uuid FOR NO KEY UPDATE;

-- name: active_subscriptions
-- params: store_id uuid
-- One active subscription a store's URL (compared normalised, in Python): two gave the receiver each event twice
-- under one webhook-id, with two counters in `sequence` it could not tell apart.
SELECT id, url FROM store_webhook WHERE store_id = :store_id::uuid AND is_active ORDER BY created_at, id;

-- name: enable_subscription
-- params: webhook_id uuid
-- On again with its secret and its numbering (`sequence` goes on); the failing streak and its reason are cleared.
-- `failed`, `failed_from`: its failed deliveries (not pings) and their oldest event's time, where a replay starts.
WITH failed AS (
    SELECT count(*) AS failed, min(e.created_at) AS failed_from
    FROM webhook_delivery d JOIN webhook_event e ON e.id = d.event_id
    WHERE d.webhook_id = :webhook_id::uuid AND d.status = 'failed' AND e.type <> 'webhook.ping'
)
UPDATE store_webhook SET is_active = true, disabled_reason = NULL, failing_since = NULL, failure_count = 0
FROM failed
WHERE id = :webhook_id::uuid
RETURNING id, store_id, url, events, is_active, disabled_reason, failing_since, created_at, failed, failed_from;

-- name: list_subscriptions
-- params: store_id uuid|null (NULL: every store)
SELECT id, store_id, url, events, is_active, disabled_reason, failing_since, created_at
FROM store_webhook
WHERE :store_id::uuid IS NULL OR store_id = :store_id::uuid
ORDER BY created_at, id;

-- name: get_subscription
-- params: store_id uuid|null (NULL: any store), webhook_id uuid
SELECT id, store_id, url, events, is_active, disabled_reason, failing_since, created_at, secret,
       CASE WHEN previous_secret_until > now() THEN previous_secret END AS previous_secret
FROM store_webhook
WHERE id = :webhook_id::uuid AND (:store_id::uuid IS NULL OR store_id = :store_id::uuid);

-- name: update_subscription
-- params: webhook_id uuid, url text|null (NULL: unchanged), events text[]|null (NULL: unchanged)
-- In place: the id, its `sequence` numbering, its secret and its queued deliveries (sent to the new URL) stay.
UPDATE store_webhook
SET url = coalesce(:url::text, url), events = coalesce(:events::text[], events), updated_at = now()
WHERE id = :webhook_id::uuid
RETURNING id, store_id, url, events, is_active, disabled_reason, failing_since, created_at;

-- name: rotate_secret
-- params: store_id uuid|null (NULL: any store), webhook_id uuid, secret text, grace_s float8,
--         unopened text|null (the secret being replaced, when the server's key does not open it)
-- The new secret signs from now on; the one it replaces signs too for grace_s (a second rotation within that time
-- drops the oldest). SET reads the row as it was, so previous_secret gets the secret being replaced, unless it is
-- `unopened`: a secret that cannot sign is dropped (previous_secret_until NULL), not kept as a dead entry. Its deliveries
-- held unsent ('cannot sign': its secret did not open with the key) are due at once: the rotation is what the hold's
-- log line advises, and they waited out their hold (a drain right after sent none).
WITH released AS (
    UPDATE webhook_delivery d
    SET next_attempt_at = now()
    WHERE d.webhook_id = :webhook_id::uuid AND d.status IN ('pending', 'retrying') AND d.locked_by IS NULL
      AND d.last_error LIKE 'cannot sign:%' AND d.next_attempt_at > now()
      AND EXISTS (SELECT 1 FROM store_webhook w
                  WHERE w.id = :webhook_id::uuid AND (:store_id::uuid IS NULL OR w.store_id = :store_id::uuid))
)
UPDATE store_webhook
SET previous_secret = CASE WHEN secret IS DISTINCT FROM :unopened::text THEN secret END,
    previous_secret_until = CASE WHEN secret IS DISTINCT FROM :unopened::text
                                 THEN now() + make_interval(secs => :grace_s::float8) END,
    secret = :secret::text, updated_at = now()
WHERE id = :webhook_id::uuid AND (:store_id::uuid IS NULL OR store_id = :store_id::uuid)
RETURNING id, store_id, url, events, is_active, disabled_reason, failing_since, created_at, previous_secret_until;

-- name: delete_subscription
-- params: store_id uuid|null (NULL: any store), webhook_id uuid
-- Its deliveries go with it (ON DELETE CASCADE); events stay for other subscriptions and the prune.
DELETE FROM store_webhook
WHERE id = :webhook_id::uuid AND (:store_id::uuid IS NULL OR store_id = :store_id::uuid)
RETURNING id;

-- name: insert_ping
-- params: store_id uuid, webhook_id uuid, lock text
-- A ping event and its one delivery, held by the caller (locked_by = lock) and `failed` until the caller records
-- its answer: no dispatcher claims it (a ping is sent once, by its caller; one whose caller died mid-send was sent
-- again, then retried for a day), and one whose caller died says so. Its webhook-id has the fan-out's form
-- (migration 0042).
WITH ev AS (
    INSERT INTO webhook_event (store_id, seq, type, payload)
    VALUES (:store_id::uuid, 0, 'webhook.ping',
            jsonb_build_object('store_id', :store_id::uuid, 'webhook_id', :webhook_id::uuid,
                               'occurred_at', statement_timestamp()))
    RETURNING id, type, payload, created_at
), d AS (
    INSERT INTO webhook_delivery (event_id, webhook_id, message_id, status, last_error, attempts, locked_by,
                                  locked_until, first_attempt_at, last_attempt_at)
    SELECT ev.id, :webhook_id::uuid, 'msg_' || ev.id || '_' || replace(:webhook_id::uuid::text, '-', ''),
           'failed', 'a ping in flight (its sender stopped if this stays)', 1, :lock::text,
           now() + interval '1 minute', now(), now()
    FROM ev
    RETURNING id, message_id
)
SELECT d.id, d.message_id, ev.type, ev.payload::text AS payload, ev.created_at FROM d, ev;

-- name: list_deliveries
-- params: failed_only boolean, store_id uuid|null (NULL: every store), limit int
-- url: where the last attempt went (the subscription's URL may have changed since); the subscription's when none.
-- in_flight: a dispatcher holds it (an attempt under way): its next time is not known until the attempt ends (the
-- claim wrote last_attempt_at and left next_attempt_at at the time it was due: shown, it came before the last
-- attempt). A lease run out (its dispatcher died) made it due again then.
SELECT d.id, w.store_id, d.webhook_id, coalesce(d.last_url, w.url) AS url, e.type, d.message_id, d.status,
       d.attempts, greatest(d.next_attempt_at, d.locked_until) AS next_attempt_at, d.last_attempt_at,
       d.last_status_code, d.last_error, d.delivered_at, d.created_at, w.is_active, w.disabled_reason,
       coalesce(d.locked_until > now(), false) AS in_flight
FROM webhook_delivery d
JOIN store_webhook w ON w.id = d.webhook_id
JOIN webhook_event e ON e.id = d.event_id
WHERE (NOT :failed_only::boolean OR d.status = 'failed')
  AND (:store_id::uuid IS NULL OR w.store_id = :store_id::uuid)
ORDER BY d.id DESC
LIMIT :limit::int;

-- name: replay
-- params: delivery_id bigint|null, store_id uuid|null, webhook_id uuid|null, since timestamptz|null,
--    failed_only boolean
-- Send again (same webhook-id: receivers deduplicate), with fresh attempts: one delivery, or every finished one
-- (failed_only: every failed one) of a store's or a subscription's events since a time. Rows still queued or in flight are left as they are, and so are the deliveries of
-- a disabled webhook (the dispatcher would fail them at once) and pings (sent once, by their caller: a replay had a
-- dispatcher send them again, one still in flight too).
WITH again AS (
    UPDATE webhook_delivery d
    SET status = 'pending', attempts = 0, next_attempt_at = now(), locked_by = NULL, locked_until = NULL,
        delivered_at = NULL
    FROM webhook_event e, store_webhook w
    WHERE e.id = d.event_id AND w.id = d.webhook_id AND w.is_active AND d.status IN ('delivered', 'failed')
      AND e.type <> 'webhook.ping' AND (d.locked_until IS NULL OR d.locked_until < now())
      AND (:delivery_id::bigint IS NULL OR d.id = :delivery_id::bigint)
      AND (:store_id::uuid IS NULL OR e.store_id = :store_id::uuid)
      AND (:webhook_id::uuid IS NULL OR d.webhook_id = :webhook_id::uuid)
      AND (NOT :failed_only::boolean OR d.status = 'failed')
      AND (:since::timestamptz IS NULL OR e.created_at >= :since::timestamptz)
    RETURNING d.id
)
SELECT count(*) AS n, pg_notify('webhook_delivery', '') IS NULL AS notified FROM again;

-- name: delivery_exists
-- params: delivery_id bigint
-- One row whatever the id; status NULL: none. `made`: the id sequence got that far, so a missing one was deleted,
-- with its webhook (ON DELETE CASCADE) or by the prune, not mistyped.
SELECT d.status, d.webhook_id, d.is_active, d.disabled_reason, d.type,
       :delivery_id::bigint <= coalesce(
           pg_sequence_last_value(pg_get_serial_sequence('webhook_delivery', 'id')::regclass), 0) AS made
FROM (SELECT) AS one
LEFT JOIN (
    SELECT d.status, d.webhook_id, w.is_active, w.disabled_reason, e.type
    FROM webhook_delivery d JOIN store_webhook w ON w.id = d.webhook_id JOIN webhook_event e ON e.id = d.event_id
    WHERE d.id = :delivery_id::bigint
) AS d ON true;
