"""Matching fixes against a declared route: distance, progress and corridor, pure.

``RouteIndex`` is built once per leg. The route is densified along the geodesic, cut
into sections of at most 250 km, each projected into its own azimuthal equidistant
frame (see ``geometry``), and each section's segments go into a shapely ``STRtree``.

Per fix, the work is one box query of the tree of the nearest section (a square of
``reach_m`` around the fix, twice the corridor) and an exact point-to-segment
measure of the few segments it returns. A fix farther than ``reach_m`` from every
candidate falls back to the tree's own nearest-neighbour search. Both are logarithmic
in the number of segments. With several sections, a section is searched only while
a spherical lower bound on its distance (distance to its centre minus its radius,
less 1% + 1 m of slack for the ellipsoid) does not exceed the best distance found so
far; the bounds cost one dot product per section (a section per 250 km of route).
Ties go to the lowest segment index. ``match`` and ``match_many`` run the same
arithmetic and agree to the bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from waste.errors import Invalid
from waste.tracking.geometry import (
    EARTH_RADIUS_M,
    GEOD,
    FloatArray,
    LocalFrame,
    as_floats,
    densify_geodesic,
    parse_linestring,
    split_sections,
    unit_vectors,
)

IntArray = NDArray[np.intp]
_BOUND_SLACK = 0.01  # relative slack of the spherical section bounds


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """Where one fix stands relative to the route."""

    distance_m: float
    """Distance to the closest point of the route."""
    progress_m: float
    """Distance along the route from its start to that closest point."""
    segment_index: int
    """Index of the declared segment (between coordinates i and i + 1) holding it."""
    inside_corridor: bool


@dataclass(frozen=True, slots=True, eq=False)
class RouteMatches:
    """Matches of many fixes, as parallel arrays."""

    distance_m: FloatArray
    progress_m: FloatArray
    segment_index: IntArray
    inside_corridor: NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.distance_m)

    def __getitem__(self, i: int) -> RouteMatch:
        return RouteMatch(
            float(self.distance_m[i]),
            float(self.progress_m[i]),
            int(self.segment_index[i]),
            bool(self.inside_corridor[i]),
        )


@dataclass(slots=True)
class MatchWork:
    """Counters of the work done by matching (for tests and benchmarks, not timing)."""

    fixes: int = 0
    tree_queries: int = 0
    candidates: int = 0


class _Section:
    """One frame's worth of route: segment coordinates in metres and their tree."""

    __slots__ = ("ax", "ay", "dx", "dy", "frame", "gid", "l2", "radius_m", "tree")

    def __init__(self, frame: LocalFrame, vertices: FloatArray, first: int) -> None:
        self.frame = frame
        x, y = frame.to_xy(vertices[:, 0], vertices[:, 1])
        dx, dy = np.diff(x), np.diff(y)
        l2 = dx * dx + dy * dy
        keep = np.flatnonzero(l2 > 0.0)  # repeated vertices make no segment
        self.gid: IntArray = (keep + first).astype(np.intp)
        self.ax, self.ay = x[:-1][keep], y[:-1][keep]
        self.dx, self.dy, self.l2 = dx[keep], dy[keep], l2[keep]
        # aeqd keeps distances from the centre exact, so this bounds the section.
        self.radius_m = float(np.sqrt(x * x + y * y).max())
        ends = np.stack([self.ax, self.ay, self.ax + self.dx, self.ay + self.dy], axis=1)
        self.tree = shapely.STRtree(shapely.linestrings(ends.reshape(-1, 2, 2)))

    def measure(
        self, px: FloatArray | float, py: FloatArray | float, k: IntArray
    ) -> tuple[FloatArray, FloatArray]:
        """Distances from points to segments ``k`` and the fraction along each segment."""
        ax, ay, dx, dy = self.ax[k], self.ay[k], self.dx[k], self.dy[k]
        t = ((px - ax) * dx + (py - ay) * dy) / self.l2[k]
        t = np.minimum(np.maximum(t, 0.0), 1.0)
        ex = px - (ax + t * dx)
        ey = py - (ay + t * dy)
        return np.sqrt(ex * ex + ey * ey), t


class RouteIndex:
    """A declared route (GeoJSON LineString) indexed for matching fixes."""

    def __init__(
        self, route_geojson: Mapping[str, Any], corridor_m: float, *, field: str = "route"
    ) -> None:
        if not (isinstance(corridor_m, int | float) and math.isfinite(corridor_m)) or (
            corridor_m <= 0
        ):
            raise Invalid("corridor_m must be a positive number of metres", field="corridor_m")
        self.corridor_m = float(corridor_m)
        self.reach_m = max(2.0 * self.corridor_m, 100.0)
        self.coordinates = parse_linestring(route_geojson, field=field)
        dense, self._parent, self._step_m = densify_geodesic(self.coordinates)
        self._vertices = dense
        self._cum = np.concatenate([[0.0], np.cumsum(self._step_m)])
        self.length_m = float(self._cum[-1])
        self._sections: list[_Section] = []
        centres = []
        for first, last in split_sections(self._cum):
            middle = (self._cum[first] + self._cum[last]) / 2.0
            c = first + int(np.argmin(np.abs(self._cum[first : last + 1] - middle)))
            frame = LocalFrame(float(dense[c, 1]), float(dense[c, 0]))
            self._sections.append(_Section(frame, dense[first : last + 1], first))
            centres.append((frame.lon0, frame.lat0))
        lonlat = np.asarray(centres, dtype=np.float64)
        self._centres = unit_vectors(lonlat[:, 0], lonlat[:, 1])
        self._radii = np.asarray([s.radius_m for s in self._sections])
        self.work = MatchWork()

    @property
    def section_count(self) -> int:
        """How many local frames the route is cut into."""
        return len(self._sections)

    def match(self, lat: float, lon: float) -> RouteMatch:
        """Match one fix: distance to the route, progress along it, corridor test."""
        if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
            raise Invalid(f"not a position: lat={lat!r}, lon={lon!r}", field="lat")
        self.work.fixes += 1
        best_d, best_g, best_t = math.inf, -1, 0.0
        if len(self._sections) == 1:
            order: list[int] = [0]
            bound = [-math.inf]
        else:
            bounds = self._bounds(as_floats(lon), as_floats(lat))[0]
            order = np.argsort(bounds, kind="stable").tolist()
            bound = bounds.tolist()
        for s in order:
            if bound[s] > best_d:
                break
            section = self._sections[s]
            x, y = section.frame.xy(lon, lat)
            d, g, t = self._nearest_one(section, x, y)
            if d < best_d or (d == best_d and g < best_g):
                best_d, best_g, best_t = d, g, t
        progress = float(self._cum[best_g] + best_t * self._step_m[best_g])
        return RouteMatch(best_d, progress, int(self._parent[best_g]), best_d <= self.corridor_m)

    def match_many(self, lats: ArrayLike, lons: ArrayLike) -> RouteMatches:
        """Match many fixes at once (vectorised); item ``i`` equals ``match(lats[i], lons[i])``."""
        lat, lon = as_floats(lats), as_floats(lons)
        if lat.shape != lon.shape or lat.ndim != 1:
            raise Invalid("lats and lons must be 1-d arrays of one length", field="lats")
        if not (np.all(np.abs(lat) <= 90) and np.all(np.abs(lon) <= 180)):  # NaN fails too
            raise Invalid("lats/lons hold a value that is not a position", field="lats")
        n = len(lat)
        self.work.fixes += n
        best_d = np.full(n, np.inf)
        best_g = np.full(n, -1, dtype=np.intp)
        best_t = np.zeros(n)
        single = len(self._sections) == 1
        bounds = np.full((n, 1), -np.inf) if single else self._bounds(lon, lat)
        order = np.argsort(bounds, axis=1, kind="stable")
        rows = np.arange(n)
        for rank in range(len(self._sections)):
            sec_of = order[:, rank]
            need = bounds[rows, sec_of] <= best_d
            if not need.any():
                break
            for s in np.unique(sec_of[need]).tolist():
                idx = np.flatnonzero(need & (sec_of == s))
                section = self._sections[s]
                x, y = section.frame.to_xy(lon[idx], lat[idx])
                d, g, t = self._nearest_many(section, x, y)
                better = (d < best_d[idx]) | ((d == best_d[idx]) & (g < best_g[idx]))
                won = idx[better]
                best_d[won], best_g[won], best_t[won] = d[better], g[better], t[better]
        progress = self._cum[best_g] + best_t * self._step_m[best_g]
        return RouteMatches(best_d, progress, self._parent[best_g], best_d <= self.corridor_m)

    def point_at(self, progress_m: float) -> tuple[float, float]:
        """``(lat, lon)`` of the point ``progress_m`` metres along the route (clamped)."""
        p = min(max(float(progress_m), 0.0), self.length_m)
        g = int(np.searchsorted(self._cum, p, side="right")) - 1
        g = min(max(g, 0), len(self._step_m) - 1)
        (lon1, lat1), (lon2, lat2) = self._vertices[g], self._vertices[g + 1]
        azimuth = GEOD.inv(lon1, lat1, lon2, lat2)[0]
        lon, lat, _ = GEOD.fwd(lon1, lat1, azimuth, p - float(self._cum[g]))
        return float(lat), float(lon)

    def _bounds(self, lon: FloatArray, lat: FloatArray) -> FloatArray:
        """Lower bounds ``(n, sections)`` on the distance from each fix to each section."""
        cosines = np.clip(unit_vectors(lon, lat) @ self._centres.T, -1.0, 1.0)
        to_centre = np.arccos(cosines) * EARTH_RADIUS_M
        return np.asarray(to_centre * (1.0 - _BOUND_SLACK) - self._radii - 1.0)

    def _nearest_one(self, section: _Section, x: float, y: float) -> tuple[float, int, float]:
        r = self.reach_m
        k = section.tree.query(shapely.box(x - r, y - r, x + r, y + r))
        self.work.tree_queries += 1
        if k.size:
            d, g, t = self._pick_one(section, x, y, k)
            if d <= r:
                return d, g, t
        k = section.tree.query_nearest(shapely.Point(x, y), all_matches=True)
        self.work.tree_queries += 1
        return self._pick_one(section, x, y, k)

    def _pick_one(
        self, section: _Section, x: float, y: float, k: IntArray
    ) -> tuple[float, int, float]:
        self.work.candidates += int(k.size)
        d, t = section.measure(x, y, k)
        i = int(np.lexsort((section.gid[k], d))[0])
        return float(d[i]), int(section.gid[k[i]]), float(t[i])

    def _nearest_many(
        self, section: _Section, x: FloatArray, y: FloatArray
    ) -> tuple[FloatArray, IntArray, FloatArray]:
        r = self.reach_m
        pi, k = section.tree.query(shapely.box(x - r, y - r, x + r, y + r))
        self.work.tree_queries += len(x)
        d, g, t = self._pick_many(section, x, y, pi, k)
        far = np.flatnonzero(~(d <= r))
        if far.size:
            qi, qk = section.tree.query_nearest(shapely.points(x[far], y[far]), all_matches=True)
            self.work.tree_queries += int(far.size)
            d[far], g[far], t[far] = self._pick_many(section, x[far], y[far], qi, qk)
        return d, g, t

    def _pick_many(
        self, section: _Section, x: FloatArray, y: FloatArray, pi: IntArray, k: IntArray
    ) -> tuple[FloatArray, IntArray, FloatArray]:
        """Per point, the nearest of its candidate segments (ties: lowest index)."""
        self.work.candidates += int(k.size)
        n = len(x)
        d = np.full(n, np.inf)
        g = np.full(n, -1, dtype=np.intp)
        t = np.zeros(n)
        if k.size:
            dd, tt = section.measure(x[pi], y[pi], k)
            gg = section.gid[k]
            order = np.lexsort((gg, dd, pi))
            first = np.ones(order.size, dtype=bool)
            first[1:] = pi[order][1:] != pi[order][:-1]
            sel = order[first]
            d[pi[sel]], g[pi[sel]], t[pi[sel]] = dd[sel], gg[sel], tt[sel]
        return d, g, t
