"""Route matching, stops, corridor and zone tests for transport legs (pure).

No I/O and no framework imports: the gateway feeds fixes, the alert rules read events.
The value types (fixes, settings, excursions, stops, events) are listed once, in
``waste.tracking.model.__all__``, and re-exported here.
"""

from waste.tracking import model
from waste.tracking.areas import AreaIndex, AreaKind, AreaRef, CircleArea, PolygonArea
from waste.tracking.geometry import (
    LocalFrame,
    parse_area,
    parse_linestring,
    parse_multipolygon,
    parse_polygon,
)
from waste.tracking.matcher import LegTracker
from waste.tracking.model import *  # noqa: F403 - the names of model.__all__
from waste.tracking.route import MatchWork, RouteIndex, RouteMatch, RouteMatches

__all__ = [
    "AreaIndex",
    "AreaKind",
    "AreaRef",
    "CircleArea",
    "LegTracker",
    "LocalFrame",
    "MatchWork",
    "PolygonArea",
    "RouteIndex",
    "RouteMatch",
    "RouteMatches",
    "parse_area",
    "parse_linestring",
    "parse_multipolygon",
    "parse_polygon",
]
__all__ += model.__all__
