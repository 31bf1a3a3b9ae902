-- Facets and sorts over a search's result set.

-- fragment: set_listings
-- params: store_ids uuid[]|null, narrow_stores int, in_stock bool
-- The qualifying listings in scope of the result set `base` (id, ord): per product in a wide scope; globally a
-- hash join of the active stores; scopes of at most narrow_stores stores store by store, joined to the set.
SELECT base.id, base.ord, sp.store_id, sp.price
FROM base
JOIN store_product sp ON sp.product_master_id = base.id
WHERE cardinality(:store_ids::uuid[]) > :narrow_stores::int
  AND sp.is_active AND (NOT :in_stock::bool OR sp.quantity > 0)
  AND sp.store_id IN (SELECT unnest(:store_ids::uuid[]))
UNION ALL
-- global: any active store, a hash join (a primary-key probe per listing cost ~27k buffers at 1000 deep)
SELECT base.id, base.ord, sp.store_id, sp.price
FROM base
JOIN store_product sp ON sp.product_master_id = base.id
JOIN store s ON s.id = sp.store_id
WHERE :store_ids::uuid[] IS NULL
  AND s.is_active AND sp.is_active AND (NOT :in_stock::bool OR sp.quantity > 0)
UNION ALL
-- a few stores: their listings, read store by store, joined to the set
SELECT base.id, base.ord, sp.store_id, sp.price
FROM unnest(:store_ids::uuid[]) AS st(id)
JOIN store_product sp ON sp.store_id = st.id
JOIN base ON base.id = sp.product_master_id
WHERE cardinality(:store_ids::uuid[]) <= :narrow_stores::int
  AND sp.is_active AND (NOT :in_stock::bool OR sp.quantity > 0)

-- name: facet_set
-- params: product_ids uuid[] (the result set before the facet filters, best first),
--    store_ids uuid[]|null (the stores in scope; null: any active store), in_stock bool,
--    lon float8|null, lat float8|null (distances, for sort = distance),
--    category_ids bigint[]|null (chosen category and its subtree), facet_brand text|null, store_id uuid|null,
--    min_price numeric|null, max_price numeric|null,
--    price_edges numeric[] (lower bounds of the price buckets, ascending, from 0),
--    facets text[] (which of category, brand, price, store to count),
--    facet_values int (values per facet at most, and the chosen brand and store past them),
--    sort text (relevance, distance or price), page_offset int, page_limit int,
--    narrow_stores int (scopes of at most this many stores read their listings store by store)
-- One statement: the result set's products (`base`, with the product-level filters as flags) and their qualifying
-- listings in scope (`lst`, with the listing-level filters as flags). A result passes every filter, with the
-- store and price filters holding on one and the same listing. Each facet counts the products that pass every
-- filter but its own (a chosen brand leaves the other brands' counts visible, and narrows the rest), so a count is
-- the number of results that choosing the value gives. Category counts roll up the tree (a product counts for its
-- category and every ancestor). Price buckets count the products with a qualifying listing in the bucket. Sorts
-- are stable: ties keep the relevance order (`ord`). Distances (geodesic) are computed once per store.
-- Scopes of at most narrow_stores stores read their listings store by store (index-only, ~1.1k a store) and join
-- the set: a 1000-deep set at 0.5 km (one store) took 8-20 ms in per-product listing probes, ~3.5 ms so.
WITH pt AS (
    SELECT CASE WHEN :lon::float8 IS NULL OR :lat::float8 IS NULL THEN NULL
                ELSE ST_SetSRID(ST_MakePoint(:lon::float8, :lat::float8), 4326)::geography END AS g
), base AS MATERIALIZED (
    SELECT p.id, b.ord, p.category_id, p.brand,
           (:category_ids::bigint[] IS NULL OR p.category_id = ANY(:category_ids::bigint[])) AS cat_ok,
           (:facet_brand::text IS NULL OR plinqy_fold(p.brand) = plinqy_fold(:facet_brand::text)) AS brand_ok
    FROM unnest(:product_ids::uuid[]) WITH ORDINALITY AS b(id, ord)
    JOIN product_master p ON p.id = b.id
    WHERE p.is_active
), listing AS (
    {{ set_listings }}
), lst AS MATERIALIZED (
    SELECT id, store_id, price,
           (:store_id::uuid IS NULL OR store_id = :store_id::uuid) AS store_ok,
           ((:min_price::numeric IS NULL OR price >= :min_price::numeric)
            AND (:max_price::numeric IS NULL OR price <= :max_price::numeric)) AS price_ok
    FROM listing
), per AS MATERIALIZED (
    SELECT id, bool_or(store_ok AND price_ok) AS listing_ok,
           min(price) FILTER (WHERE store_ok AND price_ok) AS best_price
    FROM lst GROUP BY id
), store_distance AS MATERIALIZED (
    SELECT s.id, ST_Distance(s.location, pt.g) AS d
    FROM store s CROSS JOIN pt
    WHERE :sort::text = 'distance' AND pt.g IS NOT NULL
      AND s.id IN (SELECT DISTINCT store_id FROM lst WHERE store_ok AND price_ok)
), nearest AS (
    SELECT l.id, min(sd.d) AS d
    FROM lst l JOIN store_distance sd ON sd.id = l.store_id
    WHERE l.store_ok AND l.price_ok
    GROUP BY l.id
), hits AS MATERIALIZED (
    SELECT b.id, b.ord, per.best_price, nearest.d AS nearest_m
    FROM base b JOIN per ON per.id = b.id LEFT JOIN nearest ON nearest.id = b.id
    WHERE b.cat_ok AND b.brand_ok AND per.listing_ok
), ordered AS (
    SELECT id, best_price, nearest_m,
           row_number() OVER (ORDER BY CASE WHEN :sort::text = 'distance' THEN nearest_m END NULLS LAST,
                                       CASE WHEN :sort::text = 'price' THEN best_price END NULLS LAST,
                                       ord) AS pos
    FROM hits
), page AS (
    SELECT * FROM ordered ORDER BY pos OFFSET :page_offset::int LIMIT :page_limit::int
), cat_products AS (
    SELECT b.id, b.category_id FROM base b JOIN per ON per.id = b.id
    WHERE 'category' = ANY(:facets::text[]) AND b.brand_ok AND per.listing_ok AND b.category_id IS NOT NULL
), cat_up AS (
    WITH RECURSIVE up(leaf, anc) AS (
        SELECT DISTINCT category_id, category_id FROM cat_products
        UNION
        SELECT up.leaf, c.parent_id FROM up JOIN category c ON c.id = up.anc WHERE c.parent_id IS NOT NULL
    )
    SELECT leaf, anc FROM up
), category_counts AS (
    SELECT c.id, c.name, c.parent_id, count(*) AS n
    FROM cat_products cp JOIN cat_up u ON u.leaf = cp.category_id JOIN category c ON c.id = u.anc
    GROUP BY c.id, c.name, c.parent_id
), brand_values AS (
    -- one value a brand as its filter reads it (plinqy_fold: case and accents folded): `X` and `x`, `Château` and
    -- `Chateau` of two stores were two values counting one each, and either one chose both; the spelling most of
    -- its products have names it
    SELECT mode() WITHIN GROUP (ORDER BY b.brand) AS value, count(*) AS n,
           row_number() OVER (ORDER BY count(*) DESC, mode() WITHIN GROUP (ORDER BY b.brand)) AS r,
           :facet_brand::text IS NOT NULL AND bool_and(b.brand_ok) AS chosen
    FROM base b JOIN per ON per.id = b.id
    WHERE 'brand' = ANY(:facets::text[]) AND b.cat_ok AND per.listing_ok AND b.brand IS NOT NULL
    GROUP BY plinqy_fold(b.brand)
), brand_counts AS (
    -- the most frequent, and the chosen brand past them: a front end shows its checked box with its count
    SELECT value, n FROM brand_values WHERE r <= :facet_values::int OR chosen
), store_values AS (
    SELECT l.store_id AS id, min(s.name) AS name, count(DISTINCT l.id) AS n,
           row_number() OVER (ORDER BY count(DISTINCT l.id) DESC, l.store_id) AS r
    FROM lst l JOIN base b ON b.id = l.id JOIN store s ON s.id = l.store_id
    WHERE 'store' = ANY(:facets::text[]) AND b.cat_ok AND b.brand_ok AND l.price_ok
    GROUP BY l.store_id
), store_counts AS (
    -- the most frequent, and the chosen store past them (as the brand's)
    SELECT id, name, n FROM store_values WHERE r <= :facet_values::int OR id = :store_id::uuid
), price_counts AS (
    SELECT width_bucket(l.price, :price_edges::numeric[]) AS bucket, count(DISTINCT l.id) AS n
    FROM lst l JOIN base b ON b.id = l.id
    WHERE 'price' = ANY(:facets::text[]) AND b.cat_ok AND b.brand_ok AND l.store_ok
    GROUP BY 1
)
SELECT
    (SELECT count(*) FROM hits) AS total,
    (SELECT coalesce(array_agg(id ORDER BY pos), '{}'::uuid[]) FROM page) AS page_ids,
    (SELECT coalesce(array_agg(best_price ORDER BY pos), '{}'::numeric[]) FROM page) AS page_prices,
    (SELECT coalesce(array_agg(nearest_m ORDER BY pos), '{}'::float8[]) FROM page) AS page_distances,
    (SELECT json_agg(json_build_array(id, name, parent_id, n) ORDER BY n DESC, id) FROM category_counts) AS categories,
    (SELECT json_agg(json_build_array(value, n) ORDER BY n DESC, value) FROM brand_counts) AS brands,
    (SELECT json_agg(json_build_array(id, name, n) ORDER BY n DESC, id) FROM store_counts) AS stores,
    (SELECT json_agg(json_build_array(bucket, n) ORDER BY bucket) FROM price_counts) AS prices;

-- name: category_subtree
-- params: category_id bigint
-- A chosen category facet value filters by the category and its descendants.
WITH RECURSIVE t(id) AS (
    SELECT c.id FROM category c WHERE c.id = :category_id::bigint
    UNION
    SELECT c.id FROM category c JOIN t ON c.parent_id = t.id
)
SELECT coalesce(array_agg(id), '{}'::bigint[]) AS ids FROM t;

-- name: explain_typos
-- params: q text, product_ids uuid[]
-- explain=true: per product, the typo corrections it owes its match: a query word the vocabulary does not know (in
-- any form: as typed, by its stem or an irregular plural's singular)
-- and the product does not match as typed (nor by its stem), and the known word (as the keyword side's correction
-- finds them: with two neighbouring letters swapped, else at most 3 by trigrams within the edits the word's length
-- allows) that the product's name or brand has. Same words and thresholds as rank_keyword's typo tolerance
-- (pg_trgm.similarity_threshold comes from the engine's settings).
WITH words AS (
    SELECT DISTINCT w, CASE WHEN length(w) >= 9 THEN 2 ELSE 1 END AS edits
    FROM unnest(tsvector_to_array(to_tsvector('plinqy_simple', :q::text))) AS u(w)
    WHERE length(w) >= 4 AND w !~ '^[0-9]+$' AND to_tsvector('plinqy_english', w) <> ''::tsvector
      -- an excluded word (`-milk`) is no word to correct, as in rank_keyword
      AND NOT w = ANY(tsvector_to_array(to_tsvector('plinqy_simple', coalesce(
          (SELECT string_agg(m[1], ' ') FROM regexp_matches(websearch_to_tsquery('plinqy_simple', :q::text)::text,
                                                            '!(''(?:[^'']|'''')*''|\([^()]*\))', 'g') AS m), ''))))
      -- known in a form, as search.sql's word_forms reads it (`loaves`: loaf), is no slip
      AND NOT EXISTS (SELECT 1 FROM search_term k
                      WHERE k.term = ANY(ARRAY[w, regexp_replace(w, 'ves$', 'f'), regexp_replace(w, 'ves$', 'fe')]
                                         || tsvector_to_array(to_tsvector('plinqy_english', w))))
), swapped AS (
    SELECT DISTINCT words.w, t.term FROM words
    CROSS JOIN LATERAL generate_series(1, length(words.w) - 1) AS g(i)
    JOIN search_term t
      ON t.term = overlay(words.w PLACING substr(words.w, i + 1, 1) || substr(words.w, i, 1) FROM i FOR 2)
    WHERE to_tsvector('plinqy_english', t.term) <> ''::tsvector
      AND NOT EXISTS (SELECT 1 FROM search_term k
                      WHERE k.term = ANY(tsvector_to_array(to_tsvector('plinqy_english', words.w))))
), corrections AS (
    SELECT words.w AS word, s.term
    FROM words
    CROSS JOIN LATERAL (
        (SELECT t.term FROM search_term t
         WHERE t.term % words.w
           AND CASE WHEN length(words.w) <= 255 AND length(t.term) <= 255  -- levenshtein's limit
                    THEN levenshtein_less_equal(t.term, words.w, 2)
                         <= CASE WHEN words.edits = 2 OR similarity(t.term, words.w) >= 0.45 THEN 2 ELSE 1 END
                         -- a plural's s is no edit: `tisue` is tissue(s), `knives` knive(s) -> knife
                         OR levenshtein_less_equal(regexp_replace(t.term, 's$', ''), regexp_replace(words.w, 's$', ''),
                                                   1) <= 1 END
           AND NOT EXISTS (SELECT 1 FROM swapped x WHERE x.w = words.w)
         GROUP BY t.term ORDER BY similarity(t.term, words.w) DESC, t.term LIMIT 3)
        UNION
        (SELECT x.term FROM swapped x WHERE x.w = words.w)
    ) s
)
SELECT p.id, array_agg(c.word || '->' || c.term ORDER BY c.word, c.term) AS applied
FROM product_master p
JOIN corrections c ON c.term IN (SELECT search_terms_of(p.name, p.brand))
WHERE p.id = ANY(:product_ids::uuid[])
  -- applied only where the word as typed (or its stem) matched nothing of the product: `brule` finds Crème Brûlée
  -- by its english stem, and `brule->brulee` was listed though nothing was corrected
  AND NOT p.search_tsv @@ (plainto_tsquery('plinqy_simple', c.word) || plainto_tsquery('plinqy_english', c.word))
GROUP BY p.id;

-- name: labels_all
-- params: none
-- The in-memory product labels (facet_labels.py): every product's category, brand, active flag, name as name
-- completions compare it (plinqy_caseless: lower() with `ı` as `i`, `ß` as `ss`), lower-cased brand (PostgreSQL's
-- lower(), which the SQL paths compare with), and its stamp.
SELECT id, category_id, brand, is_active, updated_at, plinqy_caseless(name) AS lower_name, lower(brand) AS lower_brand
FROM product_master;

-- name: labels_changed
-- params: since timestamptz
-- A refresh of the labels: the products stamped after `since` (index-only in ix_product_master_updated_at).
SELECT id, category_id, brand, is_active, updated_at, plinqy_caseless(name) AS lower_name, lower(brand) AS lower_brand
FROM product_master WHERE updated_at > :since::timestamptz;

-- name: category_state
-- params: none
-- Whether the category table changed since the in-memory labels read it (its row count and newest stamp).
SELECT count(*) AS n, max(updated_at) AS newest FROM category;

-- name: category_tree
-- params: none
-- The category tree of the in-memory labels, with the state category_state reads; names also folded (plinqy_fold),
-- as category completions match them.
SELECT count(*) AS n, max(updated_at) AS newest, array_agg(id ORDER BY id) AS ids,
       array_agg(parent_id ORDER BY id) AS parents, array_agg(name ORDER BY id) AS names,
       array_agg(plinqy_fold(name) ORDER BY id) AS folded_names
FROM category;

-- fragment: fresh_labels
-- params: since timestamptz, unknown_ids uuid[], set_brands text[], facet_brand text|null
-- The in-memory facet path's labels (CTEs `labels`, `chosen`; the set is CTE `base`): those of the set's products
-- stamped after `since` or not held, and which of the set's brands the chosen one is.
labels AS MATERIALIZED (
    SELECT p.id, p.category_id, p.brand, p.is_active
    FROM product_master p
    WHERE p.updated_at > :since::timestamptz AND p.id IN (SELECT id FROM base)
    UNION
    SELECT p.id, p.category_id, p.brand, p.is_active
    FROM product_master p
    WHERE p.id = ANY(:unknown_ids::uuid[])
), chosen AS (
    SELECT coalesce(array_agg(DISTINCT b.brand), '{}'::text[]) AS brands
    FROM (SELECT unnest(:set_brands::text[]) AS brand UNION SELECT brand FROM labels) b
    WHERE plinqy_fold(b.brand) = plinqy_fold(:facet_brand::text)
)

-- name: facet_listings
-- params: product_ids uuid[] (the result set, best first), store_ids uuid[]|null (null: any active store),
--    in_stock bool, store_id uuid|null (the chosen store), distances bool (compute each listing's store distance),
--    lon float8|null, lat float8|null, narrow_stores int (scopes of at most this many stores: store by store),
--    since timestamptz (the in-memory labels may miss products stamped after this), unknown_ids uuid[] (the set's
--    products the labels do not hold), set_brands text[] (the brands the labels give the set),
--    facet_brand text|null (the chosen brand)
-- The in-memory facet path (facet_memory.py): the set's qualifying listings in scope, 20 bytes each in one bytea
-- (int4 position in product_ids from 1, int8 price in cents, float8 store distance or NaN), read as facet_set
-- reads them (per product; globally a hash of the active stores; a few stores store by store) but without the
-- product rows, which the API holds; the labels of the set's products stamped after `since` or not held; and
-- which of the set's brands the chosen one is (plinqy_fold, as the SQL path compares them).
WITH pt AS (
    SELECT CASE WHEN :lon::float8 IS NULL OR :lat::float8 IS NULL THEN NULL
                ELSE ST_SetSRID(ST_MakePoint(:lon::float8, :lat::float8), 4326)::geography END AS g
), base AS MATERIALIZED (
    SELECT b.id, b.ord FROM unnest(:product_ids::uuid[]) WITH ORDINALITY AS b(id, ord)
), listing AS (
    {{ set_listings }}
), kept AS MATERIALIZED (
    SELECT ord, store_id, price FROM listing WHERE :store_id::uuid IS NULL OR store_id = :store_id::uuid
), store_distance AS MATERIALIZED (
    SELECT s.id, ST_Distance(s.location, pt.g) AS d
    FROM store s CROSS JOIN pt
    WHERE :distances::bool AND pt.g IS NOT NULL AND s.id IN (SELECT DISTINCT store_id FROM kept)
), {{ fresh_labels }}
SELECT
    (SELECT coalesce(string_agg(int4send(k.ord::int4) || int8send((k.price * 100)::int8)
                                || float8send(coalesce(sd.d, 'NaN'::float8)), ''::bytea), ''::bytea)
     FROM kept k LEFT JOIN store_distance sd ON sd.id = k.store_id) AS listings,
    l.ids AS label_ids, l.categories AS label_categories, l.brands AS label_brands, l.actives AS label_actives,
    (SELECT brands FROM chosen) AS chosen_brands
FROM (SELECT coalesce(array_agg(id), '{}'::uuid[]) AS ids, array_agg(category_id) AS categories,
             array_agg(brand) AS brands, array_agg(is_active) AS actives
      FROM labels) l;

-- name: store_distances
-- params: store_ids uuid[], lon float8, lat float8
-- Stores' distances from a point, measured as facet_listings measures them (facet_distance.py), and the stores'
-- places' version in this snapshot (the in-memory places it certified with must be that version's).
SELECT (SELECT v.version FROM store_geo_version v) AS version,
       coalesce(array_agg(s.id), '{}'::uuid[]) AS ids,
       coalesce(array_agg(ST_Distance(s.location, ST_SetSRID(ST_MakePoint(:lon::float8, :lat::float8), 4326)::geography)),
                '{}'::float8[]) AS distances
FROM store s WHERE s.id = ANY(:store_ids::uuid[]);

-- name: store_names
-- params: store_ids uuid[]
-- The names of the stores the store facet shows (facet_stores.py).
SELECT coalesce(array_agg(id), '{}'::uuid[]) AS ids, coalesce(array_agg(name), '{}'::text[]) AS names
FROM store WHERE id = ANY(:store_ids::uuid[]);

-- fragment: stock_snapshot_columns
-- params: none
-- The change log's state in this statement's snapshot (as search.sql's snapshot_columns, for facet_stock.py).
coalesce(greatest((SELECT max(seq) FROM listing_change), (SELECT seq FROM listing_change_pruned)), 0) AS change_seq,
pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS snap_xmax,
ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(pg_current_snapshot()) AS x) AS snap_xip

-- name: stock_state
-- params: none
-- A rebuild of the in-memory listing buckets (facet_stock.py): the change log's state, in the snapshot that
-- stock_by_store then reads.
SELECT {{ stock_snapshot_columns }};

-- name: stock_log_head
-- params: none
-- The listing buckets stepped aside during a burst (facet_stock.py): the change log's head, probed each refresh
-- until it moves by less than a burst (the primary key's last entry, and the one-row pruned mark).
SELECT coalesce(greatest((SELECT max(seq) FROM listing_change), (SELECT seq FROM listing_change_pruned)), 0);

-- name: stock_by_store
-- params: price_edges numeric[]
-- A rebuild of the in-memory listing buckets: per store, its sellable listings' products (16 bytes each) and price
-- buckets (1 byte each, width_bucket's number), in the same order (one group's aggregates read its rows in one
-- order; an index-only scan of ix_store_product_store_in_stock, as the candidate sets' in_stock_by_store), and the
-- store's geohash (the candidate sets built from this read order their stores by it: engine/store_blocks.py).
SELECT sp.store_id,
       string_agg(uuid_send(sp.product_master_id), ''::bytea) AS packed_ids,
       string_agg(set_byte('\x00'::bytea, 0, width_bucket(sp.price, :price_edges::numeric[])), ''::bytea) AS packed_buckets,
       (SELECT ST_GeoHash(s.location::geometry, 12) FROM store s WHERE s.id = sp.store_id) AS place
FROM store_product sp
WHERE sp.is_active AND sp.quantity > 0
GROUP BY sp.store_id;

-- fragment: stock_changed
-- params: since_seq bigint|null (the buckets' snapshot; null: none read), pending bigint[] (transactions in
--    progress then), max_changes int (past it the buckets are rebuilt)
-- The listings logged since the buckets' snapshot (numbered past the highest seen, or written by a transaction
-- still running then: as the candidate sets read them), once each. A CTE.
changed AS MATERIALIZED (
    SELECT f.store_id, f.product_master_id  -- planned for these values (search.sql, changes_since)
    FROM listing_changes_since(:since_seq::bigint, :pending::bigint[], :max_changes::int) AS f
)

-- fragment: stock_change_columns
-- params: price_edges numeric[]
-- The changed pairs with their current state, packed 33 bytes each (store id, product id, price bucket; 0: not
-- sellable), their count, the highest number pruned, and the log's state in this snapshot.
(SELECT string_agg(
            uuid_send(ch.store_id) || uuid_send(ch.product_master_id)
            || set_byte('\x00'::bytea, 0, coalesce((
                   SELECT width_bucket(sp.price, :price_edges::numeric[]) FROM store_product sp
                   WHERE sp.store_id = ch.store_id AND sp.product_master_id = ch.product_master_id
                     AND sp.is_active AND sp.quantity > 0), 0)), ''::bytea)
 FROM changed ch) AS change_pairs,
(SELECT count(*) FROM changed) AS change_count,
coalesce((SELECT seq FROM listing_change_pruned), 0) AS change_pruned,
{{ stock_snapshot_columns }}

-- name: stock_changes
-- params: none (+ stock_changed, stock_change_columns)
-- The listing buckets' changes alone: the API's refresh, every second (facet requests read them too).
WITH {{ stock_changed }}
SELECT {{ stock_change_columns }};

-- name: facet_fresh
-- params: product_ids uuid[] (the result set), global bool (list the inactive stores)
--    (+ stock_changed, stock_change_columns, fresh_labels)
-- The in-memory facet path with the listing buckets (facet_memory.py, facet_stock.py): one round trip for what
-- memory may not have yet: the buckets' changes (`stock_changed`), for a global set the inactive stores, and
-- `fresh_labels`.
WITH {{ stock_changed }}, base AS MATERIALIZED (
    SELECT b.id FROM unnest(:product_ids::uuid[]) AS b(id)
), {{ fresh_labels }}
SELECT
    {{ stock_change_columns }},
    CASE WHEN :global::bool
         THEN (SELECT coalesce(array_agg(id), '{}'::uuid[]) FROM store WHERE NOT is_active) END AS inactive_stores,
    l.ids AS label_ids, l.categories AS label_categories, l.brands AS label_brands, l.actives AS label_actives,
    (SELECT brands FROM chosen) AS chosen_brands
FROM (SELECT coalesce(array_agg(id), '{}'::uuid[]) AS ids, array_agg(category_id) AS categories,
             array_agg(brand) AS brands, array_agg(is_active) AS actives
      FROM labels) l;

-- name: inactive_stores
-- params: none
-- A global facet set's stores (engine/facet_vectors.py listed_in_memory): every store but these.
SELECT coalesce(array_agg(id), '{}'::uuid[]) AS ids FROM store WHERE NOT is_active;
