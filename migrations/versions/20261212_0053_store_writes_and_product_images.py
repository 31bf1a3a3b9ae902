"""A store write that moves no store bumps no version, one that changes nothing stamps no `updated_at`; a product
image is on this site or at an http(s) address, and one a product at most is primary.

Migration 0019's trigger fired `AFTER … UPDATE OF location, is_active`, which PostgreSQL fires whenever either
column is in the SET list, whatever its value: every `PATCH /v1/stores/{id}` (a phone, a website, or the values
the store already had) bumped `store_geo_version`, and every API process reloaded its stores' places and meanwhile
found the stores in SQL. An UPDATE now bumps it only when a row's id, place or activity differs after it (its
transition tables, compared once per statement). `set_updated_at` stamped every UPDATE of a store; it now stamps
one that changed the row.

`ck_product_image_url` (`^(https?://|/)`) meant an absolute http(s) address or a path on this site, but its `/` took
`//evil.example/x.jpg` too, which a browser loads from that host (`/\\host` as well), and `GET /v1/products/{id}`
served it. Such a URL is written out as the https address it loads on an https page; the path after `/` may not
start with `/` or `\\`. A browser drops tab, CR and LF from a URL before reading it (`/<tab>/host` loads from
host): they are dropped here too, and no control character may remain. Several images of a product could be primary: all but its first (by position) stop being.

Revision ID: 0053
Revises: 0052
Create Date: 2026-12-12 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0053"
down_revision: str | None = "0052"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migration 0020's bump, when an updated row's place or activity changed.
MOVED = """
CREATE FUNCTION store_geo_version_bump_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT id, location, is_active FROM new_stores EXCEPT SELECT id, location, is_active FROM old_stores)
    THEN
        INSERT INTO store_geo_version (only_row, version) VALUES (true, nextval('store_geo_version_seq'))
        ON CONFLICT (only_row) DO UPDATE SET version = EXCLUDED.version;
    END IF;
    RETURN NULL;
END $$;
"""
OLD_URL = "^(https?://|/)"
# SQL text: the regex `/(?![/\\])`, a slash not followed by a slash or a backslash, and no C0 control or DEL anywhere
URL = "^(https?://|/(?![/\\\\]))[^\\x01-\\x1f\\x7f]*$"
# What a browser does with them: tab, CR and LF dropped, any other control percent-encoded.
CONTROLS_OUT = """
UPDATE product_image SET url = (
    SELECT string_agg(CASE WHEN c ~ '[\\x01-\\x1f\\x7f]' THEN '%' || upper(lpad(to_hex(ascii(c)), 2, '0')) ELSE c END,
                      '' ORDER BY i)
    FROM regexp_split_to_table(regexp_replace(url, '[\\t\\r\\n]', '', 'g'), '') WITH ORDINALITY AS t(c, i))
WHERE url ~ '[\\x01-\\x1f\\x7f]'
"""
FIRST_PRIMARY = """
UPDATE product_image i SET is_primary = false
FROM (SELECT id, row_number() OVER (PARTITION BY product_master_id ORDER BY position, created_at, id) AS n
      FROM product_image WHERE is_primary) ranked
WHERE i.id = ranked.id AND ranked.n > 1
"""


def upgrade() -> None:
    _stores_upgrade()
    op.execute(CONTROLS_OUT)
    op.execute("UPDATE product_image SET url = 'https:' || url WHERE url ~ '^//'")
    op.execute("UPDATE product_image SET url = 'https://' || substr(url, 3) WHERE url ~ '^/\\\\'")
    op.drop_constraint(op.f("ck_product_image_url"), "product_image", type_="check")
    op.create_check_constraint(op.f("ck_product_image_url"), "product_image", f"url ~ '{URL}'")
    op.execute(FIRST_PRIMARY)
    op.create_index(
        "uq_product_image_primary", "product_image", ["product_master_id"], unique=True, postgresql_where="is_primary"
    )


def downgrade() -> None:
    op.drop_index("uq_product_image_primary", table_name="product_image")
    op.drop_constraint(op.f("ck_product_image_url"), "product_image", type_="check")
    op.create_check_constraint(op.f("ck_product_image_url"), "product_image", f"url ~ '{OLD_URL}'")
    _stores_downgrade()


def _stores_upgrade() -> None:
    op.execute(MOVED)
    op.execute(
        """
        DROP TRIGGER trg_store_geo_version ON store;
        CREATE TRIGGER trg_store_geo_version AFTER INSERT OR DELETE ON store
            FOR EACH STATEMENT EXECUTE FUNCTION store_geo_version_bump();
        CREATE TRIGGER trg_store_geo_version_update AFTER UPDATE ON store
            REFERENCING OLD TABLE AS old_stores NEW TABLE AS new_stores
            FOR EACH STATEMENT EXECUTE FUNCTION store_geo_version_bump_moved();
        DROP TRIGGER trg_store_updated_at ON store;
        CREATE TRIGGER trg_store_updated_at BEFORE UPDATE ON store
            FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION set_updated_at();
        """
    )


def _stores_downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER trg_store_updated_at ON store;
        CREATE TRIGGER trg_store_updated_at BEFORE UPDATE ON store FOR EACH ROW EXECUTE FUNCTION set_updated_at();
        DROP TRIGGER trg_store_geo_version_update ON store;
        DROP FUNCTION store_geo_version_bump_moved();
        DROP TRIGGER trg_store_geo_version ON store;
        CREATE TRIGGER trg_store_geo_version AFTER INSERT OR DELETE OR UPDATE OF location, is_active ON store
            FOR EACH STATEMENT EXECUTE FUNCTION store_geo_version_bump();
        """
    )
