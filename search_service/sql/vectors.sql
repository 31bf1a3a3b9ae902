-- The API's in-memory copy of the product vectors (search_service/vectors.py). asyncpg blocks: `$n` placeholders.
-- ai_embedded_at is the vectors' change stamp: a trigger (migration 0002) moves it on every change of ai_vector,
-- and ix_product_master_ai_embedded_at (INCLUDE id) serves every range scan below.

-- name: vector_count
-- params: none
-- How many vectors a full load would hold (index-only scan), checked against PLINQY_VECTOR_CACHE_MAX first.
SELECT count(*) FROM product_master WHERE ai_embedded_at IS NOT NULL;

-- name: vectors_all
-- params: none
-- The full load: every stored vector with its stamp.
SELECT id, ai_vector, ai_embedded_at
FROM product_master
WHERE ai_vector IS NOT NULL;

-- name: vectors_changed_stamps
-- params: $1 since timestamptz
-- Refresh, step 1: the (id, stamp) pairs changed since `since` (index-only scan). The caller compares them
-- with the stamps it holds and fetches only the vectors that differ.
SELECT id, ai_embedded_at
FROM product_master
WHERE ai_embedded_at > $1::timestamptz;

-- name: vectors_by_id
-- params: $1 ids uuid[]
-- Refresh, step 2: the changed vectors themselves.
SELECT id, ai_vector, ai_embedded_at
FROM product_master
WHERE id = ANY($1::uuid[]) AND ai_vector IS NOT NULL;
