"""A 20 km leg with its areas, and fix streams along it (honest, noisy, off route, parked)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tests.unit.tracking._routes import T0, Drive, geodesic_route, line, offset, square
from waste.alerts.engine import LegEngine, LockIn
from waste.alerts.rules import Candidate, LegFacts
from waste.alerts.thresholds import AlertThresholds
from waste.tracking import AreaIndex, AreaKind, AreaRef, CircleArea, Fix, PolygonArea, RouteIndex

ROUTE = RouteIndex(line(geodesic_route(29.3061, 120.0752, 90.0, 20_000.0, 500.0)), 50.0)
DRIVE = Drive(ROUTE)
START = DRIVE.position(0.0)
END = DRIVE.position(ROUTE.length_m)
ZONE_AT = DRIVE.position(5_000.0, 400.0)
REST_AT = DRIVE.position(10_000.0, 150.0)
AREAS = AreaIndex(
    [
        CircleArea(AreaRef(AreaKind.PICKUP, "producer#0", "Producer"), *START, 300.0),
        CircleArea(AreaRef(AreaKind.DESTINATION, "site#0", "Disposal site"), *END, 250.0),
        PolygonArea(AreaRef(AreaKind.REST_AREA, "rest#0", "Rest area"), square(*REST_AT, 100.0)),
        PolygonArea(
            AreaRef(AreaKind.RESTRICTED_ZONE, "zone-1", "Reservoir"), square(*ZONE_AT, 150.0)
        ),
    ]
)
FACTS = LegFacts("m-1", 0, 50.0, "SEAL-1", opened_at=T0)
SPEED = 12.0  # m/s, about 43 km/h


def engine(th: AlertThresholds | None = None) -> LegEngine:
    """A fresh engine on the test leg."""
    return LegEngine(FACTS, th or AlertThresholds(), ROUTE, AREAS)


def at(seconds: float) -> datetime:
    """T0 + seconds."""
    return T0 + timedelta(seconds=seconds)


@dataclass
class Trip:
    """Fixes built in time order, every ``every_s`` seconds, with a few metres of jitter."""

    every_s: float = 10.0
    jitter_m: float = 4.0
    seed: int = 1
    t: float = 0.0
    progress: float = 0.0
    fixes: list[Fix] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _emit(self, lat: float, lon: float, hdop: float | None = 0.9) -> None:
        if self.jitter_m:
            lat, lon = offset(
                lat, lon, self._rng.uniform(0, 360), self._rng.uniform(0, self.jitter_m)
            )
        self.fixes.append(Fix(at(self.t), lat, lon, hdop=hdop))
        self.t += self.every_s

    def drive(self, to_m: float, *, left_m: float = 0.0) -> Trip:
        """Drive along the route (``left_m`` off it) up to progress ``to_m``."""
        while self.progress < to_m:
            self._emit(*DRIVE.position(self.progress, left_m))
            self.progress = min(to_m, self.progress + SPEED * self.every_s)
        return self

    def park(self, seconds: float, *, left_m: float = 0.0) -> Trip:
        """Stand still for ``seconds`` at the current progress (``left_m`` off the route)."""
        end = self.t + seconds
        while self.t < end:
            self._emit(*DRIVE.position(self.progress, left_m))
        return self

    def silence(self, seconds: float) -> Trip:
        """No fixes for ``seconds`` (the vehicle keeps its progress)."""
        self.t += seconds
        return self

    def outlier(self, left_m: float) -> Trip:
        """One fix ``left_m`` off the route at the current progress."""
        self._emit(*DRIVE.position(self.progress, left_m))
        return self

    def detour(self, length_m: float, left_m: float) -> Trip:
        """Leave the route to ``left_m`` off it for ``length_m`` of progress, then come back."""
        self.drive(self.progress + length_m, left_m=left_m)
        return self

    def finish(self) -> list[Fix]:
        """Drive to the destination; all the fixes."""
        self.drive(ROUTE.length_m)
        self.park(120)
        return self.fixes


def lock(
    seconds: float, event: str, *, where: tuple[float, float] | None = None, seq: int = 1
) -> LockIn:
    """An e-lock event at T0 + seconds (at ``where``, else without a position)."""
    lat, lon = where if where is not None else (None, None)
    return LockIn("DEV-1", seq, at(seconds), event, "SEAL-1", lat, lon)


def kinds(candidates: list[Candidate]) -> set[str]:
    """The alert kinds among candidates."""
    return {c.kind for c in candidates}


def of_kind(candidates: list[Candidate], kind: str) -> list[Candidate]:
    """The last candidate of each key of ``kind``."""
    latest: dict[str, Candidate] = {}
    for c in candidates:
        if c.kind == kind:
            latest[c.key] = c
    return list(latest.values())
