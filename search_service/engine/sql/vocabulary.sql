-- The search_term vocabulary (migration 0004) only grows as products are written; this keeps it tidy.

-- name: lock_products_for_prune
-- params: none
-- Product writes wait while the vocabulary is pruned (reads do not): otherwise a product written meanwhile
-- could reuse a word whose last other user was just deleted, and lose it from the vocabulary.
LOCK TABLE product_master IN SHARE MODE;

-- name: prune_search_terms
-- params: none
-- Removes the words no product name or brand has any more, and second copies of a word (two writers that added
-- the same new word at once). Runs after lock_products_for_prune, in the same transaction.
WITH current_words AS (
    SELECT DISTINCT w FROM product_master p, search_terms_of(p.name, p.brand) w
), gone AS (
    DELETE FROM search_term t
    WHERE NOT EXISTS (SELECT 1 FROM current_words c WHERE c.w = t.term)
       OR EXISTS (SELECT 1 FROM search_term d WHERE d.term = t.term AND d.id < t.id)
    RETURNING t.term
)
SELECT count(*) AS removed, (SELECT count(*) FROM search_term) - count(*) AS kept FROM gone;
