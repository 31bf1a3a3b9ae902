-- The rights the code needs of the role in DATABASE_URL (db/rights.py). Named blocks (search_service.db.sql).

-- name: missing_write_rights
-- params: writers text[] (api, and the worker's jobs: sync, import, embed, events)
-- Per table (or sequence), the rights that the writes of `writers` and the writes their triggers make need and the
-- connected role lacks (none: it has them all). A table not there (not migrated: the migrations check says so) is
-- skipped. Reads are not asked: a role that may not read fails the revision's read first.
-- `direct`: what each writes itself. Key authentication writes api_key and api_key_rate on every keyed request, a
-- read's too; listing writes are mapped inline (retired_listing_sku); a POS webhook records its links; the
-- candidate sets' refresh prunes the change log. A read-only role (GRANT SELECT only) got a 503 "see /readyz" for
-- each while /readyz said ready. The CLI's writes are left out: each command says a refusal in one line.
-- `fired`: what the migrations' triggers write when a table is written (`on_privilege` NULL: any write). PostgreSQL
-- checks a trigger's statements against the role that fired it (only gin_flush_pending is SECURITY DEFINER), and a
-- statement-level one runs them whatever rows it writes: a role that lacked INSERT on inventory_event read as
-- ready and failed at its first listing write. ON CONFLICT DO UPDATE needs UPDATE; nextval the sequence's USAGE.
WITH RECURSIVE direct(writer, table_name, privilege) AS (VALUES
    ('api', 'api_key', 'UPDATE'), ('api', 'api_key_rate', 'INSERT'), ('api', 'api_key_rate', 'UPDATE'),
    ('api', 'store', 'INSERT'), ('api', 'store', 'UPDATE'),
    ('api', 'import_batch', 'INSERT'), ('api', 'import_batch', 'UPDATE'), ('api', 'import_batch', 'DELETE'),
    ('api', 'imported_product_raw', 'INSERT'), ('api', 'imported_product_raw', 'UPDATE'),
    ('api', 'ingest_delivery', 'INSERT'), ('api', 'ingest_delivery', 'UPDATE'),
    ('api', 'product_master', 'INSERT'), ('api', 'product_master', 'UPDATE'),
    ('api', 'store_product', 'INSERT'), ('api', 'store_product', 'UPDATE'),
    ('api', 'retired_listing_sku', 'INSERT'), ('api', 'retired_listing_sku', 'UPDATE'),
    ('api', 'ingest_connector_link', 'INSERT'), ('api', 'ingest_connector_link', 'UPDATE'),
    ('api', 'listing_change', 'DELETE'), ('api', 'listing_change_pruned', 'INSERT'),
    ('api', 'listing_change_pruned', 'UPDATE'),
    ('api', 'store_webhook', 'INSERT'), ('api', 'store_webhook', 'UPDATE'), ('api', 'store_webhook', 'DELETE'),
    ('api', 'webhook_event', 'INSERT'), ('api', 'webhook_delivery', 'INSERT'), ('api', 'webhook_delivery', 'UPDATE'),
    ('sync', 'ingest_connection', 'UPDATE'), ('sync', 'ingest_connector_link', 'INSERT'),
    ('sync', 'ingest_connector_link', 'UPDATE'), ('sync', 'import_batch', 'INSERT'), ('sync', 'import_batch', 'UPDATE'),
    ('sync', 'imported_product_raw', 'INSERT'),
    ('import', 'import_batch', 'UPDATE'), ('import', 'imported_product_raw', 'UPDATE'),
    ('import', 'product_master', 'INSERT'), ('import', 'product_master', 'UPDATE'),
    ('import', 'store_product', 'INSERT'), ('import', 'store_product', 'UPDATE'),
    ('import', 'retired_listing_sku', 'INSERT'), ('import', 'retired_listing_sku', 'UPDATE'),
    ('embed', 'ai_task', 'UPDATE'), ('embed', 'product_master', 'UPDATE'),
    ('events', 'webhook_delivery', 'UPDATE'), ('events', 'store_webhook', 'UPDATE')
), fired(on_table, on_privilege, table_name, privilege) AS (VALUES
    ('store', NULL, 'store_geo_version', 'INSERT'), ('store', NULL, 'store_geo_version', 'UPDATE'),
    ('store', NULL, 'store_geo_version_seq', 'USAGE'),
    ('product_master', 'INSERT', 'ai_task', 'INSERT'), ('product_master', 'INSERT', 'search_term', 'INSERT'),
    ('product_master', 'UPDATE', 'ai_task', 'INSERT'), ('product_master', 'UPDATE', 'ai_task', 'UPDATE'),
    ('product_master', 'UPDATE', 'search_term', 'INSERT'),
    ('category', 'UPDATE', 'ai_task', 'INSERT'), ('category', 'UPDATE', 'ai_task', 'UPDATE'),
    ('store_product', NULL, 'history_store_product', 'INSERT'), ('store_product', NULL, 'inventory_event', 'INSERT'),
    ('store_product', NULL, 'search_index_queue', 'INSERT'), ('store_product', NULL, 'listing_change', 'INSERT'),
    ('store_product', NULL, 'webhook_event', 'INSERT'),
    ('import_batch', 'INSERT', 'webhook_event', 'INSERT'), ('import_batch', 'UPDATE', 'webhook_event', 'INSERT'),
    ('webhook_event', 'INSERT', 'webhook_store_seq', 'INSERT'),
    ('webhook_event', 'INSERT', 'webhook_store_seq', 'UPDATE'),
    ('webhook_event', 'INSERT', 'webhook_subscription_seq', 'INSERT'),
    ('webhook_event', 'INSERT', 'webhook_subscription_seq', 'UPDATE'),
    ('webhook_event', 'INSERT', 'webhook_delivery', 'INSERT')
), needed(table_name, privilege) AS (
    SELECT direct.table_name, direct.privilege FROM direct WHERE direct.writer = ANY(:writers::text[])
    UNION
    SELECT f.table_name, f.privilege
    FROM needed n JOIN fired f ON f.on_table = n.table_name AND coalesce(f.on_privilege, n.privilege) = n.privilege
)
SELECT needed.table_name, string_agg(needed.privilege, ', ' ORDER BY needed.privilege) AS lacking
FROM needed
WHERE NOT CASE needed.privilege
    WHEN 'USAGE' THEN has_sequence_privilege(to_regclass(needed.table_name), 'USAGE, UPDATE')
    ELSE has_table_privilege(to_regclass(needed.table_name), needed.privilege)
END
GROUP BY needed.table_name
ORDER BY needed.table_name;
