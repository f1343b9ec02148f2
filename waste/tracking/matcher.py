"""``LegTracker``: the per-leg streaming state machine over fixes, pure.

Fixes must come in fix-time order; a fix not later than the previous one is ``stale``
and ignored (re-run from a saved state to take late data in). Each fix is judged:
HDOP over the gate or an impossible speed from the last good fix makes it suspect,
and suspect fixes are not evidence: they neither count towards nor break the runs
below (they do count as signal for gaps). Good fixes then drive four independent
machines, whose events come out in this order for one fix:

    gap        consecutive fixes more than ``gap_s`` apart
    zones      ``zone_fixes`` consecutive good fixes inside / outside a restricted zone
    route      ``off_route_fixes`` good fixes beyond the corridor spanning ``off_route_s``
               start an excursion; ``return_fixes`` within ``min(return_m, corridor)``
               end it; one ``Excursion`` (one id) is announced as it grows
    stops      good fixes spanning ``stop_window_s`` all within ``stop_radius_m`` of their
               centre; ``stop_exit_fixes`` beyond the radius end it

Distances between fixes are WGS 84 geodesics. ``to_state`` gives a JSON-ready dict;
``from_state`` on it, fed the rest of the fixes, raises the same events as one run.
Ids are ``{leg_id}/excursion/{n}`` and ``{leg_id}/stop/{n}``, so replays agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from waste.errors import Invalid
from waste.tracking import _codec as codec
from waste.tracking._codec import Point
from waste.tracking.areas import AreaIndex, AreaKind, AreaRef
from waste.tracking.geometry import GEOD, geodesic_m, mean_position
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
from waste.tracking.route import RouteIndex, RouteMatch

STATE_VERSION = 1


class LegTracker:
    """Consumes one leg's fixes in time order and raises excursion, stop, zone and gap events."""

    def __init__(
        self,
        leg_id: str,
        route: RouteIndex,
        areas: AreaIndex | None = None,
        settings: MatchSettings | None = None,
    ) -> None:
        self.leg_id = leg_id
        self.route = route
        self.areas = areas if areas is not None else AreaIndex()
        self.settings = settings if settings is not None else MatchSettings()
        self._return_m = min(self.settings.return_m, route.corridor_m)
        self._last: Point | None = None
        self._good: Point | None = None
        self._fast: list[Point] = []
        self._seq = {"excursion": 0, "stop": 0}
        self._pending: list[PathPoint] = []
        self._exc: Excursion | None = None
        self._exc_said: tuple[datetime, float] | None = None  # when / how far last announced
        self._returning: list[datetime] = []
        self._cluster: list[Point] = []
        self._stop: Stop | None = None
        self._stop_said: datetime | None = None
        self._leaving: list[Point] = []
        self._zone_in: dict[str, tuple[AreaRef, list[Point]]] = {}  # zones entered, fixes out
        self._zone_run: dict[str, tuple[AreaRef, list[Point]]] = {}  # zones not yet entered

    @property
    def excursion(self) -> Excursion | None:
        """The ongoing excursion, if any."""
        return self._exc

    @property
    def stop(self) -> Stop | None:
        """The ongoing stop, if any."""
        return self._stop

    def consume(self, fix: Fix) -> TrackStep:
        """Take the next fix; return its judgement, match and events."""
        if self._last is not None and fix.t <= self._last[0]:
            return TrackStep(fix, FixQuality.STALE, None, ())
        return self._step(fix, self.route.match(fix.lat, fix.lon))

    def consume_many(self, fixes: Iterable[Fix]) -> list[TrackEvent]:
        """Take many fixes (matched in one vectorised call); return all their events."""
        batch = list(fixes)
        if not batch:
            return []
        matches = self.route.match_many([f.lat for f in batch], [f.lon for f in batch])
        events: list[TrackEvent] = []
        for i, fix in enumerate(batch):
            if self._last is None or fix.t > self._last[0]:
                events.extend(self._step(fix, matches[i]).events)
        return events

    def close(self, at: datetime) -> list[TrackEvent]:
        """End what is ongoing because the leg closed at ``at``."""
        events: list[TrackEvent] = []
        if self._exc is not None:
            back = self._returning[0] if self._returning else None
            ended = replace(self._exc, ended_at=back)
            events.append(ExcursionEnded(at, ended, returned=back is not None))
        if self._stop is not None:
            events.append(StopEnded(at, replace(self._stop, ended_at=self._stop.last_seen_at)))
        self._exc, self._exc_said, self._returning, self._pending = None, None, [], []
        self._stop, self._stop_said, self._leaving, self._cluster = None, None, [], []
        return events

    def _step(self, fix: Fix, match: RouteMatch) -> TrackStep:
        point = (fix.t, fix.lat, fix.lon)
        events: list[TrackEvent] = []
        previous, self._last = self._last, point
        if previous is not None:
            seconds = (fix.t - previous[0]).total_seconds()
            if seconds > self.settings.gap_s:
                metres = geodesic_m(previous[1], previous[2], fix.lat, fix.lon)
                speed = metres / seconds * 3.6
                events.append(GapObserved(previous[0], fix.t, metres, speed, match.inside_corridor))
        quality = self._judge(fix, point)
        if quality is FixQuality.GOOD:
            self._good = point
            self._zones(point, events)
            self._route_step(PathPoint(*point, match.distance_m, match.progress_m), events)
            self._stops(point, events)
        return TrackStep(fix, quality, match, tuple(events))

    def _judge(self, fix: Fix, point: Point) -> FixQuality:
        s = self.settings
        if fix.hdop is not None and fix.hdop > s.max_hdop:
            return FixQuality.SUSPECT_HDOP
        if self._good is None or _speed_kmh(self._good, point) <= s.max_speed_kmh:
            self._fast = []
            return FixQuality.GOOD
        if self._fast and _speed_kmh(self._fast[-1], point) <= s.max_speed_kmh:
            self._fast.append(point)
        else:
            self._fast = [point]
        if len(self._fast) >= s.reanchor_fixes:
            self._fast = []
            return FixQuality.GOOD
        return FixQuality.SUSPECT_SPEED

    def _zones(self, point: Point, events: list[TrackEvent]) -> None:
        need = self.settings.zone_fixes
        t, lat, lon = point
        inside = {
            ref.id: ref
            for ref in self.areas.containing(lat, lon)
            if ref.kind is AreaKind.RESTRICTED_ZONE
        }
        for zid in sorted(set(self._zone_in) - set(inside)):
            ref, out = self._zone_in[zid]
            out.append(point)
            if len(out) >= need:
                del self._zone_in[zid]
                events.append(ZoneExited(t, ref, out[0][0], out[0][1], out[0][2]))
        for zid in sorted(set(self._zone_run) - set(inside)):
            del self._zone_run[zid]
        for zid, ref in sorted(inside.items()):
            if zid in self._zone_in:
                self._zone_in[zid][1].clear()
                continue
            run = self._zone_run.setdefault(zid, (ref, []))[1]
            run.append(point)
            if len(run) >= need:
                del self._zone_run[zid]
                self._zone_in[zid] = (ref, [])
                events.append(ZoneEntered(t, ref, run[0][0], run[0][1], run[0][2]))

    def _route_step(self, p: PathPoint, events: list[TrackEvent]) -> None:
        s = self.settings
        exc = self._exc
        if exc is None:
            if p.distance_m <= self.route.corridor_m:
                self._pending = []
                return
            self._pending.append(p)
            first = self._pending[0]
            if (
                len(self._pending) >= s.off_route_fixes
                and (p.t - first.t).total_seconds() >= s.off_route_s
            ):
                self._seq["excursion"] += 1
                path = tuple(self._pending)
                exc = Excursion(
                    f"{self.leg_id}/excursion/{self._seq['excursion']}",
                    first.t,
                    None,
                    p.t,
                    max(q.distance_m for q in path),
                    _thin(path, s.max_path_points),
                )
                self._exc, self._pending = exc, []
                self._exc_said = (p.t, exc.max_distance_m)
                events.append(ExcursionStarted(p.t, exc))
            return
        if p.distance_m <= self._return_m:
            self._returning.append(p.t)
            if len(self._returning) >= s.return_fixes:
                ended = replace(exc, ended_at=self._returning[0])
                events.append(ExcursionEnded(p.t, ended, returned=True))
                self._exc, self._exc_said, self._returning = None, None, []
            return
        self._returning = []
        exc = replace(
            exc,
            last_seen_at=p.t,
            max_distance_m=max(exc.max_distance_m, p.distance_m),
            path=_thin((*exc.path, p), s.max_path_points),
        )
        self._exc = exc
        assert self._exc_said is not None  # set whenever an excursion is
        said_t, said_max = self._exc_said
        if (p.t - said_t).total_seconds() >= s.update_interval_s or (
            exc.max_distance_m - said_max >= s.update_growth_m
        ):
            self._exc_said = (p.t, exc.max_distance_m)
            events.append(ExcursionUpdated(p.t, exc))

    def _stops(self, point: Point, events: list[TrackEvent]) -> None:
        s = self.settings
        stop = self._stop
        if stop is not None:
            lat, lon = stop.centre
            if geodesic_m(lat, lon, point[1], point[2]) <= s.stop_radius_m:
                self._leaving = []
                stop = replace(stop, last_seen_at=point[0], fix_count=stop.fix_count + 1)
                self._stop = stop
                assert self._stop_said is not None  # set whenever a stop is
                if (point[0] - self._stop_said).total_seconds() >= s.update_interval_s:
                    self._stop_said = point[0]
                    events.append(StopUpdated(point[0], stop))
                return
            self._leaving.append(point)
            if len(self._leaving) < s.stop_exit_fixes:
                return
            events.append(StopEnded(point[0], replace(stop, ended_at=stop.last_seen_at)))
            leaving, self._leaving, self._stop, self._stop_said = self._leaving, [], None, None
            for q in leaving:  # the way out may already be the next stop
                self._grow_cluster(q, events)
            return
        self._grow_cluster(point, events)

    def _grow_cluster(self, point: Point, events: list[TrackEvent]) -> None:
        s = self.settings
        cluster = self._cluster
        cluster.append(point)
        # Fixes within the stop radius of a centre are within a diameter of each other:
        # the oldest ones beyond that from the newest can go at once (amortised O(1)).
        while len(cluster) > 1 and (
            geodesic_m(cluster[0][1], cluster[0][2], point[1], point[2]) > 2 * s.stop_radius_m
        ):
            del cluster[0]
        if len(cluster) < s.stop_min_fixes or _span_s(cluster) < s.stop_window_s:
            return
        # Long enough to be a stop: keep the longest tail that is truly compact.
        lats = np.asarray([q[1] for q in cluster])
        lons = np.asarray([q[2] for q in cluster])
        start = 0
        while len(cluster) - start > 1:
            c_lat, c_lon = mean_position(lons[start:], lats[start:])
            if _distances(c_lat, c_lon, lats[start:], lons[start:]).max() <= s.stop_radius_m:
                break
            start += 1
        del cluster[:start]
        if len(cluster) < s.stop_min_fixes or _span_s(cluster) < s.stop_window_s:
            return
        centre = mean_position(lons[start:], lats[start:])
        self._seq["stop"] += 1
        stop = Stop(
            f"{self.leg_id}/stop/{self._seq['stop']}",
            cluster[0][0],
            None,
            point[0],
            centre,
            len(cluster),
            tuple(self.areas.containing(*centre)),
        )
        self._stop, self._stop_said, self._cluster = stop, point[0], []
        events.append(StopStarted(point[0], stop))

    def to_state(self) -> dict[str, Any]:
        """The whole mutable state as a JSON-ready dict (see ``from_state``)."""
        return {
            "v": STATE_VERSION,
            "leg_id": self.leg_id,
            "route_length_m": self.route.length_m,
            "settings": self.settings.to_dict(),
            "last": codec.enc_point(self._last),
            "good": codec.enc_point(self._good),
            "fast": [codec.enc_point(q) for q in self._fast],
            "seq": dict(self._seq),
            "pending": [codec.enc_path(q) for q in self._pending],
            "excursion": codec.enc_exc(self._exc),
            "exc_said": None
            if self._exc_said is None
            else [codec.enc_t(self._exc_said[0]), self._exc_said[1]],
            "returning": [codec.enc_t(t) for t in self._returning],
            "cluster": [codec.enc_point(q) for q in self._cluster],
            "stop": codec.enc_stop(self._stop),
            "stop_said": None if self._stop_said is None else codec.enc_t(self._stop_said),
            "leaving": [codec.enc_point(q) for q in self._leaving],
            "zone_in": codec.enc_zones(self._zone_in),
            "zone_run": codec.enc_zones(self._zone_run),
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], *, route: RouteIndex, areas: AreaIndex | None = None
    ) -> LegTracker:
        """A tracker restored from ``to_state``; the route and areas must be the same ones."""
        if state.get("v") != STATE_VERSION:
            raise Invalid(f"unknown tracker state version {state.get('v')!r}", field="state.v")
        if abs(float(state["route_length_m"]) - route.length_m) > 1e-6 * route.length_m + 1e-3:
            raise Invalid("this state belongs to another route", field="state.route_length_m")
        self = cls(str(state["leg_id"]), route, areas, MatchSettings(**state["settings"]))
        self._last = codec.dec_point(state["last"])
        self._good = codec.dec_point(state["good"])
        self._fast = [codec.dec_point_req(q) for q in state["fast"]]
        self._seq = {"excursion": int(state["seq"]["excursion"]), "stop": int(state["seq"]["stop"])}
        self._pending = [codec.dec_path(q) for q in state["pending"]]
        self._exc = codec.dec_exc(state["excursion"])
        said = state["exc_said"]
        self._exc_said = None if said is None else (codec.dec_t(said[0]), float(said[1]))
        self._returning = [codec.dec_t(t) for t in state["returning"]]
        self._cluster = [codec.dec_point_req(q) for q in state["cluster"]]
        self._stop = codec.dec_stop(state["stop"])
        self._stop_said = None if state["stop_said"] is None else codec.dec_t(state["stop_said"])
        self._leaving = [codec.dec_point_req(q) for q in state["leaving"]]
        self._zone_in = codec.dec_zones(state["zone_in"])
        self._zone_run = codec.dec_zones(state["zone_run"])
        return self


def _speed_kmh(a: Point, b: Point) -> float:
    seconds = (b[0] - a[0]).total_seconds()
    return geodesic_m(a[1], a[2], b[1], b[2]) / seconds * 3.6


def _span_s(points: list[Point]) -> float:
    return (points[-1][0] - points[0][0]).total_seconds()


def _distances(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    n = len(lats)
    return np.asarray(GEOD.inv(np.full(n, lon), np.full(n, lat), lons, lats)[2])


def _thin(path: tuple[PathPoint, ...], limit: int) -> tuple[PathPoint, ...]:
    """Every other point once over ``limit``, always keeping the last."""
    if len(path) <= limit:
        return path
    kept = path[::2]
    return kept if kept[-1] is path[-1] else (*kept, path[-1])
