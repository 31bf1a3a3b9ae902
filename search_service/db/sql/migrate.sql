-- `plinqy-search migrate` (search_service/db/migrate_guard.py). Named blocks (search_service.db.sql).

-- name: try_migrate_lock
-- params: none
-- One migrate at a time per database: a second one ran the same DDL and died on duplicate objects. A session lock,
-- held by a connection of its own for the whole run and released when it closes (a killed migrate included).
SELECT pg_try_advisory_lock(hashtext('plinqy-search migrate'));

-- name: wait_migrate_lock
-- params: none
-- The other migrate's run ends, then this one finds the database where it left it.
SELECT pg_advisory_lock(hashtext('plinqy-search migrate'));

-- name: lock_wait
-- params: pid int
-- What the migrating backend waits for and the session in its way (the oldest transaction first), read while it
-- waits: once lock_timeout cancels the wait, PostgreSQL no longer says which lock or whose.
SELECT coalesce(l.relation::regclass::text, l.locktype) AS waited_for,
       l.mode,
       b.pid,
       coalesce(b.application_name, ''),
       coalesce(b.state, ''),
       left(regexp_replace(coalesce(b.query, ''), '\s+', ' ', 'g'), 80)
FROM pg_locks l
CROSS JOIN LATERAL unnest(pg_blocking_pids(l.pid)) AS blocker(pid)
JOIN pg_stat_activity b ON b.pid = blocker.pid
WHERE l.pid = :pid AND NOT l.granted
ORDER BY b.xact_start NULLS LAST
LIMIT 1;
