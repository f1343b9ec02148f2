"""Route matching, stops, corridor and zone tests for transport legs (pure).

No I/O and no framework imports: the gateway feeds fixes, the alert rules read events.
"""

from waste.tracking.areas import AreaIndex, AreaKind, AreaRef, CircleArea, PolygonArea
from waste.tracking.geometry import (
    LocalFrame,
    parse_area,
    parse_linestring,
    parse_multipolygon,
    parse_polygon,
)
from waste.tracking.matcher import LegTracker
from waste.tracking.model import (
    Excursion,
    ExcursionEnded,
    ExcursionStarted,
    ExcursionUpdated,
    Fix,
    FixQuality,
    GapObserved,
    MatchSettings,
    PathPoint,
    Stop,
    StopEnded,
    StopStarted,
    StopUpdated,
    TrackEvent,
    TrackStep,
    ZoneEntered,
    ZoneExited,
)
from waste.tracking.route import MatchWork, RouteIndex, RouteMatch, RouteMatches

__all__ = [
    "AreaIndex",
    "AreaKind",
    "AreaRef",
    "CircleArea",
    "Excursion",
    "ExcursionEnded",
    "ExcursionStarted",
    "ExcursionUpdated",
    "Fix",
    "FixQuality",
    "GapObserved",
    "LegTracker",
    "LocalFrame",
    "MatchSettings",
    "MatchWork",
    "PathPoint",
    "PolygonArea",
    "RouteIndex",
    "RouteMatch",
    "RouteMatches",
    "Stop",
    "StopEnded",
    "StopStarted",
    "StopUpdated",
    "TrackEvent",
    "TrackStep",
    "ZoneEntered",
    "ZoneExited",
    "parse_area",
    "parse_linestring",
    "parse_multipolygon",
    "parse_polygon",
]
