"""Values of leg tracking: fixes, settings, excursions, stops and the events, pure."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from waste.errors import Invalid
from waste.tracking.areas import AreaKind, AreaRef
from waste.tracking.route import RouteMatch

__all__ = [
    "Excursion",
    "ExcursionEnded",
    "ExcursionStarted",
    "ExcursionUpdated",
    "Fix",
    "FixQuality",
    "GapObserved",
    "MatchSettings",
    "PathPoint",
    "Stop",
    "StopEnded",
    "StopStarted",
    "StopUpdated",
    "TrackEvent",
    "TrackStep",
    "ZoneEntered",
    "ZoneExited",
]


@dataclass(frozen=True, slots=True)
class Fix:
    """One position fix: aware ``t``, degrees, km/h, heading from north, HDOP."""

    t: datetime
    lat: float
    lon: float
    speed_kmh: float | None = None
    heading: float | None = None
    hdop: float | None = None

    def __post_init__(self) -> None:
        if self.t.tzinfo is None:
            raise Invalid("a fix time must be timezone-aware", field="t")
        if not (math.isfinite(self.lat) and -90 <= self.lat <= 90):
            raise Invalid(f"lat = {self.lat!r} is not a latitude", field="lat")
        if not (math.isfinite(self.lon) and -180 <= self.lon <= 180):
            raise Invalid(f"lon = {self.lon!r} is not a longitude", field="lon")


class FixQuality(StrEnum):
    """How the tracker judged a fix; only ``good`` fixes are evidence."""

    GOOD = "good"
    SUSPECT_HDOP = "suspect_hdop"
    """HDOP above ``MatchSettings.max_hdop``."""
    SUSPECT_SPEED = "suspect_speed"
    """Reaching it from the last good fix needs more than ``max_speed_kmh``."""
    STALE = "stale"
    """Not later than the last fix consumed: fixes must come in time order; ignored."""


@dataclass(frozen=True, slots=True)
class MatchSettings:
    """Every threshold of leg tracking, with its default."""

    max_hdop: float = 6.0
    """A fix with HDOP above this is suspect (≈ 30 m of error at a 5 m UERE)."""
    max_speed_kmh: float = 160.0
    """A fix implying more than this speed from the last good fix is suspect."""
    reanchor_fixes: int = 3
    """This many consecutive too-fast fixes that agree with one another mean the last good
    fix was the outlier: the last of them is accepted as good."""
    off_route_fixes: int = 3
    """Consecutive good fixes outside the corridor needed to start an excursion ..."""
    off_route_s: float = 45.0
    """... spanning at least this many seconds."""
    return_m: float = 40.0
    """An excursion ends on fixes at most this far from the route (never more than the
    corridor: the effective value is ``min(return_m, corridor_m)``) ..."""
    return_fixes: int = 2
    """... this many consecutive good ones."""
    stop_window_s: float = 180.0
    """Stopped when good fixes spanning at least this many seconds ..."""
    stop_radius_m: float = 100.0
    """... all lie within this distance of their centre."""
    stop_min_fixes: int = 2
    """Fewest good fixes that can make a stop (low-rate devices report rarely when parked)."""
    stop_exit_fixes: int = 2
    """A stop ends after this many consecutive good fixes beyond ``stop_radius_m``."""
    zone_fixes: int = 2
    """Consecutive good fixes inside (or outside) a restricted zone to enter (or leave) it."""
    gap_s: float = 600.0
    """Consecutive fixes further apart than this in time make a ``GapObserved``."""
    update_interval_s: float = 60.0
    """An ongoing excursion or stop is re-announced at most this often, unless ..."""
    update_growth_m: float = 50.0
    """... an excursion's maximum distance grew by this much since it was last announced."""
    max_path_points: int = 500
    """An excursion keeps at most this many path points: when full, every other one goes
    (so older stretches end up sparser); the first and the latest are always kept."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (math.isfinite(value) and value > 0):
                raise Invalid(f"{f.name} must be a positive number", field=f.name)
        if self.max_path_points < 2:
            raise Invalid("max_path_points must be at least 2", field="max_path_points")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class PathPoint:
    """A good fix of an excursion, with its match."""

    t: datetime
    lat: float
    lon: float
    distance_m: float
    progress_m: float


@dataclass(frozen=True, slots=True)
class Excursion:
    """One departure from the route's corridor, as known so far."""

    id: str
    started_at: datetime
    """Time of the first fix of the run that confirmed it."""
    ended_at: datetime | None
    """Time of the first fix of the run that confirmed the return; None while it lasts,
    or if the leg closed before the vehicle came back."""
    last_seen_at: datetime
    """Time of its latest off-route fix."""
    max_distance_m: float
    path: tuple[PathPoint, ...]

    @property
    def duration(self) -> timedelta:
        """From ``started_at`` to ``ended_at`` (or to the latest off-route fix)."""
        return (self.ended_at or self.last_seen_at) - self.started_at


@dataclass(frozen=True, slots=True)
class Stop:
    """One stop: good fixes spanning the window within the stop radius, and after."""

    id: str
    started_at: datetime
    """Time of the first fix of the cluster that made it a stop."""
    ended_at: datetime | None
    """Time of its last fix inside the radius, once the vehicle left; None while it lasts."""
    last_seen_at: datetime
    centre: tuple[float, float]
    """``(lat, lon)`` of the mean of the fixes that made it a stop."""
    fix_count: int
    areas: tuple[AreaRef, ...]
    """Areas holding the centre; empty when it lies in none."""

    @property
    def duration(self) -> timedelta:
        """From ``started_at`` to ``ended_at`` (or to the latest fix inside)."""
        return (self.ended_at or self.last_seen_at) - self.started_at

    @property
    def kinds(self) -> frozenset[AreaKind]:
        """The kinds of area the stop lies in."""
        return frozenset(a.kind for a in self.areas)


@dataclass(frozen=True, slots=True)
class ExcursionStarted:
    """An excursion was confirmed by the fix at ``at``."""

    at: datetime
    excursion: Excursion


@dataclass(frozen=True, slots=True)
class ExcursionUpdated:
    """An ongoing excursion went further or lasted longer."""

    at: datetime
    excursion: Excursion


@dataclass(frozen=True, slots=True)
class ExcursionEnded:
    """The vehicle came back (``returned``), or the leg closed while it was off route."""

    at: datetime
    excursion: Excursion
    returned: bool


@dataclass(frozen=True, slots=True)
class StopStarted:
    """A stop was recognised at ``at``."""

    at: datetime
    stop: Stop


@dataclass(frozen=True, slots=True)
class StopUpdated:
    """An ongoing stop lasted longer."""

    at: datetime
    stop: Stop


@dataclass(frozen=True, slots=True)
class StopEnded:
    """The vehicle left the stop (or the leg closed)."""

    at: datetime
    stop: Stop


@dataclass(frozen=True, slots=True)
class ZoneEntered:
    """Consecutive good fixes lay inside a restricted zone; ``entered_at`` is the first."""

    at: datetime
    zone: AreaRef
    entered_at: datetime
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class ZoneExited:
    """Consecutive good fixes lay outside a zone entered before; ``exited_at`` is the first."""

    at: datetime
    zone: AreaRef
    exited_at: datetime
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class GapObserved:
    """Two consecutive fixes (of any quality) were more than ``gap_s`` apart."""

    from_t: datetime
    to_t: datetime
    distance_m: float
    implied_speed_kmh: float
    resumed_inside_corridor: bool

    @property
    def at(self) -> datetime:
        """The time of the fix that ended the gap."""
        return self.to_t


TrackEvent = (
    ExcursionStarted
    | ExcursionUpdated
    | ExcursionEnded
    | StopStarted
    | StopUpdated
    | StopEnded
    | ZoneEntered
    | ZoneExited
    | GapObserved
)


@dataclass(frozen=True, slots=True)
class TrackStep:
    """What consuming one fix gave: its judgement, its match and the events it raised."""

    fix: Fix
    quality: FixQuality
    match: RouteMatch | None
    events: tuple[TrackEvent, ...]
