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

-- name: authenticate
-- params: key_hash text, rate float8, burst float8
-- One statement per authenticated request: the key, its last use (at most one write a minute) and a token from
-- its rate bucket, shared by every API process. The bucket refills at `rate` per second up to `burst`; `allowed`
-- says whether this request got a token, `tokens` what is left (below 1: how long to wait). Unknown and revoked
-- keys take no token. now() is this statement's time (the guard's connection is in autocommit); greatest()
-- keeps a request that waited on the row lock from counting time backwards.
WITH k AS (
    SELECT id, key_hash, store_id, scopes, revoked_at FROM api_key WHERE key_hash = :key_hash
), touched AS (
    UPDATE api_key a SET last_used_at = now()
    FROM k
    WHERE a.id = k.id AND k.revoked_at IS NULL
      AND (a.last_used_at IS NULL OR a.last_used_at < now() - interval '1 minute')
), bucket AS (
    INSERT INTO api_key_rate AS r (key_id, tokens, allowed, stamp)
    SELECT id, :burst::float8 - 1, true, now() FROM k WHERE revoked_at IS NULL
    ON CONFLICT (key_id) DO UPDATE
    SET tokens = least(:burst::float8,
                       r.tokens + greatest(0, extract(epoch FROM now() - r.stamp)::float8) * :rate::float8)
                 - CASE WHEN least(:burst::float8, r.tokens
                                   + greatest(0, extract(epoch FROM now() - r.stamp)::float8) * :rate::float8) >= 1
                        THEN 1 ELSE 0 END,
        allowed = least(:burst::float8,
                        r.tokens + greatest(0, extract(epoch FROM now() - r.stamp)::float8) * :rate::float8) >= 1,
        stamp = greatest(r.stamp, now())
    RETURNING key_id, allowed, tokens
)
SELECT k.id, k.key_hash, k.store_id, k.scopes, k.revoked_at, b.allowed, b.tokens
FROM k LEFT JOIN bucket b ON b.key_id = k.id;

-- name: store_exists
-- params: store_id uuid
SELECT EXISTS (SELECT 1 FROM store WHERE id = :store_id);
