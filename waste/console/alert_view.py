"""The console's alert page: the alert, its handling, a map of the trip around it, and the
timeline of fixes, e-lock events and custody events near the time it happened.

Reads only; handling steps go through ``waste.alerts.handling.transition``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from waste.alerts import handling, listing
from waste.alerts.models import Alert
from waste.auth.tokens import Principal
from waste.clock import format_utc, parse_utc
from waste.console import manifest_view, maps, trips
from waste.errors import Invalid, NotFound
from waste.manifests import queries
from waste.manifests.custody import Custody
from waste.registry.models import Party
from waste.telemetry.queries import track
from waste.uow import UnitOfWork

AROUND = timedelta(minutes=15)  # the timeline shows this long either side of the alert
NO_LEG_WINDOW = timedelta(hours=1)  # the track shown for an alert bound to no leg
MAX_FIX_ROWS = 40


@dataclass(frozen=True)
class Moment:
    """One line of the alert's timeline."""

    t: datetime
    kind: str  # fix | lock | custody | alert
    text: str
    late: str = ""
    highlight: bool = False


@dataclass
class AlertView:
    """Everything the alert page shows."""

    detail: dict[str, Any]
    alert: Alert
    trip: trips.Trip
    moments: list[Moment]
    parties: dict[str, Party]
    manifest_number: str | None = None
    evidence_rows: list[tuple[str, str]] = field(default_factory=list)
    fixes_hidden: int = 0

    @property
    def map(self) -> dict[str, Any]:
        """The map's GeoJSON."""
        return self.trip.map


def build(*, uow: UnitOfWork, principal: Principal, alert_id: str, now: datetime) -> AlertView:
    """The page of an alert ``principal`` may see (``NotFound`` otherwise)."""
    detail = listing.alert_detail(uow=uow, principal=principal, alert_id=alert_id, now=now)
    alert = handling.get_alert(uow=uow, principal=principal, alert_id=alert_id)
    custody, timeline, number = _manifest(uow, principal, alert, now)
    trip = trips.Trip()
    leg = None
    if custody is not None and alert.leg_index is not None and alert.leg_index < len(custody.legs):
        leg = custody.legs[alert.leg_index]
    if custody is not None:
        route = (leg.route if leg else None) or custody.filing.route
        trips.add_route(trip, route, custody.filing.corridor_m, label="declared route")
    if leg is not None:
        trips.add_leg_track(trip, uow=uow, leg=leg, start=leg.opened_at, end=leg.closed_at or now)
    elif alert.device_id:
        start, end = alert.at - NO_LEG_WINDOW, (alert.ended_at or alert.at) + NO_LEG_WINDOW
        fixes = track(uow=uow, device_id=alert.device_id, start=start, end=end, limit=10_000)
        trips.add_device_track(trip, uow=uow, device_id=alert.device_id, fixes=fixes,
                               start=start, end=end)  # fmt: skip
    _add_evidence_layers(trip, alert)
    party_ids = [p for p in (alert.producer_id, alert.site_id) if p]
    if custody is not None:
        party_ids += [custody.producer, *custody.destinations]
    trips.add_places(trip, uow=uow, party_ids=party_ids)
    moments, hidden = _moments(alert, trip, timeline)
    ids = {p for p in (alert.producer_id, alert.hauler_id, alert.site_id) if p}
    return AlertView(
        detail=detail,
        alert=alert,
        trip=trip,
        moments=moments,
        parties=queries.party_names(uow=uow, ids=ids),
        manifest_number=number,
        evidence_rows=evidence_rows(alert.evidence or {}),
        fixes_hidden=hidden,
    )


def _manifest(
    uow: UnitOfWork, principal: Principal, alert: Alert, now: datetime
) -> tuple[Custody | None, list[dict[str, Any]], str | None]:
    if alert.manifest_id is None:
        return None, [], None
    try:
        detail = queries.manifest_detail(
            uow=uow, principal=principal, manifest_id=alert.manifest_id, now=now
        )
    except NotFound:  # the manifest is outside the viewer's sight: show the alert alone
        return None, [], None
    custody = queries.replay_many(uow=uow, manifest_ids=[alert.manifest_id])[alert.manifest_id]
    names = manifest_view.party_names_in(detail)
    timeline = [{**e, "what": manifest_view.readable(e["what"], names)} for e in detail["timeline"]]
    return custody, timeline, detail["number"]


def _add_evidence_layers(trip: trips.Trip, alert: Alert) -> None:
    path = (alert.evidence or {}).get("path")
    if isinstance(path, list) and len(path) >= 2:
        try:
            coords = [[float(p[2]), float(p[1])] for p in path]
        except (TypeError, ValueError, IndexError):
            coords = []
        if len(coords) >= 2:
            trip.features.append(
                maps.feature(
                    "excursion",
                    {"type": "LineString", "coordinates": coords},
                    "excursion off the corridor",
                    focus=True,
                )
            )
    if alert.lat is not None and alert.lon is not None:
        trip.features.append(
            maps.feature(
                "alert",
                maps.point(alert.lat, alert.lon),
                f"{alert.kind.replace('_', ' ')} at {format_utc(alert.at)}",
                focus=True,
            )
        )


def _moments(
    alert: Alert, trip: trips.Trip, timeline: list[dict[str, Any]]
) -> tuple[list[Moment], int]:
    lo, hi = alert.at - AROUND, (alert.ended_at or alert.at) + AROUND
    fixes = [f for f in trip.fixes if lo <= f.fix.t <= hi]
    hidden = 0
    if len(fixes) > MAX_FIX_ROWS:  # keep an even sample, always with the fixes at either end
        step = len(fixes) / MAX_FIX_ROWS
        keep = {int(i * step) for i in range(MAX_FIX_ROWS)} | {len(fixes) - 1}
        hidden = len(fixes) - len(keep)
        fixes = [f for i, f in enumerate(fixes) if i in keep]
    out = [
        Moment(
            f.fix.t,
            "fix",
            f"{f.fix.lat:.5f}, {f.fix.lon:.5f}"
            + ("" if f.fix.speed_kmh is None else f" · {f.fix.speed_kmh:.0f} km/h")
            + ("" if f.fix.hdop is None else f" · hdop {f.fix.hdop:g}"),
            late=_late(f.fix.t, f.received_at),
        )
        for f in fixes
    ]
    for lk in trip.locks:
        if lo <= lk.lock.t <= hi:
            out.append(
                Moment(
                    lk.lock.t,
                    "lock",
                    f"e-lock {lk.lock.event} ({lk.lock.lock_id})",
                    late=_late(lk.lock.t, lk.received_at),
                    highlight=str(lk.lock.event) in trips.OPENING,
                )
            )
    for e in timeline:
        at = parse_utc(e["at"])
        out.append(Moment(at, "custody", f"{e['type'].replace('_', ' ')}: {e['what']}"))
    out.append(
        Moment(alert.at, "alert", f"{alert.kind.replace('_', ' ')} ({alert.severity})", "", True)
    )
    out.sort(key=lambda m: (m.t, m.kind != "alert"))
    return out, hidden


def _late(t: datetime, received_at: datetime) -> str:
    delay = (received_at - t).total_seconds()
    if delay < 120:
        return ""
    return f"arrived {delay / 60:.0f} min later"


def evidence_rows(evidence: dict[str, Any]) -> list[tuple[str, str]]:
    """The alert's evidence as label/value rows (the path is drawn, not listed)."""
    rows = []
    for key, value in evidence.items():
        if key == "path":
            count = len(value) if isinstance(value, list) else 0
            rows.append((key, f"{count} positions (drawn on the map)"))
            continue
        rows.append((key.replace("_", " "), _show(value)))
    return rows


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {_show(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value) if value else "—"
    return str(value)


def parse_due(value: str) -> datetime | None:
    """A due time from a ``datetime-local`` input, taken as UTC; a bare date means the end of
    that day (None if empty)."""
    text = value.strip()
    if not text:
        return None
    for shape in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text, shape).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=1)
    except ValueError:
        raise Invalid("due date must look like 2026-11-30T17:00 (UTC)", field="due_at") from None
