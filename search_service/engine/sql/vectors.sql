-- The API's in-memory copy of the product vectors (search_service/vectors.py). Named blocks (search_service.db.sql).
-- ai_embedded_at is the vectors' change stamp: a trigger (migration 0002) moves it on every change of ai_vector,
-- and ix_product_master_ai_embedded_at (INCLUDE id) serves every range scan below.

-- name: vector_count
-- params: none
-- How many vectors a full load would hold (index-only scan), checked against PLINQY_VECTOR_CACHE_MAX first.
SELECT count(*) FROM product_master WHERE ai_embedded_at IS NOT NULL;

-- name: load_without_timeout
-- params: none
-- The full load is one statement (a binary COPY of every vector: 1.5 GB at 1M products), longer than the API's
-- statement_timeout; for the load's own transaction only.
SET LOCAL statement_timeout = 0;

-- name: vector_rows_estimate
-- params: none
-- The planner's row count of product_master (no scan): the full load sizes the copy's arrays by it.
SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'product_master'::regclass;

-- name: vectors_all_binary
-- params: none
-- The full load as one binary COPY (engine/vector_load.py decodes it with numpy): fixed-size rows, so a NULL
-- stamp comes as -infinity (the copy's NO_STAMP).
SELECT id, ai_vector, coalesce(ai_embedded_at, '-infinity'::timestamptz)
FROM product_master
WHERE ai_vector IS NOT NULL;

-- name: write_horizon
-- params: none
-- Run before a refresh's snapshot is taken: a time that no row committed after that snapshot can be stamped
-- before. Such a row comes from a transaction open now in this database that has written (it holds an xid,
-- and its stamps, clock_timestamp() at the write, are no earlier than its start), or from one that writes from
-- now on.
-- `complete` is false when the horizon cannot be known: this role does not see other roles' sessions here (no
-- pg_read_all_stats), a prepared transaction (not a session) may commit rows stamped at any earlier time, or
-- this is a standby, whose rows come from the primary's transactions, which its pg_stat_activity does not show.
WITH here AS (SELECT oid FROM pg_database WHERE datname = current_database()),
     me AS (SELECT oid FROM pg_roles WHERE rolname = current_user)
SELECT least(statement_timestamp(), min(a.xact_start) FILTER (WHERE a.backend_xid IS NOT NULL)) AS horizon,
       (pg_has_role('pg_read_all_stats', 'USAGE')
        OR NOT coalesce(bool_or(a.usesysid IS NOT NULL AND a.usesysid <> (SELECT oid FROM me)), false))
       AND NOT EXISTS (SELECT 1 FROM pg_prepared_xacts x WHERE x.database = current_database())
       AND NOT pg_is_in_recovery() AS complete
FROM pg_stat_activity a
WHERE a.datid = (SELECT oid FROM here);

-- name: vectors_changed_stamps
-- params: since timestamptz
-- Refresh, step 1: the (id, stamp) pairs changed since `since` (index-only scan): the write_horizon read
-- before the previous load or refresh, or the watermark minus a margin when that is later or the horizon
-- unknown. The caller compares them with the stamps it holds and fetches only the vectors that differ.
SELECT id, ai_embedded_at
FROM product_master
WHERE ai_embedded_at > :since::timestamptz;

-- name: vectors_by_id
-- params: ids uuid[]
-- Refresh, step 2: the changed vectors themselves.
SELECT id, ai_vector, ai_embedded_at
FROM product_master
WHERE id = ANY(:ids::uuid[]) AND ai_vector IS NOT NULL;

-- name: database_identity
-- params: none
-- Names the database a shared copy of the vectors belongs to (search_service/engine/vector_files.py).
SELECT concat_ws(':', coalesce(host(inet_server_addr()), 'local'), current_setting('port'), current_database(),
                 (SELECT oid FROM pg_database WHERE datname = current_database())) AS identity;

-- name: kept_copy_origin
-- params: none
-- What a kept shared generation must match to be reused (vector_files.usable_generation): one newer than
-- `newest` was taken from another state of the database; one of another `origin` from another product_master
-- table. A restore (pg_restore --clean, a dump into a recreated schema) recreates it: a new oid, while the
-- database's identity stays. Its file node also changes with TRUNCATE, VACUUM FULL, CLUSTER (a load anew).
SELECT max(ai_embedded_at) AS newest,
       concat_ws('/', 'product_master'::regclass::oid, pg_relation_filenode('product_master')) AS origin
FROM product_master;
