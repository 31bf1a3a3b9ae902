"""Search UX (issue 24): store delivery areas, and the prefix indexes search-as-you-type reads.

- store.delivery_radius_m (metres) and store.delivery_area (geography MultiPolygon): where a store delivers. A GiST
  index on the polygon answers "which areas cover this point"; a btree on the radius gives its maximum at once, which
  bounds the GiST probe of store.location for the radius side (a per-row radius alone could not use that index).
- text_pattern_ops btrees on lower(name), lower(brand) and search_term.term: a `LIKE 'prefix%'` range scan in the
  cluster's C.UTF-8 collation (the default btrees cannot serve LIKE outside the C collation), and, with
  `ORDER BY ... USING ~<~`, an ordered walk that a LIMIT stops early.
- A GiST index on the stores' locations as geometry: map-viewport (bbox) scopes compare plain longitudes and
  latitudes, not geodesics.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geography

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIX_INDEXES = (
    ("ix_product_master_name_prefix", "product_master", "lower(name) text_pattern_ops"),
    ("ix_product_master_brand_prefix", "product_master", "lower(brand) text_pattern_ops"),
    ("ix_search_term_term_prefix", "search_term", "term text_pattern_ops"),
)


def upgrade() -> None:
    op.add_column("store", sa.Column("delivery_radius_m", sa.Integer(), nullable=True))
    op.add_column(
        "store",
        sa.Column("delivery_area", Geography("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True),
    )
    op.create_check_constraint(
        "ck_store_delivery_radius_m", "store", "delivery_radius_m IS NULL OR delivery_radius_m BETWEEN 1 AND 1000000"
    )
    op.create_index("ix_store_delivery_area", "store", ["delivery_area"], postgresql_using="gist")
    op.create_index("ix_store_delivery_radius_m", "store", ["delivery_radius_m"])
    op.execute("CREATE INDEX ix_store_location_geometry ON store USING gist ((location::geometry))")
    for name, table, expression in PREFIX_INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} ({expression})")


def downgrade() -> None:
    for name, _table, _expression in PREFIX_INDEXES:
        op.execute(f"DROP INDEX {name}")
    op.execute("DROP INDEX ix_store_location_geometry")
    op.drop_index("ix_store_delivery_radius_m", table_name="store")
    op.drop_index("ix_store_delivery_area", table_name="store")
    op.drop_constraint("ck_store_delivery_radius_m", "store", type_="check")
    op.drop_column("store", "delivery_area")
    op.drop_column("store", "delivery_radius_m")
