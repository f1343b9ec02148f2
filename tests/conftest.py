"""Shared fixtures: an isolated database per test, the app, and callers with tokens."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.support.databases import DatabaseFactory, fresh_engine
from waste.api import create_app
from waste.config import Settings

ADMIN_TOKEN = "test-admin-token-0123456789abcdef-0123"


@pytest.fixture(scope="session")
def db_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    """One migrated template per test session (and xdist worker)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    factory = DatabaseFactory(tmp_path_factory.mktemp("db"), f"{worker}_{os.getpid()}")
    yield factory
    factory.close()


@pytest.fixture
def engine(db_factory: DatabaseFactory) -> Iterator[Engine]:
    """An engine on this test's own freshly migrated database."""
    with fresh_engine(db_factory) as eng:
        yield eng


@pytest.fixture
def settings(tmp_path: Path, engine: Engine) -> Settings:
    """Settings for an app under test."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=engine.url.render_as_string(hide_password=False),
        admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
        auto_migrate=False,
        checkpoint_interval_s=0.2,
    )


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """A test client of the API on this test's database."""
    app = create_app(settings, engine=engine)
    with TestClient(app) as tc:
        yield tc


@pytest.fixture
def admin_headers() -> dict[str, str]:
    """Authorization headers of the bootstrap admin."""
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
