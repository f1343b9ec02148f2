"""``LegEngine``: one leg's route tracker plus the rules' memory, fed fixes and e-lock events.

Pure: no I/O. Its whole state is two JSON-ready dicts (the tracker's, and the rules'
memory) so the detection service can keep it in ``leg_trackers`` and any gateway
process can continue it. Fixes must come in fix-time order; e-lock events may come
in any order (they do not move the tracker). Weighings are facts from custody
events: they survive a replay of the leg's track (``restart``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from waste.alerts import dumping, rules
from waste.alerts.rules import Candidate, LegFacts, ts
from waste.alerts.thresholds import AlertThresholds
from waste.clock import parse_utc
from waste.tracking import (
    AreaIndex,
    AreaKind,
    Excursion,
    ExcursionEnded,
    ExcursionStarted,
    ExcursionUpdated,
    Fix,
    FixQuality,
    GapObserved,
    LegTracker,
    RouteIndex,
    Stop,
    StopEnded,
    StopStarted,
    StopUpdated,
    TrackEvent,
    ZoneEntered,
    ZoneExited,
)

MEMORY_VERSION = 1


@dataclass(frozen=True)
class LockIn:
    """An e-lock event as the rules see it."""

    device_id: str
    seq: int
    t: datetime
    event: str
    lock_id: str
    lat: float | None = None
    lon: float | None = None


def _empty_memory() -> dict[str, Any]:
    return {
        "v": MEMORY_VERSION,
        "episodes": {},
        "signals": {},
        "weighings": [],
        "zones": {},
        "qualified": [],
        "last_good": None,
        "last_fix": None,
        "closed_at": None,
        "aliases": {},
    }


class LegEngine:
    """Feeds one leg's fixes and e-lock events to its tracker and the alert rules."""

    def __init__(
        self,
        facts: LegFacts,
        thresholds: AlertThresholds,
        route: RouteIndex,
        areas: AreaIndex,
        *,
        tracker_state: Mapping[str, Any] | None = None,
        memory: Mapping[str, Any] | None = None,
    ) -> None:
        self.facts = facts
        self.th = thresholds
        self.areas = areas
        self._route = route
        if tracker_state is not None:
            self.tracker = LegTracker.from_state(tracker_state, route=route, areas=areas)
        else:
            self.tracker = LegTracker(facts.leg_id, route, areas, thresholds.match_settings())
        self.memory: dict[str, Any] = _empty_memory()
        if memory is not None and memory.get("v") == MEMORY_VERSION:
            self.memory.update(dict(memory))
        self._dirty = False

    def restart(self) -> None:
        """Forget the track (to replay it from the start); keep the weighings."""
        weighings = self.memory["weighings"]
        self.tracker = LegTracker(
            self.facts.leg_id, self._route, self.areas, self.th.match_settings()
        )
        self.memory = _empty_memory()
        self.memory["weighings"] = weighings
        self._dirty = bool(weighings)

    @property
    def last_fix(self) -> tuple[datetime, float, float] | None:
        """The latest fix fed (any quality)."""
        last = self.memory["last_fix"]
        return None if last is None else (parse_utc(last[0]), float(last[1]), float(last[2]))

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self.memory["closed_at"] is not None

    def to_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(tracker state, rules memory)``, JSON-ready."""
        return self.tracker.to_state(), self.memory

    # --- feeding --------------------------------------------------------------

    def feed(self, fixes: Iterable[Fix], locks: Iterable[LockIn] = ()) -> list[Candidate]:
        """Take fixes (in time order) and e-lock events; the candidates they make."""
        items: list[tuple[datetime, int, Fix | LockIn]] = [(f.t, 0, f) for f in fixes]
        items += [(lk.t, 1, lk) for lk in locks]
        items.sort(key=lambda item: (item[0], item[1]))
        out: list[Candidate] = []
        for _, _, item in items:
            if isinstance(item, LockIn):
                out.extend(self._lock(item))
            else:
                out.extend(self._fix(item))
        return out + self._correlate()

    def close(self, at: datetime) -> list[Candidate]:
        """The leg closed at ``at``: end what is ongoing."""
        out: list[Candidate] = []
        for event in self.tracker.close(at):
            out.extend(self._event(event, None))
        for zone in list(self.memory["zones"].values()):
            out.append(self._zone_candidate(zone, exited_at=None, ended_at=at))
        self.memory["zones"] = {}
        self.memory["closed_at"] = ts(at)
        return out + self._correlate()

    def add_weighing(self, weighing: Mapping[str, Any]) -> list[Candidate]:
        """Record a mass loss found when the load was weighed; dumping candidates it makes."""
        kept = [w for w in self.memory["weighings"] if w.get("seq") != weighing.get("seq")]
        self.memory["weighings"] = [*kept, dict(weighing)]
        self._dirty = True
        return self._correlate()

    def _fix(self, fix: Fix) -> list[Candidate]:
        before = self.memory["last_good"]
        first = self.memory["last_fix"] is None
        step = self.tracker.consume(fix)
        if step.quality is FixQuality.STALE:
            return []
        out: list[Candidate] = []
        opened = self.facts.opened_at
        if first and opened is not None and fix.t > opened:
            # Silent from the pickup to the first fix: a gap like any other.
            silent = (fix.t - opened).total_seconds()
            if silent > self.th.signal_lost_s:
                inside = step.match.inside_corridor if step.match is not None else True
                gap = GapObserved(opened, fix.t, 0.0, 0.0, inside)
                out.extend(self._event(gap, (fix, None)))
        self.memory["last_fix"] = [ts(fix.t), fix.lat, fix.lon]
        if step.quality is FixQuality.GOOD:
            self.memory["last_good"] = [ts(fix.t), fix.lat, fix.lon]
        for event in step.events:
            out.extend(self._event(event, (fix, before)))
        return out

    def _event(self, event: TrackEvent, context: tuple[Fix, Any] | None) -> list[Candidate]:
        facts, th = self.facts, self.th
        if isinstance(event, ExcursionStarted | ExcursionUpdated | ExcursionEnded):
            exc = event.excursion
            if not self._qualifies(exc):
                return []
            ended = isinstance(event, ExcursionEnded)
            cand = rules.deviation(facts, th, exc, event.at, ended=ended)
            self._episode("excursion", exc.id, cand, size=exc.max_distance_m)
            return [cand]
        if isinstance(event, StopStarted | StopUpdated | StopEnded):
            return self._stop(event.stop, ended=isinstance(event, StopEnded))
        if isinstance(event, ZoneEntered):
            cand = rules.zone_entry(facts, event)
            self.memory["zones"][event.zone.id] = {
                "key": cand.key,
                "zone": event.zone.to_dict(),
                "entered_at": ts(event.entered_at),
                "confirmed_at": ts(event.at),
                "lat": event.lat,
                "lon": event.lon,
            }
            return [cand]
        if isinstance(event, ZoneExited):
            zone = self.memory["zones"].pop(event.zone.id, None)
            if zone is None:
                return []
            return [self._zone_candidate(zone, exited_at=event.exited_at, ended_at=event.exited_at)]
        if isinstance(event, GapObserved):
            cand = rules.signal_gap(facts, th, event)
            if context is not None:
                fix, before = context
                cand = _at_position(cand, fix.lat, fix.lon)
                before_pos = None if before is None else [before[1], before[2]]
                cand.evidence["last_position"] = before_pos
                cand.evidence["resumed_position"] = [fix.lat, fix.lon]
            self._episode("gap", cand.key.split(":", 1)[1], cand, size=cand.evidence["gap_s"])
            return [cand]
        return []

    def _qualifies(self, exc: Excursion) -> bool:
        """A deviation counts once enough of its points lie outside every allowed area."""
        qualified: list[str] = self.memory["qualified"]
        if exc.id in qualified:
            return True
        outside = 0
        for p in exc.path:
            kinds = {a.kind for a in self.areas.containing(p.lat, p.lon)}
            if not kinds & rules.ALLOWED_STOP_AREAS:
                outside += 1
        if outside >= self.th.off_route_fixes:
            qualified.append(exc.id)
            return True
        return False

    def _stop(self, stop: Stop, *, ended: bool) -> list[Candidate]:
        if rules.stop_allowed(stop):
            return []
        lat, lon = stop.centre
        episode = Candidate(
            rules.UNSCHEDULED_STOP,
            "low",
            stop.id,
            stop.started_at,
            lat,
            lon,
            {},
            ended_at=stop.ended_at if ended else None,
            last_seen_at=stop.last_seen_at,
        )
        self._episode("stop", stop.id, episode, size=stop.duration.total_seconds())
        cand = rules.unscheduled_stop(self.facts, self.th, stop, ended=ended)
        return [] if cand is None else [cand]

    def _zone_candidate(
        self, zone: Mapping[str, Any], *, exited_at: datetime | None, ended_at: datetime
    ) -> Candidate:
        entered = parse_utc(zone["entered_at"])
        return Candidate(
            rules.RESTRICTED_ZONE_ENTRY,
            "high",
            str(zone["key"]),
            entered,
            zone["lat"],
            zone["lon"],
            {
                "zone": zone["zone"],
                "entered_at": zone["entered_at"],
                "confirmed_at": zone["confirmed_at"],
                "last_seen_at": ts(ended_at),
                "exited_at": ts(exited_at),
                "justification": self.facts.restricted_zone_justification,
            },
            ended_at=ended_at,
            last_seen_at=ended_at,
            manifest_id=self.facts.manifest_id,
            leg_index=self.facts.leg_index,
        )

    def _episode(self, kind: str, episode_id: str, cand: Candidate, *, size: float) -> None:
        self.memory["episodes"][episode_id] = {
            "id": episode_id,
            "kind": kind,
            "start": ts(cand.at),
            "end": ts(cand.ended_at),
            "last": ts(cand.last_seen_at or cand.at),
            "lat": cand.lat,
            "lon": cand.lon,
            "size": round(size, 1),
        }
        self._dirty = True

    def _lock(self, lock: LockIn) -> list[Candidate]:
        if lock.event not in ("unsealed", "tamper"):
            return []
        lat, lon, located_by = lock.lat, lock.lon, "lock"
        if lat is None or lon is None:
            good = self.memory["last_good"]
            lat, lon, located_by = (good[1], good[2], "last_fix") if good else (None, None, "none")
        at_destination = (
            lat is not None
            and lon is not None
            and any(a.kind is AreaKind.DESTINATION for a in self.areas.containing(lat, lon))
        )
        sighting = rules.LockSighting(
            lock.device_id, lock.seq, lock.t, lock.lock_id, lat, lon, located_by
        )
        if lock.event == "unsealed":
            if at_destination:
                return []
            cand = rules.seal_opened(self.facts, sighting)
        else:
            cand = rules.tamper(self.facts, sighting)
            if at_destination:
                return [cand]
        signal_id = f"{lock.device_id}/{lock.seq}"
        self.memory["signals"][signal_id] = {
            "id": signal_id,
            "kind": lock.event,
            "t": ts(lock.t),
            "lat": lat,
            "lon": lon,
            "lock_id": lock.lock_id,
        }
        self._dirty = True
        return [cand]

    def _correlate(self) -> list[Candidate]:
        if not self._dirty:
            return []
        self._dirty = False
        return dumping.correlate(
            self.facts,
            self.th,
            episodes=list(self.memory["episodes"].values()),
            signals=list(self.memory["signals"].values()),
            weighings=list(self.memory["weighings"]),
        )


def _at_position(cand: Candidate, lat: float, lon: float) -> Candidate:
    return replace(cand, lat=lat, lon=lon)


def final(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The last candidate of each key, in first-seen order (a replay's net result)."""
    latest: dict[str, Candidate] = {}
    for cand in candidates:
        latest[cand.key] = cand
    return list(latest.values())
