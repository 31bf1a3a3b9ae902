-- Batch re-embedding (psycopg, `:name` parameters). product_master is walked by keyset on id, never OFFSET.

-- name: column_dimension
-- params: (none)
-- pgvector stores a vector column's dimension as its type modifier.
SELECT atttypmod FROM pg_attribute
WHERE attrelid = 'product_master'::regclass AND attname = 'ai_vector';

-- name: count_products
-- params: mode text ('missing' | 'stale' | 'all'), before timestamptz|null
SELECT count(*) FROM product_master
WHERE (:mode <> 'missing' OR ai_vector IS NULL)
  AND (:mode <> 'all' OR ai_embedded_at IS NULL OR ai_embedded_at < :before::timestamptz);

-- name: next_batch
-- params: after uuid|null, batch_size int, mode text, before timestamptz|null
-- The next keyset page of candidates; 'stale' is decided in Python (it needs the composed text's hash).
SELECT p.id, p.name, p.brand, p.description, p.attributes, p.ai_model, p.ai_text_hash,
       category_path(p.category_id) AS category_path, p.ai_vector IS NOT NULL AS has_vector, p.updated_at,
       p.ai_embedded_at
FROM product_master p
WHERE (:after::uuid IS NULL OR p.id > :after::uuid)
  AND (:mode <> 'missing' OR p.ai_vector IS NULL)
  AND (:mode <> 'all' OR p.ai_embedded_at IS NULL OR p.ai_embedded_at < :before::timestamptz)
ORDER BY p.id
LIMIT :batch_size;

-- name: create_staging
-- params: (none)
CREATE TEMP TABLE IF NOT EXISTS reembed_staging (
    id uuid PRIMARY KEY, vec vector, hash text, seen timestamptz, seen_embedded timestamptz
)
ON COMMIT DELETE ROWS;

-- name: apply_staging
-- params: model text
-- One set-based UPDATE per batch from the COPY-filled staging table. A product edited since we read it has
-- another updated_at, one embedded by a worker another ai_embedded_at (a vector's write leaves updated_at,
-- migration 0022): it is left alone, its newer text has its own ai_task. A NULL vec is a text with no token the
-- model knows: no vector and no stamp, its hash and the model recorded (docs/engine.md).
UPDATE product_master p
SET ai_vector = s.vec, ai_text_hash = s.hash, ai_model = :model,
    ai_embedded_at = CASE WHEN s.vec IS NULL THEN NULL ELSE now() END
FROM reembed_staging s
WHERE p.id = s.id AND p.updated_at = s.seen AND p.ai_embedded_at IS NOT DISTINCT FROM s.seen_embedded;

-- name: enqueue
-- params: ids uuid[], priority int, kind text ('embed_product' | 'reembed_product')
-- --via-queue: hand the work to the workers; a product with a pending task keeps it. `--all` queues
-- 'reembed_product' tasks, which the worker embeds even when the text is current (an 'embed_product' task it
-- skips then, and ai_embedded_at, what a resumed `--all` walks by, never moved); a pending 'embed_product' task
-- of the product becomes one. Returns the tasks new or made 'reembed_product'.
INSERT INTO ai_task (product_master_id, priority, kind)
SELECT unnest(:ids::uuid[]), :priority, :kind
ON CONFLICT (product_master_id) WHERE status = 'pending'
DO UPDATE SET kind = EXCLUDED.kind
    WHERE EXCLUDED.kind = 'reembed_product' AND ai_task.kind <> 'reembed_product'
RETURNING id;

-- name: database_identity
-- params: (none)
-- What an `--all` checkpoint is kept per: the cluster (its system identifier) and the database's oid in it, the
-- same however a URL spells the host, the port or its options.
SELECT (SELECT system_identifier FROM pg_control_system())::text || '/' || d.oid::text
FROM pg_database d
WHERE d.datname = current_database();

-- name: server_now
-- params: (none)
-- The run's start for `--all`, on the server's clock: the one ai_embedded_at (now() of the write) is compared to.
SELECT now();

-- name: notify
-- params: (none)
-- Wake idle workers after --via-queue added tasks.
SELECT pg_notify('ai_task', '');
