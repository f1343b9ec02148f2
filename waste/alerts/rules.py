"""Alert rules over one leg's track events and e-lock events, pure.

Each rule turns a ``waste.tracking`` event (or an e-lock event) into a ``Candidate``:
the alert it means as known now, under a *natural key* naming the thing alerted
about (the excursion, the stop, the zone visit, the gap, the lock message), so the
same thing seen again updates one alert instead of raising another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from waste.alerts.thresholds import AlertThresholds
from waste.clock import format_utc
from waste.tracking import (
    AreaKind,
    Excursion,
    ExcursionEnded,
    GapObserved,
    Stop,
    ZoneEntered,
)

ROUTE_DEVIATION = "route_deviation"
UNSCHEDULED_STOP = "unscheduled_stop"
SEAL_OPENED_OFF_SITE = "seal_opened_off_site"
SEAL_TAMPER = "seal_tamper"
SIGNAL_LOST = "signal_lost"
RESTRICTED_ZONE_ENTRY = "restricted_zone_entry"
QUANTITY_DISCREPANCY = "quantity_discrepancy"
OVERDUE_DELIVERY = "overdue_delivery"
UNLICENSED_RECEIPT = "unlicensed_receipt"
UNMANIFESTED_MOVEMENT = "unmanifested_movement"
SUSPECTED_ILLEGAL_DUMPING = "suspected_illegal_dumping"

ALERT_KINDS = (
    ROUTE_DEVIATION,
    UNSCHEDULED_STOP,
    SEAL_OPENED_OFF_SITE,
    SEAL_TAMPER,
    SIGNAL_LOST,
    RESTRICTED_ZONE_ENTRY,
    QUANTITY_DISCREPANCY,
    OVERDUE_DELIVERY,
    UNLICENSED_RECEIPT,
    UNMANIFESTED_MOVEMENT,
    SUSPECTED_ILLEGAL_DUMPING,
)
TRACK_KINDS = frozenset(
    {
        ROUTE_DEVIATION,
        UNSCHEDULED_STOP,
        RESTRICTED_ZONE_ENTRY,
        SIGNAL_LOST,
        SUSPECTED_ILLEGAL_DUMPING,
    }
)
"""Kinds derived from the leg's fix stream: re-judged (raised, updated or retracted) when
late fixes make the leg's track be replayed."""

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
ALLOWED_STOP_AREAS = frozenset({AreaKind.PICKUP, AreaKind.DESTINATION, AreaKind.REST_AREA})
MAX_EVIDENCE_PATH = 120


@dataclass(frozen=True)
class Candidate:
    """An alert as one rule sees it now; the store upserts it by ``key``."""

    kind: str
    severity: str
    key: str
    at: datetime
    lat: float | None
    lon: float | None
    evidence: dict[str, Any]
    ended_at: datetime | None = None
    last_seen_at: datetime | None = None
    """Latest time the thing was seen (for matching it when a leg is replayed)."""
    manifest_id: str | None = None
    leg_index: int | None = None

    @property
    def span(self) -> tuple[datetime, datetime]:
        """``[at, ended_at or last_seen_at or at]``."""
        return (self.at, self.ended_at or self.last_seen_at or self.at)


@dataclass(frozen=True)
class LegFacts:
    """What the rules know of a leg besides its fixes."""

    manifest_id: str
    leg_index: int
    corridor_m: float
    seal_id: str
    opened_at: datetime | None = None
    restricted_zone_justification: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def leg_id(self) -> str:
        """``{manifest_id}/{leg_index}``: the tracker's leg id, prefix of excursion/stop ids."""
        return f"{self.manifest_id}/{self.leg_index}"


def ts(moment: datetime | None) -> str | None:
    """A protocol timestamp, or None."""
    return None if moment is None else format_utc(moment)


def max_severity(a: str, b: str) -> str:
    """The graver of two severities."""
    return a if SEVERITY_RANK.get(a, 0) >= SEVERITY_RANK.get(b, 0) else b


def _path(excursion: Excursion) -> list[list[Any]]:
    points = list(excursion.path)
    if len(points) > MAX_EVIDENCE_PATH:
        step = len(points) / MAX_EVIDENCE_PATH
        points = [points[int(i * step)] for i in range(MAX_EVIDENCE_PATH - 1)] + [points[-1]]
    return [[format_utc(p.t), p.lat, p.lon, round(p.distance_m, 1)] for p in points]


def deviation(
    facts: LegFacts, th: AlertThresholds, excursion: Excursion, event_at: datetime, *, ended: bool
) -> Candidate:
    """``route_deviation``: medium; high when it lasts or reaches far."""
    duration = excursion.duration.total_seconds()
    long = duration >= th.long_deviation_s or excursion.max_distance_m >= th.long_deviation_m
    far = max(excursion.path, key=lambda p: p.distance_m)
    evidence = {
        "excursion_id": excursion.id,
        "started_at": ts(excursion.started_at),
        "last_seen_at": ts(excursion.last_seen_at),
        "ended_at": ts(excursion.ended_at),
        "returned": excursion.ended_at is not None,
        "max_distance_m": round(excursion.max_distance_m, 1),
        "duration_s": round(duration, 1),
        "corridor_m": facts.corridor_m,
        "path": _path(excursion),
    }
    return Candidate(
        ROUTE_DEVIATION,
        "high" if long else "medium",
        f"{ROUTE_DEVIATION}:{excursion.id}",
        excursion.started_at,
        far.lat,
        far.lon,
        evidence,
        ended_at=(excursion.ended_at or event_at) if ended else None,
        last_seen_at=excursion.last_seen_at,
        manifest_id=facts.manifest_id,
        leg_index=facts.leg_index,
    )


def stop_allowed(stop: Stop) -> bool:
    """Whether the stop lies in the pickup, destination or a declared rest area."""
    return bool(stop.kinds & ALLOWED_STOP_AREAS)


def unscheduled_stop(
    facts: LegFacts, th: AlertThresholds, stop: Stop, *, ended: bool
) -> Candidate | None:
    """``unscheduled_stop`` (medium) for a stop outside allowed areas lasting long enough."""
    if stop_allowed(stop) or stop.duration.total_seconds() < th.unscheduled_stop_s:
        return None
    lat, lon = stop.centre
    evidence = {
        "stop_id": stop.id,
        "started_at": ts(stop.started_at),
        "last_seen_at": ts(stop.last_seen_at),
        "ended_at": ts(stop.ended_at),
        "duration_s": round(stop.duration.total_seconds(), 1),
        "fix_count": stop.fix_count,
        "areas": [a.to_dict() for a in stop.areas],
    }
    return Candidate(
        UNSCHEDULED_STOP,
        "medium",
        f"{UNSCHEDULED_STOP}:{stop.id}",
        stop.started_at,
        lat,
        lon,
        evidence,
        ended_at=stop.ended_at if ended else None,
        last_seen_at=stop.last_seen_at,
        manifest_id=facts.manifest_id,
        leg_index=facts.leg_index,
    )


def zone_key(facts: LegFacts, zone_id: str, entered_at: datetime) -> str:
    """The natural key of one visit of a restricted zone."""
    return f"{RESTRICTED_ZONE_ENTRY}:{facts.leg_id}/zone/{zone_id}/{format_utc(entered_at)}"


def zone_entry(facts: LegFacts, event: ZoneEntered) -> Candidate:
    """``restricted_zone_entry`` (high)."""
    evidence = {
        "zone": event.zone.to_dict(),
        "entered_at": ts(event.entered_at),
        "confirmed_at": ts(event.at),
        "last_seen_at": ts(event.at),
        "exited_at": None,
        "justification": facts.restricted_zone_justification,
    }
    return Candidate(
        RESTRICTED_ZONE_ENTRY,
        "high",
        zone_key(facts, event.zone.id, event.entered_at),
        event.entered_at,
        event.lat,
        event.lon,
        evidence,
        last_seen_at=event.at,
        manifest_id=facts.manifest_id,
        leg_index=facts.leg_index,
    )


def gap_key(facts: LegFacts, from_t: datetime) -> str:
    """The natural key of the signal gap that began after the fix at ``from_t``."""
    return f"{SIGNAL_LOST}:{facts.leg_id}/gap/{format_utc(from_t)}"


def signal_gap(facts: LegFacts, th: AlertThresholds, gap: GapObserved) -> Candidate:
    """``signal_lost`` judged on return: high; critical if the return is implausible."""
    reasons = []
    if not gap.resumed_inside_corridor:
        reasons.append("resumed_outside_corridor")
    if gap.implied_speed_kmh > th.gap_max_speed_kmh:
        reasons.append("implausible_gap_distance")
    seconds = (gap.to_t - gap.from_t).total_seconds()
    evidence = {
        "from_t": ts(gap.from_t),
        "to_t": ts(gap.to_t),
        "last_seen_at": ts(gap.to_t),
        "gap_s": round(seconds, 1),
        "distance_m": round(gap.distance_m, 1),
        "implied_speed_kmh": round(gap.implied_speed_kmh, 1),
        "resumed_inside_corridor": gap.resumed_inside_corridor,
        "escalated": bool(reasons),
        "reasons": reasons,
        "ongoing": False,
    }
    return Candidate(
        SIGNAL_LOST,
        "critical" if reasons else "high",
        gap_key(facts, gap.from_t),
        gap.from_t,
        None,
        None,
        evidence,
        ended_at=gap.to_t,
        last_seen_at=gap.to_t,
        manifest_id=facts.manifest_id,
        leg_index=facts.leg_index,
    )


def ongoing_gap(
    facts: LegFacts,
    th: AlertThresholds,
    *,
    last_fix: tuple[datetime, float, float] | None,
    opened_at: datetime,
    now: datetime,
    offline_at: datetime | None,
) -> Candidate | None:
    """``signal_lost`` while it lasts: no fix for ``signal_lost_s``, or the device's will."""
    since = last_fix[0] if last_fix else opened_at
    silent = (now - since).total_seconds()
    will = offline_at is not None and offline_at >= since
    will_due = will and offline_at is not None and now - offline_at >= _s(th.will_grace_s)
    if silent <= th.signal_lost_s and not will_due:
        return None
    evidence = {
        "from_t": ts(since),
        "to_t": None,
        "ongoing": True,
        "cause": "device_offline" if will_due else "no_fix",
        "offline_at": ts(offline_at) if will else None,
        "last_fix": None if last_fix is None else [ts(last_fix[0]), last_fix[1], last_fix[2]],
        "escalated": False,
        "reasons": [],
    }
    return Candidate(
        SIGNAL_LOST,
        "high",
        gap_key(facts, since),
        since,
        last_fix[1] if last_fix else None,
        last_fix[2] if last_fix else None,
        evidence,
        last_seen_at=since,
        manifest_id=facts.manifest_id,
        leg_index=facts.leg_index,
    )


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class LockSighting:
    """An e-lock event and where it happened (``located_by``: lock, last_fix or none)."""

    device_id: str
    seq: int
    t: datetime
    lock_id: str
    lat: float | None
    lon: float | None
    located_by: str


def _lock_candidate(
    kind: str, facts: LegFacts, lock: LockSighting, evidence: dict[str, Any]
) -> Candidate:
    """A critical alert keyed by the e-lock event that raised it."""
    return Candidate(
        kind,
        "critical",
        f"{kind}:{lock.device_id}/{lock.seq}",
        lock.t,
        lock.lat,
        lock.lon,
        evidence,
        manifest_id=facts.manifest_id,
        leg_index=facts.leg_index,
    )


def seal_opened(facts: LegFacts, lock: LockSighting) -> Candidate:
    """``seal_opened_off_site`` (critical): unsealed outside the destination, leg open."""
    evidence = {
        "lock_id": lock.lock_id,
        "expected_seal_id": facts.seal_id,
        "device_id": lock.device_id,
        "seq": lock.seq,
        "event": "unsealed",
        "located_by": lock.located_by,
    }
    return _lock_candidate(SEAL_OPENED_OFF_SITE, facts, lock, evidence)


def tamper(facts: LegFacts, lock: LockSighting) -> Candidate:
    """``seal_tamper`` (critical) from an e-lock ``tamper`` event."""
    evidence = {
        "source": "e-lock",
        "lock_id": lock.lock_id,
        "expected_seal_id": facts.seal_id,
        "device_id": lock.device_id,
        "seq": lock.seq,
    }
    return _lock_candidate(SEAL_TAMPER, facts, lock, evidence)


def is_excursion_end(event: object) -> bool:
    """Whether a tracker event ends an excursion."""
    return isinstance(event, ExcursionEnded)
