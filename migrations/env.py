"""Alembic environment: metadata from ``waste.db``, the engine from the caller or the settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

import waste.models  # noqa: F401  (registers every table on the metadata)
from waste.config import Settings
from waste.db import Base, is_sqlite, make_engine

config = context.config
target_metadata = Base.metadata


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if engine is None:
        engine = make_engine(Settings().resolved_database_url)
    assert isinstance(engine, Engine)
    return engine


def run_migrations_online() -> None:
    """Run the migrations on a live connection."""
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=is_sqlite(str(engine.url)),
            compare_type=True,
            # SQLite's DDL is transactional: one BEGIN IMMEDIATE transaction for the
            # version read and every step, so processes starting at once migrate once.
            transactional_ddl=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run against a database")
run_migrations_online()
