-- Search-as-you-type: completions of what is typed so far, each backed by an in-stock listing in scope.

-- fragment: in_scope
-- params: radius_m float8
-- Product `p` has an in-stock listing at an active store in scope (`scope.ids`; NULL: any active store, or with
-- `scope.near` any within the radius, measured per listing probed). A per-row probe of ix_store_product_in_stock
-- that stops at the first listing found.
EXISTS (
    SELECT 1 FROM store_product sp
    WHERE sp.product_master_id = p.id
      AND sp.is_active AND sp.quantity > 0
      AND ((SELECT ids FROM scope) IS NULL OR sp.store_id IN (SELECT unnest((SELECT ids FROM scope))))
      AND ((SELECT ids FROM scope) IS NOT NULL
           OR EXISTS (SELECT 1 FROM store s WHERE s.id = sp.store_id AND s.is_active
                        AND (NOT (SELECT near FROM scope)
                             OR ST_DWithin(s.location, (SELECT g FROM pt), :radius_m::float8))))
)

-- fragment: head_query
-- params: head text, glued_head text|null
-- The earlier words of a `query` completion as a product must hold them: head, or, where it glues a size to its
-- unit as typed, glued_head (`1l haf`: `1 l` or `1l`, as search reads `q` both ways).
(CASE WHEN :glued_head::text IS NULL THEN plainto_tsquery('plinqy_simple', :head::text)
      ELSE plainto_tsquery('plinqy_simple', :head::text) || plainto_tsquery('plinqy_simple', :glued_head::text) END)

-- name: suggest
-- params: prefixes text[] (the typed prefix, and where it glues a size to its unit the prefix with it spaced:
--    suggest_typed.name_prefixes; lower case, `ı` and `ß` folded as plinqy_caseless folds names: text.caseless;
--    trimmed, non-empty; in byte order), brand_prefix text (the typed prefix with accents folded, as plinqy_fold
--    folds brands and category names), head text (the typed words before the last one, sizes spaced),
--    glued_head text|null (them with their sizes glued as typed, where they glue one),
--    last_word text (the last typed word, lower case), lon float8|null, lat float8|null, radius_m float8,
--    lim int (completions of each kind), walk_cap int (product names the name walk examines at most, a prefix),
--    probe_cap int (products examined at most per brand, category or word before it counts as absent),
--    narrow_stores int (scopes of at most this many stores are read from their listings),
--    near bool (the radius holds most stores, store_locator.radius_pays: each listing probed is measured against it
--    rather than the radius's stores listed: 1M products, 20 km, 8,112 stores measured ~6 ms of ~8),
--    store_ids uuid[]|null (the stores in scope found already: a bbox's, geo_areas.stores_in_bbox; lon/lat null)
-- One round trip, two plans chosen by one-time filters on the scope's size.
-- WALK (global, or more than narrow_stores stores): each kind walks a text_pattern_ops btree (migration 0008) over
-- [prefix, prefix || U+10FFFF) in byte order and probes the listings of what it finds, so a LIMIT stops early; the
-- range operators (~>=~, ~<~) take a bound parameter where LIKE 'x%' needs a constant. Brands are read by a loose
-- index scan (one probe per brand). The name walk examines at most walk_cap names a prefix, and each brand,
-- category or word at most probe_cap of its products (with 50 brands of a letter and no listing nearby, uncapped
-- probes cost 100+ ms): completions past a cap are missed, never wrong.
-- NARROW (a few stores): the products those stores stock in-stock (ix_store_product_store_in_stock, ~1.1k per
-- store), filtered by prefix: probing catalogue-wide walks there would mostly miss.
-- A brand is one brand whatever its case and accents (plinqy_fold, as the brand filter reads it: migration 0038),
-- found by the folded prefix (`chat` completes `Château Belair`) on ix_product_master_brand_folded_prefix (0039).
-- `query` completes the last typed word ("cordless dr" -> "cordless drill") from words of products in scope
-- that also have the earlier words (the search_term vocabulary in the walk, the products' own words when narrow).
WITH pt AS (
    SELECT CASE WHEN :lon::float8 IS NULL OR :lat::float8 IS NULL THEN NULL
                ELSE ST_SetSRID(ST_MakePoint(:lon::float8, :lat::float8), 4326)::geography END AS g
), scope_ids AS MATERIALIZED (
    -- a CTE of its own: as a subquery of `scope` it was pulled up and its array_agg ran once per use of `ids`
    -- there (three times: 17 of 18 ms at 20 km over 10k stores)
    SELECT CASE WHEN :store_ids::uuid[] IS NOT NULL THEN :store_ids::uuid[]
                WHEN pt.g IS NULL OR :near::bool THEN NULL
                ELSE coalesce((SELECT array_agg(s.id) FROM store s
                               WHERE s.is_active AND ST_DWithin(s.location, pt.g, :radius_m::float8)),
                              '{}'::uuid[]) END AS ids
    FROM pt
), scope AS MATERIALIZED (
    SELECT ids, ids IS NOT NULL AND cardinality(ids) <= :narrow_stores::int AS narrow,
           :near::bool AND (SELECT g FROM pt) IS NOT NULL AS near
    FROM scope_ids
), stocked AS MATERIALIZED (
    -- a LATERAL with LIMIT 1: a probe per product (the planner, misjudging the listing count, otherwise hashed
    -- them against a scan of every product), index-only in ix_product_master_active_labels (migration 0010):
    -- the heap fetch of each product row was ~40 % of a narrow scope's time
    SELECT p.id, p.name, p.brand, p.category_id
    FROM (SELECT DISTINCT sp.product_master_id AS id
          FROM scope CROSS JOIN unnest(scope.ids) AS st(id)
          JOIN store_product sp ON sp.store_id = st.id
          WHERE scope.narrow AND sp.is_active AND sp.quantity > 0) l
    CROSS JOIN LATERAL (
        SELECT p.id, p.name, p.brand, p.category_id FROM product_master p
        WHERE p.id = l.id AND p.is_active LIMIT 1
    ) p
), names AS (
    -- in (plinqy_caseless(name), id) order, as the index and the narrow plan (a duplicate name gave the other
    -- product); caseless (migration 0055), so `KIRMIZI` completes `Kırmızı`
    SELECT 'product' AS kind, w.name AS label, w.id::text AS ref,
           row_number() OVER (ORDER BY plinqy_caseless(w.name) USING ~<~, w.id) AS ord
    FROM (
        -- a walk per prefix, one after another: in byte order, their disjoint ranges come in the names' order
        SELECT p.id, p.name
        FROM unnest(:prefixes::text[]) AS x(prefix)
        CROSS JOIN LATERAL (
            SELECT p.id, p.name FROM product_master p
            WHERE NOT (SELECT narrow FROM scope)
              AND plinqy_caseless(p.name) ~>=~ x.prefix
              AND plinqy_caseless(p.name) ~<~ (x.prefix || chr(1114111))
              AND starts_with(plinqy_caseless(p.name), x.prefix) AND p.is_active
            ORDER BY plinqy_caseless(p.name) USING ~<~, p.id
            LIMIT :walk_cap::int
        ) p
        WHERE {{ in_scope }}
        LIMIT 4 * :lim::int
    ) w
), narrow_names AS (
    SELECT 'product' AS kind, p.name AS label, p.id::text AS ref,
           row_number() OVER (ORDER BY plinqy_caseless(p.name) USING ~<~, p.id) AS ord
    FROM stocked p WHERE plinqy_caseless(p.name) ^@ ANY (:prefixes::text[])
    ORDER BY plinqy_caseless(p.name) USING ~<~, p.id
    LIMIT 4 * :lim::int
), brand_keys AS (
    WITH RECURSIVE k(key, n) AS (
        (SELECT plinqy_fold(p.brand), 1 FROM product_master p
         WHERE NOT (SELECT narrow FROM scope)
           AND plinqy_fold(p.brand) ~>=~ :brand_prefix::text
           AND plinqy_fold(p.brand) ~<~ (:brand_prefix::text || chr(1114111))
         ORDER BY plinqy_fold(p.brand) USING ~<~ LIMIT 1)
        UNION ALL
        SELECT (SELECT plinqy_fold(p.brand) FROM product_master p
                WHERE plinqy_fold(p.brand) ~>~ k.key
                  AND plinqy_fold(p.brand) ~<~ (:brand_prefix::text || chr(1114111))
                ORDER BY plinqy_fold(p.brand) USING ~<~ LIMIT 1), k.n + 1
        FROM k WHERE k.key IS NOT NULL AND k.n < 3 * :lim::int
    )
    SELECT key, n FROM k WHERE key IS NOT NULL AND starts_with(key, :brand_prefix::text)
), brands AS (
    -- the smallest spelling in scope, as the index and the narrow plan (among the key's first probe_cap products)
    SELECT 'brand' AS kind, b.brand AS label, b.brand AS ref, row_number() OVER (ORDER BY k.n) AS ord
    FROM brand_keys k
    CROSS JOIN LATERAL (
        SELECT min(p.brand) AS brand
        FROM (SELECT p.id, p.brand FROM product_master p
              WHERE plinqy_fold(p.brand) = k.key AND p.is_active LIMIT :probe_cap::int) p
        WHERE {{ in_scope }}
    ) b
    WHERE b.brand IS NOT NULL
    LIMIT :lim::int
), narrow_brands AS (
    SELECT 'brand' AS kind, min(b.brand) AS label, min(b.brand) AS ref,
           row_number() OVER (ORDER BY b.key USING ~<~) AS ord
    -- each spelling folded once (OFFSET 0 keeps the filter out of the DISTINCT: folding each of 4.4k stocked
    -- products cost ~2.4 ms)
    FROM (SELECT s.brand, plinqy_fold(s.brand) AS key FROM (SELECT DISTINCT p.brand FROM stocked p OFFSET 0) s) b
    WHERE starts_with(b.key, :brand_prefix::text)
    GROUP BY b.key
    ORDER BY b.key USING ~<~
    LIMIT :lim::int
), stocked_categories AS (
    -- the categories of the stocked products and all their ancestors
    WITH RECURSIVE up(id) AS (
        SELECT DISTINCT category_id FROM stocked WHERE category_id IS NOT NULL
        UNION
        SELECT c.parent_id FROM category c JOIN up ON c.id = up.id WHERE c.parent_id IS NOT NULL
    )
    SELECT id FROM up
), categories AS (
    -- matched and ordered as folded (plinqy_fold), as brands: `éle` completes `Electronics` (it completed none)
    SELECT 'category' AS kind, c.name AS label, c.id::text AS ref,
           row_number() OVER (ORDER BY plinqy_fold(c.name) COLLATE "C", c.id) AS ord
    FROM category c
    WHERE starts_with(plinqy_fold(c.name), :brand_prefix::text)
      AND CASE WHEN (SELECT narrow FROM scope) THEN c.id IN (SELECT id FROM stocked_categories)
               ELSE EXISTS (
                   WITH RECURSIVE sub(id) AS (
                       SELECT c.id
                       UNION
                       SELECT k.id FROM category k JOIN sub ON k.parent_id = sub.id
                   )
                   SELECT 1
                   FROM (SELECT p.id FROM product_master p
                         WHERE p.category_id IN (SELECT id FROM sub) AND p.is_active LIMIT :probe_cap::int) p
                   WHERE {{ in_scope }}
               ) END
    ORDER BY plinqy_fold(c.name) COLLATE "C", c.id
    LIMIT :lim::int
), terms AS (
    -- source: the name of the product in scope found first, which spells the word (suggest_spelling.py)
    SELECT 'query' AS kind, btrim(:head::text || ' ' || t.term) AS label, NULL::text AS ref,
           row_number() OVER () AS ord, s.name AS source
    FROM (
        SELECT DISTINCT ON (t.term) t.term
        FROM search_term t
        WHERE NOT (SELECT narrow FROM scope) AND length(:last_word::text) >= 2
          AND t.term ~>=~ :last_word::text AND t.term ~<~ (:last_word::text || chr(1114111))
        ORDER BY t.term USING ~<~
        LIMIT 2 * :lim::int
    ) t
    CROSS JOIN LATERAL (
        SELECT p.name
        FROM (SELECT p.id, p.name FROM product_master p
              WHERE p.search_tsv @@ ({{ head_query }} && to_tsquery('plinqy_simple', quote_literal(t.term)))
                AND p.is_active LIMIT :probe_cap::int) p
        WHERE {{ in_scope }}
        LIMIT 1
    ) s
    LIMIT :lim::int
), narrow_terms AS (
    SELECT 'query' AS kind, btrim(:head::text || ' ' || w.term) AS label, NULL::text AS ref,
           row_number() OVER (ORDER BY w.term USING ~<~) AS ord, w.source
    FROM (
        SELECT c.term, min(c.name COLLATE "C") AS source  -- the name that spells the word (suggest_spelling.py)
        FROM (
            SELECT p.id, p.name, w AS term
            FROM stocked p, search_terms_of(p.name, p.brand) w
            WHERE length(:last_word::text) >= 2 AND starts_with(w, :last_word::text)
            OFFSET 0  -- a fence: the product rows are read for these candidates only
        ) c
        WHERE (SELECT m.search_tsv @@ ({{ head_query }}
                                       && to_tsquery('plinqy_simple', quote_literal(:last_word::text) || ':*'))
               FROM product_master m WHERE m.id = c.id)
        GROUP BY c.term
    ) w
    ORDER BY w.term USING ~<~
    LIMIT :lim::int
)
SELECT kind, label, ref, ord, NULL::text AS source FROM categories
UNION ALL SELECT kind, label, ref, ord, NULL FROM brands
UNION ALL SELECT kind, label, ref, ord, NULL FROM narrow_brands
UNION ALL SELECT kind, label, ref, ord, NULL FROM names
UNION ALL SELECT kind, label, ref, ord, NULL FROM narrow_names
UNION ALL SELECT kind, label, ref, ord, source FROM terms
UNION ALL SELECT kind, label, ref, ord, source FROM narrow_terms;

-- name: suggest_stocked
-- params: lon float8|null, lat float8|null, radius_m float8, narrow_stores int,
--    since timestamptz (the API's in-memory labels may miss products stamped after this),
--    store_ids uuid[]|null (the stores in scope found already: a bbox's; else the radius's)
-- Suggestions from the in-memory labels (suggest_memory.py), step 1: whether the scope is narrow (at most
-- narrow_stores active stores), and if so the products they stock in stock, packed 16 bytes each (one per
-- listing, index-only in ix_store_product_store_in_stock), with the labels of those stamped after `since`. The
-- `suggest` statement's narrow plan read the label of every one of them (3.5k index probes at 0.5 km, two
-- stores: ~25 ms of 35) and lower-cased and split every name (~45 ms for a word completion).
WITH scope AS MATERIALIZED (
    SELECT coalesce(:store_ids::uuid[], array_agg(s.id), '{}'::uuid[]) AS ids
    FROM store s
    WHERE :store_ids::uuid[] IS NULL AND s.is_active
      AND ST_DWithin(s.location, ST_SetSRID(ST_MakePoint(:lon::float8, :lat::float8), 4326)::geography,
                     :radius_m::float8)
), stocked AS MATERIALIZED (
    SELECT sp.product_master_id AS id
    FROM scope CROSS JOIN unnest(scope.ids) AS st(id)
    JOIN store_product sp ON sp.store_id = st.id
    WHERE cardinality(scope.ids) <= :narrow_stores::int AND sp.is_active AND sp.quantity > 0
), changed AS (
    -- lower_name: the name as completions compare it (plinqy_caseless)
    SELECT p.id, plinqy_caseless(p.name) AS lower_name, p.category_id, p.brand, lower(p.brand) AS lower_brand,
           p.is_active
    FROM product_master p
    WHERE p.updated_at > :since::timestamptz AND p.id IN (SELECT id FROM stocked)
)
SELECT (SELECT cardinality(ids) <= :narrow_stores::int FROM scope) AS narrow,
       (SELECT coalesce(string_agg(uuid_send(id), ''::bytea), ''::bytea) FROM stocked) AS packed_ids,
       c.*
FROM (SELECT array_agg(id) AS ids, array_agg(lower_name) AS lower_names, array_agg(category_id) AS categories,
             array_agg(brand) AS brands, array_agg(lower_brand) AS lower_brands, array_agg(is_active) AS actives
      FROM changed) c;

-- name: suggest_details
-- params: name_ids uuid[] (the product completions, in order), term_ids uuid[] (stocked products whose lower-cased
--    name or brand holds the last word), head text, glued_head text|null (as `suggest` reads them), last_word text
--    (at least two letters), lim int
-- Suggestions from the in-memory labels, step 2: the names of the product completions, and the `query`
-- completions of the last word among term_ids, as `suggest`'s narrow plan finds them (the words of the product's
-- name and brand that start with it, where the product also has the earlier words).
WITH names AS (
    SELECT 'product' AS kind, p.name AS label, p.id::text AS ref, n.ord
    FROM unnest(:name_ids::uuid[]) WITH ORDINALITY AS n(id, ord)
    JOIN product_master p ON p.id = n.id
), terms AS (
    SELECT 'query' AS kind, btrim(:head::text || ' ' || w.term) AS label, NULL::text AS ref,
           row_number() OVER (ORDER BY w.term USING ~<~) AS ord, w.source
    FROM (
        SELECT w AS term, min(p.name COLLATE "C") AS source  -- the name that spells the word (suggest_spelling.py)
        FROM product_master p, search_terms_of(p.name, p.brand) w
        WHERE p.id = ANY(:term_ids::uuid[]) AND starts_with(w, :last_word::text)
          -- a CASE: the planner folds the constant tsquery, and an empty last word ('':*) is a syntax error
          AND p.search_tsv @@ CASE WHEN length(:last_word::text) >= 2
                                   THEN {{ head_query }}
                                        && to_tsquery('plinqy_simple', quote_literal(:last_word::text) || ':*') END
        GROUP BY w
    ) w
    ORDER BY w.term USING ~<~
    LIMIT :lim::int
)
SELECT kind, label, ref, ord, NULL::text AS source FROM names
UNION ALL SELECT kind, label, ref, ord, source FROM terms;

-- fragment: index_rows
-- params: none
-- The suggestion index's products (suggest_index.py): the active ones numbered from 0 in the order of the name
-- completions (plinqy_caseless(name) in byte order, then id), so a prefix's names are a range of rows. A CTE.
index_rows AS MATERIALIZED (
    SELECT (row_number() OVER (ORDER BY plinqy_caseless(p.name) COLLATE "C", p.id) - 1)::int AS r,
           p.id, p.name, p.brand, p.category_id
    FROM product_master p
    WHERE p.is_active
)

-- name: index_products
-- params: none
-- The index's products in row order: their ids packed 16 bytes each, names and caseless names; the highest
-- stamp of every product (active or not: the look-back when the write horizon is unknown) and the category tree
-- (names also folded, plinqy_fold, as category completions match them).
WITH {{ index_rows }}
SELECT (SELECT coalesce(string_agg(uuid_send(id), ''::bytea ORDER BY r), ''::bytea) FROM index_rows) AS packed_ids,
       (SELECT array_agg(name ORDER BY r) FROM index_rows) AS names,
       (SELECT array_agg(plinqy_caseless(name) ORDER BY r) FROM index_rows) AS lower_names,
       (SELECT max(updated_at) FROM product_master) AS watermark,
       (SELECT count(*) FROM category) AS category_count,
       (SELECT max(updated_at) FROM category) AS category_newest,
       (SELECT array_agg(id ORDER BY id) FROM category) AS category_ids,
       (SELECT array_agg(parent_id ORDER BY id) FROM category) AS category_parents,
       (SELECT array_agg(name ORDER BY id) FROM category) AS category_names,
       (SELECT array_agg(plinqy_fold(name) ORDER BY id) FROM category) AS category_folded_names;

-- name: index_groups
-- params: none
-- The index's groups of rows, packed int4 each, in byte order of their key: `brand` (plinqy_fold(brand), then the
-- spelling), `word` (the words search_terms_of gives a product, as the narrow plan's `query` completions read
-- them), `category` (a product's own category; the index adds the subtrees) and `lexeme` (every lexeme of the
-- product's search_tsv: the narrow plan's test of the earlier words of a `query` completion). Read through a
-- cursor in this order (Python's str order): the index appends them as they come. Words and lexemes are grouped
-- in byte order (COLLATE "C", the same groups): sorting 2.4M lexemes by the database's collation took ~1 s of a
-- ~5 s build at 100k products.
WITH {{ index_rows }}
SELECT g.* FROM (
SELECT 'brand' AS kind, plinqy_fold(brand) AS key, brand AS spelling, NULL::bigint AS category_id,
       string_agg(int4send(r), ''::bytea ORDER BY r) AS packed_rows
FROM index_rows WHERE brand IS NOT NULL
GROUP BY plinqy_fold(brand), brand
UNION ALL
SELECT 'word', w COLLATE "C", NULL, NULL, string_agg(int4send(r), ''::bytea ORDER BY r)
FROM index_rows, search_terms_of(name, brand) w
GROUP BY w COLLATE "C"
UNION ALL
SELECT 'category', NULL, NULL, category_id, string_agg(int4send(r), ''::bytea ORDER BY r)
FROM index_rows WHERE category_id IS NOT NULL
GROUP BY category_id
UNION ALL
SELECT 'lexeme', l COLLATE "C", NULL, NULL, string_agg(int4send(i.r), ''::bytea ORDER BY i.r)
FROM index_rows i JOIN product_master p ON p.id = i.id, unnest(tsvector_to_array(p.search_tsv)) l
GROUP BY l COLLATE "C"
) g
ORDER BY g.kind, g.key COLLATE "C", g.spelling COLLATE "C";
