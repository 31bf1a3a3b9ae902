-- Functions and triggers of the Plinqy schema, applied by migration 0001. Statement-level triggers with transition tables keep
-- bulk loads (COPY of a million listings) set-based instead of firing a row trigger a million times.

-- The names of a category and its ancestors, root first: part of every product's embedded text.
-- The depth guard stops a (constraint-violating) cycle from looping forever.
CREATE FUNCTION category_path(category_id bigint) RETURNS text[] LANGUAGE sql STABLE AS $$
    WITH RECURSIVE path(id, parent_id, name, depth) AS (
        SELECT c.id, c.parent_id, c.name, 0 FROM category c WHERE c.id = category_id
        UNION ALL
        SELECT c.id, c.parent_id, c.name, path.depth + 1
        FROM category c JOIN path ON c.id = path.parent_id
        WHERE path.depth < 32
    )
    SELECT coalesce(array_agg(name ORDER BY depth DESC), '{}') FROM path
$$;

-- Whether another pending embedding task exists for a product: a task returning to the queue yields to it,
-- because the partial unique index allows one pending task per product.
CREATE FUNCTION ai_task_other_pending(product uuid, task bigint) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM ai_task o WHERE o.product_master_id = product AND o.status = 'pending' AND o.id <> task)
$$;

CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

-- Embedding queue: one pending task per product (the partial unique index makes ON CONFLICT dedupe),
-- and a NOTIFY so idle workers wake at once instead of waiting for their poll.
CREATE FUNCTION enqueue_embedding_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ai_task (product_master_id)
    SELECT id FROM new_rows WHERE ai_vector IS NULL
    ON CONFLICT (product_master_id) WHERE status = 'pending' DO NOTHING;
    IF FOUND THEN
        PERFORM pg_notify('ai_task', '');
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION enqueue_embedding_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ai_task (product_master_id)
    SELECT n.id
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE (o.name, o.brand, o.description, o.category_id, o.attributes)
          IS DISTINCT FROM (n.name, n.brand, n.description, n.category_id, n.attributes)
    ON CONFLICT (product_master_id) WHERE status = 'pending' DO NOTHING;
    IF FOUND THEN
        PERFORM pg_notify('ai_task', '');
    END IF;
    RETURN NULL;
END $$;

-- The category path is part of the embedded text, so renaming or moving a category re-embeds its subtree.
CREATE FUNCTION enqueue_embedding_on_category_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH RECURSIVE subtree AS (
        SELECT NEW.id AS id
        UNION ALL
        SELECT c.id FROM category c JOIN subtree s ON c.parent_id = s.id
    )
    INSERT INTO ai_task (product_master_id)
    SELECT p.id FROM product_master p JOIN subtree s ON p.category_id = s.id
    ON CONFLICT (product_master_id) WHERE status = 'pending' DO NOTHING;
    IF FOUND THEN
        PERFORM pg_notify('ai_task', '');
    END IF;
    RETURN NULL;
END $$;

-- Listings: audit trail, search re-index queue and inventory events, all set-based.
CREATE FUNCTION store_product_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO history_store_product (store_product_id, store_id, product_master_id, operation, new_row)
    SELECT id, store_id, product_master_id, 'INSERT', to_jsonb(n) FROM new_rows n;
    INSERT INTO search_index_queue (entity_type, entity_id, operation)
    SELECT 'store_product', id, 'INSERT' FROM new_rows;
    INSERT INTO inventory_event (store_product_id, store_id, product_master_id, old_quantity, new_quantity, delta, reason)
    SELECT id, store_id, product_master_id, NULL, quantity, quantity, 'listed' FROM new_rows;
    RETURN NULL;
END $$;

CREATE FUNCTION store_product_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO history_store_product (store_product_id, store_id, product_master_id, operation, old_row, new_row)
    SELECT n.id, n.store_id, n.product_master_id, 'UPDATE', to_jsonb(o), to_jsonb(n)
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE to_jsonb(o) - 'updated_at' IS DISTINCT FROM to_jsonb(n) - 'updated_at';
    INSERT INTO search_index_queue (entity_type, entity_id, operation)
    SELECT 'store_product', n.id, 'UPDATE'
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE to_jsonb(o) - 'updated_at' IS DISTINCT FROM to_jsonb(n) - 'updated_at';
    INSERT INTO inventory_event (store_product_id, store_id, product_master_id, old_quantity, new_quantity, delta, reason)
    SELECT n.id, n.store_id, n.product_master_id, o.quantity, n.quantity, n.quantity - o.quantity, 'update'
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.quantity <> o.quantity;
    RETURN NULL;
END $$;

CREATE FUNCTION store_product_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO history_store_product (store_product_id, store_id, product_master_id, operation, old_row)
    SELECT id, store_id, product_master_id, 'DELETE', to_jsonb(o) FROM old_rows o;
    INSERT INTO search_index_queue (entity_type, entity_id, operation)
    SELECT 'store_product', id, 'DELETE' FROM old_rows;
    INSERT INTO inventory_event (store_product_id, store_id, product_master_id, old_quantity, new_quantity, delta, reason)
    SELECT id, store_id, product_master_id, quantity, NULL, -quantity, 'delisted' FROM old_rows;
    RETURN NULL;
END $$;

CREATE TRIGGER trg_product_master_enqueue_insert AFTER INSERT ON product_master
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION enqueue_embedding_on_insert();
CREATE TRIGGER trg_product_master_enqueue_update AFTER UPDATE ON product_master
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION enqueue_embedding_on_update();
CREATE TRIGGER trg_category_enqueue_update AFTER UPDATE OF name, parent_id ON category
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.parent_id IS DISTINCT FROM NEW.parent_id)
    EXECUTE FUNCTION enqueue_embedding_on_category_change();

CREATE TRIGGER trg_store_product_audit_insert AFTER INSERT ON store_product
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION store_product_after_insert();
CREATE TRIGGER trg_store_product_audit_update AFTER UPDATE ON store_product
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION store_product_after_update();
CREATE TRIGGER trg_store_product_audit_delete AFTER DELETE ON store_product
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION store_product_after_delete();
