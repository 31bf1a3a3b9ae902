-- The webhook_delivery queue, worked by the dispatchers (asyncpg). A delivery is `pending` (never tried) or `retrying`
-- (due again at next_attempt_at) until `delivered` or `failed`. A claim leases it (locked_by, locked_until) without
-- changing its status, so a dispatcher that dies mid-send needs no reaper: once the lease runs out the row is due
-- again. Results are fenced on locked_by: a dispatcher whose lease was taken over writes nothing.

-- name: claim_deliveries
-- params: worker_id text, batch_size int, per_webhook int, busy uuid[] (subscriptions at this dispatcher's cap),
--    lease_s float8
-- Due rows oldest first, at most per_webhook of one subscription (so a slow receiver holds a bounded share of the
-- sends in flight), skipping rows another dispatcher is claiming. The attempt counts at the claim: a send cut
-- short by a crash was an attempt.
WITH candidates AS (
    SELECT c.id, row_number() OVER (PARTITION BY c.webhook_id ORDER BY c.next_attempt_at, c.id) AS nth
    FROM (
        SELECT id, webhook_id, next_attempt_at
        FROM webhook_delivery
        WHERE status IN ('pending', 'retrying') AND next_attempt_at <= now()
          AND (locked_until IS NULL OR locked_until < now())
          AND webhook_id <> ALL (:busy::uuid[])
        ORDER BY next_attempt_at, id
        LIMIT :batch_size::int * 2
    ) c
), due AS (
    SELECT d.id, d.last_attempt_at
    FROM webhook_delivery d JOIN candidates c ON c.id = d.id
    WHERE c.nth <= :per_webhook::int
      AND d.status IN ('pending', 'retrying') AND (d.locked_until IS NULL OR d.locked_until < now())
    ORDER BY d.next_attempt_at, d.id
    LIMIT :batch_size::int
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_delivery d
SET locked_by = :worker_id::text,
    locked_until = now() + make_interval(secs => :lease_s::float8),
    -- a disabled subscription's delivery is failed, not sent: no attempt (a fan-out racing the disable queues one)
    attempts = d.attempts + CASE WHEN w.is_active THEN 1 ELSE 0 END,
    -- one reading of the clock: a first attempt's two times differed by a microsecond (two calls)
    first_attempt_at = CASE WHEN w.is_active THEN coalesce(d.first_attempt_at, c.now) ELSE d.first_attempt_at END,
    last_attempt_at = CASE WHEN w.is_active THEN c.now ELSE d.last_attempt_at END
FROM due, webhook_event e, store_webhook w, (SELECT clock_timestamp() AS now) c
WHERE d.id = due.id AND e.id = d.event_id AND w.id = d.webhook_id
RETURNING d.id, d.webhook_id, d.message_id, d.attempts, e.type,
          -- data.sequence: the subscription's number (migration 0027), store_sequence the store's, webhook_id whose
          CASE WHEN d.sequence IS NULL THEN e.payload
               ELSE e.payload || jsonb_build_object('sequence', d.sequence, 'store_sequence', e.seq,
                                                    'webhook_id', d.webhook_id) END::text AS payload,
          e.created_at, w.url, w.secret, w.is_active,
          -- a rotated-out secret signs too until its grace period ends (migration 0040)
          CASE WHEN w.previous_secret_until > now() THEN w.previous_secret END AS previous_secret,
          -- a disabled subscription's delivery fails saying why, keeping its last answer's code
          w.disabled_reason, d.last_status_code,
          -- before this claim: a delivery held unsent (its secret does not open) gets it back
          due.last_attempt_at AS previous_attempt_at;

-- name: record_results
-- params: worker_id text, ids bigint[], outcomes text[] (delivered | retrying | failed | held),
--    delays float8[] (seconds to the next attempt, for retrying and held), status_codes int[], errors text[],
--    urls text[] (where each was sent; '': not sent, the last attempt's URL stays),
--    previous_attempts timestamptz[] (each one's last_attempt_at before its claim)
-- The fence: only rows this dispatcher still holds change. `held` (not sent: its secret does not open with this
-- key) keeps the status and takes back the attempt the claim counted, and the attempt times the claim wrote (no
-- request went: one never sent showed a last attempt).
UPDATE webhook_delivery d
SET status = CASE WHEN r.outcome = 'held' THEN d.status
                  -- its subscription disabled while it was in flight: no retry will be claimed (waiting ones failed)
                  WHEN r.outcome = 'retrying'
                       AND NOT EXISTS (SELECT 1 FROM store_webhook w WHERE w.id = d.webhook_id AND w.is_active)
                  THEN 'failed'
                  ELSE r.outcome END,
    attempts = CASE WHEN r.outcome = 'held' THEN d.attempts - 1 ELSE d.attempts END,
    first_attempt_at = CASE WHEN r.outcome = 'held' AND r.previous IS NULL THEN NULL ELSE d.first_attempt_at END,
    last_attempt_at = CASE WHEN r.outcome = 'held' THEN r.previous ELSE d.last_attempt_at END,
    next_attempt_at = CASE WHEN r.outcome IN ('retrying', 'held')
                           THEN now() + make_interval(secs => r.delay) ELSE d.next_attempt_at END,
    last_status_code = r.code,
    last_error = left(r.error, 2000),
    last_url = CASE WHEN r.url = '' THEN d.last_url ELSE r.url END,
    delivered_at = CASE WHEN r.outcome = 'delivered' THEN now() END,
    locked_by = NULL,
    locked_until = NULL
FROM unnest(:ids::bigint[], :outcomes::text[], :delays::float8[], :status_codes::int[], :errors::text[],
            :urls::text[], :previous_attempts::timestamptz[])
     AS r(id, outcome, delay, code, error, url, previous)
WHERE d.id = r.id AND d.locked_by = :worker_id::text
RETURNING d.id;

-- name: subscription_succeeded
-- params: webhook_id uuid
-- A success ends a failing streak. Written only when something changes (or once a minute): at hundreds of
-- deliveries a second a write per success would queue every dispatcher behind this one row.
UPDATE store_webhook
SET failing_since = NULL, failure_count = 0, last_delivery_at = now()
WHERE id = :webhook_id::uuid
  AND (failing_since IS NOT NULL OR last_delivery_at IS NULL OR last_delivery_at < now() - interval '1 minute');

-- name: subscription_failed
-- params: webhook_id uuid, disable_after_s float8
-- A failure starts (or continues) a failing streak; a streak as long as disable_after_s disables the subscription,
-- and its waiting deliveries fail as at a 410 (one left retrying a day was missed by enable's replay line).
-- An active one only: a disabled subscription's late results neither count nor disable (and log) it again.
WITH streak AS (
    UPDATE store_webhook
    SET failing_since = coalesce(failing_since, now()),
        failure_count = failure_count + 1,
        is_active = is_active
                    AND coalesce(failing_since, now()) > now() - make_interval(secs => :disable_after_s::float8),
        disabled_reason = CASE
            WHEN is_active AND coalesce(failing_since, now()) <= now() - make_interval(secs => :disable_after_s::float8)
            THEN 'deliveries failing since ' || to_char(coalesce(failing_since, now()) AT TIME ZONE 'UTC',
                                                        'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            ELSE disabled_reason END
    WHERE id = :webhook_id::uuid AND is_active
    RETURNING id, is_active, disabled_reason
), failed AS (
    UPDATE webhook_delivery d
    SET status = 'failed', last_error = 'subscription disabled: ' || streak.disabled_reason
    FROM streak
    WHERE NOT streak.is_active AND d.webhook_id = streak.id AND d.status IN ('pending', 'retrying')
      AND (d.locked_until IS NULL OR d.locked_until < now())
)
SELECT is_active, disabled_reason FROM streak;

-- name: disable_subscription
-- params: webhook_id uuid, reason text
-- At once (a 410 Gone): the subscription stops, and its waiting deliveries fail with the reason. `disabled`: this
-- call switched it off (false when it was off already).
WITH off AS (
    UPDATE store_webhook SET is_active = false, disabled_reason = :reason::text
    WHERE id = :webhook_id::uuid AND is_active
    RETURNING id
), failed AS (
    UPDATE webhook_delivery d
    SET status = 'failed', last_error = 'subscription disabled: ' || :reason::text
    FROM off
    WHERE d.webhook_id = off.id AND d.status IN ('pending', 'retrying')
      AND (d.locked_until IS NULL OR d.locked_until < now())
    RETURNING d.id
)
SELECT EXISTS (SELECT 1 FROM off) AS disabled, (SELECT count(*) FROM failed) AS failed_deliveries;

-- name: due_count
-- params: none
SELECT count(*) FROM webhook_delivery
WHERE status IN ('pending', 'retrying') AND next_attempt_at <= now()
  AND (locked_until IS NULL OR locked_until < now());

-- name: unfinished_count
-- params: unsignable uuid[] (subscriptions whose current secret the dispatcher's key does not open)
-- Deliveries still to be attempted, due or not (a drain waits for retries that fall due soon), but not those of a
-- subscription the dispatcher cannot sign for: each is held 2 minutes at a time, and a few of them, due in turn,
-- kept a drain going for ever.
SELECT count(*), extract(epoch FROM min(next_attempt_at) - now())
FROM webhook_delivery
WHERE status IN ('pending', 'retrying') AND webhook_id <> ALL (:unsignable::uuid[]);
