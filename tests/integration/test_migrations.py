"""Migrations create exactly the models' schema, and go down and up again cleanly."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import waste.models  # noqa: F401
from tests.support.databases import DatabaseFactory
from waste.db import Base, make_engine
from waste.migrate import current_revision, downgrade, ensure_schema, head_revision, upgrade


def _diff(engine: object) -> list[object]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


def test_upgrade_matches_models_then_down_and_up(db_factory: DatabaseFactory) -> None:
    url = db_factory.empty_url()
    engine = make_engine(url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision(engine)
        assert _diff(engine) == []
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables

        downgrade(engine, "base")
        assert current_revision(engine) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

        upgrade(engine)
        assert _diff(engine) == []
    finally:
        engine.dispose()
        db_factory.drop(url)


def test_app_refuses_a_schema_that_is_behind(db_factory: DatabaseFactory) -> None:
    from waste.errors import Unavailable

    url = db_factory.empty_url()
    engine = make_engine(url)
    try:
        with pytest.raises(Unavailable, match="waste db upgrade"):
            ensure_schema(engine, auto_migrate=False)
        ensure_schema(engine, auto_migrate=True)
        assert current_revision(engine) == head_revision(engine)
        ensure_schema(engine, auto_migrate=False)  # now accepted
    finally:
        engine.dispose()
        db_factory.drop(url)


def _start_worker(url: str) -> str:
    engine = make_engine(url)
    try:
        ensure_schema(engine, auto_migrate=True)
        return "ok"
    finally:
        engine.dispose()


def test_workers_starting_together_migrate_once(db_factory: DatabaseFactory) -> None:
    import multiprocessing

    url = db_factory.empty_url()
    ctx = multiprocessing.get_context("spawn")
    try:
        with ctx.Pool(3) as pool:
            assert pool.map(_start_worker, [url] * 3, chunksize=1) == ["ok"] * 3
        engine = make_engine(url)
        assert current_revision(engine) == head_revision(engine)
        assert _diff(engine) == []
        engine.dispose()
    finally:
        db_factory.drop(url)
