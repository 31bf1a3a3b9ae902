-- The secrets stored encrypted with the secret box (db/secretbox.py), for `plinqy-search secrets rotate`
-- (db/secret_rotation.py): connections' webhook signing secrets and vendor credentials (bytea), subscriptions'
-- signing secrets and the one a rotation replaced (the token's text). Named blocks (search_service.db.sql).

-- name: secret_rows
-- params: none
-- The rows holding a secret, per table: the progress bar's total.
SELECT (SELECT count(*) FROM ingest_connection WHERE secret_enc IS NOT NULL OR credentials_enc IS NOT NULL)
           AS ingest_connection,
       (SELECT count(*) FROM store_webhook WHERE secret IS NOT NULL OR previous_secret IS NOT NULL) AS store_webhook;

-- name: connection_batch
-- params: after uuid|null (the last id of the batch before; null: from the first), batch_size int
-- The next rows in id order, locked until the batch's transaction ends: a connection's secrets edited meanwhile
-- (`connections update`) wait for it, and are not overwritten by the rotation.
SELECT id, secret_enc, credentials_enc
FROM ingest_connection
WHERE (secret_enc IS NOT NULL OR credentials_enc IS NOT NULL)
  AND id > coalesce(:after::uuid, '00000000-0000-0000-0000-000000000000')
ORDER BY id
LIMIT :batch_size
FOR NO KEY UPDATE;

-- name: rewrite_connection
-- params: id uuid, secret_enc bytea|null, credentials_enc bytea|null
-- The same secrets under the first key (a NULL stays NULL: the batch read the row locked, so these are its own).
UPDATE ingest_connection SET secret_enc = :secret_enc, credentials_enc = :credentials_enc WHERE id = :id::uuid;

-- name: webhook_batch
-- params: after uuid|null (the last id of the batch before; null: from the first), batch_size int
-- As connection_batch. previous_secret is taken whatever its grace period: one past it is never read again, but
-- left under the old key it would be the one secret the old key's removal made unreadable.
SELECT id, secret, previous_secret
FROM store_webhook
WHERE (secret IS NOT NULL OR previous_secret IS NOT NULL)
  AND id > coalesce(:after::uuid, '00000000-0000-0000-0000-000000000000')
ORDER BY id
LIMIT :batch_size
FOR NO KEY UPDATE;

-- name: rewrite_webhook
-- params: id uuid, secret text|null, previous_secret text|null
-- updated_at is left: the subscription did not change (its secret is the same; the token only is new).
UPDATE store_webhook SET secret = :secret::text, previous_secret = :previous_secret::text WHERE id = :id::uuid;
