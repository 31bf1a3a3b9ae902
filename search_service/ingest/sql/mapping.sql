-- Mapping a chunk of validated rows into products and listings: a handful of set-based statements per chunk.
-- The decisions between them (stale, which product, conflicts) are made in Python on the lookup's answer, under
-- the store's advisory lock (batches.store_lock), so nothing changes underneath them.
--
-- Plan stability: a store's listings are probed by the exact (store_id, sku) key with the store id carried as a
-- column of the chunk's unnest (`k.store_id`), never as a constant. With the constant, the planner estimates the
-- store's listings from the statistics, and a store that was new (or empty) when they were taken counts as ~1 row:
-- the probe then scanned the store's whole listing range per input row (measured 13 s for 2,000 rows over 50k
-- listings). Joined on the column, the estimate is the table's average per store, so the unique index on both
-- columns is the only cheap path whatever the statistics say (13 s -> 0.12 s; the same plan for a big analyzed
-- store).

-- name: lookup
-- params: store_id uuid, skus text[], gtins text[] (GTIN-14 or NULL)
-- Per input row (ord, 1-based): the store's listing of that SKU, its source clock and whether another store lists
-- its product; the product with that GTIN (any stored width), whether this store lists it (one listing a product:
-- uq_store_product_store_id_product_master_id) and under which SKU (NULL: a listing without one, e.g. SQL's); the
-- GTIN of the listing's product (a GTIN no product holds yet goes onto the store's own product); for a deleted
-- listing of the GTIN's product, whether no other store sells that product (the row taking it over rewrites it);
-- whether the SKU was retired (its listing taken over by another SKU: retired_listing_sku), and for a row without
-- a GTIN the product the retired SKU had, this store's listing of it (its SKU, on sale or not) and, when none is on
-- sale, whether no other store sells it (a row taking it back rewrites its text).
SELECT i.ord, sp.id AS listing_id, sp.product_master_id AS listing_product,
       coalesce(sp.source_updated_at, r.source_updated_at) AS source_updated_at,  -- a retired SKU: its old clocks
       coalesce(sp.source_version, r.source_version) AS source_version,
       coalesce(sp.source_catalog_version, r.source_catalog_version) AS source_catalog_version,
       r.sku IS NOT NULL AS sku_retired,  -- a SKU whose listing another SKU took over (its row: listed_as.py)
       sp.quantity AS listing_quantity, sp.currency AS listing_currency, lp.gtin AS listing_gtin,
       (sp.id IS NOT NULL AND NOT EXISTS (  -- other stores' deleted listings froze the text of the one seller left
           SELECT 1 FROM store_product x
           WHERE x.product_master_id = sp.product_master_id AND x.store_id <> i.store_id AND x.is_active
       )) AS sole_listing,
       g.id AS gtin_product, o.sku AS gtin_listed_as, o.id IS NOT NULL AS gtin_listed,
       coalesce(o.is_active, false) AS gtin_listing_active,
       CASE WHEN o.id IS NOT NULL AND NOT o.is_active THEN NOT EXISTS (  -- a deleted listing taken over: its text
           SELECT 1 FROM store_product x WHERE x.product_master_id = g.id AND x.store_id <> i.store_id AND x.is_active
       ) END AS gtin_sole,
       CASE WHEN i.gtin IS NULL THEN r.product_master_id END AS retired_product, f.sku AS retired_listed_as, f.is_active AS retired_listing_active,
       CASE WHEN r.product_master_id IS NOT NULL AND f.is_active IS NOT TRUE THEN NOT EXISTS (
           SELECT 1 FROM store_product x
           WHERE x.product_master_id = r.product_master_id AND x.store_id <> i.store_id AND x.is_active
       ) END AS retired_sole
FROM unnest(:skus::text[], :gtins::text[], array_fill(:store_id::uuid, ARRAY[cardinality(:skus::text[])]))
     WITH ORDINALITY AS i(sku, gtin, store_id, ord)
LEFT JOIN store_product sp ON sp.store_id = i.store_id AND sp.sku = i.sku
LEFT JOIN retired_listing_sku r ON sp.id IS NULL AND r.store_id = i.store_id AND r.sku = i.sku
LEFT JOIN product_master lp ON lp.id = sp.product_master_id
LEFT JOIN LATERAL (
    SELECT p.id FROM product_master p
    WHERE i.gtin IS NOT NULL AND lpad(p.gtin, 14, '0') = i.gtin
    ORDER BY (p.gtin = i.gtin) DESC, p.created_at
    LIMIT 1
) g ON true
LEFT JOIN store_product o ON o.store_id = i.store_id AND o.product_master_id = g.id  -- one probe, sku and presence
LEFT JOIN store_product f  -- a retired SKU's former product, as this store lists it now (one listing a product)
       ON i.gtin IS NULL AND f.store_id = i.store_id AND f.product_master_id = r.product_master_id
ORDER BY i.ord;

-- name: categories
-- params: none
SELECT id, parent_id, name FROM category;

-- name: insert_products
-- params: ids uuid[], names text[], brands text[], descriptions text[], category_ids bigint[], gtins text[],
--    attributes jsonb[]
-- New products (ids chosen by the caller, so each row knows its own). A GTIN that another transaction inserted
-- meanwhile is skipped here and looked up again (gtin_products).
INSERT INTO product_master (id, name, brand, description, category_id, gtin, attributes)
SELECT v.id, v.name, v.brand, v.description, v.category_id, v.gtin, coalesce(v.attributes, '{}'::jsonb)
FROM unnest(:ids::uuid[], :names::text[], :brands::text[], :descriptions::text[], :category_ids::bigint[],
            :gtins::text[], :attributes::jsonb[]) AS v(id, name, brand, description, category_id, gtin, attributes)
ON CONFLICT (gtin) DO NOTHING
RETURNING id;

-- name: gtin_products
-- params: gtins text[]
SELECT DISTINCT ON (lpad(gtin, 14, '0')) lpad(gtin, 14, '0') AS gtin14, id
FROM product_master WHERE gtin IS NOT NULL AND lpad(gtin, 14, '0') = ANY(:gtins::text[])
ORDER BY lpad(gtin, 14, '0'), created_at;

-- name: update_products
-- params: ids uuid[], names text[], brands text[], descriptions text[], category_ids bigint[], attributes jsonb[],
--    gtins text[] (GTIN-14: set on a product without one)
-- The text of products only this store lists (a shared GTIN product keeps its text); absent fields stay. The
-- embedding trigger re-queues a product whose text changed. Returns the products whose GTIN another transaction
-- gave to another product since the lookup (taken: the caller maps their rows again, to that product), and those
-- it changed (not taken: their rows changed something): one snapshot for the check and the update (a
-- data-modifying CTE).
WITH v AS (
    SELECT v.*, q.gtin IS NULL AND v.gtin IS NOT NULL AND EXISTS (
                    SELECT 1 FROM product_master o WHERE lpad(o.gtin, 14, '0') = v.gtin) AS gtin_taken,
           coalesce(q.gtin, v.gtin) AS new_gtin
    FROM unnest(:ids::uuid[], :names::text[], :brands::text[], :descriptions::text[], :category_ids::bigint[],
                :attributes::jsonb[], :gtins::text[]) AS v(id, name, brand, description, category_id, attributes, gtin)
    JOIN product_master q ON q.id = v.id
), updated AS (
    UPDATE product_master p
    SET name = coalesce(v.name, p.name), brand = coalesce(v.brand, p.brand),
        description = coalesce(v.description, p.description), category_id = coalesce(v.category_id, p.category_id),
        attributes = coalesce(v.attributes, p.attributes), gtin = v.new_gtin
    FROM v
    WHERE p.id = v.id AND NOT v.gtin_taken
      AND (p.name, p.brand, p.description, p.category_id, p.attributes, p.gtin) IS DISTINCT FROM
          (coalesce(v.name, p.name), coalesce(v.brand, p.brand), coalesce(v.description, p.description),
           coalesce(v.category_id, p.category_id), coalesce(v.attributes, p.attributes), v.new_gtin)
    RETURNING p.id
)
SELECT id, true AS taken FROM v WHERE gtin_taken
UNION ALL
SELECT id, false FROM updated;

-- name: kept_text
-- params: store_id uuid, ids uuid[], brands text[], descriptions text[], category_ids bigint[], attributes jsonb[]
-- Rows whose product keeps its text (not the store's own: update_products): per row (ord) that sends a field
-- the product holds otherwise, which fields, and whether another store lists the product on sale (the note's why).
SELECT d.ord, d.brand, d.description, d.category, d.attributes,
       EXISTS (SELECT 1 FROM store_product x
               WHERE x.product_master_id = d.id AND x.store_id <> :store_id::uuid AND x.is_active) AS shared
FROM (
    SELECT v.ord, v.id,
           v.brand IS NOT NULL AND v.brand IS DISTINCT FROM p.brand AS brand,
           v.description IS NOT NULL AND v.description IS DISTINCT FROM p.description AS description,
           v.category_id IS NOT NULL AND v.category_id IS DISTINCT FROM p.category_id AS category,
           v.attributes IS NOT NULL AND v.attributes IS DISTINCT FROM p.attributes AS attributes
    FROM unnest(:ids::uuid[], :brands::text[], :descriptions::text[], :category_ids::bigint[], :attributes::jsonb[])
         WITH ORDINALITY AS v(id, brand, description, category_id, attributes, ord)
    JOIN product_master p ON p.id = v.id
) d
WHERE d.brand OR d.description OR d.category OR d.attributes;

-- name: former_text
-- params: ids uuid[]
-- The products listings leave for a new product of their new GTIN (a barcode corrected): the text their rows leave
-- out is carried over to it (kept_text.carry_former_text), as an absent field keeps the stored value.
SELECT id, gtin, brand, description, category_id, nullif(attributes, '{}'::jsonb)::text AS attributes
FROM product_master WHERE id = ANY(:ids::uuid[]);

-- name: adopt_listings
-- params: store_id uuid, skus text[], products uuid[], titles text[], prices numeric[], currencies text[],
--    quantities int[], actives bool[], updated_ats timestamptz[], versions bigint[], catalog_versions bigint[]
-- A listing without a SKU (written by SQL or a seed), or a deleted one (a POS that recreated the item under a new
-- id), takes the SKU of a row that names its product by GTIN (or of a retired SKU that had it, written again without
-- one), so that the row's upsert finds it (inserting a second listing of the product failed the whole batch), and
-- the row's values with it, as `upsert_listings` would write them: one change, one listing.updated event, not two.
-- A deleted one's clocks were its old item's: they go, kept with its old SKU and its product (retired_listing_sku),
-- so a late write to that SKU is still compared with them, and one without a GTIN finds the product. Returns the SKUs
-- it wrote (their rows changed something).
WITH retired AS (
    INSERT INTO retired_listing_sku AS r (store_id, sku, source_updated_at, source_version, source_catalog_version,
                                          product_master_id)
    SELECT sp.store_id, sp.sku, sp.source_updated_at, sp.source_version, sp.source_catalog_version,
           sp.product_master_id
    FROM store_product sp JOIN unnest(:skus::text[], :products::uuid[]) AS t(sku, product)
         ON sp.store_id = :store_id AND sp.product_master_id = t.product
    WHERE sp.sku IS NOT NULL AND NOT sp.is_active AND sp.sku <> t.sku
    ON CONFLICT (store_id, sku) DO UPDATE
    SET source_updated_at = excluded.source_updated_at, source_version = excluded.source_version,
        source_catalog_version = excluded.source_catalog_version, product_master_id = excluded.product_master_id,
        retired_at = now()
)
UPDATE store_product sp
SET sku = v.sku, title = coalesce(v.title, sp.title), price = v.price, currency = v.currency, quantity = v.quantity,
    is_active = v.active,
    source_updated_at = CASE WHEN sp.sku IS NULL THEN coalesce(v.updated_at, sp.source_updated_at)
                             ELSE v.updated_at END,
    source_version = CASE WHEN sp.sku IS NULL THEN coalesce(v.version, sp.source_version) ELSE v.version END,
    source_catalog_version = CASE WHEN sp.sku IS NULL THEN coalesce(v.catalog_version, sp.source_catalog_version)
                                  ELSE v.catalog_version END
FROM unnest(:skus::text[], :products::uuid[], :titles::text[], :prices::numeric[], :currencies::text[],
            :quantities::int[], :actives::bool[], :updated_ats::timestamptz[], :versions::bigint[],
            :catalog_versions::bigint[])
     AS v(sku, product, title, price, currency, quantity, active, updated_at, version, catalog_version)
WHERE sp.store_id = :store_id AND sp.product_master_id = v.product AND (sp.sku IS NULL OR NOT sp.is_active)
RETURNING sp.sku;

-- name: upsert_listings
-- params: store_id uuid, skus text[], products uuid[], titles text[], prices numeric[], currencies text[],
--    quantities int[], actives bool[], updated_ats timestamptz[], versions bigint[], catalog_versions bigint[]
-- One statement for new and existing listings; an unchanged listing is not written (no history, no event): the
-- SKUs returned are those written, a row of any other changed nothing (the import's unchanged_rows).
-- The triggers write history_store_product and inventory_event (the delta from the absolute quantity).
INSERT INTO store_product (store_id, sku, product_master_id, title, price, currency, quantity, is_active,
                           source_updated_at, source_version, source_catalog_version)
SELECT :store_id, v.sku, v.product, v.title, v.price, v.currency, v.quantity, v.active, v.updated_at, v.version,
       v.catalog_version
FROM unnest(:skus::text[], :products::uuid[], :titles::text[], :prices::numeric[], :currencies::text[],
            :quantities::int[], :actives::bool[], :updated_ats::timestamptz[], :versions::bigint[],
            :catalog_versions::bigint[])
     AS v(sku, product, title, price, currency, quantity, active, updated_at, version, catalog_version)
ON CONFLICT (store_id, sku) WHERE sku IS NOT NULL DO UPDATE
SET product_master_id = excluded.product_master_id, title = coalesce(excluded.title, store_product.title),
    price = excluded.price, currency = excluded.currency, quantity = excluded.quantity,
    is_active = excluded.is_active,
    source_updated_at = coalesce(excluded.source_updated_at, store_product.source_updated_at),
    source_version = coalesce(excluded.source_version, store_product.source_version),
    source_catalog_version = coalesce(excluded.source_catalog_version, store_product.source_catalog_version)
WHERE (store_product.product_master_id, store_product.title, store_product.price, store_product.currency,
       store_product.quantity, store_product.is_active, store_product.source_updated_at,
       store_product.source_version, store_product.source_catalog_version)
      IS DISTINCT FROM
      (excluded.product_master_id, coalesce(excluded.title, store_product.title), excluded.price,
       excluded.currency, excluded.quantity, excluded.is_active,
       coalesce(excluded.source_updated_at, store_product.source_updated_at),
       coalesce(excluded.source_version, store_product.source_version),
       coalesce(excluded.source_catalog_version, store_product.source_catalog_version))
RETURNING sku;

-- name: update_stock
-- params: store_id uuid, skus text[], quantities int[] (NULL: keep), prices numeric[] (NULL: keep),
--    deactivate bool[] (true: a delete), updated_ats timestamptz[], versions bigint[],
--    catalog_versions bigint[] (a delete's product version)
-- Stock/price changes and deletes of existing listings. A delete only stops the listing being sellable: its
-- history and its product stay. Returns the SKUs written, as upsert_listings.
UPDATE store_product sp
SET quantity = coalesce(v.quantity, sp.quantity), price = coalesce(v.price, sp.price),
    is_active = sp.is_active AND NOT v.deactivate,
    source_updated_at = coalesce(v.updated_at, sp.source_updated_at),
    source_version = coalesce(v.version, sp.source_version),
    source_catalog_version = coalesce(v.catalog_version, sp.source_catalog_version)
FROM unnest(:skus::text[], :quantities::int[], :prices::numeric[], :deactivate::bool[], :updated_ats::timestamptz[],
            :versions::bigint[], :catalog_versions::bigint[],
            array_fill(:store_id::uuid, ARRAY[cardinality(:skus::text[])]))
     AS v(sku, quantity, price, deactivate, updated_at, version, catalog_version, store_id)
WHERE sp.store_id = v.store_id AND sp.sku = v.sku  -- the exact key, the store as a column (see lookup)
  AND (sp.quantity, sp.price, sp.is_active, sp.source_updated_at, sp.source_version, sp.source_catalog_version)
      IS DISTINCT FROM
      (coalesce(v.quantity, sp.quantity), coalesce(v.price, sp.price), sp.is_active AND NOT v.deactivate,
       coalesce(v.updated_at, sp.source_updated_at), coalesce(v.version, sp.source_version),
       coalesce(v.catalog_version, sp.source_catalog_version))
RETURNING sp.sku;

-- name: listings_of
-- params: store_id uuid, skus text[]
-- What a listing write answers with.
SELECT sp.id, sp.sku, sp.product_master_id, coalesce(sp.title, p.name) AS title, p.gtin, sp.price, sp.currency,
       sp.quantity, sp.is_active, sp.source_updated_at, sp.updated_at
FROM unnest(:skus::text[], array_fill(:store_id::uuid, ARRAY[cardinality(:skus::text[])])) AS k(sku, store_id)
JOIN store_product sp ON sp.store_id = k.store_id AND sp.sku = k.sku  -- the exact key (see lookup)
JOIN product_master p ON p.id = sp.product_master_id;

-- name: listings_page
-- params: store_id uuid, after text, limit int
-- A store's listings by SKU, a page at a time: those after `after` (the last SKU of the page before; NULL: from
-- the first), on the (store_id, sku) unique index, in its order. Listings without a SKU (seeded by SQL) are not
-- the write API's and are left out.
SELECT sp.id, sp.sku, sp.product_master_id, coalesce(sp.title, p.name) AS title, p.gtin, sp.price, sp.currency,
       sp.quantity, sp.is_active, sp.source_updated_at, sp.updated_at
FROM store_product sp
JOIN product_master p ON p.id = sp.product_master_id
WHERE sp.store_id = :store_id AND sp.sku IS NOT NULL AND sp.sku > coalesce(:after::text, '')
ORDER BY sp.sku
LIMIT :limit::int;
