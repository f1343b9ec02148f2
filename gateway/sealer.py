"""The background sealing of closed legs' telemetry into the transparency log.

Every gateway process runs one ``Sealer``; they may race for the same leg, which is
fine: ``waste.telemetry.sealing.seal_leg`` re-checks the leg under the log's append
lock and the ``leg_seals`` key refuses a second seal of one version.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from gateway.metrics import GatewayMetrics
from waste.clock import utcnow
from waste.errors import Conflict, Unavailable
from waste.telemetry.models import LegSeal
from waste.telemetry.sealing import due_legs, seal_leg
from waste.uow import UnitOfWork

__all__ = ["Sealer", "seal_due"]

log = logging.getLogger(__name__)


def seal_due(
    session_factory: sessionmaker[Session],
    *,
    now: datetime,
    grace: timedelta,
    limit: int = 100,
) -> list[LegSeal]:
    """Seal every due leg (each in its own transaction); the seals this call made."""
    with UnitOfWork(session_factory) as uow:
        due = due_legs(uow=uow, now=now, grace=grace, limit=limit)
    sealed = []
    for manifest_id, leg_index in due:
        try:
            with UnitOfWork(session_factory) as uow:
                seal = seal_leg(uow=uow, manifest_id=manifest_id, leg_index=leg_index, now=now)
        except Conflict:
            log.info("leg %s/%d was sealed by another gateway", manifest_id, leg_index)
            continue
        if seal is not None:
            log.info(
                "sealed leg %s/%d v%d: %d records, root %s",
                manifest_id,
                leg_index,
                seal.version,
                seal.count,
                seal.root,
            )
            sealed.append(seal)
    return sealed


class Sealer:
    """A thread sealing due legs every ``interval_s`` seconds."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        grace: timedelta,
        interval_s: float,
        metrics: GatewayMetrics | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._factory = session_factory
        self._grace = grace
        self._interval = interval_s
        self._metrics = metrics
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leg-sealer", daemon=True)

    def start(self) -> None:
        """Start sealing in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def run_once(self) -> list[LegSeal]:
        """One sealing round."""
        sealed = seal_due(self._factory, now=self._clock(), grace=self._grace)
        if self._metrics is not None:
            self._metrics.sealed.inc(len(sealed))
        return sealed

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.run_once()
            except Unavailable as exc:  # an outage: one line per round, not a traceback
                if self._metrics is not None:
                    self._metrics.seal_errors.inc()
                log.warning("sealing round failed (%s); retrying in %.1fs", exc, self._interval)
            except Exception:  # a bug must not kill the sealer either; logged, retried
                if self._metrics is not None:
                    self._metrics.seal_errors.inc()
                log.exception("sealing round failed; retrying in %.1fs", self._interval)
