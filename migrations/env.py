"""Alembic environment: the URL comes from search_service.db.migrate (or DATABASE_URL), never from alembic.ini."""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

from search_service.db.migrate import sqlalchemy_url
from search_service.db.schema import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# Objects the extensions own (PostGIS's spatial_ref_sys, …) are not ours to compare.
EXTENSION_TABLES = {
    "spatial_ref_sys",
    "geography_columns",
    "geometry_columns",
    "raster_columns",
    "raster_overviews",
    "layer",
    "topology",
}


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    if type_ == "table" and name in EXTENSION_TABLES:
        return False
    return bool(alembic_helpers.include_object(obj, name, type_, reflected, compare_to))


def _url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: run migrations through `plinqy-search migrate`")
    return sqlalchemy_url(str(url))


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True, include_object=include_object)
    with context.begin_transaction():
        context.run_migrations()


def _connect_args() -> dict[str, str]:
    """`migrate`'s lock_timeout (search_service.db.migrate): a migration blocked by another session's lock gives up
    and rolls back, instead of waiting forever while every query queues behind the locks it already holds."""
    args = {"application_name": "plinqy-search migrate"}
    timeout_ms = config.attributes.get("lock_timeout_ms")
    if timeout_ms:
        args["options"] = f"-c lock_timeout={int(timeout_ms)}"
    return args


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool, connect_args=_connect_args())
    with engine.connect() as connection:
        # The backend whose lock waits migrate_guard.LockWatch reports.
        config.attributes["backend_pid"] = connection.connection.driver_connection.info.backend_pid
        context.configure(
            connection=connection,
            target_metadata=metadata,
            include_object=include_object,
            render_item=alembic_helpers.render_item,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
