"""Run and check Alembic migrations programmatically."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from waste.errors import Unavailable

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs on ``engine``'s connections."""
    if not (MIGRATIONS_DIR / "env.py").exists():
        raise RuntimeError(f"migrations not found at {MIGRATIONS_DIR}; install from a checkout")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database up to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database down to ``revision`` (``base`` empties it)."""
    command.downgrade(alembic_config(engine), revision)


def ensure_schema(engine: Engine, *, auto_migrate: bool) -> None:
    """Upgrade to head, or refuse clearly if the schema is behind and upgrades are off."""
    if auto_migrate:
        with _migration_lock(engine):
            upgrade(engine)
        return
    current, head = current_revision(engine), head_revision(engine)
    if current != head:
        raise Unavailable(
            f"database schema is at {current or 'empty'}, the code needs {head}: "
            "run `waste db upgrade` (or set WASTE_AUTO_MIGRATE=true)"
        )


# Any fixed 64-bit number: it names this application's migration lock on the server.
_ADVISORY_LOCK_ID = 0x57A57E0001


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations across processes starting at once (PostgreSQL advisory lock)."""
    if engine.dialect.name != "postgresql":
        yield  # SQLite serialises writers itself
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _ADVISORY_LOCK_ID})
            conn.commit()
