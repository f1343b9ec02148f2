"""Trips along the test world's route, sent through the real ingest with alert detection on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from devices.signing import encode_lock, encode_telemetry
from gateway.payloads import Fix, LockEvent, LockEventKind
from gateway.topics import lock_topic, telemetry_topic
from tests.support.telemetry import Rig, Vehicle
from tests.support.world import ROUTE, World
from tests.unit.tracking._routes import Drive
from waste.alerts.models import Alert, LegTrackerState
from waste.alerts.worker import AlertDetector
from waste.db import make_session_factory
from waste.tracking import RouteIndex
from waste.uow import UnitOfWork

ROUTE_INDEX = RouteIndex(ROUTE, 50.0)
DRIVE = Drive(ROUTE_INDEX)
LENGTH_M = ROUTE_INDEX.length_m
SPEED = 12.0


def ms(moment: datetime) -> datetime:
    """``moment`` truncated to whole milliseconds (protocol precision)."""
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


@dataclass
class Path:
    """Fixes along the world's route from ``start``, one every ``every_s`` seconds."""

    start: datetime
    every_s: float = 15.0
    progress: float = 0.0
    fixes: list[Fix] = field(default_factory=list)

    @property
    def t(self) -> datetime:
        """The time of the next fix."""
        return ms(self.start + timedelta(seconds=self.every_s * len(self.fixes)))

    def _emit(self, lat: float, lon: float) -> None:
        self.fixes.append(Fix(self.t, lat, lon, 40.0, 90.0, 0.9))

    def drive(self, to_m: float, *, left_m: float = 0.0) -> Path:
        """Drive to progress ``to_m`` (``left_m`` off the route)."""
        while self.progress < to_m:
            self._emit(*DRIVE.position(self.progress, left_m))
            self.progress = min(to_m, self.progress + SPEED * self.every_s)
        return self

    def park(self, seconds: float, *, left_m: float = 0.0) -> Path:
        """Stand still for ``seconds``."""
        for _ in range(int(seconds // self.every_s)):
            self._emit(*DRIVE.position(self.progress, left_m))
        return self

    def position(self, left_m: float = 0.0) -> tuple[float, float]:
        """Where the vehicle is now."""
        return DRIVE.position(self.progress, left_m)


def send_fixes(rig: Rig, truck: Vehicle, fixes: Sequence[Fix], *, per_message: int = 20) -> None:
    """Sign and deliver ``fixes`` in messages of ``per_message``, then ingest them."""
    for i in range(0, len(fixes), per_message):
        payload = encode_telemetry(
            truck.device_id, next(truck.seqs), list(fixes[i : i + per_message]), truck.key
        )
        rig.send((telemetry_topic(truck.device_id), payload))
    rig.pump()


def send_lock(
    rig: Rig, truck: Vehicle, t: datetime, event: str, where: tuple[float, float] | None
) -> None:
    """Sign, deliver and ingest one e-lock event."""
    lat, lon = where if where is not None else (None, None)
    lock = LockEvent(ms(t), f"SEAL-{truck.device_id}", LockEventKind(event), lat, lon)
    rig.send(
        (
            lock_topic(truck.device_id),
            encode_lock(truck.device_id, next(truck.seqs), lock, truck.key),
        )
    )
    rig.pump()


def detector(rig: Rig, **kw: Any) -> AlertDetector:
    """An alert detector publishing on the rig's transport, added to its ingestor."""
    found = AlertDetector(make_session_factory(rig.engine), transport=rig.transport, **kw)
    rig.ingestor.consumers.append(found)
    return found


def alerts(engine: Engine, **where: Any) -> list[Alert]:
    """Stored alerts matching ``where``, by time."""
    with UnitOfWork(make_session_factory(engine)) as uow:
        rows = list(uow.session.scalars(select(Alert).filter_by(**where).order_by(Alert.at)))
        uow.session.expunge_all()
        return rows


def leg_tracker(engine: Engine, manifest_id: str, leg_index: int = 0) -> LegTrackerState:
    """The leg's stored tracker row (detached); fails if there is none."""
    with UnitOfWork(make_session_factory(engine)) as uow:
        row = uow.session.get(LegTrackerState, (manifest_id, leg_index))
        assert row is not None, f"no tracker for leg {manifest_id}/{leg_index}"
        uow.session.expunge(row)
        return row


def picked_up(world: World, now: datetime, *, minutes_ago: float = 50, **filing: Any) -> str:
    """A manifest filed and picked up by hauler 0 ``minutes_ago`` minutes before ``now``."""
    at = now - timedelta(minutes=minutes_ago)
    mid = world.producer.file(world.filing(**filing), at=at - timedelta(minutes=2))["manifest_id"]
    world.haulers[0].client.pick_up(mid, world.pickup(), cosigners=[world.producer.key], at=at)
    return str(mid)


def receipt(truck: Vehicle, mass_kg: float = 790.0, **over: Any) -> dict[str, Any]:
    """``received`` data: all accepted, the truck's seal intact unless overridden."""
    data = {
        "mass_kg": mass_kg,
        "accepted_kg": mass_kg,
        "refused_kg": 0,
        "seal_id": f"SEAL-{truck.device_id}",
        "seal_intact": True,
    }
    data.update(over)
    return data
