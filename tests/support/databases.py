"""Isolated databases per test, on SQLite or on a real PostgreSQL.

Migrations run once per test session into a template (a SQLite file, or a
PostgreSQL template database); each test then gets a copy of it, so every
test starts from the migrated schema and no test sees another's rows.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from waste.db import make_engine
from waste.migrate import upgrade

PG_ENV = "WASTE_TEST_DATABASE_URL"


def postgres_url() -> str | None:
    """The admin URL of the test PostgreSQL server, if one is configured."""
    url = os.environ.get(PG_ENV)
    if url and url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url or None


class DatabaseFactory:
    """Makes fresh, migrated databases from a template built once."""

    def __init__(self, workdir: Path, tag: str) -> None:
        self.workdir = workdir
        self.tag = tag.replace("-", "_")
        self.pg_admin_url = postgres_url()
        self._template: str | None = None

    @property
    def backend(self) -> str:
        """``postgresql`` or ``sqlite``."""
        return "postgresql" if self.pg_admin_url else "sqlite"

    def _admin_engine(self) -> Engine:
        assert self.pg_admin_url is not None
        return create_engine(self.pg_admin_url, isolation_level="AUTOCOMMIT")

    def template(self) -> str:
        """Build the migrated template once; return its URL."""
        if self._template is not None:
            return self._template
        if self.pg_admin_url:
            name = f"waste_tmpl_{self.tag}"
            admin = self._admin_engine()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            url = make_url(self.pg_admin_url).set(database=name).render_as_string(False)
        else:
            url = f"sqlite:///{self.workdir / 'template.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        self._template = url
        return url

    def fresh_url(self) -> str:
        """A brand-new database copied from the template."""
        template = self.template()
        if self.pg_admin_url:
            name = f"waste_t_{self.tag}_{uuid.uuid4().hex[:12]}"
            tmpl_name = make_url(template).database
            admin = self._admin_engine()
            with admin.connect() as conn:
                conn.execute(
                    text(f'CREATE DATABASE "{name}" TEMPLATE "{tmpl_name}" STRATEGY FILE_COPY')
                )
            admin.dispose()
            return make_url(self.pg_admin_url).set(database=name).render_as_string(False)
        target = self.workdir / f"t_{uuid.uuid4().hex[:12]}.db"
        shutil.copyfile(self.workdir / "template.db", target)
        return f"sqlite:///{target}"

    def empty_url(self) -> str:
        """A brand-new empty database (for migration tests)."""
        if self.pg_admin_url:
            name = f"waste_e_{self.tag}_{uuid.uuid4().hex[:12]}"
            admin = self._admin_engine()
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            return make_url(self.pg_admin_url).set(database=name).render_as_string(False)
        return f"sqlite:///{self.workdir / f'e_{uuid.uuid4().hex[:12]}.db'}"

    def drop(self, url: str) -> None:
        """Drop a database made by this factory."""
        if self.pg_admin_url:
            name = make_url(url).database
            admin = self._admin_engine()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        else:
            Path(make_url(url).database or "").unlink(missing_ok=True)

    def close(self) -> None:
        """Drop the template."""
        if self._template and self.pg_admin_url:
            self.drop(self._template)


@contextmanager
def fresh_engine(factory: DatabaseFactory) -> Iterator[Engine]:
    """An engine on a fresh database, dropped afterwards."""
    url = factory.fresh_url()
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        factory.drop(url)
