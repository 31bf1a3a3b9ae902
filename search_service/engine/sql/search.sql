-- Search engine SQL: named blocks (search_service.db.sql, `statement("engine/search", name)`). Every statement
-- runs with the engine's settings (`plan_cache_mode = force_custom_plan` among them), so `:name IS NULL OR …`
-- guards fold away at plan time and each query is planned for its own selectivity.
-- The stores in scope reach a statement as a uuid[]. Where they drive an index scan (rank_exact,
-- listed_products: `listing_filter_driving`) the statement compares with `= ANY(:store_ids)`; where they only
-- filter the listings of a product already found (the per-row probes of filter_ranked, rank_hnsw, rank_keyword
-- and hydrate: `listing_filter`, `store_scope_probe`) it uses `IN (SELECT unnest(:store_ids))`, a hash built once
-- per statement: the planner costs an `= ANY` of a constant array element by element, and with hundreds of
-- stores (20-100 km) planning took 1-4 ms a statement (hydrate with 977 stores: 3.6 ms, against 0.4 ms
-- without); as a driver, the IN form was planned as a hash of every listing (listed_products at 2 km:
-- 3 -> 120 ms), so those keep `= ANY`.
-- The filters shared by the statements are the fragments below: a statement that includes one takes its
-- parameters. A new listing-level filter goes in `listing_terms`, a new product-level one in `product_filter`.

-- fragment: store_scope_probe
-- params: store_ids uuid[]|null (null: any active store)
(:store_ids::uuid[] IS NULL OR sp.store_id IN (SELECT unnest(:store_ids::uuid[])))

-- fragment: store_scope_driving
-- params: store_ids uuid[]|null (null: any active store)
(:store_ids::uuid[] IS NULL OR sp.store_id = ANY(:store_ids::uuid[]))

-- fragment: listing_terms
-- params: in_stock bool, min_price numeric|null, max_price numeric|null
-- The listing's own terms (alias sp = store_product).
sp.is_active
AND (NOT :in_stock::bool OR sp.quantity > 0)
AND (:min_price::numeric IS NULL OR sp.price >= :min_price::numeric)
AND (:max_price::numeric IS NULL OR sp.price <= :max_price::numeric)

-- fragment: any_active_store
-- params: store_ids uuid[]|null
-- A global search (no stores in scope) still only counts listings of active stores.
(:store_ids::uuid[] IS NOT NULL OR EXISTS (SELECT 1 FROM store s WHERE s.id = sp.store_id AND s.is_active))

-- fragment: listing_filter
-- params: none
-- A qualifying listing, probed per product found: the stores in scope as a hash.
{{ store_scope_probe }}
AND {{ listing_terms }}
AND {{ any_active_store }}

-- fragment: store_scope_near
-- params: store_ids uuid[]|null (null: any active store, or the radius below), near_lon float8|null,
--         near_lat float8|null, near_radius_m float8|null (set, with store_ids null: the scope is the radius)
-- The stores in scope for a per-listing probe: the list as a hash, or, for a radius holding most stores
-- (engine/store_locator.py: at 20 km over 10k stores the 8,100 ids cost ~2 ms to send and ~2 ms to hash per
-- statement), the radius itself measured per listing probed, with search_context's own test.
{{ store_scope_probe }}
AND (:near_radius_m::float8 IS NULL OR (
    SELECT s.is_active AND ST_DWithin(
        s.location, ST_SetSRID(ST_MakePoint(:near_lon::float8, :near_lat::float8), 4326)::geography,
        :near_radius_m::float8)
    FROM store s WHERE s.id = sp.store_id
))

-- fragment: listing_filter_near
-- params: none
-- listing_filter, its stores as store_scope_near says.
{{ store_scope_near }}
AND {{ listing_terms }}
AND (:near_radius_m::float8 IS NOT NULL OR {{ any_active_store }})

-- fragment: listing_filter_driving
-- params: none
-- A qualifying listing, where the stores in scope drive an index scan: the stores as index keys.
{{ store_scope_driving }}
AND {{ listing_terms }}
AND {{ any_active_store }}

-- fragment: negated_operand
-- params: none
-- A regexp_matches pattern over a tsquery's text: each lexeme (skipped whole, a `!` in it is none), and each
-- operand a run of NOTs reaches (m[2], the run m[1]); an odd run excludes it (websearch reads `--oat` as !!'oat':
-- oat wanted, as engine/text.py negated_operands does).
'''(?:[^'']|'''')*''|(!+)(''(?:[^'']|'''')*''|\((?:[^()'']|''(?:[^'']|'''')*'')*\))'

-- fragment: excluded_words
-- params: excluding text[]|null (q, and q with its sizes spaced, where q excludes an operand: engine/text.py
--         may_exclude; null: none)
-- What `q`'s `-` excludes (`milk -oat`: 'oat'; `-"whole milk"`: 'whole' <-> 'milk'; `-500ml`: '500ml' and
-- '500' <-> 'ml'), in either config, or-ed, as keyword_query's `excluded` reads it; null for a query that needs no
-- word (`-oat`, `milk or -oat`) or that excludes none. A scalar subquery: an InitPlan, parsed once a statement.
(SELECT tsquery_or_agg(m[2]::tsquery)
 FROM unnest(:excluding::text[]) AS x(q)
 CROSS JOIN LATERAL (SELECT websearch_to_tsquery('plinqy_simple', x.q) AS s,
                            websearch_to_tsquery('plinqy_english', x.q) AS e) AS t
 CROSS JOIN LATERAL regexp_matches(
     concat(CASE WHEN querytree(t.s) <> 'T' THEN t.s::text END, ' ',
            CASE WHEN querytree(t.e) <> 'T' THEN t.e::text END),
     {{ negated_operand }}, 'g') AS m
 WHERE length(m[1]) % 2 = 1)

-- fragment: product_filter
-- params: category_ids bigint[]|null (the category subtree), exclude_id uuid|null (similar(): the product
--         itself), brand text|null (exact match but for case and accents: plinqy_fold, migration 0038)
--         (+ excluded_words: a product holding what `q` excludes qualifies on no side; with `excluding` null the
--         test folds away)
-- A qualifying product (alias p = product_master).
p.is_active
AND (:category_ids::bigint[] IS NULL OR p.category_id = ANY(:category_ids::bigint[]))
AND (:exclude_id::uuid IS NULL OR p.id <> :exclude_id::uuid)
AND (:brand::text IS NULL OR plinqy_fold(p.brand) = plinqy_fold(:brand::text))
AND (:excluding::text[] IS NULL OR NOT coalesce(p.search_tsv @@ {{ excluded_words }}, false))

-- fragment: sellable_listing
-- params: none
-- What the candidate sets hold (alias sp): a listing in stock, as the partial indexes on store_product define it.
sp.is_active AND sp.quantity > 0

-- fragment: listing_probe
-- params: none
-- Whether product `cand.id` has a qualifying listing in scope: a scalar subquery (LIMIT 1), one probe of
-- ix_store_product_in_stock per product. In stock, it says so in that partial index's own terms
-- (`sellable_listing`), so that a generic plan probes the index too: with `NOT :in_stock OR …` alone a generic
-- plan read each listing's heap row (rank_keyword, a brand's 400 matches: 7.7 against 3.2 ms).
CASE WHEN :in_stock::bool THEN (
    SELECT true FROM store_product sp
    WHERE sp.product_master_id = cand.id AND {{ sellable_listing }} AND {{ listing_filter_near }}
    LIMIT 1)
ELSE (
    SELECT true FROM store_product sp
    WHERE sp.product_master_id = cand.id AND {{ listing_filter_near }}
    LIMIT 1) END

-- fragment: changes_since
-- params: since_seq bigint|null (the candidate sets' snapshot; null: none held, nothing read),
--    pending bigint[] (the transactions in progress then), max_changes int (past it the sets are rebuilt)
-- The in-memory candidate sets' changes (engine/candidates.py, migration 0012): the listings logged since the
-- sets' snapshot (numbered past the highest seen then, or written by a transaction still running then), once
-- each. A CTE; `listing_changes_columns` reads it. The function (migration 0021) plans its read of the log for
-- these values on every call: planned without them (a generic plan), `seq > … OR xid = ANY(…)` scans the whole log.
changed AS MATERIALIZED (
    SELECT f.store_id, f.product_master_id
    FROM listing_changes_since(:since_seq::bigint, :pending::bigint[], :max_changes::int) AS f
)

-- fragment: snapshot_columns
-- params: none
-- The change log's state in this statement's snapshot: the highest number visible (or pruned), the transaction
-- horizon and the transactions in progress.
coalesce(greatest((SELECT max(seq) FROM listing_change), (SELECT seq FROM listing_change_pruned)), 0) AS change_seq,
pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS snap_xmax,
ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(pg_current_snapshot()) AS x) AS snap_xip

-- fragment: listing_changes_columns
-- params: none
-- The changed pairs with their current state, packed 33 bytes each (store id, product id, sellable), their
-- count (max_changes + 1: too many), the highest number pruned, and `snapshot_columns`.
(SELECT string_agg(
            uuid_send(ch.store_id) || uuid_send(ch.product_master_id)
            || CASE WHEN EXISTS (
                   SELECT 1 FROM store_product sp
                   WHERE sp.store_id = ch.store_id AND sp.product_master_id = ch.product_master_id
                     AND {{ sellable_listing }}
               ) THEN '\x01'::bytea ELSE '\x00'::bytea END, ''::bytea)
 FROM changed ch) AS change_pairs,
(SELECT count(*) FROM changed) AS change_count,
coalesce((SELECT seq FROM listing_change_pruned), 0) AS change_pruned,
{{ snapshot_columns }}

-- fragment: search_point
-- params: lon float8|null, lat float8|null
-- The search's point as a geography (null without lat/lon). A CTE.
pt AS (
    SELECT CASE WHEN :lon::float8 IS NULL OR :lat::float8 IS NULL THEN NULL
                ELSE ST_SetSRID(ST_MakePoint(:lon::float8, :lat::float8), 4326)::geography END AS g
)

-- fragment: category_subtree
-- params: category_id bigint|null
-- The category and its descendants. A CTE; `category_ids_column` reads it.
subtree AS (
    WITH RECURSIVE t(id) AS (
        SELECT c.id FROM category c WHERE c.id = :category_id::bigint
        UNION
        SELECT c.id FROM category c JOIN t ON c.parent_id = t.id
    )
    SELECT id FROM t
)

-- fragment: category_ids_column
-- params: category_id bigint|null
CASE WHEN :category_id::bigint IS NULL THEN NULL
     ELSE coalesce((SELECT array_agg(id) FROM subtree), '{}'::bigint[]) END AS category_ids

-- name: search_context
-- params: radius_m float8, store_version bigint|null (the API's in-memory stores' version; null: none held),
--         edge_store_ids uuid[]|null (the stores the API could not place inside or outside the radius)
--         (+ search_point, category_subtree, changes_since)
-- Round trip 1: active stores in the radius and the category subtree, and the candidate sets' changes (one indexed
-- read of the change log, usually empty). Where the API placed the stores in memory (engine/store_locator.py) and
-- the stores' version in this snapshot is its copy's, only the stores near the radius's edge are measured here and
-- `store_ids` lists those inside; otherwise (`stores_stale`) every active store in the radius (GiST on
-- store.location). Each branch runs only when its one-time condition holds; an edge store is a probe of the
-- primary key (as a join, the planner scanned every store in the radius's box for the few ids). The catalogue
-- statistics the strategy choice needs come from search_service/stats.py, read every 30 s.
WITH {{ changes_since }}, {{ search_point }}, stale AS (
    SELECT :store_version::bigint IS NULL
        OR :store_version::bigint IS DISTINCT FROM (SELECT v.version FROM store_geo_version v) AS yes
), near AS (
    SELECT s.id
    FROM store s, pt
    WHERE (SELECT yes FROM stale) AND pt.g IS NOT NULL AND s.is_active
      AND ST_DWithin(s.location, pt.g, :radius_m::float8)
    UNION ALL
    SELECT e.id
    FROM unnest(:edge_store_ids::uuid[]) AS e(id)
    WHERE NOT (SELECT yes FROM stale)
      AND (SELECT s.is_active AND ST_DWithin(s.location, pt.g, :radius_m::float8) FROM store s, pt WHERE s.id = e.id)
), {{ category_subtree }}
SELECT
    (SELECT yes FROM stale) AS stores_stale,
    (SELECT array_agg(id) FROM near) AS store_ids,
    {{ category_ids_column }},
    {{ listing_changes_columns }};

-- name: store_places
-- params: none
-- engine/store_locator.py's copy: the stores' version and every active store's place, in one snapshot.
SELECT (SELECT v.version FROM store_geo_version v) AS version,
       coalesce(array_agg(s.id ORDER BY s.id), '{}') AS ids,
       coalesce(array_agg(ST_X(s.location::geometry) ORDER BY s.id), '{}') AS lons,
       coalesce(array_agg(ST_Y(s.location::geometry) ORDER BY s.id), '{}') AS lats
FROM store s
WHERE s.is_active;

-- name: store_places_version
-- params: none
SELECT v.version FROM store_geo_version v;

-- name: listing_changes
-- params: none (+ changes_since)
-- The candidate sets' changes alone: the API's refresh, every second (search_context reads them per search).
WITH {{ changes_since }}
SELECT {{ listing_changes_columns }};

-- name: prune_listing_changes
-- params: none
-- The API's refresh, every 10 minutes a process: the change log's rows older than an hour go (a process reads it
-- every second; one that had not read them yet rebuilds its sets: listing_change_pruned).
SELECT prune_listing_changes(interval '1 hour');

-- name: candidate_sets_state
-- params: none
-- A rebuild of the candidate sets: the change log's state, in the snapshot in_stock_by_store then reads.
SELECT {{ snapshot_columns }};

-- name: in_stock_by_store
-- params: none
-- A rebuild of the candidate sets: every sellable listing's product, packed 16 bytes each, a row a store (an
-- index-only scan of ix_store_product_store_in_stock, in store order), and the store's geohash (engine/store_blocks.py
-- orders the stores by it).
SELECT sp.store_id, string_agg(uuid_send(sp.product_master_id), ''::bytea) AS packed_ids,
       (SELECT ST_GeoHash(s.location::geometry, 12) FROM store s WHERE s.id = sp.store_id) AS place
FROM store_product sp
WHERE {{ sellable_listing }}
GROUP BY sp.store_id;

-- name: rank_exact
-- params: query_vector vector, top_n int (+ listing_filter_driving, product_filter)
-- EXACT plan: the candidate products are the listings of the stores in the radius (unique index
-- (store_id, product_master_id)); every candidate's distance is computed and sorted (top-N heap sort).
-- cosine_distance() is the function behind `<=>` but is not an index-orderable operator, so the HNSW
-- index can never serve this ORDER BY: the result is the true top-N. `total` counts all candidates.
WITH cand AS MATERIALIZED (
    SELECT DISTINCT sp.product_master_id AS id
    FROM store_product sp
    WHERE {{ listing_filter_driving }}
), scored AS MATERIALIZED (
    -- materialised as (id, distance) pairs: the 1.5 kB vectors never reach a sort or a tuplestore
    SELECT p.id, cosine_distance(p.ai_vector, :query_vector::vector) AS distance
    FROM cand JOIN product_master p ON p.id = cand.id
    WHERE {{ product_filter }} AND p.ai_vector IS NOT NULL
)
SELECT id, distance, (SELECT count(*) FROM scored) AS total
FROM scored
ORDER BY distance, id
LIMIT :top_n::int;

-- name: rank_hnsw
-- params: query_vector vector, fetch_n int (+ listing_filter, product_filter)
-- HNSW plan: an iterative index scan (hnsw.iterative_scan set by the caller) whose filter probes the
-- listings of each visited product (ix_store_product_in_stock: product_master_id, store_id INCLUDE price).
-- The scan over-fetches fetch_n rows, re-sorted here by exact distance; `fetched` < fetch_n means the
-- scan ran out (max_scan_tuples) and the caller falls back to the exact plan.
WITH hits AS MATERIALIZED (
    SELECT p.id, p.ai_vector <=> :query_vector::vector AS distance
    FROM product_master p
    WHERE {{ product_filter }}
      AND EXISTS (
          SELECT 1 FROM store_product sp
          WHERE sp.product_master_id = p.id
            AND {{ listing_filter }}
      )
    ORDER BY p.ai_vector <=> :query_vector::vector
    LIMIT :fetch_n::int
)
SELECT id, distance, count(*) OVER () AS fetched
FROM hits
ORDER BY distance, id;

-- name: filter_ranked
-- params: query_vector vector, ids uuid[] (the next slice of the in-memory ranking, best first),
--         ids_listed bool (every id has a qualifying listing in scope, as of this search: no probe for them),
--         changed_since timestamptz|null (the in-memory copy's watermark; null: no changed-vector check)
--         (+ listing_filter_near, product_filter)
-- EXACT SCAN and EXACT GATHER plans: the API ranked the vectors in memory (search_service/vectors.py; every
-- vector, or the listed_products ids); this keeps the ids of the next slice of that ranking that pass the
-- filters, plus every qualifying product whose vector changed after the copy was taken (index-only range
-- scan on ai_embedded_at), with PostgreSQL's own distance. Per id: a listing probe of
-- ix_store_product_in_stock, and a primary-key probe for the ids that pass it (~12 µs with the client's
-- share). The probe is a scalar subquery so that it stays one: as an EXISTS the planner hashed every
-- qualifying listing in the radius from ~700 ids on (26k listings at 2 km, 12-20 ms against ~7). A slice that
-- large costs more than the gather plan, which the scan hands over to. The probe runs before the product row
-- is read (`listed`, materialised), so an id no store in scope sells costs no heap fetch: the form that read the
-- row first took 6-7 % longer a call (benchmarks/replay.py over 1,180 calls at 0.5 km to global, identical rows).
-- The gather plan's ids come from the stores' listings in scope (the candidate sets, current as of this search,
-- or listed_products), so `ids_listed` skips their probes (~a third of the statement); a product whose vector
-- changed is probed all the same.
WITH listed AS MATERIALIZED (
    SELECT cand.id FROM unnest(:ids::uuid[]) AS cand(id) WHERE :ids_listed::bool OR {{ listing_probe }}
    UNION
    SELECT cand.id FROM product_master cand
    WHERE cand.ai_embedded_at > :changed_since::timestamptz AND {{ listing_probe }}
)
SELECT p.id, cosine_distance(p.ai_vector, :query_vector::vector) AS distance
FROM listed JOIN product_master p ON p.id = listed.id
WHERE {{ product_filter }} AND p.ai_vector IS NOT NULL;

-- name: listed_products
-- params: none (beyond listing_filter_driving's)
-- EXACT GATHER plan: the products with a qualifying listing at the stores in scope (index-only scan of
-- ix_store_product_store_in_stock), packed as 16 bytes each in one bytea: a uuid[] of thousands costs more
-- to decode in the client than to compute. One per listing, repeats included: the API drops them while it
-- sorts the ids anyway, where a DISTINCT sorted 26k bytea values here (2 / 5 km: 12 -> 5 / 23 -> 8 ms).
-- No product row is read: the API scores these ids in memory, and filter_ranked checks the product-level
-- filters (active, category, has a vector) on the best-scored ones, slice by slice, as in the exact scan.
SELECT coalesce(string_agg(uuid_send(sp.product_master_id), ''::bytea), ''::bytea) AS packed_ids
FROM store_product sp
WHERE {{ listing_filter_driving }};

-- name: listed_among
-- params: ids uuid[] (the best of the in-memory ranking of every vector, best first),
--         depth int (how many to keep at most) (+ listing_filter_near)
-- Facet sets at wide radii (facet_vectors.py): the first `depth` of `ids` with a qualifying listing in scope,
-- in order. A probe of ix_store_product_in_stock per id (a scalar subquery, as in filter_ranked), where
-- listed_products gathered every listing of hundreds of stores (20 km: 411k listings, ~75 ms). A radius holding
-- most stores is probed per listing rather than sent as its stores' ids (1M products, 20 km: 7,836 ids).
SELECT coalesce(array_agg(l.id ORDER BY l.ord), '{}'::uuid[]) AS ids
FROM (
    SELECT u.id, u.ord FROM unnest(:ids::uuid[]) WITH ORDINALITY AS u(id, ord)
    WHERE (
          SELECT true FROM store_product sp
          WHERE sp.product_master_id = u.id
            AND {{ listing_filter_near }}
          LIMIT 1
      )
    ORDER BY u.ord
    LIMIT :depth::int
) l;

-- name: products_passing
-- params: none (+ product_filter)
-- A facet set's product filters without facets (engine/facet_vectors.py): the products that pass them, packed 16
-- bytes each, which the in-memory set is ranked among (a brand at 100k products: ~1,900 ids, ~5 ms; ranked in
-- the engine's gather plan, each probed: 55-110 ms).
SELECT coalesce(string_agg(uuid_send(p.id), ''::bytea), ''::bytea) AS packed_ids
FROM product_master p
WHERE {{ product_filter }};

-- name: product_similarity
-- params: ids uuid[], query_vector vector
-- A facet set's best (engine/facet_vectors.py), scored as filter_ranked scores the plain search's: the API's copy
-- holds float16 rows, whose similarities may differ from these by up to ranking.FLOAT16_ERROR. `= ANY`, not a join
-- to the ids' unnest: with statistics taken before the vectors were written (null_frac 1: a seed, an import, then
-- the worker) the join planned a products x ids nested loop past ~480 ids (150 ms at 5k products, a 503 at 100k).
SELECT p.id, 1.0 - cosine_distance(p.ai_vector, :query_vector::vector) AS similarity
FROM product_master p
WHERE p.id = ANY(:ids::uuid[]) AND p.ai_vector IS NOT NULL;

-- fragment: keyword_query
-- params: q text, q_sized text|null (q with its sizes glued to a unit spaced, `1l` -> `1 l`: engine/text.py
--    spaced_sizes; null: q holds none), q_head text|null (the words before the last), q_last text|null (the last
--    word, 3+ letters or any after a word, folded: text.last_word_prefix; null: no prefix), q_words text[] (q's
--    words in order, folded: text.query_words; empty: no compounds)
-- The query's tsqueries, its trimmed text and that folded (lower case, accents as unaccent folds them), computed
-- once (read through InitPlans: a generic plan would otherwise parse them again for every row it scores), and its
-- exact name/GTIN matches. Eleven CTEs. `prefix`: the words before the last as typed (either config) and the last as
-- the prefix, all in a name or brand (weights A and B: the vocabulary's words, not a description's), or-ed with
-- the joined prefix (`tooth pa`: toothpa*, where a vocabulary word starts with it), null without one; a word
-- before the last that the prefix starts satisfies no prefix (`prefix_holds`). `compound`: the query with two
-- neighbouring words joined where the vocabulary holds the join (`tooth paste`:
-- toothpaste), or an unknown word split into two vocabulary words as a phrase (`oatmilk`: oat <-> milk, at most two
-- splits, the most even first): each join with the other words, each word read as typed or as its splits, and with
-- any split every word so read (`word_readings`), or-ed; null without any (~2 index probes a split point and one a
-- pair). A GTIN is
-- compared in its 14-digit form (ix_product_master_gtin14): the ingest path stores that form, a shopper types the
-- 8, 12 or 13 digits printed on the pack, spaced or not. A query with a glued size is q's words or q_sized's (the
-- parser keeps `1l` one token, which matched only names that glue it too, never `1 L`; q_sized holds each size as
-- a phrase, `"1.5 l"`, read with a decimal point and with a comma: the parser splits `1,5` into `1` and `5`), in
-- both configs, and an exact name is either.
compound_parts AS MATERIALIZED (
    SELECT w.i AS lo, w.i + 1 AS hi, quote_literal(w.word || n.word)::tsquery AS q
    FROM unnest(:q_words::text[]) WITH ORDINALITY AS w(word, i)
    JOIN unnest(:q_words::text[]) WITH ORDINALITY AS n(word, i) ON n.i = w.i + 1
    WHERE w.word !~ '[0-9]' AND n.word !~ '[0-9]'  -- words of letters (text.query_words)
      AND EXISTS (SELECT 1 FROM search_term t WHERE t.term = w.word || n.word)
    UNION ALL
    SELECT w.i, w.i, s.q
    FROM unnest(:q_words::text[]) WITH ORDINALITY AS w(word, i)
    CROSS JOIN LATERAL (
        -- a part known as typed or by a plural's singular (`oatmilks`: oat, milks -> milk; its english stem, or
        -- -ies as -y): as english stems the phrase matches a name's singular and plural alike (a stop word as typed)
        SELECT CASE WHEN numnode(x.el) > 0 AND numnode(x.er) > 0 THEN x.el <-> x.er
                    ELSE quote_literal(x.l)::tsquery <-> quote_literal(x.r)::tsquery END AS q
        FROM generate_series(3, length(w.word) - 3) AS k
        CROSS JOIN LATERAL (
            SELECT left(w.word, k) AS l, substr(w.word, k + 1) AS r,
                   to_tsquery('plinqy_english', quote_literal(left(w.word, k))) AS el,
                   to_tsquery('plinqy_english', quote_literal(substr(w.word, k + 1))) AS er
        ) AS x
        WHERE EXISTS (SELECT 1 FROM search_term t
                      WHERE t.term = ANY(ARRAY[x.l, regexp_replace(x.l, 'ies$', 'y')]
                                         || tsvector_to_array(to_tsvector('plinqy_english', x.l))))
          AND EXISTS (SELECT 1 FROM search_term t
                      WHERE t.term = ANY(ARRAY[x.r, regexp_replace(x.r, 'ies$', 'y')]
                                         || tsvector_to_array(to_tsvector('plinqy_english', x.r))))
        ORDER BY abs(2 * k - length(w.word)), k
        LIMIT 2
    ) AS s
    WHERE w.word !~ '[0-9]' AND length(w.word) BETWEEN 6 AND 40
      AND NOT EXISTS (SELECT 1 FROM search_term t WHERE t.term = w.word)
), word_readings AS MATERIALIZED (
    -- each word as typed (either config; a stop word none, as the english query leaves it) or its splits: every
    -- word's split applies with the others' (`cookiedough icecream`: each split needed the other word as typed)
    SELECT o.i, tsquery_or_agg(r.q) AS q
    FROM unnest(:q_words::text[]) WITH ORDINALITY AS o(word, i)
    CROSS JOIN LATERAL (
        SELECT plainto_tsquery('plinqy_english', o.word) || plainto_tsquery('plinqy_simple', o.word) AS q
        WHERE numnode(plainto_tsquery('plinqy_english', o.word)) > 0
        UNION ALL
        SELECT c.q FROM compound_parts c WHERE c.lo = o.i AND c.hi = o.i
    ) AS r
    WHERE EXISTS (SELECT 1 FROM compound_parts)
    GROUP BY o.i
), english_typed AS MATERIALIZED (
    -- null where the query needs no word (querytree 'T': only excluded words, `-zq`, or one or-ed, `milk or -zq`):
    -- such a tsquery matches by absence, which no index can find (every product read and tested, each `-zq` again)
    SELECT CASE WHEN querytree(r.q) <> 'T' THEN r.q END AS q
    FROM (SELECT CASE WHEN :q_sized::text IS NULL THEN websearch_to_tsquery('plinqy_english', :q::text)
                      ELSE websearch_to_tsquery('plinqy_english', :q::text)
                           || websearch_to_tsquery('plinqy_english', :q_sized::text)
                           || websearch_to_tsquery('plinqy_english', replace(:q_sized::text, '.', ',')) END AS q) AS r
), simple_typed AS MATERIALIZED (
    SELECT CASE WHEN querytree(r.q) <> 'T' THEN r.q END AS q  -- null for a query that needs no word, as above
    FROM (SELECT CASE WHEN :q_sized::text IS NULL THEN websearch_to_tsquery('plinqy_simple', :q::text)
                      ELSE websearch_to_tsquery('plinqy_simple', :q::text)
                           || websearch_to_tsquery('plinqy_simple', :q_sized::text)
                           || websearch_to_tsquery('plinqy_simple', replace(:q_sized::text, '.', ',')) END AS q) AS r
), exclusions AS MATERIALIZED (
    -- what `-` excludes (`!'milk'`, `!( 'whole' <-> 'milk' )`) in either config, or-ed: typo tolerance corrects the
    -- other words and keeps these out (it read `qorvel -milk` as qorvel & milk), and so do the prefix's and the
    -- compounds' matches (`tooth paste -mint`: toothpaste & !mint)
    SELECT tsquery_or_agg(m[2]::tsquery) AS q
    FROM regexp_matches(concat((SELECT q FROM simple_typed)::text, ' ', (SELECT q FROM english_typed)::text),
                        {{ negated_operand }}, 'g') AS m
    WHERE length(m[1]) % 2 = 1  -- an odd run of NOTs: `--oat` wants oat
), name_words AS MATERIALIZED (
    -- words to be found in a name or brand (each lexeme given weights A and B), in either config: those before the
    -- last (part 1), and those before the two a joined prefix joins (part 2); no row without a prefix
    SELECT h.part, regexp_replace((websearch_to_tsquery('plinqy_english', h.words)
                                   || websearch_to_tsquery('plinqy_simple', h.words))::text,
                                  '(''(?:[^'']|'''')*'')', '\1:' || 'AB', 'g')::tsquery AS q
    FROM (VALUES (1, :q_head::text),
                 (2, array_to_string((:q_words::text[])[1:cardinality(:q_words::text[]) - 2], ' '))) AS h(part, words)
    WHERE :q_last::text IS NOT NULL AND btrim(h.words) <> ''
), prefix_parts AS MATERIALIZED (
    -- the last word as a prefix and the words before it, all in a name or brand: `hand wash` matched Washers by
    -- `hand` in their description; no row without a prefix
    -- (what `-` excludes stays out of its matches: `tooth pa -zq`)
    SELECT coalesce(x.q && !!(SELECT q FROM exclusions), x.q) AS last,
           (SELECT q FROM name_words WHERE part = 1) AS head,
           length(:q_last::text) < 3 AS short,
           to_tsvector('plinqy_english', :q_last::text) = ''::tsvector AS stop_word
    FROM (SELECT to_tsquery('plinqy_simple', quote_literal(:q_last::text) || ':*AB') AS q) AS x
    WHERE :q_last::text IS NOT NULL
), prefix_apart AS MATERIALIZED (
    -- the words typed before the last that its prefix starts (`olive o`: olive), as names hold them: their lexemes
    -- in either config, and the vocabulary's words of the same english stem (olives); prefix_holds leaves them out
    -- of a row for the prefix, which needs a word of its own. One probe of a stem's prefix range, only for these.
    SELECT l FROM unnest(tsvector_to_array(to_tsvector('plinqy_simple', :q_head::text)
                                           || to_tsvector('plinqy_english', :q_head::text))) AS l
    WHERE starts_with(l, :q_last::text)
    UNION
    SELECT t.term FROM unnest(tsvector_to_array(to_tsvector('plinqy_english', :q_head::text))) AS s(stem)
    JOIN search_term t ON t.term ~>=~ s.stem AND t.term ~<~ (s.stem || chr(1114111))
    WHERE starts_with(s.stem, :q_last::text)
      AND tsvector_to_array(to_tsvector('plinqy_english', t.term)) = ARRAY[s.stem]
), joined_prefix AS MATERIALIZED (
    -- the word before the last joined with it as a prefix (`tooth pa`: toothpa*, Toothpaste), with the words before
    -- those two, where a vocabulary word starts with the join (one probe of its prefix range; 4+ letters)
    SELECT coalesce((SELECT q FROM name_words WHERE part = 2) && x.q, x.q) AS q
    FROM (SELECT (:q_words::text[])[cardinality(:q_words::text[]) - 1] || :q_last::text AS word) AS j
    CROSS JOIN LATERAL (SELECT coalesce(y.q && !!(SELECT q FROM exclusions), y.q) AS q
                        FROM (SELECT to_tsquery('plinqy_simple', quote_literal(j.word) || ':*AB') AS q) AS y) AS x
    WHERE (:q_words::text[])[cardinality(:q_words::text[])] = :q_last::text
      AND length(j.word) >= 4 AND j.word !~ '\W|[0-9_]'  -- two words of letters
      AND EXISTS (SELECT 1 FROM search_term t WHERE t.term ~>=~ j.word AND t.term ~<~ (j.word || chr(1114111)))
), tsq AS MATERIALIZED (
    SELECT (SELECT q FROM simple_typed) AS simple,
           -- a last word still being typed that the english config drops (`green t`, `coffee be`, `tea to`: stop
           -- words) is no dropped word: the english reading needs its prefix too (it matched every `green`, 208
           -- products over Green Tea at tier 2)
           CASE WHEN EXISTS (SELECT 1 FROM prefix_parts WHERE stop_word AND numnode(head) > 0)
                THEN (SELECT q FROM english_typed) && (SELECT head && last FROM prefix_parts)
                ELSE (SELECT q FROM english_typed) END AS english,
           btrim(:q::text) AS trimmed, btrim(replace(:q_sized::text, '"', '')) AS sized,
           lower(unaccent(btrim(:q::text))) AS folded,
           lower(unaccent(btrim(replace(:q_sized::text, '"', '')))) AS sized_folded,
           CASE WHEN translate(btrim(:q::text), ' -', '') ~ '^[0-9]{8,14}$'
                THEN lpad(translate(btrim(:q::text), ' -', ''), 14, '0') END AS gtin14,
           (SELECT q FROM exclusions) AS excluded,
           -- 1-2 letters only after a word (text.last_word_prefix), not after `-zq` alone; or the joined prefix
           (SELECT CASE WHEN j.q IS NULL THEN w.q ELSE w.q || j.q END
            FROM (SELECT CASE WHEN head IS NULL THEN last ELSE head && last END AS q FROM prefix_parts
                  WHERE NOT short OR querytree(head) NOT IN ('', 'T')) AS w
            LEFT JOIN joined_prefix j ON true) AS prefix,
           (SELECT q FROM joined_prefix) AS joined_prefix,
           (SELECT last FROM prefix_parts) AS prefix_last,
           (SELECT array_agg(l) FROM prefix_apart) AS prefix_apart,
           (SELECT head FROM prefix_parts) AS prefix_head,
           coalesce((SELECT short AND querytree(head) NOT IN ('', 'T') FROM prefix_parts), false) AS short_prefix,
           -- each join with every other word's readings, and (where a word splits) every word's readings together
           -- (and none of what `-` excludes: `tooth paste -mint`)
           (SELECT coalesce(c.q && !!(SELECT q FROM exclusions), c.q) FROM (
                SELECT tsquery_or_agg(CASE WHEN j.q IS NULL THEN r.q WHEN r.q IS NULL THEN j.q ELSE j.q && r.q END) AS q
                FROM (SELECT lo, hi, q FROM compound_parts WHERE lo < hi
                      UNION ALL
                      SELECT 0, 0, NULL::tsquery WHERE EXISTS (SELECT 1 FROM compound_parts WHERE lo = hi)) AS j
                CROSS JOIN LATERAL (SELECT tsquery_and_agg(w.q) AS q FROM word_readings w
                                    WHERE w.i < j.lo OR w.i > j.hi) AS r) AS c) AS compound
), exact AS MATERIALIZED (
    SELECT p.id FROM product_master p
    WHERE lower(p.name) = lower((SELECT trimmed FROM tsq))
    UNION
    SELECT p.id FROM product_master p
    WHERE lower(p.name) = lower((SELECT sized FROM tsq))
    UNION
    SELECT p.id FROM product_master p
    WHERE p.gtin IS NOT NULL AND lpad(p.gtin, 14, '0') = (SELECT gtin14 FROM tsq)
    LIMIT 50
)

-- fragment: prefix_holds
-- params: none
-- Whether product `p`, matching tsq's prefix, holds the last word's prefix by a word of its own: where the prefix
-- starts a word typed before it (`olive o`), that word's lexemes are left out of the row for it (Olive Oil, not a
-- bag in Olive); or the joined prefix holds. One ts_delete a row, only where the prefix starts an earlier word.
((SELECT prefix_apart FROM tsq) IS NULL
 OR ts_match_vq(ts_delete(p.search_tsv, (SELECT prefix_apart FROM tsq)), (SELECT prefix_last FROM tsq))
 OR ts_match_vq(p.search_tsv, (SELECT joined_prefix FROM tsq)))

-- fragment: keyword_scored
-- params: q text (+ product_filter)
-- The listed matches (a CTE `listed` of the statement) that pass the product filter, each with whether it is an
-- exact name/brand/GTIN match, its score (one scoring function a row, see rank_keyword) and its name's length (the
-- tie-break of equal scores). A CTE, `matched`. The score's whole part is the match's tier: 2 the words as typed
-- (or a compound of them), 1 the last word as a prefix only, 0 a typo correction only; its fraction the rank in that
-- tier, 1 - 1 / (1 + s) (the same order as s, s computed once).
matched AS (
    SELECT p.id, length(p.name) AS name_length,
           -- a null brand or GTIN is no exact match (a null here sorted first under DESC); accents folded as the
           -- words are (plinqy_simple): `creme brulee` is an exact match for Crème Brûlée; a size spaced or glued
           coalesce(lower(unaccent(p.name)) = (SELECT folded FROM tsq)
                    OR lower(unaccent(p.name)) = (SELECT sized_folded FROM tsq)
                    OR lower(unaccent(p.brand)) = (SELECT folded FROM tsq)
                    OR lpad(p.gtin, 14, '0') = (SELECT gtin14 FROM tsq), false) AS exact,
           -- the words as typed add twice their rank to the stems': a stem that is also the word (`tomato`) is
           -- in a name twice (its simple and english parts), so "Tomato Juice" outranked "Vine Tomatoes" for
           -- `tomatoes` (0.2 against 0.1; once more would tie them)
           CASE WHEN p.search_tsv @@ (SELECT english FROM tsq)
                  THEN 3 - 1 / (1 + ts_rank_cd(p.search_tsv, (SELECT english FROM tsq))
                       + CASE WHEN p.search_tsv @@ (SELECT simple FROM tsq)
                              THEN 2 * ts_rank_cd(p.search_tsv, (SELECT simple FROM tsq)) ELSE 0 END)
                WHEN p.search_tsv @@ (SELECT simple FROM tsq)
                  THEN 3 - 1 / (1 + ts_rank_cd(p.search_tsv, (SELECT simple FROM tsq)))
                WHEN p.search_tsv @@ (SELECT compound FROM tsq)
                  THEN 3 - 1 / (1 + ts_rank_cd(p.search_tsv, (SELECT compound FROM tsq)))
                WHEN p.search_tsv @@ (SELECT prefix FROM tsq) AND {{ prefix_holds }}
                  THEN 2 - 1 / (1 + ts_rank_cd(p.search_tsv, (SELECT prefix FROM tsq)))
                -- under 1: a typo match of every trigram (`oat-milk`, Oat Milk) read as a prefix match (tier 1)
                ELSE least(word_similarity(:q::text, p.name), 0.999) END AS kscore
    FROM listed JOIN product_master p ON p.id = listed.id
    WHERE {{ product_filter }}
)

-- fragment: word_forms
-- params: none
-- A typed word `w` (text) as the vocabulary may hold it: as typed, its english stem, and an irregular plural's
-- singular, -ves as -f or -fe (`loaves`: loaf, `knives`: knife, `shelves`: shelf), which the stemmer leaves as
-- `loav`, `knive`: no name holds those, so typo tolerance took `loaves` for a slip of `leaves`. A text[].
(ARRAY[w, regexp_replace(w, 'ves$', 'f'), regexp_replace(w, 'ves$', 'fe')]
 || tsvector_to_array(to_tsvector('plinqy_english', w)))

-- name: rank_keyword
-- params: q text, depth int, cap int, typo_tolerance bool, scan_cap int|null (set where the API holds the
--    candidate sets: a word of `cap` matches or more is handed back to rank in scope, see the end),
--    typo_below int (typo tolerance runs below this many full-text matches, and its looser matches are capped
--    at 4 x this: EngineConfig.rrf_depth at every depth, so that a deeper ranking holds the same matches)
--    (+ listing_filter_near, product_filter)
-- Keyword side of hybrid search, under the same filters as the vector side. Three capped match sets:
-- exact name (btree on lower(name)) or GTIN (unique btree); full text in both configs (GIN on
-- search_tsv); typo tolerance: the query's words (English stop words left out) each widened to the
-- vocabulary words (search_term, migration 0004) it equals or resembles (trigram similarity, threshold set
-- locally by the caller, at most 3 per word, for unknown words of 4+ letters, within 1 edit of the word (2 from 9
-- letters, or where their trigram similarity is 0.45 or more: `cinammon`, `croisant`; Levenshtein, fuzzystrmatch,
-- migration 0037; the similarity alone took `flavor` to `flask`, 3 edits, and `floor`, 2 at 0.3, and
-- `present` to `press`; trigram sets drop repeats, so `xxxxxxxxxx` resembled `xxl`), or, instead, that
-- it is with two neighbouring letters swapped (`mlik`, `pakc`: see `swapped`); numbers and single letters left
-- out), matched with the full-text index: all the words, or, from three words on, all but any one (a word
-- corrected wrongly or not at all costs one word, not the match; matches of every word are capped like the
-- full-text set, the looser ones at 4 × typo_below). A word neither known nor close to
-- a known one is dropped: no product name could match it. Measured on 300 catalogue names with one or two
-- keyboard slips: the intended product in the first 30 for 96.7 % (whole-query trigram matching: 97.3 %)
-- at ~1/3 of the cost; that matching's GIN scan and its planner estimate were ~85 % of this statement.
-- Typo tolerance only runs when nothing matched the name or GTIN exactly and the words as typed match fewer
-- than `typo_below` products (Typesense's typo_tokens_threshold): otherwise the exact words fill the ranks fusion
-- uses (a one-time filter).
-- The caps bound the cost of very broad queries (a common word over 100k products): past them the set is an
-- arbitrary subset, reported by `capped`. Exact name/brand/GTIN matches sort first; then the score: the text
-- rank (ts_rank_cd) under the config whose query matched (english first, plus the simple one's where the words
-- as typed match too: a plural outranks the singular's double-counted stem), or the trigram word similarity of
-- the query to the name for a typo match. Formerly one scoring function per row: ts_rank_cd in both configs plus two
-- trigram similarities cost ~50 µs a row, half the statement for a broad query (400 matches: 21 ms -> 8 ms).
-- The listing filter is a per-row probe (a scalar subquery, LIMIT 1), not an EXISTS: the matches are capped
-- (at most ~570 probes of ix_store_product_in_stock), while the planner, misjudging the full-text match
-- count, turned the EXISTS into a hash of every qualifying listing in the radius (26k at 2 km: 22 of 26 ms).
-- Same results; statement p95 at 2 / 5 km 19 -> 12 / 20 -> 13 ms, and ~0.5 ms less planning. The probe runs
-- on the candidate ids before their product rows are read (`listed`, materialised): a typo match capped at 400
-- of which a few stores sell 30 fetches 30 rows, not 400: the form that read the rows first took 5-8 % longer a
-- call (benchmarks/replay.py over 1,060 calls at 0.5 km to global, identical rows).
-- The cap falls on the catalogue's matches, before the scope: near a point a common word saw a fraction of the
-- local matches (`milk` within 5 km on the 100k catalogue: 17 of its 87). Where the API holds the candidate sets
-- (engine/keyword.py) it sets `scan_cap`: a query of `cap` full-text (or typo) matches or more is then not ranked
-- here; the one row answered (id null) packs its candidates, up to `scan_cap` matches of each kind, 16 bytes each
-- (~1 µs a match at 100k, the heap fetch of each), and counts them in `total`; the API keeps those in stock in
-- scope and rank_keyword_among ranks them. A query of fewer matches is ranked here as before, in one round trip.
WITH {{ keyword_query }}, fts AS MATERIALIZED (
    SELECT p.id FROM product_master p
    WHERE p.search_tsv @@ (SELECT simple FROM tsq)
       OR p.search_tsv @@ (SELECT english FROM tsq)
       OR p.search_tsv @@ (SELECT compound FROM tsq)
    LIMIT greatest(:cap::int, :scan_cap::int)
), fts_count AS (
    SELECT count(*) AS n FROM fts
), prefixed AS MATERIALIZED (
    -- capped apart: a short prefix's many matches never crowd out the words' own (they rank below them); not
    -- looked for where the words as typed reach the cap: they would rank below `cap` matches (`milk`: 5.8 -> 10.7 ms)
    -- `cap` of them, in scope too (not scan_cap): a fallback tier; `sta` read 1,725 of 18,706 rows rechecked for
    -- their weights at 100k where the scope asked 20,000 (17 ms)
    (SELECT p.id FROM product_master p
     WHERE p.search_tsv @@ (SELECT prefix FROM tsq) AND NOT (SELECT short_prefix FROM tsq) AND {{ prefix_holds }}
       AND (SELECT n FROM fts_count) < :cap::int
     LIMIT :cap::int)
    UNION ALL
    -- 1-2 letters start too many words to look up in the index: the rows the words before them match, each
    -- checked (ts_match_vq is no index condition)
    (SELECT p.id FROM product_master p
     WHERE p.search_tsv @@ (SELECT prefix_head FROM tsq) AND ts_match_vq(p.search_tsv, (SELECT prefix FROM tsq))
       AND {{ prefix_holds }} AND (SELECT short_prefix FROM tsq) AND (SELECT n FROM fts_count) < :cap::int
     LIMIT :cap::int)
    UNION ALL
    -- and the joined prefix's rows (`tooth pa`), 4+ letters: looked up in the index
    (SELECT p.id FROM product_master p
     WHERE p.search_tsv @@ (SELECT joined_prefix FROM tsq)
       AND (SELECT short_prefix FROM tsq) AND (SELECT n FROM fts_count) < :cap::int
     LIMIT :cap::int)
), words_found AS (
    SELECT count(*) AS n FROM (SELECT id FROM fts UNION SELECT id FROM prefixed) AS u
), words AS MATERIALIZED (
    -- the sizes spaced: `500g` is no word to correct (to `500`), `500` and `g` are left out as any number or letter
    -- `edits`: how far a correction may be (1, or 2 from 9 letters, or where the trigrams are close: >= 0.45)
    -- `forms`: the word as the vocabulary may hold it (`word_forms`)
    SELECT DISTINCT w, CASE WHEN length(w) >= 9 THEN 2 ELSE 1 END AS edits, {{ word_forms }} AS forms
    FROM unnest(tsvector_to_array(to_tsvector('plinqy_simple', coalesce(:q_sized::text, :q::text)))) AS u(w)
    WHERE :typo_tolerance::bool AND NOT EXISTS (SELECT 1 FROM exact) AND (SELECT n FROM words_found) < :typo_below::int
      AND (SELECT simple FROM tsq) IS NOT NULL  -- a query that needs no word has none to correct (`-day`: not day)
      AND NOT w = ANY(tsvector_to_array(to_tsvector('plinqy_simple', coalesce((SELECT excluded FROM tsq)::text, ''))))
      AND to_tsvector('plinqy_english', w) <> ''::tsvector AND length(w) >= 2 AND w !~ '^[0-9]+$'
), swapped AS MATERIALIZED (
    -- a word that is a known one with two neighbouring letters swapped (`mlik`): too few trigrams in common for
    -- the similarity; it replaces the word's trigram corrections (`ml` flooded `mlik`). Not a word known in a form
    -- (`hoes`: hoe, not hose), nor into a stop word (`form`: from).
    -- one index probe a swap: a `t.term IN (subquery of words.w)` was re-run for every vocabulary row (a 240-letter
    -- word: 2 s of the statement)
    SELECT DISTINCT words.w, t.term FROM words
    CROSS JOIN LATERAL generate_series(1, length(words.w) - 1) AS g(i)
    JOIN search_term t
      ON t.term = overlay(words.w PLACING substr(words.w, i + 1, 1) || substr(words.w, i, 1) FROM i FOR 2)
    WHERE length(words.w) >= 4 AND to_tsvector('plinqy_english', t.term) <> ''::tsvector
      AND NOT EXISTS (SELECT 1 FROM search_term k WHERE k.term = ANY(words.forms))
), spellings AS MATERIALIZED (
    -- a word the vocabulary knows in a form is that form, no slip of another word (`loaves`: loaf, not leaves)
    SELECT words.w, tsquery_or_agg(quote_literal(s.term)::tsquery) AS q
    FROM words
    CROSS JOIN LATERAL (
        (SELECT DISTINCT t.term FROM search_term t WHERE t.term = ANY(words.forms))
        UNION
        (SELECT t.term FROM search_term t
         WHERE length(words.w) >= 4 AND t.term % words.w
           -- within the edits its length allows: trigrams alone took `flavor` to `flask` (3 edits)
           AND CASE WHEN length(words.w) <= 255 AND length(t.term) <= 255  -- levenshtein's limit
                    THEN levenshtein_less_equal(t.term, words.w, 2)
                         <= CASE WHEN words.edits = 2 OR similarity(t.term, words.w) >= 0.45 THEN 2 ELSE 1 END
                         -- a plural's s is no edit: `tisue` is tissue(s), `knives` knive(s) -> knife
                         OR levenshtein_less_equal(regexp_replace(t.term, 's$', ''), regexp_replace(words.w, 's$', ''),
                                                   1) <= 1 END
           AND NOT EXISTS (SELECT 1 FROM search_term k WHERE k.term = ANY(words.forms))
           AND NOT EXISTS (SELECT 1 FROM swapped x WHERE x.w = words.w)
         GROUP BY t.term
         ORDER BY similarity(t.term, words.w) DESC, t.term
         LIMIT 3)
        UNION
        (SELECT x.term FROM swapped x WHERE x.w = words.w)
    ) s
    GROUP BY words.w
), typo_query AS (
    SELECT CASE WHEN (SELECT count(*) FROM spellings) < 3 THEN (SELECT tsquery_and_agg(q) FROM spellings)
                ELSE (SELECT tsquery_or_agg(clause) FROM (
                          SELECT tsquery_and_agg(s.q) FILTER (WHERE s.w <> d.w) AS clause
                          FROM spellings s CROSS JOIN spellings d
                          GROUP BY d.w) AS all_but_one) END AS q
), kept_prefix AS (
    -- a last word no spelling kept that starts words of the names is no slip to drop: a typo match holds its
    -- prefix too (`whole mi` matched every Whole Bean Coffee by `whole` alone), each row checked
    SELECT pp.last AS q FROM prefix_parts pp
    WHERE EXISTS (SELECT 1 FROM prefixed) AND NOT EXISTS (SELECT 1 FROM spellings s WHERE s.w = :q_last::text)
), typo AS MATERIALIZED (
    (SELECT p.id FROM product_master p
     WHERE p.search_tsv @@ (SELECT tsquery_and_agg(q) FROM spellings)
       AND ((SELECT q FROM kept_prefix) IS NULL
            OR (ts_match_vq(p.search_tsv, (SELECT q FROM kept_prefix)) AND {{ prefix_holds }}))
       AND NOT coalesce(p.search_tsv @@ (SELECT excluded FROM tsq), false)
     LIMIT greatest(:cap::int, :scan_cap::int))
    UNION
    (SELECT p.id FROM product_master p
     WHERE p.search_tsv @@ (SELECT q FROM typo_query)
       AND ((SELECT q FROM kept_prefix) IS NULL
            OR (ts_match_vq(p.search_tsv, (SELECT q FROM kept_prefix)) AND {{ prefix_holds }}))
       AND NOT coalesce(p.search_tsv @@ (SELECT excluded FROM tsq), false)
     LIMIT 4 * :typo_below::int)
), capped AS (
    SELECT (SELECT n FROM fts_count) >= :cap::int OR (SELECT count(*) FROM typo) >= :cap::int
           OR (SELECT count(*) FROM prefixed) >= :cap::int AS yes
), handed AS (
    SELECT :scan_cap::int IS NOT NULL AND (SELECT yes FROM capped) AS yes
), cand AS (
    SELECT id FROM exact UNION SELECT id FROM fts UNION SELECT id FROM prefixed UNION SELECT id FROM typo
), listed AS MATERIALIZED (
    -- the listing probe first: a candidate no store in scope sells costs no product row fetch
    SELECT cand.id FROM cand WHERE NOT (SELECT yes FROM handed) AND {{ listing_probe }}
), {{ keyword_scored }}
(SELECT id, exact, kscore, count(*) OVER () AS total, (SELECT yes FROM capped) AS capped,
        NULL::bytea AS packed_ids
 FROM matched
 ORDER BY exact DESC, kscore DESC, name_length, id
 LIMIT :depth::int)
UNION ALL
SELECT NULL, NULL, NULL, (SELECT count(*) FROM cand),
       ((SELECT n FROM fts_count) >= :scan_cap::int OR (SELECT count(*) FROM typo) >= :scan_cap::int
        OR (SELECT count(*) FROM prefixed) >= :scan_cap::int),
       (SELECT string_agg(uuid_send(cand.id), ''::bytea) FROM cand)
WHERE (SELECT yes FROM handed);

-- name: rank_keyword_among
-- params: match_ids uuid[] (rank_keyword's candidates handed back, those in stock in scope), match_capped bool (the
--    handed matches stopped at scan_cap, or match_ids leaves some out), ids_listed bool (no listing probe: no
--    price filter, the candidate sets hold stock only), depth int (+ listing_filter_near, product_filter)
-- The keyword side in scope: rank_keyword's scoring of its candidates (exact, full-text and typo matches) handed
-- back and kept by the candidate sets, so a common word ranks its matches near the point, not the first `cap` of
-- the catalogue's. ~6 µs a given id at 100k (its product row by primary key, and the score).
WITH {{ keyword_query }}, listed AS MATERIALIZED (
    SELECT cand.id FROM unnest(:match_ids::uuid[]) AS cand(id) WHERE :ids_listed::bool OR {{ listing_probe }}
), {{ keyword_scored }}
SELECT id, exact, kscore, count(*) OVER () AS total, :match_capped::bool AS capped
FROM matched
ORDER BY exact DESC, kscore DESC, name_length, id
LIMIT :depth::int;

-- name: hydrate
-- params: product_ids uuid[] (ranked), lon float8|null, lat float8|null, stores_per_product int,
--         home_lon float8|null, home_lat float8|null (the searcher's point, with or without a radius),
--         cheapest_first bool (sort=price: the price the page is sorted by shows first)
--         (+ store_scope_near, listing_terms)
-- The page's products with, per product, its nearest stores_per_product qualifying stores (LATERAL;
-- geodesic ST_Distance on geography, i.e. on the WGS84 spheroid); without a point, or with cheapest_first,
-- cheapest first. Each store
-- says whether it delivers to the searcher's point (its delivery radius or area holds it, as
-- geo_scope.sql's stores_delivering measures): here, not in a statement of its own after this one.
WITH pt AS (
    SELECT CASE WHEN :lon::float8 IS NULL OR :lat::float8 IS NULL THEN NULL
                ELSE ST_SetSRID(ST_MakePoint(:lon::float8, :lat::float8), 4326)::geography END AS g
), home AS (
    SELECT CASE WHEN :home_lon::float8 IS NULL OR :home_lat::float8 IS NULL THEN NULL
                ELSE ST_SetSRID(ST_MakePoint(:home_lon::float8, :home_lat::float8), 4326)::geography END AS g
)
SELECT h.ord, p.id, p.name, p.brand, p.category_id, p.gtin, p.description,
       st.store_id, st.store_name, st.distance_m, st.price, st.currency, st.quantity, st.delivers
FROM unnest(:product_ids::uuid[]) WITH ORDINALITY AS h(id, ord)
JOIN product_master p ON p.id = h.id
CROSS JOIN pt
CROSS JOIN home
LEFT JOIN LATERAL (
    SELECT s.id AS store_id, s.name AS store_name,
           CASE WHEN pt.g IS NULL THEN NULL ELSE ST_Distance(s.location, pt.g) END AS distance_m,
           sp.price, sp.currency, sp.quantity,
           coalesce(home.g IS NOT NULL AND (
               (s.delivery_radius_m IS NOT NULL AND ST_DWithin(s.location, home.g, s.delivery_radius_m::float8))
               OR (s.delivery_area IS NOT NULL AND ST_Covers(s.delivery_area, home.g))), false) AS delivers
    FROM store_product sp
    JOIN store s ON s.id = sp.store_id
    WHERE sp.product_master_id = p.id
      AND {{ store_scope_near }}
      AND s.is_active
      AND {{ listing_terms }}
    ORDER BY CASE WHEN :cheapest_first::bool THEN sp.price END, 3, sp.price, s.id
    LIMIT :stores_per_product::int
) st ON true
ORDER BY h.ord, CASE WHEN :cheapest_first::bool THEN st.price END, st.distance_m, st.price, st.store_id;

-- name: product_vector
-- params: product_id uuid
-- similar(): the product's own vector (NULL while it waits for the embedding worker); an inactive product is
-- not found, as GET /v1/products/{id} answers.
SELECT ai_vector FROM product_master WHERE id = :product_id::uuid AND is_active;

-- name: suggest_context
-- params: lon float8|null, lat float8|null, radius_m float8, since timestamptz (the suggestion index may miss
--    products stamped after this), overlay_cap int, head text, glued_head text|null (head with its sizes glued as
--    typed, suggest_typed.glued_head), last_word text, scoped bool (the caller found the
--    stores in scope already, a bbox's: neither the radius's nor the inactive stores are read) (+ changes_since)
-- A suggestion answered from memory (engine/suggest_scope.py), its one round trip: the active stores in the
-- radius (global: the inactive stores, whose listings do not count), the candidate sets' changes, the products
-- stamped since the index was built (at most overlay_cap + 1, bounds in ix_product_master_updated_at), the
-- category table's state, and the lexemes the `simple` parser makes of the earlier words and of the last word
-- (the narrow plan's plainto_tsquery('plinqy_simple', head) and to_tsquery of the last word's prefix).
WITH {{ changes_since }}, pt AS (
    SELECT CASE WHEN :lon::float8 IS NULL OR :lat::float8 IS NULL THEN NULL
                ELSE ST_SetSRID(ST_MakePoint(:lon::float8, :lat::float8), 4326)::geography END AS g
), overlay AS MATERIALIZED (
    SELECT p.id, p.name, plinqy_caseless(p.name) AS lower_name, p.brand, plinqy_fold(p.brand) AS folded_brand,
           p.category_id, p.is_active, array_to_string(ARRAY(SELECT search_terms_of(p.name, p.brand)), ' ') AS words,
           array_to_string(tsvector_to_array(p.search_tsv), ' ') AS lexemes
    FROM product_master p
    WHERE p.updated_at > :since::timestamptz
    LIMIT :overlay_cap::int + 1
)
SELECT
    (SELECT CASE WHEN pt.g IS NULL OR :scoped::bool THEN NULL
                 ELSE coalesce((SELECT array_agg(s.id) FROM store s
                                WHERE s.is_active AND ST_DWithin(s.location, pt.g, :radius_m::float8)),
                               '{}'::uuid[]) END FROM pt) AS store_ids,
    (SELECT array_agg(s.id) FROM store s
     WHERE NOT s.is_active AND (SELECT g FROM pt) IS NULL AND NOT :scoped::bool) AS inactive_store_ids,
    (SELECT count(*) FROM category) AS category_count,
    (SELECT max(updated_at) FROM category) AS category_newest,
    (SELECT count(*) FROM overlay) AS overlay_count,
    (SELECT array_agg(id) FROM overlay) AS overlay_ids,
    (SELECT array_agg(name) FROM overlay) AS overlay_names,
    (SELECT array_agg(lower_name) FROM overlay) AS overlay_lower_names,
    (SELECT array_agg(brand) FROM overlay) AS overlay_brands,
    (SELECT array_agg(folded_brand) FROM overlay) AS overlay_folded_brands,
    (SELECT array_agg(category_id) FROM overlay) AS overlay_categories,
    (SELECT array_agg(is_active) FROM overlay) AS overlay_actives,
    (SELECT array_agg(words) FROM overlay) AS overlay_words,
    (SELECT array_agg(lexemes) FROM overlay) AS overlay_lexemes,
    tsvector_to_array(to_tsvector('plinqy_simple', :head::text)) AS head_lexemes,
    CASE WHEN :glued_head::text IS NOT NULL
         THEN tsvector_to_array(to_tsvector('plinqy_simple', :glued_head::text)) END AS glued_lexemes,
    tsvector_to_array(to_tsvector('plinqy_simple', :last_word::text)) AS last_lexemes,
    {{ listing_changes_columns }};

-- name: suggest_excluded
-- params: product_ids uuid[], brands text[], head text (the words typed before the last, the excluded left out),
--    glued_head text|null (head with its sizes glued as typed: a product holding either reading counts),
--    terms text[] (the `query` completions' last words), radius_m float8, probe_cap int (products probed at most
--    per word), store_ids uuid[]|null (the stores in scope found already: a bbox's; lon/lat null)
--    (+ search_point, excluded_words)
-- Of a suggestion's product and brand rows, those that what `q` excludes leaves out, as search's product_filter
-- reads it: the products whose search_tsv holds it, and the brands whose own words hold it (search_tsv holds the
-- brand's `plinqy_simple` words, so search excludes every product of such a brand). And the `query` completions
-- none of whose products in scope (in stock at an active store in the radius, or anywhere) is left: `zorblat -oat
-- drin` offered `drink` for an oat drink. A word whose products (head and word, as the completion found them) hold
-- nothing excluded keeps the completion's own evidence: one probe of the full-text index; else its products
-- without the excluded are probed in scope, probe_cap at most (past it the completion is dropped, never wrong).
-- Asked only when `q` excludes something and a row is a product, a brand or a completion.
WITH {{ search_point }}, x AS MATERIALIZED (SELECT {{ excluded_words }} AS q), scope AS MATERIALIZED (
    SELECT CASE WHEN :store_ids::uuid[] IS NOT NULL THEN :store_ids::uuid[]
                WHEN pt.g IS NULL THEN NULL
                ELSE coalesce((SELECT array_agg(s.id) FROM store s
                               WHERE s.is_active AND ST_DWithin(s.location, pt.g, :radius_m::float8)),
                              '{}'::uuid[]) END AS ids
    FROM pt
), words AS (
    SELECT t.term, CASE WHEN :glued_head::text IS NULL THEN plainto_tsquery('plinqy_simple', :head::text)
                        ELSE plainto_tsquery('plinqy_simple', :head::text)
                             || plainto_tsquery('plinqy_simple', :glued_head::text) END
                   && to_tsquery('plinqy_simple', quote_literal(t.term)) AS q
    FROM unnest(:terms::text[]) AS t(term)
)
SELECT
    ARRAY(SELECT p.id FROM product_master p, x
          WHERE p.id = ANY(:product_ids::uuid[]) AND coalesce(p.search_tsv @@ x.q, false)) AS product_ids,
    ARRAY(SELECT b.brand FROM unnest(:brands::text[]) AS b(brand), x
          WHERE coalesce(to_tsvector('plinqy_simple', b.brand) @@ x.q, false)) AS brands,
    ARRAY(SELECT w.term FROM words w, x
          WHERE x.q IS NOT NULL
            AND EXISTS (SELECT 1 FROM product_master p WHERE p.search_tsv @@ (w.q && x.q) AND p.is_active)
            AND NOT EXISTS (
                SELECT 1
                FROM (SELECT p.id FROM product_master p
                      WHERE p.search_tsv @@ (w.q && !! x.q) AND p.is_active LIMIT :probe_cap::int) AS cand
                WHERE EXISTS (
                    SELECT 1 FROM store_product sp
                    WHERE sp.product_master_id = cand.id AND {{ sellable_listing }}
                      AND CASE WHEN (SELECT ids FROM scope) IS NULL
                               THEN EXISTS (SELECT 1 FROM store s WHERE s.id = sp.store_id AND s.is_active)
                               ELSE sp.store_id IN (SELECT unnest((SELECT ids FROM scope))) END))) AS terms;
