-- API keys: stored as the sha256 of the key (a high-entropy key needs no slow hash), looked up by that hash.

-- name: insert_key
-- params: key_prefix text, key_hash text, store_id uuid|null (NULL: an admin key), scopes text[], name text|null
INSERT INTO api_key (key_prefix, key_hash, store_id, scopes, name)
VALUES (:key_prefix, :key_hash, :store_id, :scopes::text[], :name)
RETURNING id, created_at;

-- name: list_keys
-- params: store_id uuid|null (NULL: every key)
SELECT id, key_prefix, store_id, scopes, name, created_at, revoked_at, last_used_at
FROM api_key
WHERE :store_id::uuid IS NULL OR store_id = :store_id::uuid
ORDER BY created_at, id;

-- name: revoke_key
-- params: key_id uuid
-- Revoking twice keeps the first revocation's time.
UPDATE api_key SET revoked_at = coalesce(revoked_at, now()) WHERE id = :key_id RETURNING id, revoked_at;

-- name: key_by_hash
-- params: key_hash text
SELECT id, key_hash, store_id, scopes, revoked_at FROM api_key WHERE key_hash = :key_hash;

-- name: touch_key
-- params: key_id uuid
-- last_used_at at minute resolution: a busy key writes at most once a minute.
UPDATE api_key SET last_used_at = now()
WHERE id = :key_id AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');

-- name: store_exists
-- params: store_id uuid
SELECT EXISTS (SELECT 1 FROM store WHERE id = :store_id);
