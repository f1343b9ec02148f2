"""The unit of work: one transaction, and the only place that commits."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from waste.errors import Conflict, Invalid, Unavailable


class UnitOfWork:
    """A transaction scope: services work through ``session`` and call ``commit()``.

    Leaving the ``with`` block without a commit rolls back, so a failed use
    case changes nothing. Database outages surface as ``Unavailable`` (503),
    uniqueness races as ``Conflict`` (409), and values the database refuses
    (a NUL character in PostgreSQL text) as ``Invalid`` (422).
    """

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._factory = session_factory
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """The open session; only valid inside the ``with`` block."""
        if self._session is None:
            raise RuntimeError("unit of work used outside its with-block")
        return self._session

    def __enter__(self) -> Self:
        self._session = self._factory()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            session.rollback()
        finally:
            session.close()
            self._session = None
        if isinstance(exc, OperationalError) and not isinstance(exc, IntegrityError):
            raise Unavailable("the database is unavailable; retry later") from exc
        if isinstance(exc, DataError):  # input it cannot hold, e.g. a NUL in PostgreSQL text
            raise Invalid(
                "a value the database cannot hold (a NUL character, a number out of range)"
            ) from exc

    def flush(self) -> None:
        """Send pending changes so constraints are checked now; map races to ``Conflict``."""
        try:
            self.session.flush()
        except IntegrityError as exc:
            raise Conflict(f"conflicts with an existing record: {_short(exc)}") from exc

    def commit(self) -> None:
        """Commit the transaction; a uniqueness race becomes ``Conflict``."""
        try:
            self.session.commit()
        except IntegrityError as exc:
            raise Conflict(f"conflicts with an existing record: {_short(exc)}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc, OperationalError):
                raise Unavailable("the database is unavailable; retry later") from exc
            raise


def _short(exc: IntegrityError) -> str:
    return str(exc.orig).splitlines()[0][:200]
