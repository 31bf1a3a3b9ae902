-- The rights the code needs of the role in DATABASE_URL (db/rights.py). Named blocks (search_service.db.sql).

-- name: missing_write_rights
-- params: none
-- Per table, the rights the API's writes need that the connected role lacks (none: it has them all). Key
-- authentication writes api_key and api_key_rate on every keyed request, a read's too; the write routes the
-- others (the tables their triggers write and what only the worker or the CLI writes are left out). A read-only
-- role (GRANT SELECT only) got a 503 "see /readyz" for each of them while /readyz said ready. A table not there
-- (not migrated: the migrations check says so) is skipped.
SELECT needed.table_name, string_agg(needed.privilege, ', ' ORDER BY needed.privilege) AS lacking
FROM (VALUES
    ('api_key', 'UPDATE'), ('api_key_rate', 'INSERT'), ('api_key_rate', 'UPDATE'),
    ('store', 'INSERT'), ('store', 'UPDATE'),
    ('import_batch', 'INSERT'), ('import_batch', 'UPDATE'), ('import_batch', 'DELETE'),
    ('imported_product_raw', 'INSERT'), ('imported_product_raw', 'UPDATE'),
    ('ingest_delivery', 'INSERT'), ('ingest_delivery', 'UPDATE'),
    ('product_master', 'INSERT'), ('product_master', 'UPDATE'),
    ('store_product', 'INSERT'), ('store_product', 'UPDATE'),
    ('store_webhook', 'INSERT'), ('store_webhook', 'UPDATE'), ('store_webhook', 'DELETE'),
    ('webhook_event', 'INSERT'), ('webhook_delivery', 'INSERT'), ('webhook_delivery', 'UPDATE')
) AS needed(table_name, privilege)
WHERE NOT has_table_privilege(to_regclass(needed.table_name), needed.privilege)
GROUP BY needed.table_name
ORDER BY needed.table_name;
