-- Catalogue statistics for the search engine's plan choice (search_service/stats.py). Named blocks (search_service.db.sql).

-- name: catalogue_stats
-- params: none
-- Row counts (pg_class.reltuples: -1 before the first VACUUM/ANALYZE) and the planner statistics of
-- product_master.category_id and store_product.price (pg_stats: NULL before the first ANALYZE). They change
-- with ANALYZE only, so the API reads them every 30 s, not per search: the pg_stats view cost each
-- search ~0.4 ms (planning four subqueries over it) of a ~1 ms context statement.
SELECT
    (SELECT reltuples FROM pg_class WHERE oid = 'product_master'::regclass) AS n_products,
    (SELECT reltuples FROM pg_class WHERE oid = 'store'::regclass) AS n_stores,
    (SELECT reltuples FROM pg_class WHERE oid = 'store_product'::regclass) AS n_listings,
    (SELECT reltuples FROM pg_class WHERE oid = 'ix_store_product_in_stock'::regclass) AS n_in_stock,
    (SELECT st.most_common_vals::text::bigint[] FROM pg_stats st
      WHERE st.schemaname = 'public' AND st.tablename = 'product_master' AND st.attname = 'category_id')
        AS category_mcv,
    (SELECT st.most_common_freqs FROM pg_stats st
      WHERE st.schemaname = 'public' AND st.tablename = 'product_master' AND st.attname = 'category_id')
        AS category_mcf,
    (SELECT st.n_distinct FROM pg_stats st
      WHERE st.schemaname = 'public' AND st.tablename = 'product_master' AND st.attname = 'category_id')
        AS category_n_distinct,
    (SELECT st.histogram_bounds::text::float8[] FROM pg_stats st
      WHERE st.schemaname = 'public' AND st.tablename = 'store_product' AND st.attname = 'price')
        AS price_histogram;
